/**
 * The Store port on node:sqlite (Node 24's built-in DatabaseSync; no native add-on).
 *
 * Lifecycle (STYLE principle 12, constructors only assign):
 *   const store = new SqliteStore({ path: '/var/lib/firmward/hub.db' }); // touches nothing
 *   await store.migrate();  // opens the file (WAL, synchronous=FULL), applies migrations
 *   ...
 *   await store.close();
 * or, the same in one call: `const store = await SqliteStore.open('/var/lib/firmward/hub.db')`.
 *
 * Concurrency: one connection, guarded by an async mutex. A transaction holds the mutex from
 * BEGIN IMMEDIATE to COMMIT/ROLLBACK, so statements issued outside it wait until it ends instead
 * of slipping into it. Invariant 1 and the one-open-job-per-device rule are held by partial unique
 * indexes in the database itself, so they also hold across processes sharing the file.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { FirmwardError, TERMINAL_STATES } from '@firmward/core';
import type {
  Device, EpochMs, Home, HomeHalt, HomeSettings, Interval, Job, JobState, Policy, PreflightThresholds, Release,
  Rollout, SignalSample, UsageSchedule,
} from '@firmward/core';
import type {
  Clock, DeviceRow, DeviceTelemetryWrite, Enrollment, EventQuery, HistoryEvent, JobQuery, NewHistoryEvent, PendingDevice, PendingDeviceState,
  PlannedJob, ReleaseJob, RepositoryRecord, Store,
} from '@firmward/ports';
import { SystemClock } from '@firmward/ports';
import type { SQLInputValue } from 'node:sqlite';
import { Connection } from './connection.ts';
import { mapSqliteError } from './errors.ts';
import type { ErrorContext } from './errors.ts';
import {
  deviceFromRow, encodeJson, eventFromRow, homeFromRow, JOB_COLUMNS, jobFromRow, jobToValues, releaseFromRow,
  deviceNotFound, homeNotFound, intervalOf, Mutex, numberOf, releaseJobFromRow, rolloutFromRow,
  enrollmentFromRow, PENDING_DEVICE_COLUMNS, pendingDeviceFromRow, pendingDeviceToValues, repositoryFromRow, settingFromRow,
} from '@firmward/sql-common';
import {
  MIGRATIONS, ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX, oneActivePerHomeIndexSql, oneOpenPerDeviceConflictTarget,
  oneOpenPerDeviceIndexSql, SCHEMA_MIGRATIONS_SQL,
} from './schema.ts';

/** No list ever returns more rows than this, whatever the caller asks. */
export const MAX_LIST_LIMIT = 1000;

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for a private in-memory database (tests). */
  path: string;
  /** How long a write waits for another process holding the database lock. Default 5000. */
  busyTimeoutMs?: number;
  /** Only stamps schema_migrations.applied_at. Default: the system clock. */
  clock?: Clock;
}

export interface SqliteDiagnostics {
  /** "wal" for a file database, "memory" for ':memory:'. */
  journalMode: string;
  synchronous: 'off' | 'normal' | 'full' | 'extra' | 'unknown';
  foreignKeys: boolean;
  busyTimeoutMs: number;
  /** Highest migration applied. */
  schemaVersion: number;
}

const SYNCHRONOUS_LEVELS: readonly SqliteDiagnostics['synchronous'][] = ['off', 'normal', 'full', 'extra'];

/** How an operation reaches the connection: through the mutex (the store) or inline (a transaction). */
type Atomicity = 'single' | 'atomic';

/**
 * The transaction the current async context runs inside (deadlock guard). `live` turns false when
 * it ends, so work the callback left behind (timers, detached promises) may use the store again.
 */
const activeTransaction = new AsyncLocalStorage<{ store: SqliteStore; live: boolean }>();

function boundLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT;
  if (!Number.isFinite(limit) || limit < 1) {
    throw new FirmwardError('invalid_input', 'A list limit must be a number of at least 1.', { detail: { limit } });
  }
  return Math.min(Math.floor(limit), MAX_LIST_LIMIT);
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

const JOB_INSERT_SQL = `INSERT INTO jobs (${JOB_COLUMNS.join(', ')}) VALUES (${placeholders(JOB_COLUMNS.length)})`;
// Only "this device already has an open job" is skipped; any other constraint still fails the insert.
const PLANNED_JOB_INSERT_SQL = `${JOB_INSERT_SQL} ON CONFLICT ${oneOpenPerDeviceConflictTarget()} DO NOTHING`;
// Everything but the id is saved; the WHERE clause is the compare-and-set.
const JOB_SAVE_SQL = `UPDATE jobs SET ${JOB_COLUMNS.slice(1).map((c) => `${c} = ?`).join(', ')} WHERE id = ? AND state = ?`;
const PENDING_INSERT_SQL = `INSERT INTO pending_devices (${PENDING_DEVICE_COLUMNS.join(', ')}) VALUES (${placeholders(PENDING_DEVICE_COLUMNS.length)})`;
const EVENT_INSERT_SQL =
  'INSERT INTO events (at, home_id, device_id, job_id, kind, from_state, to_state, code, message, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Every Store operation, written once over a synchronous connection. The store and the
 * transaction object differ only in how they reach the connection (`use`).
 */
abstract class SqliteSession implements Store {
  readonly kind = 'sqlite' as const;

  /** Runs `fn` on the connection; 'atomic' makes several statements one all-or-nothing unit. */
  protected abstract use<T>(ctx: ErrorContext, atomicity: Atomicity, fn: (c: Connection) => T): Promise<T>;

