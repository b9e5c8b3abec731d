/**
 * Schemas for everything the HTTP API accepts (STYLE principle 9: distrust every input, parse
 * `unknown` at the boundary). Objects are strict: an unknown field is a mistake the caller
 * should hear about, not something silently dropped.
 */
import { z } from 'zod';
import { JOB_STATES } from '@firmward/core';
import type { Policy, PreflightThresholds } from '@firmward/core';

const POLICIES = ['automatic', 'security-only', 'notify', 'manual'] as const satisfies readonly Policy[];
const TIME_OF_DAY = /^([01]\d|2[0-3]):[0-5]\d$/;
const MAX_ID_LENGTH = 200;

const id = z.string().min(1, { error: 'must not be empty' }).max(MAX_ID_LENGTH, { error: `must be at most ${MAX_ID_LENGTH} characters` });
const timeOfDay = z.string().regex(TIME_OF_DAY, { error: 'must be a time of day written HH:MM (24 h)' });
const wholeNumber = (min: number, max: number) =>
  z.number().int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be a whole number from ${min} to ${max}` }).max(max, { error: `must be a whole number from ${min} to ${max}` });
const between = (min: number, max: number) =>
  z.number().min(min, { error: `must be from ${min} to ${max}` }).max(max, { error: `must be from ${min} to ${max}` });

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const WEEK_SECONDS = 7 * 24 * 3600;

/** Every threshold a person may set, with the range that makes sense for it. */
const thresholdShape = {
  minBatteryPercent: between(0, 100).exactOptional(),
  minSignalDbm: between(-150, 0).exactOptional(),
  maxSignalSpreadDb: between(0, 100).exactOptional(),
  signalWindowSeconds: wholeNumber(1, 24 * 3600).exactOptional(),
  minSignalSamples: wholeNumber(0, 10_000).exactOptional(),
  noDropoutSeconds: wholeNumber(0, WEEK_SECONDS).exactOptional(),
  freeStorageMarginBytes: wholeNumber(0, Number.MAX_SAFE_INTEGER).exactOptional(),
  neededSoonMarginSeconds: wholeNumber(0, WEEK_SECONDS).exactOptional(),
  usageLookbackDays: wholeNumber(1, 365).exactOptional(),
  minUsageHistoryDays: wholeNumber(0, 365).exactOptional(),
  usageLikelihood: between(0, 1).exactOptional(),
} satisfies Record<keyof PreflightThresholds, z.ZodType>;
export const ThresholdsPatchSchema = z.strictObject(thresholdShape);

export const HomeSettingsPatchSchema = z.strictObject({
  timeZone: z.string().refine(isTimeZone, { error: 'must be an IANA time zone such as "Europe/Berlin"' }).exactOptional(),
  window: z.strictObject({ start: timeOfDay, end: timeOfDay }).exactOptional(),
  learnQuietHours: z.boolean().exactOptional(),
  policy: z.enum(POLICIES).exactOptional(),
  thresholds: ThresholdsPatchSchema.exactOptional(),
  soakSeconds: wholeNumber(0, WEEK_SECONDS).exactOptional(),
});

export const UsageScheduleSchema = z.strictObject({
  weekdays: z.array(wholeNumber(0, 6)).max(7),
  start: timeOfDay,
  end: timeOfDay,
});

export const DeviceSettingsPatchSchema = z.strictObject({
  policy: z.enum(POLICIES).nullable().exactOptional(),
  thresholds: ThresholdsPatchSchema.exactOptional(),
  schedules: z.array(UsageScheduleSchema).max(50).exactOptional(),
});

/** Actions without parameters accept no body or `{}`; anything else is a mistake. */
export const EmptyBodySchema = z.strictObject({});

/** A staged rollout: the release, and any rule that differs from the defaults (core rollout.ts). */
export const StartRolloutSchema = z.strictObject({
  releaseId: z.string().min(1, { error: 'must name a release' }).max(MAX_ID_LENGTH),
  waves: z.array(between(0.01, 100), { error: 'must be a list of cumulative percentages, e.g. [1, 5, 25, 100]' }).min(1).max(20).exactOptional(),
  maxFailureRate: between(0, 1).exactOptional(),
  minFinished: wholeNumber(1, 1_000_000).exactOptional(),
  maxStuck: wholeNumber(1, 1_000_000).exactOptional(),
  stuckAfterSeconds: wholeNumber(60, 30 * 24 * 3600).exactOptional(),
  waveMaxSeconds: wholeNumber(60, 365 * 24 * 3600).exactOptional(),
});

export const ForceBodySchema = z.strictObject({ confirm: z.literal(true) });

const booleanText = z.enum(['true', 'false']).transform((v) => v === 'true');
const positiveIntText = (max: number) => z.string().regex(/^\d+$/, { error: 'must be a whole number' }).transform(Number)
  .pipe(z.number().int().min(1, { error: `must be from 1 to ${max}` }).max(max, { error: `must be from 1 to ${max}` }));

export const DevicesQuerySchema = z.strictObject({ homeId: id.exactOptional() });

export const JobsQuerySchema = z.strictObject({
  homeId: id.exactOptional(),
  deviceId: id.exactOptional(),
  open: booleanText.exactOptional(),
});

export const MAX_EVENTS = 500;
export const DEFAULT_EVENTS = 100;
export const EventsQuerySchema = z.strictObject({
  homeId: id.exactOptional(),
  deviceId: id.exactOptional(),
  jobId: id.exactOptional(),
  to: z.enum(JOB_STATES).exactOptional(),
  beforeId: positiveIntText(Number.MAX_SAFE_INTEGER).exactOptional(),
  limit: positiveIntText(MAX_EVENTS).default(DEFAULT_EVENTS),
});

export const EventStreamQuerySchema = z.strictObject({
  homeId: id.exactOptional(),
  deviceId: id.exactOptional(),
});

export const IdParamSchema = id;
