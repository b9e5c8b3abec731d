/**
 * Turns pg errors into FirmwardErrors (STYLE principle 7). The two partial unique indexes on jobs
 * are how the database itself refuses a second active update in a home (invariant 1) and a second
 * open job for a device, whichever hub instance writes; PostgreSQL names the violated index in
 * `constraint`, so callers see `home_busy` and `conflict`, never a raw SQLSTATE.
 */
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { JOBS_PRIMARY_KEY, ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX } from './schema.ts';

/** The fields of pg's DatabaseError this mapping reads. */
interface PgError {
  code: string;
  constraint?: string | undefined;
}

const UNIQUE_VIOLATION = '23505';
const FOREIGN_KEY_VIOLATION = '23503';
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK_DETECTED = '40P01';
const LOCK_NOT_AVAILABLE = '55P03';
const DISK_FULL = '53100';
const TOO_MANY_CONNECTIONS = '53300';
const UNDEFINED_TABLE = '42P01';
/** Network errors from node:net while reaching the server. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE', 'EAI_AGAIN']);

function pgError(e: unknown): PgError | null {
  if (!(e instanceof Error)) return null;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return null;
  const constraint = (e as { constraint?: unknown }).constraint;
  return { code, constraint: typeof constraint === 'string' ? constraint : undefined };
}

/** What the caller was doing, for the sentence and the detail. */
export interface ErrorContext {
  op: string;
  homeId?: string;
  deviceId?: string;
  jobId?: string;
}

export function mapPgError(e: unknown, ctx: ErrorContext): FirmwardError {
  if (isFirmwardError(e)) return e;
  const detail: Record<string, unknown> = { ...ctx };
  const pg = pgError(e);
  if (pg === null) {
    return new FirmwardError('store_failure', 'The hub could not read or write its database.', { cause: e, detail });
  }
  detail.sqlState = pg.code;
  if (pg.constraint !== undefined) detail.constraint = pg.constraint;
  switch (pg.code) {
    case UNIQUE_VIOLATION: {
      if (pg.constraint === ONE_ACTIVE_PER_HOME_INDEX) {
        const home = ctx.homeId === undefined ? 'this home' : `home ${ctx.homeId}`;
        return new FirmwardError('home_busy', `Another device in ${home} is already updating; devices update one at a time.`, { cause: e, detail });
      }
      if (pg.constraint === ONE_OPEN_PER_DEVICE_INDEX) {
        const device = ctx.deviceId === undefined ? 'This device' : `Device ${ctx.deviceId}`;
        return new FirmwardError('conflict', `${device} already has an update that has not finished.`, { cause: e, detail });
      }
      if (pg.constraint === JOBS_PRIMARY_KEY) {
        const job = ctx.jobId === undefined ? 'This update' : `The update ${ctx.jobId}`;
        return new FirmwardError('conflict', `${job} already exists.`, { cause: e, detail });
      }
      return new FirmwardError('conflict', 'That record already exists.', { cause: e, detail });
    }
    case FOREIGN_KEY_VIOLATION:
      return new FirmwardError('not_found', 'The home or device this refers to does not exist.', { cause: e, detail });
    case SERIALIZATION_FAILURE:
    case DEADLOCK_DETECTED:
    case LOCK_NOT_AVAILABLE:
      return new FirmwardError('store_failure', 'The database is busy with another hub instance; try again in a moment.', { cause: e, detail });
    case DISK_FULL:
      return new FirmwardError('store_failure', 'The disk holding the hub\'s database is full; free some space.', { cause: e, detail });
    case TOO_MANY_CONNECTIONS:
      return new FirmwardError('store_failure', 'The database server has no connection left for the hub; raise its max_connections or run fewer hub instances.', { cause: e, detail });
    case UNDEFINED_TABLE:
      return new FirmwardError('store_failure', 'The hub\'s database has no tables yet; migrate() creates them.', { cause: e, detail });
    default:
      if (UNREACHABLE.has(pg.code)) {
        return new FirmwardError('store_failure', 'The hub could not reach its PostgreSQL database; check that it is running and that store.url is right.', { cause: e, detail });
      }
      return new FirmwardError('store_failure', 'The hub could not read or write its database.', { cause: e, detail });
  }
}