  abstract migrate(): Promise<void>;
  abstract close(): Promise<void>;
  abstract transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  // ---- homes ----

  putHome(home: Home): Promise<void> {
    return this.use({ op: 'putHome', homeId: home.id }, 'single', (c) => {
      c.run(
        `INSERT INTO homes (id, name, settings, halt) VALUES (?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, settings = excluded.settings, halt = excluded.halt`,
        home.id, home.name, encodeJson(home.settings), home.halt === null ? null : encodeJson(home.halt),
      );
    });
  }

  insertHome(home: Home): Promise<void> {
    return this.use({ op: 'insertHome', homeId: home.id }, 'single', (c) => {
      c.run('INSERT INTO homes (id, name, settings, halt) VALUES (?, ?, ?, ?)', home.id, home.name, encodeJson(home.settings), home.halt === null ? null : encodeJson(home.halt));
    });
  }

  getHome(homeId: string): Promise<Home | null> {
    return this.use({ op: 'getHome', homeId }, 'single', (c) => {
      const row = c.get('SELECT * FROM homes WHERE id = ?', homeId);
      return row === undefined ? null : homeFromRow(row);
    });
  }

  listHomes(): Promise<Home[]> {
    return this.use({ op: 'listHomes' }, 'single', (c) => c.all('SELECT * FROM homes ORDER BY id').map(homeFromRow));
  }

  updateHomeSettings(homeId: string, settings: HomeSettings): Promise<void> {
    return this.use({ op: 'updateHomeSettings', homeId }, 'single', (c) => {
      const { changes } = c.run('UPDATE homes SET settings = ? WHERE id = ?', encodeJson(settings), homeId);
      if (changes === 0) throw homeNotFound(homeId);
    });
  }

  setHomeHalt(homeId: string, halt: HomeHalt | null): Promise<void> {
    return this.use({ op: 'setHomeHalt', homeId }, 'single', (c) => {
      const { changes } = c.run('UPDATE homes SET halt = ? WHERE id = ?', halt === null ? null : encodeJson(halt), homeId);
      if (changes === 0) throw homeNotFound(homeId);
    });
  }

  // ---- devices ----

  putDevice(device: Device): Promise<void> {
    return this.use({ op: 'putDevice', homeId: device.homeId, deviceId: device.id }, 'single', (c) => {
      // Telemetry columns (online, last_seen_at, report) are left alone on update.
      c.run(
        `INSERT INTO devices (id, home_id, name, vendor, model, hardware_revision, firmware_version, policy, thresholds, schedules)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET home_id = excluded.home_id, name = excluded.name, vendor = excluded.vendor,
           model = excluded.model, hardware_revision = excluded.hardware_revision, firmware_version = excluded.firmware_version,
           policy = excluded.policy, thresholds = excluded.thresholds, schedules = excluded.schedules`,
        device.id, device.homeId, device.name, device.vendor, device.model, device.hardwareRevision, device.firmwareVersion,
        device.policy, encodeJson(device.thresholds), encodeJson(device.schedules),
      );
    });
  }

  getDevice(deviceId: string): Promise<DeviceRow | null> {
    return this.use({ op: 'getDevice', deviceId }, 'single', (c) => {
      const row = c.get('SELECT * FROM devices WHERE id = ?', deviceId);
      return row === undefined ? null : deviceFromRow(row);
    });
  }

  listDevices(query: { homeId?: string } = {}): Promise<DeviceRow[]> {
    return this.use({ op: 'listDevices', ...query }, 'single', (c) => {
      const rows = query.homeId === undefined
        ? c.all('SELECT * FROM devices ORDER BY id')
        : c.all('SELECT * FROM devices WHERE home_id = ? ORDER BY id', query.homeId);
      return rows.map(deviceFromRow);
    });
  }

  /** Each field given replaces the stored one (`thresholds` replaces the device's whole override set). */
  updateDeviceSettings(
    deviceId: string,
    patch: { policy?: Policy | null; thresholds?: Partial<PreflightThresholds>; schedules?: UsageSchedule[] },
  ): Promise<void> {
    return this.use({ op: 'updateDeviceSettings', deviceId }, 'atomic', (c) => {
      if (c.get('SELECT id FROM devices WHERE id = ?', deviceId) === undefined) throw deviceNotFound(deviceId);
      const sets: string[] = [];
      const values: SQLInputValue[] = [];
      if (patch.policy !== undefined) {
        sets.push('policy = ?');
        values.push(patch.policy);
      }
      if (patch.thresholds !== undefined) {
        sets.push('thresholds = ?');
        values.push(encodeJson(patch.thresholds));
      }
      if (patch.schedules !== undefined) {
        sets.push('schedules = ?');
        values.push(encodeJson(patch.schedules));
      }
      if (sets.length === 0) return;
      c.run(`UPDATE devices SET ${sets.join(', ')} WHERE id = ?`, ...values, deviceId);
    });
  }

  recordTelemetry(deviceId: string, write: DeviceTelemetryWrite): Promise<void> {
    return this.use({ op: 'recordTelemetry', deviceId }, 'atomic', (c) => writeTelemetry(c, deviceId, write));
  }

