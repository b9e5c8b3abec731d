/**
 * The hub came back and a device's queue still held answers it wrote while the hub was away
 * (issue 18). Out-of-reach refusals send the job back to waiting, blamed on nobody, and it is
 * offered again after the retry time; an answer to an earlier offer of the job — even a final
 * refusal — changes nothing once the job was offered again. The real engine and store, a scripted
 * device on the loopback gateway, simulated time.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import { LoopbackGateway, ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { Command, DeviceEvent, OfferCommand } from '@firmward/protocol';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';

const DEVICE = 'plug-1';
const HOME = 'home';

test('late answers from before the hub died: out of reach waits and retries, an answer to an earlier offer is stale', async (t) => {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'firmward-stale-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clock = new ManualClock(Date.UTC(2026, 11, 7, 2, 0));
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  t.after(() => store.close());
  const source = new MemoryReleaseSource();
  const gateway = new LoopbackGateway(clock);
  const rejected: string[] = [];
  const engine = new RolloutEngine({
    store, gateway, source, clock, log: { ...silentLogger, child: () => silentLogger },
    config: { tickMs: 1000, offerResendSeconds: 3600, releaseRefreshSeconds: 3600, unreachableRetrySeconds: 60 },
    imageUrl: (id) => `http://hub.test/firmware/${encodeURIComponent(id)}`,
  });
  const onRejected = engine.onRejected.bind(engine);
  engine.onRejected = (info) => {
    rejected.push(info.error);
    onRejected(info);
  };
  await store.putHome({
    id: HOME, name: HOME, halt: null,
    settings: { timeZone: 'UTC', window: { start: '00:00', end: '23:59' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
  });
  await store.putDevice({ id: DEVICE, homeId: HOME, name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
  source.publish({
    id: releaseId('Acme', 'Plug', '1.1.0'), vendor: 'Acme', model: 'Plug', hardwareRevisions: ['rev2'], version: '1.1.0',
    severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds: 60, preflightOverrides: {}, retracted: false,
    recovery: { steps: ['Unplug it.'], supportContact: 'Acme support' },
    image: { path: 'plug.img', lengthBytes: 1024, sha256: 'a'.repeat(64) },
  }, new Uint8Array(1024));

  // The scripted device: wired, idle, healthy; it records every command and answers only when told.
  const device = gateway.connect(DEVICE);
  const commands: Command[] = [];
  device.onCommand((c) => commands.push(c));
  await gateway.start(engine);
  await device.start();
  const state = {
    v: PROTOCOL_VERSION, vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0', activeSlot: 'a',
    powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: false, freeStorageBytes: 1 << 30, healthy: true, job: null,
  } as const;
  await device.publishState(state);
  await engine.start();
  t.after(() => engine.stop());
  const settle = async () => {
    for (let i = 0; i < 20; i++) await turn();
  };
  const tick = async (ms = 1000) => {
    await clock.advance(ms);
    await settle();
  };
  const job = async () => (await store.listJobs({ deviceId: DEVICE }))[0]!;
  const offers = () => commands.filter((c): c is OfferCommand => c.type === 'offer');
  const say = async (event: Record<string, unknown>) => {
    await device.publishEvent({ v: PROTOCOL_VERSION, jobId: (await job()).id, ...event } as DeviceEvent);
    await settle();
  };

  for (let i = 0; i < 5 && offers().length === 0; i++) await tick();
  assert.equal(offers().length, 1, JSON.stringify(await store.listJobs({ deviceId: DEVICE })));
  assert.equal(offers()[0]?.offerSeq, 1, 'the first offer is offer 1');
  assert.equal((await job()).state, 'offered');

  // Its check could not reach the hub while it was away; the refusal arrives now.
  await say({ type: 'ack', accepted: false, code: 'repository_unreachable', message: 'The release repository acme cannot be reached right now.', offerSeq: 1 });
  let now = await job();
  assert.equal(now.state, 'waiting');
  assert.equal(now.failure, null);
  assert.equal(now.reasons[0]?.code, 'repository_unreachable');
  assert.equal((await store.getHome(HOME))?.halt, null, 'the home does not halt');

  // Not offered again before the retry time, then offered again as offer 2.
  await tick(30_000);
  assert.equal(offers().length, 1, 'not offered again before the retry time');
  await tick(31_000);
  await tick();
  assert.equal(offers().length, 2, 'offered again after the retry time');
  assert.equal(offers()[1]?.offerSeq, 2);
  assert.equal(offers()[1]?.jobId, now.id, 'the same job, offered again');

  // A second refusal of offer 1, still in the queue, arrives after offer 2 went out: stale.
  await say({ type: 'ack', accepted: false, code: 'repository_unreachable', message: 'still unreachable', offerSeq: 1 });
  assert.equal((await job()).state, 'offered', 'a stale refusal does not send the job back');
  await say({ type: 'ack', accepted: true, code: null, message: null, offerSeq: 2 });
  await say({ type: 'progress', phase: 'downloading', percent: 5 });
  assert.equal((await job()).state, 'downloading');

  // Even a final refusal, when it answers offer 1, cannot end a job offered again since.
  await say({ type: 'ack', accepted: false, code: 'signature_invalid', message: 'old answer', offerSeq: 1 });
  now = await job();
  assert.equal(now.state, 'downloading');
  assert.equal(now.failure, null);
  assert.ok(rejected.filter((r) => /answers offer 1 of update .* now at offer 2/.test(r)).length >= 2, rejected.join('\n'));

  // The answer to the current offer is judged: the device verified the image is wrong → final.
  await say({ type: 'ack', accepted: false, code: 'image_hash_mismatch', message: 'The downloaded update does not match.', offerSeq: 2 });
  now = await job();
  assert.equal(now.state, 'failed');
  assert.equal(now.failure?.code, 'image_hash_mismatch');
  const history = await store.listEvents({ homeId: HOME, limit: 100 });
  assert.ok(!history.some((e) => e.to === 'failed' && e.code === 'repository_unreachable'), 'nothing failed for the hub being away');
  await device.stop();
});
