/** Milliseconds since the Unix epoch. The core never reads a clock: every `now` is passed in. */
export type EpochMs = number;

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** A half-open time interval [start, end). */
export interface Interval {
  start: EpochMs;
  end: EpochMs;
}

/** A time of day written "HH:MM" (24 h), interpreted in a home's own time zone. */
export type TimeOfDay = string;
