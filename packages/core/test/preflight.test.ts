import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DEFAULT_THRESHOLDS, MINUTE_MS, isFirmwardError, runPreflight } from '../src/index.ts';
import type { Interval, PreflightInput, PreflightRuleName, PreflightVerdict, RuleResult, UsageSchedule } from '../src/index.ts';
import { dailyUsage, deviceConditions, deviceReport, local, preflightInput, signalSamples, utc } from './fixtures.ts';

const BERLIN = 'Europe/Berlin';
const ORDER: PreflightRuleName[] = ['online', 'power', 'radio', 'storage', 'busy', 'needed-soon', 'window'];

function rule(verdict: PreflightVerdict, name: PreflightRuleName): RuleResult {
  const r = verdict.results.find((x) => x.rule === name);
  assert.ok(r, `no result for ${name}`);
  return r;
}

/** The default input with a different device report (and everything else passing). */
function withReport(patch: Parameters<typeof deviceReport>[0], base: Partial<PreflightInput> = {}): PreflightInput {
  const input = preflightInput(base);
  return { ...input, conditions: { ...input.conditions, report: deviceReport(patch, input.now) } };
}

test('every rule passes on a healthy, idle, mains-powered device inside the window', () => {
  const v = runPreflight(preflightInput());
  assert.equal(v.pass, true, JSON.stringify(v.failures));
  assert.deepEqual(v.results.map((r) => r.rule), ORDER);
  assert.deepEqual(v.failures, []);
  assert.equal(v.recheckAt, null);
  for (const r of v.results) assert.equal(r.recheckAt, null);
});

test('online: an offline device, and one that never reported', () => {
  const base = preflightInput();
  const offline = runPreflight({ ...base, conditions: { ...base.conditions, online: false } });
  assert.equal(offline.pass, false);
  assert.deepEqual(rule(offline, 'online'), { rule: 'online', pass: false, code: 'device_offline', message: 'The device is offline.', recheckAt: null });

  const silent = runPreflight({ ...base, conditions: { ...base.conditions, report: null } });
  assert.equal(rule(silent, 'online').code, 'no_report');
  // Rules that read the report cannot pass without one.
  for (const name of ['power', 'radio', 'storage', 'busy'] as const) assert.equal(rule(silent, name).code, 'no_report');
  assert.equal(silent.pass, false);
});

test('power: mains, charged, charging, low and unknown battery', () => {
  assert.equal(rule(runPreflight(withReport({ powerSource: 'mains', batteryPercent: 5 })), 'power').code, 'mains');
  const ok = rule(runPreflight(withReport({ powerSource: 'battery', batteryPercent: 50 })), 'power');
  assert.equal(ok.pass, true);
  assert.equal(ok.code, 'battery_ok');
  const charging = rule(runPreflight(withReport({ powerSource: 'battery', batteryPercent: 10, charging: true })), 'power');
  assert.equal(charging.pass, true);
  assert.equal(charging.code, 'battery_charging');

  const input = withReport({ powerSource: 'battery', batteryPercent: 23 });
  const low = runPreflight(input);
  assert.equal(low.pass, false);
  assert.deepEqual(rule(low, 'power'), {
    rule: 'power', pass: false, code: 'battery_low', message: 'Battery 23 %, needs 50 % or charging.', recheckAt: input.now + 15 * MINUTE_MS,
  });
  // 49.6 % is not rounded up to the threshold it misses.
  assert.equal(rule(runPreflight(withReport({ powerSource: 'battery', batteryPercent: 49.6 })), 'power').message, 'Battery 49 %, needs 50 % or charging.');
  // The threshold comes from the merged thresholds.
  const lenient = withReport({ powerSource: 'battery', batteryPercent: 35 });
  assert.equal(rule(runPreflight({ ...lenient, thresholds: { ...lenient.thresholds, minBatteryPercent: 30 } }), 'power').pass, true);

  const unknown = rule(runPreflight(withReport({ powerSource: 'battery', batteryPercent: null })), 'power');
  assert.equal(unknown.pass, false);
  assert.equal(unknown.code, 'battery_unknown');
});

