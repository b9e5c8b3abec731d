/**
 * Turns node:sqlite errors into FirmwardErrors (STYLE principle 7). The two partial unique indexes
 * on jobs are how the database itself refuses a second active update in a home (invariant 1) and a
 * second open job for a device; callers see `home_busy` and `conflict`, never a raw SQLite error.
 */
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { ONE_ACTIVE_PER_HOME_INDEX, ONE_OPEN_PER_DEVICE_INDEX } from './schema.ts';

interface SqliteError {
  message: string;
  code: 'ERR_SQLITE_ERROR';
  /** Extended result code. */
  errcode: number;
}

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_FULL = 13;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

function isSqliteError(e: unknown): e is SqliteError {
  return e instanceof Error && (e as Partial<SqliteError>).code === 'ERR_SQLITE_ERROR' && typeof (e as Partial<SqliteError>).errcode === 'number';
}

/**
 * Which job index a UNIQUE violation came from. SQLite names the columns of a plain-column index
 * ("UNIQUE constraint failed: jobs.home_id") and the index itself for expression indexes, so both
 * spellings are recognised.
 */
function uniqueTarget(message: string): 'home' | 'device' | 'job' | 'other' {
  if (message.includes('jobs.home_id') || message.includes(ONE_ACTIVE_PER_HOME_INDEX)) return 'home';
  if (message.includes('jobs.device_id') || message.includes(ONE_OPEN_PER_DEVICE_INDEX)) return 'device';
  if (message.includes('jobs.id')) return 'job';
  return 'other';
}

/** What the caller was doing, for the sentence and the detail. */
export interface ErrorContext {
  op: string;
  homeId?: string;
  deviceId?: string;
  jobId?: string;
}

export function mapSqliteError(e: unknown, ctx: ErrorContext): FirmwardError {
  if (isFirmwardError(e)) return e;
  const detail: Record<string, unknown> = { ...ctx };
  if (!isSqliteError(e)) {
    return new FirmwardError('store_failure', 'The hub could not read or write its database.', { cause: e, detail });
  }
  detail.sqliteCode = e.errcode;
  switch (e.errcode) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: {
      const target = uniqueTarget(e.message);
      if (target === 'home') {
        const home = ctx.homeId === undefined ? 'this home' : `home ${ctx.homeId}`;
        return new FirmwardError('home_busy', `Another device in ${home} is already updating; devices update one at a time.`, { cause: e, detail });
      }
      if (target === 'device') {
        const device = ctx.deviceId === undefined ? 'This device' : `Device ${ctx.deviceId}`;
        return new FirmwardError('conflict', `${device} already has an update that has not finished.`, { cause: e, detail });
      }
      if (target === 'job') {
        const job = ctx.jobId === undefined ? 'This update' : `The update ${ctx.jobId}`;
        return new FirmwardError('conflict', `${job} already exists.`, { cause: e, detail });
      }
      return new FirmwardError('conflict', 'That record already exists.', { cause: e, detail });
    }
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return new FirmwardError('not_found', 'The home or device this refers to does not exist.', { cause: e, detail });
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return new FirmwardError('store_failure', 'The database is busy with another hub process; try again in a moment.', { cause: e, detail });
    case SQLITE_FULL:
      return new FirmwardError('store_failure', 'The disk holding the hub\'s database is full; free some space.', { cause: e, detail });
    default:
      // Extended codes carry the primary code in their low byte.
      if ((e.errcode & 0xff) === SQLITE_BUSY) {
        return new FirmwardError('store_failure', 'The database is busy with another hub process; try again in a moment.', { cause: e, detail });
      }
      return new FirmwardError('store_failure', 'The hub could not read or write its database.', { cause: e, detail });
  }
}