  /** Usage periods are those still running at or after `usageSince` (ending after it), oldest first. */
  getTelemetry(deviceId: string, since: EpochMs, usageSince: EpochMs): Promise<{ signalSamples: SignalSample[]; dropouts: EpochMs[]; usage: Interval[] }> {
    return this.use({ op: 'getTelemetry', deviceId }, 'single', (c) => ({
      signalSamples: c.all('SELECT at, dbm FROM signal_samples WHERE device_id = ? AND at >= ? ORDER BY at', deviceId, since)
        .map((r) => ({ at: numberOf(r, 'at', 'signal_samples', deviceId), dbm: numberOf(r, 'dbm', 'signal_samples', deviceId) })),
      dropouts: c.all('SELECT at FROM dropouts WHERE device_id = ? AND at >= ? ORDER BY at', deviceId, since)
        .map((r) => numberOf(r, 'at', 'dropouts', deviceId)),
      usage: c.all('SELECT start_at, end_at FROM usage WHERE device_id = ? AND end_at > ? ORDER BY start_at, end_at', deviceId, usageSince)
        .map((r) => intervalOf(r, deviceId)),
    }));
  }

  getHomeUsage(homeId: string, since: EpochMs): Promise<Interval[]> {
    return this.use({ op: 'getHomeUsage', homeId }, 'single', (c) =>
      c.all(
        `SELECT u.start_at, u.end_at FROM usage u JOIN devices d ON d.id = u.device_id
         WHERE d.home_id = ? AND u.end_at > ? ORDER BY u.start_at, u.end_at`,
        homeId, since,
      ).map((r) => intervalOf(r, homeId)));
  }

  /** Samples and drop-outs before `signalBefore`, and usage periods that ended by `usageBefore`, are dropped. */
  pruneTelemetry(cut: { signalBefore: EpochMs; usageBefore: EpochMs }): Promise<void> {
    return this.use({ op: 'pruneTelemetry' }, 'atomic', (c) => {
      c.run('DELETE FROM signal_samples WHERE at < ?', cut.signalBefore);
      c.run('DELETE FROM dropouts WHERE at < ?', cut.signalBefore);
      c.run('DELETE FROM usage WHERE end_at <= ?', cut.usageBefore);
    });
  }

  // ---- releases ----

  putReleases(releases: Release[]): Promise<void> {
    return this.use({ op: 'putReleases' }, 'atomic', (c) => {
      for (const release of releases) {
        c.run('INSERT INTO releases (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body', release.id, encodeJson(release));
      }
    });
  }

  getRelease(releaseId: string): Promise<Release | null> {
    return this.use({ op: 'getRelease' }, 'single', (c) => {
      const row = c.get('SELECT * FROM releases WHERE id = ?', releaseId);
      return row === undefined ? null : releaseFromRow(row);
    });
  }

  listReleases(): Promise<Release[]> {
    return this.use({ op: 'listReleases' }, 'single', (c) => c.all('SELECT * FROM releases ORDER BY id').map(releaseFromRow));
  }

  // ---- work claiming ----

  claimHomes(o: { owner: string; now: EpochMs; leaseMs: number }): Promise<string[]> {
    return this.use({ op: 'claimHomes' }, 'atomic', (c) => {
      const until = o.now + o.leaseMs;
      c.run('INSERT INTO hub_instances (owner, seen_until) VALUES (?, ?) ON CONFLICT (owner) DO UPDATE SET seen_until = excluded.seen_until', o.owner, until);
      c.run('DELETE FROM hub_instances WHERE seen_until < ?', o.now);
      c.run("INSERT INTO home_leases (home_id, owner, until) SELECT id, '', 0 FROM homes WHERE id NOT IN (SELECT home_id FROM home_leases)");
      const live = Number(c.get('SELECT count(*) AS n FROM hub_instances')?.n ?? 1);
      const homes = Number(c.get('SELECT count(*) AS n FROM homes')?.n ?? 0);
      const share = Math.ceil(homes / Math.max(1, live));
      const held = c.all('SELECT home_id FROM home_leases WHERE owner = ? AND until >= ? ORDER BY home_id', o.owner, o.now).map((r) => String(r.home_id));
      for (const extra of held.slice(share)) c.run('UPDATE home_leases SET until = 0 WHERE home_id = ? AND owner = ?', extra, o.owner);
      const kept = held.slice(0, share);
      c.run('UPDATE home_leases SET until = ? WHERE owner = ? AND until >= ?', until, o.owner, o.now);
      const need = share - kept.length;
      const claimed = need <= 0 ? [] : c.all(
        'UPDATE home_leases SET owner = ?, until = ? WHERE home_id IN (SELECT home_id FROM home_leases WHERE until < ? ORDER BY home_id LIMIT ?) RETURNING home_id',
        o.owner, until, o.now, need,
      ).map((r) => String(r.home_id));
      return [...kept, ...claimed].sort();
    });
  }

  releaseHomes(owner: string): Promise<void> {
    return this.use({ op: 'releaseHomes' }, 'atomic', (c) => {
      c.run('UPDATE home_leases SET until = 0 WHERE owner = ?', owner);
      c.run('DELETE FROM hub_instances WHERE owner = ?', owner);
    });
  }

  // ---- staged rollouts ----

  insertRollout(rollout: Rollout): Promise<void> {
    return this.use({ op: 'insertRollout' }, 'single', (c) => {
      c.run('INSERT INTO rollouts (id, release_id, version, body) VALUES (?, ?, ?, ?)', rollout.id, rollout.releaseId, rollout.version, encodeJson(rollout));
    });
  }

  getRollout(rolloutId: string): Promise<Rollout | null> {
    return this.use({ op: 'getRollout' }, 'single', (c) => {
      const row = c.get('SELECT * FROM rollouts WHERE id = ?', rolloutId);
      return row === undefined ? null : rolloutFromRow(row);
    });
  }