test('radio: wired devices pass; WiFi needs enough readings', () => {
  const wired = withReport({ signalDbm: null });
  const w = rule(runPreflight({ ...wired, conditions: { ...wired.conditions, signalSamples: [], dropouts: [wired.now - MINUTE_MS] } }), 'radio');
  assert.equal(w.pass, true);
  assert.equal(w.code, 'wired');

  const base = preflightInput();
  const few = runPreflight({ ...base, conditions: { ...base.conditions, signalSamples: signalSamples(base.now, 2, -50) } });
  assert.deepEqual(rule(few, 'radio'), {
    rule: 'radio', pass: false, code: 'signal_unmeasured', message: 'Measuring the WiFi signal; not enough readings yet.', recheckAt: base.now + MINUTE_MS,
  });
  // Readings older than the sampling window do not count.
  const stale = signalSamples(base.now - 10 * MINUTE_MS, 5, -50);
  assert.equal(rule(runPreflight({ ...base, conditions: { ...base.conditions, signalSamples: stale } }), 'radio').code, 'signal_unmeasured');
});

test('radio: a weak signal, in the readings or in the latest report', () => {
  const base = preflightInput();
  const samples = signalSamples(base.now, 5, (i) => (i === 2 ? -81 : -70));
  const weak = rule(runPreflight({ ...base, conditions: { ...base.conditions, signalSamples: samples } }), 'radio');
  assert.equal(weak.code, 'signal_weak');
  assert.equal(weak.message, 'WiFi signal −81 dBm, needs −72 dBm or stronger.');
  // Passes once that reading has left the 5-minute window.
  assert.equal(weak.recheckAt, (samples[2]?.at ?? 0) + 300_000 + 1);

  const report = withReport({ signalDbm: -75 });
  const r = rule(runPreflight(report), 'radio');
  assert.equal(r.code, 'signal_weak');
  assert.equal(r.message, 'WiFi signal −75 dBm, needs −72 dBm or stronger.');
  assert.ok(r.recheckAt !== null && r.recheckAt > report.now);
});

test('radio: an unsteady signal and a recent drop-out', () => {
  const base = preflightInput();
  const now = base.now;
  const swinging = [-68, -50, -52, -51, -50].map((dbm, i) => ({ at: now - (4 - i) * MINUTE_MS, dbm }));
  const unsteady = rule(runPreflight({ ...base, conditions: { ...base.conditions, signalSamples: swinging } }), 'radio');
  assert.equal(unsteady.code, 'signal_unstable');
  assert.equal(unsteady.message, 'WiFi signal unsteady (swings of 18 dB); waiting for it to settle.');
  // The −68 reading leaves the window at now + 1 min; the rest swing by 2 dB.
  assert.equal(unsteady.recheckAt, now + MINUTE_MS + 1);

  const dropped = now - 4 * MINUTE_MS;
  const drop = rule(runPreflight({ ...base, conditions: { ...base.conditions, dropouts: [now - 20 * MINUTE_MS, dropped] } }), 'radio');
  assert.deepEqual(drop, {
    rule: 'radio', pass: false, code: 'signal_dropout',
    message: 'The WiFi connection dropped 4 min ago; waiting until it has been steady for 15 min.',
    recheckAt: dropped + 15 * MINUTE_MS,
  });
  const old = rule(runPreflight({ ...base, conditions: { ...base.conditions, dropouts: [now - 16 * MINUTE_MS] } }), 'radio');
  assert.equal(old.pass, true);
  assert.equal(old.code, 'signal_ok');
});

test('storage: room for the image plus the margin', () => {
  const base = preflightInput({ imageBytes: 8_000_000 });
  const needed = 8_000_000 + DEFAULT_THRESHOLDS.freeStorageMarginBytes;
  assert.equal(rule(runPreflight(withReport({ freeStorageBytes: needed }, { imageBytes: 8_000_000 })), 'storage').pass, true);
  const low = rule(runPreflight(withReport({ freeStorageBytes: 5_000_000 }, { imageBytes: 8_000_000 })), 'storage');
  assert.deepEqual(low, { rule: 'storage', pass: false, code: 'storage_low', message: 'Only 5.0 MB free; the update needs 9.1 MB.', recheckAt: null });
  assert.equal(rule(runPreflight(withReport({ freeStorageBytes: needed - 1 }, { imageBytes: base.imageBytes })), 'storage').code, 'storage_low');
});

