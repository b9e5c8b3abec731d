/**
 * Staged rollouts through the real engine and store: a release reaches the homes in growing waves,
 * each opening only after the one before is confirmed; with failures injected into the second
 * wave the rollout stops by itself at its threshold and no home of a later wave is ever offered
 * the update; a person pauses, resumes and aborts; one device at a time per home throughout.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ACTIVE_STATES, DEFAULT_THRESHOLDS, assignWaves, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { InstantDeviceGateway } from '../../../packages/ports/testing/instant-gateway.ts';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const HOMES = 30;
const DEVICES_PER_HOME = 2;
const RELEASE: Release = {
  id: releaseId('acme', 'plug', '1.1.0'), vendor: 'acme', model: 'plug', hardwareRevisions: ['A'], version: '1.1.0', severity: 'none',
  vulnerabilitiesFixed: [], expectedInstallSeconds: 60, preflightOverrides: {}, retracted: false,
  recovery: { steps: ['Unplug it for ten seconds.'] }, image: { path: 'acme/plug/1.1.0/fw.img', lengthBytes: 1000, sha256: 'a'.repeat(64) },
};
const homeId = (h: number) => `home-${String(h).padStart(2, '0')}`;

async function fleet(failing: (home: string) => boolean) {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'firmward-rollout-'));
  dirs.push(dir);
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 1, 0));
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  const gateway = new InstantDeviceGateway(clock);
  const source = new MemoryReleaseSource();
  source.publish(RELEASE, new Uint8Array(1000));
  for (let h = 0; h < HOMES; h++) {
    await store.putHome({
      id: homeId(h), name: `Home ${h}`, halt: null,
      settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
    });
    for (let d = 0; d < DEVICES_PER_HOME; d++) {
      const id = `${homeId(h)}-plug-${d}`;
      await store.putDevice({ id, homeId: homeId(h), name: `Plug ${d}`, vendor: 'acme', model: 'plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
      gateway.addDevice(id, { vendor: 'acme', model: 'plug', hardwareRevision: 'A', firmwareVersion: '1.0.0' }, { failsUpdate: failing(homeId(h)) });
    }
  }
  const engine = new RolloutEngine({
    store, gateway, source, clock, log: silentLogger,
    config: { tickMs: 30_000, offerResendSeconds: 120, releaseRefreshSeconds: 3600 }, imageUrl: (id) => `http://hub.test/firmware/${id}`,
  });
  const service = new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'instant', mqtt: null });
  await gateway.start(engine);
  await engine.refreshReleases();
  gateway.announceAll();
  await gateway.idle();
  /** One engine pass and everything the devices answer, then the clock moves on; invariant 1 checked after each. */
  const step = async () => {
    await engine.tick();
    await gateway.idle();
    const active = await store.listJobs({ states: [...ACTIVE_STATES] });
    const perHome = new Map<string, number>();
    for (const j of active) perHome.set(j.homeId, (perHome.get(j.homeId) ?? 0) + 1);
    for (const [home, n] of perHome) assert.ok(n <= 1, `invariant 1: ${home} has ${n} active updates`);
    await clock.advance(30_000);
  };
  return { store, engine, service, gateway, clock, step, close: () => store.close() };
}

test('waves open one after the other, each after the one before is confirmed; the last completes the rollout', async () => {
  const f = await fleet(() => false);
  const started = await f.service.startRollout({ releaseId: RELEASE.id, waves: [10, 50, 100], minFinished: 3, maxFailureRate: 0.2 }, 'person:owner');
  const waves = assignWaves(started, Array.from({ length: HOMES }, (_, h) => homeId(h)));
  assert.deepEqual(started.homesPerWave, [3, 12, 15]);
  const waveOfHome = (id: string) => waves.get(id)!;
  const opened: number[] = [];
  for (let i = 0; i < 200; i++) {
    await f.step();
    const rollout = (await f.store.getRollout(started.id))!;
    if (opened.at(-1) !== rollout.wave) opened.push(rollout.wave);
    // No update of a later wave has started, or even left the queue with an offer.
    for (const job of await f.store.listReleaseJobs(RELEASE.id)) {
      if (waveOfHome(job.homeId) > rollout.wave) assert.ok(job.state === 'queued' || job.state === 'waiting', `${job.homeId} (wave ${waveOfHome(job.homeId) + 1}) is ${job.state} during wave ${rollout.wave + 1}`);
    }
    if (rollout.state === 'completed') break;
  }
  const done = await f.service.getRollout(started.id);
  assert.equal(done.state, 'completed', done.summary);
  assert.deepEqual(opened, [0, 1, 2]);
  assert.equal(done.progress.succeeded, HOMES * DEVICES_PER_HOME);
  assert.match(done.summary, /Completed: 60 updated, 0 failed/);
  await f.close();
});

