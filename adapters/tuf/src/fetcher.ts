/**
 * How repository files are read: over HTTP(S) with a time limit per request, or from a local
 * folder (`file://`, the maker's own machine and the demo). Trust never depends on the transport:
 * every byte is checked against signed metadata.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
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

/**
 * An image's bytes as a Node stream, read in large chunks: a file directly (1 MiB reads), http(s)
 * through fetch. `idleTimeoutMs` bounds the wait for the answer, not the whole body (large images
 * on slow links take long; every byte is counted and hashed anyway).
 */
export async function openImage(url: string, idleTimeoutMs: number): Promise<Readable> {
  if (url.startsWith('file:')) {
    const file = fileURLToPath(url);
    if (!(await stat(file).catch(() => null))?.isFile()) throw new DownloadHTTPError(`Not found: ${file}`, 404);
    return createReadStream(file, { highWaterMark: 1 << 20 });
  }
  const response = await fetch(url, { signal: AbortSignal.timeout(idleTimeoutMs) });
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new DownloadHTTPError(`HTTP ${response.status} for ${url}`, response.status);
  }
  return Readable.fromWeb(response.body as NodeReadableStream);
}
