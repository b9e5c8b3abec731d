/**
 * The only place FirmwardError codes become HTTP statuses (STYLE principle 8: transport mapping
 * only at the edge). Anything without an entry is the hub's own fault: 500.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { FirmwardError } from '@firmward/core';
import type { ErrorCode } from '@firmward/core';

export const STATUS_OF_CODE: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  // Misdirected Request: this server does not answer for that host name.
  host_not_allowed: 421,
  not_found: 404,
  conflict: 409,
  home_busy: 409,
  queue_not_halted: 409,
  queue_halted: 409,
  cancel_too_late: 409,
  illegal_transition: 409,
  payload_too_large: 413,
  too_many_attempts: 429,
  not_ready: 503,
  enrollment_invalid: 400,
  enrollment_wrong_home: 400,
  update_in_progress: 409,
  device_ignored: 422,
  preflight_failed: 422,
  policy_blocks: 422,
  incompatible: 422,
  model_mismatch: 422,
  hardware_mismatch: 422,
  not_applicable_from: 422,
  downgrade: 422,
  retracted: 422,
  already_up_to_date: 422,
  version_invalid: 422,
  version_ambiguous: 422,
  // The maker's repository or image cannot be had or trusted right now: the hub is a gateway to it.
  image_unavailable: 502,
  repository_unreachable: 502,
  gateway_failure: 502,
  not_signed: 502,
  image_length_mismatch: 502,
  image_hash_mismatch: 502,
};

/** The body of every error response: `{ error: { code, message } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Internal failures never leak their details (paths, SQL) to the caller; the hub logs them. */
const INTERNAL_MESSAGE = 'Something went wrong inside the hub; the details are in its log.';

/**
 * Status and body for anything a handler threw.
 *
 * @example
 * const { status, body } = errorResponse(new FirmwardError('not_found', 'There is no device "x".'));
 * // status === 404
 */
export function errorResponse(error: unknown): { status: ContentfulStatusCode; body: ErrorBody; internal: boolean } {
  if (error instanceof FirmwardError) {
    const status = STATUS_OF_CODE[error.code];
    if (status !== undefined) return { status, body: { error: { code: error.code, message: error.message } }, internal: false };
    return { status: 500, body: { error: { code: error.code, message: error.message } }, internal: true };
  }
  return { status: 500, body: { error: { code: 'internal', message: INTERNAL_MESSAGE } }, internal: true };
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}