test('failures injected into the second wave stop the rollout by itself at its threshold; no later home is offered the update', async () => {
  // The homes of wave 2 fail; wave 1's succeed. Wave assignment is by rollout id, so pick failures after it is known.
  let failingHomes = new Set<string>();
  const f = await fleet((home) => failingHomes.has(home));
  const started = await f.service.startRollout({ releaseId: RELEASE.id, waves: [10, 50, 100], minFinished: 4, maxFailureRate: 0.25 }, 'person:owner');
  const waves = assignWaves(started, Array.from({ length: HOMES }, (_, h) => homeId(h)));
  failingHomes = new Set([...waves].filter(([, w]) => w === 1).map(([h]) => h));
  // The devices were made before the rollout's id was known: rebuild them with the failure set.
  for (const home of failingHomes) for (let d = 0; d < DEVICES_PER_HOME; d++) f.gateway.addDevice(`${home}-plug-${d}`, { vendor: 'acme', model: 'plug', hardwareRevision: 'A', firmwareVersion: '1.0.0' }, { failsUpdate: true });

  let stoppedAt = -1;
  for (let i = 0; i < 200 && stoppedAt < 0; i++) {
    await f.step();
    if ((await f.store.getRollout(started.id))!.state === 'stopped') stoppedAt = i;
  }
  const stopped = await f.service.getRollout(started.id);
  assert.equal(stopped.state, 'stopped', stopped.summary);
  assert.equal(stopped.reason?.code, 'rollout_stopped_failures');
  assert.match(stopped.reason?.message ?? '', /stopped by itself: \d+ of \d+ finished updates failed/);
  assert.ok(stopped.progress.failed / stopped.progress.finished > 0.25);
  assert.equal(stopped.wave, 1, 'it stopped in the second wave');

  // Nothing new starts after the stop; what was running finishes.
  for (let i = 0; i < 20; i++) await f.step();
  const jobs = await f.store.listReleaseJobs(RELEASE.id);
  const started3 = jobs.filter((j) => waves.get(j.homeId) === 2 && j.state !== 'queued' && j.state !== 'waiting');
  assert.deepEqual(started3, [], 'no home of the third wave was ever offered the update');
  assert.equal(jobs.filter((j) => (ACTIVE_STATES as readonly string[]).includes(j.state)).length, 0, 'running updates finished');
  const holding = await f.store.listJobs({ homeId: [...waves].find(([, w]) => w === 2)![0], open: true });
  assert.match(holding[0]!.reasons.map((r) => r.message).join(' '), /stopped by itself/);
  const failedBefore = (await f.service.getRollout(started.id)).progress;

  // A person looks and resumes; failures count afresh, and the failing homes stop it again.
  const resumed = await f.service.actOnRollout(started.id, 'resume', 'person:owner');
  assert.equal(resumed.state, 'running');
  assert.equal(resumed.progress.finished, 0, 'counted afresh from the resume');
  assert.ok(failedBefore.failed > 0);
  await f.close();
});

test('pause holds what has not started, resume goes on, abort cancels what has not started and is never planned again', async () => {
  const f = await fleet(() => false);
  const rollout = await f.service.startRollout({ releaseId: RELEASE.id, waves: [50, 100] }, 'person:owner');
  const paused = await f.service.actOnRollout(rollout.id, 'pause', 'person:owner');
  assert.equal(paused.state, 'paused');
  for (let i = 0; i < 5; i++) await f.step();
  const whilePaused = await f.store.listReleaseJobs(RELEASE.id);
  assert.ok(whilePaused.length > 0 && whilePaused.every((j) => j.state === 'queued' || j.state === 'waiting'), 'nothing starts while paused');
  const waiting = await f.store.listJobs({ open: true, limit: 1 });
  assert.match(waiting[0]!.reasons.map((r) => r.message).join(' '), /paused by owner/);
  await assert.rejects(f.service.actOnRollout(rollout.id, 'pause', 'person:owner'), /only a running rollout can be paused/);

  await f.service.actOnRollout(rollout.id, 'resume', 'person:owner');
  for (let i = 0; i < 4; i++) await f.step();
  const some = (await f.store.listReleaseJobs(RELEASE.id)).filter((j) => j.state === 'succeeded').length;
  assert.ok(some > 0, 'updates go on after resume');

  const aborted = await f.service.actOnRollout(rollout.id, 'abort', 'person:owner');
  assert.equal(aborted.state, 'aborted');
  for (let i = 0; i < 5; i++) await f.step();
  const jobs = await f.store.listReleaseJobs(RELEASE.id);
  assert.equal(jobs.filter((j) => j.state === 'queued' || j.state === 'waiting').length, 0, 'nothing left waiting');
  assert.ok(jobs.some((j) => j.state === 'cancelled'));
  assert.equal(jobs.filter((j) => (ACTIVE_STATES as readonly string[]).includes(j.state)).length, 0, 'running ones finished');
  assert.ok(jobs.filter((j) => j.state === 'succeeded').length >= some, 'what had succeeded stays succeeded');
  f.engine.notifier.committed({ kind: 'fleet', why: 'plan again' });
  await f.step();
  assert.equal((await f.store.listReleaseJobs(RELEASE.id)).filter((j) => j.state === 'queued' || j.state === 'waiting').length, 0, 'not planned again');
  await assert.rejects(f.service.startRollout({ releaseId: RELEASE.id }, 'person:owner'), /already has a staged rollout/);
  await f.close();
});
