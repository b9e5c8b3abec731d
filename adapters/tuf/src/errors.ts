/**
 * Every way a repository can be refused, as one of our codes with a sentence a householder (or
 * the maker's support) understands. tuf-js does not export its error classes and re-wraps some
 * failures as a generic runtime error with the original only in its message, so the class name and
 * the message are both read here — in one place, with a test for each attack (test/attacks.test.ts).
 */
import { FirmwardError } from '@firmward/core';

export function tufRefusal(repository: string, error: unknown): FirmwardError {
  if (error instanceof FirmwardError) return error;
  const name = error instanceof Error ? error.constructor.name : '';
  const text = error instanceof Error ? `${name}: ${error.message}` : String(error);
  const says = (pattern: RegExp) => pattern.test(text);
  const detail = { repository, tuf: text.slice(0, 500) };
  if (name === 'ExpiredMetadataError' || says(/is expired/)) {
    return new FirmwardError('metadata_expired', `The signed release list of ${repository} has expired, so no update from it is trusted until the maker refreshes it.`, { cause: error, detail });
  }
  if (name === 'BadVersionError' || name === 'EqualVersionError' || says(/less than current version|does not match snapshot version|doesn't match timestamp|Expected version/)) {
    return new FirmwardError('metadata_rollback', `${repository} sent an older release list than one already trusted (a replay); it was refused.`, { cause: error, detail });
  }
  if (name === 'UnsignedMetadataError' || says(/signature|signed by|threshold/i)) {
    return new FirmwardError('signature_invalid', `The release list of ${repository} is not signed by enough of the maker's trusted keys; it was refused.`, { cause: error, detail });
  }
  if (name === 'DownloadLengthMismatchError' || says(/Max length reached/)) {
    return new FirmwardError('metadata_too_large', `${repository} sent more metadata than a release list can be; it was refused.`, { cause: error, detail });
  }
  if (name === 'LengthOrHashMismatchError' || says(/Expected (hash|length)/)) {
    return new FirmwardError('metadata_invalid', `Parts of the release list of ${repository} do not belong together (mixed versions); it was refused.`, { cause: error, detail });
  }
  if (name === 'DownloadHTTPError' || name === 'TypeError' && says(/fetch failed/) || says(/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|aborted|timeout/i)) {
    return new FirmwardError('image_unavailable', `The release repository ${repository} cannot be reached right now; the hub keeps what it last verified and tries again.`, { cause: error, detail });
  }
  return new FirmwardError('metadata_invalid', `The release list of ${repository} is not valid signed metadata; it was refused.`, { cause: error, detail });
}
