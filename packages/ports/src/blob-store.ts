import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { FirmwardError } from '@firmward/core';

/**
 * Where the hub keeps the firmware images it mirrored: a local folder (adapters/blob-fs) for one
 * hub, any S3-compatible store (adapters/blob-s3) when several hub instances or a CDN serve them.
 *
 * Keys are content addresses (`sha256/<64 lowercase hex>`): an image's key is its signed hash, so
 * two releases with the same bytes share one object, and an object can never be "updated" into
 * different bytes — whatever is under a key either is the image with that hash or is not there
 * (invariant 4: an image is kept only once its length and SHA-256 match the signed target).
 */
export type BlobKey = `sha256/${string}`;

/** What the maker signed for an image; `put` refuses anything else. */
export interface BlobExpectation {
  lengthBytes: number;
  /** 64 lowercase hex digits, the same as the key's. */
  sha256: string;
}

export interface BlobStat {
  key: BlobKey;
  lengthBytes: number;
}

/** Bytes `start` to `end`, both included (as in HTTP's Range header); `end` defaults to the last byte. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface DownloadUrlOptions {
  /** How long the URL works: long enough for a slow device to finish (and resume) one download, no longer. */
  expiresInSeconds: number;
  /** The file name a browser or `curl -OJ` saves the download under (Content-Disposition). */
  fileName?: string;
}

/**
 * Every method throws FirmwardError: `invalid_input` for a malformed key or range,
 * `image_length_mismatch` / `image_hash_mismatch` for a refused `put`, `not_found` from `open`
 * for a missing object, `store_failure` when the store cannot be read or written.
 */
export interface BlobStore {
  /** For logs and errors: "folder /var/lib/firmward/images", "s3 firmware-images". */
  readonly name: string;

  /** Whether the image is already kept, so the hub mirrors each image once, not at every refresh. */
  has(key: BlobKey): Promise<boolean>;

  /**
   * Keeps the local file `sourceFile` under `key`, verifying its length and SHA-256 while writing,
   * and refuses with `image_length_mismatch` / `image_hash_mismatch` — leaving nothing behind and
   * an object already under `key` untouched — when they differ from `expected` (invariant 4).
   * Atomic: until it resolves, a reader sees the previous object or none, never part of one.
   * Safe to call concurrently for the same key (two hub instances mirroring the same release):
   * both write the same verified bytes, and either may land last.
   */
  put(key: BlobKey, sourceFile: string, expected: BlobExpectation, signal?: AbortSignal): Promise<BlobStat>;

  /** The object's length, or null when it is not kept: what the hub needs to answer a Range request. */
  stat(key: BlobKey): Promise<BlobStat | null>;

  /**
   * The object's bytes, or only `range` of them, for the hub to serve to a device itself (the
   * device resumes an interrupted download with Range). Throws `not_found` when the object is not
   * kept, `invalid_input` when the range does not lie inside it.
   */
  open(key: BlobKey, range?: ByteRange): Promise<Readable>;

  /**
   * A signed URL that lets a device download the object straight from the store until it expires,
   * so the bytes need not pass through the hub (several hub instances, a CDN); null when this
   * store cannot sign URLs, and the hub serves the bytes itself. Signing is local arithmetic: it
   * does not check that the object exists (ask `has` first). The device still checks length and
   * hash against the maker's signed target, so a URL is about access, never about trust.
   */
  downloadUrl(key: BlobKey, options: DownloadUrlOptions): Promise<string | null>;

