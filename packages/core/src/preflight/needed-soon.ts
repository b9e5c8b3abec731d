import { DateTime } from 'luxon';
import type { UsageSchedule } from '../device.ts';
import { FirmwardError } from '../errors.ts';
import type { PreflightThresholds } from '../thresholds.ts';
import type { EpochMs, Interval } from '../time.ts';
import { DAY_MS } from '../time.ts';
import { addDays, localDate, parseTimeOfDay, weekdayOf, zonedInstant } from '../window.ts';

/*
 * DESIGN rule "not when you will need the device shortly": explicit schedules first, otherwise a
 * prediction from the device's own usage history. Everything is in the home's zone via luxon, so
 * "the same time yesterday" keeps its wall-clock time across a DST change.
 */

/** One scheduled use that overlaps the interval we want the device for. */
export interface ScheduledConflict {
  use: Interval;
  /** Latest end among every overlapping scheduled use: before that the rule cannot pass. */
  clearAt: EpochMs;
}

/**
 * The first scheduled use overlapping [from, to), or null. Weekdays are the home's (0 = Sunday);
 * an empty list means every day; a schedule whose end is not after its start runs past midnight
 * (start == end: the whole day). The weekday is that of the day the use starts.
 */
export function findScheduledConflict(schedules: readonly UsageSchedule[], from: EpochMs, to: EpochMs, timeZone: string): ScheduledConflict | null {
  const today = localDate(from, timeZone);
  const lastDay = Math.ceil((to - from) / DAY_MS) + 1;
  const hits: Interval[] = [];
  for (const schedule of schedules) {
    for (const w of schedule.weekdays) {
      if (!Number.isInteger(w) || w < 0 || w > 6) {
        throw new FirmwardError('invalid_input', `A schedule names weekday ${String(w)}; use 0 (Sunday) to 6 (Saturday).`, { detail: { weekdays: schedule.weekdays } });
      }
    }
    const start = parseTimeOfDay(schedule.start).minuteOfDay;
    const end = parseTimeOfDay(schedule.end).minuteOfDay;
    // From the day before (a use that crossed midnight into today) to the day the interval ends.
    for (let k = -1; k <= lastDay; k++) {
      const day = addDays(today, k);
      if (schedule.weekdays.length > 0 && !schedule.weekdays.includes(weekdayOf(day))) continue;
      const s = zonedInstant(day, start, timeZone, 'start');
      const e = zonedInstant(end > start ? day : addDays(day, 1), end, timeZone, 'end');
      if (s < e && s < to && e > from) hits.push({ start: s, end: e });
    }
  }
  if (hits.length === 0) return null;
  hits.sort((a, b) => a.start - b.start);
  const first = hits[0] as Interval;
  return { use: first, clearAt: Math.max(...hits.map((h) => h.end)) };
}

export type UsagePrediction =
  | { kind: 'no-history'; daysWithHistory: number }
  | {
      kind: 'predicted';
      daysWithHistory: number;
      daysWithUse: number;
      likelihood: number;
      /** On the typical day with use, moved to today: when the use starts and ends. */
      typicalStart: EpochMs | null;
      typicalEnd: EpochMs | null;
    };

/**
 * How likely the device is in use during [from, to), from its busy periods. For each past day d
 * of the look-back, the same local-time interval d days earlier is checked for any use; only
 * days on or after the first recorded use count as days with history. likelihood = days with
 * use / days with history.
 */
export function predictUsage(
  usage: readonly Interval[],
  from: EpochMs,
  to: EpochMs,
  timeZone: string,
  thresholds: Pick<PreflightThresholds, 'usageLookbackDays' | 'minUsageHistoryDays'>,
): UsagePrediction {
  if (usage.length === 0) return { kind: 'no-history', daysWithHistory: 0 };
  const historyStart = usage.reduce((min, u) => Math.min(min, u.start), Number.POSITIVE_INFINITY);
  const fromLocal = DateTime.fromMillis(from, { zone: timeZone });
  const toLocal = DateTime.fromMillis(to, { zone: timeZone });
  const lookback = Math.max(0, Math.floor(thresholds.usageLookbackDays));

  let daysWithHistory = 0;
  const starts: EpochMs[] = [];
  const ends: EpochMs[] = [];
  for (let d = 1; d <= lookback; d++) {
    const s = fromLocal.minus({ days: d }).toMillis();
    const e = toLocal.minus({ days: d }).toMillis();
    // Only days we watched the whole interval of: after the history began, already over.
    if (s < historyStart || e > from) continue;
    daysWithHistory++;
    let firstStart = Number.POSITIVE_INFINITY;
    let lastEnd = Number.NEGATIVE_INFINITY;
    for (const u of usage) {
      if (u.start < e && u.end > s) {
        firstStart = Math.min(firstStart, u.start);
        lastEnd = Math.max(lastEnd, u.end);
      }
    }
    if (lastEnd > Number.NEGATIVE_INFINITY) {
      const shift = (t: EpochMs): EpochMs => DateTime.fromMillis(t, { zone: timeZone }).plus({ days: d }).toMillis();
      starts.push(shift(firstStart));
      ends.push(shift(lastEnd));
    }
  }
  if (daysWithHistory === 0 || daysWithHistory < thresholds.minUsageHistoryDays) return { kind: 'no-history', daysWithHistory };
  return {
    kind: 'predicted',
    daysWithHistory,
    daysWithUse: starts.length,
    likelihood: starts.length / daysWithHistory,
    typicalStart: lowerMedian(starts),
    typicalEnd: lowerMedian(ends),
  };
}

function lowerMedian(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}
