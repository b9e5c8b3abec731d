/**
 * The planner plans what changed, not the fleet: a device added to one home is planned by reading
 * that device, its home and its open jobs, so the store calls of that re-plan are the same for 5
 * homes as for 60. Something fleet-wide (a new release) still plans every device. Counted at the
 * store (a counting proxy), not timed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { counted, quietGateway } from './fixtures/counting-store.ts';

const IMAGE = new Uint8Array([1, 2, 3, 4]);
function release(version: string): Release {
  return {
    id: releaseId('Acme', 'Plug', version), vendor: 'Acme', model: 'Plug', hardwareRevisions: ['A'], version, severity: 'none',
    vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, retracted: false, recovery: { steps: ['Restart it.'] },
    image: { path: `plug-${version}.img`, lengthBytes: IMAGE.byteLength, sha256: createHash('sha256').update(IMAGE).digest('hex') },
  };
}

function plug(id: string, homeId: string, firmwareVersion = '1.0.0') {
  return { id, homeId, name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion, policy: null, thresholds: {}, schedules: [] };
}

interface Replans {
  /** Store calls of the plan after one device was added to one home. */
  oneDevice: Map<string, number>;
  /** Store calls of the plan after a release was published. */
  newRelease: Map<string, number>;
}

async function replans(homes: number): Promise<Replans> {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(path.join(root, 'firmward-plan-scope-'));
  const real = await SqliteStore.open(path.join(dir, 'hub.db'));
  try {
    const clock = new ManualClock(Date.UTC(2026, 10, 27, 12, 0));
    const source = new MemoryReleaseSource();
    source.publish(release('2.0.0'), IMAGE);
    for (let h = 0; h < homes; h++) {
      await real.putHome({
        id: `h${h}`, name: `Home ${h}`, halt: null,
        settings: { timeZone: 'UTC', window: { start: '22:00', end: '06:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
      });
      await real.putDevice(plug(`h${h}-d`, `h${h}`));
    }
    const { store, calls } = counted(real);
    const engine = new RolloutEngine({
      store, gateway: quietGateway, source, clock, log: silentLogger,
      config: { tickMs: 1000, offerResendSeconds: 60, releaseRefreshSeconds: 3600 }, imageUrl: (r) => `http://hub.test/firmware/${r}`,
    });
    await engine.refreshReleases();
    await engine.tick(); // the first pass plans the whole fleet
    assert.equal((await real.listJobs({ open: true })).length, homes);

    // Another instance's change (heard through the change feed) is planned by that instance, not here.
    await real.putDevice(plug('h0-elsewhere', 'h0'));
    engine.notifier.committed({ kind: 'device', deviceId: 'h0-elsewhere', homeId: 'h0', from: 'hub-b' });
    calls.clear();
    assert.equal(await engine.planChanged(), 0);
    assert.equal([...calls.keys()].filter((k) => /^(get|list|insert)/.test(k)).length, 0, 'nothing read or written for it');

    // A second plug joins home 0 (as onboarding does: written, then announced).
    await real.putDevice(plug('h0-new', 'h0'));
    engine.notifier.committed({ kind: 'device', deviceId: 'h0-new', homeId: 'h0' });
    calls.clear();
    const oneDeviceJobs = await engine.planChanged();
    const oneDevice = new Map(calls);
    assert.equal(oneDeviceJobs, 1, 'the new plug was planned');
    assert.equal((await real.listJobs({ deviceId: 'h0-new', open: true })).length, 1);

    // A release every plug can take: that is fleet-wide.
    source.publish(release('3.0.0'), IMAGE);
    await engine.refreshReleases();
    calls.clear();
    await engine.planChanged();
    const newRelease = new Map(calls);
    return { oneDevice, newRelease };
  } finally {
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a device added to one home is planned on its own: the same store calls for 5 homes as for 60', async () => {
  const small = await replans(5);
  const large = await replans(60);
  assert.deepEqual(Object.fromEntries(large.oneDevice), Object.fromEntries(small.oneDevice));
  // Nothing fleet-wide was read for it.
  for (const method of ['listHomes', 'listOpenJobTargets']) assert.equal(large.oneDevice.get(method) ?? 0, 0, `${method} for one device`);
  assert.equal(large.oneDevice.get('getDevice'), 1);
  // A new release re-reads the fleet, once, whatever its size.
  assert.equal(large.newRelease.get('listOpenJobTargets'), 1);
  assert.equal(large.newRelease.get('listDevices'), 1);
});
