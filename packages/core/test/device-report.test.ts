/**
 * How each device message moves a job, as tables written out by hand (issue 13; first in the hub,
 * issue 18): "not now" and "out of reach" wait and never fail a job, only final codes fail it,
 * bookkeeping answers change nothing but the silence deadline, an answer to an earlier offer is
 * stale, and a state report tells what a lost event would have told.
 *
 * The expected outcomes are literal tables, one column per job state: change a rule and a cell
 * here must change with it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JOB_STATES, deviceReport, deviceStateReport, newJob, transition } from '../src/index.ts';
import type { DeviceCodeKind, DeviceJobMessage, DeviceJobPhase, DeviceStateMessage, Job, JobState } from '../src/index.ts';

const NOW = Date.UTC(2026, 11, 7, 2, 0);
const FROM = '1.0.0';
const TARGET = '1.1.0';
const OTHER = '0.9.0';

/**
 * The few codes these tables use, one or more of each kind. The real table (and "a code outside it
 * is final") is packages/protocol device-codes.ts, pinned code by code in its own test; the core
 * takes its meaning through the context and does not import the wire contract.
 */
const KINDS: Readonly<Record<string, DeviceCodeKind>> = {
  battery_low: 'not_now', device_busy: 'not_now',
  repository_unreachable: 'unreachable', hub_unreachable: 'unreachable', image_unavailable: 'unreachable',
  job_finished: 'no_verdict', cancel_too_late: 'no_verdict', not_running: 'no_verdict',
  image_hash_mismatch: 'final', image_length_mismatch: 'final', signature_invalid: 'final', metadata_invalid: 'final',
  boot_failed: 'final', downgrade: 'final', declined: 'final', failed: 'final',
};
const codeKind = (code: string): DeviceCodeKind => KINDS[code] ?? 'final';
const CTX = { now: NOW, unreachableRetrySeconds: 60, codeKind };

function jobIn(state: JobState, offers = 2): Job {
  return { ...newJob({ id: 'job-1', homeId: 'h', deviceId: 'd', releaseId: 'r', fromVersion: FROM, targetVersion: TARGET, priority: 0, requestedBy: null }, NOW - 1000), state, offers };
}
const ack = (accepted: boolean, code: string | null, offerSeq?: number): DeviceJobMessage => ({
  type: 'ack', accepted, code, message: code === null ? null : `said ${code}`, ...(offerSeq !== undefined && { offerSeq }),
});
const progress = (phase: 'downloading' | 'downloaded' | 'installing' | 'rebooting'): DeviceJobMessage => ({ type: 'progress', phase, percent: 10 });
const result = (outcome: 'installed' | 'failed' | 'rolled-back', code: string | null): DeviceJobMessage => ({
  type: 'result', outcome, firmwareVersion: outcome === 'installed' ? TARGET : FROM, healthy: true, code, message: null,
});

/**
 * One word per outcome: `-` the message changes nothing (ignored, with its sentence); `wait` back to
 * waiting, no retry time (not now); `retry` back to waiting until a retry time (out of reach);
 * `fail` the update failed; `rolled-back` it failed and the device is on its old version; otherwise
 * the job event's type.
 */
function outcomeOf(state: JobState, message: DeviceJobMessage): string {
  const out = deviceReport(jobIn(state), message, CTX);
  if ('ignored' in out) return '-';
  switch (out.event.type) {
    case 'declined': return out.event.retryAt ? 'retry' : 'wait';
    case 'device-failed': return out.event.rolledBack ? 'rolled-back' : 'fail';
    default: return out.event.type;
  }
}

/** A table's first line names its columns; the first cell of every other line names its row. */
function parseTable(text: string): { columns: string[]; rows: [string, string[]][] } {
  const lines = text.trim().split('\n').map((line) => line.trim().split(/\s+/));
  const [header, ...rest] = lines;
  return { columns: header!.slice(1), rows: rest.map((cells) => [cells[0]!, cells.slice(1)]) };
}

