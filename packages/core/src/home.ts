import { DEFAULT_THRESHOLDS } from './thresholds.ts';
import type { PreflightThresholds } from './thresholds.ts';
import type { EpochMs, TimeOfDay } from './time.ts';

/**
 * automatic: every applicable release runs on its own inside the window.
 * security-only: only releases that fix a vulnerability run on their own; others wait for a person.
 * notify: nothing runs on its own; the person is told and presses "update now".
 * manual: nothing runs on its own and nothing is announced beyond the dashboard.
 */
export type Policy = 'automatic' | 'security-only' | 'notify' | 'manual';

export interface MaintenanceWindow {
  start: TimeOfDay;
  end: TimeOfDay;
}

export interface HomeSettings {
  /** IANA time zone, e.g. "Europe/Berlin". */
  timeZone: string;
  /** When updates may start, in the home's time zone; may cross midnight. */
  window: MaintenanceWindow;
  /** Once there is enough history, narrow the window to the hours the home is quietest. */
  learnQuietHours: boolean;
  policy: Policy;
  thresholds: PreflightThresholds;
  /** After the new version reports healthy it must stay healthy this long to be confirmed. */
  soakSeconds: number;
  /** A device that says nothing about its running update for this long has failed. */
  silenceTimeoutSeconds: number;
}

export const DEFAULT_WINDOW: MaintenanceWindow = { start: '01:00', end: '05:00' };

/** Why a home's queue stopped: the failed device is named (rule: a failure halts the queue). */
export interface HomeHalt {
  jobId: string;
  deviceId: string;
  at: EpochMs;
  message: string;
}

export interface Home {
  id: string;
  name: string;
  settings: HomeSettings;
  halt: HomeHalt | null;
}

/**
 * What a new home starts with unless the person says otherwise (DESIGN: automatic, inside the
 * quiet window, quiet hours learned once there is enough history).
 *
 * @example
 * const settings = newHomeSettings({ timeZone: 'Europe/Berlin', silenceTimeoutSeconds: 900 });
 */
export function newHomeSettings(o: { timeZone: string; silenceTimeoutSeconds: number }): HomeSettings {
  return {
    timeZone: o.timeZone, window: DEFAULT_WINDOW, learnQuietHours: true, policy: 'automatic',
    thresholds: { ...DEFAULT_THRESHOLDS }, soakSeconds: 300, silenceTimeoutSeconds: o.silenceTimeoutSeconds,
  };
}