  listRollouts(): Promise<Rollout[]> {
    return this.use({ op: 'listRollouts' }, 'single', (c) => c.all('SELECT * FROM rollouts ORDER BY id').map(rolloutFromRow));
  }

  saveRollout(rollout: Rollout, expectedVersion: number): Promise<boolean> {
    return this.use({ op: 'saveRollout' }, 'single', (c) =>
      c.run('UPDATE rollouts SET version = ?, body = ? WHERE id = ? AND version = ?', rollout.version, encodeJson(rollout), rollout.id, expectedVersion).changes === 1);
  }

  listReleaseJobs(releaseId: string): Promise<ReleaseJob[]> {
    return this.use({ op: 'listReleaseJobs' }, 'single', (c) =>
      c.all('SELECT id, home_id, device_id, release_id, state, state_since FROM jobs WHERE release_id = ?', releaseId).map(releaseJobFromRow));
  }

  // ---- skips and credentials ----

  addSkip(deviceId: string, releaseId: string, at: EpochMs, actor: string): Promise<void> {
    return this.use({ op: 'addSkip', deviceId }, 'single', (c) => {
      c.run('INSERT INTO skips (device_id, release_id, at, actor) VALUES (?, ?, ?, ?) ON CONFLICT (device_id, release_id) DO NOTHING', deviceId, releaseId, at, actor);
    });
  }

  removeSkips(deviceId: string): Promise<void> {
    return this.use({ op: 'removeSkips', deviceId }, 'single', (c) => {
      c.run('DELETE FROM skips WHERE device_id = ?', deviceId);
    });
  }

  listSkips(): Promise<Set<string>> {
    return this.use({ op: 'listSkips' }, 'single', (c) =>
      new Set(c.all('SELECT device_id, release_id FROM skips').map((r) => `${String(r.device_id)}|${String(r.release_id)}`)));
  }

  setDeviceSecret(deviceId: string, secretHash: string): Promise<void> {
    return this.use({ op: 'setDeviceSecret', deviceId }, 'single', (c) => {
      c.run('INSERT INTO device_credentials (device_id, secret_hash) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET secret_hash = excluded.secret_hash', deviceId, secretHash);
    });
  }

  getDeviceSecret(deviceId: string): Promise<string | null> {
    return this.use({ op: 'getDeviceSecret', deviceId }, 'single', (c) => {
      const row = c.get('SELECT secret_hash FROM device_credentials WHERE device_id = ?', deviceId);
      return row === undefined ? null : String(row.secret_hash);
    });
  }

  deleteDeviceSecret(deviceId: string): Promise<void> {
    return this.use({ op: 'deleteDeviceSecret', deviceId }, 'single', (c) => {
      c.run('DELETE FROM device_credentials WHERE device_id = ?', deviceId);
    });
  }

  listDeviceSecrets(): Promise<{ deviceId: string; secretHash: string }[]> {
    return this.use({ op: 'listDeviceSecrets' }, 'single', (c) =>
      c.all('SELECT device_id, secret_hash FROM device_credentials ORDER BY device_id')
        .map((r) => ({ deviceId: String(r.device_id), secretHash: String(r.secret_hash) })));
  }

  // ---- onboarding: homes and devices come and go ----

  deleteHome(homeId: string): Promise<void> {
    return this.use({ op: 'deleteHome', homeId }, 'atomic', (c) => {
      if (c.get('SELECT id FROM homes WHERE id = ?', homeId) === undefined) throw homeNotFound(homeId);
      c.run('DELETE FROM jobs WHERE home_id = ? OR device_id IN (SELECT id FROM devices WHERE home_id = ?)', homeId, homeId);
      // Credentials, telemetry and skips go with their device; leases, enrollments and waiting devices with the home.
      c.run('DELETE FROM devices WHERE home_id = ?', homeId);
      c.run('DELETE FROM homes WHERE id = ?', homeId);
    });
  }

  deleteDevice(deviceId: string): Promise<void> {
    return this.use({ op: 'deleteDevice', deviceId }, 'atomic', (c) => {
      if (c.get('SELECT id FROM devices WHERE id = ?', deviceId) === undefined) throw deviceNotFound(deviceId);
      c.run('DELETE FROM jobs WHERE device_id = ?', deviceId);
      c.run('DELETE FROM devices WHERE id = ?', deviceId);
    });
  }

  setDeviceIgnored(deviceId: string, ignored: boolean): Promise<void> {
    return this.use({ op: 'setDeviceIgnored', deviceId }, 'single', (c) => {
      if (c.run('UPDATE devices SET ignored = ? WHERE id = ?', ignored ? 1 : 0, deviceId).changes === 0) throw deviceNotFound(deviceId);
    });
  }

  insertEnrollment(e: Enrollment): Promise<void> {
    return this.use({ op: 'insertEnrollment', homeId: e.homeId }, 'single', (c) => {
      c.run(
        'INSERT INTO enrollments (id, home_id, code_digest, created_at, expires_at, created_by, used_at, used_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        e.id, e.homeId, e.codeDigest, e.createdAt, e.expiresAt, e.createdBy, e.usedAt, e.usedBy,
      );
    });
  }

  findEnrollment(codeDigest: string): Promise<Enrollment | null> {
    return this.use({ op: 'findEnrollment' }, 'single', (c) => {
      const row = c.get('SELECT * FROM enrollments WHERE code_digest = ?', codeDigest);
      return row === undefined ? null : enrollmentFromRow(row);
    });
  }

