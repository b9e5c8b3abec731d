/**
 * How a device's message becomes an event of its job — or why it changes nothing. Pure: the
 * engine reads, calls these, and applies what they return under the home's lock.
 *
 * Two kinds of message: an acknowledgement, progress or result about one job (`deviceReport`),
 * and the retained state report, which says what the device runs and which job it works on
 * (`deviceStateReport`; it tells the truth a lost event would have told).
 *
 * What a refusal or failure means is decided once, by its code (packages/protocol device-codes.ts):
 * "not now" and "could not reach the hub or the repository" send the job back to waiting and never
 * fail it; only what the device verified to be wrong, or an install or boot that failed, ends it.
 * An answer to an earlier offer of the job (its offerSeq is behind the job's) is stale — held in a
 * device's queue while the hub was away — and changes nothing.
 *
 * Layers (docs/design.md, "Dependencies point inwards"): the core depends on no other package of
 * ours, so it does not import the wire contract. The messages below are the few fields this module
 * reads, declared structurally: the parsed messages of @firmward/protocol (DeviceEvent,
 * DeviceState) are assignable to them as they are, and a change to the wire that drops or retypes
 * one of these fields is a type error where the hub passes them in. The table of device codes stays
 * in the protocol, where the agent and the bridges read it too; its meaning reaches the core as
 * `codeKind` in the context, so there is one table, not a copy.
 */
import { isActive, isTerminal } from './job.ts';
import type { DevicePhase, Job, JobEvent, JobState } from './job.ts';
import type { EpochMs } from './time.ts';
import { SECOND_MS } from './time.ts';

/**
 * What a device's code means for its update (the protocol's `DeviceCodeKind`, same four values):
 * wait for the device, wait and retry soon, no verdict at all, or the update has failed.
 */
export type DeviceCodeKind = 'not_now' | 'unreachable' | 'no_verdict' | 'final';

/** A device's answer to an offer or an install go-ahead (protocol: ackEventSchema). */
export interface DeviceAckMessage {
  type: 'ack';
  accepted: boolean;
  code: string | null;
  message: string | null;
  /** Which offer of the job this answers; absent from a client that does not number them. */
  offerSeq?: number | undefined;
}

/** How far the device got (protocol: progressEventSchema). */
export interface DeviceProgressMessage {
  type: 'progress';
  phase: DevicePhase;
  percent: number | null;
}

/** How the update ended on the device (protocol: resultEventSchema). */
export interface DeviceResultMessage {
  type: 'result';
  outcome: 'installed' | 'rolled-back' | 'failed';
  firmwareVersion: string;
  healthy: boolean;
  code: string | null;
  message: string | null;
}

/** A device's message about one of its jobs. */
export type DeviceJobMessage = DeviceAckMessage | DeviceProgressMessage | DeviceResultMessage;

/** The phase a device's retained state gives for the job it works on; 'idle': it holds the job but does nothing with it. */
export type DeviceJobPhase = DevicePhase | 'idle';

/** What `deviceStateReport` reads of a device's retained state report (protocol: deviceStateSchema). */
export interface DeviceStateMessage {
  firmwareVersion: string;
  healthy: boolean;
  /** The update the device works on, if any. */
  job: { jobId: string; phase: DeviceJobPhase } | null;
}

export interface DeviceReportContext {
  now: EpochMs;
  /** A job the device could not get because something was out of reach is offered again after this long. */
  unreachableRetrySeconds: number;
  /** What a code means (the protocol's `deviceCodeKind`: a code outside its table is final). */
  codeKind: (code: string) => DeviceCodeKind;
}

/** The job event, or the sentence saying why the message changes nothing (logged, never dropped silently). */
export type DeviceReportOutcome = { event: JobEvent } | { ignored: string };

/** Up to the install go-ahead the device has touched nothing: a "not now" or "out of reach" simply waits. */
const MAY_WAIT_ON_ACK: readonly JobState[] = ['offered', 'downloading', 'downloaded', 'installing'];
/** A result saying "nothing was installed" is a wait only before the install step began. */
const MAY_WAIT_ON_RESULT: readonly JobState[] = ['offered', 'downloading', 'downloaded'];

