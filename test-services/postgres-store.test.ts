/**
 * The PostgreSQL Store against a real server (.ci/run starts it):
 *  - the very same store contract suite the SQLite adapter passes (STYLE principle 5);
 *  - several "hubs" (one PostgresStore, so one pool, each) migrating one empty schema at once;
 *  - invariant 1 held by the database under concurrency: three stores race, round after round, to
 *    move different jobs of one home into an active state; at most one wins every round, and the
 *    database never holds two active jobs for the home.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ACTIVE_STATES, isFirmwardError } from '@firmward/core';
import type { Job, JobState } from '@firmward/core';
import { Client } from 'pg';
import { makeDevice, makeHome, makeJob, runStoreContract } from '../packages/ports/testing/store-contract.ts';
import { MIGRATIONS, PostgresStore, redactUrl } from '../adapters/store-postgres/src/index.ts';
import { POSTGRES_URL, TestSchemas } from './postgres-server.ts';

const schemas = new TestSchemas();
after(() => schemas.dropAll());

const openStore = (schema: string) => PostgresStore.open({ url: POSTGRES_URL, schema, maxConnections: 4 });

runStoreContract('PostgresStore (fresh schema)', () => openStore(schemas.next()));

async function countRows(schema: string, sql: string): Promise<number> {
  const client = new Client({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(sql);
    return Number(rows[0]?.n);
  } finally {
    await client.end();
  }
}

describe('PostgresStore with several hubs on one database', () => {
  test('hubs migrating one empty schema at once apply each migration once', async () => {
    const schema = schemas.next();
    const stores = [0, 1, 2].map(() => new PostgresStore({ url: POSTGRES_URL, schema, maxConnections: 2 }));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      assert.equal(await countRows(schema, 'SELECT COUNT(*) AS n FROM schema_migrations'), MIGRATIONS.length);
      // All three can use it, and see each other's writes.
      await stores[0]!.putHome(makeHome('h'));
      assert.equal((await stores[2]!.getHome('h'))?.id, 'h');
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  test('three hubs racing to start different devices of one home: at most one wins each round', async () => {
    const schema = schemas.next();
    const hubs = await Promise.all([0, 1, 2].map(() => openStore(schema)));
    try {
      const home = 'race-home';
      await hubs[0]!.putHome(makeHome(home));
      for (let d = 0; d < 3; d++) await hubs[0]!.putDevice(makeDevice(`${home}-d${d}`, home));
      const rounds = 40;
      let singleWinners = 0;
      for (let round = 0; round < rounds; round++) {
        // Each hub believes its own device's queued job may start now (the engine's view before the write).
        const from: JobState = round % 2 === 0 ? 'queued' : 'waiting';
        const jobs: Job[] = [0, 1, 2].map((d) => makeJob(`r${round}-d${d}`, home, `${home}-d${d}`, from, { priority: d }));
        for (const job of jobs) await hubs[round % 3]!.insertJob(job);
        const to: JobState = ACTIVE_STATES[round % ACTIVE_STATES.length]!;
        const results = await Promise.allSettled(jobs.map((job, i) =>
          hubs[i]!.saveJob({ ...job, state: to, updatedAt: job.updatedAt + 1 }, from, {
            at: job.updatedAt + 1, homeId: home, deviceId: job.deviceId, jobId: job.id, kind: 'transition', from, to,
            code: 'checks_passed', message: 'Started.', actor: `hub-${i}`,
          })));
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' && r.value ? [i] : []));
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(isFirmwardError(r.reason, 'home_busy'), `round ${round}: ${String(r.reason)}`);
          else assert.equal(r.value, true, `round ${round}: a compare-and-set on a fresh job cannot be stale`);
        }
        assert.ok(won.length <= 1, `round ${round}: ${won.length} hubs started an update in one home`);
        if (won.length === 1) singleWinners++;
        // Every hub, and the database itself, sees at most one active job.
        for (const hub of hubs) assert.ok((await hub.listJobs({ homeId: home, states: [...ACTIVE_STATES] })).length <= 1);
        const activeList = ACTIVE_STATES.map((s) => `'${s}'`).join(', ');
        assert.ok(await countRows(schema, `SELECT COUNT(*) AS n FROM jobs WHERE home_id = '${home}' AND state IN (${activeList})`) <= 1);
        // Only the winner's event was written: a refused save leaves no history.
        assert.equal((await hubs[0]!.listEvents({ homeId: home, to, limit: 1000 })).filter((e) => e.jobId?.startsWith(`r${round}-`)).length, won.length);
        // Finish the round: the winner succeeds, the others are cancelled, so every device is free again.
        for (const [i, job] of jobs.entries()) {
          const stored = (await hubs[i]!.getJob(job.id))!;
          const end: JobState = won.includes(i) ? 'succeeded' : 'cancelled';
          assert.equal(await hubs[(i + 1) % 3]!.saveJob({ ...stored, state: end }, stored.state, null), true);
        }
      }
      // With nothing active at the start of a round, the index refuses only the losers: one always wins.
      assert.equal(singleWinners, rounds);
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
    }
  });

  test('three hubs racing on the same job: the compare-and-set lets exactly one through', async () => {
    const schema = schemas.next();
    const hubs = await Promise.all([0, 1, 2].map(() => openStore(schema)));
    try {
      await hubs[0]!.putHome(makeHome('h'));
      await hubs[0]!.putDevice(makeDevice('h-d0', 'h'));
      for (let round = 0; round < 20; round++) {
        const job = makeJob(`same-${round}`, 'h', 'h-d0', 'queued');
        await hubs[0]!.insertJob(job);
        // Each hub wants a different outcome for the same queued job.
        const targets: JobState[] = ['offered', 'cancelled', 'waiting'];
        const results = await Promise.all(targets.map((to, i) => hubs[i]!.saveJob({ ...job, state: to }, 'queued', {
          at: job.createdAt, homeId: 'h', deviceId: 'h-d0', jobId: job.id, kind: 'transition', from: 'queued', to, code: to, message: to, actor: `hub-${i}`,
        })));
        assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`);
        const winner = targets[results.indexOf(true)]!;
        assert.equal((await hubs[2]!.getJob(job.id))?.state, winner);
        assert.deepEqual((await hubs[1]!.listEvents({ jobId: job.id, limit: 10 })).map((e) => e.to), [winner]);
        const stored = (await hubs[0]!.getJob(job.id))!;
        if (stored.state !== 'cancelled') assert.equal(await hubs[0]!.saveJob({ ...stored, state: 'cancelled' }, stored.state, null), true);
      }
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
    }
  });

  test('two hubs planning overlapping devices at once: each device gets one job and one line, neither hub fails', async () => {
    const schema = schemas.next();
    const hubs = await Promise.all([0, 1].map(() => openStore(schema)));
    try {
      const devices = Array.from({ length: 2000 }, (_, i) => `d${String(i).padStart(4, '0')}`);
      await hubs[0]!.transaction(async (tx) => {
        await tx.putHome(makeHome('h'));
        for (const d of devices) await tx.putDevice(makeDevice(d, 'h'));
      });
      // Both in device order (as the planner lists them): a hub meeting the other's uncommitted job
      // waits for its commit and then leaves the device out. Hub 0 plans d0000–d1499, hub 1 d0500–d1999.
      const batch = (hub: number, from: number, to: number) => devices.slice(from, to).map((d) => {
        const job = makeJob(`hub${hub}-${d}`, 'h', d, 'queued');
        return { job, event: { at: job.createdAt, homeId: 'h', deviceId: d, jobId: job.id, kind: 'decision' as const, from: null, to: 'queued' as const, code: 'planned', message: 'Planned.', actor: `hub-${hub}` } };
      });
      const [a, b] = await Promise.all([hubs[0]!.insertPlannedJobs(batch(0, 0, 1500)), hubs[1]!.insertPlannedJobs(batch(1, 500, 2000))]);
      const planned = [...a, ...b].map((j) => j.deviceId).sort();
      assert.deepEqual(planned, devices);
      assert.equal(await countRows(schema, 'SELECT COUNT(*) AS n FROM jobs'), devices.length);
      assert.equal(await countRows(schema, 'SELECT COUNT(*) AS n FROM events'), devices.length);
      assert.equal(await countRows(schema, 'SELECT COUNT(*) AS n FROM events e JOIN jobs j ON j.id = e.job_id'), devices.length);
    } finally {
      await Promise.all(hubs.map((h) => h.close()));
    }
  });

  test('an unreachable server is store_failure naming the server without its password', async () => {
    const store = new PostgresStore({ url: 'postgres://firmward:s3cret-pass@127.0.0.1:1/firmward' });
    try {
      await assert.rejects(store.migrate(), (e: unknown) => {
        assert.ok(isFirmwardError(e, 'store_failure'), String(e));
        assert.match(e.message, /127\.0\.0\.1:1/);
        assert.doesNotMatch(e.message, /s3cret-pass/);
        assert.doesNotMatch(JSON.stringify(e.detail), /s3cret-pass/);
        return true;
      });
    } finally {
      await store.close();
    }
    assert.equal(redactUrl('postgres://u:p@h/db'), 'postgres://u:***@h/db');
  });

  test('a store used before migrate() or after close() says so', async () => {
    const store = new PostgresStore({ url: POSTGRES_URL, schema: schemas.next() });
    await assert.rejects(store.getHome('h'), (e: unknown) => isFirmwardError(e, 'store_failure') && /migrate\(\)/.test(e.message));
    await store.migrate();
    await store.close();
    await assert.rejects(store.getHome('h'), (e: unknown) => isFirmwardError(e, 'store_failure') && /closed/.test(e.message));
  });
});
