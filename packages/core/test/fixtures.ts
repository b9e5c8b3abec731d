/*
 * Shared builders for core tests. Keep this file additive: other test files import from it.
 * Every builder returns a fresh object with sensible, passing defaults; override what a test is about.
 */
import { DateTime } from 'luxon';
import type { DeviceConditions, DeviceReport, EpochMs, Interval, PreflightInput, Release, SignalSample } from '../src/index.ts';
import { DEFAULT_THRESHOLDS, MINUTE_MS, releaseId } from '../src/index.ts';

/** An instant from a wall-clock time in a zone: `local('2026-03-29T01:30', 'Europe/Berlin')`. */
export function local(isoWallTime: string, timeZone: string): EpochMs {
  const dt = DateTime.fromISO(isoWallTime, { zone: timeZone });
  if (!dt.isValid) throw new Error(`bad fixture time ${isoWallTime} in ${timeZone}`);
  return dt.toMillis();
}

/** An instant from an ISO string with an offset or Z: `utc('2026-03-29T01:00:00Z')`. */
export function utc(iso: string): EpochMs {
  const dt = DateTime.fromISO(iso, { setZone: true });
  if (!dt.isValid) throw new Error(`bad fixture time ${iso}`);
  return dt.toMillis();
}

/** The wall-clock reading of an instant in a zone, "yyyy-MM-dd HH:mm ZZ" (for readable assertions). */
export function wall(at: EpochMs, timeZone: string): string {
  return DateTime.fromMillis(at, { zone: timeZone }).toFormat('yyyy-MM-dd HH:mm ZZ');
}

export function deviceReport(patch: Partial<DeviceReport> = {}, at: EpochMs = 0): DeviceReport {
  return {
    at,
    firmwareVersion: '1.0.0',
    activeSlot: 'a',
    powerSource: 'mains',
    batteryPercent: null,
    charging: false,
    signalDbm: -55,
    busy: false,
    freeStorageBytes: 512 * 1024 * 1024,
    healthy: true,
    ...patch,
  };
}

/** `count` samples of `dbm` spread evenly over the `spanMs` before `now` (the last one at `now`). */
export function signalSamples(now: EpochMs, count: number, dbm: number | ((i: number) => number), spanMs = 4 * MINUTE_MS): SignalSample[] {
  const step = count > 1 ? spanMs / (count - 1) : 0;
  return Array.from({ length: count }, (_, i) => ({
    at: Math.round(now - spanMs + i * step),
    dbm: typeof dbm === 'function' ? dbm(i) : dbm,
  }));
}

export function deviceConditions(now: EpochMs, patch: Partial<DeviceConditions> = {}): DeviceConditions {
  return {
    online: true,
    report: deviceReport({}, now),
    signalSamples: signalSamples(now, 5, -55),
    dropouts: [],
    usage: [],
    ...patch,
  };
}

/**
 * A preflight input that passes every rule: Berlin, window 01:00–05:00, `now` defaulting to
 * 02:00 on Wednesday 2026-06-10, mains, strong steady WiFi, room to spare, idle, no history.
 */
export function preflightInput(patch: Partial<PreflightInput> = {}): PreflightInput {
  const timeZone = patch.timeZone ?? 'Europe/Berlin';
  const now = patch.now ?? local('2026-06-10T02:00', timeZone);
  return {
    now,
    stage: 'start',
    timeZone,
    window: { start: '01:00', end: '05:00' },
    learnQuietHours: false,
    homeUsage: [],
    device: { schedules: [] },
    conditions: deviceConditions(now),
    thresholds: { ...DEFAULT_THRESHOLDS },
    expectedInstallSeconds: 10 * 60,
    imageBytes: 8_000_000,
    ...patch,
  };
}

/**
 * Daily busy periods between two local wall times ("HH:MM", may cross midnight) on each of the
 * `days` days before `until` (its own day included when the period already ended).
 */
export function dailyUsage(until: EpochMs, timeZone: string, days: number, start: string, end: string): Interval[] {
  const out: Interval[] = [];
  const today = DateTime.fromMillis(until, { zone: timeZone }).startOf('day');
  const [sh, sm] = start.split(':').map(Number) as [number, number];
  const [eh, em] = end.split(':').map(Number) as [number, number];
  for (let d = days; d >= 0; d--) {
    const day = today.minus({ days: d });
    const s = day.set({ hour: sh, minute: sm });
    let e = day.set({ hour: eh, minute: em });
    if (e <= s) e = e.plus({ days: 1 });
    if (e.toMillis() <= until) out.push({ start: s.toMillis(), end: e.toMillis() });
  }
  return out;
}

/** A release of the Acme Plug (hardware revision A) with passing defaults; override what a test is about. */
export function release(fields: Partial<Release> & Pick<Release, 'version'>): Release {
  const vendor = fields.vendor ?? 'Acme';
  const model = fields.model ?? 'Plug';
  return {
    id: releaseId(vendor, model, fields.version),
    vendor,
    model,
    hardwareRevisions: ['A'],
    severity: 'none',
    vulnerabilitiesFixed: [],
    expectedInstallSeconds: 120,
    preflightOverrides: {},
    recovery: { steps: ['Unplug the plug for ten seconds, then plug it back in.'] },
    retracted: false,
    image: { path: 'acme/plug.bin', lengthBytes: 1024, sha256: 'ab'.repeat(32) },
    ...fields,
  };
}
