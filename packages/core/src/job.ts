import { FirmwardError } from './errors.ts';
import type { Reason } from './reason.ts';
import type { EpochMs } from './time.ts';
import { SECOND_MS } from './time.ts';

/**
 * queued → waiting(reasons) → offered → downloading → downloaded → installing → rebooting →
 * confirming(soak) → succeeded | failed | cancelled.
 *
 * `downloaded` is the pause between download and install: the hub checks preflight again there
 * (invariant 3) and only then sends the install go-ahead. From `installing` on, the hub never
 * interrupts (invariant 6).
 */
export type JobState =
  | 'queued'
  | 'waiting'
  | 'offered'
  | 'downloading'
  | 'downloaded'
  | 'installing'
  | 'rebooting'
  | 'confirming'
  | 'succeeded'
  | 'failed'
  | 'cancelled';

export const JOB_STATES: readonly JobState[] = [
  'queued', 'waiting', 'offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming',
  'succeeded', 'failed', 'cancelled',
];

/** Invariant 1: at most one job per home in one of these states, ever. */
export const ACTIVE_STATES: readonly JobState[] = [
  'offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming',
];
/** Invariant 6: from here on nobody cancels. */
export const CANCELLABLE_STATES: readonly JobState[] = ['queued', 'waiting', 'offered', 'downloading', 'downloaded'];
export const TERMINAL_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export function isActive(state: JobState): boolean {
  return ACTIVE_STATES.includes(state);
}
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}
export function isCancellable(state: JobState): boolean {
  return CANCELLABLE_STATES.includes(state);
}

export type DevicePhase = 'downloading' | 'downloaded' | 'installing' | 'rebooting';

export interface JobFailure {
  code: string;
  message: string;
  /** The device is back on its previous, working version. */
  rolledBack: boolean;
}

export interface Job {
  id: string;
  homeId: string;
  deviceId: string;
  releaseId: string;
  fromVersion: string;
  targetVersion: string;
  state: JobState;
  /** Why it is waiting, why it failed, or why it was cancelled. */
  reasons: Reason[];
  /** When the waiting reasons are next worth checking. */
  recheckAt: EpochMs | null;
  /** Lower runs first: security fixes and vulnerable or retracted versions first. */
  priority: number;
  /** Started by a person's "update now" (still through every gate) rather than by policy. */
  requestedBy: string | null;
  /** A person overrode the preflight gate; recorded with who. */
  forcedBy: string | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  stateSince: EpochMs;
  /** The last time the device said anything about this job. */
  lastHeardAt: EpochMs | null;
  progressPercent: number | null;
  /** Soak ends (confirming) — success is declared only after it. */
  confirmUntil: EpochMs | null;
  /** Expected end of the whole update; past it the person is told "taking longer — leave it powered". */
  expectedDoneAt: EpochMs | null;
  failure: JobFailure | null;
  /**
   * How many times this job has been offered (0 before the first offer). Every offer and its
   * re-sends carry it, and a device's answer carries it back: an answer to an earlier offer, held
   * in a queue while the hub was away, is recognised as stale and changes nothing.
   */
  offers: number;
  /**
   * The device could not get the update because the hub, the repository or the network was out of
   * reach: it waits, blamed for nothing, and is not offered again before this.
   */
  retryAt: EpochMs | null;
}

export type JobEvent =
  /** Preflight, policy or the window says not yet. */
  | { type: 'hold'; reasons: Reason[]; recheckAt: EpochMs | null }
  /** The sequencer gives this home's single slot to this job (or a person forced it). */
  | { type: 'offer'; expectedDoneAt: EpochMs; forcedBy: string | null; reasons: Reason[] }
  /** The device reports how far it got. Phases only move forwards. */
  | { type: 'progress'; phase: DevicePhase; percent: number | null }
  /** Preflight passed again right before the install step; the go-ahead is about to be sent. */
  /** `oneStep`: the device installs as soon as its download completes (a hawkBit client); the checks ran right before the offer. */
  | { type: 'approve-install'; oneStep?: boolean }
  /** Preflight failed right before the install step: the device keeps its download, the home's slot is freed. */
  | { type: 'defer-install'; reasons: Reason[]; recheckAt: EpochMs | null }
  /**
   * The device itself said "not now" (its own preflight view, e.g. in use): back to waiting,
   * nothing installed. Also answers the install go-ahead, which a device may refuse before it
   * touches anything; the hub still never takes an install back (invariant 6).
   */
  | { type: 'declined'; reasons: Reason[]; recheckAt: EpochMs | null; retryAt?: EpochMs | null }
  /** The device reports what it runs after the restart. */
  | { type: 'reported'; version: string; healthy: boolean }
  /** Still healthy at the end of the soak. */
  | { type: 'soak-complete' }
  /** The device itself reports a failure (with or without rollback). */
  | { type: 'device-failed'; code: string; message: string; rolledBack: boolean }
  /** The device stayed silent past its deadline. Never a success. */
  | { type: 'silent'; silentForMs: number }
  /** A person (or the hub) cancels — only before the install step. */
  | { type: 'cancel'; by: string; message: string }
  /** Any message about this job: refreshes the silence deadline without changing state. */
  | { type: 'heard' };