  listEnrollments(query: { homeId?: string }): Promise<Enrollment[]> {
    return this.use({ op: 'listEnrollments' }, 'single', (c) => (query.homeId === undefined
      ? c.all(`SELECT * FROM enrollments ORDER BY created_at DESC, id LIMIT ${MAX_LIST_LIMIT}`)
      : c.all(`SELECT * FROM enrollments WHERE home_id = ? ORDER BY created_at DESC, id LIMIT ${MAX_LIST_LIMIT}`, query.homeId)).map(enrollmentFromRow));
  }

  useEnrollment(enrollmentId: string, at: EpochMs, by: string): Promise<boolean> {
    return this.use({ op: 'useEnrollment' }, 'single', (c) =>
      c.run('UPDATE enrollments SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL', at, by, enrollmentId).changes === 1);
  }

  deleteEnrollment(enrollmentId: string): Promise<boolean> {
    return this.use({ op: 'deleteEnrollment' }, 'single', (c) => c.run('DELETE FROM enrollments WHERE id = ?', enrollmentId).changes === 1);
  }

  insertPendingDevice(p: PendingDevice): Promise<void> {
    return this.use({ op: 'insertPendingDevice', deviceId: p.deviceId }, 'single', (c) => {
      c.run(PENDING_INSERT_SQL, ...pendingDeviceToValues(p));
    });
  }

  getPendingDevice(pendingId: string): Promise<PendingDevice | null> {
    return this.use({ op: 'getPendingDevice' }, 'single', (c) => {
      const row = c.get('SELECT * FROM pending_devices WHERE id = ?', pendingId);
      return row === undefined ? null : pendingDeviceFromRow(row);
    });
  }

  listPendingDevices(query: { homeId?: string; deviceId?: string; states?: PendingDeviceState[] }): Promise<PendingDevice[]> {
    return this.use({ op: 'listPendingDevices' }, 'single', (c) => {
      if (query.states !== undefined && query.states.length === 0) return [];
      const where: string[] = [];
      const values: SQLInputValue[] = [];
      if (query.homeId !== undefined) {
        where.push('home_id = ?');
        values.push(query.homeId);
      }
      if (query.deviceId !== undefined) {
        where.push('device_id = ?');
        values.push(query.deviceId);
      }
      if (query.states !== undefined) {
        where.push(`state IN (${placeholders(query.states.length)})`);
        values.push(...query.states);
      }
      const sql = `SELECT * FROM pending_devices${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY requested_at, id LIMIT ${MAX_LIST_LIMIT}`;
      return c.all(sql, ...values).map(pendingDeviceFromRow);
    });
  }

  decidePendingDevice(d: PendingDevice): Promise<boolean> {
    return this.use({ op: 'decidePendingDevice', deviceId: d.deviceId }, 'single', (c) =>
      c.run(
        "UPDATE pending_devices SET state = ?, home_id = ?, name = ?, decided_at = ?, decided_by = ? WHERE id = ? AND state = 'waiting'",
        d.state, d.homeId, d.name, d.decidedAt, d.decidedBy, d.id,
      ).changes === 1);
  }

  pruneEnrollments(before: EpochMs): Promise<void> {
    return this.use({ op: 'pruneEnrollments' }, 'atomic', (c) => {
      c.run("DELETE FROM pending_devices WHERE state <> 'waiting' AND decided_at < ?", before);
      c.run('DELETE FROM enrollments WHERE expires_at < ?', before);
    });
  }

  insertRepository(r: RepositoryRecord): Promise<void> {
    return this.use({ op: 'insertRepository' }, 'single', (c) => {
      c.run('INSERT INTO repositories (name, url, root, added_at, added_by) VALUES (?, ?, ?, ?, ?)', r.name, r.url, r.root, r.addedAt, r.addedBy);
    });
  }

  listRepositories(): Promise<RepositoryRecord[]> {
    return this.use({ op: 'listRepositories' }, 'single', (c) => c.all('SELECT * FROM repositories ORDER BY name').map(repositoryFromRow));
  }

  deleteRepository(name: string): Promise<boolean> {
    return this.use({ op: 'deleteRepository' }, 'single', (c) => c.run('DELETE FROM repositories WHERE name = ?', name).changes === 1);
  }

  getSetting(key: string): Promise<Record<string, unknown> | null> {
    return this.use({ op: 'getSetting' }, 'single', (c) => {
      const row = c.get('SELECT key, value FROM hub_settings WHERE key = ?', key);
      return row === undefined ? null : settingFromRow(row);
    });
  }

  putSetting(key: string, value: Record<string, unknown>): Promise<void> {
    return this.use({ op: 'putSetting' }, 'single', (c) => {
      c.run('INSERT INTO hub_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', key, encodeJson(value));
    });
  }

  // ---- jobs ----

  insertJob(job: Job): Promise<void> {
    return this.use({ op: 'insertJob', homeId: job.homeId, deviceId: job.deviceId, jobId: job.id }, 'single', (c) => {
      c.run(JOB_INSERT_SQL, ...jobToValues(job));
    });
  }

  /**
   * One prepared statement per row, all in one transaction (a savepoint inside `transaction`): the
   * connection is in-process, so the cost that matters is the one commit, not the statements.
   * Each history line goes in right after its job, with its id assigned as appendEvent's is.
   */
  insertPlannedJobs(items: PlannedJob[]): Promise<Job[]> {
    if (items.length === 0) return Promise.resolve([]);
    return this.use({ op: 'insertPlannedJobs' }, 'atomic', (c) => {
      const inserted: Job[] = [];
      for (const { job, event } of items) {
        if (c.run(PLANNED_JOB_INSERT_SQL, ...jobToValues(job)).changes === 0) continue;
        insertEvent(c, event);
        inserted.push(job);
      }
      return inserted;
    });
  }

