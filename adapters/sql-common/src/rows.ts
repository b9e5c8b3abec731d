/**
 * Rows ↔ domain records, shared by the SQLite and PostgreSQL stores. Every read goes through here so that bad data in a column (hand-edited
 * database, a half-written row from an old version) becomes a `store_failure` naming the row, never
 * a TypeError deep inside the hub (STYLE principle 9: distrust every input, the database included).
 */
import { FirmwardError } from '@firmward/core';
import type { Home, Interval, Job, JobState, Policy, Release, Rollout } from '@firmward/core';
import type { DeviceRow, Enrollment, HistoryEvent, PendingDevice, PendingDeviceProtocol, PendingDeviceState, ReleaseJob, RepositoryRecord } from '@firmward/ports';

export type Row = Record<string, unknown>;
export type SqlValue = string | number | boolean | null;

export function corrupt(table: string, id: unknown, column: string, cause?: unknown): FirmwardError {
  return new FirmwardError(
    'store_failure',
    `The hub's database holds unreadable data (${table} ${String(id)}, ${column}); restore a backup or remove that record.`,
    { cause, detail: { table, id, column } },
  );
}

/**
 * A JSON column: text to parse (SQLite), or already parsed (PostgreSQL JSONB). Every value we
 * store there is an object, an array or null, so a string from JSONB is as corrupt as bad text.
 */
function json<T>(row: Row, table: string, column: string): T {
  const raw = row[column];
  if (raw !== null && typeof raw === 'object') return raw as T;
  if (typeof raw !== 'string') throw corrupt(table, row.id, column);
  try {
    return JSON.parse(raw) as T;
  } catch (e) {
    throw corrupt(table, row.id, column, e);
  }
}

/** A BOOLEAN column: true/false (PostgreSQL) or 1/0 (SQLite). */
function bool(row: Row, table: string, column: string): boolean {
  const v = row[column];
  if (typeof v === 'boolean') return v;
  if (v === 0 || v === 1) return v === 1;
  throw corrupt(table, row.id, column);
}

/** A JSON column that must hold an object (or array), not a bare value. */
function jsonObject<T>(row: Row, table: string, column: string, kind: 'object' | 'array'): T {
  const value = json<unknown>(row, table, column);
  const ok = kind === 'array' ? Array.isArray(value) : typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!ok) throw corrupt(table, row.id, column);
  return value as T;
}

function jsonObjectOrNull<T>(row: Row, table: string, column: string): T | null {
  if (row[column] === null) return null;
  return jsonObject<T>(row, table, column, 'object');
}

function str(row: Row, table: string, column: string): string {
  const v = row[column];
  if (typeof v !== 'string') throw corrupt(table, row.id, column);
  return v;
}

function strOrNull(row: Row, table: string, column: string): string | null {
  const v = row[column];
  if (v === null) return null;
  if (typeof v !== 'string') throw corrupt(table, row.id, column);
  return v;
}

export function num(row: Row, table: string, column: string): number {
  const v = row[column];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw corrupt(table, row.id, column);
  return v;
}

function numOrNull(row: Row, table: string, column: string): number | null {
  if (row[column] === null) return null;
  return num(row, table, column);
}

export function encodeJson(value: unknown): string {
  return JSON.stringify(value);
}

export function homeFromRow(row: Row): Home {
  return {
    id: str(row, 'home', 'id'),
    name: str(row, 'home', 'name'),
    settings: jsonObject(row, 'home', 'settings', 'object'),
    halt: jsonObjectOrNull(row, 'home', 'halt'),
  };
}

export function deviceFromRow(row: Row): DeviceRow {
  return {
    id: str(row, 'device', 'id'),
    homeId: str(row, 'device', 'home_id'),
    name: str(row, 'device', 'name'),
    vendor: str(row, 'device', 'vendor'),
    model: str(row, 'device', 'model'),
    hardwareRevision: str(row, 'device', 'hardware_revision'),
    firmwareVersion: str(row, 'device', 'firmware_version'),
    policy: strOrNull(row, 'device', 'policy') as Policy | null,
    thresholds: jsonObject(row, 'device', 'thresholds', 'object'),
    schedules: jsonObject(row, 'device', 'schedules', 'array'),
    online: bool(row, 'device', 'online'),
    lastSeenAt: numOrNull(row, 'device', 'last_seen_at'),
    report: jsonObjectOrNull(row, 'device', 'report'),
    ignored: bool(row, 'device', 'ignored'),
  };
}