export interface TransitionContext {
  now: EpochMs;
  soakSeconds: number;
}

export interface StateChange {
  jobId: string;
  from: JobState;
  to: JobState;
  reason: Reason;
}

export interface TransitionResult {
  job: Job;
  /** null when the event refreshed the job without changing its state. */
  change: StateChange | null;
}

const PHASE_ORDER: Record<DevicePhase, number> = { downloading: 0, downloaded: 1, installing: 2, rebooting: 3 };
const STATE_OF_PHASE: Record<DevicePhase, JobState> = {
  downloading: 'downloading',
  downloaded: 'downloaded',
  installing: 'installing',
  rebooting: 'rebooting',
};
function phaseRank(state: JobState): number {
  switch (state) {
    case 'offered': return -1;
    case 'downloading': return 0;
    case 'downloaded': return 1;
    case 'installing': return 2;
    case 'rebooting': return 3;
    default: return Number.NaN;
  }
}

function illegal(job: Job, event: JobEvent): never {
  throw new FirmwardError(
    'illegal_transition',
    `The update of ${job.deviceId} cannot go from "${job.state}" on "${event.type}".`,
    { detail: { jobId: job.id, state: job.state, event: event.type } },
  );
}

/**
 * The one transition function of the job state machine (STYLE principle 4). Pure: it returns the
 * new job and the state change to persist and emit; the caller persists before it acts.
 * Illegal events throw `illegal_transition`.
 *
 * @example
 * const { job: next, change } = transition(job, { type: 'soak-complete' }, { now, soakSeconds: 120 });
 */