// The job is at offer 2. Columns are every job state, in order.
const MESSAGES: Record<string, DeviceJobMessage> = {
  'ack-accepted': ack(true, null, 2),
  'ack-not-now': ack(false, 'battery_low', 2),
  'ack-out-of-reach': ack(false, 'repository_unreachable', 2),
  'ack-hub-away-too-long': ack(false, 'hub_unreachable', 2),
  'ack-no-verdict': ack(false, 'job_finished', 2),
  'ack-cancel-too-late': ack(false, 'cancel_too_late', 2),
  'ack-final': ack(false, 'image_hash_mismatch', 2),
  'ack-unknown-code': ack(false, 'vendor_specific', 2),
  'ack-no-code': ack(false, null, 2),
  'ack-without-offerSeq': ack(false, 'signature_invalid'),
  'ack-accepted-without-offerSeq': ack(true, null),
  'stale-ack-refusal(1/2)': ack(false, 'signature_invalid', 1),
  'stale-ack-acceptance(1/2)': ack(true, null, 1),
  'stale-ack-not-now(1/2)': ack(false, 'battery_low', 1),
  'ack-never-offered(3/2)': ack(false, 'metadata_invalid', 3),
  'progress-downloading': progress('downloading'),
  'progress-downloaded': progress('downloaded'),
  'progress-installing': progress('installing'),
  'progress-rebooting': progress('rebooting'),
  'result-installed': result('installed', null),
  'result-rolled-back': result('rolled-back', 'boot_failed'),
  'result-rolled-back-no-code': result('rolled-back', null),
  'result-failed-not-now': result('failed', 'device_busy'),
  'result-failed-out-of-reach': result('failed', 'image_unavailable'),
  'result-failed-no-verdict': result('failed', 'not_running'),
  'result-failed-final': result('failed', 'image_length_mismatch'),
  'result-failed-unknown-code': result('failed', 'vendor_specific'),
  'result-failed-no-code': result('failed', null),
};

const REPORT_TABLE = `
  message                        queued    waiting   offered   downloading downloaded installing rebooting confirming succeeded failed cancelled
  ack-accepted                   -         -         heard     heard       heard      heard      heard     heard      -         -      -
  ack-not-now                    -         -         wait      wait        wait       wait       fail      fail       -         -      -
  ack-out-of-reach               -         -         retry     retry       retry      retry      fail      fail       -         -      -
  ack-hub-away-too-long          -         -         retry     retry       retry      retry      fail      fail       -         -      -
  ack-no-verdict                 -         -         heard     heard       heard      heard      heard     heard      -         -      -
  ack-cancel-too-late            -         -         heard     heard       heard      heard      heard     heard      -         -      -
  ack-final                      -         -         fail      fail        fail       fail       fail      fail       -         -      -
  ack-unknown-code               -         -         fail      fail        fail       fail       fail      fail       -         -      -
  ack-no-code                    -         -         fail      fail        fail       fail       fail      fail       -         -      -
  ack-without-offerSeq           -         -         fail      fail        fail       fail       fail      fail       -         -      -
  ack-accepted-without-offerSeq  -         -         heard     heard       heard      heard      heard     heard      -         -      -
  stale-ack-refusal(1/2)         -         -         -         -           -          -          -         -          -         -      -
  stale-ack-acceptance(1/2)      -         -         -         -           -          -          -         -          -         -      -
  stale-ack-not-now(1/2)         -         -         -         -           -          -          -         -          -         -      -
  ack-never-offered(3/2)         -         -         -         -           -          -          -         -          -         -      -
  progress-downloading           progress  progress  progress  progress    progress   progress   progress  progress   -         -      -
  progress-downloaded            progress  progress  progress  progress    progress   progress   progress  progress   -         -      -
  progress-installing            progress  progress  progress  progress    progress   progress   progress  progress   -         -      -
  progress-rebooting             progress  progress  progress  progress    progress   progress   progress  progress   -         -      -
  result-installed               reported  reported  reported  reported    reported   reported   reported  reported   -         -      -
  result-rolled-back             rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back - - -
  result-rolled-back-no-code     rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back rolled-back - - -
  result-failed-not-now          fail      fail      wait      wait        wait       fail       fail      fail       -         -      -
  result-failed-out-of-reach     fail      fail      retry     retry       retry      fail       fail      fail       -         -      -
  result-failed-no-verdict       fail      fail      fail      fail        fail       fail       fail      fail       -         -      -
  result-failed-final            fail      fail      fail      fail        fail       fail       fail      fail       -         -      -
  result-failed-unknown-code     fail      fail      fail      fail        fail       fail       fail      fail       -         -      -
  result-failed-no-code          fail      fail      fail      fail        fail       fail       fail      fail       -         -      -
`;

