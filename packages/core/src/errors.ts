/**
 * One error base class for the whole project (STYLE principle 7): a stable string `code`, a
 * sentence a householder understands, and a chained `cause`. Transports map codes to statuses
 * only at their edge (HTTP status, MQTT error envelope).
 */
export type ErrorCode =
  // input and lookup
  | 'invalid_input'
  | 'not_found'
  | 'payload_too_large'
  | 'unauthorized'
  | 'forbidden'
  // the request named the hub by a host name it does not answer to (the DNS rebinding guard)
  | 'host_not_allowed'
  | 'conflict'
  | 'config_invalid'
  // too many wrong passwords (or enrollment codes) in a row: the next try waits a while
  | 'too_many_attempts'
  // the hub is still starting: ask again shortly
  | 'not_ready'
  // onboarding: a wrong, expired or used enrollment code; a code of another home
  | 'enrollment_invalid'
  | 'enrollment_wrong_home'
  // a device with an update past the install step cannot be removed, moved or set aside (invariant 6)
  | 'update_in_progress'
  // a person asked Firmward to leave this device alone
  | 'device_ignored'
  // versions and compatibility (invariants 2 and 5)
  | 'version_invalid'
  | 'version_ambiguous'
  | 'incompatible'
  | 'model_mismatch'
  | 'hardware_mismatch'
  | 'not_applicable_from'
  | 'downgrade'
  | 'retracted'
  // jobs and sequencing (invariants 1, 3, 6)
  | 'illegal_transition'
  | 'home_busy'
  | 'queue_halted'
  | 'queue_not_halted'
  | 'cancel_too_late'
  | 'preflight_failed'
  | 'policy_blocks'
  | 'already_up_to_date'
  // images (invariant 4)
  | 'image_length_mismatch'
  | 'image_hash_mismatch'
  | 'image_unavailable'
  | 'image_url_invalid'
  // the maker's signed release repository (TUF): invariant 4 before a byte is downloaded
  | 'metadata_expired'
  | 'metadata_rollback'
  | 'metadata_invalid'
  | 'metadata_too_large'
  | 'signature_invalid'
  | 'outside_delegation'
  | 'not_signed'
  | 'repository_unreachable'
  // store and transport
  | 'store_failure'
  | 'gateway_failure'
  // a client (CLI, dashboard) cannot reach the hub at all
  | 'hub_unreachable'
  | 'internal';

export class FirmwardError extends Error {
  readonly code: ErrorCode;
  /** Extra, machine-readable detail (never needed to understand `message`). */
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  /**
   * @example
   * throw new FirmwardError('cancel_too_late', 'The update is already installing; it cannot be stopped safely now.');
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FirmwardError';
    this.code = code;
    this.detail = options?.detail;
  }
}

export function isFirmwardError(value: unknown, code?: ErrorCode): value is FirmwardError {
  return value instanceof FirmwardError && (code === undefined || value.code === code);
}
