/**
 * Invariant 1 under concurrent requests from several hub instances: two engines and two services
 * share one database (as several hubs share PostgreSQL when scaled out), each with its own
 * in-process locks, and people fire "force", "update now" and "cancel" at both at once while
 * devices report. The database's partial unique index is what must hold, whatever interleaves.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { ACTIVE_STATES, DEFAULT_THRESHOLDS, isFirmwardError, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import type { DeviceGateway } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { DeviceState } from '@firmward/protocol';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const HOMES = ['h1', 'h2'];
const PER_HOME = 4;
const deviceIds = HOMES.flatMap((h) => Array.from({ length: PER_HOME }, (_, i) => `${h}-d${i}`));

/** Commands go nowhere: this test is about what the hubs decide and store, not about devices. */
const quietGateway: DeviceGateway = { name: 'none', start: () => Promise.resolve(), stop: () => Promise.resolve(), send: () => Promise.resolve() };

function state(firmwareVersion: string, busy: boolean): DeviceState {
  return {
    v: PROTOCOL_VERSION, vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion, activeSlot: 'a',
    powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -50, busy, freeStorageBytes: 50_000_000, healthy: true, job: null,
  };
}

type Action =
  | { kind: 'force' | 'update' ; hub: 0 | 1; device: number }
  | { kind: 'cancel'; hub: 0 | 1; device: number }
  | { kind: 'report'; hub: 0 | 1; device: number; busy: boolean }
  | { kind: 'tick'; hub: 0 | 1 };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ kind: fc.constantFrom('force' as const, 'update' as const), hub: fc.constantFrom(0 as const, 1 as const), device: fc.nat(deviceIds.length - 1) }),
  fc.record({ kind: fc.constant('cancel' as const), hub: fc.constantFrom(0 as const, 1 as const), device: fc.nat(deviceIds.length - 1) }),
  fc.record({ kind: fc.constant('report' as const), hub: fc.constantFrom(0 as const, 1 as const), device: fc.nat(deviceIds.length - 1), busy: fc.boolean() }),
  fc.record({ kind: fc.constant('tick' as const), hub: fc.constantFrom(0 as const, 1 as const) }),
);

test('property: concurrent forces, update-nows, cancels and ticks on two hubs never make two active updates in a home', async () => {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  // The contention must really happen: starts that won, and starts the database refused.
  const seen = { started: 0, busy: 0 };
  await fc.assert(
    fc.asyncProperty(fc.array(fc.array(actionArb, { minLength: 2, maxLength: 8 }), { minLength: 2, maxLength: 8 }), async (rounds) => {
      const dir = mkdtempSync(path.join(root, 'firmward-concurrent-'));
      const store = await SqliteStore.open(path.join(dir, 'hub.db'));
      try {
        // 02:00 UTC: inside every home's window.
        const clock = new ManualClock(Date.UTC(2026, 10, 27, 2, 0));
        const source = new MemoryReleaseSource();
        const image = new Uint8Array([1, 2, 3, 4]);
        const release: Release = {
          id: releaseId('Acme', 'Plug', '2.0.0'), vendor: 'Acme', model: 'Plug', hardwareRevisions: ['A'], version: '2.0.0', severity: 'none',
          vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, retracted: false, recovery: { steps: ['Restart it.'] },
          image: { path: 'plug.img', lengthBytes: image.byteLength, sha256: createHash('sha256').update(image).digest('hex') },
        };
        source.publish(release, image);
        for (const h of HOMES) {
          await store.putHome({
            id: h, name: h, halt: null,
            settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
          });
        }
        for (const id of deviceIds) {
          await store.putDevice({ id, homeId: id.slice(0, 2), name: id, vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
        }
        const hubs = [0, 1].map(() => {
          const engine = new RolloutEngine({
            store, gateway: quietGateway, source, clock, log: silentLogger,
            config: { tickMs: 60_000, offerResendSeconds: 60, releaseRefreshSeconds: 300 }, imageUrl: (r) => `http://hub.test/firmware/${r}`,
          });
          return { engine, service: new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'none', mqtt: null }) };
        });
        for (const h of hubs) await h.engine.refreshReleases();
        // Every device reports a few times, so the radio rule has its samples.
        for (let k = 0; k < 4; k++) {
          for (const id of deviceIds) await hubs[0]!.engine.onState(id, state('1.0.0', false), clock.now());
          await clock.advance(30_000);
        }

        for (const round of rounds) {
          const results = await Promise.allSettled(round.map(async (a) => {
            const hub = hubs[a.hub]!;
            switch (a.kind) {
              case 'force': return hub.service.force(deviceIds[a.device]!, 'person:owner');
              case 'update': return hub.service.updateNow(deviceIds[a.device]!, 'person:owner');
              case 'cancel': {
                const job = (await store.listJobs({ deviceId: deviceIds[a.device]!, open: true }))[0];
                return job ? hub.service.cancel(job.id, 'person:owner') : null;
              }
              case 'report': return hub.engine.onState(deviceIds[a.device]!, state('1.0.0', a.busy), clock.now());
              case 'tick': return hub.engine.tick();
            }
          }));
          // Refusals are fine (home_busy, cancel_too_late, conflict…); anything else is a bug.
          for (const r of results) {
            if (r.status === 'rejected' && !isFirmwardError(r.reason)) throw r.reason;
            if (r.status === 'rejected' && isFirmwardError(r.reason, 'home_busy')) seen.busy++;
            if (r.status === 'fulfilled' && r.value && typeof r.value === 'object' && 'forcedBy' in r.value && r.value.forcedBy) seen.started++;
          }
          const jobs = await store.listJobs({ open: true });
          for (const h of HOMES) {
            const active = jobs.filter((j) => j.homeId === h && (ACTIVE_STATES as readonly string[]).includes(j.state));
            assert.ok(active.length <= 1, `home ${h} has ${active.length} active updates: ${active.map((j) => `${j.deviceId}:${j.state}`).join(', ')}`);
          }
          await clock.advance(30_000);
        }
      } finally {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 40 },
  );
  assert.ok(seen.started > 0 && seen.busy > 0, `no contention exercised: ${JSON.stringify(seen)}`);
});