  listOpenJobTargets(): Promise<{ deviceId: string; targetVersion: string }[]> {
    return this.use({ op: 'listOpenJobTargets' }, 'single', (c) =>
      c.all(`SELECT device_id, target_version FROM jobs WHERE state NOT IN (${placeholders(TERMINAL_STATES.length)})`, ...TERMINAL_STATES)
        .map((r) => ({ deviceId: String(r.device_id), targetVersion: String(r.target_version) })));
  }

  getJob(jobId: string): Promise<Job | null> {
    return this.use({ op: 'getJob', jobId }, 'single', (c) => {
      const row = c.get('SELECT * FROM jobs WHERE id = ?', jobId);
      return row === undefined ? null : jobFromRow(row);
    });
  }

  /** In run order: lowest priority number first, then oldest. */
  listJobs(query: JobQuery): Promise<Job[]> {
    return this.use({ op: 'listJobs' }, 'single', (c) => {
      const limit = boundLimit(query.limit);
      if (query.states !== undefined && query.states.length === 0) return [];
      const where: string[] = [];
      const values: SQLInputValue[] = [];
      if (query.homeId !== undefined) {
        where.push('home_id = ?');
        values.push(query.homeId);
      }
      if (query.deviceId !== undefined) {
        where.push('device_id = ?');
        values.push(query.deviceId);
      }
      if (query.open !== undefined) {
        where.push(`state ${query.open ? 'NOT IN' : 'IN'} (${placeholders(TERMINAL_STATES.length)})`);
        values.push(...TERMINAL_STATES);
      }
      if (query.states !== undefined) {
        where.push(`state IN (${placeholders(query.states.length)})`);
        values.push(...query.states);
      }
      const order = query.order === 'newest' ? 'created_at DESC, id DESC' : 'priority, created_at, id';
      // The limit is a checked integer, written into the SQL: a bound LIMIT makes SQLite prepare the
      // statement again on every call (a third of a state report's cost, bench/mqtt-fleet.bench.ts).
      const sql = `SELECT * FROM jobs${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ${limit}`;
      return c.all(sql, ...values).map(jobFromRow);
    });
  }

  saveJob(job: Job, expectedState: JobState, event: NewHistoryEvent | null): Promise<boolean> {
    return this.use({ op: 'saveJob', homeId: job.homeId, deviceId: job.deviceId, jobId: job.id }, 'atomic', (c) => {
      const { changes } = c.run(JOB_SAVE_SQL, ...jobToValues(job).slice(1), job.id, expectedState);
      if (changes === 0) return false;
      if (event !== null) insertEvent(c, event);
      return true;
    });
  }

  // ---- history ----

  appendEvent(event: NewHistoryEvent): Promise<HistoryEvent> {
    return this.use({ op: 'appendEvent', homeId: event.homeId }, 'single', (c) => ({ ...event, id: insertEvent(c, event) }));
  }

  /** Newest first. */
  listEvents(query: EventQuery): Promise<HistoryEvent[]> {
    return this.use({ op: 'listEvents' }, 'single', (c) => {
      const limit = boundLimit(query.limit);
      const where: string[] = [];
      const values: SQLInputValue[] = [];
      const filter = (column: string, value: string | number | undefined) => {
        if (value === undefined) return;
        where.push(column === 'id' ? 'id < ?' : `${column} = ?`);
        values.push(value);
      };
      filter('home_id', query.homeId);
      filter('device_id', query.deviceId);
      filter('job_id', query.jobId);
      filter('to_state', query.to);
      filter('id', query.beforeId);
      const sql = `SELECT * FROM events${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`;
      return c.all(sql, ...values).map(eventFromRow);
    });
  }
}

function insertEvent(c: Connection, e: NewHistoryEvent): number {
  return c.run(EVENT_INSERT_SQL, e.at, e.homeId, e.deviceId, e.jobId, e.kind, e.from, e.to, e.code, e.message, e.actor).lastInsertRowid;
}

/** One device's telemetry write, inside an open transaction (or savepoint). */
function writeTelemetry(c: Connection, deviceId: string, write: DeviceTelemetryWrite): void {
  const row = c.get('SELECT last_seen_at, report_at FROM devices WHERE id = ?', deviceId);
  if (row === undefined) throw deviceNotFound(deviceId);
  const lastSeen = typeof row.last_seen_at === 'number' ? row.last_seen_at : null;
  const reportAt = typeof row.report_at === 'number' ? row.report_at : null;
  let seen = lastSeen;
  const saw = (at: EpochMs) => {
    seen = seen === null ? at : Math.max(seen, at);
  };
  if (write.report !== undefined) {
    // Reports can arrive out of order (retained MQTT messages, reconnects): the newest one wins.
    if (reportAt === null || write.report.at >= reportAt) {
      c.run('UPDATE devices SET report = ?, report_at = ? WHERE id = ?', encodeJson(write.report), write.report.at, deviceId);
    }
    saw(write.report.at);
  }
  if (write.signalSample !== undefined) {
    c.run('INSERT INTO signal_samples (device_id, at, dbm) VALUES (?, ?, ?)', deviceId, write.signalSample.at, write.signalSample.dbm);
    saw(write.signalSample.at);
  }
  if (write.dropoutAt !== undefined) {
    c.run('INSERT INTO dropouts (device_id, at) VALUES (?, ?)', deviceId, write.dropoutAt);
  }
  if (write.usage !== undefined) {
    if (write.usage.end < write.usage.start) {
      throw new FirmwardError('invalid_input', 'A usage period cannot end before it starts.', { detail: { deviceId, usage: write.usage } });
    }
    c.run('INSERT INTO usage (device_id, start_at, end_at) VALUES (?, ?, ?)', deviceId, write.usage.start, write.usage.end);
  }
  if (write.online !== undefined) {
    c.run('UPDATE devices SET online = ? WHERE id = ?', write.online ? 1 : 0, deviceId);
  }
  if (seen !== lastSeen) c.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', seen, deviceId);
}

