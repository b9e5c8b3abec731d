/**
 * The BlobStore port on any S3-compatible store (AWS S3, MinIO, Ceph RGW, Garage, …), for hubs
 * that scale out: several hub instances share one bucket, and devices download straight from the
 * store (or a CDN in front of it) through signed URLs that expire.
 *
 * Invariant 4 on a store that readers share: nothing appears under an image's key until its
 * length and SHA-256 are verified. `put` uploads to a temporary key of its own
 * (`<prefix>incoming/<uuid>`), counting and hashing the bytes as they stream out, and only when
 * they match copies the object server-side to `<prefix>sha256/<hex>` and deletes the temporary
 * one. Why not upload to the final key directly: a single PUT is atomic on S3, but the store
 * finishes it as soon as the last byte arrives — before our own hash is known — and many
 * S3-compatible stores ignore the SHA-256 checksum header that would make them refuse it
 * themselves; a wrong image would be readable until we deleted it, and a delete could remove a
 * good image another hub just wrote. A server-side copy is one atomic write of bytes already
 * checked, and readers only ever look under `sha256/`. The checksum header is sent anyway, so
 * stores that honour it (AWS, MinIO) refuse altered bytes in transit as well.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat as statFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { create as contentDisposition } from 'content-disposition';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { BlobVerifier, SystemClock, checkBlobExpectation, lengthMismatch, resolveByteRange, sha256OfBlobKey, silentLogger } from '@firmward/ports';
import type { BlobExpectation, BlobKey, BlobStat, BlobStore, ByteRange, Clock, DownloadUrlOptions, Logger } from '@firmward/ports';

export interface S3BlobStoreOptions {
  /** The store's address (`https://minio.example:9000`); omitted for AWS itself. */
  endpoint?: string;
  /** AWS region, or whatever the store expects in the signature (MinIO and Ceph: usually `us-east-1`, Garage: `garage`). */
  region: string;
  bucket: string;
  /** Objects are kept under this prefix (e.g. `firmward/`), so a bucket can be shared. Empty by default. */
  prefix?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`: what MinIO, Ceph and Garage usually need. */
  forcePathStyle?: boolean;
  /** Signing time for download URLs (the URLs expire relative to it). */
  clock?: Clock;
  logger?: Logger;
}

/** SigV4 presigned URLs live at most 7 days. */
const MAX_URL_SECONDS = 7 * 24 * 3600;
/** A single PUT and a single server-side copy are limited to 5 GiB on S3; firmware images are far smaller. */
const MAX_IMAGE_BYTES = 5 * 1024 ** 3;

export class S3BlobStore implements BlobStore {
  readonly name: string;
  readonly #o: S3BlobStoreOptions;
  readonly #client: S3Client;
  readonly #prefix: string;
  readonly #clock: Clock;
  readonly #log: Logger;

  constructor(o: S3BlobStoreOptions) {
    this.name = `s3 ${o.bucket}${o.prefix === undefined || o.prefix === '' ? '' : `/${o.prefix}`}`;
    this.#o = o;
    this.#prefix = o.prefix ?? '';
    this.#clock = o.clock ?? new SystemClock();
    this.#log = o.logger ?? silentLogger;
    this.#client = new S3Client({
      region: o.region,
      ...(o.endpoint !== undefined && { endpoint: o.endpoint }),
      forcePathStyle: o.forcePathStyle ?? false,
      credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey },
      // The SDK's default adds CRC32 trailers in aws-chunked bodies, which many S3-compatible
      // stores refuse; checksums are sent only where we ask (the image's own SHA-256).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      logger: sdkLogger(this.#log),
    });
  }

  /** Closes the client's connections (keep-alive sockets); the store is not used afterwards. */
  stop(): void {
    this.#client.destroy();
  }

  async has(key: BlobKey): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async put(key: BlobKey, sourceFile: string, expected: BlobExpectation, signal?: AbortSignal): Promise<BlobStat> {
    checkBlobExpectation(key, expected);
    const finalKey = this.#objectKey(key);
    if (expected.lengthBytes > MAX_IMAGE_BYTES) {
      throw new FirmwardError('invalid_input', 'This image is larger than 5 GiB, more than the image store can take in one piece.', { detail: { lengthBytes: expected.lengthBytes } });
    }
    // The request announces its length before the body, so a file of the wrong size is refused
    // before a byte is sent (and the body can never run past what was announced).
    const size = await statFile(sourceFile).then((s) => s.size, (cause: unknown) => {
      throw new FirmwardError('image_unavailable', 'The downloaded image file cannot be read; nothing was stored.', { cause, detail: { sourceFile } });
    });
    if (size !== expected.lengthBytes) throw lengthMismatch(size, expected);

    const tempKey = `${this.#prefix}incoming/${randomUUID()}`;
    const verifier = new BlobVerifier(expected);
    const source = expected.lengthBytes === 0 ? Readable.from([]) : createReadStream(sourceFile, { start: 0, end: expected.lengthBytes - 1 });
    const body = Readable.from(verifiedChunks(source, verifier, sourceFile), { objectMode: false });
    try {
      await this.#guard('write', () => this.#client.send(new PutObjectCommand({
        Bucket: this.#o.bucket,
        Key: tempKey,
        Body: body,
        ContentLength: expected.lengthBytes,
        ContentType: 'application/octet-stream',
        ChecksumSHA256: Buffer.from(expected.sha256, 'hex').toString('base64'),
      }), abortable(signal)));
      // The store has the bytes we streamed; these are the ones hashed.
      verifier.finish();
      await this.#guard('write', () => this.#client.send(new CopyObjectCommand({
        Bucket: this.#o.bucket,
        Key: finalKey,
        CopySource: `${this.#o.bucket}/${tempKey.split('/').map(encodeURIComponent).join('/')}`,
      }), abortable(signal)));
    } finally {
      // Both: a body the SDK never started reading does not close the file it would have read.
      body.destroy();
      source.destroy();
      // Always, refused or not: a temporary object is never read, but it costs storage. One left by
      // a hub that died mid-put is removed by a lifecycle rule on `incoming/` (README).
      await this.#guard('write', () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: tempKey }))).catch((error: unknown) => {
        this.#log.warn('could not delete a temporary upload; a lifecycle rule on incoming/ removes it', { key: tempKey, error: String(error) });
      });
    }
    return { key, lengthBytes: expected.lengthBytes };
  }

  async stat(key: BlobKey): Promise<BlobStat | null> {
    try {
      const objectKey = this.#objectKey(key);
      const head = await this.#guard('read', () => this.#client.send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: objectKey })));
      return { key, lengthBytes: head.ContentLength ?? 0 };
    } catch (error) {
      if (isFirmwardError(error, 'not_found')) return null;
      throw error;
    }
  }

  async open(key: BlobKey, range?: ByteRange): Promise<Readable> {
    const objectKey = this.#objectKey(key);
    // The range's own shape is checked before asking: S3 ignores a malformed Range header and
    // answers with the whole object. An open end needs no length: `bytes=N-` gives the rest.
    if (range !== undefined) resolveByteRange(range, (range.end ?? range.start) + 1);
    const header = range === undefined ? undefined : `bytes=${range.start}-${range.end ?? ''}`;
    let response;
    try {
      response = await this.#guard('read', () => this.#client.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: objectKey, ...(header !== undefined && { Range: header }) })));
    } catch (error) {
      if (isFirmwardError(error, 'invalid_input')) throw rangeRefused(range, error);
      throw error;
    }
    const body = response.Body as Readable;
    if (range === undefined) return body;
    // What the store sent: `bytes first-last/total`, or the whole object when it ignored the Range.
    const sent = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.ContentRange ?? '');
    const total = sent === null ? (response.ContentLength ?? 0) : Number(sent[3]);
    const first = sent === null ? 0 : Number(sent[1]);
    const last = sent === null ? total - 1 : Number(sent[2]);
    let wanted: { start: number; end: number };
    try {
      // S3 cuts a range that runs past the end short; the port refuses it, so both adapters answer alike.
      wanted = resolveByteRange(range, total)!;
      if (first > wanted.start || last < wanted.end) {
        throw new FirmwardError('store_failure', 'The image store answered with other bytes than asked for; try again.', { detail: { asked: header, sent: response.ContentRange } });
      }
    } catch (error) {
      body.destroy();
      throw error;
    }
    // Some S3-compatible servers answer with more than asked (s3rver answers `bytes=0-0` with the
    // whole object); the hub announces the range it asked for, so exactly those bytes are returned.
    if (first === wanted.start && last === wanted.end) return body;
    return Readable.from(sliceBytes(body, wanted.start - first, wanted.end - wanted.start + 1), { objectMode: false });
  }

  async downloadUrl(key: BlobKey, options: DownloadUrlOptions): Promise<string> {
    const objectKey = this.#objectKey(key);
    const seconds = options.expiresInSeconds;
    if (!Number.isSafeInteger(seconds) || seconds < 1 || seconds > MAX_URL_SECONDS) {
      throw new FirmwardError('invalid_input', 'A download link must expire after 1 second to 7 days.', { detail: { expiresInSeconds: seconds } });
    }
    const command = new GetObjectCommand({
      Bucket: this.#o.bucket,
      Key: objectKey,
      // Signed into the URL: the store answers with this header, and nobody can change it.
      ...(options.fileName !== undefined && { ResponseContentDisposition: contentDisposition(options.fileName) }),
    });
    return getSignedUrl(this.#client, command, { expiresIn: seconds, signingDate: new Date(this.#clock.now()) });
  }

  async delete(key: BlobKey): Promise<void> {
    const objectKey = this.#objectKey(key);
    await this.#guard('write', () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: objectKey })));
  }

  #objectKey(key: BlobKey): string {
    return `${this.#prefix}sha256/${sha256OfBlobKey(key)}`;
  }

  /** One request, its failure turned into a FirmwardError with a sentence; refusals of ours pass through. */
  async #guard<T>(op: 'read' | 'write', request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw this.#mapError(op, error);
    }
  }

  #mapError(op: 'read' | 'write', error: unknown): unknown {
    if (isFirmwardError(error) || (error instanceof Error && error.name === 'AbortError')) return error;
    const cause = error instanceof Error && error.cause !== undefined && isFirmwardError(error.cause) ? error.cause : null;
    // A refusal from our own body stream (a wrong length, an unreadable file) arrives wrapped by the SDK.
    if (cause !== null) return cause;
    const detail = { store: this.name, ...(error instanceof S3ServiceException && { s3Code: error.name, httpStatus: error.$metadata.httpStatusCode }) };
    const name = error instanceof S3ServiceException ? error.name : '';
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (name === 'NoSuchKey' || name === 'NotFound' || (status === 404 && name !== 'NoSuchBucket')) {
      return new FirmwardError('not_found', 'This firmware image is not in the image store.', { cause: error, detail });
    }
    if (name === 'InvalidRange' || status === 416) {
      return new FirmwardError('invalid_input', 'The requested bytes are not inside this image.', { cause: error, detail });
    }
    if (name === 'NoSuchBucket') {
      return new FirmwardError('store_failure', `The image store has no bucket "${this.#o.bucket}"; create it or correct the configuration.`, { cause: error, detail });
    }
    if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) {
      return new FirmwardError('store_failure', 'The image store refused the hub\'s access key; check the access key, secret and bucket permissions.', { cause: error, detail });
    }
    if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch' || name === 'InvalidDigest') {
      return new FirmwardError('image_hash_mismatch', 'The image does not match its signed checksum; it was refused and not stored.', { cause: error, detail });
    }
    const where = this.#o.endpoint ?? `AWS S3 (${this.#o.region})`;
    return new FirmwardError('store_failure', `The hub could not ${op} the image store at ${where} right now.`, { cause: error, detail });
  }
}

