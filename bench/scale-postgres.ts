/**
 * The PostgreSQL side of bench/scale.bench.ts: a fresh database per run (never anyone else's
 * rows), the server's durability settings for the table's heading, and the two floors the engine
 * is compared with, written with bare `pg` against copies of the hub's own tables.
 */
import { Client, escapeIdentifier } from 'pg';
import { JOB_COLUMNS, jobToValues } from '@firmward/sql-common';
import type { Job, JobState } from '@firmward/core';

/** The server and a database to connect to first (trust auth locally); the bench's own database is made beside it. */
export const BENCH_PG_URL = process.env.FIRMWARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function admin<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: BENCH_PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface BenchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database named for this process; `drop` removes it even with connections still open. */
export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `firmward_bench_${process.pid}`;
  await admin(async (c) => {
    // A leftover of a killed run with the same pid holds nothing anyone needs.
    await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
  });
  const url = new URL(BENCH_PG_URL);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`));
    },
  };
}

/** One line on the server: version and the settings that decide what a commit costs. */
export async function serverInfo(url: string): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const setting = async (name: string) => String((await client.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name])).rows[0]?.v);
    const version = await setting('server_version');
    return `PostgreSQL ${version} on ${new URL(url).host}, fsync=${await setting('fsync')}, synchronous_commit=${await setting('synchronous_commit')}, shared_buffers=${await setting('shared_buffers')}`;
  } finally {
    await client.end();
  }
}

/** Rows per multi-row INSERT: 20 columns × 1,000 stays well under PostgreSQL's 65,535 parameters. */
const ROWS_PER_STATEMENT = 1000;

function multiRowInsert(table: string, columns: readonly string[], rows: number): string {
  const values: string[] = [];
  for (let r = 0; r < rows; r++) values.push(`(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values.join(', ')}`;
}

const EVENT_COLUMNS = ['at', 'home_id', 'device_id', 'job_id', 'kind', 'from_state', 'to_state', 'code', 'message', 'actor'] as const;

/**
 * Bare floors on one plain connection, against copies of the hub's jobs and events tables
 * (`LIKE … INCLUDING ALL`: the same columns, defaults, checks and indexes — the partial unique
 * indexes of invariant 1 among them — but no foreign keys).
 */
export class BareFloor {
  readonly #client: Client;

  private constructor(client: Client) {
    this.#client = client;
  }

  static async open(url: string): Promise<BareFloor> {
    const client = new Client({ connectionString: url });
    await client.connect();
    const floor = new BareFloor(client);
    await client.query('CREATE TABLE floor_jobs (LIKE jobs INCLUDING ALL)');
    await client.query('CREATE TABLE floor_events (LIKE events INCLUDING ALL)');
    return floor;
  }

  async close(): Promise<void> {
    await this.#client.end();
  }

  /** A count from the hub's own tables (`SELECT count(*) AS n …`). */
  async count(sql: string): Promise<number> {
    const { rows } = await this.#client.query<{ n: string }>(sql);
    return Number(rows[0]?.n);
  }

  /** `n` bare `SELECT 1` round trips, one after the other: what any one store call costs at the least. Returns ms. */
  async roundTrips(n: number): Promise<number> {
    const t = performance.now();
    for (let i = 0; i < n; i++) await this.#client.query('SELECT 1');
    return performance.now() - t;
  }

  async clear(): Promise<void> {
    await this.#client.query('TRUNCATE floor_jobs, floor_events');
  }

  /**
   * `jobs` (and with `events`, one history row each, as engine.plan writes) in multi-row INSERTs of
   * 1,000 rows, all in one transaction: the least it costs to write that many rows. Returns ms.
   */
  async insertRows(jobs: readonly Job[], event?: (job: Job) => readonly (string | number | null)[]): Promise<number> {
    const c = this.#client;
    const jobSql = multiRowInsert('floor_jobs', JOB_COLUMNS, ROWS_PER_STATEMENT);
    const eventSql = multiRowInsert('floor_events', EVENT_COLUMNS, ROWS_PER_STATEMENT);
    const t = performance.now();
    await c.query('BEGIN');
    for (let i = 0; i < jobs.length; i += ROWS_PER_STATEMENT) {
      const batch = jobs.slice(i, i + ROWS_PER_STATEMENT);
      const full = batch.length === ROWS_PER_STATEMENT;
      await c.query(full ? jobSql : multiRowInsert('floor_jobs', JOB_COLUMNS, batch.length), batch.flatMap(jobToValues));
      if (event) await c.query(full ? eventSql : multiRowInsert('floor_events', EVENT_COLUMNS, batch.length), batch.flatMap(event));
    }
    await c.query('COMMIT');
    return performance.now() - t;
  }

  /** The jobs the engine planned, copied back to `queued`, ready for transitionPairs. Returns their ids and homes in run order. */
  async copyJobsAsQueued(): Promise<{ id: string; homeId: string; deviceId: string }[]> {
    const c = this.#client;
    await this.clear();
    const select = JOB_COLUMNS.map((col) => (col === 'state' ? "'queued'" : col === 'reasons' ? "'[]'::jsonb" : col)).join(', ');
    await c.query(`INSERT INTO floor_jobs (${JOB_COLUMNS.join(', ')}) SELECT ${select} FROM jobs`);
    const { rows } = await c.query<{ id: string; home_id: string; device_id: string }>('SELECT id, home_id, device_id FROM floor_jobs ORDER BY home_id, created_at, id');
    return rows.map((r) => ({ id: r.id, homeId: r.home_id, deviceId: r.device_id }));
  }

  /**
   * `pairs` compare-and-set UPDATEs, each with its history INSERT, each pair its own transaction
   * (BEGIN, UPDATE … WHERE id AND state, INSERT, COMMIT): what persisting one transition costs the
   * database at the least (invariant 8: every transition is durable before its command goes out).
   * Walks each job along `path` one job at a time, so the copied invariant-1 index is satisfied.
   * `start` says where an earlier call stopped. Returns ms and where this one stopped.
   */
  async transitionPairs(jobs: readonly { id: string; homeId: string; deviceId: string }[], path: readonly JobState[], pairs: number, start: number, at: number): Promise<{ wallMs: number; done: number; next: number }> {
    const c = this.#client;
    const steps = path.length - 1;
    let done = 0;
    let cursor = start;
    const t = performance.now();
    while (done < pairs) {
      const job = jobs[Math.floor(cursor / steps)];
      if (job === undefined) break;
      const from = path[cursor % steps]!;
      const to = path[(cursor % steps) + 1]!;
      const when = at + cursor;
      await c.query('BEGIN');
      const changed = await c.query('UPDATE floor_jobs SET state = $1, updated_at = $2, state_since = $3, last_heard_at = $4, reasons = $5 WHERE id = $6 AND state = $7', [to, when, when, when, '[]', job.id, from]);
      if (changed.rowCount !== 1) throw new Error(`the floor's compare-and-set missed job ${job.id} (${from} → ${to}); the copy is not what the floor expects`);
      await c.query(
        `INSERT INTO floor_events (${EVENT_COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, 'transition', $5, $6, $7, $8, 'hub')`,
        [when, job.homeId, job.deviceId, job.id, from, to, to, `The update moved from ${from} to ${to}.`],
      );
      await c.query('COMMIT');
      done++;
      cursor++;
    }
    return { wallMs: performance.now() - t, done, next: cursor };
  }
}
