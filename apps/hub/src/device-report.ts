/**
 * How a device's acknowledgement, progress or result becomes an event of its job — or why it
 * changes nothing. Pure: the engine applies what this returns under the home's lock.
 *
 * What a refusal or failure means is decided once, by its code (packages/protocol device-codes.ts):
 * "not now" and "could not reach the hub or the repository" send the job back to waiting and never
 * fail it; only what the device verified to be wrong, or an install or boot that failed, ends it.
 * An answer to an earlier offer of the job (its offerSeq is behind the job's) is stale — held in a
 * device's queue while the hub was away — and changes nothing.
 */
import { isActive, isTerminal, SECOND_MS } from '@firmward/core';
import type { EpochMs, Job, JobEvent, JobState } from '@firmward/core';
import { deviceCodeKind } from '@firmward/protocol';
import type { DeviceEvent } from '@firmward/protocol';

export interface DeviceReportContext {
  now: EpochMs;
  /** A job the device could not get because something was out of reach is offered again after this long. */
  unreachableRetrySeconds: number;
}

/** The job event, or the sentence saying why the message changes nothing (logged, never dropped silently). */
export type DeviceReportOutcome = { event: JobEvent } | { ignored: string };

/** Up to the install go-ahead the device has touched nothing: a "not now" or "out of reach" simply waits. */
const MAY_WAIT_ON_ACK: readonly JobState[] = ['offered', 'downloading', 'downloaded', 'installing'];
/** A result saying "nothing was installed" is a wait only before the install step began. */
const MAY_WAIT_ON_RESULT: readonly JobState[] = ['offered', 'downloading', 'downloaded'];

/**
 * @example
 * deviceReport(offeredJob, { v: 1, type: 'ack', jobId, accepted: false, code: 'repository_unreachable', message: '…', offerSeq: 1 }, ctx);
 * // { event: { type: 'declined', reasons: [{ code: 'repository_unreachable', … }], recheckAt: now + 60 s } }
 */
export function deviceReport(job: Job, event: DeviceEvent, ctx: DeviceReportContext): DeviceReportOutcome {
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
      const kind = deviceCodeKind(code);
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
          const kind = deviceCodeKind(code);
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
