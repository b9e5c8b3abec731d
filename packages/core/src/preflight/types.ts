import type { Device, DeviceConditions } from '../device.ts';
import type { MaintenanceWindow } from '../home.ts';
import type { PreflightThresholds } from '../thresholds.ts';
import type { EpochMs, Interval } from '../time.ts';

export type PreflightRuleName = 'online' | 'power' | 'radio' | 'storage' | 'busy' | 'needed-soon' | 'window';

/** One rule's verdict: pass or fail, a householder's sentence, and when it is next worth checking. */
export interface RuleResult {
  rule: PreflightRuleName;
  pass: boolean;
  /** Stable code, e.g. "battery_low", "signal_unstable", "outside_window". */
  code: string;
  /** e.g. "Battery 23 %, needs 50 % or charging." */
  message: string;
  /** For a failing rule: the earliest time it could pass (null = when the device reports again). */
  recheckAt: EpochMs | null;
}

/** `start`: before offering; `install`: again right before the install step (invariant 3). */
export type PreflightStage = 'start' | 'install';

export interface PreflightInput {
  now: EpochMs;
  stage: PreflightStage;
  timeZone: string;
  window: MaintenanceWindow;
  learnQuietHours: boolean;
  /** Busy periods of every device in the home, for learning its quiet hours. */
  homeUsage: Interval[];
  device: Pick<Device, 'schedules'>;
  conditions: DeviceConditions;
  /** Already merged: home < device < release overrides. */
  thresholds: PreflightThresholds;
  expectedInstallSeconds: number;
  imageBytes: number;
}

export interface PreflightVerdict {
  pass: boolean;
  /** Every rule, in a fixed order. */
  results: RuleResult[];
  failures: RuleResult[];
  /** The latest recheckAt among failures (all must pass), or null. */
  recheckAt: EpochMs | null;
}