test('busy: waits until the device is idle', () => {
  const input = withReport({ busy: true });
  assert.deepEqual(rule(runPreflight(input), 'busy'), {
    rule: 'busy', pass: false, code: 'device_busy', message: 'In use right now; the update waits until it is idle.', recheckAt: input.now + 5 * MINUTE_MS,
  });
});

// Default input: Wednesday 2026-06-10 02:00 Berlin, 10 min install + 15 min margin → until 02:25.
const every = (start: string, end: string, weekdays: number[] = []): UsageSchedule => ({ weekdays, start, end });

test('needed-soon: a scheduled use inside the coming interval blocks, until it ends', () => {
  const soon = rule(runPreflight(preflightInput({ device: { schedules: [every('02:20', '03:00')] } })), 'needed-soon');
  assert.deepEqual(soon, {
    rule: 'needed-soon', pass: false, code: 'scheduled_use',
    message: 'Scheduled for use at 02:20; the update would not finish in time.', recheckAt: local('2026-06-10T03:00', BERLIN),
  });
  const now = rule(runPreflight(preflightInput({ device: { schedules: [every('01:30', '02:10')] } })), 'needed-soon');
  assert.equal(now.message, 'Scheduled for use until 02:10; the update waits until after.');
  assert.equal(now.recheckAt, local('2026-06-10T02:10', BERLIN));
  // Just after the interval: free.
  assert.equal(rule(runPreflight(preflightInput({ device: { schedules: [every('02:26', '03:00')] } })), 'needed-soon').code, 'no_scheduled_use');
});

test('needed-soon: schedules cross midnight and count from the weekday they start', () => {
  // Tuesday 23:00 → Wednesday 03:00 covers Wednesday 02:00.
  const tuesdayNight = rule(runPreflight(preflightInput({ device: { schedules: [every('23:00', '03:00', [2])] } })), 'needed-soon');
  assert.equal(tuesdayNight.code, 'scheduled_use');
  assert.equal(tuesdayNight.recheckAt, local('2026-06-10T03:00', BERLIN));
  // Wednesday's own night starts Wednesday 23:00: not yet.
  assert.equal(rule(runPreflight(preflightInput({ device: { schedules: [every('23:00', '03:00', [3])] } })), 'needed-soon').pass, true);
  // The same wall clock in Tokyo is Wednesday 09:00; a Wednesday 08:00–10:00 schedule applies there.
  const tokyo = preflightInput({ timeZone: 'Asia/Tokyo', now: utc('2026-06-10T00:00:00Z'), device: { schedules: [every('08:00', '10:00', [3])] } });
  assert.equal(rule(runPreflight(tokyo), 'needed-soon').code, 'scheduled_use');
  assert.throws(() => runPreflight(preflightInput({ device: { schedules: [every('08:00', '10:00', [7])] } })), (e) => isFirmwardError(e, 'invalid_input'));
});

function withUsage(usage: Interval[], patch: Partial<PreflightInput> = {}): PreflightInput {
  const input = preflightInput(patch);
  return { ...input, conditions: deviceConditions(input.now, { usage }) };
}

test('needed-soon: explicit schedules decide alone, history is then ignored', () => {
  const now = local('2026-06-10T02:00', BERLIN);
  const input = withUsage(dailyUsage(now, BERLIN, 14, '02:05', '02:40'), { device: { schedules: [every('12:00', '13:00')] } });
  const r = rule(runPreflight(input), 'needed-soon');
  assert.equal(r.pass, true);
  assert.equal(r.code, 'no_scheduled_use');
});

test('needed-soon: too little history passes and says so', () => {
  const now = local('2026-06-10T02:00', BERLIN);
  const r = rule(runPreflight(withUsage(dailyUsage(now, BERLIN, 2, '02:05', '02:40'))), 'needed-soon');
  assert.deepEqual(r, { rule: 'needed-soon', pass: true, code: 'no_usage_history', message: 'Not enough usage history to predict; assuming it is free.', recheckAt: null });
});