test('deviceReport, the table: every job state × every kind of message', () => {
  const { columns, rows } = parseTable(REPORT_TABLE);
  assert.deepEqual(columns, JOB_STATES, 'one column per job state, in order');
  assert.deepEqual(rows.map(([name]) => name).sort(), Object.keys(MESSAGES).sort(), 'one row per message');
  const wrong: string[] = [];
  for (const [name, expected] of rows) {
    JOB_STATES.forEach((state, i) => {
      const got = outcomeOf(state, MESSAGES[name]!);
      if (got !== expected[i]) wrong.push(`${name} in ${state}: got ${got}, expected ${expected[i]}`);
    });
  }
  assert.deepEqual(wrong, []);
});

test('deviceReport: what an event carries — the device\'s code and sentence, or the default for a missing one', () => {
  const refused = deviceReport(jobIn('downloading'), ack(false, 'image_hash_mismatch', 2), CTX);
  assert.deepEqual(refused, { event: { type: 'device-failed', code: 'image_hash_mismatch', message: 'The device refused the update: said image_hash_mismatch', rolledBack: false } });
  const noCode = deviceReport(jobIn('downloading'), ack(false, null, 2), CTX);
  assert.deepEqual(noCode, { event: { type: 'device-failed', code: 'declined', message: 'The device refused the update: The device refused the update.', rolledBack: false } });
  const notNow = deviceReport(jobIn('offered'), ack(false, 'battery_low', 2), CTX);
  assert.deepEqual(notNow, { event: { type: 'declined', reasons: [{ code: 'battery_low', message: 'The device said not now: said battery_low' }], recheckAt: null } });
  const rolledBack = deviceReport(jobIn('rebooting'), result('rolled-back', null), CTX);
  assert.deepEqual(rolledBack, { event: { type: 'device-failed', code: 'rolled_back', message: `The new version did not start properly, so the device went back to ${FROM} by itself.`, rolledBack: true } });
  const failed = deviceReport(jobIn('installing'), result('failed', null), CTX);
  assert.deepEqual(failed, { event: { type: 'device-failed', code: 'failed', message: 'The device could not install the update; nothing was changed.', rolledBack: false } });
  assert.deepEqual(deviceReport(jobIn('rebooting'), result('installed', null), CTX), { event: { type: 'reported', version: TARGET, healthy: true } });
  assert.deepEqual(deviceReport(jobIn('downloading'), progress('downloaded'), CTX), { event: { type: 'progress', phase: 'downloaded', percent: 10 } });
});