function wrap<T>(ctx: ErrorContext, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw mapSqliteError(e, ctx);
  }
}

/**
 * The Store on node:sqlite. See the file header for the lifecycle.
 *
 * @example
 * const store = new SqliteStore({ path: 'data/hub.db' });
 * await store.migrate();
 * await store.transaction(async (tx) => { await tx.putHome(home); await tx.putDevice(device); });
 * await store.close();
 */
export class SqliteStore extends SqliteSession {
  readonly path: string;
  readonly #busyTimeoutMs: number;
  readonly #clock: Clock;
  readonly #mutex = new Mutex();
  #connection: Connection | null = null;
  #closed = false;
  #telemetry: { deviceId: string; write: DeviceTelemetryWrite; resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(options: SqliteStoreOptions) {
    super();
    this.path = options.path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    this.#clock = options.clock ?? new SystemClock();
  }

  /**
   * Constructs, opens and migrates in one call.
   *
   * @example
   * const store = await SqliteStore.open(':memory:');
   */
  static async open(path: string, options: Omit<SqliteStoreOptions, 'path'> = {}): Promise<SqliteStore> {
    const store = new SqliteStore({ ...options, path });
    await store.migrate();
    return store;
  }

  /** Opens the database if needed, then applies every migration not applied yet, each in its own transaction. */
  migrate(): Promise<void> {
    return this.#exclusive({ op: 'migrate' }, () => {
      const c = this.#openConnection();
      c.exec(SCHEMA_MIGRATIONS_SQL);
      for (const m of MIGRATIONS) {
        c.immediate(() => {
          // Checked inside the transaction: two processes migrating at once apply each step once.
          if (c.get('SELECT version FROM schema_migrations WHERE version = ?', m.version) !== undefined) return;
          c.exec(m.sql);
          c.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', m.version, m.name, this.#clock.now());
        });
      }
      const newest = c.get('SELECT MAX(version) AS v FROM schema_migrations')?.v;
      const known = MIGRATIONS.at(-1)?.version ?? 0;
      if (typeof newest === 'number' && newest > known) {
        throw new FirmwardError('store_failure', 'The database was written by a newer version of the hub; update the hub before using it.', { detail: { path: this.path, newest, known } });
      }
      this.#verifyInvariantIndexes(c);
    });
  }

  /**
   * How the connection is set up, for the hub's health view and for tests: the durability
   * settings invariant 8 depends on, and the schema version.
   */
  diagnostics(): Promise<SqliteDiagnostics> {
    return this.#exclusive({ op: 'diagnostics' }, () => {
      const c = this.#requireConnection();
      const pragma = (name: string): unknown => {
        const row = c.get(`PRAGMA ${name}`);
        return row === undefined ? undefined : Object.values(row)[0];
      };
      const version = c.get('SELECT MAX(version) AS v FROM schema_migrations')?.v;
      return {
        journalMode: String(pragma('journal_mode')),
        synchronous: SYNCHRONOUS_LEVELS[Number(pragma('synchronous'))] ?? 'unknown',
        foreignKeys: Number(pragma('foreign_keys')) === 1,
        busyTimeoutMs: Number(pragma('busy_timeout')),
        schemaVersion: typeof version === 'number' ? version : 0,
      };
    });
  }

  close(): Promise<void> {
    if (this.#insideOwnTransaction()) return Promise.reject(selfDeadlock());
    return this.#mutex.run(() => {
      this.#closed = true;
      this.#connection?.close();
      this.#connection = null;
    });
  }

  /**
   * Runs `fn` in one BEGIN IMMEDIATE … COMMIT transaction, rolled back when `fn` throws (the
   * error is passed on unchanged). Other calls on this store wait until it ends. Inside `fn`, use
   * `tx` only: calling the store itself there would wait for the transaction forever, so it is
   * refused with `internal` instead.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#insideOwnTransaction()) return Promise.reject(selfDeadlock());
    return this.#mutex.run(async () => {
      const c = this.#requireConnection();
      wrap({ op: 'transaction' }, () => c.exec('BEGIN IMMEDIATE'));
      const tx = new SqliteTransaction(c);
      const scope = { store: this, live: true };
      let result: T;
      try {
        result = await activeTransaction.run(scope, () => fn(tx));
      } catch (e) {
        scope.live = false;
        tx.end();
        c.rollbackQuietly();
        throw e;
      }
      scope.live = false;
      tx.end();
      try {
        c.exec('COMMIT');
      } catch (e) {
        c.rollbackQuietly();
        throw mapSqliteError(e, { op: 'transaction' });
      }
      return result;
    });
  }

  /**
   * Telemetry is group-committed: the reports that arrive together (one turn of the event loop)
   * are written in one transaction, each in its own savepoint so one bad write fails alone, and
   * every caller is answered only once that transaction is durable. One fsync for many reports
   * instead of one each (bench/mqtt-fleet.bench.ts).
   */
  override recordTelemetry(deviceId: string, write: DeviceTelemetryWrite): Promise<void> {
    if (this.#insideOwnTransaction()) return Promise.reject(selfDeadlock());
    return new Promise((resolve, reject) => {
      this.#telemetry.push({ deviceId, write, resolve, reject });
      if (this.#telemetry.length === 1) setImmediate(() => void this.#flushTelemetry());
    });
  }

  async #flushTelemetry(): Promise<void> {
    // Bounded, so a burst is written in transactions of a few hundred reports and each caller waits little.
    const batch = this.#telemetry.splice(0, TELEMETRY_BATCH);
    if (this.#telemetry.length > 0) setImmediate(() => void this.#flushTelemetry());
    let failures: (FirmwardError | null)[];
    try {
      failures = await this.use({ op: 'recordTelemetry' }, 'atomic', (c) => batch.map((item) => {
        try {
          c.savepoint(() => writeTelemetry(c, item.deviceId, item.write));
          return null;
        } catch (e) {
          return e instanceof FirmwardError ? e : mapSqliteError(e, { op: 'recordTelemetry', deviceId: item.deviceId });
        }
      }));
    } catch (e) {
      for (const item of batch) item.reject(e);
      return;
    }
    batch.forEach((item, i) => (failures[i] === null ? item.resolve() : item.reject(failures[i])));
  }

  protected use<T>(ctx: ErrorContext, atomicity: Atomicity, fn: (c: Connection) => T): Promise<T> {
    return this.#exclusive(ctx, () => {
      const c = this.#requireConnection();
      return atomicity === 'atomic' ? c.immediate(() => fn(c)) : fn(c);
    });
  }

  async #exclusive<T>(ctx: ErrorContext, fn: () => T): Promise<T> {
    if (this.#insideOwnTransaction()) throw selfDeadlock();
    return this.#mutex.run(() => wrap(ctx, fn));
  }

  #insideOwnTransaction(): boolean {
    const scope = activeTransaction.getStore();
    return scope !== undefined && scope.store === this && scope.live;
  }

  #openConnection(): Connection {
    if (this.#closed) throw closedError();
    if (this.#connection === null) {
      try {
        this.#connection = Connection.open({ path: this.path, busyTimeoutMs: this.#busyTimeoutMs });
      } catch (e) {
        throw new FirmwardError('store_failure', `The hub could not open its database at ${this.path}; check that the folder exists and is writable.`, { cause: e, detail: { path: this.path } });
      }
    }
    return this.#connection;
  }

  #requireConnection(): Connection {
    if (this.#closed) throw closedError();
    if (this.#connection === null) {
      throw new FirmwardError('store_failure', 'The hub\'s database is not open yet; migrate() opens it.', { detail: { path: this.path } });
    }
    return this.#connection;
  }

  /**
   * Invariant 1 rests on these two indexes. A database created by an older build whose
   * ACTIVE_STATES differed would silently guard the wrong states, so refuse to run on it.
   */
  #verifyInvariantIndexes(c: Connection): void {
    const normalise = (sql: string) => sql.replace(/\s+/g, ' ').trim().toLowerCase();
    for (const [name, expected] of [
      [ONE_ACTIVE_PER_HOME_INDEX, oneActivePerHomeIndexSql()],
      [ONE_OPEN_PER_DEVICE_INDEX, oneOpenPerDeviceIndexSql()],
    ] as const) {
      const row = c.get("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", name);
      if (typeof row?.sql !== 'string' || normalise(row.sql) !== normalise(expected)) {
        throw new FirmwardError('store_failure', 'The hub\'s database does not guard "one update per home" the way this version expects; it needs a schema migration.', { detail: { index: name, found: row?.sql ?? null } });
      }
    }
  }
}