/**
 * @example
 * deviceReport(offeredJob, { type: 'ack', accepted: false, code: 'repository_unreachable', message: '…', offerSeq: 1 }, ctx);
 * // { event: { type: 'declined', reasons: [{ code: 'repository_unreachable', … }], recheckAt: now + 60 s, retryAt: now + 60 s } }
 */
export function deviceReport(job: Job, event: DeviceJobMessage, ctx: DeviceReportContext): DeviceReportOutcome {
  if (isTerminal(job.state)) return { ignored: `update ${job.id} already ended (${job.state}); this ${event.type} changes nothing` };
  switch (event.type) {
    case 'ack': {
      if (event.offerSeq !== undefined && event.offerSeq !== job.offers) {
        return { ignored: `this ack answers offer ${event.offerSeq} of update ${job.id}, which is now at offer ${job.offers}; it changes nothing` };
      }
      if (!isActive(job.state)) return { ignored: `update ${job.id} is ${job.state}, not running on the device; this ack changes nothing` };
      if (event.accepted) return { event: { type: 'heard' } };
      const code = event.code ?? 'declined';
      const message = event.message ?? 'The device refused the update.';
      const kind = ctx.codeKind(code);
      // The device goes on with what it was doing (a cancel too late, a result sent again): still working on this job.
      if (kind === 'no_verdict') return { event: { type: 'heard' } };
      if (kind !== 'final' && MAY_WAIT_ON_ACK.includes(job.state)) return { event: waiting(code, message, kind, ctx) };
      return { event: { type: 'device-failed', code, message: `The device refused the update: ${message}`, rolledBack: false } };
    }
    case 'progress':
      // A phase behind the recorded one is refused by the transition function (illegal_transition).
      return { event: { type: 'progress', phase: event.phase, percent: event.percent } };
    case 'result':
      switch (event.outcome) {
        case 'installed':
          return { event: { type: 'reported', version: event.firmwareVersion, healthy: event.healthy } };
        case 'rolled-back':
          return { event: { type: 'device-failed', code: event.code ?? 'rolled_back', message: event.message ?? `The new version did not start properly, so the device went back to ${event.firmwareVersion} by itself.`, rolledBack: true } };
        case 'failed': {
          const code = event.code ?? 'failed';
          const message = event.message ?? 'The device could not install the update; nothing was changed.';
          const kind = ctx.codeKind(code);
          if ((kind === 'not_now' || kind === 'unreachable') && MAY_WAIT_ON_RESULT.includes(job.state)) return { event: waiting(code, message, kind, ctx) };
          return { event: { type: 'device-failed', code, message, rolledBack: false } };
        }
      }
  }
}

function waiting(code: string, message: string, kind: 'not_now' | 'unreachable', ctx: DeviceReportContext): JobEvent {
  if (kind === 'not_now') return { type: 'declined', reasons: [{ code, message: `The device said not now: ${message}` }], recheckAt: null };
  const minutes = Math.max(1, Math.round(ctx.unreachableRetrySeconds / 60));
  const retryAt = ctx.now + ctx.unreachableRetrySeconds * SECOND_MS;
  return {
    type: 'declined',
    reasons: [{ code, message: `The device could not get the update just now; it is offered again in about ${minutes} min. It said: ${message}` }],
    recheckAt: retryAt,
    retryAt,
  };
}

// ── the retained state report ───────────────────────────────────────────────────────────────

export interface DeviceStateContext {
  /**
   * Whether the home of an active job was found. The engine reads the home only for an active job
   * (most reports are plain telemetry); a job whose home is gone is one the hub no longer runs.
   */
  homeFound: boolean;
}

/**
 * What a device's state report means for its open job:
 * - `event`: apply it to the job (as the device's word);
 * - `resend-install`: the device still waits for the install go-ahead the job says was sent (it is
 *   idempotent; send it again, nothing to persist);
 * - `cancel-on-device`: the device works on a job the hub no longer runs — tell it to stop;
 * - `none`: nothing to do, and why.
 */
