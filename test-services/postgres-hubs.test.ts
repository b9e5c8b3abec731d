/**
 * Two hubs started with startHub on one PostgreSQL database (store.kind "postgres", store.url),
 * each with its own HTTP port and embedded broker, the way scaled-out instances run (DESIGN,
 * scale-out): they share all state through the database, and invariant 1 holds across them
 * because the database refuses a second active job in a home, not because either hub remembers.
 *
 * The devices stay offline (no agents), so the engines plan jobs but never start one on their own;
 * only a person's `force` through each hub's service starts work. Each engine runs on a ManualClock
 * that the test never advances, so after its first pass it only acts when asked.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { ACTIVE_STATES, isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import { loadConfig } from '../apps/hub/src/config.ts';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';
import { fleetDevices, fleetHomeId, publishFleetRelease, seedFleet } from '../apps/hub/test/fixtures/fleet-fixture.ts';
import type { RepositoryConfig } from '../apps/hub/src/config.ts';
import { createTestDatabase } from './postgres-server.ts';
import type { TestDatabase } from './postgres-server.ts';

const START = Date.UTC(2026, 10, 24, 11, 0);
const LAYOUT = { homes: 3, devicesPerHome: 2 };
const OWNER_TOKEN = 'postgres-hubs-test-owner-token-0123456789';

interface Instance {
  hub: RunningHub;
  clock: ManualClock;
}

let db: TestDatabase;
const dirs: string[] = [];
const instances: Instance[] = [];

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  for (const i of instances.splice(0)) await i.hub.stop();
  await db.drop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Polls until `probe` is true (the engines work in the background); fails after a generous while. */
async function until(what: string, probe: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await probe()) return;
    await sleep(25);
  }
  assert.fail(`gave up waiting for ${what}`);
}

/** One hub instance on the shared database; both trust the maker's one signed repository. */
async function startInstance(repository: RepositoryConfig, seed: boolean): Promise<Instance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-pg-hub-'));
  dirs.push(dir);
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--store-kind', 'postgres'],
    env: { FIRMWARD_STORE_URL: db.url },
    readFile: () => {
      throw new Error('no config file in this test');
    },
  });
  assert.equal(config.store.kind, 'postgres');
  const clock = new ManualClock(START);
  const hub = await startHub({ ...config, repositories: [repository] }, {
    clock, log: silentLogger, ownerToken: OWNER_TOKEN,
    ...(seed && { seed: async (store) => void await seedFleet(store, LAYOUT, { soakSeconds: 60, silenceTimeoutSeconds: 600 }) }),
  });
  const instance = { hub, clock };
  instances.push(instance);
  // The engine's first pass (load releases, plan, sequence) is over once it sleeps on its clock.
  await until('the engine to finish its first pass', () => clock.pending > 0);
  return instance;
}

describe('two hubs on one PostgreSQL database', () => {
  let a: Instance;
  let b: Instance;
  const devices = fleetDevices(LAYOUT);

  before(async () => {
    const makerDir = mkdtempSync(path.join(tmpdir(), 'firmward-pg-maker-'));
    dirs.push(makerDir);
    const maker = await publishFleetRelease(makerDir);
    a = await startInstance(maker.config, true);
    b = await startInstance(maker.config, false);
  });

  test('both run on PostgreSQL and see the same homes and devices', async () => {
    assert.equal(a.hub.store.kind, 'postgres');
    assert.equal(b.hub.store.kind, 'postgres');
    assert.notEqual(a.hub.httpPort, b.hub.httpPort);
    assert.deepEqual((await b.hub.service.listHomes()).map((h) => h.id).sort(), [0, 1, 2].map(fleetHomeId).sort());
    assert.equal((await b.hub.service.listDevices({})).length, devices.length);
  });

  test('jobs planned by the first hub are seen by the second, which plans no duplicates', async () => {
    const fromA = await a.hub.service.listJobs({ open: true });
    assert.equal(fromA.length, devices.length, 'one open job per device');
    const fromB = await b.hub.service.listJobs({ open: true });
    assert.deepEqual(fromB.map((j) => j.id).sort(), fromA.map((j) => j.id).sort());
    // The planning history is A's: B found every device already planned when it started.
    const planned = await b.hub.service.listEvents({ limit: 1000 });
    assert.equal(planned.filter((e) => e.code === 'planned').length, devices.length);
    // A job B reads by id is the one A wrote.
    const one = fromA[0]!;
    assert.deepEqual(await b.hub.service.getJob(one.id), one);
  });

  test('what one hub commits shows at once in the other\'s live stream (the change feed), once', async () => {
    const heardOnB: string[] = [];
    const heardOnA: string[] = [];
    const stopB = b.hub.service.subscribe((e) => heardOnB.push(`${e.code} ${e.homeId}`));
    const stopA = a.hub.service.subscribe((e) => heardOnA.push(`${e.code} ${e.homeId}`));
    try {
      await a.hub.setup.createHome({ name: 'Feed test', timeZone: 'UTC' }, 'person:alice');
      await until('the home line on the other hub', () => heardOnB.includes('home_created feed-test'));
      await sleep(200);
      assert.equal(heardOnB.filter((l) => l === 'home_created feed-test').length, 1);
      assert.equal(heardOnA.filter((l) => l === 'home_created feed-test').length, 1, 'the hub that made it heard it once');
    } finally {
      stopA();
      stopB();
    }
  });

  test('a force on each hub for two devices of one home at once: exactly one starts, in every home', async () => {
    for (let h = 0; h < LAYOUT.homes; h++) {
      const homeId = fleetHomeId(h);
      const [first, second] = devices.filter((d) => d.homeId === homeId).map((d) => d.profile.identity.deviceId);
      const results = await Promise.allSettled([
        a.hub.service.force(first!, 'person:alice'),
        b.hub.service.force(second!, 'person:bob'),
      ]);
      const started = results.filter((r) => r.status === 'fulfilled');
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      assert.equal(started.length, 1, `${homeId}: ${JSON.stringify(results.map((r) => r.status === 'rejected' ? String(r.reason) : r.value.state))}`);
      assert.equal(refused.length, 1);
      assert.ok(isFirmwardError(refused[0], 'home_busy'), `${homeId}: refused with ${String(refused[0])}`);

      // Both hubs, and the database behind them, agree: one active update in the home.
      for (const hub of [a.hub, b.hub]) {
        const active = await hub.store.listJobs({ homeId, states: [...ACTIVE_STATES] });
        assert.equal(active.length, 1, `${homeId} has ${active.length} active jobs`);
        assert.ok(active[0]!.forcedBy === 'person:alice' || active[0]!.forcedBy === 'person:bob');
      }
    }
  });
});
