import type { Policy } from './home.ts';
import type { PreflightThresholds } from './thresholds.ts';
import type { EpochMs, Interval, TimeOfDay } from './time.ts';

export type Slot = 'a' | 'b';
export type PowerSource = 'mains' | 'battery';

/** An explicit usage schedule: the device is needed on these weekdays between start and end. */
export interface UsageSchedule {
  /** 0 = Sunday … 6 = Saturday, in the home's time zone. Empty = every day. */
  weekdays: number[];
  start: TimeOfDay;
  end: TimeOfDay;
}

export interface Device {
  id: string;
  homeId: string;
  name: string;
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
  /** Overrides the home's policy when set. */
  policy: Policy | null;
  thresholds: Partial<PreflightThresholds>;
  /** Explicit schedules win over learned usage. */
  schedules: UsageSchedule[];
}

/** The latest state a device reported about itself. */
export interface DeviceReport {
  at: EpochMs;
  firmwareVersion: string;
  activeSlot: Slot;
  powerSource: PowerSource;
  batteryPercent: number | null;
  charging: boolean;
  /** null for wired devices */
  signalDbm: number | null;
  busy: boolean;
  freeStorageBytes: number;
  /** The device's own health check passes. */
  healthy: boolean;
}

export interface SignalSample {
  at: EpochMs;
  dbm: number;
}

/**
 * Everything the preflight gate looks at for one device, collected by the hub from the device's
 * reports: latest state, recent signal samples, recent drop-outs, and its usage history.
 */
export interface DeviceConditions {
  online: boolean;
  report: DeviceReport | null;
  signalSamples: SignalSample[];
  /** When the device's connection dropped recently. */
  dropouts: EpochMs[];
  /** Periods the device was busy (in use), oldest first. */
  usage: Interval[];
}
