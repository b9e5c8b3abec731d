/**
 * The behaviour every Store adapter must have, as one reusable node:test suite. The SQLite adapter
 * runs it against a temp-file database; the PostgreSQL adapter runs the very same suite, so the
 * hub can rely on the port, not on an adapter (STYLE principle 5).
 *
 * Not exported from the package index: production code never needs it.
 *
 * @example
 * runStoreContract('SqliteStore', async () => SqliteStore.open(tempFile()));
 */
/* eslint @typescript-eslint/no-floating-promises: ["error", { "allowForKnownSafeCalls": [{ "from": "package", "name": ["test", "describe"], "package": "node:test" }] }] -- the relaxation eslint.config.js gives files under test folders: node:test's describe/test return promises the runner awaits. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  ACTIVE_STATES, DEFAULT_ROLLOUT_RULES, DEFAULT_THRESHOLDS, DEFAULT_WINDOW, actOnRollout, isFirmwardError, JOB_STATES, newJob, newRollout, TERMINAL_STATES,
} from '@firmward/core';
import type { Device, DeviceReport, ErrorCode, Home, Job, JobState, Release } from '@firmward/core';
import type { Enrollment, HistoryEvent, NewHistoryEvent, PendingDevice, PlannedJob, Store } from '../src/store.ts';

// ---- fixtures ----

const T0 = Date.UTC(2026, 0, 15, 2, 0, 0);

export function makeHome(id: string, patch: Partial<Home> = {}): Home {
  return {
    id,
    name: `Home ${id}`,
    settings: {
      timeZone: 'Europe/Berlin',
      window: DEFAULT_WINDOW,
      learnQuietHours: true,
      policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS,
      soakSeconds: 120,
      silenceTimeoutSeconds: 600,
    },
    halt: null,
    ...patch,
  };
}

export function makeDevice(id: string, homeId: string, patch: Partial<Device> = {}): Device {
  return {
    id,
    homeId,
    name: `Device ${id}`,
    vendor: 'acme',
    model: 'plug-2',
    hardwareRevision: 'r1',
    firmwareVersion: '1.0.0',
    policy: null,
    thresholds: {},
    schedules: [],
    ...patch,
  };
}

export function makeRelease(version: string, patch: Partial<Release> = {}): Release {
  return {
    id: `acme/plug-2/${version}`,
    vendor: 'acme',
    model: 'plug-2',
    hardwareRevisions: ['r1'],
    version,
    severity: 'none',
    vulnerabilitiesFixed: [],
    expectedInstallSeconds: 300,
    preflightOverrides: {},
    recovery: { steps: ['Unplug it for ten seconds, then plug it back in.'] },
    retracted: false,
    image: { path: `images/plug-2-${version}.bin`, lengthBytes: 1024, sha256: 'ab'.repeat(32) },
    ...patch,
  };
}

/** A job in `state`, with the fields that state would carry filled in. */
export function makeJob(id: string, homeId: string, deviceId: string, state: JobState = 'queued', patch: Partial<Job> = {}): Job {
  const job = newJob({
    id, homeId, deviceId, releaseId: 'acme/plug-2/2.0.0', fromVersion: '1.0.0', targetVersion: '2.0.0', priority: 10, requestedBy: null,
  }, T0);
  return { ...job, state, ...patch };
}

function makeReport(at: number, patch: Partial<DeviceReport> = {}): DeviceReport {
  return {
    at, firmwareVersion: '1.0.0', activeSlot: 'a', powerSource: 'mains', batteryPercent: null, charging: false,
    signalDbm: -60, busy: false, freeStorageBytes: 10_000_000, healthy: true, ...patch,
  };
}

function transitionEvent(job: Job, from: JobState, to: JobState, at = T0): NewHistoryEvent {
  return {
    at, homeId: job.homeId, deviceId: job.deviceId, jobId: job.id, kind: 'transition', from, to,
    code: to, message: `Moved to ${to}.`, actor: 'hub',
  };
}

/** A queued job for `deviceId` with the planner's history line, as the engine builds them. */
function planned(id: string, homeId: string, deviceId: string, at = T0): PlannedJob {
  const job = makeJob(id, homeId, deviceId, 'queued', { createdAt: at, updatedAt: at, stateSince: at });
  return {
    job,
    event: { at, homeId, deviceId, jobId: id, kind: 'decision', from: null, to: 'queued', code: 'planned', message: `Planned ${id}.`, actor: 'hub' },
  };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode | ErrorCode[]): Promise<void> {
  const codes = Array.isArray(code) ? code : [code];
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isFirmwardError(e), `expected a FirmwardError, got ${String(e)}`);
    assert.ok(codes.includes(e.code), `expected ${codes.join(' or ')}, got ${e.code}: ${e.message}`);
    return true;
  });
}

function isActiveState(s: JobState): boolean {
  return ACTIVE_STATES.includes(s);
}
function isOpenState(s: JobState): boolean {
  return !TERMINAL_STATES.includes(s);
}

/**
 * Registers the store contract as a node:test suite. `makeStore` returns a new, migrated, empty
 * store; the suite closes every store it makes.
 */
