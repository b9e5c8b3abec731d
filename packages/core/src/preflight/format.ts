import type { EpochMs } from '../time.ts';
import { MINUTE_MS } from '../time.ts';
import { daysBetween, localDate, localTimeOfDay, weekdayName } from '../window.ts';
import { DateTime } from 'luxon';

/*
 * Numbers and times in preflight messages, written for people (DESIGN: "every decision the hub
 * takes can be explained in one sentence on the dashboard"). Negative numbers use the real minus
 * sign "−" throughout; times are "HH:MM" in the home's own zone.
 */

const MINUS = '\u2212';
const MB = 1_000_000;

export function formatNumber(value: number): string {
  return value < 0 ? `${MINUS}${Math.abs(value)}` : String(value);
}

/** "−81 dBm"; rounded towards the weaker side so a failing value never reads as the threshold. */
export function formatDbm(dbm: number, round: 'weaker' | 'nearest' = 'nearest'): string {
  return `${formatNumber(round === 'weaker' ? Math.floor(dbm) : Math.round(dbm))} dBm`;
}

/** Storage in decimal megabytes (as devices label it), one decimal below 100 MB. */
export function formatMegabytes(bytes: number, round: 'down' | 'up'): string {
  const mb = bytes / MB;
  const decimals = mb < 100 ? 1 : 0;
  const factor = 10 ** decimals;
  const rounded = round === 'down' ? Math.floor(mb * factor) / factor : Math.ceil(mb * factor) / factor;
  return `${rounded.toFixed(decimals)} MB`;
}

/** "4 min", "1 h 30 min". */
export function formatDuration(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / MINUTE_MS));
  if (minutes < 60) return `${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** "4 min ago", "less than a minute ago". */
export function formatAgo(ms: number): string {
  return ms < MINUTE_MS ? 'less than a minute ago' : `${formatDuration(ms)} ago`;
}

/**
 * When, said the way a person would: "tonight at 01:00", "today at 14:00", "tomorrow at 09:00",
 * "on Saturday at 01:00" — in the home's zone.
 */
export function describeWhen(at: EpochMs, now: EpochMs, timeZone: string): string {
  const time = localTimeOfDay(at, timeZone);
  const date = localDate(at, timeZone);
  const days = daysBetween(localDate(now, timeZone), date);
  const hour = DateTime.fromMillis(at, { zone: timeZone }).hour;
  const night = hour >= 18 || hour < 6;
  if (days <= 0) return `${night ? 'tonight' : 'today'} at ${time}`;
  if (days === 1) return `${hour < 6 ? 'tonight' : 'tomorrow'} at ${time}`;
  return `on ${weekdayName(date)} at ${time}`;
}