test('needed-soon: daily use right after now is predicted', () => {
  const now = local('2026-06-10T02:00', BERLIN);
  const r = rule(runPreflight(withUsage(dailyUsage(now, BERLIN, 14, '02:10', '02:40'))), 'needed-soon');
  assert.deepEqual(r, {
    rule: 'needed-soon', pass: false, code: 'needed_soon',
    message: 'Usually in use around 02:10; the update would not finish in time.', recheckAt: local('2026-06-10T02:40', BERLIN),
  });
  // Use that usually has already begun at this hour.
  const ongoing = rule(runPreflight(withUsage(dailyUsage(now, BERLIN, 14, '01:30', '02:50'))), 'needed-soon');
  assert.equal(ongoing.message, 'Usually in use at this time until about 02:50; the update waits until after.');
  assert.equal(ongoing.recheckAt, local('2026-06-10T02:50', BERLIN));
});

test('needed-soon: occasional use below the likelihood threshold passes', () => {
  // History from 14 days ago (an afternoon use), use at this hour on only 2 of 14 days.
  const usage = [
    { start: local('2026-05-26T15:00', BERLIN), end: local('2026-05-26T16:00', BERLIN) },
    { start: local('2026-06-02T02:10', BERLIN), end: local('2026-06-02T02:30', BERLIN) },
    { start: local('2026-06-08T02:10', BERLIN), end: local('2026-06-08T02:30', BERLIN) },
  ];
  const r = rule(runPreflight(withUsage(usage)), 'needed-soon');
  assert.equal(r.pass, true);
  assert.equal(r.code, 'not_needed_soon');
  assert.equal(r.message, 'Rarely in use at this time (2 of the last 14 days); it should stay free until the update is done.');
  // At a 10 % threshold the same history predicts use.
  const strict = withUsage(usage);
  assert.equal(rule(runPreflight({ ...strict, thresholds: { ...strict.thresholds, usageLikelihood: 0.1 } }), 'needed-soon').code, 'needed_soon');
});

test('needed-soon: the same local time on past days, across the spring-forward change', () => {
  // Monday after the change; the 07:30 use happened at 07:30 local on every day, CET or CEST.
  const now = local('2026-03-30T07:10', BERLIN);
  const input = withUsage(dailyUsage(now, BERLIN, 14, '07:30', '08:00'), { now, window: { start: '00:00', end: '00:00' } });
  const r = rule(runPreflight(input), 'needed-soon');
  assert.equal(r.code, 'needed_soon');
  assert.equal(r.message, 'Usually in use around 07:30; the update would not finish in time.');
  assert.equal(r.recheckAt, local('2026-03-30T08:00', BERLIN));
});

test('both stages run every rule with the same interval', () => {
  const now = local('2026-06-10T02:00', BERLIN);
  const input = withUsage(dailyUsage(now, BERLIN, 14, '02:20', '02:40'));
  const start = runPreflight({ ...input, stage: 'start' });
  const install = runPreflight({ ...input, stage: 'install' });
  assert.deepEqual(install, start);
  assert.deepEqual(install.results.map((r) => r.rule), ORDER);
  assert.equal(rule(install, 'needed-soon').code, 'needed_soon');
});

test('window: outside the quiet hours, and too little of them left', () => {
  const noon = preflightInput({ now: local('2026-06-10T12:00', BERLIN) });
  assert.deepEqual(rule(runPreflight(noon), 'window'), {
    rule: 'window', pass: false, code: 'outside_window',
    message: 'Outside the quiet hours 01:00–05:00; next chance tonight at 01:00.', recheckAt: local('2026-06-11T01:00', BERLIN),
  });
  const late = preflightInput({ now: local('2026-06-10T04:55', BERLIN) });
  assert.deepEqual(rule(runPreflight(late), 'window'), {
    rule: 'window', pass: false, code: 'window_too_short',
    message: 'The update takes about 10 min but the quiet hours end at 05:00; next chance tonight at 01:00.', recheckAt: local('2026-06-11T01:00', BERLIN),
  });
  assert.equal(rule(runPreflight(preflightInput({ now: local('2026-06-10T04:50', BERLIN) })), 'window').pass, true);
  assert.equal(rule(runPreflight(preflightInput({ now: local('2026-06-10T12:00', BERLIN), window: { start: '06:00', end: '06:00' } })), 'window').pass, true);
});