export function runStoreContract(name: string, makeStore: () => Promise<Store>): void {
  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const store = await makeStore();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  /** A home with `devices` devices: h, h-d0, h-d1, … */
  async function seedHome(store: Store, homeId: string, devices: number): Promise<string[]> {
    await store.putHome(makeHome(homeId));
    const ids: string[] = [];
    for (let i = 0; i < devices; i++) {
      const id = `${homeId}-d${i}`;
      await store.putDevice(makeDevice(id, homeId));
      ids.push(id);
    }
    return ids;
  }

  describe(`Store contract: ${name}`, () => {
    test('migrate is idempotent and keeps data', () => withStore(async (store) => {
      await store.putHome(makeHome('h1'));
      await store.migrate();
      await store.migrate();
      assert.deepEqual(await store.getHome('h1'), makeHome('h1'));
    }));

    describe('homes', () => {
      test('put, get, list, upsert', () => withStore(async (store) => {
        assert.equal(await store.getHome('nope'), null);
        assert.deepEqual(await store.listHomes(), []);
        await store.putHome(makeHome('b'));
        await store.putHome(makeHome('a'));
        assert.deepEqual(await store.getHome('a'), makeHome('a'));
        assert.deepEqual((await store.listHomes()).map((h) => h.id).sort(), ['a', 'b']);
        await rejectsWith(store.insertHome(makeHome('a', { name: 'Taken' })), 'conflict');
        await store.insertHome(makeHome('c'));
        assert.equal((await store.getHome('a'))?.name, 'Home a', 'a refused insert replaces nothing');
        await store.putHome(makeHome('a', { name: 'Renamed' }));
        assert.equal((await store.getHome('a'))?.name, 'Renamed');
        assert.equal((await store.listHomes()).length, 3);
      }));

      test('settings and halt update; unknown home is not_found', () => withStore(async (store) => {
        await store.putHome(makeHome('h'));
        const settings = { ...makeHome('h').settings, timeZone: 'America/New_York', policy: 'notify' as const };
        await store.updateHomeSettings('h', settings);
        assert.deepEqual((await store.getHome('h'))?.settings, settings);
        const halt = { jobId: 'j1', deviceId: 'd1', at: T0, message: 'Plug failed to update.' };
        await store.setHomeHalt('h', halt);
        assert.deepEqual((await store.getHome('h'))?.halt, halt);
        await store.setHomeHalt('h', null);
        assert.equal((await store.getHome('h'))?.halt, null);
        await rejectsWith(store.updateHomeSettings('nope', settings), 'not_found');
        await rejectsWith(store.setHomeHalt('nope', halt), 'not_found');
      }));
    });

    describe('devices', () => {
      test('put, get, list by home; a device needs its home', () => withStore(async (store) => {
        await store.putHome(makeHome('h1'));
        await store.putHome(makeHome('h2'));
        const d = makeDevice('d1', 'h1', { policy: 'manual', thresholds: { minBatteryPercent: 80 }, schedules: [{ weekdays: [1, 2], start: '07:00', end: '08:00' }] });
        await store.putDevice(d);
        await store.putDevice(makeDevice('d2', 'h2'));
        assert.deepEqual(await store.getDevice('d1'), { ...d, online: false, lastSeenAt: null, report: null, ignored: false });
        assert.equal(await store.getDevice('nope'), null);
        assert.deepEqual((await store.listDevices({ homeId: 'h1' })).map((x) => x.id), ['d1']);
        assert.deepEqual((await store.listDevices()).map((x) => x.id).sort(), ['d1', 'd2']);
        await rejectsWith(store.putDevice(makeDevice('d3', 'no-such-home')), 'not_found');
      }));

      test('putDevice updates identity but keeps telemetry', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        const report = makeReport(T0);
        await store.recordTelemetry('h-d0', { report, online: true });
        await store.putDevice(makeDevice('h-d0', 'h', { name: 'Kitchen plug', firmwareVersion: '1.1.0' }));
        const row = await store.getDevice('h-d0');
        assert.equal(row?.name, 'Kitchen plug');
        assert.equal(row?.firmwareVersion, '1.1.0');
        assert.equal(row?.online, true);
        assert.deepEqual(row?.report, report);
        assert.equal(row?.lastSeenAt, T0);
      }));

      test('updateDeviceSettings changes only the fields given', () => withStore(async (store) => {
        await store.putHome(makeHome('h'));
        await store.putDevice(makeDevice('d', 'h', { policy: 'manual', thresholds: { minBatteryPercent: 80 } }));
        await store.updateDeviceSettings('d', { schedules: [{ weekdays: [], start: '22:00', end: '23:00' }] });
        let row = await store.getDevice('d');
        assert.equal(row?.policy, 'manual');
        assert.deepEqual(row?.thresholds, { minBatteryPercent: 80 });
        assert.deepEqual(row?.schedules, [{ weekdays: [], start: '22:00', end: '23:00' }]);
        await store.updateDeviceSettings('d', { policy: null, thresholds: { minSignalDbm: -65 } });
        row = await store.getDevice('d');
        assert.equal(row?.policy, null);
        assert.deepEqual(row?.thresholds, { minSignalDbm: -65 });
        assert.equal(row?.schedules.length, 1);
        await rejectsWith(store.updateDeviceSettings('nope', { policy: 'automatic' }), 'not_found');
      }));
    });

    describe('telemetry', () => {
      test('report, online, last seen; an older report never replaces a newer one', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        const newer = makeReport(T0 + 60_000, { batteryPercent: 40 });
        await store.recordTelemetry('h-d0', { report: newer, online: true });
        await store.recordTelemetry('h-d0', { report: makeReport(T0, { batteryPercent: 90 }) });
        const row = await store.getDevice('h-d0');
        assert.deepEqual(row?.report, newer);
        assert.equal(row?.lastSeenAt, T0 + 60_000);
        assert.equal(row?.online, true);
        await store.recordTelemetry('h-d0', { online: false });
        assert.equal((await store.getDevice('h-d0'))?.online, false);
        await rejectsWith(store.recordTelemetry('nope', { online: true }), 'not_found');
      }));

      test('signal samples, drop-outs and usage are read by window', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        for (let i = 0; i < 5; i++) {
          await store.recordTelemetry('h-d0', { signalSample: { at: T0 + i * 1000, dbm: -60 - i } });
        }
        await store.recordTelemetry('h-d0', { dropoutAt: T0 + 500 });
        await store.recordTelemetry('h-d0', { dropoutAt: T0 + 3500 });
        await store.recordTelemetry('h-d0', { usage: { start: T0 - 10_000, end: T0 - 5000 } });
        await store.recordTelemetry('h-d0', { usage: { start: T0 - 4000, end: T0 + 2000 } });
        await store.recordTelemetry('h-d0', { usage: { start: T0 + 3000, end: T0 + 4000 } });
        const t = await store.getTelemetry('h-d0', T0 + 2000, T0);
        assert.deepEqual(t.signalSamples, [{ at: T0 + 2000, dbm: -62 }, { at: T0 + 3000, dbm: -63 }, { at: T0 + 4000, dbm: -64 }]);
        assert.deepEqual(t.dropouts, [T0 + 3500]);
        // Usage counts when it was still going on at or after usageSince.
        assert.deepEqual(t.usage, [{ start: T0 - 4000, end: T0 + 2000 }, { start: T0 + 3000, end: T0 + 4000 }]);
        assert.equal((await store.getDevice('h-d0'))?.lastSeenAt, T0 + 4000);
        await rejectsWith(store.recordTelemetry('h-d0', { usage: { start: T0, end: T0 - 1 } }), 'invalid_input');
      }));

      test('home usage covers every device of that home only', () => withStore(async (store) => {
        await seedHome(store, 'h1', 2);
        await seedHome(store, 'h2', 1);
        await store.recordTelemetry('h1-d0', { usage: { start: T0, end: T0 + 1000 } });
        await store.recordTelemetry('h1-d1', { usage: { start: T0 + 5000, end: T0 + 6000 } });
        await store.recordTelemetry('h1-d1', { usage: { start: T0 - 9000, end: T0 - 8000 } });
        await store.recordTelemetry('h2-d0', { usage: { start: T0 + 100, end: T0 + 200 } });
        assert.deepEqual(await store.getHomeUsage('h1', T0 - 1000), [{ start: T0, end: T0 + 1000 }, { start: T0 + 5000, end: T0 + 6000 }]);
        assert.deepEqual(await store.getHomeUsage('h2', 0), [{ start: T0 + 100, end: T0 + 200 }]);
        assert.deepEqual(await store.getHomeUsage('nope', 0), []);
      }));

      test('prune drops only what is older than the cut', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        await store.recordTelemetry('h-d0', { signalSample: { at: T0, dbm: -60 }, dropoutAt: T0, usage: { start: T0 - 2000, end: T0 - 1000 } });
        await store.recordTelemetry('h-d0', { signalSample: { at: T0 + 5000, dbm: -61 }, dropoutAt: T0 + 5000, usage: { start: T0 + 4000, end: T0 + 6000 } });
        await store.pruneTelemetry({ signalBefore: T0 + 1, usageBefore: T0 - 1500 });
        let t = await store.getTelemetry('h-d0', 0, 0);
        assert.deepEqual(t.signalSamples, [{ at: T0 + 5000, dbm: -61 }]);
        assert.deepEqual(t.dropouts, [T0 + 5000]);
        assert.deepEqual(t.usage, [{ start: T0 - 2000, end: T0 - 1000 }, { start: T0 + 4000, end: T0 + 6000 }]);
        await store.pruneTelemetry({ signalBefore: T0 + 1, usageBefore: T0 + 1 });
        t = await store.getTelemetry('h-d0', 0, 0);
        assert.deepEqual(t.usage, [{ start: T0 + 4000, end: T0 + 6000 }]);
      }));
    });

    describe('job order', () => {
      test('run order is priority then oldest; newest order is most recent first', () => withStore(async (store) => {
        await store.putHome(makeHome('h1'));
        await store.putDevice(makeDevice('d1', 'h1'));
        await store.insertJob(makeJob('old', 'h1', 'd1', 'succeeded', { priority: 0, createdAt: T0 }));
        await store.insertJob(makeJob('mid', 'h1', 'd1', 'failed', { priority: 2, createdAt: T0 + 1000 }));
        await store.insertJob(makeJob('new', 'h1', 'd1', 'queued', { priority: 1, createdAt: T0 + 2000 }));
        assert.deepEqual((await store.listJobs({ deviceId: 'd1' })).map((j) => j.id), ['old', 'new', 'mid']);
        assert.deepEqual((await store.listJobs({ deviceId: 'd1', order: 'newest' })).map((j) => j.id), ['new', 'mid', 'old']);
      }));
    });

    describe('open job targets', () => {
      test('lists every open job, beyond any list limit, and no finished one', () => withStore(async (store) => {
        await store.putHome(makeHome('h1'));
        for (let i = 0; i < 1100; i++) await store.putDevice(makeDevice(`d${i}`, 'h1'));
        await store.transaction(async (tx) => {
          for (let i = 0; i < 1100; i++) await tx.insertJob(makeJob(`j${i}`, 'h1', `d${i}`, i === 0 ? 'succeeded' : 'queued'));
        });
        const targets = await store.listOpenJobTargets();
        assert.equal(targets.length, 1099);
        assert.ok(!targets.some((t) => t.deviceId === 'd0'));
      }));
    });

    describe('skips and device credentials', () => {
      test('a skip is kept once per device and release, and lifted for the device', () => withStore(async (store) => {
        await store.putHome(makeHome('h1'));
        await store.putDevice(makeDevice('d1', 'h1'));
        await store.putDevice(makeDevice('d2', 'h1'));
        await store.addSkip('d1', 'acme/plug/2.0.0', 1, 'person:owner');
        await store.addSkip('d1', 'acme/plug/2.0.0', 2, 'person:owner');
        await store.addSkip('d2', 'acme/plug/2.0.0', 3, 'person:owner');
        assert.deepEqual([...(await store.listSkips())].sort(), ['d1|acme/plug/2.0.0', 'd2|acme/plug/2.0.0']);
        await store.removeSkips('d1');
        assert.deepEqual([...(await store.listSkips())], ['d2|acme/plug/2.0.0']);
      }));

      test('a device secret hash is stored and replaced, never mixed up between devices', () => withStore(async (store) => {
        await store.putHome(makeHome('h1'));
        await store.putDevice(makeDevice('d1', 'h1'));
        await store.putDevice(makeDevice('d2', 'h1'));
        assert.equal(await store.getDeviceSecret('d1'), null);
        await store.setDeviceSecret('d1', 'hash-1');
        await store.setDeviceSecret('d2', 'hash-2');
        await store.setDeviceSecret('d1', 'hash-1b');
        assert.equal(await store.getDeviceSecret('d1'), 'hash-1b');
        assert.equal(await store.getDeviceSecret('d2'), 'hash-2');
      }));
    });

    describe('onboarding: homes and devices come and go', () => {
      function makeEnrollment(id: string, homeId: string, patch: Partial<Enrollment> = {}): Enrollment {
        return { id, homeId, codeDigest: `digest-${id}`, createdAt: T0, expiresAt: T0 + 3_600_000, createdBy: 'person:owner', usedAt: null, usedBy: null, ...patch };
      }
      function makePending(id: string, homeId: string | null, deviceId: string, patch: Partial<PendingDevice> = {}): PendingDevice {
        return {
          id, homeId, deviceId, protocol: 'agent', name: `Device ${deviceId}`, vendor: 'acme', model: 'plug-2', hardwareRevision: 'r1',
          firmwareVersion: '1.0.0', secretHash: 'hash', enrollmentId: null, state: 'waiting', requestedAt: T0, requestedFrom: '127.0.0.1',
          decidedAt: null, decidedBy: null, ...patch,
        };
      }

      test('deleting a home takes its devices, jobs, credentials, telemetry, enrollments and waiting devices; the history stays', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await seedHome(store, 'other', 1);
        await store.setDeviceSecret(d0!, 'hash-0');
        await store.recordTelemetry(d0!, { report: makeReport(T0), online: true, signalSample: { at: T0, dbm: -60 }, usage: { start: T0, end: T0 + 1 } });
        await store.addSkip(d1!, 'acme/plug-2/2.0.0', T0, 'person:owner');
        await store.insertJob(makeJob('j-done', 'h', d0!, 'succeeded'));
        await store.insertJob(makeJob('j-open', 'h', d1!, 'cancelled'));
        await store.insertEnrollment(makeEnrollment('e1', 'h'));
        await store.insertPendingDevice(makePending('p1', 'h', 'newcomer'));
        await store.appendEvent({ at: T0, homeId: 'h', deviceId: d0!, jobId: null, kind: 'person', from: null, to: null, code: 'x', message: 'Kept.', actor: 'person:owner' });
        await store.claimHomes({ owner: 'hub-a', now: T0, leaseMs: 10_000 });
        await store.deleteHome('h');
        assert.equal(await store.getHome('h'), null);
        assert.deepEqual((await store.listDevices()).map((d) => d.id), ['other-d0']);
        assert.equal(await store.getJob('j-done'), null);
        assert.equal(await store.getDeviceSecret(d0!), null);
        assert.deepEqual(await store.listEnrollments({}), []);
        assert.deepEqual(await store.listPendingDevices({}), []);
        assert.equal((await store.listSkips()).size, 0);
        assert.equal((await store.listEvents({ homeId: 'h', limit: 10 })).length, 1);
        assert.deepEqual(await store.claimHomes({ owner: 'hub-a', now: T0, leaseMs: 10_000 }), ['other']);
        await rejectsWith(store.deleteHome('h'), 'not_found');
      }));

      test('deleting a device takes its jobs and credential; ignoring one is kept', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await store.setDeviceSecret(d0!, 'hash-0');
        await store.insertJob(makeJob('j0', 'h', d0!, 'failed'));
        await store.deleteDevice(d0!);
        assert.equal(await store.getDevice(d0!), null);
        assert.equal(await store.getJob('j0'), null);
        assert.equal(await store.getDeviceSecret(d0!), null);
        await rejectsWith(store.deleteDevice(d0!), 'not_found');
        await store.setDeviceIgnored(d1!, true);
        assert.equal((await store.getDevice(d1!))?.ignored, true);
        // putDevice (a bridge renaming it) leaves the person's choice alone.
        await store.putDevice(makeDevice(d1!, 'h', { name: 'Renamed' }));
        assert.equal((await store.getDevice(d1!))?.ignored, true);
        await store.setDeviceIgnored(d1!, false);
        assert.equal((await store.getDevice(d1!))?.ignored, false);
        await rejectsWith(store.setDeviceIgnored('nope', true), 'not_found');
      }));

      test('credentials: list and revoke', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await store.setDeviceSecret(d1!, 'hash-1');
        await store.setDeviceSecret(d0!, 'hash-0');
        assert.deepEqual(await store.listDeviceSecrets(), [{ deviceId: d0!, secretHash: 'hash-0' }, { deviceId: d1!, secretHash: 'hash-1' }]);
        await store.deleteDeviceSecret(d0!);
        await store.deleteDeviceSecret(d0!);
        assert.deepEqual(await store.listDeviceSecrets(), [{ deviceId: d1!, secretHash: 'hash-1' }]);
      }));

      test('an enrollment code is found by its digest and used once', () => withStore(async (store) => {
        await store.putHome(makeHome('h'));
        await store.insertEnrollment(makeEnrollment('e1', 'h'));
        await store.insertEnrollment(makeEnrollment('e2', 'h', { createdAt: T0 + 1 }));
        await rejectsWith(store.insertEnrollment(makeEnrollment('e3', 'h', { codeDigest: 'digest-e1' })), 'conflict');
        await rejectsWith(store.insertEnrollment(makeEnrollment('e4', 'no-such-home')), 'not_found');
        assert.deepEqual(await store.findEnrollment('digest-e1'), makeEnrollment('e1', 'h'));
        assert.equal(await store.findEnrollment('digest-none'), null);
        assert.deepEqual((await store.listEnrollments({ homeId: 'h' })).map((e) => e.id), ['e2', 'e1']);
        const uses = await Promise.all([store.useEnrollment('e1', T0 + 5, 'p1'), store.useEnrollment('e1', T0 + 6, 'p2')]);
        assert.deepEqual(uses.sort(), [false, true]);
        const used = await store.findEnrollment('digest-e1');
        assert.ok(used?.usedAt !== null && used?.usedBy !== null);
        assert.equal(await store.deleteEnrollment('e2'), true);
        assert.equal(await store.deleteEnrollment('e2'), false);
        await store.pruneEnrollments(T0 + 3_600_001);
        assert.deepEqual(await store.listEnrollments({}), []);
      }));

      test('one waiting request per device id; a decision is a compare-and-set', () => withStore(async (store) => {
        await store.putHome(makeHome('h'));
        await store.putHome(makeHome('h2'));
        await store.insertPendingDevice(makePending('p1', 'h', 'plug'));
        await rejectsWith(store.insertPendingDevice(makePending('p2', 'h', 'plug')), 'conflict');
        await store.insertPendingDevice(makePending('p3', null, 'ddi-x', { protocol: 'hawkbit', secretHash: null, requestedAt: T0 + 1 }));
        assert.deepEqual(await store.getPendingDevice('p1'), makePending('p1', 'h', 'plug'));
        assert.deepEqual((await store.listPendingDevices({ states: ['waiting'] })).map((p) => p.id), ['p1', 'p3']);
        assert.deepEqual((await store.listPendingDevices({ homeId: 'h' })).map((p) => p.id), ['p1']);
        assert.deepEqual((await store.listPendingDevices({ deviceId: 'ddi-x' })).map((p) => p.id), ['p3']);
        const approved = { ...makePending('p1', 'h2', 'plug'), name: 'Kitchen plug', state: 'approved' as const, decidedAt: T0 + 10, decidedBy: 'person:owner' };
        assert.equal(await store.decidePendingDevice(approved), true);
        assert.equal(await store.decidePendingDevice({ ...approved, state: 'rejected' }), false);
        assert.deepEqual(await store.getPendingDevice('p1'), approved);
        // Once decided, the same device id may ask again.
        await store.insertPendingDevice(makePending('p4', 'h', 'plug', { requestedAt: T0 + 20 }));
        await store.pruneEnrollments(T0 + 11);
        assert.equal(await store.getPendingDevice('p1'), null);
        assert.notEqual(await store.getPendingDevice('p4'), null);
        await rejectsWith(store.insertPendingDevice(makePending('p5', 'no-such-home', 'lamp')), 'not_found');
      }));

      test('repositories and settings', () => withStore(async (store) => {
        const repo = { name: 'acme', url: 'https://updates.acme.example/', root: '{"signed":{}}', addedAt: T0, addedBy: 'person:owner' };
        await store.insertRepository(repo);
        await rejectsWith(store.insertRepository(repo), 'conflict');
        await store.insertRepository({ ...repo, name: 'beta' });
        assert.deepEqual(await store.listRepositories(), [repo, { ...repo, name: 'beta' }]);
        assert.equal(await store.deleteRepository('acme'), true);
        assert.equal(await store.deleteRepository('acme'), false);
        assert.equal(await store.getSetting('ddi'), null);
        await store.putSetting('ddi', { autoRegister: true, allowed: ['a', 'b'] });
        await store.putSetting('ddi', { autoRegister: false, allowed: ['a'] });
        assert.deepEqual(await store.getSetting('ddi'), { autoRegister: false, allowed: ['a'] });
      }));
    });

    describe('releases', () => {
      test('upsert, get, list', () => withStore(async (store) => {
        const a = makeRelease('2.0.0', { applicableFrom: '1.0.0', notes: 'Fixes pairing.' });
        const b = makeRelease('1.5.0', { vulnerabilitiesFixed: [{ id: 'CVE-2026-1234', severity: 'high' }], severity: 'high' });
        await store.putReleases([a, b]);
        assert.deepEqual(await store.getRelease(a.id), a);
        assert.equal(await store.getRelease('acme/plug-2/9.9.9'), null);
        assert.deepEqual((await store.listReleases()).map((r) => r.id).sort(), [a.id, b.id].sort());
        const retracted = { ...a, retracted: true };
        await store.putReleases([retracted]);
        assert.deepEqual(await store.getRelease(a.id), retracted);
        assert.equal((await store.listReleases()).length, 2);
        await store.putReleases([]);
      }));
    });

    describe('work claiming', () => {
      test('instances share the homes fairly, never hold the same home, and take over a dead one\'s homes when its lease runs out', () => withStore(async (store) => {
        for (let h = 0; h < 9; h++) await store.putHome(makeHome(`home-${h}`));
        const lease = 10_000;
        const a1 = await store.claimHomes({ owner: 'a', now: 1_000, leaseMs: lease });
        assert.equal(a1.length, 9, 'alone, an instance holds every home');
        // b joins: a lets go of its share beyond half at its next claim, b takes what is free.
        await store.claimHomes({ owner: 'b', now: 2_000, leaseMs: lease });
        const a2 = await store.claimHomes({ owner: 'a', now: 3_000, leaseMs: lease });
        const b2 = await store.claimHomes({ owner: 'b', now: 3_500, leaseMs: lease });
        assert.equal(a2.length, 5);
        assert.equal(b2.length, 4);
        assert.deepEqual(a2.filter((h) => b2.includes(h)), [], 'no home held twice');
        // a dies (stops renewing): once its leases expire, b takes everything.
        const b3 = await store.claimHomes({ owner: 'b', now: 3_000 + lease + 1, leaseMs: lease });
        assert.equal(b3.length, 9);
        // A clean stop lets go at once.
        await store.releaseHomes('b');
        assert.equal((await store.claimHomes({ owner: 'c', now: 3_000 + lease + 2, leaseMs: lease })).length, 9);
      }));
    });

    describe('staged rollouts', () => {
      test('insert, get, list; one rollout per release; compare-and-set saves; the release\'s jobs, light', () => withStore(async (store) => {
        const release = makeRelease('2.0.0');
        const rollout = newRollout({ id: 'r1', releaseId: release.id, rules: DEFAULT_ROLLOUT_RULES, actor: 'person:owner' }, 1_000);
        await store.insertRollout(rollout);
        assert.deepEqual(await store.getRollout('r1'), rollout);
        assert.equal(await store.getRollout('nope'), null);
        await assert.rejects(store.insertRollout({ ...rollout, id: 'r2' }), (e: unknown) => isFirmwardError(e, 'conflict'));
        const paused = actOnRollout(rollout, 'pause', 'person:owner', 2_000);
        assert.equal(await store.saveRollout(paused, rollout.version), true);
        assert.equal(await store.saveRollout({ ...paused, version: paused.version + 1 }, rollout.version), false, 'a stale version does not save');
        assert.deepEqual(await store.listRollouts(), [paused]);

        await seedHome(store, 'h', 2);
        await store.insertJob(makeJob('j1', 'h', 'h-d0', 'succeeded', { releaseId: release.id }));
        await store.insertJob(makeJob('j2', 'h', 'h-d1', 'waiting', { releaseId: release.id }));
        const jobs = await store.listReleaseJobs(release.id);
        assert.deepEqual(jobs.map((j) => [j.id, j.homeId, j.deviceId, j.state]).sort(), [['j1', 'h', 'h-d0', 'succeeded'], ['j2', 'h', 'h-d1', 'waiting']]);
        assert.deepEqual(await store.listReleaseJobs('acme/other/1.0.0'), []);
      }));
    });

    describe('jobs', () => {
      test('insert and get round-trip every field', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        const job = makeJob('j1', 'h', 'h-d0', 'confirming', {
          reasons: [{ code: 'checks_passed', message: 'Every safety check passed.' }],
          recheckAt: T0 + 1, forcedBy: 'person:owner', requestedBy: 'person:owner', lastHeardAt: T0 + 2, progressPercent: 42.5,
          confirmUntil: T0 + 3, expectedDoneAt: T0 + 4, updatedAt: T0 + 5, stateSince: T0 + 6, priority: -3,
        });
        await store.insertJob(job);
        assert.deepEqual(await store.getJob('j1'), job);
        assert.equal(await store.getJob('nope'), null);
        const failed = makeJob('j2', 'h', 'h-d0', 'failed', { failure: { code: 'rolled_back', message: 'Went back.', rolledBack: true } });
        await store.insertJob(failed);
        assert.deepEqual(await store.getJob('j2'), failed);
      }));

      test('a job id is inserted once; a job needs its home and device', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        await store.insertJob(makeJob('j1', 'h', 'h-d0', 'succeeded'));
        await rejectsWith(store.insertJob(makeJob('j1', 'h', 'h-d0', 'succeeded')), 'conflict');
        await rejectsWith(store.insertJob(makeJob('j2', 'h', 'no-such-device', 'queued')), 'not_found');
      }));

      test('list filters: home, device, open, states, limit; run order', () => withStore(async (store) => {
        const [a0, a1] = await seedHome(store, 'a', 2);
        const [b0] = await seedHome(store, 'b', 1);
        await store.insertJob(makeJob('a-old', 'a', a0!, 'succeeded', { priority: 5 }));
        await store.insertJob(makeJob('a-q', 'a', a0!, 'queued', { priority: 5 }));
        await store.insertJob(makeJob('a-w', 'a', a1!, 'waiting', { priority: 1 }));
        await store.insertJob(makeJob('b-off', 'b', b0!, 'offered'));
        await store.insertJob(makeJob('b-fail', 'b', b0!, 'failed'));
        const ids = (jobs: Job[]) => jobs.map((j) => j.id);
        assert.deepEqual(ids(await store.listJobs({ homeId: 'a' })).sort(), ['a-old', 'a-q', 'a-w']);
        assert.deepEqual(ids(await store.listJobs({ homeId: 'a', open: true })), ['a-w', 'a-q']);
        assert.deepEqual(ids(await store.listJobs({ homeId: 'a', open: false })), ['a-old']);
        assert.deepEqual(ids(await store.listJobs({ deviceId: b0! })).sort(), ['b-fail', 'b-off']);
        assert.deepEqual(ids(await store.listJobs({ states: ['offered', 'waiting'] })).sort(), ['a-w', 'b-off']);
        assert.deepEqual(ids(await store.listJobs({ homeId: 'b', states: [...ACTIVE_STATES] })), ['b-off']);
        assert.deepEqual(await store.listJobs({ states: [] }), []);
        assert.equal((await store.listJobs({ limit: 2 })).length, 2);
        assert.equal((await store.listJobs({})).length, 5);
        await rejectsWith(store.listJobs({ limit: 0 }), 'invalid_input');
      }));

      test('lists are bounded to 1000 rows', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        await store.transaction(async (tx) => {
          for (let i = 0; i < 1005; i++) {
            await tx.insertJob(makeJob(`j${String(i).padStart(4, '0')}`, 'h', 'h-d0', 'succeeded'));
            await tx.appendEvent({ at: T0 + i, homeId: 'h', deviceId: null, jobId: null, kind: 'decision', from: null, to: null, code: 'x', message: 'x', actor: 'hub' });
          }
        });
        assert.equal((await store.listJobs({ limit: 5000 })).length, 1000);
        assert.equal((await store.listJobs({})).length, 1000);
        assert.equal((await store.listEvents({ limit: 5000 })).length, 1000);
      }));
    });

    describe('invariant 1 and one open job per device, held by the store', () => {
      test('a second active job in a home is home_busy on insert', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await store.insertJob(makeJob('j1', 'h', d0!, 'installing'));
        await rejectsWith(store.insertJob(makeJob('j2', 'h', d1!, 'offered')), 'home_busy');
        assert.equal(await store.getJob('j2'), null);
        // Not active: a queued job for another device is fine.
        await store.insertJob(makeJob('j3', 'h', d1!, 'queued'));
      }));

      test('a second active job in a home is home_busy through saveJob, leaving job and history untouched', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await store.insertJob(makeJob('j1', 'h', d0!, 'downloading'));
        const j2 = makeJob('j2', 'h', d1!, 'queued');
        await store.insertJob(j2);
        const offered = { ...j2, state: 'offered' as const, updatedAt: T0 + 1, stateSince: T0 + 1 };
        await rejectsWith(store.saveJob(offered, 'queued', transitionEvent(j2, 'queued', 'offered')), 'home_busy');
        assert.deepEqual(await store.getJob('j2'), j2);
        assert.deepEqual(await store.listEvents({ limit: 10, jobId: 'j2' }), []);
      }));

      test('active jobs in different homes do not block each other', () => withStore(async (store) => {
        const [a] = await seedHome(store, 'a', 1);
        const [b] = await seedHome(store, 'b', 1);
        await store.insertJob(makeJob('ja', 'a', a!, 'installing'));
        await store.insertJob(makeJob('jb', 'b', b!, 'installing'));
        assert.equal((await store.listJobs({ states: [...ACTIVE_STATES] })).length, 2);
      }));

      test('a second open job for a device is conflict', () => withStore(async (store) => {
        const [d0] = await seedHome(store, 'h', 1);
        await store.insertJob(makeJob('j1', 'h', d0!, 'queued'));
        await rejectsWith(store.insertJob(makeJob('j2', 'h', d0!, 'waiting')), 'conflict');
        // Re-opening a finished job for a device that has an open one is refused the same way.
        await store.insertJob(makeJob('j3', 'h', d0!, 'cancelled'));
        const j3 = (await store.getJob('j3'))!;
        await rejectsWith(store.saveJob({ ...j3, state: 'queued' }, 'cancelled', null), 'conflict');
      }));

      test('succeeded, failed and cancelled jobs block nothing', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        const j1 = makeJob('j1', 'h', d0!, 'confirming');
        await store.insertJob(j1);
        assert.equal(await store.saveJob({ ...j1, state: 'succeeded' }, 'confirming', transitionEvent(j1, 'confirming', 'succeeded')), true);
        await store.insertJob(makeJob('j2', 'h', d1!, 'offered'));
        const j2 = (await store.getJob('j2'))!;
        assert.equal(await store.saveJob({ ...j2, state: 'failed', failure: { code: 'device_silent', message: 'Silent.', rolledBack: false } }, 'offered', null), true);
        await store.insertJob(makeJob('j3', 'h', d1!, 'offered'));
        await store.insertJob(makeJob('j4', 'h', d0!, 'queued'));
        await store.insertJob(makeJob('j5', 'h', d0!, 'cancelled'));
        assert.deepEqual((await store.listJobs({ homeId: 'h', states: [...ACTIVE_STATES] })).map((j) => j.id), ['j3']);
      }));

      test('two saves into active states at once: exactly one wins', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        const j1 = makeJob('j1', 'h', d0!, 'queued');
        const j2 = makeJob('j2', 'h', d1!, 'waiting');
        await store.insertJob(j1);
        await store.insertJob(j2);
        const results = await Promise.allSettled([
          store.saveJob({ ...j1, state: 'offered' }, 'queued', transitionEvent(j1, 'queued', 'offered')),
          store.saveJob({ ...j2, state: 'offered' }, 'waiting', transitionEvent(j2, 'waiting', 'offered')),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled' && r.value);
        const busy = results.filter((r) => r.status === 'rejected' && isFirmwardError(r.reason, 'home_busy'));
        assert.equal(won.length, 1, JSON.stringify(results));
        assert.equal(busy.length, 1, JSON.stringify(results));
        assert.equal((await store.listJobs({ homeId: 'h', states: [...ACTIVE_STATES] })).length, 1);
        assert.equal((await store.listEvents({ homeId: 'h', to: 'offered', limit: 10 })).length, 1);
      }));

      test('property: random inserts and saves across 3 homes never make 2 active jobs in a home', async () => {
        const store = await makeStore();
        let run = 0;
        const stateArb = fc.constantFrom(...JOB_STATES);
        const insertArb = fc.record({ t: fc.constant('insert' as const), home: fc.nat(2), device: fc.nat(2), state: stateArb });
        const saveArb = fc.record({ t: fc.constant('save' as const), job: fc.nat(50), to: stateArb, stale: fc.boolean() });
        const stepArb = fc.oneof(insertArb, saveArb);
        const commandArb = fc.oneof(
          { weight: 3, arbitrary: stepArb },
          { weight: 1, arbitrary: fc.record({ t: fc.constant('together' as const), steps: fc.array(stepArb, { minLength: 2, maxLength: 4 }) }) },
        );
        type Step = { t: 'insert'; home: number; device: number; state: JobState } | { t: 'save'; job: number; to: JobState; stale: boolean };
        try {
          await fc.assert(fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 20 }), async (commands) => {
            const r = `r${run++}`;
            const homes = [`${r}-h0`, `${r}-h1`, `${r}-h2`];
            for (const h of homes) await seedHome(store, h, 3);
            /** What the store holds, as far as this run knows. */
            const model = new Map<string, Job>();
            let next = 0;

            const homeBusy = (job: Job, state: JobState) =>
              isActiveState(state) && [...model.values()].some((o) => o.id !== job.id && o.homeId === job.homeId && isActiveState(o.state));
            const deviceBusy = (job: Job, state: JobState) =>
              isOpenState(state) && [...model.values()].some((o) => o.id !== job.id && o.deviceId === job.deviceId && isOpenState(o.state));
            const expected = (job: Job, state: JobState): ErrorCode[] => [
              ...(homeBusy(job, state) ? ['home_busy' as const] : []),
              ...(deviceBusy(job, state) ? ['conflict' as const] : []),
            ];

            /** Runs one step; when `check`, asserts its outcome against the model. */
            const perform = async (step: Step, check: boolean): Promise<void> => {
              if (step.t === 'insert') {
                const home = homes[step.home]!;
                const job = makeJob(`${r}-j${next++}`, home, `${home}-d${step.device}`, step.state);
                const refusals = expected(job, step.state);
                try {
                  await store.insertJob(job);
                  if (check) assert.deepEqual(refusals, [], `insert ${job.id} should have been refused`);
                  model.set(job.id, job);
                } catch (e) {
                  assert.ok(isFirmwardError(e), String(e));
                  if (check) assert.ok(refusals.includes(e.code), `insert ${job.id}: unexpected ${e.code}`);
                  else assert.ok(e.code === 'home_busy' || e.code === 'conflict', e.message);
                }
                return;
              }
              const jobs = [...model.values()];
              if (jobs.length === 0) return;
              const current = jobs[step.job % jobs.length]!;
              const expectedState = step.stale ? JOB_STATES[(JOB_STATES.indexOf(current.state) + 1) % JOB_STATES.length]! : current.state;
              const saved: Job = { ...current, state: step.to, updatedAt: current.updatedAt + 1 };
              const refusals = expected(current, step.to);
              try {
                const ok = await store.saveJob(saved, expectedState, transitionEvent(current, current.state, step.to));
                if (check) {
                  assert.equal(ok, !step.stale, `save ${current.id} (stale=${step.stale}) returned ${ok}`);
                  if (ok) assert.deepEqual(refusals, [], `save ${current.id} → ${step.to} should have been refused`);
                }
                if (ok) model.set(saved.id, saved);
              } catch (e) {
                assert.ok(isFirmwardError(e), String(e));
                if (check) {
                  assert.ok(!step.stale, 'a stale save must return false, not throw');
                  assert.ok(refusals.includes(e.code), `save ${current.id} → ${step.to}: unexpected ${e.code}`);
                } else {
                  assert.ok(e.code === 'home_busy' || e.code === 'conflict', e.message);
                }
              }
            };

            for (const command of commands) {
              if (command.t === 'together') {
                // Outcomes of concurrent steps depend on who gets there first: check only the invariants.
                await Promise.all(command.steps.map((s) => perform(s, false)));
                for (const id of [...model.keys()]) {
                  const stored = await store.getJob(id);
                  if (stored === null) model.delete(id);
                  else model.set(id, stored);
                }
              } else {
                await perform(command, true);
              }
              for (const home of homes) {
                const active = await store.listJobs({ homeId: home, states: [...ACTIVE_STATES] });
                assert.ok(active.length <= 1, `home ${home} has ${active.length} active jobs`);
                for (let d = 0; d < 3; d++) {
                  const open = await store.listJobs({ deviceId: `${home}-d${d}`, open: true });
                  assert.ok(open.length <= 1, `device ${home}-d${d} has ${open.length} open jobs`);
                }
              }
            }
            // The store holds exactly what the model says.
            for (const home of homes) {
              const stored = await store.listJobs({ homeId: home });
              const modelled = [...model.values()].filter((j) => j.homeId === home);
              assert.deepEqual(new Map(stored.map((j) => [j.id, j.state])), new Map(modelled.map((j) => [j.id, j.state])));
            }
          }), { numRuns: 30 });
        } finally {
          await store.close();
        }
      });
    });

    describe('insertPlannedJobs: a batch in one transaction, devices with an open job left out', () => {
      /** Every history line, newest first (listEvents pages at most 1000). */
      async function allEvents(store: Store): Promise<HistoryEvent[]> {
        const all: HistoryEvent[] = [];
        for (;;) {
          const last = all.at(-1);
          const page = await store.listEvents(last === undefined ? { limit: 1000 } : { limit: 1000, beforeId: last.id });
          if (page.length === 0) return all;
          all.push(...page);
        }
      }
      const withoutId = (e: HistoryEvent): NewHistoryEvent => {
        const { id: _id, ...rest } = e;
        return rest;
      };

      test('inserts every job with its line when none is open, in the given order', () => withStore(async (store) => {
        const devices = await seedHome(store, 'h', 3);
        const items = devices.map((d, i) => planned(`j${i}`, 'h', d, T0 + i));
        assert.deepEqual(await store.insertPlannedJobs(items), items.map((i) => i.job));
        for (const { job } of items) assert.deepEqual(await store.getJob(job.id), job);
        // Ids grow in the given order, as if each line had been appended in turn.
        assert.deepEqual((await allEvents(store)).map(withoutId), items.map((i) => i.event).reverse());
      }));

      test('leaves out exactly the devices with an open job, and their lines', () => withStore(async (store) => {
        const [d0, d1, d2, d3] = await seedHome(store, 'h', 4);
        const theirs = makeJob('theirs', 'h', d1!, 'waiting');
        await store.insertJob(theirs);
        const items = [planned('j0', 'h', d0!), planned('j1', 'h', d1!), planned('j2', 'h', d2!), planned('j3', 'h', d3!), planned('j3-again', 'h', d3!)];
        const inserted = await store.insertPlannedJobs(items);
        // d1 had one already; d3 got one from earlier in the same batch.
        assert.deepEqual(inserted.map((j) => j.id), ['j0', 'j2', 'j3']);
        assert.equal(await store.getJob('j1'), null);
        assert.equal(await store.getJob('j3-again'), null);
        assert.deepEqual(await store.getJob('theirs'), theirs);
        assert.deepEqual((await store.listJobs({ open: true })).map((j) => j.id).sort(), ['j0', 'j2', 'j3', 'theirs']);
        assert.deepEqual((await allEvents(store)).map((e) => e.jobId), ['j3', 'j2', 'j0']);
      }));

      test('a succeeded, failed or cancelled job does not block', () => withStore(async (store) => {
        const [d0, d1, d2] = await seedHome(store, 'h', 3);
        await store.insertJob(makeJob('old0', 'h', d0!, 'succeeded'));
        await store.insertJob(makeJob('old1', 'h', d1!, 'failed', { failure: { code: 'device_silent', message: 'Silent.', rolledBack: false } }));
        await store.insertJob(makeJob('old2', 'h', d2!, 'cancelled'));
        const items = [planned('j0', 'h', d0!), planned('j1', 'h', d1!), planned('j2', 'h', d2!)];
        assert.deepEqual(await store.insertPlannedJobs(items), items.map((i) => i.job));
        assert.equal((await allEvents(store)).length, 3);
      }));

      test('an empty batch is a no-op', () => withStore(async (store) => {
        await seedHome(store, 'h', 1);
        assert.deepEqual(await store.insertPlannedJobs([]), []);
        assert.deepEqual(await store.listJobs({}), []);
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
        assert.deepEqual(await store.transaction((tx) => tx.insertPlannedJobs([])), []);
      }));

      test('a batch of 2,500 (more than one statement\'s worth) goes in whole, the open ones left out', () => withStore(async (store) => {
        const n = 2500;
        const devices = Array.from({ length: n }, (_, i) => `d${String(i).padStart(4, '0')}`);
        await store.transaction(async (tx) => {
          await tx.putHome(makeHome('h'));
          for (const d of devices) await tx.putDevice(makeDevice(d, 'h'));
          // Every tenth device already has an open job.
          for (let i = 0; i < n; i += 10) await tx.insertJob(makeJob(`open-${i}`, 'h', devices[i]!, 'queued'));
        });
        const items = devices.map((d, i) => planned(`j${i}`, 'h', d, T0 + i));
        const inserted = await store.insertPlannedJobs(items);
        const expected = items.filter((_, i) => i % 10 !== 0);
        assert.deepEqual(inserted, expected.map((i) => i.job));
        assert.equal((await store.listOpenJobTargets()).length, n);
        const events = await allEvents(store);
        assert.deepEqual(events.map(withoutId), expected.map((i) => i.event).reverse());
        assert.equal(await store.getJob('j0'), null);
        assert.deepEqual(await store.getJob('j2499'), items[2499]!.job);
      }));

      test('inside a transaction that rolls back, nothing stays', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        const boom = new Error('boom');
        await assert.rejects(store.transaction(async (tx) => {
          const inserted = await tx.insertPlannedJobs([planned('j0', 'h', d0!), planned('j1', 'h', d1!)]);
          assert.equal(inserted.length, 2);
          assert.notEqual(await tx.getJob('j0'), null);
          assert.equal((await tx.listEvents({ limit: 10 })).length, 2);
          throw boom;
        }), (e) => e === boom);
        assert.deepEqual(await store.listJobs({}), []);
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
      }));

      test('any other refusal fails the whole batch: a job id that exists, an active job in a busy home, an unknown device', () => withStore(async (store) => {
        const [d0, d1, d2] = await seedHome(store, 'h', 3);
        await store.insertJob(makeJob('taken', 'h', d0!, 'succeeded'));
        await rejectsWith(store.insertPlannedJobs([planned('j1', 'h', d1!), planned('taken', 'h', d2!)]), 'conflict');
        await store.insertJob(makeJob('busy', 'h', d0!, 'installing'));
        const offered = planned('j2', 'h', d2!);
        await rejectsWith(store.insertPlannedJobs([planned('j1', 'h', d1!), { ...offered, job: { ...offered.job, state: 'offered' } }]), 'home_busy');
        await rejectsWith(store.insertPlannedJobs([planned('j1', 'h', d1!), planned('j3', 'h', 'no-such-device')]), 'not_found');
        assert.equal(await store.getJob('j1'), null);
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
      }));
    });

    describe('saveJob compare-and-set', () => {
      test('saves and appends the event when the state matches; false and nothing written when it moved on', () => withStore(async (store) => {
        const [d0] = await seedHome(store, 'h', 1);
        const job = makeJob('j1', 'h', d0!, 'queued');
        await store.insertJob(job);
        const offered: Job = { ...job, state: 'offered', updatedAt: T0 + 10, stateSince: T0 + 10, expectedDoneAt: T0 + 600_000, lastHeardAt: T0 + 10 };
        assert.equal(await store.saveJob(offered, 'queued', transitionEvent(job, 'queued', 'offered', T0 + 10)), true);
        assert.deepEqual(await store.getJob('j1'), offered);
        const events = await store.listEvents({ jobId: 'j1', limit: 10 });
        assert.equal(events.length, 1);
        assert.deepEqual({ ...events[0], id: 0 }, { ...transitionEvent(job, 'queued', 'offered', T0 + 10), id: 0 });

        // A second writer still believing "queued" loses.
        const stale: Job = { ...job, state: 'cancelled', updatedAt: T0 + 20 };
        assert.equal(await store.saveJob(stale, 'queued', transitionEvent(job, 'queued', 'cancelled')), false);
        assert.deepEqual(await store.getJob('j1'), offered);
        assert.equal((await store.listEvents({ jobId: 'j1', limit: 10 })).length, 1);

        assert.equal(await store.saveJob(makeJob('nope', 'h', d0!, 'offered'), 'queued', null), false);
        assert.equal(await store.getJob('nope'), null);
      }));

      test('a save without an event appends none', () => withStore(async (store) => {
        const [d0] = await seedHome(store, 'h', 1);
        const job = makeJob('j1', 'h', d0!, 'downloading');
        await store.insertJob(job);
        assert.equal(await store.saveJob({ ...job, progressPercent: 50, lastHeardAt: T0 + 1 }, 'downloading', null), true);
        assert.equal((await store.getJob('j1'))?.progressPercent, 50);
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
      }));
    });

    describe('history', () => {
      test('append, list newest first, filters, paging', () => withStore(async (store) => {
        const base: NewHistoryEvent = { at: T0, homeId: 'h1', deviceId: 'd1', jobId: 'j1', kind: 'transition', from: 'queued', to: 'offered', code: 'checks_passed', message: 'Offered.', actor: 'hub' };
        const written = [];
        written.push(await store.appendEvent(base));
        written.push(await store.appendEvent({ ...base, at: T0 + 1, from: 'installing', to: 'failed', code: 'rolled_back' }));
        written.push(await store.appendEvent({ ...base, at: T0 + 2, homeId: 'h2', deviceId: 'd2', jobId: 'j2' }));
        written.push(await store.appendEvent({ ...base, at: T0 + 3, deviceId: null, jobId: null, kind: 'person', from: null, to: null, code: 'resume', actor: 'person:owner' }));
        written.push(await store.appendEvent({ ...base, at: T0 + 4, jobId: 'j3', kind: 'device', from: null, to: null, code: 'low_battery' }));
        for (let i = 1; i < written.length; i++) assert.ok(written[i]!.id > written[i - 1]!.id, 'ids grow');
        assert.deepEqual({ ...written[0], id: 0 }, { ...base, id: 0 });

        const all = await store.listEvents({ limit: 100 });
        assert.deepEqual(all, [...written].reverse());
        const ids = (evs: { id: number }[]) => evs.map((e) => e.id);
        const w = ids(written);
        assert.deepEqual(ids(await store.listEvents({ homeId: 'h1', limit: 100 })), [w[4], w[3], w[1], w[0]]);
        assert.deepEqual(ids(await store.listEvents({ deviceId: 'd2', limit: 100 })), [w[2]]);
        assert.deepEqual(ids(await store.listEvents({ jobId: 'j1', limit: 100 })), [w[1], w[0]]);
        assert.deepEqual(ids(await store.listEvents({ to: 'failed', limit: 100 })), [w[1]]);
        assert.deepEqual(ids(await store.listEvents({ homeId: 'h1', to: 'offered', limit: 100 })), [w[0]]);

        // Paging backwards two at a time visits every event once, newest first.
        const paged: number[] = [];
        let beforeId: number | undefined;
        for (;;) {
          const page = await store.listEvents(beforeId === undefined ? { limit: 2 } : { limit: 2, beforeId });
          if (page.length === 0) break;
          assert.ok(page.length <= 2);
          paged.push(...ids(page));
          beforeId = page.at(-1)!.id;
        }
        assert.deepEqual(paged, [...w].reverse());
        await rejectsWith(store.listEvents({ limit: -1 }), 'invalid_input');
      }));
    });

    describe('transactions', () => {
      test('commit makes every write visible and returns the value', () => withStore(async (store) => {
        const value = await store.transaction(async (tx) => {
          await tx.putHome(makeHome('h'));
          await tx.putDevice(makeDevice('d', 'h'));
          await tx.insertJob(makeJob('j', 'h', 'd', 'offered'));
          await tx.appendEvent({ at: T0, homeId: 'h', deviceId: 'd', jobId: 'j', kind: 'decision', from: null, to: null, code: 'plan', message: 'Planned.', actor: 'hub' });
          return 42;
        });
        assert.equal(value, 42);
        assert.notEqual(await store.getHome('h'), null);
        assert.notEqual(await store.getJob('j'), null);
        assert.equal((await store.listEvents({ limit: 10 })).length, 1);
      }));

      test('a throw rolls back every write and passes the error on', () => withStore(async (store) => {
        await seedHome(store, 'keep', 1);
        const boom = new Error('boom');
        await assert.rejects(store.transaction(async (tx) => {
          await tx.putHome(makeHome('h'));
          await tx.putDevice(makeDevice('d', 'h'));
          await tx.insertJob(makeJob('j', 'h', 'd', 'offered'));
          await tx.appendEvent({ at: T0, homeId: 'h', deviceId: 'd', jobId: 'j', kind: 'decision', from: null, to: null, code: 'plan', message: 'Planned.', actor: 'hub' });
          await tx.putReleases([makeRelease('3.0.0')]);
          await tx.recordTelemetry('keep-d0', { online: true, signalSample: { at: T0, dbm: -50 } });
          await tx.setHomeHalt('keep', { jobId: 'j', deviceId: 'd', at: T0, message: 'x' });
          throw boom;
        }), (e) => e === boom);
        assert.equal(await store.getHome('h'), null);
        assert.equal(await store.getDevice('d'), null);
        assert.equal(await store.getJob('j'), null);
        assert.deepEqual(await store.listEvents({ limit: 10 }), []);
        assert.deepEqual(await store.listReleases(), []);
        assert.equal((await store.getDevice('keep-d0'))?.online, false);
        assert.deepEqual((await store.getTelemetry('keep-d0', 0, 0)).signalSamples, []);
        assert.equal((await store.getHome('keep'))?.halt, null);
      }));

      test('a refused write inside a transaction can be caught; the rest commits', () => withStore(async (store) => {
        const [d0, d1] = await seedHome(store, 'h', 2);
        await store.insertJob(makeJob('j1', 'h', d0!, 'installing'));
        await store.transaction(async (tx) => {
          await rejectsWith(tx.insertJob(makeJob('j2', 'h', d1!, 'offered')), 'home_busy');
          await tx.insertJob(makeJob('j3', 'h', d1!, 'queued'));
        });
        assert.equal(await store.getJob('j2'), null);
        assert.equal((await store.getJob('j3'))?.state, 'queued');
      }));

      test('nested transactions run as part of the outer one', () => withStore(async (store) => {
        await assert.rejects(store.transaction(async (tx) => {
          await tx.transaction(async (inner) => {
            await inner.putHome(makeHome('inner'));
          });
          assert.notEqual(await tx.getHome('inner'), null);
          throw new Error('outer fails');
        }));
        assert.equal(await store.getHome('inner'), null);
      }));

      test('work outside a transaction neither sees nor joins it', () => withStore(async (store) => {
        let proceed!: () => void;
        const gate = new Promise<void>((resolve) => {
          proceed = resolve;
        });
        let inside!: () => void;
        const started = new Promise<void>((resolve) => {
          inside = resolve;
        });
        const tx = store.transaction(async (t) => {
          await t.putHome(makeHome('uncommitted'));
          inside();
          await gate;
          throw new Error('roll back');
        });
        await started;
        // Issued while the transaction is open: must not read its uncommitted write, and must not be rolled back with it.
        const read = store.getHome('uncommitted');
        const write = store.putHome(makeHome('outside'));
        proceed();
        await assert.rejects(tx);
        assert.equal(await read, null);
        await write;
        assert.notEqual(await store.getHome('outside'), null);
      }));
    });
  });
}
