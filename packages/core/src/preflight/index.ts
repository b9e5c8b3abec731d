import type { EpochMs } from '../time.ts';
import { validateTimeZone } from '../window.ts';
import { PREFLIGHT_RULES } from './rules.ts';
import type { PreflightInput, PreflightVerdict, RuleResult } from './types.ts';

export { PREFLIGHT_RULES } from './rules.ts';
export type { PreflightRule } from './rules.ts';

/**
 * The preflight gate (invariant 3: never start, nor move to the install step, while a rule
 * fails). Pure: every rule runs, in a fixed order (online, power, radio, storage, busy,
 * needed-soon, window), so the dashboard can show each one; the verdict passes only when all
 * pass. Both stages ('start' before the offer, 'install' right before the install step) run
 * every rule with the same formulas. `recheckAt` is the latest of the failures' non-null
 * recheck times, since all of them must pass; null when no failure names a time (only a new
 * report from the device can change them).
 *
 * @example
 * const verdict = runPreflight({ now, stage: 'start', timeZone: 'Europe/Berlin', window: { start: '01:00', end: '05:00' },
 *   learnQuietHours: false, homeUsage: [], device, conditions, thresholds, expectedInstallSeconds: 600, imageBytes: 8_000_000 });
 * if (!verdict.pass) hold(verdict.failures, verdict.recheckAt);
 */
export function runPreflight(input: PreflightInput): PreflightVerdict {
  validateTimeZone(input.timeZone);
  const results: RuleResult[] = PREFLIGHT_RULES.map(([, rule]) => rule(input));
  const failures = results.filter((r) => !r.pass);
  let recheckAt: EpochMs | null = null;
  for (const f of failures) {
    if (f.recheckAt !== null && (recheckAt === null || f.recheckAt > recheckAt)) recheckAt = f.recheckAt;
  }
  return { pass: failures.length === 0, results, failures, recheckAt };
}
