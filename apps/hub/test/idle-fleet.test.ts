/**
 * An idle fleet costs nothing per tick: a home is looked at when something about it changed or a
 * time it computed comes due, so the store reads of a pass do not grow with the number of homes
 * that have nothing due. Counted at the store (a counting proxy), not timed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_THRESHOLDS, HOUR_MS, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import { ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { DeviceState } from '@firmward/protocol';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../src/engine.ts';
import { counted, quietGateway } from './fixtures/counting-store.ts';

const IMAGE = new Uint8Array([1, 2, 3, 4]);
const RELEASE: Release = {
  id: releaseId('Acme', 'Plug', '2.0.0'), vendor: 'Acme', model: 'Plug', hardwareRevisions: ['A'], version: '2.0.0', severity: 'none',
  vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, retracted: false, recovery: { steps: ['Restart it.'] },
  image: { path: 'plug.img', lengthBytes: IMAGE.byteLength, sha256: createHash('sha256').update(IMAGE).digest('hex') },
};

function plugState(): DeviceState {
  return {
    v: PROTOCOL_VERSION, vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', activeSlot: 'a',
    powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -50, busy: false, freeStorageBytes: 50_000_000, healthy: true, job: null,
  };
}

/**
 * `homes` homes, each with one device and an update waiting for the quiet window (22:00–06:00; it
 * is 12:00). Returns the store calls of a pass a minute after everything was looked at once.
 */
async function idlePass(homes: number): Promise<Map<string, number>> {
  const root = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(path.join(root, 'firmward-idle-'));
  const real = await SqliteStore.open(path.join(dir, 'hub.db'));
  try {
    const clock = new ManualClock(Date.UTC(2026, 10, 27, 12, 0));
    const source = new MemoryReleaseSource();
    source.publish(RELEASE, IMAGE);
    for (let h = 0; h < homes; h++) {
      await real.putHome({
        id: `h${h}`, name: `Home ${h}`, halt: null,
        settings: { timeZone: 'UTC', window: { start: '22:00', end: '06:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
      });
      await real.putDevice({ id: `h${h}-d`, homeId: `h${h}`, name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
    }
    const { store, calls, reads } = counted(real);
    const engine = new RolloutEngine({
      store, gateway: quietGateway, source, clock, log: silentLogger,
      config: { tickMs: 1000, offerResendSeconds: 60, releaseRefreshSeconds: 3600 }, imageUrl: (r) => `http://hub.test/firmware/${r}`,
    });
    await engine.refreshReleases();
    // Enough readings that the only reason to wait is the window.
    for (let k = 0; k < 3; k++) {
      for (let h = 0; h < homes; h++) await engine.onState(`h${h}-d`, plugState(), clock.now());
      await clock.advance(30_000);
    }
    await engine.tick(); // plans, and looks at every home once
    await engine.tick(); // the planned updates are told why they wait
    const waiting = await real.listJobs({ open: true });
    assert.equal(waiting.length, homes);
    assert.deepEqual([...new Set(waiting.map((j) => `${j.state} ${j.reasons.map((r) => r.code).join(',')}`))], ['waiting outside_window']);

    await clock.advance(60_000);
    calls.clear();
    await engine.tick();
    const idle = new Map(calls);
    assert.ok(reads() > 0, 'the pass was counted');

    // Not forgotten: when the window opens (a time the window rule computed), every home is looked at and offered.
    // The devices keep reporting meanwhile (the radio rule wants recent signal readings).
    await clock.advance(10 * HOUR_MS - 4 * 60_000); // 21:57
    for (let k = 0; k < 4; k++) {
      for (let h = 0; h < homes; h++) await engine.onState(`h${h}-d`, plugState(), clock.now());
      await clock.advance(60_000);
    }
    await engine.tick(); // 22:01
    const offered = await real.listJobs({ open: true, states: ['offered'] });
    assert.equal(offered.length, homes, 'every home was offered its update when the window opened');
    return idle;
  } finally {
    await real.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an idle pass makes the same store calls for 5 homes as for 60: homes with nothing due are not read', async () => {
  const small = await idlePass(5);
  const large = await idlePass(60);
  assert.deepEqual(Object.fromEntries(large), Object.fromEntries(small));
  for (const method of ['getHome', 'listDevices', 'getTelemetry']) assert.equal(large.get(method) ?? 0, 0, `${method} in an idle pass`);
});
