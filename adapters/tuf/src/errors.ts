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
  if (name === 'DownloadHTTPError' || isNetworkFailure(error)) {
    return new FirmwardError('repository_unreachable', `The release repository ${repository} cannot be reached right now; what was verified before stays, and it is tried again.`, { cause: error, detail });
  }
  if (isCutOffJson(error)) {
    return new FirmwardError('repository_unreachable', `The release list of ${repository} arrived cut off or damaged; it is fetched again.`, { cause: error, detail });
  }
  return new FirmwardError('metadata_invalid', `The release list of ${repository} is not valid signed metadata; it was refused.`, { cause: error, detail });
}

/** Node's and undici's codes for a connection that could not be made or broke off. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED',
]);

/**
 * The network, not the repository: refused, reset, timed out, or a body cut off mid-way (undici
 * says "terminated", its cause "other side closed"). Read through the whole cause chain, since
 * fetch wraps the socket's error.
 */
export function isNetworkFailure(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
    if (e instanceof TypeError && /^(fetch failed|terminated)$/.test(e.message)) return true;
    // tuf-js re-wraps some failures ("Unable to load targets error TypeError: fetch failed"): the original is only in the text.
    if (/TypeError: (fetch failed|terminated)|ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|socket hang up|other side closed|aborted|timeout/i.test(e.message)) return true;
  }
  return false;
}

/**
 * Bytes that are not JSON at all: a response cut short or damaged on the way (a cut-off JSON
 * text fails in many places, not only at its end), not metadata that is wrong. Valid JSON that is
 * not valid signed metadata stays metadata_invalid. Waiting is safe here: nothing unparseable can
 * be trusted, and the hub offers only what it verified itself.
 */
function isCutOffJson(error: unknown): boolean {
  if (error instanceof SyntaxError) return /JSON/.test(error.message);
  return error instanceof Error && /SyntaxError: .*JSON/.test(error.message);
}
