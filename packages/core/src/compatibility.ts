/**
 * The single gate for invariant 2 (never offer an image to a device outside its signed model /
 * hardware / version range) and for the "never downgrade" half of invariant 5. The hub's planner,
 * the hub's "update now" and the device agent all call this one function, so there is one
 * definition of "this release may go on this device".
 */
import type { Device } from './device.ts';
import { FirmwardError } from './errors.ts';
import type { Release } from './release.ts';
import type { ParsedVersion } from './version.ts';
import { compareOrRefuse, parseVersion } from './version.ts';

export type CompatibilityCode =
  | 'model_mismatch'
  | 'hardware_mismatch'
  | 'not_applicable_from'
  | 'downgrade'
  | 'retracted'
  | 'version_ambiguous'
  | 'version_invalid'
  | 'already_up_to_date';

export type CompatibilityResult = { ok: true } | { ok: false; code: CompatibilityCode; message: string };

export type CompatibilityDevice = Pick<Device, 'vendor' | 'model' | 'hardwareRevision' | 'firmwareVersion'>;

export type CompatibilityRelease = Pick<
  Release, 'vendor' | 'model' | 'hardwareRevisions' | 'version' | 'applicableFrom' | 'applicableTo' | 'retracted'
>;

export interface CompatibilityOptions {
  /** A (memoising) version reader; the planner passes one so each string is read once per plan. */
  parse?: (raw: string) => ParsedVersion;
}

/**
 * Which check stopped the release, in the order they run. The planner uses it to tell "a newer
 * release exists but may not go on yet" (retracted, range) from "nothing newer" (version).
 */
export type CompatibilityGate = 'model' | 'hardware' | 'version' | 'retracted' | 'range' | 'passed';

export interface CompatibilityAssessment {
  result: CompatibilityResult;
  gate: CompatibilityGate;
}

const OK: CompatibilityResult = Object.freeze({ ok: true });
const PASSED: CompatibilityAssessment = Object.freeze({ result: OK, gate: 'passed' });

function refuse(gate: CompatibilityGate, code: CompatibilityCode, message: string): CompatibilityAssessment {
  return { result: { ok: false, code, message }, gate };
}

/** Same refusal, its sentence left unwritten: for bulk callers that explain only the one they show. */
const SILENT = new Map<string, CompatibilityAssessment>();
function silent(gate: CompatibilityGate, code: CompatibilityCode): CompatibilityAssessment {
  const key = `${gate}/${code}`;
  let hit = SILENT.get(key);
  if (hit === undefined) {
    // Shared between calls, so frozen: nobody can write a message into another caller's answer.
    hit = Object.freeze({ result: Object.freeze({ ok: false, code, message: '' }), gate });
    SILENT.set(key, hit);
  }
  return hit;
}

