/**
 * Every code a device (our agent, a bridge, the hawkBit gateway) puts on a refusal or a failure,
 * with what it means for the update — decided once, here, for the device and the hub alike
 * (docs/protocol.md, "Refusal codes").
 *
 * - `not_now`: the device's own conditions say not yet (battery, signal, in use, another update).
 *   The update waits and is offered again when the hub's checks pass; nothing is blamed.
 * - `unreachable`: the hub, the maker's repository or the network could not be reached, or answered
 *   incompletely (refused connection, timeout, cut-off response, 5xx). Nothing about the update is
 *   wrong; it waits and is offered again shortly. Never halts a home.
 * - `no_verdict`: an answer about the device's bookkeeping (it already ended this job and sends its
 *   result again, it cannot stop an install, it has not finished downloading). It says nothing about
 *   the update; the job goes on as it was.
 * - `final`: what the device verified to be wrong (signature, hash, length, model, hardware,
 *   downgrade, retracted) or a failed install or boot. The update ends as failed.
 *
 * A code not in this table (a device of another maker may send its own) counts as final: the
 * hub never turns a failure it does not understand into a retry.
 */

export type DeviceCodeKind = 'not_now' | 'unreachable' | 'no_verdict' | 'final';

export const DEVICE_CODES = {
  // ── not now: the device's own conditions ──
  battery_low: 'not_now',
  battery_unknown: 'not_now',
  power_unstable: 'not_now',
  signal_weak: 'not_now',
  signal_unstable: 'not_now',
  storage_low: 'not_now',
  insufficient_storage: 'not_now',
  device_busy: 'not_now',
  device_asleep: 'not_now',
  not_now: 'not_now',
  /** A bridge or gateway is still working on another update of this device. */
  busy: 'not_now',
  /** The device is still installing another update. */
  update_in_progress: 'not_now',

  // ── unreachable: the hub, the repository or the network ──
  /** The hub did not deliver the image within the device's retry budget. */
  hub_unreachable: 'unreachable',
  /** The maker's signed metadata could not be fetched (through the hub's mirror) or arrived cut off. */
  repository_unreachable: 'unreachable',
  /** The image could not be fetched right now (a 404 or 5xx from the hub). */
  image_unavailable: 'unreachable',
  /** The device has no record of this update (a lost download): offering it again starts it over. */
  unknown_job: 'unreachable',

  // ── no verdict: bookkeeping answers ──
  cancel_too_late: 'no_verdict',
  not_downloaded: 'no_verdict',
  job_finished: 'no_verdict',
  not_running: 'no_verdict',

  // ── final: verified wrong by the device ──
  not_signed: 'final',
  signature_invalid: 'final',
  metadata_expired: 'final',
  metadata_rollback: 'final',
  metadata_invalid: 'final',
  metadata_too_large: 'final',
  outside_delegation: 'final',
  image_hash_mismatch: 'final',
  image_length_mismatch: 'final',
  image_url_invalid: 'final',
  image_url_too_long: 'final',
  incompatible: 'final',
  model_mismatch: 'final',
  hardware_mismatch: 'final',
  not_applicable_from: 'final',
  downgrade: 'final',
  retracted: 'final',
  already_up_to_date: 'final',
  version_invalid: 'final',
  version_ambiguous: 'final',
  version_unknown: 'final',
  job_cancelled: 'final',
  declined: 'final',
  device_cancelled: 'final',
  // ── final: the install or the boot failed ──
  failed: 'final',
  internal: 'final',
  slot_changed: 'final',
  switch_failed: 'final',
  boot_failed: 'final',
  rolled_back: 'final',
  unhealthy: 'final',
  unexpected_version: 'final',
  version_unchanged: 'final',
  not_installed: 'final',
  /** A hawkBit client closed the update with a failure before its restart: it still runs its previous version. */
  install_failed: 'final',
  update_failed: 'final',
  update_refused: 'final',
  update_interrupted: 'final',
  upgrade_refused: 'final',
  upgrade_failed: 'final',
  ota_error: 'final',
} as const satisfies Record<string, DeviceCodeKind>;

/** A code a device may send; devices of ours send only these. */
export type DeviceCode = keyof typeof DEVICE_CODES;

/** A device's refusal or failure: a code of the table and a sentence for the householder. */
export interface DeviceReason {
  code: DeviceCode;
  message: string;
}

export function isDeviceCode(code: string): code is DeviceCode {
  return Object.hasOwn(DEVICE_CODES, code);
}

/**
 * What a code means for the update; a code outside the table is final.
 *
 * @example
 * deviceCodeKind('repository_unreachable'); // 'unreachable': wait, offer again, blame nobody
 * deviceCodeKind('image_hash_mismatch');    // 'final'
 */
export function deviceCodeKind(code: string | null): DeviceCodeKind {
  if (code === null) return 'final';
  return isDeviceCode(code) ? DEVICE_CODES[code] : 'final';
}

/** True for the codes that must never end an update: the device or the hub simply could not now. */
export function isTemporary(code: string | null): boolean {
  const kind = deviceCodeKind(code);
  return kind === 'not_now' || kind === 'unreachable';
}
