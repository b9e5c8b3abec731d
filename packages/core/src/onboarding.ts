/**
 * The rules of a household's setup that touch safety: when a device may leave, move or be set
 * aside, and what a home's id is. Data in, decisions out (STYLE principle 2); the hub persists.
 */
import { FirmwardError } from './errors.ts';
import { isCancellable, isTerminal } from './job.ts';
import type { Job } from './job.ts';

/** What a person does to a device (or its whole home) that ends its open update. */
export type DeviceChange = 'remove' | 'move' | 'ignore' | 'delete-home' | 'revoke';

const WHAT: Record<DeviceChange, string> = {
  remove: 'removed',
  move: 'moved to another home',
  ignore: 'set aside',
  'delete-home': 'deleted with its home',
  revoke: 'cut off from the hub',
};

/**
 * Whether a device's open update lets the change happen. Invariant 6: from the install step on,
 * the hub never takes an update away from a device — removing it, moving it, setting it aside or
 * cutting its credentials would leave an install nobody watches to the end. Before that step the
 * update is cancelled (the caller does it, and records why); afterwards the change is refused.
 *
 * @example
 * const refusal = changeRefusal('remove', 'Kitchen plug', openJob);
 * if (refusal) throw refusal;
 */
export function changeRefusal(change: DeviceChange, deviceName: string, openJob: Pick<Job, 'state' | 'targetVersion'> | null): FirmwardError | null {
  if (openJob === null || isTerminal(openJob.state) || isCancellable(openJob.state)) return null;
  return new FirmwardError(
    'update_in_progress',
    `${deviceName} is installing ${openJob.targetVersion} right now; it can be ${WHAT[change]} once that update is over (stopping it now could break the device).`,
    { detail: { change, state: openJob.state } },
  );
}

/** Why an open, not yet started update ends when a person makes the change (the history says this). */
export function cancelReason(change: DeviceChange, deviceName: string, actorName: string): string {
  switch (change) {
    case 'remove': return `Cancelled: ${actorName} removed ${deviceName} from the hub.`;
    case 'move': return `Cancelled: ${actorName} moved ${deviceName} to another home; it is planned again there.`;
    case 'ignore': return `Cancelled: ${actorName} asked Firmward to leave ${deviceName} alone.`;
    case 'delete-home': return `Cancelled: ${actorName} deleted the home.`;
    case 'revoke': return `Cancelled: ${actorName} revoked ${deviceName}'s access to the hub.`;
  }
}

const MAX_ID_LENGTH = 48;

/**
 * A home's id from its name: lower case letters, digits and dashes, unique among `taken`
 * ("Flat 3B" → "flat-3b", then "flat-3b-2"). Ids appear in commands (`firmward enroll flat-3b`),
 * so they are short and typeable; names stay free text.
 *
 * @example
 * homeIdFor('Grandma\'s house', new Set(['grandma-s-house'])) // 'grandma-s-house-2'
 */
export function homeIdFor(name: string, taken: ReadonlySet<string>): string {
  const base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, MAX_ID_LENGTH).replace(/-+$/, '') || 'home';
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base.slice(0, MAX_ID_LENGTH - String(n).length - 1)}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

/** A home's or device's name as a person gives it: trimmed, one line, 1–80 characters. */
export function checkName(what: 'home' | 'device', name: string): string {
  const trimmed = name.trim().replace(/\s+/g, ' ');
  if (trimmed === '' || trimmed.length > 80) {
    throw new FirmwardError('invalid_input', `A ${what}'s name must be 1 to 80 characters long.`);
  }
  return trimmed;
}
