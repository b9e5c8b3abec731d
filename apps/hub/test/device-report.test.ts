/**
 * How each device message moves a job, as a table over every job state × message (issue 18):
 * "not now" and "out of reach" wait and never fail a job, only final codes fail it, bookkeeping
 * answers change nothing but the silence deadline, and an answer to an earlier offer is stale.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JOB_STATES, newJob, transition } from '@firmward/core';
import type { Job, JobState } from '@firmward/core';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { DeviceEvent } from '@firmward/protocol';
import { deviceReport } from '../src/device-report.ts';

const NOW = Date.UTC(2026, 11, 7, 2, 0);
const CTX = { now: NOW, unreachableRetrySeconds: 60 };

function jobIn(state: JobState, offers = 2): Job {
  return { ...newJob({ id: 'job-1', homeId: 'h', deviceId: 'd', releaseId: 'r', fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 0, requestedBy: null }, NOW - 1000), state, offers };
}
const ack = (accepted: boolean, code: string | null, offerSeq?: number): DeviceEvent => ({
  v: PROTOCOL_VERSION, type: 'ack', jobId: 'job-1', accepted, code, message: code === null ? null : `said ${code}`, ...(offerSeq !== undefined && { offerSeq }),
});
const result = (outcome: 'installed' | 'failed' | 'rolled-back', code: string | null): DeviceEvent => ({
  v: PROTOCOL_VERSION, type: 'result', jobId: 'job-1', outcome, firmwareVersion: outcome === 'installed' ? '1.1.0' : '1.0.0', healthy: true, code, message: null,
});

/** What the outcome is, in one word: ignored, or the job event's type (declined events say whether they carry a retry time). */
function outcomeOf(state: JobState, event: DeviceEvent, offers = 2): string {
  const out = deviceReport(jobIn(state, offers), event, CTX);
  if ('ignored' in out) return 'ignored';
  if (out.event.type === 'declined') return out.event.retryAt ? 'retry-later' : 'wait';
  return out.event.type;
}

const ACTIVE_UP_TO_INSTALL: JobState[] = ['offered', 'downloading', 'downloaded', 'installing'];

test('the table: every state × every kind of message', () => {
  const rows: [string, DeviceEvent, (s: JobState) => string][] = [
    ['ack accepted', ack(true, null, 2), (s) => (isOpenActive(s) ? 'heard' : 'ignored')],
    ['ack not now', ack(false, 'battery_low', 2), (s) => (ACTIVE_UP_TO_INSTALL.includes(s) ? 'wait' : isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['ack out of reach', ack(false, 'repository_unreachable', 2), (s) => (ACTIVE_UP_TO_INSTALL.includes(s) ? 'retry-later' : isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['ack hub away too long', ack(false, 'hub_unreachable', 2), (s) => (ACTIVE_UP_TO_INSTALL.includes(s) ? 'retry-later' : isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['ack no verdict', ack(false, 'job_finished', 2), (s) => (isOpenActive(s) ? 'heard' : 'ignored')],
    ['ack cancel too late', ack(false, 'cancel_too_late', 2), (s) => (isOpenActive(s) ? 'heard' : 'ignored')],
    ['ack final', ack(false, 'image_hash_mismatch', 2), (s) => (isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['ack unknown code', ack(false, 'vendor_specific', 2), (s) => (isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['ack without offerSeq (another client)', ack(false, 'signature_invalid'), (s) => (isOpenActive(s) ? 'device-failed' : 'ignored')],
    ['stale ack refusal (offer 1 of 2)', ack(false, 'signature_invalid', 1), () => 'ignored'],
    ['stale ack acceptance (offer 1 of 2)', ack(true, null, 1), () => 'ignored'],
    ['ack from an offer never made (3 of 2)', ack(false, 'metadata_invalid', 3), () => 'ignored'],
    ['progress', { v: PROTOCOL_VERSION, type: 'progress', jobId: 'job-1', phase: 'downloading', percent: 10 }, (s) => (isTerminalState(s) ? 'ignored' : 'progress')],
    ['result installed', result('installed', null), (s) => (isTerminalState(s) ? 'ignored' : 'reported')],
    ['result rolled back', result('rolled-back', 'boot_failed'), (s) => (isTerminalState(s) ? 'ignored' : 'device-failed')],
    ['result failed, final', result('failed', 'image_length_mismatch'), (s) => (isTerminalState(s) ? 'ignored' : 'device-failed')],
    ['result failed, out of reach', result('failed', 'image_unavailable'), (s) => (['offered', 'downloading', 'downloaded'].includes(s) ? 'retry-later' : isTerminalState(s) ? 'ignored' : 'device-failed')],
    ['result failed, not now', result('failed', 'device_busy'), (s) => (['offered', 'downloading', 'downloaded'].includes(s) ? 'wait' : isTerminalState(s) ? 'ignored' : 'device-failed')],
  ];
  const wrong: string[] = [];
  for (const [name, event, expected] of rows) {
    for (const state of JOB_STATES) {
      const got = outcomeOf(state, event);
      if (got !== expected(state)) wrong.push(`${name} in ${state}: got ${got}, expected ${expected(state)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('a wait is only ever answered where it is a legal move of the job (the transition function agrees)', () => {
  const events = [ack(false, 'battery_low', 2), ack(false, 'repository_unreachable', 2), result('failed', 'image_unavailable'), result('failed', 'device_busy'), ack(false, 'downgrade', 2)];
  for (const state of JOB_STATES) {
    for (const event of events) {
      const out = deviceReport(jobIn(state), event, CTX);
      // Other answers in a state where they do not apply are refused by the transition function itself (illegal_transition, logged).
      if ('ignored' in out || out.event.type !== 'declined') continue;
      assert.doesNotThrow(() => transition(jobIn(state), out.event, { now: NOW, soakSeconds: 60 }), `${event.type} ${String((event as { code?: string }).code)} in ${state}`);
    }
  }
});

test('an out-of-reach refusal says so, names the retry, and keeps the job from being offered before it', () => {
  const out = deviceReport(jobIn('offered'), ack(false, 'repository_unreachable', 2), CTX);
  assert.ok(!('ignored' in out) && out.event.type === 'declined');
  assert.equal(out.event.retryAt, NOW + 60_000);
  assert.equal(out.event.reasons[0]?.code, 'repository_unreachable');
  assert.match(out.event.reasons[0]?.message ?? '', /could not get the update just now; it is offered again in about 1 min\. It said: said repository_unreachable/);
  const { job } = transition(jobIn('offered'), out.event, { now: NOW, soakSeconds: 60 });
  assert.equal(job.state, 'waiting');
  assert.equal(job.retryAt, NOW + 60_000);
  assert.equal(job.failure, null, 'nobody is blamed');
  // The next offer clears it and counts.
  const offered = transition(job, { type: 'offer', expectedDoneAt: NOW + 120_000, forcedBy: null, reasons: [] }, { now: NOW + 60_000, soakSeconds: 60 }).job;
  assert.equal(offered.retryAt, null);
  assert.equal(offered.offers, 3);
});

function isTerminalState(s: JobState): boolean {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled';
}
function isOpenActive(s: JobState): boolean {
  return ['offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming'].includes(s);
}
