/**
 * A home's settings as a person sets them, checked with every problem reported at once, each in the
 * core's own words (the same checks the preflight gate relies on).
 */
import { FirmwardError, parseTimeOfDay, validateTimeZone } from '@firmward/core';
import type { HomeSettings } from '@firmward/core';

export function checkHomeSettings(s: HomeSettings): void {
  const problems: string[] = [];
  const check = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      problems.push(error instanceof Error ? error.message.replace(/\.$/, '') : String(error));
    }
  };
  check(() => validateTimeZone(s.timeZone));
  check(() => parseTimeOfDay(s.window.start));
  check(() => parseTimeOfDay(s.window.end));
  if (s.thresholds.minBatteryPercent < 0 || s.thresholds.minBatteryPercent > 100) problems.push('battery threshold must be 0–100 %');
  if (s.soakSeconds < 0) problems.push('soak time cannot be negative');
  if (problems.length) throw new FirmwardError('invalid_input', `These settings cannot be used: ${problems.join('; ')}.`);
}

/** The fields of a patch that were given (an absent field keeps the stored value). */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
