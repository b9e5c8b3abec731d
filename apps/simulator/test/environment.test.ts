import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '@firmward/core';
import { SeededRandom, SimulatedEnvironment, demoProfiles, inDailyWindow } from '../src/index.ts';
import type { DeviceProfile } from '../src/index.ts';

// Monday 2 March 2026, 00:00 in Berlin (UTC+1).
const MIDNIGHT_BERLIN = Date.UTC(2026, 2, 1, 23, 0);
const at = (hours: number, minutes = 0) => MIDNIGHT_BERLIN + hours * HOUR_MS + minutes * MINUTE_MS;

describe('daily windows in local time', () => {
  test('inside, outside, crossing midnight', () => {
    const evening = { start: '18:00', end: '23:00' };
    assert.equal(inDailyWindow(at(19), 'Europe/Berlin', evening), true);
    assert.equal(inDailyWindow(at(17, 59), 'Europe/Berlin', evening), false);
    assert.equal(inDailyWindow(at(23), 'Europe/Berlin', evening), false, 'the end is not inside');
    const night = { start: '22:00', end: '06:00' };
    assert.equal(inDailyWindow(at(23, 30), 'Europe/Berlin', night), true);
    assert.equal(inDailyWindow(at(5, 59), 'Europe/Berlin', night), true);
    assert.equal(inDailyWindow(at(6), 'Europe/Berlin', night), false);
    assert.equal(inDailyWindow(at(19), 'America/New_York', evening), false, 'the same instant is 13:00 in New York');
  });

  test('weekdays: a window crossing midnight belongs to the day it started', () => {
    // Monday = 1. Sunday night 23:30 → Monday 00:30 counts as Sunday (0).
    const sundayNight = { start: '23:00', end: '01:00', weekdays: [0] };
    assert.equal(inDailyWindow(at(0, 30), 'Europe/Berlin', sundayNight), true);
    assert.equal(inDailyWindow(at(23, 30), 'Europe/Berlin', sundayNight), false, 'Monday 23:30 is not Sunday');
    assert.equal(inDailyWindow(at(10), 'Europe/Berlin', { start: '09:00', end: '11:00', weekdays: [1] }), true);
    assert.equal(inDailyWindow(at(10), 'Europe/Berlin', { start: '09:00', end: '11:00', weekdays: [2, 3] }), false);
  });
});

describe('battery', () => {
  test('the hall sensor starts at 23 %, drains on battery and charges in its window', () => {
    const profile = demoProfiles().hallSensor;
    const env = new SimulatedEnvironment(profile, new SeededRandom(1), at(2));
    assert.equal(env.batteryPercent(at(2)), 23);
    assert.equal(env.charging(at(10)), false);
    const beforeCharge = env.batteryPercent(at(14))!;
    assert.ok(Math.abs(beforeCharge - (23 - 12 * 0.2)) < 0.01, `12 h at 0.2 %/h: ${beforeCharge}`);
    assert.equal(env.charging(at(15)), true);
    assert.ok(Math.abs(env.batteryPercent(at(16))! - (beforeCharge + 2 * 30)) < 0.01, 'two hours at 30 %/h');
    assert.equal(env.batteryPercent(at(16) + DAY_MS), 100, 'capped at 100 after the next day\'s charge');
    assert.equal(env.charging(at(16)), false);
  });

  test('a toggled charger overrides the schedule; null goes back to it', () => {
    const env = new SimulatedEnvironment(demoProfiles().hallSensor, new SeededRandom(1), at(2));
    env.setCharging(true, at(2));
    assert.equal(env.charging(at(3)), true);
    assert.ok(env.batteryPercent(at(3))! > 50);
    env.setCharging(null, at(3));
    assert.equal(env.charging(at(4)), false);
  });

  test('a week of drain runs in one call and never goes below 0', () => {
    const profile: DeviceProfile = {
      ...demoProfiles().hallSensor,
      battery: { startPercent: 10, drainPercentPerHour: 1, chargePercentPerHour: 0, chargingWindows: [] },
    };
    const env = new SimulatedEnvironment(profile, new SeededRandom(1), at(0));
    assert.equal(env.batteryPercent(at(0) + 7 * DAY_MS), 0);
  });

  test('mains devices report no battery', () => {
    const env = new SimulatedEnvironment(demoProfiles().kitchenPlug, new SeededRandom(1), at(0));
    assert.deepEqual(env.conditions(at(1)), {
      powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: env.signalDbm(at(1)), busy: false,
      freeStorageBytes: demoProfiles().kitchenPlug.slotCapacityBytes,
    });
  });
});

describe('signal', () => {
  test('drifts around its base within its bounds, the same for the same seed', () => {
    const profile = demoProfiles().porchCamera;
    const a = new SimulatedEnvironment(profile, new SeededRandom(7), at(0));
    const b = new SimulatedEnvironment(profile, new SeededRandom(7), at(0));
    const c = new SimulatedEnvironment(profile, new SeededRandom(8), at(0));
    const samples = Array.from({ length: 500 }, (_, i) => at(0) + i * 3 * MINUTE_MS);
    const sa = samples.map((t) => a.signalDbm(t)!);
    assert.deepEqual(sa, samples.map((t) => b.signalDbm(t)));
    assert.notDeepEqual(sa, samples.map((t) => c.signalDbm(t)));
    const { baseDbm, driftDb } = profile.signal!;
    assert.ok(sa.every((dbm) => dbm >= baseDbm - driftDb - 1 && dbm <= baseDbm + driftDb + 1));
    assert.ok(Math.max(...sa) - Math.min(...sa) > driftDb, 'it really wanders');
  });

  test('drop-outs follow the chance per hour and the daily schedule', () => {
    const profile = demoProfiles().porchCamera;
    const env = new SimulatedEnvironment(profile, new SeededRandom(3), at(0));
    let dropouts = 0;
    let wasDown = false;
    for (let t = at(0); t < at(0) + 20 * DAY_MS; t += 60_000) {
      const down = env.inDropout(t);
      if (down && !wasDown) dropouts++;
      wasDown = down;
    }
    // 480 hours at a 0.5 chance, plus 20 scheduled noon drop-outs (some may merge).
    assert.ok(dropouts > 200 && dropouts < 290, `${dropouts} drop-outs`);
    assert.equal(env.inDropout(at(12, 2)), true, 'the daily noon drop-out');
    const wired = new SimulatedEnvironment(demoProfiles().livingRoomTv, new SeededRandom(3), at(0));
    assert.equal(wired.signalDbm(at(1)), null);
    assert.equal(wired.inDropout(at(12, 2)), false);
  });

  test('busy follows the usage pattern in local time and the override', () => {
    const env = new SimulatedEnvironment(demoProfiles().livingRoomTv, new SeededRandom(1), at(0));
    assert.equal(env.busy(at(7, 30)), true);
    assert.equal(env.busy(at(12)), false);
    assert.equal(env.busy(at(20)), true);
    assert.equal(env.busy(at(2)), false);
    env.setBusy(true);
    assert.equal(env.busy(at(2)), true);
    env.setBusy(null);
    assert.equal(env.busy(at(2)), false);
  });
});