  /** Removes the object (a release the maker withdrew, a store being cleaned); nothing to remove is fine. */
  delete(key: BlobKey): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The key of an image with this signed SHA-256 (hex, either case).
 *
 * @example
 * const key = imageBlobKey(release.image.sha256); // 'sha256/9f86d0…'
 */
export function imageBlobKey(sha256: string): BlobKey {
  const hex = sha256.toLowerCase();
  if (!SHA256_HEX.test(hex)) throw new FirmwardError('invalid_input', 'An image checksum must be 64 hexadecimal digits (SHA-256).', { detail: { sha256 } });
  return `sha256/${hex}`;
}

/**
 * The SHA-256 a key stands for, after checking the key's shape: adapters build file names and
 * object names from keys, so a key is never trusted to be free of `/`, `..` or other surprises.
 */
export function sha256OfBlobKey(key: string): string {
  const hex = key.startsWith('sha256/') ? key.slice('sha256/'.length) : '';
  if (!SHA256_HEX.test(hex)) throw new FirmwardError('invalid_input', `"${key.slice(0, 80)}" is not an image key (sha256/ and 64 lowercase hexadecimal digits).`);
  return hex;
}

/**
 * The inclusive [start, end] of `range` inside an object of `lengthBytes`, or `invalid_input`:
 * both adapters answer the same ranges the same way.
 */
export function resolveByteRange(range: ByteRange | undefined, lengthBytes: number): { start: number; end: number } | null {
  if (range === undefined) return null;
  const end = range.end ?? lengthBytes - 1;
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(end) || range.start < 0 || range.start > end || end >= lengthBytes) {
    throw new FirmwardError('invalid_input', `Bytes ${range.start}–${range.end ?? 'end'} are not inside this ${lengthBytes}-byte image.`, { detail: { range, lengthBytes } });
  }
  return { start: range.start, end };
}

/** Checks `put`'s promise against the key before a byte is read: a key and a hash that disagree are a caller's bug. */
export function checkBlobExpectation(key: BlobKey, expected: BlobExpectation): void {
  if (sha256OfBlobKey(key) !== expected.sha256.toLowerCase()) {
    throw new FirmwardError('invalid_input', 'The image key and the image checksum differ; nothing was stored.', { detail: { key, sha256: expected.sha256 } });
  }
  if (!Number.isSafeInteger(expected.lengthBytes) || expected.lengthBytes < 0) {
    throw new FirmwardError('invalid_input', 'An image length must be a whole number of bytes.', { detail: { lengthBytes: expected.lengthBytes } });
  }
}

/**
 * Counts and hashes an image's bytes as they stream into a store, the one place both adapters
 * decide invariant 4 for what they keep: the first byte past the signed length is refused at
 * once (an endless source is never read to its end), and `finish` refuses a short image or a
 * wrong hash. Nothing may become visible under the key before `finish` returned.
 *
 * @example
 * const verifier = new BlobVerifier(expected);
 * for await (const chunk of source) { verifier.update(chunk); await out.write(chunk); }
 * verifier.finish();
 */
export class BlobVerifier {
  readonly #expected: BlobExpectation;
  readonly #hash: Hash = createHash('sha256');
  #lengthBytes = 0;

  constructor(expected: BlobExpectation) {
    this.#expected = expected;
  }

  update(chunk: Uint8Array): void {
    this.#lengthBytes += chunk.byteLength;
    if (this.#lengthBytes > this.#expected.lengthBytes) throw longerThanSigned(this.#expected);
    this.#hash.update(chunk);
  }

  finish(): void {
    if (this.#lengthBytes !== this.#expected.lengthBytes) throw lengthMismatch(this.#lengthBytes, this.#expected);
    const sha256 = this.#hash.digest('hex');
    if (sha256 !== this.#expected.sha256.toLowerCase()) {
      throw new FirmwardError('image_hash_mismatch', 'The image does not match its signed checksum; it was refused and not stored.', { detail: { expected: this.#expected.sha256, actual: sha256 } });
    }
  }
}

/** For an adapter that learns the length before reading (a file's size): refused before a byte is sent. */
export function lengthMismatch(actualBytes: number, expected: BlobExpectation): FirmwardError {
  if (actualBytes > expected.lengthBytes) return longerThanSigned(expected);
  return new FirmwardError('image_length_mismatch', `The image is ${actualBytes} bytes, not its signed ${expected.lengthBytes}; it was refused and not stored.`, { detail: { expected: expected.lengthBytes, actual: actualBytes } });
}

function longerThanSigned(expected: BlobExpectation): FirmwardError {
  return new FirmwardError('image_length_mismatch', `The image is longer than its signed ${expected.lengthBytes} bytes; it was refused and not stored.`, { detail: { expected: expected.lengthBytes } });
}