export function enrollmentFromRow(row: Row): Enrollment {
  const t = 'enrollment';
  return {
    id: str(row, t, 'id'),
    homeId: str(row, t, 'home_id'),
    codeDigest: str(row, t, 'code_digest'),
    createdAt: num(row, t, 'created_at'),
    expiresAt: num(row, t, 'expires_at'),
    createdBy: str(row, t, 'created_by'),
    usedAt: numOrNull(row, t, 'used_at'),
    usedBy: strOrNull(row, t, 'used_by'),
  };
}

const PENDING_STATES: readonly PendingDeviceState[] = ['waiting', 'approved', 'rejected'];
const PENDING_PROTOCOLS: readonly PendingDeviceProtocol[] = ['agent', 'hawkbit'];

export const PENDING_DEVICE_COLUMNS = [
  'id', 'home_id', 'device_id', 'protocol', 'name', 'vendor', 'model', 'hardware_revision', 'firmware_version', 'secret_hash',
  'enrollment_id', 'state', 'requested_at', 'requested_from', 'decided_at', 'decided_by',
] as const;

/** Values in PENDING_DEVICE_COLUMNS order. */
export function pendingDeviceToValues(p: PendingDevice): (string | number | null)[] {
  return [
    p.id, p.homeId, p.deviceId, p.protocol, p.name, p.vendor, p.model, p.hardwareRevision, p.firmwareVersion, p.secretHash,
    p.enrollmentId, p.state, p.requestedAt, p.requestedFrom, p.decidedAt, p.decidedBy,
  ];
}

export function pendingDeviceFromRow(row: Row): PendingDevice {
  const t = 'pending_device';
  const state = str(row, t, 'state') as PendingDeviceState;
  const protocol = str(row, t, 'protocol') as PendingDeviceProtocol;
  if (!PENDING_STATES.includes(state)) throw corrupt(t, row.id, 'state');
  if (!PENDING_PROTOCOLS.includes(protocol)) throw corrupt(t, row.id, 'protocol');
  return {
    id: str(row, t, 'id'),
    homeId: strOrNull(row, t, 'home_id'),
    deviceId: str(row, t, 'device_id'),
    protocol,
    name: str(row, t, 'name'),
    vendor: str(row, t, 'vendor'),
    model: str(row, t, 'model'),
    hardwareRevision: str(row, t, 'hardware_revision'),
    firmwareVersion: str(row, t, 'firmware_version'),
    secretHash: strOrNull(row, t, 'secret_hash'),
    enrollmentId: strOrNull(row, t, 'enrollment_id'),
    state,
    requestedAt: num(row, t, 'requested_at'),
    requestedFrom: str(row, t, 'requested_from'),
    decidedAt: numOrNull(row, t, 'decided_at'),
    decidedBy: strOrNull(row, t, 'decided_by'),
  };
}

export function repositoryFromRow(row: Row): RepositoryRecord {
  const t = 'repository';
  return {
    name: str(row, t, 'name'),
    url: str(row, t, 'url'),
    root: str(row, t, 'root'),
    addedAt: num(row, t, 'added_at'),
    addedBy: str(row, t, 'added_by'),
  };
}

/** A hub setting: a JSON object (SQLite text, PostgreSQL JSONB). */
export function settingFromRow(row: Row): Record<string, unknown> {
  return jsonObject<Record<string, unknown>>({ ...row, id: row.key }, 'setting', 'value', 'object');
}

export function releaseFromRow(row: Row): Release {
  const release = jsonObject<Release>(row, 'release', 'body', 'object');
  if (release.id !== row.id) throw corrupt('release', row.id, 'body');
  return release;
}

export function rolloutFromRow(row: Row): Rollout {
  const rollout = jsonObject<Rollout>(row, 'rollout', 'body', 'object');
  if (rollout.id !== row.id || rollout.version !== Number(row.version)) throw corrupt('rollout', row.id, 'body');
  return rollout;
}

