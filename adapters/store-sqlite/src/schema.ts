/**
 * The schema, as numbered migrations. Written in plain SQL that PostgreSQL accepts in spirit
 * unchanged (TEXT, BIGINT, INTEGER, DOUBLE PRECISION, BOOLEAN, partial unique indexes, ON CONFLICT),
 * so the PostgreSQL adapter differs only in the events id (BIGSERIAL / identity) and JSON columns
 * (JSONB there, TEXT here). Times are epoch milliseconds in BIGINT columns.
 *
 * A migration is frozen once it has shipped: changing the schema (or ACTIVE_STATES, which the
 * invariant-1 index is built from) means appending a new migration, never editing an old one.
 */
import { ACTIVE_STATES, JOB_STATES, TERMINAL_STATES } from '@firmward/core';
import type { JobState } from '@firmward/core';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Name of the index that holds invariant 1 (one active update per home) in the database. */
export const ONE_ACTIVE_PER_HOME_INDEX = 'jobs_one_active_per_home';
/** Name of the index that keeps one open job per device. */
export const ONE_OPEN_PER_DEVICE_INDEX = 'jobs_one_open_per_device';

function sqlList(states: readonly JobState[]): string {
  // The states are our own string literals (no quotes inside), so inlining them is safe.
  return states.map((s) => `'${s}'`).join(', ');
}

/** The partial unique index of invariant 1, built from the core's ACTIVE_STATES. */
export function oneActivePerHomeIndexSql(): string {
  return `CREATE UNIQUE INDEX ${ONE_ACTIVE_PER_HOME_INDEX} ON jobs(home_id) WHERE state IN (${sqlList(ACTIVE_STATES)})`;
}

export function oneOpenPerDeviceIndexSql(): string {
  return `CREATE UNIQUE INDEX ${ONE_OPEN_PER_DEVICE_INDEX} ON jobs(device_id) WHERE state NOT IN (${sqlList(TERMINAL_STATES)})`;
}

/**
 * The ON CONFLICT target that names the one-open-job-per-device index, for an insert that leaves out
 * a device with an open job. The database picks the index by its column and predicate, so this
 * repeats the index's exactly; naming it keeps every other refusal (a job id inserted twice,
 * invariant 1) an error, as DO NOTHING with no target would not.
 */
export function oneOpenPerDeviceConflictTarget(): string {
  return `(device_id) WHERE state NOT IN (${sqlList(TERMINAL_STATES)})`;
}

const INITIAL = `
CREATE TABLE homes (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  settings TEXT NOT NULL,
  halt TEXT NULL
);

CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  home_id TEXT NOT NULL REFERENCES homes(id),
  name TEXT NOT NULL,
  vendor TEXT NOT NULL,
  model TEXT NOT NULL,
  hardware_revision TEXT NOT NULL,
  firmware_version TEXT NOT NULL,
  policy TEXT NULL,
  thresholds TEXT NOT NULL,
  schedules TEXT NOT NULL,
  online BOOLEAN NOT NULL DEFAULT FALSE,
  last_seen_at BIGINT NULL,
  report TEXT NULL,
  report_at BIGINT NULL
);
CREATE INDEX devices_by_home ON devices(home_id);

CREATE TABLE signal_samples (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  at BIGINT NOT NULL,
  dbm DOUBLE PRECISION NOT NULL
);
CREATE INDEX signal_samples_by_device ON signal_samples(device_id, at);
CREATE INDEX signal_samples_by_time ON signal_samples(at);

CREATE TABLE dropouts (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  at BIGINT NOT NULL
);
CREATE INDEX dropouts_by_device ON dropouts(device_id, at);
CREATE INDEX dropouts_by_time ON dropouts(at);

CREATE TABLE usage (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  start_at BIGINT NOT NULL,
  end_at BIGINT NOT NULL
);
CREATE INDEX usage_by_device ON usage(device_id, end_at);
CREATE INDEX usage_by_time ON usage(end_at);

CREATE TABLE releases (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL
);

CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  home_id TEXT NOT NULL REFERENCES homes(id),
  device_id TEXT NOT NULL REFERENCES devices(id),
  release_id TEXT NOT NULL,
  from_version TEXT NOT NULL,
  target_version TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN (${sqlList(JOB_STATES)})),
  reasons TEXT NOT NULL,
  recheck_at BIGINT NULL,
  priority INTEGER NOT NULL,
  requested_by TEXT NULL,
  forced_by TEXT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  state_since BIGINT NOT NULL,
  last_heard_at BIGINT NULL,
  progress_percent DOUBLE PRECISION NULL,
  confirm_until BIGINT NULL,
  expected_done_at BIGINT NULL,
  failure TEXT NULL
);
CREATE INDEX jobs_by_home ON jobs(home_id, priority, created_at);
CREATE INDEX jobs_by_device ON jobs(device_id, created_at);
${oneActivePerHomeIndexSql()};
${oneOpenPerDeviceIndexSql()};

CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at BIGINT NOT NULL,
  home_id TEXT NOT NULL,
  device_id TEXT NULL,
  job_id TEXT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('transition', 'decision', 'person', 'device')),
  from_state TEXT NULL,
  to_state TEXT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  actor TEXT NOT NULL
);
CREATE INDEX events_by_home ON events(home_id, id);
CREATE INDEX events_by_device ON events(device_id, id);
CREATE INDEX events_by_job ON events(job_id, id);
CREATE INDEX events_by_to_state ON events(to_state, id);
`;

