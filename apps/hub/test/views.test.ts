/**
 * The read models: what a person sees per device is about the update that matters now — the open
 * one, else the most recent — never an older job that happens to sort first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, newJob } from '@firmward/core';
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
