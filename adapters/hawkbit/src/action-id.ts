/**
 * DDI action ids. hawkBit numbers its actions, and SWUpdate reads the id with
 * `json_object_get_int` and echoes it in every feedback URL, so a job id (a UUID) cannot be used
 * as it is. The id is derived from the job id alone — no table to keep — so the same job has the
 * same action id after a hub restart, when the engine hands the running job back (restore).
 */
import { createHash } from 'node:crypto';

/** The largest id SWUpdate reads back unchanged (a signed 32-bit int). */
const MAX_ACTION_ID = 0x7fff_ffff;

/**
 * A stable positive 31-bit integer for a job id. Two jobs of one device colliding would need a
 * 1-in-2³¹ coincidence; the gateway keys everything by device first, so a collision between
 * different devices is harmless.
 *
 * @example
 * actionIdOf('0b6f3c9e-5d8a-4c3e-9a55-3f1d2b7c8e90'); // e.g. 1843377211, the same on every call
 */
export function actionIdOf(jobId: string): number {
  const digest = createHash('sha256').update(jobId, 'utf8').digest();
  const id = digest.readUInt32BE(0) & MAX_ACTION_ID;
  // 0 reads as "no action" in some clients (json_object_get_int of a missing field).
  return id === 0 ? 1 : id;
}

/** The action id of a URL path segment, or null when it is not one this gateway could have made. */
export function parseActionId(text: string): number | null {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
  const id = Number(text);
  return id <= MAX_ACTION_ID ? id : null;
}