/** Applied in order, each in its own transaction, each recorded in schema_migrations. */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: INITIAL },
  { version: 2, name: 'skips and device credentials', sql: `
CREATE TABLE skips (
  device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  release_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  PRIMARY KEY (device_id, release_id)
);
CREATE TABLE device_credentials (
  device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
  secret_hash TEXT NOT NULL
);
` },
  { version: 3, name: 'staged rollouts', sql: `
CREATE TABLE rollouts (
  id TEXT PRIMARY KEY,
  release_id TEXT NOT NULL UNIQUE,
  version INTEGER NOT NULL,
  body TEXT NOT NULL
);
CREATE INDEX jobs_by_release ON jobs(release_id);
` },
  { version: 4, name: 'work claiming', sql: `
CREATE TABLE hub_instances (
  owner TEXT PRIMARY KEY,
  seen_until BIGINT NOT NULL
);
CREATE TABLE home_leases (
  home_id TEXT PRIMARY KEY REFERENCES homes(id) ON DELETE CASCADE,
  owner TEXT NOT NULL,
  until BIGINT NOT NULL
);
CREATE INDEX home_leases_by_until ON home_leases(until);
` },
  { version: 5, name: 'onboarding: enrollments, waiting devices, repositories, settings', sql: `
ALTER TABLE devices ADD COLUMN ignored BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE enrollments (
  id TEXT PRIMARY KEY,
  home_id TEXT NOT NULL REFERENCES homes(id) ON DELETE CASCADE,
  code_digest TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  used_at BIGINT NULL,
  used_by TEXT NULL
);
CREATE INDEX enrollments_by_home ON enrollments(home_id, created_at);
CREATE TABLE pending_devices (
  id TEXT PRIMARY KEY,
  home_id TEXT NULL REFERENCES homes(id) ON DELETE CASCADE,
  device_id TEXT NOT NULL,
  protocol TEXT NOT NULL CHECK (protocol IN ('agent', 'hawkbit')),
  name TEXT NOT NULL,
  vendor TEXT NOT NULL,
  model TEXT NOT NULL,
  hardware_revision TEXT NOT NULL,
  firmware_version TEXT NOT NULL,
  secret_hash TEXT NULL,
  enrollment_id TEXT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'approved', 'rejected')),
  requested_at BIGINT NOT NULL,
  requested_from TEXT NOT NULL,
  decided_at BIGINT NULL,
  decided_by TEXT NULL
);
CREATE UNIQUE INDEX pending_devices_one_waiting ON pending_devices(device_id) WHERE state = 'waiting';
CREATE INDEX pending_devices_by_home ON pending_devices(home_id, requested_at);
CREATE TABLE repositories (
  name TEXT PRIMARY KEY,
  url TEXT NOT NULL,
  root TEXT NOT NULL,
  added_at BIGINT NOT NULL,
  added_by TEXT NOT NULL
);
CREATE TABLE hub_settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
` },
  { version: 6, name: 'offer sequence numbers and retry times', sql: `
ALTER TABLE jobs ADD COLUMN offers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN retry_at BIGINT NULL;
` },
];

export const SCHEMA_MIGRATIONS_SQL = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;