/** "A", "A or B", "A, B or C". */
export function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1] ?? ''}`;
}

/** A version as read: the parts, or why it could not be read. */
export type ReadVersion = ParsedVersion | FirmwardError;

/** A release with its version and range read once, so checking it against many devices reads nothing again. */
export interface PreparedRelease<R extends CompatibilityRelease = CompatibilityRelease> {
  release: R;
  version: ReadVersion;
  from: ReadVersion | null;
  to: ReadVersion | null;
}

/** Reads a version without throwing: the parts, or the `version_invalid` error as a value. */
export function readVersion(raw: string, parse: (raw: string) => ParsedVersion = parseVersion): ReadVersion {
  try {
    return parse(raw);
  } catch (error) {
    if (error instanceof FirmwardError) return error;
    throw error;
  }
}

export function prepareRelease<R extends CompatibilityRelease>(release: R, parse: (raw: string) => ParsedVersion = parseVersion): PreparedRelease<R> {
  return {
    release,
    version: readVersion(release.version, parse),
    from: release.applicableFrom === undefined ? null : readVersion(release.applicableFrom, parse),
    to: release.applicableTo === undefined ? null : readVersion(release.applicableTo, parse),
  };
}

function unreadable(gate: CompatibilityGate, what: string, raw: string): CompatibilityAssessment {
  return refuse(gate, 'version_invalid', `Firmward cannot read ${what} ("${raw}").`);
}

function unorderable(gate: CompatibilityGate, error: FirmwardError): CompatibilityAssessment {
  return refuse(gate, error.code === 'version_invalid' ? 'version_invalid' : 'version_ambiguous', error.message);
}

/**
 * `assessCompatibility` on a prepared release and an already-read installed version (the
 * planner's fast path; same checks, same order, same answers). With `explain: false` a refusal
 * carries an empty message (gate and code are the same); the planner words only the one it shows.
 */
export function assessPrepared(
  prepared: PreparedRelease,
  device: CompatibilityDevice,
  installed: ReadVersion,
  explain = true,
): CompatibilityAssessment {
  const { release } = prepared;
  const say = (gate: CompatibilityGate, code: CompatibilityCode, message: () => string): CompatibilityAssessment =>
    explain ? refuse(gate, code, message()) : silent(gate, code);
  // Invariant 2: exact vendor and model — exact strings, no case folding, no aliases.
  if (release.vendor !== device.vendor || release.model !== device.model) {
    return say('model', 'model_mismatch', () => `This release is for the ${release.vendor} ${release.model}, not the ${device.vendor} ${device.model}.`);
  }
  if (!release.hardwareRevisions.includes(device.hardwareRevision)) {
    return say('hardware', 'hardware_mismatch', () => (release.hardwareRevisions.length === 0
      ? `This release for the ${release.vendor} ${release.model} names no hardware revision, so it goes on no device.`
      : `This release is for the ${release.vendor} ${release.model} hardware ${release.hardwareRevisions.length > 1 ? 'revisions' : 'revision'} ${orList(release.hardwareRevisions)}; this device is revision ${device.hardwareRevision}.`));
  }

  if (installed instanceof FirmwardError) return unreadable('version', 'the version this device reports', device.firmwareVersion);
  const target = prepared.version;
  if (target instanceof FirmwardError) return unreadable('version', 'the version of this release', release.version);

  // Invariant 5: strictly newer only; equal is "up to date", older is a downgrade.
  const newer = compareOrRefuse(target, installed);
  if (newer instanceof FirmwardError) return unorderable('version', newer);
  if (newer === 0) return say('version', 'already_up_to_date', () => `Up to date (${installed.raw}).`);
  if (newer < 0) {
    return say('version', 'downgrade', () => `Release ${target.raw} is older than the ${installed.raw} this device runs; Firmward never goes back to an older version.`);
  }

  // The maker withdrew it: never offered, whatever else holds.
  if (release.retracted) return say('retracted', 'retracted', () => `Release ${target.raw} is retracted by the maker.`);

  // Invariant 2: the signed version range the release may be applied on, both ends inclusive.
  const { from, to } = prepared;
  if (from !== null) {
    if (from instanceof FirmwardError) return unreadable('range', "the maker's lowest version this release may be installed on", release.applicableFrom ?? '');
    const cmp = compareOrRefuse(installed, from);
    if (cmp instanceof FirmwardError) return unorderable('range', cmp);
    if (cmp < 0) {
      return say('range', 'not_applicable_from', () => `The maker does not allow updating directly from ${installed.raw} (needs ${from.raw} or newer).`);
    }
  }
  if (to !== null) {
    if (to instanceof FirmwardError) return unreadable('range', "the maker's highest version this release may be installed on", release.applicableTo ?? '');
    const cmp = compareOrRefuse(installed, to);
    if (cmp instanceof FirmwardError) return unorderable('range', cmp);
    if (cmp > 0) {
      return say('range', 'not_applicable_from', () => `The maker does not allow updating directly from ${installed.raw} (this release is only for ${to.raw} or older).`);
    }
  }
  return PASSED;
}

/**
 * `checkCompatibility` plus which gate decided. Checks run in this order, and the first that fails
 * decides: vendor + model, hardware revision, strictly newer than installed, not retracted,
 * installed version inside [applicableFrom, applicableTo].
 */
export function assessCompatibility(
  release: CompatibilityRelease,
  device: CompatibilityDevice,
  options: CompatibilityOptions = {},
): CompatibilityAssessment {
  const parse = options.parse ?? parseVersion;
  return assessPrepared(prepareRelease(release, parse), device, readVersion(device.firmwareVersion, parse));
}

/**
 * May this release be offered to this device? `{ ok: true }` only when every condition of
 * invariants 2 and 5 holds; otherwise a code and a sentence for the householder.
 *
 * @example
 * const r = checkCompatibility(release, device);
 * if (!r.ok) return reason(r.code, r.message); // "This release is for the Acme Plug hardware revision B; this device is revision A."
 */
export function checkCompatibility(
  release: CompatibilityRelease,
  device: CompatibilityDevice,
  options: CompatibilityOptions = {},
): CompatibilityResult {
  return assessCompatibility(release, device, options).result;
}
