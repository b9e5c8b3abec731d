/**
 * tuf-js refusals as FirmwardErrors, in one place (tuf-notes: its error classes are not exported,
 * and some are re-wrapped as a generic runtime error with the original only in the message). The
 * mapping reads class names and messages; `test/client-errors.test.ts` pins it to real refusals.
 */
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { ErrorCode } from '@firmward/core';

/** What the client was doing when it failed: loading metadata or downloading an image. */
export type ClientStep = 'metadata' | 'image';

const BY_CLASS: Readonly<Record<string, ErrorCode>> = {
  ExpiredMetadataError: 'metadata_expired',
  BadVersionError: 'metadata_rollback',
  EqualVersionError: 'metadata_rollback',
  UnsignedMetadataError: 'signature_invalid',
};

function byMessage(message: string, step: ClientStep): ErrorCode | undefined {
  if (/is expired/i.test(message)) return 'metadata_expired';
  if (/less than current version|does not match snapshot version|doesn't match timestamp|Expected version/i.test(message)) return 'metadata_rollback';
  if (/signed by \d+\/\d+|failed to verify|no signature/i.test(message)) return 'signature_invalid';
  if (/exceeded|too large|length mismatch|Length mismatch/i.test(message)) return step === 'image' ? 'image_length_mismatch' : 'metadata_too_large';
  if (/hash/i.test(message)) return step === 'image' ? 'image_hash_mismatch' : 'metadata_invalid';
  return undefined;
}

const SENTENCES: Readonly<Partial<Record<ErrorCode, string>>> = {
  metadata_expired: 'The repository\'s signed metadata has expired: run "firmward release refresh" and publish again.',
  metadata_rollback: 'The repository offers older metadata than the client already trusts (a rollback), so it was refused.',
  signature_invalid: 'The repository\'s metadata is not signed by enough of the keys the trusted root names, so it was refused.',
  metadata_too_large: 'A metadata file is larger than the client accepts, so it was refused.',
  metadata_invalid: 'The repository\'s metadata does not agree with itself, so it was refused.',
  image_length_mismatch: 'The image is not the length its signed metadata says, so it was refused.',
  image_hash_mismatch: 'The image does not match the hash in its signed metadata, so it was refused.',
  image_unavailable: 'The image could not be downloaded from the repository.',
  not_found: 'The repository did not answer with the file the client asked for.',
};

/** The FirmwardError for anything tuf-js threw; `what` names the file or image for the message. */
export function fromClientError(error: unknown, step: ClientStep, what: string): FirmwardError {
  if (isFirmwardError(error)) return error;
  const name = error instanceof Error ? error.constructor.name : '';
  const message = error instanceof Error ? error.message : String(error);
  let code: ErrorCode | undefined = BY_CLASS[name];
  if (code === undefined && name === 'DownloadHTTPError') code = step === 'image' ? 'image_unavailable' : 'not_found';
  if (code === undefined && name === 'DownloadLengthMismatchError') code = step === 'image' ? 'image_length_mismatch' : 'metadata_too_large';
  if (code === undefined && name === 'LengthOrHashMismatchError') code = step === 'image' ? 'image_hash_mismatch' : 'metadata_invalid';
  code ??= byMessage(message, step);
  if (code === undefined && /fetch failed|ECONNREFUSED|ENOTFOUND|network/i.test(`${message} ${String((error as { cause?: unknown } | undefined)?.cause)}`)) {
    code = step === 'image' ? 'image_unavailable' : 'not_found';
  }
  code ??= 'metadata_invalid';
  const sentence = SENTENCES[code] ?? 'The repository was refused.';
  return new FirmwardError(code, `${what}: ${sentence}`, { cause: error, detail: { clientError: name, clientMessage: message } });
}
