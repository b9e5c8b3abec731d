import { DateTime, IANAZone } from 'luxon';
import { FirmwardError } from './errors.ts';
import type { MaintenanceWindow } from './home.ts';
import type { PreflightThresholds } from './thresholds.ts';
import { DEFAULT_THRESHOLDS } from './thresholds.ts';
import type { EpochMs, Interval, TimeOfDay } from './time.ts';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './time.ts';

/*
 * Maintenance windows in a home's own time zone (DESIGN rule: "update at a quiet time,
 * overnight"). Every zone and DST rule comes from luxon; this file only decides which wall-clock
 * reading we mean when the clock skips or repeats:
 *
 * - A time that does not exist (spring-forward gap, e.g. 02:30 on 2026-03-29 in Europe/Berlin)
 *   means the first instant after the gap (03:00 CEST): the clock jumped past it, so the window
 *   opens (or closes) as soon as the clock reads something later.
 * - A time that exists twice (fall-back, e.g. 02:30 on 2026-10-25 in Europe/Berlin) means its
 *   earlier occurrence as a window start and its later occurrence as a window end. The window is
 *   measured in wall-clock time, so across fall-back it lasts an hour longer; the repeated hour
 *   is as quiet as the hour it repeats, so we do not cut it off.
 * - A window can shrink to nothing on a spring-forward night (02:15–02:45 in Berlin): that night
 *   has no window and the next night's counts.
 */

const TIME_OF_DAY = /^([01]\d|2[0-3]):([0-5]\d)$/;
const MINUTES_PER_DAY = 24 * 60;
const WEEKDAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'] as const;

/** A calendar date with no zone attached (a day "in the home"). */
export interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

export interface ParsedTimeOfDay {
  hour: number;
  minute: number;
  /** Minutes after local midnight, 0 … 1439. */
  minuteOfDay: number;
}

/**
 * Parses "HH:MM" (24 h, two digits each). Throws `invalid_input` otherwise.
 *
 * @example
 * parseTimeOfDay('23:30'); // { hour: 23, minute: 30, minuteOfDay: 1410 }
 */
export function parseTimeOfDay(value: TimeOfDay): ParsedTimeOfDay {
  const match = typeof value === 'string' ? TIME_OF_DAY.exec(value) : null;
  if (!match) {
    throw new FirmwardError('invalid_input', `"${String(value)}" is not a time of day; write it as HH:MM, for example 01:30.`, { detail: { value } });
  }
  const hour = Number(match[1]);
  const minute = Number(match[2]);
  return { hour, minute, minuteOfDay: hour * 60 + minute };
}

/**
 * Checks that `timeZone` is an IANA zone name luxon knows ("Europe/Berlin", "UTC"). Throws
 * `invalid_input` otherwise; returns the name unchanged.
 *
 * @example
 * validateTimeZone('America/New_York'); // 'America/New_York'
 */
export function validateTimeZone(timeZone: string): string {
  // IANAZone.create is cached by luxon; isValidZone builds a new Intl formatter on every call.
  if (typeof timeZone !== 'string' || timeZone === '' || !IANAZone.create(timeZone).isValid) {
    throw new FirmwardError('invalid_input', `"${String(timeZone)}" is not a known time zone; use a name such as Europe/Berlin.`, { detail: { timeZone } });
  }
  return timeZone;
}