/**
 * The `tx` handed to a transaction callback: the same operations, run inline on the connection
 * the transaction holds. Multi-statement operations use a savepoint so each stays all-or-nothing
 * even if the callback catches its error and goes on. Unusable once the transaction has ended.
 */
class SqliteTransaction extends SqliteSession {
  readonly #connection: Connection;
  #ended = false;

  constructor(connection: Connection) {
    super();
    this.#connection = connection;
  }

  end(): void {
    this.#ended = true;
  }

  // async only for the port's shape: the body runs to completion when called, so the statement
  // executes in call order, while the transaction still holds the connection.
  // eslint-disable-next-line @typescript-eslint/require-await
  protected async use<T>(ctx: ErrorContext, atomicity: Atomicity, fn: (c: Connection) => T): Promise<T> {
    if (this.#ended) {
      throw new FirmwardError('internal', 'A store transaction was used after it had finished.', { detail: { op: ctx.op } });
    }
    const c = this.#connection;
    return wrap(ctx, () => (atomicity === 'atomic' ? c.savepoint(() => fn(c)) : fn(c)));
  }

  /** Nested transactions run inline, as part of the enclosing one. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#ended) return Promise.reject(new FirmwardError('internal', 'A store transaction was used after it had finished.'));
    return fn(this);
  }

  migrate(): Promise<void> {
    return Promise.reject(new FirmwardError('internal', 'The database schema cannot be changed from inside a transaction.'));
  }

  close(): Promise<void> {
    return Promise.reject(new FirmwardError('internal', 'The database cannot be closed from inside a transaction.'));
  }
}

/** The most telemetry writes one group commit takes. */
const TELEMETRY_BATCH = 256;

function selfDeadlock(): FirmwardError {
  return new FirmwardError('internal', 'Inside a store transaction, use the transaction object; calling the store itself would wait forever.');
}

function closedError(): FirmwardError {
  return new FirmwardError('store_failure', 'The hub\'s database has been closed.');
}
