/**
 * What to do when the agent starts, as data (STYLE principle 3): the journal says what the agent
 * was doing, the boot state says what really happened to the device. The boot state wins wherever
 * they disagree, because a power cut can fall between any step and the journal entry after it
 * (invariant 7: the device boots a good image and reports truthfully what it runs).
 */
import { isDeviceCode } from '@firmward/protocol';
import type { DeviceReason } from '@firmward/protocol';
import type { AgentJournal } from './journal.ts';
import type { BootState } from './platform.ts';

export type RecoveryStep =
  /** Nothing pending. */
  | { kind: 'idle' }
  /** No job, and the bootloader reports a trial that already fell back: clear it by committing the running slot. */
  | { kind: 'clear-fallback' }
  /** Running a trial slot: its health check decides between commit and rollback. */
  | { kind: 'check-trial' }
  /** Carry on downloading from the journal's byte count. */
  | { kind: 'resume-download' }
  /** Downloaded and verified: wait for the hub's install go-ahead. */
  | { kind: 'await-install' }
  /** The switch never took effect (cut before it): verify the slot again and switch. */
  | { kind: 'install' }
  /** Switched, but the restart did not happen yet. */
  | { kind: 'reboot' }
  /** The new version was rejected but still runs: mark it bad and restart into the old one. */
  | { kind: 'reject-trial' }
  /** The new version is committed and runs. */
  | { kind: 'report-installed' }
  /** The old version runs again. */
  | { kind: 'report-rolled-back'; reason: DeviceReason }
  /** Nothing changed on the device and the job cannot go on. */
  | { kind: 'report-failed'; reason: DeviceReason };

/** After this many switches of one job that never took effect, the agent stops trying and reports a rollback. */
export const MAX_INSTALL_ATTEMPTS = 3;

/**
 * @example
 * planRecovery({ v: 1, job: { …, phase: 'rebooting', targetSlot: 'b' } }, { activeSlot: 'b', trial: { slot: 'b', attemptsLeft: 2 }, versions })
 * // { kind: 'check-trial' }
 */
export function planRecovery(journal: AgentJournal, boot: BootState): RecoveryStep {
  const job = journal.job;
  const { activeSlot, trial } = boot;
  if (!job) {
    if (trial && trial.slot === activeSlot) return { kind: 'check-trial' };
    if (trial) return { kind: 'clear-fallback' };
    return { kind: 'idle' };
  }
  const target = job.offer.version;
  switch (job.phase) {
    case 'downloading':
    case 'downloaded':
      if (activeSlot !== job.fromSlot) {
        return {
          kind: 'report-failed',
          reason: { code: 'slot_changed', message: 'The device started from its other slot during the download, so the update was stopped to keep it safe.' },
        };
      }
      // A trial pending before any switch of ours is someone else's; the download waits for it to settle.
      if (trial && trial.slot === activeSlot) return { kind: 'check-trial' };
      return job.phase === 'downloading' ? { kind: 'resume-download' } : { kind: 'await-install' };
    case 'installing':
    case 'rebooting': {
      if (activeSlot === job.targetSlot) return trial?.slot === activeSlot ? { kind: 'check-trial' } : { kind: 'report-installed' };
      if (trial?.slot === job.targetSlot) {
        if (trial.attemptsLeft > 0) return { kind: 'reboot' };
        return { kind: 'report-rolled-back', reason: bootFailed(target, job.fromVersion) };
      }
      // No trial of ours: either the cut came before the switch, or (on a bootloader that forgets
      // a failed trial) after it. Only `installing` allows the first; bounded either way.
      if (job.phase === 'installing') {
        if (job.installAttempts < MAX_INSTALL_ATTEMPTS) return { kind: 'install' };
        return {
          kind: 'report-failed',
          reason: { code: 'switch_failed', message: `The device could not switch to version ${target}; it still runs ${job.fromVersion}.` },
        };
      }
      return { kind: 'report-rolled-back', reason: bootFailed(target, job.fromVersion) };
    }
    case 'rolling-back': {
      if (activeSlot === job.targetSlot) return { kind: 'reject-trial' };
      return { kind: 'report-rolled-back', reason: job.failure ? journalFailure(job.failure) : bootFailed(target, job.fromVersion) };
    }
  }
}

function bootFailed(target: string, from: string): DeviceReason {
  return { code: 'boot_failed', message: `Version ${target} did not start, so the device went back to ${from} by itself.` };
}

/**
 * The journal stores a failure's code as text (it outlives any one version of the agent); this
 * agent writes only codes of the shared table there. One outside it is sent as `rolled_back`, which
 * the hub reads the same way (final, the device back on its old version).
 */
function journalFailure(failure: { code: string; message: string }): DeviceReason {
  return { code: isDeviceCode(failure.code) ? failure.code : 'rolled_back', message: failure.message };
}
