/**
 * The world around a simulated device, as functions of the injected clock's time: battery
 * charge, radio signal and drop-outs, and when the device is in use. Everything random comes from
 * the seeded generator, keyed by time, so a simulated week is the same every run.
 */
import { HOUR_MS, MINUTE_MS, localTimeOfDay, parseTimeOfDay } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { DeviceConditionsReport } from '@firmward/agent';
import type { DailyWindow, DeviceProfile } from './profile.ts';
import type { SeededRandom } from './random.ts';

const DRIFT_STEP_MS = 5 * MINUTE_MS;
const BATTERY_STEP_MS = MINUTE_MS;

const weekdayFormats = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function weekdayAt(at: EpochMs, timeZone: string): number {
  let format = weekdayFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short' });
    weekdayFormats.set(timeZone, format);
  }
  return WEEKDAYS.indexOf(format.format(at));
}

/** Whether `at` falls inside the daily window, in `timeZone` (a window may cross midnight). */
export function inDailyWindow(at: EpochMs, timeZone: string, window: DailyWindow): boolean {
  const minute = parseTimeOfDay(localTimeOfDay(at, timeZone)).minuteOfDay;
  const start = parseTimeOfDay(window.start).minuteOfDay;
  const end = parseTimeOfDay(window.end).minuteOfDay;
  const crosses = end <= start;
  const inside = crosses ? minute >= start || minute < end : minute >= start && minute < end;
  if (!inside) return false;
  if (!window.weekdays || window.weekdays.length === 0) return true;
  // After midnight in a crossing window, the day it started on counts (one minute before midnight).
  const day = weekdayAt(crosses && minute < end ? at - (minute + 1) * MINUTE_MS : at, timeZone);
  return window.weekdays.includes(day);
}

export class SimulatedEnvironment {
  readonly profile: DeviceProfile;
  readonly #random: SeededRandom;
  #batteryPercent: number;
  #batteryAt: EpochMs;
  #chargingOverride: boolean | null = null;
  #busyOverride: boolean | null = null;
  #signalOverride: number | null = null;

  constructor(profile: DeviceProfile, random: SeededRandom, start: EpochMs) {
    this.profile = profile;
    this.#random = random;
    this.#batteryPercent = profile.battery?.startPercent ?? 100;
    this.#batteryAt = start;
  }

  /** Puts it on the charger (true), takes it off (false), or back to its schedule (null). */
  setCharging(on: boolean | null, now: EpochMs): void {
    this.batteryPercent(now);
    this.#chargingOverride = on;
  }

  /** Someone uses it (true), nobody does (false), or back to its usage pattern (null). */
  setBusy(on: boolean | null): void {
    this.#busyOverride = on;
  }

  /** Pins the signal at this strength (null: back to the profile). */
  setSignal(dbm: number | null): void {
    this.#signalOverride = dbm;
  }

  charging(at: EpochMs): boolean {
    const battery = this.profile.battery;
    if (this.profile.power !== 'battery' || !battery) return false;
    if (this.#chargingOverride !== null) return this.#chargingOverride;
    return battery.chargingWindows.some((w) => inDailyWindow(at, this.profile.timeZone, w));
  }

  /** Charge now, integrated minute by minute since the last look (clamped to 0 … 100). */
  batteryPercent(now: EpochMs): number | null {
    const battery = this.profile.battery;
    if (this.profile.power !== 'battery' || !battery) return null;
    while (this.#batteryAt < now) {
      const step = Math.min(BATTERY_STEP_MS, now - this.#batteryAt);
      const hours = step / HOUR_MS;
      const delta = this.charging(this.#batteryAt) ? battery.chargePercentPerHour * hours : -battery.drainPercentPerHour * hours;
      this.#batteryPercent = Math.min(100, Math.max(0, this.#batteryPercent + delta));
      this.#batteryAt += step;
    }
    return Math.round(this.#batteryPercent * 10) / 10;
  }

  /** Signal strength: the base plus a smooth seeded drift; null for wired devices. */
  signalDbm(at: EpochMs): number | null {
    const signal = this.profile.signal;
    if (!signal) return null;
    if (this.#signalOverride !== null) return this.#signalOverride;
    const bucket = Math.floor(at / DRIFT_STEP_MS);
    const t = (at - bucket * DRIFT_STEP_MS) / DRIFT_STEP_MS;
    const a = this.#random.at('drift', bucket) * 2 - 1;
    const b = this.#random.at('drift', bucket + 1) * 2 - 1;
    const dbm = signal.baseDbm + (a + (b - a) * t) * signal.driftDb;
    return Math.round(Math.min(0, Math.max(-130, dbm)));
  }

  /** The radio link is down (a seeded random drop-out or a scheduled one). */
  inDropout(at: EpochMs): boolean {
    const signal = this.profile.signal;
    if (!signal) return false;
    if (signal.dropoutWindows.some((w) => inDailyWindow(at, this.profile.timeZone, w))) return true;
    if (signal.dropoutChancePerHour <= 0) return false;
    const hour = Math.floor(at / HOUR_MS);
    // A drop-out that starts late in the previous hour may still be going on.
    for (const h of [hour - 1, hour]) {
      if (this.#random.at('dropout', h) >= signal.dropoutChancePerHour) continue;
      const start = h * HOUR_MS + Math.floor(this.#random.at('dropout-at', h) * HOUR_MS);
      if (at >= start && at < start + signal.dropoutSeconds * 1000) return true;
    }
    return false;
  }

  busy(at: EpochMs): boolean {
    if (this.#busyOverride !== null) return this.#busyOverride;
    return this.profile.busy.some((w) => inDailyWindow(at, this.profile.timeZone, w));
  }

  conditions(at: EpochMs): DeviceConditionsReport {
    return {
      powerSource: this.profile.power,
      batteryPercent: this.batteryPercent(at),
      charging: this.charging(at),
      signalDbm: this.signalDbm(at),
      busy: this.busy(at),
      freeStorageBytes: this.profile.slotCapacityBytes,
    };
  }
}
