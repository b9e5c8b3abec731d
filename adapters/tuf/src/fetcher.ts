/**
 * How repository files are read: over HTTP(S) with a time limit per request, or from a local
 * folder (`file://`, the maker's own machine and the demo). Trust never depends on the transport:
 * every byte is checked against signed metadata.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BaseFetcher } from 'tuf-js';
// tuf-js ends its search for newer root versions only on its own HTTP error class, which its index does not export.
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

export class RepositoryFetcher extends BaseFetcher {
  readonly #timeoutMs: number;

  constructor(o: { timeoutMs?: number } = {}) {
    super();
    this.#timeoutMs = o.timeoutMs ?? 30_000;
  }

  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    return openUrl(url, this.#timeoutMs);
  }
}

/** A readable body for an http(s) or file URL; a missing file or a non-2xx answer is a DownloadHTTPError. */
export async function openUrl(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
  if (url.startsWith('file:')) {
    const file = fileURLToPath(url);
    try {
      if (!(await stat(file)).isFile()) throw new DownloadHTTPError(`Not a file: ${file}`, 404);
    } catch (error) {
      if (error instanceof DownloadHTTPError) throw error;
      throw new DownloadHTTPError(`Not found: ${file}`, 404);
    }
    return Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
  }
  return response.body;
}