export type DeviceStateOutcome =
  | { kind: 'event'; event: JobEvent }
  | { kind: 'resend-install' }
  | { kind: 'cancel-on-device'; jobId: string; message: string }
  | { kind: 'none'; why: string };

/** The sentence a device is told with the cancel of a job the hub no longer runs. */
export const NO_LONGER_WANTED = 'This update is no longer wanted.';

/**
 * `job` is the device's open job (queued to confirming), if it has one. The rules, first match wins:
 *
 * | job                    | device's state                                   | outcome                      |
 * |------------------------|--------------------------------------------------|------------------------------|
 * | none, not active, or its home gone | works on another job, before installing | cancel that job on the device |
 * | none, not active, or its home gone | anything else                     | none                         |
 * | installing, rebooting  | idle, a version other than the job's old one     | reported (the lost result)   |
 * | rebooting              | idle, the job's old version                      | reported (it came back old)  |
 * | confirming             | unhealthy, or not the job's target version       | reported                     |
 * | installing             | this job, downloaded                             | resend-install               |
 * | offered, downloading   | this job, downloading or downloaded              | progress (a lost progress)   |
 * | active                 | this job (any phase); or the job is confirming   | heard                        |
 * | active                 | anything else                                    | none                         |
 *
 * "Idle" is no job or the phase 'idle'. A device installing or rebooting is never told to cancel
 * (invariant 6: from the install step on nobody interrupts), nor one idle on a job it holds.
 *
 * @example
 * deviceStateReport(installingJob, { firmwareVersion: '1.1.0', healthy: true, job: null }, { homeFound: true });
 * // { kind: 'event', event: { type: 'reported', version: '1.1.0', healthy: true } }
 */
export function deviceStateReport(job: Job | undefined, state: DeviceStateMessage, ctx: DeviceStateContext): DeviceStateOutcome {
  const working = state.job;
  if (!job || !isActive(job.state) || !ctx.homeFound) {
    const why = !job ? 'no open update' : !isActive(job.state) ? `update ${job.id} is ${job.state}, not running on the device` : `the home of update ${job.id} is gone`;
    // The device works on a job the hub no longer runs (cancelled while the hub was away): tell it again.
    if (working && working.phase !== 'installing' && working.phase !== 'rebooting' && working.phase !== 'idle' && (!job || job.id !== working.jobId)) {
      return { kind: 'cancel-on-device', jobId: working.jobId, message: NO_LONGER_WANTED };
    }
    return { kind: 'none', why: `${why}; the report is telemetry only` };
  }
  const reported: DeviceStateOutcome = { kind: 'event', event: { type: 'reported', version: state.firmwareVersion, healthy: state.healthy } };
  const idle = working === null || working.phase === 'idle';
  const onThisJob = working?.jobId === job.id;
  // The result event may be lost; the retained state tells the same truth.
  if ((job.state === 'installing' || job.state === 'rebooting') && idle && state.firmwareVersion !== job.fromVersion) return reported;
  if (job.state === 'rebooting' && idle && state.firmwareVersion === job.fromVersion) return reported;
  if (job.state === 'confirming' && (!state.healthy || state.firmwareVersion !== job.targetVersion)) return reported;
  // The go-ahead did not arrive; it is idempotent, send it again.
  if (job.state === 'installing' && onThisJob && working.phase === 'downloaded') return { kind: 'resend-install' };
  if ((job.state === 'offered' || job.state === 'downloading') && onThisJob && (working.phase === 'downloading' || working.phase === 'downloaded')) {
    // A progress event lost in a hub or broker restart: the retained state says how far the download got.
    return { kind: 'event', event: { type: 'progress', phase: working.phase, percent: null } };
  }
  if (onThisJob || job.state === 'confirming') return { kind: 'event', event: { type: 'heard' } };
  return { kind: 'none', why: `update ${job.id} is ${job.state} and the device reports ${working === null ? 'no job' : `${working.phase} on ${working.jobId}`}: nothing to move` };
}