test('deviceReport: a message that changes nothing says why', () => {
  const ended = deviceReport(jobIn('succeeded'), ack(true, null, 2), CTX);
  assert.deepEqual(ended, { ignored: 'update job-1 already ended (succeeded); this ack changes nothing' });
  const stale = deviceReport(jobIn('offered'), ack(false, 'signature_invalid', 1), CTX);
  assert.deepEqual(stale, { ignored: 'this ack answers offer 1 of update job-1, which is now at offer 2; it changes nothing' });
  const notRunning = deviceReport(jobIn('waiting'), ack(true, null, 2), CTX);
  assert.deepEqual(notRunning, { ignored: 'update job-1 is waiting, not running on the device; this ack changes nothing' });
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

// ── the retained state report ───────────────────────────────────────────────────────────────

/** The job the device's state names: rows `x` are about the open job (job-1), rows `other x` about another (job-0). */
const DEVICE_JOBS: Record<string, DeviceStateMessage['job']> = {
  'no-job': null,
  ...Object.fromEntries((['idle', 'downloading', 'downloaded', 'installing', 'rebooting'] as DeviceJobPhase[]).flatMap((phase) => [
    [phase, { jobId: 'job-1', phase }],
    [`other-${phase}`, { jobId: 'job-0', phase }],
  ])),
};
/** Columns: the version the device runs (the job's old one, another, the job's target) × healthy (+) or not (−). */
const VERSIONS: Record<string, { firmwareVersion: string; healthy: boolean }> = {
  'from+': { firmwareVersion: FROM, healthy: true }, 'from-': { firmwareVersion: FROM, healthy: false },
  'other+': { firmwareVersion: OTHER, healthy: true }, 'other-': { firmwareVersion: OTHER, healthy: false },
  'target+': { firmwareVersion: TARGET, healthy: true }, 'target-': { firmwareVersion: TARGET, healthy: false },
};

/**
 * One word per outcome: `-` nothing to do; `cancel` tell the device to cancel job-0, `cancel-1`
 * job-1; `resend` the install go-ahead again; `reported`, `heard`, `progress:<phase>` the event.
 */
function stateOutcomeOf(job: Job | undefined, state: DeviceStateMessage, homeFound = true): string {
  const out = deviceStateReport(job, state, { homeFound });
  switch (out.kind) {
    case 'none': return '-';
    case 'resend-install': return 'resend';
    case 'cancel-on-device': return out.jobId === 'job-0' ? 'cancel' : 'cancel-1';
    case 'event': return out.event.type === 'progress' ? `progress:${out.event.phase}` : out.event.type;
  }
}

/** For each group of cases, one grid: rows are what the device works on, columns its version and health. */
const STATE_TABLES: { cases: string; job: (state: JobState) => Job | undefined; states: readonly JobState[]; homeFound: boolean; table: string }[] = [
  {
    cases: 'no open job', job: () => undefined, states: ['queued'], homeFound: false,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         -         -         -         -
      idle              -         -         -         -         -         -
      downloading       cancel-1  cancel-1  cancel-1  cancel-1  cancel-1  cancel-1
      downloaded        cancel-1  cancel-1  cancel-1  cancel-1  cancel-1  cancel-1
      installing        -         -         -         -         -         -
      rebooting         -         -         -         -         -         -
      other-idle        -         -         -         -         -         -
      other-downloading cancel    cancel    cancel    cancel    cancel    cancel
      other-downloaded  cancel    cancel    cancel    cancel    cancel    cancel
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'an open job not running on the device', job: jobIn, states: ['queued', 'waiting', 'succeeded', 'failed', 'cancelled'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         -         -         -         -
      idle              -         -         -         -         -         -
      downloading       -         -         -         -         -         -
      downloaded        -         -         -         -         -         -
      installing        -         -         -         -         -         -
      rebooting         -         -         -         -         -         -
      other-idle        -         -         -         -         -         -
      other-downloading cancel    cancel    cancel    cancel    cancel    cancel
      other-downloaded  cancel    cancel    cancel    cancel    cancel    cancel
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'a running job whose home is gone', job: jobIn, states: ['offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming'], homeFound: false,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         -         -         -         -
      idle              -         -         -         -         -         -
      downloading       -         -         -         -         -         -
      downloaded        -         -         -         -         -         -
      installing        -         -         -         -         -         -
      rebooting         -         -         -         -         -         -
      other-idle        -         -         -         -         -         -
      other-downloading cancel    cancel    cancel    cancel    cancel    cancel
      other-downloaded  cancel    cancel    cancel    cancel    cancel    cancel
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'offered or downloading', job: jobIn, states: ['offered', 'downloading'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         -         -         -         -
      idle              heard     heard     heard     heard     heard     heard
      downloading       progress:downloading progress:downloading progress:downloading progress:downloading progress:downloading progress:downloading
      downloaded        progress:downloaded  progress:downloaded  progress:downloaded  progress:downloaded  progress:downloaded  progress:downloaded
      installing        heard     heard     heard     heard     heard     heard
      rebooting         heard     heard     heard     heard     heard     heard
      other-idle        -         -         -         -         -         -
      other-downloading -         -         -         -         -         -
      other-downloaded  -         -         -         -         -         -
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'downloaded (waiting for the go-ahead)', job: jobIn, states: ['downloaded'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         -         -         -         -
      idle              heard     heard     heard     heard     heard     heard
      downloading       heard     heard     heard     heard     heard     heard
      downloaded        heard     heard     heard     heard     heard     heard
      installing        heard     heard     heard     heard     heard     heard
      rebooting         heard     heard     heard     heard     heard     heard
      other-idle        -         -         -         -         -         -
      other-downloading -         -         -         -         -         -
      other-downloaded  -         -         -         -         -         -
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'installing', job: jobIn, states: ['installing'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            -         -         reported  reported  reported  reported
      idle              heard     heard     reported  reported  reported  reported
      downloading       heard     heard     heard     heard     heard     heard
      downloaded        resend    resend    resend    resend    resend    resend
      installing        heard     heard     heard     heard     heard     heard
      rebooting         heard     heard     heard     heard     heard     heard
      other-idle        -         -         reported  reported  reported  reported
      other-downloading -         -         -         -         -         -
      other-downloaded  -         -         -         -         -         -
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'rebooting', job: jobIn, states: ['rebooting'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            reported  reported  reported  reported  reported  reported
      idle              reported  reported  reported  reported  reported  reported
      downloading       heard     heard     heard     heard     heard     heard
      downloaded        heard     heard     heard     heard     heard     heard
      installing        heard     heard     heard     heard     heard     heard
      rebooting         heard     heard     heard     heard     heard     heard
      other-idle        reported  reported  reported  reported  reported  reported
      other-downloading -         -         -         -         -         -
      other-downloaded  -         -         -         -         -         -
      other-installing  -         -         -         -         -         -
      other-rebooting   -         -         -         -         -         -`,
  },
  {
    cases: 'confirming (soaking)', job: jobIn, states: ['confirming'], homeFound: true,
    table: `
      device            from+     from-     other+    other-    target+   target-
      no-job            reported  reported  reported  reported  heard     reported
      idle              reported  reported  reported  reported  heard     reported
      downloading       reported  reported  reported  reported  heard     reported
      downloaded        reported  reported  reported  reported  heard     reported
      installing        reported  reported  reported  reported  heard     reported
      rebooting         reported  reported  reported  reported  heard     reported
      other-idle        reported  reported  reported  reported  heard     reported
      other-downloading reported  reported  reported  reported  heard     reported
      other-downloaded  reported  reported  reported  reported  heard     reported
      other-installing  reported  reported  reported  reported  heard     reported
      other-rebooting   reported  reported  reported  reported  heard     reported`,
  },
];

test('deviceStateReport, the table: every job state (and none) × what the device works on × its version × its health', () => {
  const covered = new Set<string>();
  const wrong: string[] = [];
  for (const { cases, job, states, homeFound, table } of STATE_TABLES) {
    const { columns, rows } = parseTable(table);
    assert.deepEqual(columns, Object.keys(VERSIONS), cases);
    assert.deepEqual(rows.map(([name]) => name).sort(), Object.keys(DEVICE_JOBS).sort(), cases);
    for (const jobState of states) {
      if (homeFound && job(jobState)) covered.add(jobState);
      for (const [row, expected] of rows) {
        columns.forEach((column, i) => {
          const state: DeviceStateMessage = { ...VERSIONS[column]!, job: DEVICE_JOBS[row]! };
          const got = stateOutcomeOf(job(jobState), state, homeFound);
          if (got !== expected[i]) wrong.push(`${cases}, ${jobState}, device ${row} ${column}: got ${got}, expected ${expected[i]}`);
        });
      }
    }
  }
  assert.deepEqual(wrong, []);
  assert.deepEqual([...covered].sort(), [...JOB_STATES].sort(), 'every job state has a table with its home found');
});

test('deviceStateReport: what an outcome carries', () => {
  const running = { firmwareVersion: TARGET, healthy: false, job: null };
  assert.deepEqual(deviceStateReport(jobIn('confirming'), running, { homeFound: true }), { kind: 'event', event: { type: 'reported', version: TARGET, healthy: false } });
  const onOther = { firmwareVersion: FROM, healthy: true, job: { jobId: 'job-0', phase: 'downloading' as const } };
  assert.deepEqual(deviceStateReport(undefined, onOther, { homeFound: false }), { kind: 'cancel-on-device', jobId: 'job-0', message: 'This update is no longer wanted.' });
  assert.deepEqual(
    deviceStateReport(jobIn('offered'), { firmwareVersion: FROM, healthy: true, job: { jobId: 'job-1', phase: 'downloaded' } }, { homeFound: true }),
    { kind: 'event', event: { type: 'progress', phase: 'downloaded', percent: null } },
  );
  // Nothing to do still says why (for whoever reads a trace).
  for (const job of [undefined, jobIn('waiting'), jobIn('offered')]) {
    const out = deviceStateReport(job, { firmwareVersion: FROM, healthy: true, job: null }, { homeFound: job !== undefined });
    assert.equal(out.kind, 'none');
    assert.ok(out.kind === 'none' && out.why.length > 0);
  }
});

test('a state report\'s event is a legal move of the job wherever the table gives one (the transition function agrees)', () => {
  const refused: string[] = [];
  for (const state of JOB_STATES) {
    for (const [row, deviceJob] of Object.entries(DEVICE_JOBS)) {
      for (const [column, version] of Object.entries(VERSIONS)) {
        const out = deviceStateReport(jobIn(state), { ...version, job: deviceJob }, { homeFound: true });
        if (out.kind !== 'event') continue;
        try {
          transition(jobIn(state), out.event, { now: NOW, soakSeconds: 60 });
        } catch {
          refused.push(`${state}, device ${row} ${column}: ${out.event.type}`);
        }
      }
    }
  }
  assert.deepEqual(refused, []);
});
