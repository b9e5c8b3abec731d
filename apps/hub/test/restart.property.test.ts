/**
 * Invariant 8: no accepted state is lost when the hub dies at any point, and every command is
 * idempotent by job id — attacked with random outages of the hub in the middle of a night of
 * updates. The hub "dies" between any two simulated minutes: its engine is dropped mid-flight
 * with whatever it was doing, its store closed, and a new hub opens the same database, possibly
 * minutes later. The devices (the real agent, simulated) never stop.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { ACTIVE_STATES, DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Home, Job, JobState, Release } from '@firmward/core';
import { LoopbackGateway, ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { buildReleaseImage, createSimulatedDevice, demoProfiles } from '@firmward/simulator';
import type { DeviceProfile, SimulatedDevice } from '@firmward/simulator';
import { RolloutEngine } from '../src/engine.ts';

const TZ = 'Europe/Berlin';
const MINUTE = 60_000;
const NIGHT = DateTime.fromObject({ year: 2026, month: 11, day: 24, hour: 0, minute: 55 }, { zone: TZ }).toMillis();
const ORDER: Record<JobState, number> = {
  queued: 0, waiting: 0, offered: 1, downloading: 2, downloaded: 3, installing: 4, rebooting: 5, confirming: 6,
  succeeded: 7, failed: 7, cancelled: 7,
};

function profiles(): { homeId: string; profile: DeviceProfile }[] {
  const p = demoProfiles(TZ);
  const out: { homeId: string; profile: DeviceProfile }[] = [];
  for (const homeId of ['h1', 'h2']) {
    for (const [i, model] of ['Plug', 'Thermo', 'Speaker'].entries()) {
      const id = `${homeId}-${model.toLowerCase()}`;
      out.push({ homeId, profile: { ...p.kitchenPlug, name: id, identity: { ...p.kitchenPlug.identity, deviceId: id, model }, installSeconds: 60 + 30 * i, bootSeconds: 20 } });
    }
  }
  return out;
}

function home(id: string): Home {
  return {
    id, name: id, halt: null,
    settings: {
      timeZone: TZ, window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS, soakSeconds: 120, silenceTimeoutSeconds: 900,
    },
  };
}

function release(profile: DeviceProfile, version: string): { release: Release; image: Uint8Array } {
  const image = buildReleaseImage(profile, version);
  const { vendor, model, hardwareRevision } = profile.identity;
  return {
    image,
    release: {
      id: releaseId(vendor, model, version), vendor, model, hardwareRevisions: [hardwareRevision], version, severity: 'none',
      vulnerabilitiesFixed: [], expectedInstallSeconds: 600, preflightOverrides: {}, retracted: false,
      recovery: { steps: ['Switch it off and on.'] },
      image: { path: `${model}.img`, lengthBytes: image.byteLength, sha256: createHash('sha256').update(image).digest('hex') },
    },
  };
}

type Step = { minutes: number; outage: 'none' | 'crash' | 'crash-and-stay-down'; downMinutes: number };
const stepArb: fc.Arbitrary<Step> = fc.record({
  minutes: fc.integer({ min: 0, max: 12 }),
  outage: fc.constantFrom('none', 'none', 'crash', 'crash-and-stay-down'),
  downMinutes: fc.integer({ min: 1, max: 20 }),
});

test('property: the hub dies at random points of a night; nothing accepted is lost, one device per home, every update finishes once', async () => {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 3, maxLength: 25 }), async (steps) => {
      const dir = mkdtempSync(path.join(root, 'firmward-restart-'));
      const dbPath = path.join(dir, 'hub.db');
      const clock = new ManualClock(NIGHT);
      const source = new MemoryReleaseSource();
      const gateway = new LoopbackGateway(clock);
      const fleet = profiles();
      let store = await SqliteStore.open(dbPath);
      for (const h of ['h1', 'h2']) await store.putHome(home(h));
      for (const { homeId, profile } of fleet) {
        const id = profile.identity;
        await store.putDevice({ id: id.deviceId, homeId, name: profile.name, vendor: id.vendor, model: id.model, hardwareRevision: id.hardwareRevision, firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
        const r = release(profile, '1.1.0');
        source.publish(r.release, r.image);
      }

      const newEngine = (s: SqliteStore) => new RolloutEngine({
        store: s, gateway, source, clock, log: silentLogger,
        config: { tickMs: MINUTE, offerResendSeconds: 120, releaseRefreshSeconds: 300 },
        imageUrl: (rid) => `http://hub.test/firmware/${encodeURIComponent(rid)}`,
      });
      let engine: RolloutEngine | null = newEngine(store);
      await gateway.start(engine);
      await engine.start();
      const devices: SimulatedDevice[] = fleet.map(({ profile }) => createSimulatedDevice(profile, {
        clock, fetch: source.fetch, linkCheckIntervalMs: MINUTE, connect: (identity) => gateway.connect(identity.deviceId),
      }));
      for (const d of devices) await d.start();

      /** Every job the hub ever showed us, at the furthest state seen: nothing may go backwards or vanish. */
      const seen = new Map<string, Job>();
      const check = async (s: SqliteStore) => {
        const jobs = await s.listJobs({});
        for (const h of ['h1', 'h2']) {
          const active = jobs.filter((j) => j.homeId === h && (ACTIVE_STATES as readonly string[]).includes(j.state));
          assert.ok(active.length <= 1, `two active jobs in ${h}: ${active.map((j) => j.deviceId).join(', ')}`);
        }
        const ids = new Set(jobs.map((j) => j.id));
        for (const [id, before] of seen) {
          assert.ok(ids.has(id), `job ${id} of ${before.deviceId} was lost`);
          const now = jobs.find((j) => j.id === id)!;
          // A waiting job may step back from "downloaded" (conditions changed before install); nothing else goes back.
          if (!(before.state === 'downloaded' && now.state === 'waiting')) {
            assert.ok(ORDER[now.state] >= ORDER[before.state], `job of ${now.deviceId} went back from ${before.state} to ${now.state}`);
          }
        }
        for (const j of jobs) seen.set(j.id, j);
      };

      const crash = async () => {
        // Dropped mid-flight: no graceful stop of the engine; the gateway stops delivering to it.
        const dead = engine;
        engine = null;
        await gateway.stop();
        void dead?.stop();
        await store.close();
      };
      const restart = async () => {
        store = await SqliteStore.open(dbPath);
        await check(store);
        engine = newEngine(store);
        await gateway.start(engine);
        await engine.start();
      };

      try {
        for (const step of steps) {
          await clock.advance(step.minutes * MINUTE);
          if (engine) await check(store);
          if (step.outage === 'none') continue;
          await crash();
          if (step.outage === 'crash-and-stay-down') await clock.advance(step.downMinutes * MINUTE);
          await restart();
        }
        // Then the night goes on without outages until 05:00.
        const end = DateTime.fromMillis(NIGHT, { zone: TZ }).set({ hour: 5, minute: 0 }).toMillis();
        while (clock.now() < end) {
          await clock.advance(5 * MINUTE);
          await check(store);
        }
        const jobs = await store.listJobs({});
        for (const { profile } of fleet) {
          const id = profile.identity.deviceId;
          const mine = jobs.filter((j) => j.deviceId === id);
          assert.equal(mine.filter((j) => j.state === 'succeeded').length, 1, `${id}: ${mine.map((j) => j.state).join(', ')}`);
          assert.equal(mine.filter((j) => j.state === 'failed').length, 0, `${id} failed: ${mine.map((j) => j.failure?.message).join('; ')}`);
          assert.equal((await store.getDevice(id))?.firmwareVersion, '1.1.0');
        }
        for (const d of devices) assert.equal(d.runningVersion, '1.1.0');
      } finally {
        for (const d of devices) await d.stop();
        await engine?.stop();
        await store.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 12 },
  );
});
