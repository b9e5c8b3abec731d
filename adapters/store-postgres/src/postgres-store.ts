/**
 * The Store port on PostgreSQL through `pg` (pure JavaScript, no native add-on), for a hub scaled
 * out to several instances sharing one database (DESIGN, scale-out).
 *
 * Lifecycle (STYLE principle 12, constructors only assign):
 *   const store = new PostgresStore({ url: 'postgres://firmward@db/firmward' }); // touches nothing
 *   await store.migrate();  // opens the pool, applies migrations under an advisory lock
 *   ...
 *   await store.close();
 * or, the same in one call: `const store = await PostgresStore.open({ url })`.
 *
 * Concurrency. Every hub instance has its own pool; the database is the only shared thing, so
 * everything invariant 1 needs is decided there, not in memory:
 *  - The partial unique index jobs_one_active_per_home refuses a second active job in a home. A
 *    unique index is checked against every row version, committed or not: a second writer waits
 *    for the first one's transaction to end, then fails with unique_violation (home_busy) if the
 *    first committed. This holds at any isolation level, so READ COMMITTED (the default) is enough.
 *  - saveJob is a compare-and-set, `UPDATE … WHERE id = $1 AND state = $2`. Under READ COMMITTED an
 *    UPDATE that meets a row changed by a concurrent transaction waits for it, then re-checks its
 *    WHERE clause against the newest committed version; a writer whose expected state is stale
 *    updates nothing and gets `false`, never overwrites the winner (lost update impossible).
 * A transaction runs on one pooled client between BEGIN and COMMIT/ROLLBACK; every operation in
 * it sits in its own savepoint, because PostgreSQL aborts the whole transaction at the first
 * error and the port lets a caller catch a refused write (home_busy) and go on.
 */
import { ACTIVE_STATES, FirmwardError, TERMINAL_STATES } from '@firmward/core';
import type {
  Device, EpochMs, Home, HomeHalt, HomeSettings, Interval, Job, JobState, Policy, PreflightThresholds, Release,
  Rollout, SignalSample, UsageSchedule,
} from '@firmward/core';
import type {
  Clock, DeviceRow, DeviceTelemetryWrite, Enrollment, EventQuery, HistoryEvent, JobQuery, Logger, NewHistoryEvent, PendingDevice,
  PendingDeviceState, PlannedJob, ReleaseJob, RepositoryRecord, Store,
} from '@firmward/ports';
import { SystemClock } from '@firmward/ports';
import { Pool, TypeOverrides, escapeIdentifier } from 'pg';
import type { PoolClient } from 'pg';
import { mapPgError } from './errors.ts';
import type { ErrorContext } from './errors.ts';
import {
  corrupt, deviceFromRow, encodeJson, eventFromRow, homeFromRow, JOB_COLUMNS, jobFromRow, jobToValues, num, releaseFromRow,
  deviceNotFound, homeNotFound, intervalOf, Mutex, numberOf, releaseJobFromRow, rolloutFromRow,
  enrollmentFromRow, PENDING_DEVICE_COLUMNS, pendingDeviceFromRow, pendingDeviceToValues, repositoryFromRow, settingFromRow,
} from '@firmward/sql-common';
import type { Row, SqlValue } from '@firmward/sql-common';
import {
  MIGRATION_LOCK_KEY, MIGRATIONS, ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX, oneOpenPerDeviceConflictTarget,
  SCHEMA_MIGRATIONS_SQL,
} from './schema.ts';

/** No list ever returns more rows than this, whatever the caller asks (same bound as SQLite). */
export const MAX_LIST_LIMIT = 1000;

export interface PostgresStoreOptions {
  /** A libpq-style connection URL, e.g. postgres://firmward:secret@db.example:5432/firmward. */
  url: string;
  /**
   * The schema the hub's tables live in (created by migrate() when missing). Default: the
   * connection's own search_path, normally "public". Letters, digits and underscores only.
   */
  schema?: string;
  /** Connections this hub instance keeps at most. Default 10. */
  maxConnections?: number;
  /** Only stamps schema_migrations.applied_at. Default: the system clock. */
  clock?: Clock;
  /** Where errors of idle pooled connections go (a restarted server); they are otherwise harmless. */
  logger?: Logger;
}

const SCHEMA_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const OID_INT8 = 20;

/** BIGINT columns hold epoch milliseconds and event ids: well inside Number's exact range. */
function parseInt8(text: string): number {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : Number.NaN;
}

