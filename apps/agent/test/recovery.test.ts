import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { OfferCommand } from '@firmward/protocol';
import { MAX_INSTALL_ATTEMPTS, planRecovery } from '../src/index.ts';
import type { AgentJournal, AgentPhase, BootState, JournalJob } from '../src/index.ts';

const offer: OfferCommand = {
  v: PROTOCOL_VERSION, type: 'offer', jobId: 'job-1', releaseId: 'Acme/Plug/1.1.0', vendor: 'Acme', model: 'Plug',
  hardwareRevisions: ['rev2'], version: '1.1.0', applicableFrom: null, applicableTo: null,
  image: { url: 'http://127.0.0.1:1/x.bin', lengthBytes: 10, sha256: '0'.repeat(64) }, expectedInstallSeconds: 60,
};

function journal(phase: AgentPhase | null, patch: Partial<Pick<JournalJob, 'installAttempts' | 'failure'>> = {}): AgentJournal {
  if (phase === null) return { v: 1, job: null, finished: [], cancelled: [] };
  return {
    v: 1, finished: [], cancelled: [],
    job: { jobId: 'job-1', offer, phase, targetSlot: 'b', fromSlot: 'a', fromVersion: '1.0.0', bytesWritten: 0, installAttempts: 1, failure: null, ...patch },
  };
}

function boot(activeSlot: 'a' | 'b', trial: BootState['trial'] = null): BootState {
  return { activeSlot, trial, versions: { a: '1.0.0', b: activeSlot === 'b' || (trial?.attemptsLeft ?? 0) > 0 ? '1.1.0' : null } };
}

const cases: [string, AgentJournal, BootState, string][] = [
  ['nothing to do', journal(null), boot('a'), 'idle'],
  ['a trial with no job of ours is judged by its health check', journal(null), boot('b', { slot: 'b', attemptsLeft: 2 }), 'check-trial'],
  ['a fallback nobody cleared', journal(null), boot('a', { slot: 'b', attemptsLeft: 0 }), 'clear-fallback'],
  ['download goes on', journal('downloading'), boot('a'), 'resume-download'],
  ['downloaded waits for the go-ahead', journal('downloaded'), boot('a'), 'await-install'],
  ['download while the other slot runs cannot go on', journal('downloading'), boot('b'), 'report-failed'],
  ['cut before the switch: switch again', journal('installing'), boot('a'), 'install'],
  ['cut before the switch too often: give up, nothing changed', journal('installing', { installAttempts: MAX_INSTALL_ATTEMPTS }), boot('a'), 'report-failed'],
  ['switched, not restarted yet', journal('installing'), boot('a', { slot: 'b', attemptsLeft: 3 }), 'reboot'],
  ['switched and journalled, not restarted yet', journal('rebooting'), boot('a', { slot: 'b', attemptsLeft: 3 }), 'reboot'],
  ['running the new slot on trial', journal('rebooting'), boot('b', { slot: 'b', attemptsLeft: 2 }), 'check-trial'],
  ['cut after the switch, before the journal: the trial still decides', journal('installing'), boot('b', { slot: 'b', attemptsLeft: 2 }), 'check-trial'],
  ['committed before the cut', journal('rebooting'), boot('b'), 'report-installed'],
  ['the bootloader gave up on the new slot', journal('rebooting'), boot('a', { slot: 'b', attemptsLeft: 0 }), 'report-rolled-back'],
  ['a bootloader that forgets a failed trial', journal('rebooting'), boot('a'), 'report-rolled-back'],
  ['rejected but still running the new slot', journal('rolling-back', { failure: { code: 'unhealthy', message: 'x' } }), boot('b', { slot: 'b', attemptsLeft: 0 }), 'reject-trial'],
  ['rejected and back on the old slot', journal('rolling-back', { failure: { code: 'unhealthy', message: 'x' } }), boot('a', { slot: 'b', attemptsLeft: 0 }), 'report-rolled-back'],
];

for (const [name, j, b, expected] of cases) {
  test(`planRecovery: ${name} → ${expected}`, () => {
    assert.equal(planRecovery(j, b).kind, expected);
  });
}

test('planRecovery keeps the health check\'s reason for a rollback', () => {
  const step = planRecovery(journal('rolling-back', { failure: { code: 'unhealthy', message: 'The relay did not answer.' } }), boot('a', { slot: 'b', attemptsLeft: 0 }));
  assert.deepEqual(step, { kind: 'report-rolled-back', reason: { code: 'unhealthy', message: 'The relay did not answer.' } });
});
