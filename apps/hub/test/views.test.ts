/**
 * The read models: what a person sees per device is about the update that matters now — the open
 * one, else the most recent — never an older job that happens to sort first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, newJob } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import type { DeviceGateway } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const quietGateway: DeviceGateway = { name: 'none', start: () => Promise.resolve(), stop: () => Promise.resolve(), send: () => Promise.resolve() };

test('a device shows its open job, not an older one with a more urgent priority', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 12));
  const store = await SqliteStore.open(':memory:');
  const engine = new RolloutEngine({
    store, gateway: quietGateway, source: new MemoryReleaseSource(), clock, log: silentLogger,
    config: { tickMs: 1000, offerResendSeconds: 30, releaseRefreshSeconds: 300 }, imageUrl: (id) => id,
  });
  const service = new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'none', mqtt: null });
  await store.putHome({
    id: 'h', name: 'h', halt: null,
    settings: { timeZone: 'UTC', window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
  });
  await store.putDevice({ id: 'd', homeId: 'h', name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.1.0', policy: null, thresholds: {}, schedules: [] });
  const base = { homeId: 'h', deviceId: 'd', requestedBy: null };
  await store.insertJob({ ...newJob({ ...base, id: 'old', releaseId: 'Acme/Plug/1.1.0', fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 0 }, clock.now() - 86_400_000), state: 'succeeded' });
  await store.insertJob(newJob({ ...base, id: 'new', releaseId: 'Acme/Plug/1.2.0', fromVersion: '1.1.0', targetVersion: '1.2.0', priority: 2 }, clock.now()));
  const view = await service.getDevice('d');
  assert.equal(view.update.jobId, 'new');
  assert.equal(view.update.targetVersion, '1.2.0');
  await store.close();
});

test('a device that refuses the install go-ahead with its own "not now" waits again; nothing fails, the home goes on', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 2));
  const store = await SqliteStore.open(':memory:');
  const engine = new RolloutEngine({
    store, gateway: quietGateway, source: new MemoryReleaseSource(), clock, log: silentLogger,
    config: { tickMs: 1000, offerResendSeconds: 30, releaseRefreshSeconds: 300 }, imageUrl: (id) => id,
  });
  await store.putHome({
    id: 'h', name: 'h', halt: null,
    settings: { timeZone: 'UTC', window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
  });
  await store.putDevice({ id: 'd', homeId: 'h', name: 'Sensor', vendor: 'Acme', model: 'Sensor', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
  const job = { ...newJob({ id: 'j', homeId: 'h', deviceId: 'd', releaseId: 'Acme/Sensor/1.1.0', fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 2, requestedBy: null }, clock.now()), state: 'installing' as const };
  await store.insertJob(job);
  await engine.onEvent('d', { v: 1, type: 'ack', jobId: 'j', accepted: false, code: 'battery_low', message: 'Battery 12 %, needs 20 % or a charger.' }, clock.now());
  const after = await store.getJob('j');
  assert.equal(after?.state, 'waiting');
  assert.match(after?.reasons[0]?.message ?? '', /Battery 12 %/);
  assert.equal((await store.getHome('h'))?.halt, null);
  // A refusal that is not a "not now" (the device says the image is wrong) is a failure and halts the home.
  await store.saveJob({ ...after, state: 'installing' }, 'waiting', null);
  await engine.onEvent('d', { v: 1, type: 'ack', jobId: 'j', accepted: false, code: 'image_hash_mismatch', message: 'The image does not match.' }, clock.now());
  assert.equal((await store.getJob('j'))?.state, 'failed');
  assert.equal((await store.getHome('h'))?.halt?.deviceId, 'd');
  await store.close();
});

test('a signed release that does not apply says why with its own code — in the device view, and in the history once per release, also across a restart', async () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 12));
  const store = await SqliteStore.open(':memory:');
  const source = new MemoryReleaseSource();
  const engineFor = () => new RolloutEngine({
    store, gateway: quietGateway, source, clock, log: silentLogger,
    config: { tickMs: 1000, offerResendSeconds: 30, releaseRefreshSeconds: 300 }, imageUrl: (id) => id,
  });
  const engine = engineFor();
  const service = new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'none', mqtt: null });
  await store.putHome({
    id: 'h', name: 'h', halt: null,
    settings: { timeZone: 'UTC', window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
  });
  const device = async (id: string, model: string, hardwareRevision: string, firmwareVersion: string) => {
    await store.putDevice({ id, homeId: 'h', name: id, vendor: 'Acme', model, hardwareRevision, firmwareVersion, policy: null, thresholds: {}, schedules: [] });
    await store.recordTelemetry(id, { report: {
      at: clock.now(), firmwareVersion, activeSlot: 'a', powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: false, freeStorageBytes: 1e9, healthy: true,
    } });
  };
  const release = (model: string, version: string, hardwareRevisions: string[], extra: Partial<Release> = {}): Release => ({
    id: `Acme/${model}/${version}`, vendor: 'Acme', model, version, hardwareRevisions, severity: 'none', vulnerabilitiesFixed: [],
    expectedInstallSeconds: 60, preflightOverrides: {}, recovery: { steps: ['x'] }, retracted: false,
    image: { path: `Acme/${model}/${version}/fw.bin`, lengthBytes: 1, sha256: '0'.repeat(64) }, ...extra,
  });
  await device('rev-a', 'Plug', 'A', '1.3.0');
  await device('spelled', 'QuickPlug', 'A', '1.0.0');
  await device('ahead', 'Sensor', 'A', '2.0.0');
  await device('stepping', 'Lamp', 'A', '1.0.0');
  for (const r of [
    release('Plug', '1.3.0', ['A']), release('Plug', '1.4.0', ['B']),
    release('Quick-Plug', '1.1.0', ['A']),
    release('Sensor', '1.9.0', ['A']),
    release('Lamp', '2.0.0', ['A'], { applicableFrom: '1.5.0' }),
  ]) source.publish(r, new Uint8Array(1));
  await engine.refreshReleases();
  await engine.plan(clock.now());
  await engine.plan(clock.now());

  const expected: Record<string, [string, RegExp]> = {
    'rev-a': ['hardware_mismatch', /1\.4\.0 is for the Acme Plug hardware revision B; this device is revision A, so it stays on 1\.3\.0/],
    spelled: ['model_mismatch', /1\.1\.0 is for the Acme Quick-Plug; this device reports itself as the QuickPlug/],
    ahead: ['downgrade', /newest release the maker signs for this device is 1\.9\.0, older than the 2\.0\.0 it runs/],
    stepping: ['not_applicable_from', /does not allow updating directly from 1\.0\.0 \(needs 1\.5\.0 or newer\)/],
  };
  for (const [id, [code, sentence]] of Object.entries(expected)) {
    const view = await service.getDevice(id);
    assert.match(view.update.summary, sentence, `${id}: ${view.update.summary}`);
    assert.doesNotMatch(view.update.summary, /Up to date/);
    const lines = (await store.listEvents({ deviceId: id, limit: 50 })).filter((e) => e.code === code);
    assert.equal(lines.length, 1, `${id}: one ${code} line, not one per plan`);
    assert.match(lines[0]!.message, sentence);
  }
  // A restarted hub forgets what it said in memory, not what the history says.
  const restarted = engineFor();
  await restarted.refreshReleases();
  await restarted.plan(clock.now());
  for (const [id, [code]] of Object.entries(expected)) {
    assert.equal((await store.listEvents({ deviceId: id, limit: 50 })).filter((e) => e.code === code).length, 1, `${id} after a restart`);
  }
  // A new release that still does not apply is a new line.
  source.publish(release('Plug', '1.5.0', ['B']), new Uint8Array(1));
  await restarted.refreshReleases();
  await restarted.plan(clock.now());
  assert.equal((await store.listEvents({ deviceId: 'rev-a', limit: 50 })).filter((e) => e.code === 'hardware_mismatch').length, 2);
  await store.close();
});