/** The URL with its password hidden, for errors and logs (logs and terminals are shared). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unreadable PostgreSQL URL)';
  }
}

/** How an operation reaches the database. */
interface Querier {
  rows(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

function querier(target: Pool | PoolClient): Querier {
  return {
    rows: async (sql, params = []) => (await target.query<Row>(sql, [...params])).rows,
    run: async (sql, params = []) => (await target.query(sql, [...params])).rowCount ?? 0,
  };
}

/** Numbered placeholders ($1, $2, …) for a statement built piece by piece. */
class Params {
  readonly values: SqlValue[] = [];

  add(value: SqlValue): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  list(values: readonly SqlValue[]): string {
    return values.map((v) => this.add(v)).join(', ');
  }
}

/** 'atomic': several statements that must be all-or-nothing; 'single': one statement. */
type Atomicity = 'single' | 'atomic';

function boundLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT;
  if (!Number.isFinite(limit) || limit < 1) {
    throw new FirmwardError('invalid_input', 'A list limit must be a number of at least 1.', { detail: { limit } });
  }
  return Math.min(Math.floor(limit), MAX_LIST_LIMIT);
}

function placeholders(from: number, n: number): string {
  return Array.from({ length: n }, (_, i) => `$${from + i}`).join(', ');
}

/**
 * Ids sort byte-wise, as in SQLite, whatever collation the database was created with, so both
 * adapters list in the same order.
 */
const BY_ID = 'id COLLATE "C"';

const JOB_INSERT_SQL = `INSERT INTO jobs (${JOB_COLUMNS.join(', ')}) VALUES (${placeholders(1, JOB_COLUMNS.length)})`;
// Everything but the id is saved; the WHERE clause is the compare-and-set (see the file header).
const JOB_SAVE_SQL = `UPDATE jobs SET ${JOB_COLUMNS.slice(1).map((c, i) => `${c} = $${i + 1}`).join(', ')}
  WHERE id = $${JOB_COLUMNS.length} AND state = $${JOB_COLUMNS.length + 1}`;
const PENDING_INSERT_SQL = `INSERT INTO pending_devices (${PENDING_DEVICE_COLUMNS.join(', ')}) VALUES (${placeholders(1, PENDING_DEVICE_COLUMNS.length)})`;
const EVENT_COLUMNS = ['at', 'home_id', 'device_id', 'job_id', 'kind', 'from_state', 'to_state', 'code', 'message', 'actor'] as const;
const EVENT_INSERT_SQL = `INSERT INTO events (${EVENT_COLUMNS.join(', ')}) VALUES (${placeholders(1, EVENT_COLUMNS.length)}) RETURNING id`;

function eventToValues(e: NewHistoryEvent): SqlValue[] {
  return [e.at, e.homeId, e.deviceId, e.jobId, e.kind, e.from, e.to, e.code, e.message, e.actor];
}

/**
 * Rows per multi-row INSERT of insertPlannedJobs: 1,000 jobs bind 22,000 parameters, well under
 * PostgreSQL's 65,535 per statement (the wire protocol counts them in 16 bits).
 */
const PLANNED_ROWS_PER_STATEMENT = 1000;

/** `INSERT INTO table (columns) VALUES (…), (…), …` for `rows` rows, numbered from $1. */
function multiRowInsert(table: string, columns: readonly string[], rows: number): string {
  const tuples = Array.from({ length: rows }, (_, r) => `(${placeholders(r * columns.length + 1, columns.length)})`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Every Store operation, written once over a Querier. The store and the transaction object differ
 * only in how they reach the database (`use`).
 */
abstract class PgSession implements Store {
  readonly kind = 'postgres' as const;

  protected abstract use<T>(ctx: ErrorContext, atomicity: Atomicity, fn: (q: Querier) => Promise<T>): Promise<T>;

  abstract migrate(): Promise<void>;
  abstract close(): Promise<void>;
  abstract transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  // ---- homes ----

  putHome(home: Home): Promise<void> {
    return this.use({ op: 'putHome', homeId: home.id }, 'single', async (q) => {
      await q.run(
        `INSERT INTO homes (id, name, settings, halt) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, settings = excluded.settings, halt = excluded.halt`,
        [home.id, home.name, encodeJson(home.settings), home.halt === null ? null : encodeJson(home.halt)],
      );
    });
  }

  insertHome(home: Home): Promise<void> {
    return this.use({ op: 'insertHome', homeId: home.id }, 'single', async (q) => {
      await q.run('INSERT INTO homes (id, name, settings, halt) VALUES ($1, $2, $3, $4)', [home.id, home.name, encodeJson(home.settings), home.halt === null ? null : encodeJson(home.halt)]);
    });
  }

  getHome(homeId: string): Promise<Home | null> {
    return this.use({ op: 'getHome', homeId }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM homes WHERE id = $1', [homeId]);
      return row === undefined ? null : homeFromRow(row);
    });
  }

  listHomes(): Promise<Home[]> {
    return this.use({ op: 'listHomes' }, 'single', async (q) => (await q.rows(`SELECT * FROM homes ORDER BY ${BY_ID}`)).map(homeFromRow));
  }

  updateHomeSettings(homeId: string, settings: HomeSettings): Promise<void> {
    return this.use({ op: 'updateHomeSettings', homeId }, 'single', async (q) => {
      const changes = await q.run('UPDATE homes SET settings = $1 WHERE id = $2', [encodeJson(settings), homeId]);
      if (changes === 0) throw homeNotFound(homeId);
    });
  }

  setHomeHalt(homeId: string, halt: HomeHalt | null): Promise<void> {
    return this.use({ op: 'setHomeHalt', homeId }, 'single', async (q) => {
      const changes = await q.run('UPDATE homes SET halt = $1 WHERE id = $2', [halt === null ? null : encodeJson(halt), homeId]);
      if (changes === 0) throw homeNotFound(homeId);
    });
  }

  // ---- devices ----

  putDevice(device: Device): Promise<void> {
    return this.use({ op: 'putDevice', homeId: device.homeId, deviceId: device.id }, 'single', async (q) => {
      // Telemetry columns (online, last_seen_at, report) are left alone on update.
      await q.run(
        `INSERT INTO devices (id, home_id, name, vendor, model, hardware_revision, firmware_version, policy, thresholds, schedules)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET home_id = excluded.home_id, name = excluded.name, vendor = excluded.vendor,
           model = excluded.model, hardware_revision = excluded.hardware_revision, firmware_version = excluded.firmware_version,
           policy = excluded.policy, thresholds = excluded.thresholds, schedules = excluded.schedules`,
        [device.id, device.homeId, device.name, device.vendor, device.model, device.hardwareRevision, device.firmwareVersion,
          device.policy, encodeJson(device.thresholds), encodeJson(device.schedules)],
      );
    });
  }

  getDevice(deviceId: string): Promise<DeviceRow | null> {
    return this.use({ op: 'getDevice', deviceId }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM devices WHERE id = $1', [deviceId]);
      return row === undefined ? null : deviceFromRow(row);
    });
  }

  listDevices(query: { homeId?: string } = {}): Promise<DeviceRow[]> {
    return this.use({ op: 'listDevices', ...query }, 'single', async (q) => {
      const rows = query.homeId === undefined
        ? await q.rows(`SELECT * FROM devices ORDER BY ${BY_ID}`)
        : await q.rows(`SELECT * FROM devices WHERE home_id = $1 ORDER BY ${BY_ID}`, [query.homeId]);
      return rows.map(deviceFromRow);
    });
  }

  /** Each field given replaces the stored one (`thresholds` replaces the device's whole override set). */
  updateDeviceSettings(
    deviceId: string,
    patch: { policy?: Policy | null; thresholds?: Partial<PreflightThresholds>; schedules?: UsageSchedule[] },
  ): Promise<void> {
    return this.use({ op: 'updateDeviceSettings', deviceId }, 'single', async (q) => {
      const p = new Params();
      const sets: string[] = [];
      if (patch.policy !== undefined) sets.push(`policy = ${p.add(patch.policy)}`);
      if (patch.thresholds !== undefined) sets.push(`thresholds = ${p.add(encodeJson(patch.thresholds))}`);
      if (patch.schedules !== undefined) sets.push(`schedules = ${p.add(encodeJson(patch.schedules))}`);
      // With nothing to change, "id = id" still tells whether the device exists.
      if (sets.length === 0) sets.push('id = id');
      const changes = await q.run(`UPDATE devices SET ${sets.join(', ')} WHERE id = ${p.add(deviceId)}`, p.values);
      if (changes === 0) throw deviceNotFound(deviceId);
    });
  }

  recordTelemetry(deviceId: string, write: DeviceTelemetryWrite): Promise<void> {
    return this.use({ op: 'recordTelemetry', deviceId }, 'atomic', async (q) => {
      if (write.usage !== undefined && write.usage.end < write.usage.start) {
        throw new FirmwardError('invalid_input', 'A usage period cannot end before it starts.', { detail: { deviceId, usage: write.usage } });
      }
      // FOR UPDATE: two hubs recording for one device at once apply "newest report wins" in turn.
      const [row] = await q.rows('SELECT last_seen_at, report_at FROM devices WHERE id = $1 FOR UPDATE', [deviceId]);
      if (row === undefined) throw deviceNotFound(deviceId);
      const lastSeen = row.last_seen_at === null ? null : num(row, 'device', 'last_seen_at');
      const reportAt = row.report_at === null ? null : num(row, 'device', 'report_at');
      let seen = lastSeen;
      const saw = (at: EpochMs) => {
        seen = seen === null ? at : Math.max(seen, at);
      };
      if (write.report !== undefined) {
        // Reports can arrive out of order (retained MQTT messages, reconnects): the newest one wins.
        if (reportAt === null || write.report.at >= reportAt) {
          await q.run('UPDATE devices SET report = $1, report_at = $2 WHERE id = $3', [encodeJson(write.report), write.report.at, deviceId]);
        }
        saw(write.report.at);
      }
      if (write.signalSample !== undefined) {
        await q.run('INSERT INTO signal_samples (device_id, at, dbm) VALUES ($1, $2, $3)', [deviceId, write.signalSample.at, write.signalSample.dbm]);
        saw(write.signalSample.at);
      }
      if (write.dropoutAt !== undefined) {
        await q.run('INSERT INTO dropouts (device_id, at) VALUES ($1, $2)', [deviceId, write.dropoutAt]);
      }
      if (write.usage !== undefined) {
        await q.run('INSERT INTO usage (device_id, start_at, end_at) VALUES ($1, $2, $3)', [deviceId, write.usage.start, write.usage.end]);
      }
      if (write.online !== undefined) {
        await q.run('UPDATE devices SET online = $1 WHERE id = $2', [write.online, deviceId]);
      }
      if (seen !== lastSeen) await q.run('UPDATE devices SET last_seen_at = $1 WHERE id = $2', [seen, deviceId]);
    });
  }

  /** Usage periods are those still running at or after `usageSince` (ending after it), oldest first. */
  getTelemetry(deviceId: string, since: EpochMs, usageSince: EpochMs): Promise<{ signalSamples: SignalSample[]; dropouts: EpochMs[]; usage: Interval[] }> {
    // One statement: one consistent snapshot and one round trip (the engine reads this for every
    // device that may start, every tick — a transaction of three reads was five round trips).
    return this.use({ op: 'getTelemetry', deviceId }, 'single', async (q) => {
      const rows = await q.rows(
        `SELECT 's' AS kind, at AS a, dbm::float8 AS b FROM signal_samples WHERE device_id = $1 AND at >= $2
         UNION ALL SELECT 'd', at, NULL FROM dropouts WHERE device_id = $1 AND at >= $2
         UNION ALL SELECT 'u', start_at, end_at::float8 FROM usage WHERE device_id = $1 AND end_at > $3
         ORDER BY kind, a, b`,
        [deviceId, since, usageSince],
      );
      const of = (kind: string) => rows.filter((r) => r.kind === kind);
      return {
        signalSamples: of('s').map((r) => ({ at: numberOf(r, 'a', 'signal_samples', deviceId), dbm: numberOf(r, 'b', 'signal_samples', deviceId) })),
        dropouts: of('d').map((r) => numberOf(r, 'a', 'dropouts', deviceId)),
        usage: of('u').map((r) => ({ start: numberOf(r, 'a', 'usage', deviceId), end: numberOf(r, 'b', 'usage', deviceId) })),
      };
    });
  }


  getHomeUsage(homeId: string, since: EpochMs): Promise<Interval[]> {
    return this.use({ op: 'getHomeUsage', homeId }, 'single', async (q) =>
      (await q.rows(
        `SELECT u.start_at, u.end_at FROM usage u JOIN devices d ON d.id = u.device_id
         WHERE d.home_id = $1 AND u.end_at > $2 ORDER BY u.start_at, u.end_at`,
        [homeId, since],
      )).map((r) => intervalOf(r, homeId)));
  }

  /** Samples and drop-outs before `signalBefore`, and usage periods that ended by `usageBefore`, are dropped. */
  pruneTelemetry(cut: { signalBefore: EpochMs; usageBefore: EpochMs }): Promise<void> {
    return this.use({ op: 'pruneTelemetry' }, 'atomic', async (q) => {
      await q.run('DELETE FROM signal_samples WHERE at < $1', [cut.signalBefore]);
      await q.run('DELETE FROM dropouts WHERE at < $1', [cut.signalBefore]);
      await q.run('DELETE FROM usage WHERE end_at <= $1', [cut.usageBefore]);
    });
  }

  // ---- releases ----

  putReleases(releases: Release[]): Promise<void> {
    return this.use({ op: 'putReleases' }, 'atomic', async (q) => {
      for (const release of releases) {
        await q.run('INSERT INTO releases (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = excluded.body', [release.id, encodeJson(release)]);
      }
    });
  }

  getRelease(releaseId: string): Promise<Release | null> {
    return this.use({ op: 'getRelease' }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM releases WHERE id = $1', [releaseId]);
      return row === undefined ? null : releaseFromRow(row);
    });
  }

