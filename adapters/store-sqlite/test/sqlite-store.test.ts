import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { ACTIVE_STATES, isFirmwardError } from '@firmward/core';
import type { ErrorCode, JobState } from '@firmward/core';
import { makeDevice, makeHome, makeJob, runStoreContract } from '../../../packages/ports/testing/store-contract.ts';
import { MIGRATIONS, SqliteStore } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'firmward-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const tempPath = () => join(dir, `db-${files++}.sqlite`);

runStoreContract('SqliteStore (temp file)', () => SqliteStore.open(tempPath()));

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isFirmwardError(e, code), `expected ${code}, got ${String(e)}`);
    caught = e;
    return true;
  });
  return caught;
}

/** A second, raw connection to the same file: how a person (or a bug) could touch the data. */
function raw(path: string): DatabaseSync {
  return new DatabaseSync(path, { timeout: 5000 });
}

describe('SqliteStore (sqlite specifics)', () => {
  test('telemetry arriving together is committed together; a bad write fails alone, the others are durable', async () => {
    const path = tempPath();
    const store = await SqliteStore.open(path);
    await store.putHome(makeHome('h'));
    for (const id of ['h-d0', 'h-d1']) await store.putDevice(makeDevice(id, 'h'));
    const db = raw(path);
    const commitsBefore = Number(db.prepare('PRAGMA data_version').get()?.['data_version']);
    // Three reports in the same turn of the event loop: one for a device the store does not know.
    const results = await Promise.allSettled([
      store.recordTelemetry('h-d0', { signalSample: { at: 1_000, dbm: -60 }, online: true }),
      store.recordTelemetry('nope', { signalSample: { at: 1_000, dbm: -61 } }),
      store.recordTelemetry('h-d1', { signalSample: { at: 1_000, dbm: -62 }, online: true }),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.ok(results[1].status === 'rejected' && isFirmwardError(results[1].reason, 'not_found'), 'the unknown device is named');
    // Seen from another connection: both good writes are there, in one commit.
    assert.deepEqual(db.prepare('SELECT device_id, dbm FROM signal_samples ORDER BY device_id').all().map((r) => [r['device_id'], r['dbm']]), [['h-d0', -60], ['h-d1', -62]]);
    assert.equal(Number(db.prepare('PRAGMA data_version').get()?.['data_version']) - commitsBefore, 1, 'one commit for the batch');
    db.close();
    await store.close();
  });

  test('the constructor touches nothing; migrate opens; operations before it are refused', async () => {
    const path = tempPath();
    const store = new SqliteStore({ path });
    assert.equal(existsSync(path), false);
    await rejectsWith(store.listHomes(), 'store_failure');
    await store.migrate();
    assert.equal(existsSync(path), true);
    assert.deepEqual(await store.listHomes(), []);
    await store.close();
    await store.close();
    await rejectsWith(store.listHomes(), 'store_failure');
    await rejectsWith(store.migrate(), 'store_failure');
  });

  test('durability settings: WAL, synchronous=FULL, foreign keys, busy timeout', async () => {
    const store = await SqliteStore.open(tempPath(), { busyTimeoutMs: 1234 });
    assert.deepEqual(await store.diagnostics(), { journalMode: 'wal', synchronous: 'full', foreignKeys: true, busyTimeoutMs: 1234, schemaVersion: MIGRATIONS.length });
    await store.close();
    const memory = await SqliteStore.open(':memory:');
    assert.equal((await memory.diagnostics()).synchronous, 'full');
    await memory.putHome(makeHome('h'));
    assert.equal((await memory.getHome('h'))?.id, 'h');
    await memory.close();
  });

  test('migrations are recorded once, even when two processes migrate the same file', async () => {
    const path = tempPath();
    const a = new SqliteStore({ path });
    const b = new SqliteStore({ path });
    await Promise.all([a.migrate(), b.migrate()]);
    await a.migrate();
    const db = raw(path);
    assert.deepEqual(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all().map((r) => ({ ...r })), MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
    db.close();
    await a.close();
    await b.close();
  });

  test('the invariant-1 index is built from ACTIVE_STATES, and a database guarding other states is refused', async () => {
    const path = tempPath();
    const store = await SqliteStore.open(path);
    await store.close();
    const db = raw(path);
    const row = db.prepare("SELECT sql FROM sqlite_master WHERE name = 'jobs_one_active_per_home'").get();
    for (const s of ACTIVE_STATES) assert.match(String(row?.sql), new RegExp(`'${s}'`));
    db.exec("DROP INDEX jobs_one_active_per_home; CREATE UNIQUE INDEX jobs_one_active_per_home ON jobs(home_id) WHERE state IN ('installing')");
    db.close();
    await rejectsWith(new SqliteStore({ path }).migrate(), 'store_failure');
  });

  test('a database from a newer hub is refused', async () => {
    const path = tempPath();
    await (await SqliteStore.open(path)).close();
    const db = raw(path);
    db.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)");
    db.close();
    await rejectsWith(new SqliteStore({ path }).migrate(), 'store_failure');
  });

  test('a folder that does not exist is a store_failure naming the path', async () => {
    const e = await rejectsWith(SqliteStore.open(join(dir, 'missing', 'x.db')), 'store_failure');
    assert.match((e as Error).message, /missing/);
  });

  test('invariant 1 holds across two hub processes sharing one database file', async () => {
    const path = tempPath();
    const a = await SqliteStore.open(path);
    const b = await SqliteStore.open(path);
    await a.putHome(makeHome('h'));
    await a.putDevice(makeDevice('d0', 'h'));
    await a.putDevice(makeDevice('d1', 'h'));
    await a.insertJob(makeJob('j0', 'h', 'd0', 'installing'));
    await rejectsWith(b.insertJob(makeJob('j1', 'h', 'd1', 'offered')), 'home_busy');
    await b.insertJob(makeJob('j1', 'h', 'd1', 'queued'));
    const j1 = (await b.getJob('j1'))!;
    await rejectsWith(b.saveJob({ ...j1, state: 'offered' }, 'queued', null), 'home_busy');
    await a.close();
    await b.close();
  });

  test('bad JSON in a column is a store_failure naming the row, and the store goes on working', async () => {
    const path = tempPath();
    const store = await SqliteStore.open(path);
    await store.putHome(makeHome('h'));
    await store.putHome(makeHome('ok'));
    await store.putDevice(makeDevice('d', 'h'));
    await store.insertJob(makeJob('j1', 'h', 'd', 'queued'));
    await store.insertJob(makeJob('j2', 'h', 'd', 'succeeded'));
    const db = raw(path);
    db.exec(`UPDATE homes SET settings = '{"timeZone": ' WHERE id = 'h'`);
    db.exec(`UPDATE devices SET schedules = '{}' WHERE id = 'd'`);
    db.exec(`UPDATE jobs SET reasons = 'not json' WHERE id = 'j1'`);
    db.exec(`UPDATE jobs SET failure = '"a string"' WHERE id = 'j2'`);
    db.exec(`INSERT INTO releases (id, body) VALUES ('acme/x/1', '[]')`);
    db.close();
    const cases: [string, Promise<unknown>, string][] = [
      ['getHome', store.getHome('h'), 'h'],
      ['listHomes', store.listHomes(), 'h'],
      ['getDevice', store.getDevice('d'), 'd'],
      ['listDevices', store.listDevices({ homeId: 'h' }), 'd'],
      ['getJob', store.getJob('j1'), 'j1'],
      ['listJobs', store.listJobs({ open: true }), 'j1'],
      ['getJob failure', store.getJob('j2'), 'j2'],
      ['getRelease', store.getRelease('acme/x/1'), 'acme/x/1'],
    ];
    for (const [name, promise, id] of cases) {
      const e = await rejectsWith(promise, 'store_failure');
      assert.equal((e as { detail?: { id?: unknown } }).detail?.id, id, name);
    }
    assert.equal((await store.getHome('ok'))?.id, 'ok');
    await store.close();
  });

  test('statements issued while a transaction is open wait for it and see its commit', async () => {
    const store = await SqliteStore.open(tempPath());
    const order: string[] = [];
    let proceed!: () => void;
    const gate = new Promise<void>((resolve) => {
      proceed = resolve;
    });
    let inside!: () => void;
    const started = new Promise<void>((resolve) => {
      inside = resolve;
    });
    const tx = store.transaction(async (t) => {
      await t.putHome(makeHome('h'));
      inside();
      await gate;
      await t.putHome(makeHome('h', { name: 'Final' }));
      order.push('commit');
    });
    await started;
    const read = store.getHome('h').then((h) => {
      order.push('read');
      return h;
    });
    // Give the read every chance to run early: several turns of the event loop.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, []);
    proceed();
    await tx;
    assert.equal((await read)?.name, 'Final');
    assert.deepEqual(order, ['commit', 'read']);
    await store.close();
  });

  test('using the store itself inside its transaction is refused instead of waiting forever', async () => {
    const store = await SqliteStore.open(tempPath());
    await assert.rejects(store.transaction(async () => {
      await rejectsWith(store.getHome('x'), 'internal');
      await rejectsWith(store.transaction(() => Promise.resolve(1)), 'internal');
      await rejectsWith(store.close(), 'internal');
      throw new Error('done');
    }), /done/);
    let leaked: SqliteStore | null = null;
    await store.transaction(async (tx) => {
      leaked = store;
      await tx.putHome(makeHome('h'));
    });
    assert.equal((await leaked!.getHome('h'))?.id, 'h');
    await store.close();
  });

  test('a transaction object is dead once its transaction ended; migrate and close are refused on it', async () => {
    const store = await SqliteStore.open(tempPath());
    let kept: { putHome(h: ReturnType<typeof makeHome>): Promise<void> } | null = null;
    await store.transaction(async (tx) => {
      kept = tx;
      await rejectsWith(tx.migrate(), 'internal');
      await rejectsWith(tx.close(), 'internal');
    });
    await rejectsWith(kept!.putHome(makeHome('late')), 'internal');
    assert.equal(await store.getHome('late'), null);
    await store.close();
  });

  test('a hub killed (SIGKILL) mid-write loses nothing it reported as committed', async () => {
    const path = tempPath();
    const fixture = join(import.meta.dirname, 'fixtures', 'kill-writer.ts');
    const rank: Record<string, number> = { queued: 0, offered: 1, installing: 2, succeeded: 3 };
    const reported = new Map<string, JobState>();

    for (const round of ['a', 'b', 'c']) {
      const child = spawn(process.execPath, [fixture, path, round], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on('exit', (code, signal) => resolve({ code, signal }));
      });
      let lines = 0;
      // Kill at a different point each round, while the loop is busy writing.
      const killAfter = 60 + 37 * ['a', 'b', 'c'].indexOf(round);
      for await (const line of createInterface({ input: child.stdout })) {
        const [word, id, state] = line.split(' ');
        assert.equal(word, 'committed', line);
        reported.set(id!, state as JobState);
        if (++lines === killAfter) child.kill('SIGKILL');
      }
      const { signal } = await exited;
      assert.equal(signal, 'SIGKILL', `the writer should have been killed, not have stopped: ${stderr}`);
      assert.ok(lines >= killAfter, `the writer printed only ${lines} lines: ${stderr}`);

      const db = raw(path);
      assert.equal(db.prepare('PRAGMA integrity_check').get()?.integrity_check, 'ok');
      db.close();

      const store = await SqliteStore.open(path);
      for (const [id, state] of reported) {
        const job = await store.getJob(id);
        assert.ok(job !== null, `job ${id} was reported committed but is missing after the kill`);
        // The child may have committed one more step before it could print it; never fewer.
        assert.ok(rank[job.state]! >= rank[state]!, `job ${id} is ${job.state} but was reported ${state}`);
      }
      // A saved step and its history line are one transaction: both survive the kill, or neither.
      for (const job of await store.listJobs({})) {
        for (const step of ['installing', 'succeeded'] as const) {
          const events = await store.listEvents({ jobId: job.id, to: step, limit: 10 });
          assert.equal(events.length, rank[job.state]! >= rank[step]! ? 1 : 0, `job ${job.id} (${job.state}) has ${events.length} "${step}" events`);
        }
      }
      for (const home of ['h0', 'h1']) {
        assert.ok((await store.listJobs({ homeId: home, states: [...ACTIVE_STATES] })).length <= 1);
      }
      await store.close();
    }
    const db = raw(path);
    const perHome = db.prepare(`SELECT home_id, COUNT(*) AS n FROM jobs WHERE state IN (${ACTIVE_STATES.map((s) => `'${s}'`).join(', ')}) GROUP BY home_id`).all();
    for (const row of perHome) assert.ok(Number(row.n) <= 1, `home ${String(row.home_id)} has ${String(row.n)} active jobs`);
    // The database itself still refuses a second active job in a home.
    db.exec("UPDATE jobs SET state = 'failed' WHERE state NOT IN ('succeeded', 'failed', 'cancelled')");
    const probe = (id: string, device: string, state: JobState) => db.exec(
      `INSERT INTO jobs (id, home_id, device_id, release_id, from_version, target_version, state, reasons, priority, created_at, updated_at, state_since)
       VALUES ('${id}', 'h0', '${device}', 'r', '1', '2', '${state}', '[]', 0, 0, 0, 0)`,
    );
    probe('probe-1', 'h0-d0', 'offered');
    assert.throws(() => probe('probe-2', 'h0-d1', 'installing'), /UNIQUE constraint failed/);
    db.close();
  });
});
