/**
 * A person's cancel sticks: the release they cancelled is not queued again for that device. Two
 * actors run at once — the person's cancel and the engine's planner (the loop's tick, which does not
 * take the home's lock) — and the planner is made to run at every point of the cancel in turn:
 * before or after each store call and during the cancel command's send. Whatever interleaves, once
 * the cancel has returned no open update of that release exists for the device.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import type { DeviceGateway, Store } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const RELEASE: Release = {
  id: releaseId('Acme', 'Plug', '2.0.0'), vendor: 'Acme', model: 'Plug', hardwareRevisions: ['A'], version: '2.0.0', severity: 'none',
  vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, retracted: false, recovery: { steps: ['Restart it.'] },
  image: { path: 'plug.img', lengthBytes: 4, sha256: createHash('sha256').update(new Uint8Array([1, 2, 3, 4])).digest('hex') },
};

/** The planner runs while the cancel command is being sent, not before a store call. */
const DURING_SEND = -1;

/** Counts the store calls made while `armed`, and runs `interleave` once, before the call numbered `at`. */
function interleavingStore(store: Store, at: () => number, interleave: () => Promise<void>): { store: Store; arm(on: boolean): void; calls(): number } {
  let armed = false;
  let calls = 0;
  const proxy = new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        if (armed && calls++ === at()) await interleave();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: proxy, arm: (on) => { armed = on; calls = 0; }, calls: () => calls };
}

test('property: the planner running at any point of a person\'s cancel never queues the cancelled release again', async () => {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  let longestCancel = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: DURING_SEND, max: 39 }), fc.constantFrom('queued', 'offered'), async (injectAt, startState) => {
      const dir = mkdtempSync(path.join(root, 'firmward-cancel-skip-'));
      const real = await SqliteStore.open(path.join(dir, 'hub.db'));
      try {
        const clock = new ManualClock(Date.UTC(2026, 10, 27, 2, 0));
        const source = new MemoryReleaseSource();
        source.publish(RELEASE, new Uint8Array([1, 2, 3, 4]));
        await real.putHome({
          id: 'h1', name: 'h1', halt: null,
          settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
        });
        await real.putDevice({ id: 'd1', homeId: 'h1', name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });

        // Made below, once its store exists; the planner reaches it through this holder.
        const actors: { engine?: RolloutEngine } = {};
        let interleaved = false;
        // The second actor: the loop's planner, as a tick runs it (without the home's lock).
        const planNow = async () => {
          interleaved = true;
          await actors.engine!.plan(clock.now());
        };
        const wrapped = interleavingStore(real, () => injectAt, planNow);
        // The cancel command's send is a point of the cancel too (it awaits the broker).
        const gateway: DeviceGateway = {
          name: 'interleaving', start: () => Promise.resolve(), stop: () => Promise.resolve(),
          send: async (_deviceId, command) => {
            if (command.type === 'cancel' && injectAt === DURING_SEND) await planNow();
          },
        };
        const engine = new RolloutEngine({
          store: wrapped.store, gateway, source, clock, log: silentLogger,
          config: { tickMs: 60_000, offerResendSeconds: 60, releaseRefreshSeconds: 300 }, imageUrl: (r) => `http://hub.test/firmware/${r}`,
        });
        actors.engine = engine;
        const service = new DefaultHubService({ store: wrapped.store, engine, clock, version: 'test', gatewayName: 'none', mqtt: null });
        await engine.refreshReleases();
        await engine.plan(clock.now());
        let job = (await real.listJobs({ deviceId: 'd1', open: true }))[0];
        assert.ok(job, 'the release was planned for the device');
        if (startState === 'offered') {
          job = await engine.applyAs(job.id, { type: 'offer', expectedDoneAt: clock.now() + 600_000, forcedBy: null, reasons: [] }, 'hub');
        }

        wrapped.arm(true);
        await service.cancel(job.id, 'person:owner');
        longestCancel = Math.max(longestCancel, wrapped.calls());
        wrapped.arm(false);
        if (!interleaved) return; // the injection point lies past the end of this cancel: nothing to show

        await engine.plan(clock.now());
        const open = await real.listJobs({ deviceId: 'd1', open: true });
        assert.deepEqual(open.map((j) => `${j.releaseId} ${j.state}`), [], `planned again after the cancel (planner ${injectAt === DURING_SEND ? 'during the cancel command\'s send' : `before store call ${injectAt}`})`);
      } finally {
        await real.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    { numRuns: 60 },
  );
  // The injection points must cover the whole cancel, or the property proves less than it says.
  assert.ok(longestCancel > 0 && longestCancel < 40, `a cancel made ${longestCancel} store calls; widen the injection range`);
});