  listReleases(): Promise<Release[]> {
    return this.use({ op: 'listReleases' }, 'single', async (q) => (await q.rows(`SELECT * FROM releases ORDER BY ${BY_ID}`)).map(releaseFromRow));
  }

  // ---- work claiming ----

  claimHomes(o: { owner: string; now: EpochMs; leaseMs: number }): Promise<string[]> {
    return this.use({ op: 'claimHomes' }, 'atomic', async (q) => {
      const until = o.now + o.leaseMs;
      await q.run('INSERT INTO hub_instances (owner, seen_until) VALUES ($1, $2) ON CONFLICT (owner) DO UPDATE SET seen_until = excluded.seen_until', [o.owner, until]);
      await q.run('DELETE FROM hub_instances WHERE seen_until < $1', [o.now]);
      const [counts] = await q.rows('SELECT (SELECT count(*) FROM hub_instances) AS live, (SELECT count(*) FROM homes) AS homes, (SELECT count(*) FROM home_leases) AS leases');
      const live = Number(counts?.live ?? 1);
      const homes = Number(counts?.homes ?? 0);
      if (Number(counts?.leases ?? 0) < homes) {
        await q.run("INSERT INTO home_leases (home_id, owner, until) SELECT id, '', 0 FROM homes ON CONFLICT (home_id) DO NOTHING");
      }
      const share = Math.ceil(homes / Math.max(1, live));
      const held = (await q.rows(`SELECT home_id FROM home_leases WHERE owner = $1 AND until >= $2 ORDER BY home_id ${'COLLATE "C"'}`, [o.owner, o.now])).map((r) => String(r.home_id));
      const extras = held.slice(share);
      for (const extra of extras) await q.run('UPDATE home_leases SET until = 0 WHERE owner = $1 AND home_id = $2', [o.owner, extra]);
      const kept = held.slice(0, share);
      await q.run('UPDATE home_leases SET until = $1 WHERE owner = $2 AND until >= $3', [until, o.owner, o.now]);
      const need = share - kept.length;
      // Row locks: rows another instance is claiming right now are skipped, never waited for.
      const claimed = need <= 0 ? [] : (await q.rows(
        `UPDATE home_leases SET owner = $1, until = $2 WHERE home_id IN (
           SELECT home_id FROM home_leases WHERE until < $3 ORDER BY home_id LIMIT $4 FOR UPDATE SKIP LOCKED
         ) RETURNING home_id`,
        [o.owner, until, o.now, need],
      )).map((r) => String(r.home_id));
      return [...kept, ...claimed].sort();
    });
  }