test('window: learned quiet hours replace the configured ones and say so', () => {
  const now = local('2026-06-10T01:30', BERLIN);
  const homeUsage = dailyUsage(now, BERLIN, 14, '05:00', '02:00');
  const base = preflightInput({ now, window: { start: '01:00', end: '04:00' }, learnQuietHours: true, homeUsage });
  assert.deepEqual(rule(runPreflight(base), 'window'), {
    rule: 'window', pass: false, code: 'outside_window',
    message: 'Outside the learned quiet hours 02:00–05:00; next chance tonight at 02:00.', recheckAt: local('2026-06-10T02:00', BERLIN),
  });
  const later = rule(runPreflight({ ...base, now: local('2026-06-10T03:00', BERLIN), conditions: deviceConditions(local('2026-06-10T03:00', BERLIN)) }), 'window');
  assert.equal(later.pass, true);
  assert.equal(later.message, 'Inside the learned quiet hours 02:00–05:00.');
  // Without learning, 01:30 is inside the configured window.
  assert.equal(rule(runPreflight({ ...base, learnQuietHours: false }), 'window').pass, true);
});

test('the same instant passes in New York and waits in Tokyo', () => {
  const at = utc('2026-06-10T06:00:00Z'); // 02:00 in New York, 15:00 in Tokyo
  const ny = runPreflight(preflightInput({ now: at, timeZone: 'America/New_York' }));
  const tokyo = runPreflight(preflightInput({ now: at, timeZone: 'Asia/Tokyo' }));
  assert.equal(ny.pass, true, JSON.stringify(ny.failures));
  assert.equal(tokyo.pass, false);
  assert.deepEqual(tokyo.failures.map((f) => f.code), ['outside_window']);
  assert.equal(tokyo.failures[0]?.message, 'Outside the quiet hours 01:00–05:00; next chance tonight at 01:00.');
  assert.equal(tokyo.recheckAt, utc('2026-06-10T16:00:00Z'));
});

test('verdict: recheckAt is the latest of the failures that name a time', () => {
  const both = withReport({ powerSource: 'battery', batteryPercent: 10, busy: true, freeStorageBytes: 0 });
  const v = runPreflight(both);
  assert.deepEqual(v.failures.map((f) => f.code), ['battery_low', 'storage_low', 'device_busy']);
  assert.equal(v.recheckAt, both.now + 15 * MINUTE_MS);
  const onlyStorage = runPreflight(withReport({ freeStorageBytes: 0 }));
  assert.equal(onlyStorage.pass, false);
  assert.equal(onlyStorage.recheckAt, null);
  assert.throws(() => runPreflight({ ...preflightInput(), timeZone: 'Atlantis/Capital' }), (e) => isFirmwardError(e, 'invalid_input'));
});

// ---- properties over arbitrary inputs ----

const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Lord_Howe', 'UTC'];
const timeOfDay = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);