export function transition(job: Job, event: JobEvent, ctx: TransitionContext): TransitionResult {
  const { now } = ctx;
  const to = (state: JobState, r: Reason, patch: Partial<Job> = {}): TransitionResult => {
    const next: Job = { ...job, ...patch, state, updatedAt: now, stateSince: state === job.state ? job.stateSince : now };
    return { job: next, change: state === job.state ? null : { jobId: job.id, from: job.state, to: state, reason: r } };
  };
  const heard: Partial<Job> = { lastHeardAt: now };

  switch (event.type) {
    case 'hold': {
      if (job.state !== 'queued' && job.state !== 'waiting') illegal(job, event);
      const first = event.reasons[0] ?? { code: 'waiting', message: 'Waiting.' };
      return to('waiting', first, { reasons: event.reasons, recheckAt: event.recheckAt });
    }
    case 'offer': {
      if (job.state !== 'queued' && job.state !== 'waiting') illegal(job, event);
      const r = event.forcedBy
        ? { code: 'forced', message: `Started by ${event.forcedBy}, who chose to skip the safety checks.` }
        : (event.reasons[0] ?? { code: 'checks_passed', message: 'Every safety check passed; the update was offered to the device.' });
      return to('offered', r, {
        reasons: event.reasons, recheckAt: null, forcedBy: event.forcedBy, expectedDoneAt: event.expectedDoneAt,
        lastHeardAt: now, progressPercent: null, offers: job.offers + 1, retryAt: null,
      });
    }
    case 'progress': {
      const rank = phaseRank(job.state);
      if (Number.isNaN(rank)) illegal(job, event);
      const wanted = PHASE_ORDER[event.phase];
      // The install step starts only with the hub's go-ahead (approve-install), never on the device's word alone.
      if (wanted >= PHASE_ORDER.installing && rank < PHASE_ORDER.installing) illegal(job, event);
      const percent = event.percent === null ? job.progressPercent : Math.max(0, Math.min(100, event.percent));
      // A phase behind the recorded one is a repeated or late message: refused, it changes nothing
      // (not even the silence deadline).
      if (wanted < rank) {
        throw new FirmwardError(
          'illegal_transition',
          `Progress "${event.phase}" for the update of ${job.deviceId} is behind its recorded state "${job.state}" (a repeated or late message); it changes nothing.`,
          { detail: { jobId: job.id, state: job.state, event: event.type } },
        );
      }
      if (wanted === rank) return to(job.state, { code: 'progress', message: 'Progress.' }, { ...heard, progressPercent: percent });
      const state = STATE_OF_PHASE[event.phase];
      return to(state, phaseReason(event.phase), { ...heard, progressPercent: percent });
    }
    case 'approve-install': {
      if (job.state !== 'downloaded') illegal(job, event);
      const reason = event.oneStep === true
        ? { code: 'install_started', message: 'The device installs right after its download (its checks passed just before the offer); it is installing. Leave it powered.' }
        : { code: 'install_approved', message: 'Checks passed again right before installing; the device is installing. Leave it powered.' };
      return to('installing', reason, { ...heard, progressPercent: 0 });
    }
    case 'defer-install': {
      if (job.state !== 'downloaded') illegal(job, event);
      const first = event.reasons[0] ?? { code: 'waiting', message: 'Waiting.' };
      return to('waiting', first, { reasons: event.reasons, recheckAt: event.recheckAt, progressPercent: null });
    }
    case 'declined': {
      // Up to the go-ahead: once the device reports rebooting, there is nothing it could decline.
      if (job.state !== 'offered' && job.state !== 'downloading' && job.state !== 'downloaded' && job.state !== 'installing') illegal(job, event);
      const first = event.reasons[0] ?? { code: 'declined', message: 'The device said not now.' };
      return to('waiting', first, { ...heard, reasons: event.reasons, recheckAt: event.recheckAt, progressPercent: null, retryAt: event.retryAt ?? null });
    }
    case 'reported': {
      if (job.state !== 'installing' && job.state !== 'rebooting' && job.state !== 'confirming') illegal(job, event);
      if (event.version === job.targetVersion && event.healthy) {
        if (job.state === 'confirming') return to('confirming', { code: 'healthy', message: 'Healthy.' }, heard);
        return to('confirming', {
          code: 'confirming',
          message: `Running ${event.version} and healthy; watching it for ${Math.round(ctx.soakSeconds / 60)} min before confirming.`,
        }, { ...heard, confirmUntil: now + ctx.soakSeconds * SECOND_MS, progressPercent: 100 });
      }
      if (job.state === 'installing' && event.version === job.fromVersion && event.healthy) {
        // Still the old version while installing: the device has not restarted yet.
        return to(job.state, { code: 'progress', message: 'Progress.' }, heard);
      }
      const failure: JobFailure = event.version === job.targetVersion
        ? { code: 'unhealthy', message: `The device runs ${event.version} but its health check fails.`, rolledBack: false }
        : { code: 'rolled_back', message: `The device came back on ${event.version} instead of ${job.targetVersion}: the new version did not start, so it went back to the old one.`, rolledBack: true };
      return to('failed', { code: failure.code, message: failure.message }, { ...heard, failure, reasons: [{ code: failure.code, message: failure.message }] });
    }
    case 'soak-complete': {
      if (job.state !== 'confirming') illegal(job, event);
      if (job.confirmUntil === null || now < job.confirmUntil) illegal(job, event);
      return to('succeeded', { code: 'confirmed', message: `Updated to ${job.targetVersion}; it stayed healthy, so the update is confirmed.` }, { reasons: [] });
    }
    case 'device-failed': {
      if (!isActive(job.state)) illegal(job, event);
      const failure: JobFailure = { code: event.code, message: event.message, rolledBack: event.rolledBack };
      return to('failed', { code: event.code, message: event.message }, { ...heard, failure, reasons: [{ code: event.code, message: event.message }] });
    }
    case 'silent': {
      if (!isActive(job.state)) illegal(job, event);
      const minutes = Math.round(event.silentForMs / 60_000);
      const message = `The device stopped answering for ${minutes} min during its update; it is not counted as updated.`;
      const failure: JobFailure = { code: 'device_silent', message, rolledBack: false };
      return to('failed', { code: 'device_silent', message }, { failure, reasons: [{ code: 'device_silent', message }] });
    }
    case 'cancel': {
      if (!isCancellable(job.state)) {
        throw new FirmwardError('cancel_too_late', `${job.deviceId} is already installing; stopping now could break it, so the update goes on.`, { detail: { jobId: job.id, state: job.state } });
      }
      return to('cancelled', { code: 'cancelled', message: event.message }, { reasons: [{ code: 'cancelled', message: event.message }] });
    }
    case 'heard': {
      if (!isActive(job.state)) return { job, change: null };
      return { job: { ...job, lastHeardAt: now, updatedAt: now }, change: null };
    }
  }
}

function phaseReason(phase: DevicePhase): Reason {
  switch (phase) {
    case 'downloading': return { code: 'downloading', message: 'Downloading the update.' };
    case 'downloaded': return { code: 'downloaded', message: 'Downloaded and verified; checking conditions once more before installing.' };
    case 'installing': return { code: 'installing', message: 'Installing. Leave it powered.' };
    case 'rebooting': return { code: 'rebooting', message: 'Restarting into the new version. Leave it powered.' };
  }
}

/** A new queued job (the planner decides which; this only fills the record). */
export function newJob(fields: Pick<Job, 'id' | 'homeId' | 'deviceId' | 'releaseId' | 'fromVersion' | 'targetVersion' | 'priority' | 'requestedBy'>, now: EpochMs): Job {
  return {
    ...fields,
    state: 'queued', reasons: [], recheckAt: null, forcedBy: null,
    createdAt: now, updatedAt: now, stateSince: now, lastHeardAt: null, progressPercent: null,
    confirmUntil: null, expectedDoneAt: null, failure: null, offers: 0, retryAt: null,
  };
}