  releaseHomes(owner: string): Promise<void> {
    return this.use({ op: 'releaseHomes' }, 'atomic', async (q) => {
      await q.run('UPDATE home_leases SET until = 0 WHERE owner = $1', [owner]);
      await q.run('DELETE FROM hub_instances WHERE owner = $1', [owner]);
    });
  }

  // ---- staged rollouts ----

  insertRollout(rollout: Rollout): Promise<void> {
    return this.use({ op: 'insertRollout' }, 'single', async (q) => {
      await q.run('INSERT INTO rollouts (id, release_id, version, body) VALUES ($1, $2, $3, $4)', [rollout.id, rollout.releaseId, rollout.version, encodeJson(rollout)]);
    });
  }

  getRollout(rolloutId: string): Promise<Rollout | null> {
    return this.use({ op: 'getRollout' }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM rollouts WHERE id = $1', [rolloutId]);
      return row === undefined ? null : rolloutFromRow(row);
    });
  }

  listRollouts(): Promise<Rollout[]> {
    return this.use({ op: 'listRollouts' }, 'single', async (q) => (await q.rows(`SELECT * FROM rollouts ORDER BY ${BY_ID}`)).map(rolloutFromRow));
  }

  saveRollout(rollout: Rollout, expectedVersion: number): Promise<boolean> {
    return this.use({ op: 'saveRollout' }, 'single', async (q) =>
      (await q.run('UPDATE rollouts SET version = $1, body = $2 WHERE id = $3 AND version = $4', [rollout.version, encodeJson(rollout), rollout.id, expectedVersion])) === 1);
  }

  listReleaseJobs(releaseId: string): Promise<ReleaseJob[]> {
    return this.use({ op: 'listReleaseJobs' }, 'single', async (q) =>
      (await q.rows('SELECT id, home_id, device_id, release_id, state, state_since FROM jobs WHERE release_id = $1', [releaseId])).map(releaseJobFromRow));
  }

  // ---- skips and credentials ----

  addSkip(deviceId: string, releaseId: string, at: EpochMs, actor: string): Promise<void> {
    return this.use({ op: 'addSkip', deviceId }, 'single', async (q) => {
      await q.run('INSERT INTO skips (device_id, release_id, at, actor) VALUES ($1, $2, $3, $4) ON CONFLICT (device_id, release_id) DO NOTHING', [deviceId, releaseId, at, actor]);
    });
  }

  removeSkips(deviceId: string): Promise<void> {
    return this.use({ op: 'removeSkips', deviceId }, 'single', async (q) => {
      await q.run('DELETE FROM skips WHERE device_id = $1', [deviceId]);
    });
  }

  listSkips(): Promise<Set<string>> {
    return this.use({ op: 'listSkips' }, 'single', async (q) =>
      new Set((await q.rows('SELECT device_id, release_id FROM skips')).map((r) => `${String(r.device_id)}|${String(r.release_id)}`)));
  }

  setDeviceSecret(deviceId: string, secretHash: string): Promise<void> {
    return this.use({ op: 'setDeviceSecret', deviceId }, 'single', async (q) => {
      await q.run('INSERT INTO device_credentials (device_id, secret_hash) VALUES ($1, $2) ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash', [deviceId, secretHash]);
    });
  }

  getDeviceSecret(deviceId: string): Promise<string | null> {
    return this.use({ op: 'getDeviceSecret', deviceId }, 'single', async (q) => {
      const [row] = await q.rows('SELECT secret_hash FROM device_credentials WHERE device_id = $1', [deviceId]);
      return row === undefined ? null : String(row.secret_hash);
    });
  }

  deleteDeviceSecret(deviceId: string): Promise<void> {
    return this.use({ op: 'deleteDeviceSecret', deviceId }, 'single', async (q) => {
      await q.run('DELETE FROM device_credentials WHERE device_id = $1', [deviceId]);
    });
  }

  listDeviceSecrets(): Promise<{ deviceId: string; secretHash: string }[]> {
    return this.use({ op: 'listDeviceSecrets' }, 'single', async (q) =>
      (await q.rows('SELECT device_id, secret_hash FROM device_credentials ORDER BY device_id COLLATE "C"'))
        .map((r) => ({ deviceId: String(r.device_id), secretHash: String(r.secret_hash) })));
  }

  // ---- onboarding: homes and devices come and go ----

  deleteHome(homeId: string): Promise<void> {
    return this.use({ op: 'deleteHome', homeId }, 'atomic', async (q) => {
      if ((await q.rows('SELECT id FROM homes WHERE id = $1 FOR UPDATE', [homeId])).length === 0) throw homeNotFound(homeId);
      await q.run('DELETE FROM jobs WHERE home_id = $1 OR device_id IN (SELECT id FROM devices WHERE home_id = $1)', [homeId]);
      // Credentials, telemetry and skips go with their device; leases, enrollments and waiting devices with the home.
      await q.run('DELETE FROM devices WHERE home_id = $1', [homeId]);
      await q.run('DELETE FROM homes WHERE id = $1', [homeId]);
    });
  }

  deleteDevice(deviceId: string): Promise<void> {
    return this.use({ op: 'deleteDevice', deviceId }, 'atomic', async (q) => {
      if ((await q.rows('SELECT id FROM devices WHERE id = $1 FOR UPDATE', [deviceId])).length === 0) throw deviceNotFound(deviceId);
      await q.run('DELETE FROM jobs WHERE device_id = $1', [deviceId]);
      await q.run('DELETE FROM devices WHERE id = $1', [deviceId]);
    });
  }

  setDeviceIgnored(deviceId: string, ignored: boolean): Promise<void> {
    return this.use({ op: 'setDeviceIgnored', deviceId }, 'single', async (q) => {
      if ((await q.run('UPDATE devices SET ignored = $1 WHERE id = $2', [ignored, deviceId])) === 0) throw deviceNotFound(deviceId);
    });
  }

  insertEnrollment(e: Enrollment): Promise<void> {
    return this.use({ op: 'insertEnrollment', homeId: e.homeId }, 'single', async (q) => {
      await q.run(
        'INSERT INTO enrollments (id, home_id, code_digest, created_at, expires_at, created_by, used_at, used_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [e.id, e.homeId, e.codeDigest, e.createdAt, e.expiresAt, e.createdBy, e.usedAt, e.usedBy],
      );
    });
  }

  findEnrollment(codeDigest: string): Promise<Enrollment | null> {
    return this.use({ op: 'findEnrollment' }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM enrollments WHERE code_digest = $1', [codeDigest]);
      return row === undefined ? null : enrollmentFromRow(row);
    });
  }

  listEnrollments(query: { homeId?: string }): Promise<Enrollment[]> {
    return this.use({ op: 'listEnrollments' }, 'single', async (q) => (query.homeId === undefined
      ? await q.rows(`SELECT * FROM enrollments ORDER BY created_at DESC, ${BY_ID} LIMIT ${MAX_LIST_LIMIT}`)
      : await q.rows(`SELECT * FROM enrollments WHERE home_id = $1 ORDER BY created_at DESC, ${BY_ID} LIMIT ${MAX_LIST_LIMIT}`, [query.homeId])).map(enrollmentFromRow));
  }

  useEnrollment(enrollmentId: string, at: EpochMs, by: string): Promise<boolean> {
    return this.use({ op: 'useEnrollment' }, 'single', async (q) =>
      (await q.run('UPDATE enrollments SET used_at = $1, used_by = $2 WHERE id = $3 AND used_at IS NULL', [at, by, enrollmentId])) === 1);
  }

  deleteEnrollment(enrollmentId: string): Promise<boolean> {
    return this.use({ op: 'deleteEnrollment' }, 'single', async (q) => (await q.run('DELETE FROM enrollments WHERE id = $1', [enrollmentId])) === 1);
  }

  insertPendingDevice(p: PendingDevice): Promise<void> {
    return this.use({ op: 'insertPendingDevice', deviceId: p.deviceId }, 'single', async (q) => {
      await q.run(PENDING_INSERT_SQL, pendingDeviceToValues(p));
    });
  }

  getPendingDevice(pendingId: string): Promise<PendingDevice | null> {
    return this.use({ op: 'getPendingDevice' }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM pending_devices WHERE id = $1', [pendingId]);
      return row === undefined ? null : pendingDeviceFromRow(row);
    });
  }

  listPendingDevices(query: { homeId?: string; deviceId?: string; states?: PendingDeviceState[] }): Promise<PendingDevice[]> {
    return this.use({ op: 'listPendingDevices' }, 'single', async (q) => {
      if (query.states !== undefined && query.states.length === 0) return [];
      const p = new Params();
      const where: string[] = [];
      if (query.homeId !== undefined) where.push(`home_id = ${p.add(query.homeId)}`);
      if (query.deviceId !== undefined) where.push(`device_id = ${p.add(query.deviceId)}`);
      if (query.states !== undefined) where.push(`state IN (${p.list(query.states)})`);
      const sql = `SELECT * FROM pending_devices${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY requested_at, ${BY_ID} LIMIT ${MAX_LIST_LIMIT}`;
      return (await q.rows(sql, p.values)).map(pendingDeviceFromRow);
    });
  }

  decidePendingDevice(d: PendingDevice): Promise<boolean> {
    return this.use({ op: 'decidePendingDevice', deviceId: d.deviceId }, 'single', async (q) =>
      (await q.run(
        "UPDATE pending_devices SET state = $1, home_id = $2, name = $3, decided_at = $4, decided_by = $5 WHERE id = $6 AND state = 'waiting'",
        [d.state, d.homeId, d.name, d.decidedAt, d.decidedBy, d.id],
      )) === 1);
  }

  pruneEnrollments(before: EpochMs): Promise<void> {
    return this.use({ op: 'pruneEnrollments' }, 'atomic', async (q) => {
      await q.run("DELETE FROM pending_devices WHERE state <> 'waiting' AND decided_at < $1", [before]);
      await q.run('DELETE FROM enrollments WHERE expires_at < $1', [before]);
    });
  }

  insertRepository(r: RepositoryRecord): Promise<void> {
    return this.use({ op: 'insertRepository' }, 'single', async (q) => {
      await q.run('INSERT INTO repositories (name, url, root, added_at, added_by) VALUES ($1, $2, $3, $4, $5)', [r.name, r.url, r.root, r.addedAt, r.addedBy]);
    });
  }

  listRepositories(): Promise<RepositoryRecord[]> {
    return this.use({ op: 'listRepositories' }, 'single', async (q) => (await q.rows('SELECT * FROM repositories ORDER BY name COLLATE "C"')).map(repositoryFromRow));
  }

  deleteRepository(name: string): Promise<boolean> {
    return this.use({ op: 'deleteRepository' }, 'single', async (q) => (await q.run('DELETE FROM repositories WHERE name = $1', [name])) === 1);
  }

  getSetting(key: string): Promise<Record<string, unknown> | null> {
    return this.use({ op: 'getSetting' }, 'single', async (q) => {
      const [row] = await q.rows('SELECT key, value FROM hub_settings WHERE key = $1', [key]);
      return row === undefined ? null : settingFromRow(row);
    });
  }

  putSetting(key: string, value: Record<string, unknown>): Promise<void> {
    return this.use({ op: 'putSetting' }, 'single', async (q) => {
      await q.run('INSERT INTO hub_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, encodeJson(value)]);
    });
  }

  // ---- jobs ----

  insertJob(job: Job): Promise<void> {
    return this.use({ op: 'insertJob', homeId: job.homeId, deviceId: job.deviceId, jobId: job.id }, 'single', async (q) => {
      await q.run(JOB_INSERT_SQL, jobToValues(job));
    });
  }

  /**
   * One multi-row INSERT per 1,000 jobs, then one per 1,000 history lines of the jobs that went in,
   * all in one transaction (a savepoint inside `transaction`). ON CONFLICT names the open-job
   * index, so only "this device already has an open job" is skipped: a concurrent writer's
   * uncommitted job makes the insert wait for its transaction and skip if it commits, as the
   * unique index does for insertJob. Two hubs planning overlapping devices should give them in the
   * same order (the planner's): in opposite orders each could wait for the other, and PostgreSQL
   * would end one of them with a deadlock (store_failure).
   */
  insertPlannedJobs(items: PlannedJob[]): Promise<Job[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.use({ op: 'insertPlannedJobs' }, 'atomic', async (q) => {
      const inserted = new Set<string>();
      for (const chunk of chunks(items, PLANNED_ROWS_PER_STATEMENT)) {
        const sql = `${multiRowInsert('jobs', JOB_COLUMNS, chunk.length)} ON CONFLICT ${oneOpenPerDeviceConflictTarget()} DO NOTHING RETURNING id`;
        for (const row of await q.rows(sql, chunk.flatMap((item) => jobToValues(item.job)))) inserted.add(String(row.id));
      }
      const kept = items.filter((item) => inserted.has(item.job.id));
      for (const chunk of chunks(kept, PLANNED_ROWS_PER_STATEMENT)) {
        await q.run(multiRowInsert('events', EVENT_COLUMNS, chunk.length), chunk.flatMap((item) => eventToValues(item.event)));
      }
      return kept.map((item) => item.job);
    });
  }

  listOpenJobTargets(): Promise<{ deviceId: string; targetVersion: string }[]> {
    return this.use({ op: 'listOpenJobTargets' }, 'single', async (q) =>
      (await q.rows(`SELECT device_id, target_version FROM jobs WHERE state NOT IN (${placeholders(1, TERMINAL_STATES.length)})`, TERMINAL_STATES))
        .map((r) => ({ deviceId: String(r.device_id), targetVersion: String(r.target_version) })));
  }

  getJob(jobId: string): Promise<Job | null> {
    return this.use({ op: 'getJob', jobId }, 'single', async (q) => {
      const [row] = await q.rows('SELECT * FROM jobs WHERE id = $1', [jobId]);
      return row === undefined ? null : jobFromRow(row);
    });
  }

  /** In run order (lowest priority number first, then oldest), or newest first when asked. */
  listJobs(query: JobQuery): Promise<Job[]> {
    return this.use({ op: 'listJobs' }, 'single', async (q) => {
      const limit = boundLimit(query.limit);
      if (query.states !== undefined && query.states.length === 0) return [];
      const p = new Params();
      const where: string[] = [];
      if (query.homeId !== undefined) where.push(`home_id = ${p.add(query.homeId)}`);
      if (query.deviceId !== undefined) where.push(`device_id = ${p.add(query.deviceId)}`);
      if (query.open !== undefined) where.push(`state ${query.open ? 'NOT IN' : 'IN'} (${p.list(TERMINAL_STATES)})`);
      if (query.states !== undefined) where.push(`state IN (${p.list(query.states)})`);
      const order = query.order === 'newest' ? `created_at DESC, ${BY_ID} DESC` : `priority, created_at, ${BY_ID}`;
      const sql = `SELECT * FROM jobs${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ${p.add(limit)}`;
      return (await q.rows(sql, p.values)).map(jobFromRow);
    });
  }

  saveJob(job: Job, expectedState: JobState, event: NewHistoryEvent | null): Promise<boolean> {
    return this.use({ op: 'saveJob', homeId: job.homeId, deviceId: job.deviceId, jobId: job.id }, 'atomic', async (q) => {
      const changes = await q.run(JOB_SAVE_SQL, [...jobToValues(job).slice(1), job.id, expectedState]);
      if (changes === 0) return false;
      if (event !== null) await insertEvent(q, event);
      return true;
    });
  }

  // ---- history ----

  appendEvent(event: NewHistoryEvent): Promise<HistoryEvent> {
    return this.use({ op: 'appendEvent', homeId: event.homeId }, 'single', async (q) => ({ ...event, id: await insertEvent(q, event) }));
  }

  /** Newest first. */
  listEvents(query: EventQuery): Promise<HistoryEvent[]> {
    return this.use({ op: 'listEvents' }, 'single', async (q) => {
      const limit = boundLimit(query.limit);
      const p = new Params();
      const where: string[] = [];
      if (query.homeId !== undefined) where.push(`home_id = ${p.add(query.homeId)}`);
      if (query.deviceId !== undefined) where.push(`device_id = ${p.add(query.deviceId)}`);
      if (query.jobId !== undefined) where.push(`job_id = ${p.add(query.jobId)}`);
      if (query.to !== undefined) where.push(`to_state = ${p.add(query.to)}`);
      if (query.beforeId !== undefined) where.push(`id < ${p.add(query.beforeId)}`);
      const sql = `SELECT * FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${p.add(limit)}`;
      return (await q.rows(sql, p.values)).map(eventFromRow);
    });
  }
}

