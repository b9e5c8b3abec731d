/**
 * Firmware version numbers, the way makers actually write them, and the one rule that matters for
 * safety: a comparison we cannot be sure of is refused, never guessed (invariant 5: never
 * downgrade — a wrong guess could install an older image, or block a needed fix silently).
 *
 * | scheme     | examples                                           | order                                                     |
 * |------------|----------------------------------------------------|-----------------------------------------------------------|
 * | `semver`   | 1.2.3, 1.2.3-rc.1, 1.2.3+abc, v1.2.3-beta.2         | SemVer 2.0 precedence; a pre-release is older than its    |
 * |            |                                                    | release; build metadata (+…) is ignored for ordering      |
 * | `dotted`   | 4.10.2.17, 1.2, 7, 1.2.3.4-rc.1                     | part by part, numerically; missing parts count as 0       |
 * |            |                                                    | (1.2 = 1.2.0); pre-releases as in SemVer                  |
 * | `date`     | 20260315, 2026.03.15, 2026-03-15, 20260315.2        | by calendar date, then by the optional .N build           |
 * |            |                                                    | (no build = that day's first build, 0)                    |
 * | `prefixed` | v2.4.1, V2.4.1-build.17, v2.4.1_b17, v2.4.1-b17     | numbers as `dotted`, then by build number                 |
 *
 * `semver`, `dotted` and `prefixed` all count in plain numbers and compare with each other
 * (1.2 = 1.2.0 = v1.2.0). Refused with `version_ambiguous`:
 *
 * | pair                                                   | why it is refused                                                |
 * |--------------------------------------------------------|------------------------------------------------------------------|
 * | a date stamp vs anything but a date stamp              | 20260315 vs 3.2: different numbering                             |
 * | year-led numbers vs other numbers (2026.1 vs 3.2)      | a maker switching to calendar numbering, not a bigger number     |
 * | a pre-release vs a build-suffixed version              | "-build.17" means "before" in SemVer and "after" in build schemes |
 * | v2.4.1 vs v2.4.1-build.17 (same numbers, one build)    | the plain one may be the final of those builds or come before   |
 *
 * Anything else — empty, letters where numbers belong, over-long — is `version_invalid`.
 * Leading and trailing spaces are ignored; a leading `v`/`V` is accepted on every numeric scheme.
 */
import { FirmwardError } from './errors.ts';

export type VersionScheme = 'semver' | 'dotted' | 'date' | 'prefixed';

export interface ParsedVersion {
  /** The text as written (trimmed). */
  raw: string;
  scheme: VersionScheme;
  /** The numeric core with trailing zeros removed (1.2.0 → [1, 2]); for `date`: [year, month, day]. */
  numbers: readonly number[];
  /** SemVer pre-release identifiers (numbers where the identifier is numeric); null when not a pre-release. */
  prerelease: readonly (string | number)[] | null;
  /** The build number of the `prefixed` and `date` schemes; null when none is written. */
  build: number | null;
  /** The first number looks like a year (calendar numbering such as 2026.1). Always true for `date`. */
  yearLed: boolean;
}

export type VersionOrder = -1 | 0 | 1;

export type CompareResult = { ok: true; order: VersionOrder } | { ok: false; error: FirmwardError };

/** Longer than any real version string; bounds the work done on untrusted input (STYLE rule 9). */
const MAX_VERSION_LENGTH = 64;
/** Keeps every part a safe integer. */
const MAX_PART_DIGITS = 15;
const MIN_YEAR = 1970;
const MAX_YEAR = 2199;

