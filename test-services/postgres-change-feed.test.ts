/**
 * The after-commit bus across hub instances (adapters/store-postgres/src/change-feed.ts) on the
 * real PostgreSQL: what one instance commits the others hear, never the sender twice; a job crosses
 * as its reference only, each marked with the instance that committed it; many changes are split under the 8,000-byte NOTIFY limit and all arrive
 * in order; a payload that is not a hub's is ignored; a lost connection is re-made and the
 * listeners are told that anything may have changed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CommittedChange, Logger } from '@firmward/ports';
import { Client } from 'pg';
import { PostgresChangeFeed } from '../adapters/store-postgres/src/index.ts';
import { POSTGRES_URL } from './postgres-server.ts';

const feeds: PostgresChangeFeed[] = [];
after(async () => {
  for (const f of feeds) await f.close();
});

function recording(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const log: Logger & { warnings: string[] } = { warnings, debug: () => {}, info: () => {}, error: () => {}, warn: (m) => warnings.push(m), child: () => log };
  return log;
}

/** Two instances on one channel of their own (a fresh schema name: other runs are other hubs). */
async function twoInstances(reconnectMs?: number) {
  const schema = `fw_feed_${randomBytes(4).toString('hex')}`;
  const logA = recording();
  const logB = recording();
  const open = (instanceId: string, log: Logger) => PostgresChangeFeed.open({ url: POSTGRES_URL, schema, instanceId, log, ...(reconnectMs !== undefined && { reconnectMs }) });
  const a = await open('hub-a', logA);
  const b = await open('hub-b', logB);
  feeds.push(a, b);
  const heardA: CommittedChange[] = [];
  const heardB: CommittedChange[] = [];
  a.subscribe((c) => heardA.push(c));
  b.subscribe((c) => heardB.push(c));
  return { a, b, heardA, heardB, logA, logB, channel: a.channel };
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('a change committed on one instance reaches the other, and the sender hears it once', async () => {
  const { a, heardA, heardB } = await twoInstances();
  a.committed({ kind: 'device', deviceId: 'plug-1', homeId: 'flat' });
  a.committed({ kind: 'home', homeId: 'flat' });
  await until('B hears both', () => heardB.length === 2);
  // Marked with who committed them (the planner leaves those to that instance).
  assert.deepEqual(heardB, [{ kind: 'device', deviceId: 'plug-1', homeId: 'flat', from: 'hub-a' }, { kind: 'home', homeId: 'flat', from: 'hub-a' }]);
  await sleep(200);
  assert.equal(heardA.length, 2, 'A heard its own changes once, locally, not again from the database');
});

test('a job crosses as its reference: which job, where, its state — nothing else', async () => {
  const { b, heardA } = await twoInstances();
  const job = { id: 'j1', homeId: 'flat', deviceId: 'plug-1', releaseId: 'acme/plug/2.0.0', state: 'succeeded' as const, reasons: [{ code: 'x', message: 'y'.repeat(5000) }] };
  b.committed({ kind: 'job', job, ended: true });
  await until('A hears the job', () => heardA.length === 1);
  assert.deepEqual(heardA[0], { kind: 'job', job: { id: 'j1', homeId: 'flat', deviceId: 'plug-1', releaseId: 'acme/plug/2.0.0', state: 'succeeded' }, ended: true, from: 'hub-b' });
});

test('3,000 changes at once arrive complete and in order, in notifications under the size limit', async () => {
  const { a, heardB, channel } = await twoInstances();
  const sizes: number[] = [];
  const spy = new Client({ connectionString: POSTGRES_URL });
  await spy.connect();
  spy.on('notification', (m) => sizes.push(Buffer.byteLength(m.payload ?? '')));
  await spy.query(`LISTEN "${channel}"`);
  try {
    for (let i = 0; i < 3000; i++) a.committed({ kind: 'device', deviceId: `d${i}`, homeId: `h${i % 7}` });
    await until('B hears all 3,000', () => heardB.length === 3000);
    assert.deepEqual(heardB.map((c) => (c.kind === 'device' ? c.deviceId : '?')), Array.from({ length: 3000 }, (_, i) => `d${i}`));
    assert.ok(sizes.length > 1, `split into ${sizes.length} notifications`);
    assert.ok(sizes.every((s) => s < 8000), `largest ${Math.max(...sizes)} bytes`);
  } finally {
    await spy.end();
  }
});

test('a payload that is not a hub\'s is ignored and logged; the next good one still arrives', async () => {
  const { heardB, logB, channel } = await twoInstances();
  const other = new Client({ connectionString: POSTGRES_URL });
  await other.connect();
  try {
    for (const payload of ['not json', '{"from":"x"}', '{"from":"x","changes":[{"kind":"job","job":{"id":1}}]}', '{"from":"x","changes":[{"kind":"drop tables"}]}']) {
      await other.query('SELECT pg_notify($1, $2)', [channel, payload]);
    }
    await other.query('SELECT pg_notify($1, $2)', [channel, JSON.stringify({ from: 'hub-c', changes: [{ kind: 'fleet', why: 'a release' }] })]);
    await until('B hears the good one', () => heardB.length === 1);
    assert.deepEqual(heardB, [{ kind: 'fleet', why: 'a release', from: 'hub-c' }]);
    assert.equal(logB.warnings.filter((w) => /not a hub's/.test(w)).length, 4);
  } finally {
    await other.end();
  }
});

test('a lost connection is made again, the listeners are told anything may have changed, and changes flow again', async () => {
  const { a, heardB, logB, channel } = await twoInstances(100);
  const admin = new Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    // Ends every connection listening on this channel (B's, and A's too).
    const listeners = await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = 'firmward-hub-changes' AND query = $1`, [`LISTEN "${channel}"`]);
    assert.equal(listeners.rows.length, 2);
    for (const { pid } of listeners.rows) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await until('B says it reconnected', () => heardB.some((c) => c.kind === 'fleet' && c.why === 'the change feed reconnected'));
    assert.ok(logB.warnings.some((w) => /lost its database connection/.test(w)));
    await sleep(300); // A reconnects too
    a.committed({ kind: 'home', homeId: 'after' });
    await until('B hears A again', () => heardB.some((c) => c.kind === 'home' && c.homeId === 'after'));
  } finally {
    await admin.end();
  }
});