async function insertEvent(q: Querier, e: NewHistoryEvent): Promise<number> {
  const [row] = await q.rows(EVENT_INSERT_SQL, eventToValues(e));
  if (row === undefined) throw corrupt('event', null, 'id');
  return num(row, 'event', 'id');
}

async function mapped<T>(ctx: ErrorContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapPgError(e, ctx);
  }
}

/**
 * Rolls back after a failure. When even that fails the connection is in an unknown state, so it is
 * destroyed instead of going back to the pool (the server then ends the transaction itself).
 */
async function rollbackAndRelease(client: PoolClient): Promise<void> {
  try {
    await client.query('ROLLBACK');
    client.release();
  } catch (e) {
    client.release(e instanceof Error ? e : true);
  }
}

/**
 * The Store on PostgreSQL. See the file header for the lifecycle and the concurrency argument.
 *
 * @example
 * const store = new PostgresStore({ url: 'postgres://firmward@127.0.0.1/firmward' });
 * await store.migrate();
 * await store.transaction(async (tx) => { await tx.putHome(home); await tx.putDevice(device); });
 * await store.close();
 */
export class PostgresStore extends PgSession {
  readonly #options: PostgresStoreOptions;
  readonly #clock: Clock;
  #pool: Pool | null = null;
  #closed = false;