export function releaseJobFromRow(row: Row): ReleaseJob {
  return {
    id: String(row.id), homeId: String(row.home_id), deviceId: String(row.device_id), releaseId: String(row.release_id),
    state: String(row.state) as JobState, stateSince: num(row, 'job', 'state_since'),
  };
}

export const JOB_COLUMNS = [
  'id', 'home_id', 'device_id', 'release_id', 'from_version', 'target_version', 'state', 'reasons', 'recheck_at',
  'priority', 'requested_by', 'forced_by', 'created_at', 'updated_at', 'state_since', 'last_heard_at',
  'progress_percent', 'confirm_until', 'expected_done_at', 'failure', 'offers', 'retry_at',
] as const;

/** Values in JOB_COLUMNS order. */
export function jobToValues(job: Job): (string | number | null)[] {
  return [
    job.id, job.homeId, job.deviceId, job.releaseId, job.fromVersion, job.targetVersion, job.state,
    encodeJson(job.reasons), job.recheckAt, job.priority, job.requestedBy, job.forcedBy, job.createdAt, job.updatedAt,
    job.stateSince, job.lastHeardAt, job.progressPercent, job.confirmUntil, job.expectedDoneAt,
    job.failure === null ? null : encodeJson(job.failure), job.offers, job.retryAt,
  ];
}

export function jobFromRow(row: Row): Job {
  const t = 'job';
  return {
    id: str(row, t, 'id'),
    homeId: str(row, t, 'home_id'),
    deviceId: str(row, t, 'device_id'),
    releaseId: str(row, t, 'release_id'),
    fromVersion: str(row, t, 'from_version'),
    targetVersion: str(row, t, 'target_version'),
    state: str(row, t, 'state') as JobState,
    reasons: jsonObject(row, t, 'reasons', 'array'),
    recheckAt: numOrNull(row, t, 'recheck_at'),
    priority: num(row, t, 'priority'),
    requestedBy: strOrNull(row, t, 'requested_by'),
    forcedBy: strOrNull(row, t, 'forced_by'),
    createdAt: num(row, t, 'created_at'),
    updatedAt: num(row, t, 'updated_at'),
    stateSince: num(row, t, 'state_since'),
    lastHeardAt: numOrNull(row, t, 'last_heard_at'),
    progressPercent: numOrNull(row, t, 'progress_percent'),
    confirmUntil: numOrNull(row, t, 'confirm_until'),
    expectedDoneAt: numOrNull(row, t, 'expected_done_at'),
    failure: jsonObjectOrNull(row, t, 'failure'),
    offers: num(row, t, 'offers'),
    retryAt: numOrNull(row, t, 'retry_at'),
  };
}

export function eventFromRow(row: Row): HistoryEvent {
  const t = 'event';
  return {
    id: num(row, t, 'id'),
    at: num(row, t, 'at'),
    homeId: str(row, t, 'home_id'),
    deviceId: strOrNull(row, t, 'device_id'),
    jobId: strOrNull(row, t, 'job_id'),
    kind: str(row, t, 'kind') as HistoryEvent['kind'],
    from: strOrNull(row, t, 'from_state') as JobState | null,
    to: strOrNull(row, t, 'to_state') as JobState | null,
    code: str(row, t, 'code'),
    message: str(row, t, 'message'),
    actor: str(row, t, 'actor'),
  };
}


/** A numeric column of a row without an id column of its own (telemetry), named by its owner. */
export function numberOf(row: Row, column: string, table: string, ownerId: string): number {
  const v = row[column];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw corrupt(table, ownerId, column);
  return v;
}

export function intervalOf(row: Row, ownerId: string): Interval {
  return { start: numberOf(row, 'start_at', 'usage', ownerId), end: numberOf(row, 'end_at', 'usage', ownerId) };
}

export function homeNotFound(homeId: string): FirmwardError {
  return new FirmwardError('not_found', `There is no home ${homeId}.`, { detail: { homeId } });
}

export function deviceNotFound(deviceId: string): FirmwardError {
  return new FirmwardError('not_found', `There is no device ${deviceId}.`, { detail: { deviceId } });
}