/** The source file's bytes, each counted and hashed as the upload takes it; refusals end the upload. */
async function* verifiedChunks(source: Readable, verifier: BlobVerifier, sourceFile: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) {
      verifier.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  } catch (error) {
    if (!isFirmwardError(error)) {
      throw new FirmwardError('image_unavailable', 'The downloaded image file cannot be read; nothing was stored.', { cause: error, detail: { sourceFile } });
    }
    throw error;
  } finally {
    source.destroy();
  }
}

/** `length` bytes of `source` after skipping `skip`; the rest is not read. */
async function* sliceBytes(source: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let toSkip = skip;
  let toGive = length;
  try {
    for await (const chunk of source) {
      let bytes = chunk as Buffer;
      if (toSkip > 0) {
        const skipped = Math.min(toSkip, bytes.length);
        bytes = bytes.subarray(skipped);
        toSkip -= skipped;
      }
      if (bytes.length > toGive) bytes = bytes.subarray(0, toGive);
      toGive -= bytes.length;
      if (bytes.length > 0) yield bytes;
      if (toGive === 0) return;
    }
  } finally {
    source.destroy();
  }
}

function abortable(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

function rangeRefused(range: ByteRange | undefined, cause: FirmwardError): FirmwardError {
  return new FirmwardError('invalid_input', `Bytes ${range?.start ?? 0}–${range?.end ?? 'end'} are not inside this image.`, { cause, detail: { range } });
}

/** The SDK's own warnings (e.g. a streaming request it will not retry) go to our logger, not the console. */
function sdkLogger(log: Logger) {
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (...content: unknown[]) => log[level](content.map(String).join(' '));
  return { trace: () => undefined, debug: () => undefined, info: line('info'), warn: line('warn'), error: line('error') };
}