  constructor(options: PostgresStoreOptions) {
    super();
    this.#options = options;
    this.#clock = options.clock ?? new SystemClock();
  }

  /**
   * Constructs, opens and migrates in one call.
   *
   * @example
   * const store = await PostgresStore.open({ url: process.env.FIRMWARD_STORE_URL });
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(options);
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  /** The connection URL with its password hidden. */
  get location(): string {
    return redactUrl(this.#options.url);
  }

  /**
   * Opens the pool if needed, then applies every migration not applied yet, each in its own
   * transaction, all under one advisory lock: hubs starting together wait for each other here,
   * and the second one finds the work done.
   */
  migrate(): Promise<void> {
    return mapped({ op: 'migrate' }, async () => {
      const pool = this.#openPool();
      const client = await this.#connect(pool);
      let broken: unknown = null;
      try {
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
        try {
          const schema = this.#options.schema;
          if (schema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS ${escapeIdentifier(schema)}`);
          await client.query(SCHEMA_MIGRATIONS_SQL);
          for (const m of MIGRATIONS) {
            await client.query('BEGIN');
            try {
              const done = await client.query('SELECT version FROM schema_migrations WHERE version = $1', [m.version]);
              if (done.rowCount === 0) {
                await client.query(m.sql);
                await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, this.#clock.now()]);
              }
              await client.query('COMMIT');
            } catch (e) {
              await client.query('ROLLBACK').catch((rollbackError: unknown) => {
                broken = rollbackError;
              });
              throw e;
            }
          }
          const newest = (await client.query<Row>('SELECT MAX(version) AS v FROM schema_migrations')).rows[0]?.v;
          const known = MIGRATIONS.at(-1)?.version ?? 0;
          if (typeof newest === 'number' && newest > known) {
            throw new FirmwardError('store_failure', 'The database was written by a newer version of the hub; update the hub before using it.', { detail: { url: this.location, newest, known } });
          }
          await verifyInvariantIndexes(client);
        } finally {
          if (broken === null) {
            await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]).catch((e: unknown) => {
              broken = e;
            });
          }
        }
      } finally {
        // A connection that could not roll back or unlock is destroyed; its session lock goes with it.
        client.release(broken === null ? undefined : true);
      }
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = null;
    if (pool !== null) await mapped({ op: 'close' }, () => pool.end());
  }

  /**
   * Runs `fn` between BEGIN and COMMIT on one pooled client, rolled back when `fn` throws (the
   * error is passed on unchanged). Other calls on the store use other connections and neither see
   * nor join it. Inside `fn`, use `tx`.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    return this.#withClient({ op: 'transaction' }, async (client) => {
      const tx = new PostgresTransaction(client);
      let result: T;
      try {
        result = await fn(tx);
      } catch (e) {
        await tx.end();
        throw e;
      }
      await tx.end();
      try {
        await client.query('COMMIT');
      } catch (e) {
        throw mapPgError(e, { op: 'transaction' });
      }
      return result;
    });
  }

  protected use<T>(ctx: ErrorContext, atomicity: Atomicity, fn: (q: Querier) => Promise<T>): Promise<T> {
    if (atomicity === 'single') {
      return mapped(ctx, () => fn(querier(this.#requirePool())));
    }
    return this.#withClient(ctx, async (client) => {
      const result = await fn(querier(client));
      await client.query('COMMIT');
      return result;
    });
  }

  /** BEGIN on a pooled client, then `fn`, which must COMMIT; any throw rolls back. */
  async #withClient<T>(ctx: ErrorContext, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await mapped(ctx, () => this.#connect(this.#requirePool()));
    try {
      await client.query('BEGIN');
    } catch (e) {
      client.release(true);
      throw mapPgError(e, ctx);
    }
    let result: T;
    try {
      result = await fn(client);
    } catch (e) {
      await rollbackAndRelease(client);
      // A transaction callback's own errors pass on unchanged (the port's promise).
      throw ctx.op === 'transaction' ? e : mapPgError(e, ctx);
    }
    client.release();
    return result;
  }

  async #connect(pool: Pool): Promise<PoolClient> {
    try {
      return await pool.connect();
    } catch (e) {
      throw new FirmwardError('store_failure', `The hub could not connect to its PostgreSQL database at ${this.location}; check that it is running and that store.url is right.`, { cause: e, detail: { url: this.location } });
    }
  }

  #openPool(): Pool {
    if (this.#closed) throw closedError();
    if (this.#pool !== null) return this.#pool;
    const schema = this.#options.schema;
    if (schema !== undefined && !SCHEMA_NAME_PATTERN.test(schema)) {
      throw new FirmwardError('invalid_input', 'A PostgreSQL schema name may only hold letters, digits and underscores.', { detail: { schema } });
    }
    const types = new TypeOverrides();
    types.setTypeParser(OID_INT8, 'text', parseInt8);
    const pool = new Pool({
      connectionString: this.#options.url,
      max: this.#options.maxConnections ?? 10,
      types,
      application_name: 'firmward-hub',
      ...(schema !== undefined && { options: `-c search_path=${schema}` }),
    });
    // Without a listener an idle connection dropped by the server would crash the process; the
    // pool replaces it on the next request, so a warning is all it needs.
    pool.on('error', (error) => this.#options.logger?.warn('an idle PostgreSQL connection failed', { error: error.message }));
    this.#pool = pool;
    return pool;
  }

  #requirePool(): Pool {
    if (this.#closed) throw closedError();
    if (this.#pool === null) {
      throw new FirmwardError('store_failure', 'The hub\'s database is not open yet; migrate() opens it.', { detail: { url: this.location } });
    }
    return this.#pool;
  }
}

/**
 * Invariant 1 rests on these two indexes. A database created by a build whose ACTIVE_STATES
 * differed would silently guard the wrong states, so refuse to run on it. PostgreSQL stores the
 * predicate rewritten (`state = ANY (ARRAY['offered'::text, …])`), so compare in that form.
 */
async function verifyInvariantIndexes(client: PoolClient): Promise<void> {
  const arrayOf = (states: readonly JobState[]) => `ARRAY[${states.map((s) => `'${s}'::text`).join(', ')}]`;
  const expected: readonly (readonly [string, string, string])[] = [
    [ONE_ACTIVE_PER_HOME_INDEX, '(home_id)', `(state = ANY (${arrayOf(ACTIVE_STATES)}))`],
    [ONE_OPEN_PER_DEVICE_INDEX, '(device_id)', `(state <> ALL (${arrayOf(TERMINAL_STATES)}))`],
  ];
  for (const [name, columns, predicate] of expected) {
    const { rows } = await client.query<Row>('SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1', [name]);
    const def = rows[0]?.indexdef;
    const ok = typeof def === 'string' && def.startsWith('CREATE UNIQUE INDEX') && def.includes(columns) && def.endsWith(`WHERE ${predicate}`);
    if (!ok) {
      throw new FirmwardError('store_failure', 'The hub\'s database does not guard "one update per home" the way this version expects; it needs a schema migration.', { detail: { index: name, found: def ?? null } });
    }
  }
}

/**
 * The `tx` handed to a transaction callback: the same operations, on the client the transaction
 * holds. Each one runs inside its own savepoint, so a refused write (home_busy, conflict) can be
 * caught by the callback without aborting the whole PostgreSQL transaction, and a multi-statement
 * operation stays all-or-nothing. Operations take turns (Mutex) so savepoints never interleave.
 * Unusable once the transaction has ended.
 */
class PostgresTransaction extends PgSession {
  readonly #client: PoolClient;
  readonly #mutex = new Mutex();
  #ended = false;
  #savepoints = 0;

  constructor(client: PoolClient) {
    super();
    this.#client = client;
  }

  /** Waits for operations still running, then refuses new ones. */
  async end(): Promise<void> {
    this.#ended = true;
    await this.#mutex.run(() => Promise.resolve());
  }

  protected use<T>(ctx: ErrorContext, _atomicity: Atomicity, fn: (q: Querier) => Promise<T>): Promise<T> {
    if (this.#ended) return Promise.reject(finished(ctx.op));
    return this.#mutex.run(async () => {
      if (this.#ended) throw finished(ctx.op);
      const c = this.#client;
      const name = `fw_sp_${++this.#savepoints}`;
      await mapped(ctx, () => c.query(`SAVEPOINT ${name}`));
      try {
        const result = await fn(querier(c));
        await mapped(ctx, () => c.query(`RELEASE SAVEPOINT ${name}`));
        return result;
      } catch (e) {
        try {
          await c.query(`ROLLBACK TO SAVEPOINT ${name}`);
          await c.query(`RELEASE SAVEPOINT ${name}`);
        } catch {
          // The connection itself failed; the original error is the one worth reporting, and the
          // transaction's COMMIT will fail and roll everything back.
        }
        throw mapPgError(e, ctx);
      }
    });
  }

  /** Nested transactions run inline, as part of the enclosing one. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#ended) return Promise.reject(finished('transaction'));
    return fn(this);
  }

  migrate(): Promise<void> {
    return Promise.reject(new FirmwardError('internal', 'The database schema cannot be changed from inside a transaction.'));
  }

  close(): Promise<void> {
    return Promise.reject(new FirmwardError('internal', 'The database cannot be closed from inside a transaction.'));
  }
}

function finished(op: string): FirmwardError {
  return new FirmwardError('internal', 'A store transaction was used after it had finished.', { detail: { op } });
}

function closedError(): FirmwardError {
  return new FirmwardError('store_failure', 'The hub\'s database has been closed.');
}
