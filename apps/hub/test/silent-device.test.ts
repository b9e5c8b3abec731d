/**
 * A device that goes silent in the middle of its install is a failure, never a success (DESIGN,
 * path step 8), and a slow device that keeps talking is never failed for being slow. The real
 * engine and store, the real agent on simulated devices, in simulated time.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DateTime } from 'luxon';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import { LoopbackGateway, ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { buildReleaseImage, createSimulatedDevice, demoProfiles } from '@firmward/simulator';
import type { DeviceProfile } from '@firmward/simulator';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const TZ = 'Europe/Berlin';
const MINUTE = 60_000;

async function night(profile: DeviceProfile, expectedInstallSeconds: number, minutes: number) {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'firmward-silent-'));
  const clock = new ManualClock(DateTime.fromObject({ year: 2026, month: 11, day: 25, hour: 0, minute: 58 }, { zone: TZ }).toMillis());
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  const source = new MemoryReleaseSource();
  const gateway = new LoopbackGateway(clock);
  const engine = new RolloutEngine({
    store, gateway, source, clock, log: silentLogger,
    config: { tickMs: MINUTE, offerResendSeconds: 120, releaseRefreshSeconds: 300 }, imageUrl: (id) => `http://hub.test/firmware/${encodeURIComponent(id)}`,
  });
  const service = new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'loopback', mqtt: null });
  const id = profile.identity;
  await store.putHome({
    id: 'home', name: 'home', halt: null,
    settings: { timeZone: TZ, window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 120, silenceTimeoutSeconds: 900 },
  });
  await store.putDevice({ id: id.deviceId, homeId: 'home', name: profile.name, vendor: id.vendor, model: id.model, hardwareRevision: id.hardwareRevision, firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
  const image = buildReleaseImage(profile, '1.1.0');
  source.publish({
    id: releaseId(id.vendor, id.model, '1.1.0'), vendor: id.vendor, model: id.model, hardwareRevisions: [id.hardwareRevision], version: '1.1.0',
    severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds, preflightOverrides: {}, retracted: false,
    recovery: { steps: ['Unplug the lock for ten seconds.'], supportContact: 'Acme support' },
    image: { path: 'x.img', lengthBytes: image.byteLength, sha256: createHash('sha256').update(image).digest('hex') },
  }, image);
  const device = createSimulatedDevice(profile, { clock, fetch: source.fetch, linkCheckIntervalMs: MINUTE, connect: (i) => gateway.connect(i.deviceId) });
  await gateway.start(engine);
  await engine.start();
  await device.start();
  const summaries: string[] = [];
  for (let m = 0; m < minutes; m++) {
    await clock.advance(MINUTE);
    summaries.push((await service.getDevice(id.deviceId)).update.summary);
  }
  const jobs = await store.listJobs({ deviceId: id.deviceId });
  const home = await store.getHome('home');
  const events = await store.listEvents({ homeId: 'home', limit: 1000 });
  await engine.stop();
  await device.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { jobs, home, events, summaries, device };
}

test('a device that goes silent mid-install fails after the silence deadline and halts its home by name', async () => {
  const profile = { ...demoProfiles(TZ).frontLock, name: 'Front door lock', failure: 'goes-silent' as const };
  const { jobs, home, events } = await night(profile, 300, 60);
  assert.equal(jobs.length, 1);
  const job = jobs[0]!;
  assert.equal(job.state, 'failed');
  assert.equal(job.failure?.code, 'device_silent');
  assert.ok(!events.some((e) => e.to === 'succeeded'), 'a silent device was counted as updated');
  assert.equal(home?.halt?.deviceId, profile.identity.deviceId);
  assert.match(home?.halt?.message ?? '', /Front door lock/);
  // Failed only after the deadline: at least 15 minutes after the device was last heard.
  const failedAt = events.find((e) => e.to === 'failed')!.at;
  assert.ok(job.lastHeardAt !== null && failedAt - job.lastHeardAt >= 900_000);
});

test('a slow install that keeps reporting is never failed for being slow; the person is told to leave it powered', async () => {
  // Expected 2 minutes, takes 25: far past its expected end, but the device keeps talking.
  const profile = { ...demoProfiles(TZ).kitchenPlug, name: 'Slow plug', installSeconds: 25 * 60 };
  const { jobs, summaries } = await night(profile, 120, 45);
  assert.equal(jobs[0]?.state, 'succeeded');
  assert.ok(summaries.some((s) => /Taking longer than expected — leave it powered/.test(s)), 'the person was never told to leave it powered');
});
