/**
 * The per-home sequencer and the job state machine, attacked with random sequences of device
 * reports, clock jumps, device failures, silences and a person's actions (invariants 1, 3, 6).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_THRESHOLDS, FirmwardError, HOUR_MS, MINUTE_MS, isActive, isFirmwardError, isTerminal, newJob, sequenceHome, gate, transition,
} from '../src/index.ts';
import type { Device, DeviceConditions, DeviceReport, Home, HomeSnapshot, Job, JobEvent, Release } from '../src/index.ts';

// 2026-11-27 01:30 in Europe/Berlin (UTC+1): inside the default 01:00–05:00 window.
const NIGHT = Date.UTC(2026, 10, 27, 0, 30);

function home(overrides: Partial<Home['settings']> = {}): Home {
  return {
    id: 'home-1', name: 'Test home', halt: null,
    settings: {
      timeZone: 'Europe/Berlin', window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS, soakSeconds: 120, silenceTimeoutSeconds: 900, ...overrides,
    },
  };
}

function device(i: number): Device {
  return {
    id: `dev-${i}`, homeId: 'home-1', name: `Device ${i}`, vendor: 'acme', model: 'plug', hardwareRevision: 'A',
    firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [],
  };
}

const RELEASE: Release = {
  id: 'acme/plug/1.1.0', vendor: 'acme', model: 'plug', hardwareRevisions: ['A'], version: '1.1.0', severity: 'none',
  vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, retracted: false,
  recovery: { steps: ['Unplug it for ten seconds.'] }, image: { path: 'x.img', lengthBytes: 1000, sha256: 'a'.repeat(64) },
};

function report(now: number, p: Partial<DeviceReport> = {}): DeviceReport {
  return {
    at: now, firmwareVersion: '1.0.0', activeSlot: 'a', powerSource: 'mains', batteryPercent: null, charging: false,
    signalDbm: -50, busy: false, freeStorageBytes: 100_000_000, healthy: true, ...p,
  };
}

function goodConditions(now: number, p: Partial<DeviceReport> = {}): DeviceConditions {
  return {
    online: true, report: report(now, p), dropouts: [], usage: [],
    signalSamples: [0, 1, 2, 3, 4].map((k) => ({ at: now - k * 30_000, dbm: -50 })),
  };
}

function snapshot(now: number, h: Home, jobs: Job[], conditions: Map<string, DeviceConditions>, n: number): HomeSnapshot {
  const devices = new Map(Array.from({ length: n }, (_, i) => [`dev-${i}`, device(i)] as const));
  return { now, home: h, jobs, devices, conditions, releases: new Map([[RELEASE.id, RELEASE]]), homeUsage: [], listeningSince: 0 };
}

function queued(i: number, now: number): Job {
  return newJob({ id: `job-${i}`, homeId: 'home-1', deviceId: `dev-${i}`, releaseId: RELEASE.id, fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 2, requestedBy: null }, now);
}

test('offers exactly one device when several are ready', () => {
  const now = NIGHT;
  const conditions = new Map([0, 1, 2].map((i) => [`dev-${i}`, goodConditions(now)] as const));
  const d = sequenceHome(snapshot(now, home(), [0, 1, 2].map((i) => queued(i, now)), conditions, 3));
  const offers = d.steps.filter((s) => s.event.type === 'offer');
  assert.equal(offers.length, 1);
  assert.equal(d.activeJobId, offers[0]!.jobId);
  const held = d.steps.filter((s) => s.event.type === 'hold');
  assert.equal(held.length, 2);
  for (const h of held) assert.equal(h.event.type === 'hold' && h.event.reasons[0]!.code, 'in_line');
});

test('a low battery holds the device with a sentence and lets the next one go', () => {
  const now = NIGHT;
  const conditions = new Map([
    ['dev-0', goodConditions(now, { powerSource: 'battery', batteryPercent: 23, charging: false })],
    ['dev-1', goodConditions(now)],
  ]);
  const d = sequenceHome(snapshot(now, home(), [queued(0, now), queued(1, now)], conditions, 2));
  const hold = d.steps.find((s) => s.jobId === 'job-0');
  assert.ok(hold && hold.event.type === 'hold');
  assert.equal(hold.event.reasons[0]!.code, 'battery_low');
  assert.match(hold.event.reasons[0]!.message, /23 %/);
  assert.equal(d.steps.find((s) => s.jobId === 'job-1')?.event.type, 'offer');
});

test('while another device updates, a waiting device still says what it waits for', () => {
  const now = NIGHT;
  const ctx = { now, soakSeconds: 120 };
  const active = transition(queued(0, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, ctx).job;
  const conditions = new Map([
    ['dev-0', goodConditions(now)],
    ['dev-1', goodConditions(now, { powerSource: 'battery', batteryPercent: 23, charging: false })],
    ['dev-2', goodConditions(now)],
  ]);
  const d = sequenceHome(snapshot(now, home(), [active, queued(1, now), queued(2, now)], conditions, 3));
  assert.equal(d.activeJobId, 'job-0');
  assert.ok(!d.steps.some((s) => s.event.type === 'offer'));
  const reasonOf = (id: string) => {
    const step = d.steps.find((s) => s.jobId === id);
    return step?.event.type === 'hold' ? step.event.reasons[0]?.code : undefined;
  };
  assert.equal(reasonOf('job-1'), 'battery_low');
  assert.equal(reasonOf('job-2'), 'in_line');
});

test('nothing starts outside the window; a person\'s "update now" may pick the time but not skip safety', () => {
  const noon = Date.UTC(2026, 10, 27, 11, 0);
  const conditions = new Map([['dev-0', goodConditions(noon)], ['dev-1', goodConditions(noon, { busy: true })]]);
  const auto = sequenceHome(snapshot(noon, home(), [queued(0, noon)], conditions, 2));
  assert.equal(auto.steps[0]?.event.type, 'hold');
  assert.ok(auto.steps[0]?.event.type === 'hold' && auto.steps[0].event.reasons.some((r) => r.code === 'outside_window'));
  const person = { ...queued(0, noon), requestedBy: 'person:owner' };
  assert.equal(sequenceHome(snapshot(noon, home(), [person], conditions, 2)).steps[0]?.event.type, 'offer');
  const busyPerson = { ...queued(1, noon), requestedBy: 'person:owner' };
  const held = sequenceHome(snapshot(noon, home(), [busyPerson], conditions, 2)).steps[0];
  assert.ok(held?.event.type === 'hold' && held.event.reasons.some((r) => r.code === 'device_busy'));
});

test('a halted home offers nothing and says who failed', () => {
  const now = NIGHT;
  const h = { ...home(), halt: { jobId: 'job-9', deviceId: 'dev-1', at: now, message: 'failed' } };
  const d = sequenceHome(snapshot(now, h, [queued(0, now)], new Map([['dev-0', goodConditions(now)]]), 2));
  assert.equal(d.steps.length, 1);
  assert.ok(d.steps[0]!.event.type === 'hold');
  assert.match(d.steps[0]!.event.type === 'hold' ? d.steps[0]!.event.reasons[0]!.message : '', /Device 1/);
});

test('policy notify leaves the update to a person', () => {
  const now = NIGHT;
  const d = sequenceHome(snapshot(now, home({ policy: 'notify' }), [queued(0, now)], new Map([['dev-0', goodConditions(now)]]), 1));
  assert.equal(d.steps[0]?.event.type, 'hold');
});

test('a silent device fails, never succeeds; a slow one that still talks is left alone', () => {
  const now = NIGHT;
  const h = home();
  let job = transition(queued(0, now), { type: 'offer', expectedDoneAt: now + 10 * MINUTE_MS, forcedBy: null, reasons: [] }, { now, soakSeconds: 120 }).job;
  job = transition(job, { type: 'progress', phase: 'downloading', percent: 10 }, { now, soakSeconds: 120 }).job;
  const conditions = new Map([['dev-0', goodConditions(now)]]);
  // Far past the expected duration, but heard from a minute ago: never failed for being slow.
  const later = now + 3 * HOUR_MS;
  const talking = { ...job, lastHeardAt: later - MINUTE_MS };
  assert.deepEqual(sequenceHome(snapshot(later, h, [talking], conditions, 1)).steps, []);
  const silent = sequenceHome(snapshot(later, h, [job], conditions, 1));
  assert.equal(silent.steps[0]?.event.type, 'silent');
  const failed = transition(job, silent.steps[0].event, { now: later, soakSeconds: 120 }).job;
  assert.equal(failed.state, 'failed');
});

test('while it installs, a device may be quiet for as long as the maker says the install takes, and no longer', () => {
  const now = NIGHT;
  const slowRelease: Release = { ...RELEASE, expectedInstallSeconds: 1800 };
  let job = transition(queued(0, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, { now, soakSeconds: 120 }).job;
  job = transition(job, { type: 'progress', phase: 'downloaded', percent: 100 }, { now, soakSeconds: 120 }).job;
  job = transition(job, { type: 'approve-install' }, { now, soakSeconds: 120 }).job;
  const conditions = new Map([['dev-0', goodConditions(now)]]);
  const at = (t: number) => ({ ...snapshot(t, home(), [job], conditions, 1), releases: new Map([[slowRelease.id, slowRelease]]) });
  // Past the home's 15 min silence deadline, within the maker's 30 min install: left alone.
  assert.deepEqual(sequenceHome(at(now + 20 * MINUTE_MS)).steps.filter((st) => st.event.type === 'silent'), []);
  assert.equal(sequenceHome(at(now + 31 * MINUTE_MS)).steps[0]?.event.type, 'silent');
  // Before the install step the home's deadline applies as it is.
  const downloading = transition(queued(1, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, { now, soakSeconds: 120 }).job;
  const quiet = { ...snapshot(now + 16 * MINUTE_MS, home(), [downloading], new Map([['dev-1', goodConditions(now)]]), 2), releases: new Map([[slowRelease.id, slowRelease]]) };
  assert.equal(sequenceHome(quiet).steps[0]?.event.type, 'silent');
});

test('the install step needs the checks again; a failing check frees the home', () => {
  const now = NIGHT;
  let job = transition(queued(0, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, { now, soakSeconds: 120 }).job;
  job = transition(job, { type: 'progress', phase: 'downloaded', percent: 100 }, { now, soakSeconds: 120 }).job;
  const low = new Map([['dev-0', goodConditions(now, { powerSource: 'battery', batteryPercent: 10 })], ['dev-1', goodConditions(now)]]);
  const d = sequenceHome(snapshot(now, home(), [job, queued(1, now)], low, 2));
  assert.equal(d.steps.find((s) => s.jobId === 'job-0')?.event.type, 'defer-install');
  // Freed: the next device may start in the same pass.
  assert.equal(d.steps.find((s) => s.jobId === 'job-1')?.event.type, 'offer');
  const ok = sequenceHome(snapshot(now, home(), [job], new Map([['dev-0', goodConditions(now)]]), 1));
  assert.equal(ok.steps[0]?.event.type, 'approve-install');
});

test('cancel is refused from the install step on (invariant 6)', () => {
  const now = NIGHT;
  const ctx = { now, soakSeconds: 120 };
  let job = transition(queued(0, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, ctx).job;
  job = transition(job, { type: 'progress', phase: 'downloaded', percent: 100 }, ctx).job;
  assert.equal(transition(job, { type: 'cancel', by: 'person:owner', message: 'x' }, ctx).job.state, 'cancelled');
  job = transition(job, { type: 'approve-install' }, ctx).job;
  assert.throws(() => transition(job, { type: 'cancel', by: 'person:owner', message: 'x' }, ctx), (e: unknown) => isFirmwardError(e, 'cancel_too_late'));
  // The device cannot jump to installing on its own word.
  const offered = transition(queued(1, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, ctx).job;
  assert.throws(() => transition(offered, { type: 'progress', phase: 'installing', percent: 0 }, ctx), FirmwardError);
});

test('success only after the soak, on the new version, healthy', () => {
  const now = NIGHT;
  const ctx = { now, soakSeconds: 120 };
  let job = transition(queued(0, now), { type: 'offer', expectedDoneAt: now, forcedBy: null, reasons: [] }, ctx).job;
  job = transition(job, { type: 'progress', phase: 'downloaded', percent: 100 }, ctx).job;
  job = transition(job, { type: 'approve-install' }, ctx).job;
  job = transition(job, { type: 'progress', phase: 'rebooting', percent: null }, ctx).job;
  job = transition(job, { type: 'reported', version: '1.1.0', healthy: true }, ctx).job;
  assert.equal(job.state, 'confirming');
  assert.throws(() => transition(job, { type: 'soak-complete' }, ctx), FirmwardError);
  const after = now + 120_000;
  const conditions = new Map([['dev-0', goodConditions(after, { firmwareVersion: '1.1.0' })]]);
  const d = sequenceHome(snapshot(after, home(), [job], conditions, 1));
  assert.equal(d.steps[0]?.event.type, 'soak-complete');
  const rolledBack = transition({ ...job, state: 'rebooting' }, { type: 'reported', version: '1.0.0', healthy: true }, ctx).job;
  assert.equal(rolledBack.state, 'failed');
  assert.equal(rolledBack.failure?.rolledBack, true);
});

// ── properties ────────────────────────────────────────────────────────────────────────────

type Action =
  | { kind: 'report'; device: number; battery: number; charging: boolean; mains: boolean; dbm: number; busy: boolean; online: boolean }
  | { kind: 'jump'; minutes: number }
  | { kind: 'tick' }
  | { kind: 'device'; device: number; what: 'ack' | 'downloaded' | 'rebooting' | 'installed' | 'rolled-back' | 'failed' | 'replay-downloading' }
  | { kind: 'cancel'; device: number }
  | { kind: 'force'; device: number }
  | { kind: 'ignore'; device: number; on: boolean }
  | { kind: 'resume' };

const N = 4;
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant('report' as const), device: fc.integer({ min: 0, max: N - 1 }), battery: fc.integer({ min: 0, max: 100 }),
    charging: fc.boolean(), mains: fc.boolean(), dbm: fc.integer({ min: -95, max: -35 }), busy: fc.boolean(), online: fc.boolean(),
  }),
  fc.record({ kind: fc.constant('jump' as const), minutes: fc.integer({ min: 1, max: 600 }) }),
  fc.constant({ kind: 'tick' as const }),
  fc.constant({ kind: 'tick' as const }),
  fc.record({
    kind: fc.constant('device' as const), device: fc.integer({ min: 0, max: N - 1 }),
    what: fc.constantFrom('ack', 'downloaded', 'rebooting', 'installed', 'rolled-back', 'failed', 'replay-downloading'),
  }),
  fc.record({ kind: fc.constant('cancel' as const), device: fc.integer({ min: 0, max: N - 1 }) }),
  fc.record({ kind: fc.constant('force' as const), device: fc.integer({ min: 0, max: N - 1 }) }),
  fc.record({ kind: fc.constant('ignore' as const), device: fc.integer({ min: 0, max: N - 1 }), on: fc.boolean() }),
  fc.constant({ kind: 'resume' as const }),
);

test('property: invariants 1, 3 and 6 hold under any sequence of reports, failures, jumps and actions (a device set aside is never offered)', () => {
  fc.assert(
    fc.property(fc.array(actionArb, { minLength: 1, maxLength: 80 }), (actions) => {
      let now = NIGHT - 2 * HOUR_MS;
      let h = home();
      let jobs = Array.from({ length: N }, (_, i) => queued(i, now));
      const conditions = new Map(Array.from({ length: N }, (_, i) => [`dev-${i}`, goodConditions(now)] as const));
      const installedOnce = new Set<string>();
      const ignored = new Set<string>();
      const apply = (job: Job, event: JobEvent): Job | null => {
        try {
          const next = transition(job, event, { now, soakSeconds: 120 }).job;
          jobs = jobs.map((j) => (j.id === job.id ? next : j));
          if (next.state === 'failed') h = { ...h, halt: { jobId: next.id, deviceId: next.deviceId, at: now, message: 'failed' } };
          return next;
        } catch (e) {
          if (!(e instanceof FirmwardError)) throw e;
          return null;
        }
      };
      for (const a of actions) {
        switch (a.kind) {
          case 'report': {
            const prev = conditions.get(`dev-${a.device}`)!;
            const samples = [...prev.signalSamples, { at: now, dbm: a.dbm }].slice(-6);
            conditions.set(`dev-${a.device}`, {
              ...prev, online: a.online, signalSamples: samples,
              report: report(now, { powerSource: a.mains ? 'mains' : 'battery', batteryPercent: a.battery, charging: a.charging, signalDbm: a.dbm, busy: a.busy }),
            });
            break;
          }
          case 'jump':
            now += a.minutes * MINUTE_MS;
            break;
          case 'tick': {
            const snap = { ...snapshot(now, h, jobs, conditions, N), ignored: new Set(ignored) };
            const d = sequenceHome(snap);
            for (const step of d.steps) {
              const job = jobs.find((j) => j.id === step.jobId)!;
              // A device a person set aside is never offered anything.
              if (step.event.type === 'offer') assert.ok(!ignored.has(job.deviceId), `offered ${job.id} of a device set aside`);
              // Invariant 3: an offer or the install go-ahead only with a passing gate (or a recorded force).
              if (step.event.type === 'offer') assert.ok(gate(snap, job, 'start').pass, `offered ${job.id} with a failing gate`);
              if (step.event.type === 'approve-install' && !job.forcedBy) assert.ok(gate(snap, job, 'install').pass);
              apply(job, step.event);
            }
            break;
          }
          case 'device': {
            const job = jobs.find((j) => j.deviceId === `dev-${a.device}`)!;
            const events: Record<typeof a.what, JobEvent> = {
              ack: { type: 'heard' },
              downloaded: { type: 'progress', phase: 'downloaded', percent: 100 },
              rebooting: { type: 'progress', phase: 'rebooting', percent: null },
              installed: { type: 'reported', version: '1.1.0', healthy: true },
              'rolled-back': { type: 'device-failed', code: 'rolled_back', message: 'x', rolledBack: true },
              failed: { type: 'device-failed', code: 'failed', message: 'x', rolledBack: false },
              'replay-downloading': { type: 'progress', phase: 'downloading', percent: 5 },
            };
            apply(job, events[a.what]);
            break;
          }
          case 'cancel': {
            const job = jobs.find((j) => j.deviceId === `dev-${a.device}`)!;
            const wasInstalling = ['installing', 'rebooting', 'confirming'].includes(job.state);
            const next = apply(job, { type: 'cancel', by: 'person:owner', message: 'x' });
            // Invariant 6: from the install step on, cancel is refused.
            if (wasInstalling) assert.equal(next, null);
            break;
          }
          case 'force': {
            const job = jobs.find((j) => j.deviceId === `dev-${a.device}`)!;
            // The hub's force checks the home first (and the store's index would refuse too).
            if (h.halt || jobs.some((j) => isActive(j.state))) break;
            apply(job, { type: 'offer', expectedDoneAt: now, forcedBy: 'person:owner', reasons: [] });
            break;
          }
          case 'ignore':
            if (a.on) ignored.add(`dev-${a.device}`);
            else ignored.delete(`dev-${a.device}`);
            break;
          case 'resume':
            h = { ...h, halt: null };
            // A person resumes: finished jobs make way for fresh ones (the planner's job in the hub).
            jobs = jobs.map((j) => (isTerminal(j.state) ? { ...queued(Number(j.deviceId.slice(4)), now), id: `job-${j.deviceId}-${now}` } : j));
            break;
        }
        // Invariant 1: never more than one active job in the home.
        assert.ok(jobs.filter((j) => isActive(j.state)).length <= 1, 'two devices updating at once');
        for (const j of jobs) {
          if (['installing', 'rebooting', 'confirming'].includes(j.state)) installedOnce.add(j.id);
          // Invariant 6: a job that reached the install step never ends cancelled.
          if (installedOnce.has(j.id)) assert.notEqual(j.state, 'cancelled');
        }
      }
    }),
    { numRuns: 400 },
  );
});

test('a device a person set aside: its not yet started update is cancelled, never offered; the next device is offered instead', () => {
  const now = NIGHT;
  const conditions = new Map([0, 1].map((i) => [`dev-${i}`, goodConditions(now)] as const));
  const d = sequenceHome({ ...snapshot(now, home(), [queued(0, now), queued(1, now)], conditions, 2), ignored: new Set(['dev-0']) });
  const step0 = d.steps.find((s) => s.jobId === 'job-0');
  assert.equal(step0?.event.type, 'cancel');
  assert.ok(step0?.event.type === 'cancel' && /leave this device alone/.test(step0.event.message));
  assert.equal(d.steps.find((s) => s.jobId === 'job-1')?.event.type, 'offer');
  assert.equal(d.activeJobId, 'job-1');
});

test('a device that has not reported yet is held with that sentence once, not once per rule that needs a report', () => {
  const now = NIGHT;
  const conditions = new Map([['dev-0', { online: true, report: null, signalSamples: [], dropouts: [], usage: [] }]]);
  const d = sequenceHome(snapshot(now, home(), [queued(0, now)], conditions, 1));
  const held = d.steps[0]?.event;
  assert.equal(held?.type, 'hold');
  assert.deepEqual(held?.type === 'hold' && held.reasons.map((r) => r.code), ['no_report']);
});