const NUMERIC_CORE = /^[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
// Build suffixes: after a v-prefix any of -build.17, -build17, -b17, -b.17, _b17, _build.17;
// the underscore forms also without the prefix (an underscore has no SemVer meaning).
const PREFIXED_BUILD = /^[vV](\d+(?:\.\d+)*)[-_](?:build|b)[-_.]?(\d+)$/i;
const UNDERSCORE_BUILD = /^(\d+(?:\.\d+)*)_(?:build|b)[-_.]?(\d+)$/i;
const DATE_COMPACT = /^(\d{4})(\d{2})(\d{2})(?:\.(\d+))?$/;
const DATE_SEPARATED = /^(\d{4})([.-])(\d{2})\2(\d{2})(?:\.(\d+))?$/;

function invalid(raw: string): FirmwardError {
  return new FirmwardError('version_invalid', `Firmward cannot read the version "${raw}".`, { detail: { version: raw } });
}

function toInt(digits: string, raw: string): number {
  if (digits.length > MAX_PART_DIGITS) throw invalid(raw);
  return Number(digits);
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (year < MIN_YEAR || year > MAX_YEAR || month < 1 || month > 12 || day < 1) return false;
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0;
  return day <= days;
}

function trimZeros(parts: number[]): number[] {
  let end = parts.length;
  while (end > 0 && parts[end - 1] === 0) end--;
  return parts.slice(0, end);
}

function numbersOf(core: string, raw: string): { numbers: number[]; yearLed: boolean } {
  const texts = core.split('.');
  const parts = texts.map((t) => toInt(t, raw));
  const first = texts[0] ?? '';
  const firstValue = parts[0] ?? 0;
  return { numbers: trimZeros(parts), yearLed: first.length === 4 && firstValue >= MIN_YEAR && firstValue <= MAX_YEAR };
}

function tryDate(text: string, raw: string): ParsedVersion | null {
  const compact = DATE_COMPACT.exec(text);
  const separated = compact ? null : DATE_SEPARATED.exec(text);
  const [y, m, d, b] = compact
    ? [compact[1], compact[2], compact[3], compact[4]]
    : separated
      ? [separated[1], separated[3], separated[4], separated[5]]
      : [];
  if (y === undefined || m === undefined || d === undefined) return null;
  const year = Number(y);
  const month = Number(m);
  const day = Number(d);
  // An 8-digit number that is not a real date (e.g. 12345678) is an ordinary build counter.
  if (!isCalendarDate(year, month, day)) return null;
  return { raw, scheme: 'date', numbers: [year, month, day], prerelease: null, build: b === undefined ? null : toInt(b, raw), yearLed: true };
}

/**
 * Reads a version string into its scheme and parts. Throws `version_invalid` when it fits no
 * scheme in the table above.
 *
 * @example
 * parseVersion('V2.4.1-build.17'); // { scheme: 'prefixed', numbers: [2, 4, 1], build: 17, … }
 */
export function parseVersion(raw: string): ParsedVersion {
  if (typeof raw !== 'string') throw invalid(String(raw));
  const text = raw.trim();
  if (text.length === 0 || text.length > MAX_VERSION_LENGTH) throw invalid(text);

  const date = tryDate(text, text);
  if (date) return date;

  const build = PREFIXED_BUILD.exec(text) ?? UNDERSCORE_BUILD.exec(text);
  if (build) {
    const { numbers, yearLed } = numbersOf(build[1] ?? '', text);
    return { raw: text, scheme: 'prefixed', numbers, prerelease: null, build: toInt(build[2] ?? '', text), yearLed };
  }

  const m = NUMERIC_CORE.exec(text);
  if (!m) throw invalid(text);
  const core = m[1] ?? '';
  const pre = m[2];
  const { numbers, yearLed } = numbersOf(core, text);
  const prerelease = pre === undefined
    ? null
    : pre.split('.').map((id) => (/^\d+$/.test(id) ? toInt(id, text) : id));
  const scheme: VersionScheme = /^[vV]/.test(text) && pre === undefined
    ? 'prefixed'
    : core.split('.').length === 3 ? 'semver' : 'dotted';
  return { raw: text, scheme, numbers, prerelease, build: null, yearLed };
}

/**
 * A memoising `parseVersion` for callers that read the same strings many times (the planner reads
 * each release's version once per plan, not once per device). Failures are remembered too.
 */
export function createVersionParser(): (raw: string) => ParsedVersion {
  const cache = new Map<string, ParsedVersion | FirmwardError>();
  return (raw: string): ParsedVersion => {
    let hit = cache.get(raw);
    if (hit === undefined) {
      try {
        hit = parseVersion(raw);
      } catch (error) {
        if (!(error instanceof FirmwardError)) throw error;
        hit = error;
      }
      cache.set(raw, hit);
    }
    if (hit instanceof FirmwardError) throw hit;
    return hit;
  };
}

function sign(n: number): VersionOrder {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareNumbers(a: readonly number[], b: readonly number[]): VersionOrder {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return sign(d);
  }
  return 0;
}

/** SemVer 2.0 §11: numeric identifiers compare numerically and sort before alphanumeric ones. */
function comparePrerelease(a: readonly (string | number)[], b: readonly (string | number)[]): VersionOrder {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return sign(x - y);
    if (typeof x === 'number') return -1;
    if (typeof y === 'number') return 1;
    return x !== undefined && y !== undefined && x < y ? -1 : 1;
  }
  return sign(a.length - b.length);
}

