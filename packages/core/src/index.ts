export * from './errors.ts';
export * from './time.ts';
export * from './reason.ts';
export * from './release.ts';
export * from './thresholds.ts';
export * from './home.ts';
export * from './device.ts';
export * from './job.ts';
export * from './device-report.ts';
export * from './preflight/types.ts';
export * from './sequencer.ts';
export * from './preflight/index.ts';
export {
  windowStatus, fitsInWindow, learnQuietHours, effectiveWindow, validateTimeZone, parseTimeOfDay,
  formatTimeOfDay, localTimeOfDay, zonedInstant, mergeIntervals,
} from './window.ts';
export type { WindowStatus, QuietHoursOptions, EffectiveWindow, EffectiveWindowArgs, ParsedTimeOfDay, CalendarDate } from './window.ts';
export * from './version.ts';
export * from './compatibility.ts';
export * from './policy.ts';
export * from './planner.ts';
export * from './rollout.ts';
export * from './onboarding.ts';