const arbInput: fc.Arbitrary<PreflightInput> = fc.record({
  now: fc.integer({ min: utc('2026-01-01T00:00:00Z'), max: utc('2027-01-01T00:00:00Z') }),
  stage: fc.constantFrom('start' as const, 'install' as const),
  timeZone: fc.constantFrom(...ZONES),
  window: fc.record({ start: timeOfDay, end: timeOfDay }),
  learnQuietHours: fc.boolean(),
  online: fc.boolean(),
  report: fc.option(fc.record({
    powerSource: fc.constantFrom('mains' as const, 'battery' as const),
    batteryPercent: fc.option(fc.integer({ min: 0, max: 100 })),
    charging: fc.boolean(),
    signalDbm: fc.option(fc.integer({ min: -95, max: -30 })),
    busy: fc.boolean(),
    freeStorageBytes: fc.integer({ min: 0, max: 50_000_000 }),
  })),
  samples: fc.array(fc.record({ agoMs: fc.integer({ min: 0, max: 10 * MINUTE_MS }), dbm: fc.integer({ min: -95, max: -30 }) }), { maxLength: 12 }),
  dropoutsAgoMs: fc.array(fc.integer({ min: 0, max: 60 * MINUTE_MS }), { maxLength: 3 }),
  usage: fc.array(fc.record({ agoMin: fc.integer({ min: 0, max: 20 * 1440 }), lengthMin: fc.integer({ min: 1, max: 600 }) }), { maxLength: 25 }),
  schedules: fc.array(fc.record({ weekdays: fc.uniqueArray(fc.integer({ min: 0, max: 6 }), { maxLength: 7 }), start: timeOfDay, end: timeOfDay }), { maxLength: 2 }),
  minBatteryPercent: fc.integer({ min: 0, max: 100 }),
  usageLikelihood: fc.double({ min: 0, max: 1, noNaN: true }),
  expectedInstallSeconds: fc.integer({ min: 0, max: 4 * 3600 }),
  imageBytes: fc.integer({ min: 0, max: 40_000_000 }),
}).map((a) => {
  const usage = a.usage
    .map((u) => ({ start: a.now - u.agoMin * MINUTE_MS, end: a.now - u.agoMin * MINUTE_MS + u.lengthMin * MINUTE_MS }))
    .sort((x, y) => x.start - y.start);
  return {
    now: a.now,
    stage: a.stage,
    timeZone: a.timeZone,
    window: a.window,
    learnQuietHours: a.learnQuietHours,
    homeUsage: usage,
    device: { schedules: a.schedules },
    conditions: {
      online: a.online,
      report: a.report ? deviceReport(a.report, a.now) : null,
      signalSamples: a.samples.map((s) => ({ at: a.now - s.agoMs, dbm: s.dbm })),
      dropouts: a.dropoutsAgoMs.map((ago) => a.now - ago),
      usage,
    },
    thresholds: { ...DEFAULT_THRESHOLDS, minBatteryPercent: a.minBatteryPercent, usageLikelihood: a.usageLikelihood },
    expectedInstallSeconds: a.expectedInstallSeconds,
    imageBytes: a.imageBytes,
  };
});

test('property: never passes on a battery below the threshold that is not charging', () => {
  fc.assert(fc.property(arbInput, fc.integer({ min: 1, max: 100 }), fc.integer({ min: 0, max: 99 }), (input, min, below) => {
    const percent = below % min;
    const report = deviceReport({ ...input.conditions.report, powerSource: 'battery', charging: false, batteryPercent: percent }, input.now);
    const v = runPreflight({ ...input, conditions: { ...input.conditions, report }, thresholds: { ...input.thresholds, minBatteryPercent: min } });
    assert.equal(v.pass, false);
    assert.ok(v.failures.some((f) => f.code === 'battery_low'));
  }), { numRuns: 150 });
});

test('property: the verdict passes exactly when every rule passes, in the fixed order', () => {
  fc.assert(fc.property(arbInput, (input) => {
    const v = runPreflight(input);
    assert.deepEqual(v.results.map((r) => r.rule), ORDER);
    assert.equal(v.pass, v.results.every((r) => r.pass));
    assert.deepEqual(v.failures, v.results.filter((r) => !r.pass));
    for (const r of v.results) {
      assert.ok(r.code.length > 0 && /^[A-Z0-9].*\.$/.test(r.message), `${r.code}: ${r.message}`);
      if (r.pass) assert.equal(r.recheckAt, null);
    }
  }), { numRuns: 200 });
});

test('property: a failing verdict never asks to be rechecked in the past', () => {
  fc.assert(fc.property(arbInput, (input) => {
    const v = runPreflight(input);
    for (const f of v.failures) if (f.recheckAt !== null) assert.ok(f.recheckAt >= input.now, `${f.code} rechecks before now`);
    if (v.recheckAt !== null) {
      assert.ok(v.recheckAt >= input.now);
      assert.equal(v.recheckAt, Math.max(...v.failures.flatMap((f) => (f.recheckAt === null ? [] : [f.recheckAt]))));
    } else {
      assert.ok(v.failures.every((f) => f.recheckAt === null));
    }
  }), { numRuns: 200 });
});
