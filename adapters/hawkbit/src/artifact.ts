/**
 * The one artifact of a DDI deployment: the release's image, with the hashes hawkBit announces
 * (SWUpdate checks only sha1, and only after installing — so the image must verify against the
 * release before it is ever announced: invariant 4 on the hub). Hashes are computed in one pass
 * and kept while the file stays the same.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { FirmwardError } from '@firmward/core';

export interface ArtifactFile {
  path: string;
  size: number;
  sha1: string;
  md5: string;
  sha256: string;
}

interface Known extends ArtifactFile {
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export class ArtifactHashes {
  readonly #known = new Map<string, Known>();
  readonly #inFlight = new Map<string, Promise<Known>>();

  /**
   * The file's hashes, after checking its length and SHA-256 against the release's.
   * Throws `image_length_mismatch` / `image_hash_mismatch`: such a file is never announced.
   */
  async describe(releaseId: string, path: string, expected: { lengthBytes: number; sha256: string }): Promise<ArtifactFile> {
    const info = await stat(path).catch((cause: unknown) => {
      throw new FirmwardError('image_unavailable', `The image of ${releaseId} is missing.`, { cause });
    });
    const known = this.#known.get(path);
    const same = known !== undefined && known.size === info.size && known.mtimeMs === info.mtimeMs && known.ctimeMs === info.ctimeMs && known.ino === info.ino;
    const file = same ? known : await this.#hash(path, { size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, ino: info.ino });
    if (file.size !== expected.lengthBytes) {
      throw new FirmwardError('image_length_mismatch', `The image of ${releaseId} is ${file.size} bytes, but the release says ${expected.lengthBytes}; it is not offered.`);
    }
    if (file.sha256 !== expected.sha256) {
      throw new FirmwardError('image_hash_mismatch', `The image of ${releaseId} does not match its checksum; it is not offered.`);
    }
    return { path: file.path, size: file.size, sha1: file.sha1, md5: file.md5, sha256: file.sha256 };
  }

  #hash(path: string, seen: Omit<Known, 'path' | 'size' | 'sha1' | 'md5' | 'sha256'> & { size: number }): Promise<Known> {
    const running = this.#inFlight.get(path);
    if (running) return running;
    const work = (async () => {
      const sha1 = createHash('sha1');
      const md5 = createHash('md5');
      const sha256 = createHash('sha256');
      let size = 0;
      for await (const chunk of createReadStream(path)) {
        const bytes = chunk as Buffer;
        size += bytes.byteLength;
        sha1.update(bytes);
        md5.update(bytes);
        sha256.update(bytes);
      }
      const known: Known = { ...seen, path, size, sha1: sha1.digest('hex'), md5: md5.digest('hex'), sha256: sha256.digest('hex') };
      // A file that changed while it was read is hashed again next time (its size or times moved).
      if (size === seen.size) this.#known.set(path, known);
      return known;
    })().finally(() => this.#inFlight.delete(path));
    this.#inFlight.set(path, work);
    return work;
  }
}
