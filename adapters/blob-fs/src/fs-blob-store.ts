/**
 * The BlobStore port on a local folder: the default for one hub. Each image is written to a temp
 * file while it is counted and hashed, synced, and only then renamed under its key, and the
 * folder is synced too, so a reader (or the hub after a power cut) finds the whole verified image
 * or none (invariant 4). It cannot sign URLs: the hub serves these bytes itself, with Range.
 *
 * Layout: `<dir>/sha256/<hex>` for images, `<dir>/.incoming/` for writes in progress (a crash can
 * leave a `.part` file there; it is never read, and may be deleted while no `put` runs).
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { BlobVerifier, checkBlobExpectation, resolveByteRange, sha256OfBlobKey } from '@firmward/ports';
import type { BlobExpectation, BlobKey, BlobStat, BlobStore, ByteRange, DownloadUrlOptions } from '@firmward/ports';

export interface FsBlobStoreOptions {
  /** The images folder, e.g. `<dataDir>/images`; created on the first `put`. */
  dir: string;
}

export class FsBlobStore implements BlobStore {
  readonly name: string;
  readonly #objects: string;
  readonly #incoming: string;

  constructor(o: FsBlobStoreOptions) {
    this.name = `folder ${o.dir}`;
    this.#objects = path.join(o.dir, 'sha256');
    // Inside the same folder, so the final rename never crosses file systems (rename is atomic only within one).
    this.#incoming = path.join(o.dir, '.incoming');
  }

  async has(key: BlobKey): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async put(key: BlobKey, sourceFile: string, expected: BlobExpectation, signal?: AbortSignal): Promise<BlobStat> {
    checkBlobExpectation(key, expected);
    const file = this.#file(key);
    await this.#io('write', () => Promise.all([mkdir(this.#objects, { recursive: true }), mkdir(this.#incoming, { recursive: true })]));
    // A name of its own per write: two hubs (or two calls) putting the same key never share a temp file.
    const tmp = path.join(this.#incoming, `${sha256OfBlobKey(key)}.${randomUUID()}.part`);
    let out: FileHandle | null = null;
    try {
      out = await this.#io('write', () => open(tmp, 'wx', 0o600));
      const verifier = new BlobVerifier(expected);
      // One byte past the signed length is enough to refuse a longer file; never read further.
      const source = createReadStream(sourceFile, { start: 0, end: expected.lengthBytes, ...(signal !== undefined && { signal }) });
      for await (const chunk of readSource(source, sourceFile)) {
        verifier.update(chunk);
        await this.#io('write', () => out!.write(chunk));
      }
      verifier.finish();
      await this.#io('write', () => out!.sync());
      await out.close();
      out = null;
      await this.#io('write', () => rename(tmp, file));
      // The rename is durable only once the folder's entry is on disk: without this, a power cut
      // could bring back a folder without the image the hub already reported as kept.
      await this.#io('write', () => syncFolder(this.#objects));
    } catch (error) {
      await out?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw error;
    }
    return { key, lengthBytes: expected.lengthBytes };
  }

  async stat(key: BlobKey): Promise<BlobStat | null> {
    const found = await this.#io('read', () => stat(this.#file(key)).catch(ignoreMissing));
    return found?.isFile() === true ? { key, lengthBytes: found.size } : null;
  }

  async open(key: BlobKey, range?: ByteRange): Promise<Readable> {
    const file = this.#file(key);
    // The handle is opened here, not lazily by the stream: a missing image is `not_found` now,
    // and a `delete` racing with the read cannot cut the bytes short (the open file stays whole).
    const handle = await this.#io('read', () => open(file, 'r').catch(ignoreMissing));
    if (handle === null) throw new FirmwardError('not_found', 'This firmware image is not in the hub\'s image folder.', { detail: { key } });
    try {
      const { size } = await this.#io('read', () => handle.stat());
      const bounds = resolveByteRange(range, size);
      return handle.createReadStream(bounds === null ? {} : bounds);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  // eslint-disable-next-line @typescript-eslint/require-await -- async so a malformed key rejects like every other method, instead of throwing synchronously.
  async downloadUrl(key: BlobKey, _options: DownloadUrlOptions): Promise<string | null> {
    sha256OfBlobKey(key);
    return null;
  }

  async delete(key: BlobKey): Promise<void> {
    await this.#io('write', () => rm(this.#file(key), { force: true }));
    await this.#io('write', () => syncFolder(this.#objects).catch(ignoreMissing));
  }

  #file(key: BlobKey): string {
    return path.join(this.#objects, sha256OfBlobKey(key));
  }

  /** File-system errors become one sentence; FirmwardErrors (refusals) pass through unchanged. */
  async #io<T>(op: 'read' | 'write', run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isFirmwardError(error)) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ABORT_ERR') throw error;
      const message = code === 'ENOSPC'
        ? 'The disk holding the hub\'s firmware images is full; free some space.'
        : `The hub could not ${op} its firmware image folder.`;
      throw new FirmwardError('store_failure', message, { cause: error, detail: { store: this.name, errno: code } });
    }
  }
}

/** The source file's chunks; a source that cannot be read is the image's problem, not the store's. */
async function* readSource(source: Readable, sourceFile: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) yield chunk as Buffer;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ABORT_ERR') throw error;
    throw new FirmwardError('image_unavailable', 'The downloaded image file cannot be read; nothing was stored.', { cause: error, detail: { sourceFile } });
  }
}

function ignoreMissing(error: unknown): null {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
  throw error;
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