/** "HH:MM" for minutes after midnight (wraps at 24 h). */
export function formatTimeOfDay(minuteOfDay: number): TimeOfDay {
  const m = ((Math.round(minuteOfDay) % MINUTES_PER_DAY) + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
}

/**
 * The wall-clock time of an instant in a home's zone, "HH:MM".
 *
 * @example
 * localTimeOfDay(Date.UTC(2026, 0, 1, 0, 30), 'Asia/Tokyo'); // '09:30'
 */
export function localTimeOfDay(at: EpochMs, timeZone: string): TimeOfDay {
  const dt = DateTime.fromMillis(at, { zone: timeZone });
  return formatTimeOfDay(dt.hour * 60 + dt.minute);
}

/** The home's calendar date at an instant. */
export function localDate(at: EpochMs, timeZone: string): CalendarDate {
  const dt = DateTime.fromMillis(at, { zone: timeZone });
  return { year: dt.year, month: dt.month, day: dt.day };
}

/** Calendar arithmetic on a zone-less date (done in UTC, where days never skip or repeat). */
export function addDays(date: CalendarDate, days: number): CalendarDate {
  const dt = DateTime.fromObject(date, { zone: 'utc' }).plus({ days });
  return { year: dt.year, month: dt.month, day: dt.day };
}

/** Whole calendar days from `from` to `to`. */
export function daysBetween(from: CalendarDate, to: CalendarDate): number {
  const a = DateTime.fromObject(from, { zone: 'utc' }).toMillis();
  const b = DateTime.fromObject(to, { zone: 'utc' }).toMillis();
  return Math.round((b - a) / DAY_MS);
}

/** 0 = Sunday … 6 = Saturday, as in `UsageSchedule.weekdays`. */
export function weekdayOf(date: CalendarDate): number {
  return DateTime.fromObject(date, { zone: 'utc' }).weekday % 7;
}

/** "Monday" … "Sunday" (fixed English names, no locale lookup). */
export function weekdayName(date: CalendarDate): string {
  const index = DateTime.fromObject(date, { zone: 'utc' }).weekday - 1;
  return WEEKDAY_NAMES[index] ?? '';
}

/**
 * The instant a wall-clock time on a date means in a zone. `edge` says which reading to take
 * when the time exists twice (fall-back): 'start' → the earlier, 'end' → the later (see the
 * header comment). A time inside a spring-forward gap means the first instant after the gap.
 */
export function zonedInstant(date: CalendarDate, minuteOfDay: number, timeZone: string, edge: 'start' | 'end'): EpochMs {
  const hour = Math.floor(minuteOfDay / 60);
  const minute = minuteOfDay % 60;
  const dt = DateTime.fromObject({ ...date, hour, minute }, { zone: timeZone });
  if (!dt.isValid) {
    throw new FirmwardError('invalid_input', `The time ${formatTimeOfDay(minuteOfDay)} cannot be placed in the time zone ${timeZone}.`);
  }
  if (dt.hour !== hour || dt.minute !== minute || dt.day !== date.day) {
    // luxon pushes a missing time forward by the gap's size (02:30 → 03:30); we want the instant
    // the clock jumped (03:00). Find it from luxon's own offsets for the zone.
    return firstInstantAtOrAfterWallTime(date, hour, minute, dt.toMillis(), timeZone);
  }
  const readings = dt.getPossibleOffsets().map((d) => d.toMillis());
  if (readings.length === 0) return dt.toMillis();
  return edge === 'start' ? Math.min(...readings) : Math.max(...readings);
}

/**
 * The earliest instant whose wall-clock reading is at or after the given (missing) wall time.
 * Wall time rises with the instant except at a fall-back, and none lies within hours of a
 * spring-forward gap, so bisection over luxon's zone offsets finds the jump.
 */
function firstInstantAtOrAfterWallTime(date: CalendarDate, hour: number, minute: number, shifted: EpochMs, timeZone: string): EpochMs {
  const zone = IANAZone.create(timeZone);
  const wanted = DateTime.fromObject({ ...date, hour, minute }, { zone: 'utc' }).toMillis();
  const wall = (t: EpochMs): number => t + zone.offset(t) * MINUTE_MS;
  let lo = shifted - 6 * HOUR_MS; // wall(lo) < wanted
  let hi = shifted; // wall(hi) ≥ wanted
  if (wall(lo) >= wanted || wall(hi) < wanted) return shifted;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wall(mid) >= wanted) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface WindowStatus {
  /** `now` lies inside an occurrence of the window. */
  inside: boolean;
  /** start == end: the window is open all day, every day; `currentEnd` is then null. */
  allDay: boolean;
  /** When the occurrence `now` is in closes; null when outside (or all day: it never closes). */
  currentEnd: EpochMs | null;
  /**
   * The next occurrence that opens after `now` (strictly later), and when it closes. For an
   * all-day window, nextStart is `now` (it is open) and nextEnd the next local start time.
   */
  nextStart: EpochMs;
  nextEnd: EpochMs;
}

/**
 * Where `now` stands relative to a daily window "HH:MM"–"HH:MM" in a home's zone. The window may
 * cross midnight (23:00–05:00); start == end means all day. DST: see the header comment.
 *
 * @example
 * const s = windowStatus(now, 'Europe/Berlin', { start: '01:00', end: '05:00' });
 * if (!s.inside) showNextChance(localTimeOfDay(s.nextStart, 'Europe/Berlin'));
 */
export function windowStatus(now: EpochMs, timeZone: string, window: MaintenanceWindow): WindowStatus {
  validateTimeZone(timeZone);
  const start = parseTimeOfDay(window.start).minuteOfDay;
  const end = parseTimeOfDay(window.end).minuteOfDay;
  const today = localDate(now, timeZone);

  if (start === end) {
    let boundary = zonedInstant(today, start, timeZone, 'start');
    for (let k = 1; boundary <= now; k++) boundary = zonedInstant(addDays(today, k), start, timeZone, 'start');
    return { inside: true, allDay: true, currentEnd: null, nextStart: now, nextEnd: boundary };
  }

  const occurrences = windowOccurrences(today, -1, 3, start, end, timeZone);
  const current = occurrences.find((o) => o.start <= now && now < o.end) ?? null;
  const next = occurrences.find((o) => o.start > now);
  if (!next) {
    // Four consecutive nights cannot all vanish into DST gaps; reaching this is a bug.
    throw new FirmwardError('internal', 'The next maintenance window could not be worked out.', { detail: { now, timeZone, window } });
  }
  return { inside: current !== null, allDay: false, currentEnd: current?.end ?? null, nextStart: next.start, nextEnd: next.end };
}

/** Occurrences of a daily window starting on days today+from … today+to, merged where they touch. */
function windowOccurrences(today: CalendarDate, from: number, to: number, start: number, end: number, timeZone: string): Interval[] {
  const raw: Interval[] = [];
  for (let k = from; k <= to; k++) {
    const day = addDays(today, k);
    const s = zonedInstant(day, start, timeZone, 'start');
    const e = zonedInstant(end > start ? day : addDays(day, 1), end, timeZone, 'end');
    if (e > s) raw.push({ start: s, end: e });
  }
  return mergeIntervals(raw);
}

/** Sorts and merges overlapping or touching intervals. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).map((i) => ({ ...i })).sort((a, b) => a.start - b.start);
  const merged: Interval[] = [];
  for (const i of sorted) {
    const last = merged[merged.length - 1];
    if (last && i.start <= last.end) last.end = Math.max(last.end, i.end);
    else merged.push(i);
  }
  return merged;
}

/**
 * DESIGN rule: "an update that would not finish inside the window is not started". True only
 * when `now` is inside the window and `now + durationMs` is no later than the window's end.
 *
 * @example
 * fitsInWindow(now, 45 * 60_000, 'Europe/Berlin', { start: '01:00', end: '05:00' });
 */
export function fitsInWindow(now: EpochMs, durationMs: number, timeZone: string, window: MaintenanceWindow): boolean {
  const status = windowStatus(now, timeZone, window);
  if (!status.inside) return false;
  if (status.allDay) return true;
  return status.currentEnd !== null && now + durationMs <= status.currentEnd;
}

export interface QuietHoursOptions {
  /** Look at usage this many days back. */
  lookbackDays: number;
  /** Learn nothing until usage history spans at least this many days. */
  minHistoryDays: number;
  /** Length of the learned window, whole hours (1 … 23). */
  lengthHours: number;
}

/** The overnight default a learned window leans towards on ties (DEFAULT_WINDOW starts 01:00). */
const OVERNIGHT_START_HOUR = 1;

/**
 * Learns a home's quiet hours (DESIGN: "quiet hours learned from usage"): over the lookback,
 * the share of each local hour-of-day the home was busy (busy minutes in that hour slot divided
 * by the minutes of that slot we have history for, i.e. averaged over days with history), then
 * the contiguous block of `lengthHours` (wrapping midnight) with the least use. Ties go to the
 * block starting nearest 01:00 (then the later of two equally near). Null until the history
 * spans `minHistoryDays` days. History starts at the earliest busy period we know of: without a
 * record of use there is nothing to learn from.
 *
 * @example
 * learnQuietHours(usage, now, 'Europe/Berlin', { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 });
 * // { start: '01:00', end: '05:00' } or null
 */
export function learnQuietHours(usage: readonly Interval[], now: EpochMs, timeZone: string, opts: QuietHoursOptions): MaintenanceWindow | null {
  validateTimeZone(timeZone);
  const { lookbackDays, minHistoryDays, lengthHours } = opts;
  if (!(lookbackDays > 0) || !(minHistoryDays >= 0) || !Number.isInteger(lengthHours) || lengthHours < 1 || lengthHours > 23) {
    throw new FirmwardError('invalid_input', 'Quiet hours need a look-back of at least one day and a length of 1 to 23 whole hours.', { detail: { ...opts } });
  }
  if (usage.length === 0) return null;
  const lookbackStart = DateTime.fromMillis(now, { zone: timeZone }).minus({ days: lookbackDays }).toMillis();
  const earliest = usage.reduce((min, u) => Math.min(min, u.start), Number.POSITIVE_INFINITY);
  const historyStart = Math.max(lookbackStart, earliest);
  if (historyStart >= now || (now - historyStart) / DAY_MS < minHistoryDays) return null;

  const busy = mergeIntervals(usage.map((u) => ({ start: Math.max(u.start, historyStart), end: Math.min(u.end, now) })));
  const busyMs = new Array<number>(24).fill(0);
  const seenMs = new Array<number>(24).fill(0);
  let b = 0;
  for (let t = historyStart; t < now;) {
    const local = DateTime.fromMillis(t, { zone: timeZone });
    let next = Math.min(local.startOf('hour').plus({ hours: 1 }).toMillis(), now);
    if (next <= t) next = Math.min(t + HOUR_MS, now);
    const slot = local.hour;
    seenMs[slot] = (seenMs[slot] ?? 0) + (next - t);
    while (b < busy.length && (busy[b]?.end ?? 0) <= t) b++;
    for (let j = b; j < busy.length; j++) {
      const i = busy[j];
      if (!i || i.start >= next) break;
      const overlap = Math.min(i.end, next) - Math.max(i.start, t);
      if (overlap > 0) busyMs[slot] = (busyMs[slot] ?? 0) + overlap;
    }
    t = next;
  }
  const share = busyMs.map((ms, h) => {
    const seen = seenMs[h] ?? 0;
    return seen > 0 ? ms / seen : 0;
  });

  let best = -1;
  let bestCost = Number.POSITIVE_INFINITY;
  for (let s = 0; s < 24; s++) {
    let cost = 0;
    for (let i = 0; i < lengthHours; i++) cost += share[(s + i) % 24] ?? 0;
    const better = cost < bestCost - 1e-9 || (Math.abs(cost - bestCost) <= 1e-9 && closerToOvernight(s, best));
    if (best === -1 || better) {
      best = s;
      bestCost = Math.min(cost, bestCost);
    }
  }
  return { start: formatTimeOfDay(best * 60), end: formatTimeOfDay((best + lengthHours) * 60) };
}

function overnightDistance(hour: number): number {
  const d = Math.abs(hour - OVERNIGHT_START_HOUR);
  return Math.min(d, 24 - d);
}

function closerToOvernight(candidate: number, incumbent: number): boolean {
  const dc = overnightDistance(candidate);
  const di = overnightDistance(incumbent);
  if (dc !== di) return dc < di;
  // Equally near (00:00 vs 02:00): the later start is deeper into the night.
  return (candidate - OVERNIGHT_START_HOUR + 24) % 24 < 12;
}

export interface EffectiveWindowArgs {
  now: EpochMs;
  timeZone: string;
  window: MaintenanceWindow;
  learnQuietHours: boolean;
  homeUsage: readonly Interval[];
  /** Look-back and minimum history for learning; DEFAULT_THRESHOLDS' when left out. */
  thresholds?: Pick<PreflightThresholds, 'usageLookbackDays' | 'minUsageHistoryDays'>;
}

export interface EffectiveWindow {
  window: MaintenanceWindow;
  /** The window was learned from the home's usage rather than configured. */
  learned: boolean;
}

/**
 * The window in force now: the configured one, or — when the home asked for it and there is
 * enough history — quiet hours learned from the home's usage, as long as the configured window
 * (in whole hours, at least 2). An all-day window has nothing to narrow and is kept.
 *
 * @example
 * const { window, learned } = effectiveWindow({ now, timeZone, window: settings.window,
 *   learnQuietHours: settings.learnQuietHours, homeUsage, thresholds });
 */
export function effectiveWindow(args: EffectiveWindowArgs): EffectiveWindow {
  const configured = { start: args.window.start, end: args.window.end };
  if (!args.learnQuietHours) return { window: configured, learned: false };
  const start = parseTimeOfDay(configured.start).minuteOfDay;
  const end = parseTimeOfDay(configured.end).minuteOfDay;
  const lengthMinutes = (end - start + MINUTES_PER_DAY) % MINUTES_PER_DAY;
  if (lengthMinutes === 0) return { window: configured, learned: false };
  const lengthHours = Math.min(23, Math.max(2, Math.floor(lengthMinutes / 60)));
  const thresholds = args.thresholds ?? DEFAULT_THRESHOLDS;
  const learned = learnQuietHours(args.homeUsage, args.now, args.timeZone, {
    lookbackDays: thresholds.usageLookbackDays,
    minHistoryDays: thresholds.minUsageHistoryDays,
    lengthHours,
  });
  return learned ? { window: learned, learned: true } : { window: configured, learned: false };
}