function ambiguous(a: ParsedVersion, b: ParsedVersion, why: string): FirmwardError {
  return new FirmwardError('version_ambiguous', `Cannot tell whether ${a.raw} is newer than ${b.raw}: ${why}.`, {
    detail: { a: a.raw, b: b.raw, schemes: [a.scheme, b.scheme] },
  });
}

/** Why this pair must not be compared, or null when the order is certain (see the table above). */
function refusal(a: ParsedVersion, b: ParsedVersion): FirmwardError | null {
  if ((a.scheme === 'date') !== (b.scheme === 'date') || a.yearLed !== b.yearLed) {
    return ambiguous(a, b, 'they use different numbering');
  }
  if (a.scheme === 'date') return null;
  const aBuild = a.build !== null;
  const bBuild = b.build !== null;
  if ((aBuild && b.prerelease !== null) || (bBuild && a.prerelease !== null)) {
    return ambiguous(a, b, 'one is a test version, the other a numbered build');
  }
  if (aBuild !== bBuild && compareNumbers(a.numbers, b.numbers) === 0) {
    return ambiguous(a, b, 'only one of them names a build, so which came first is not written anywhere');
  }
  return null;
}

function order(a: ParsedVersion, b: ParsedVersion): VersionOrder {
  const byNumbers = compareNumbers(a.numbers, b.numbers);
  if (byNumbers !== 0) return byNumbers;
  if (a.scheme === 'date') return sign((a.build ?? 0) - (b.build ?? 0));
  // Same numbers: a pre-release comes before its release (SemVer §11); builds order among themselves.
  if (a.prerelease !== null || b.prerelease !== null) {
    if (a.prerelease === null) return 1;
    if (b.prerelease === null) return -1;
    return comparePrerelease(a.prerelease, b.prerelease);
  }
  if (a.build !== null && b.build !== null) return sign(a.build - b.build);
  return 0;
}

function parsed(v: string | ParsedVersion): ParsedVersion {
  return typeof v === 'string' ? parseVersion(v) : v;
}

/**
 * The comparison without throwing or allocating: the order, or the refusal as a value. For hot
 * loops such as the planner (100,000 devices × their model's releases).
 */
export function compareOrRefuse(a: ParsedVersion, b: ParsedVersion): VersionOrder | FirmwardError {
  return refusal(a, b) ?? order(a, b);
}

/**
 * -1 when `a` is older than `b`, 0 when they name the same version, 1 when `a` is newer. Throws
 * `version_invalid` for text no scheme reads and `version_ambiguous` when the two cannot be
 * ordered with certainty (invariant 5: a refusal is safe, a guess is not).
 *
 * @example
 * compareVersions('1.2', '1.2.0');        // 0
 * compareVersions('v2.4.1_b17', 'v2.4.1-build.9'); // 1
 * compareVersions('2026.1', '3.2');       // throws version_ambiguous
 */
export function compareVersions(a: string | ParsedVersion, b: string | ParsedVersion): VersionOrder {
  const pa = parsed(a);
  const pb = parsed(b);
  const refused = refusal(pa, pb);
  if (refused) throw refused;
  return order(pa, pb);
}

/**
 * `compareVersions` for callers that must not throw (dashboard read models, bulk planning).
 *
 * @example
 * const r = tryCompareVersions('20260315', '1.2.3');
 * if (!r.ok) show(r.error.message);
 */
export function tryCompareVersions(a: string | ParsedVersion, b: string | ParsedVersion): CompareResult {
  try {
    return { ok: true, order: compareVersions(a, b) };
  } catch (error) {
    if (error instanceof FirmwardError) return { ok: false, error };
    throw error;
  }
}
