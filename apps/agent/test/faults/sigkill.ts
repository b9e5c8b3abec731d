/**
 * Power-cut trials with real processes: each boot is a child process (`sigkill-child.ts`) killed
 * with SIGKILL at a random moment (start-up, download, write, read-back, switch, first boot,
 * health check, commit, report — wherever it happens to be). SIGKILL loses no written bytes (the
 * kernel keeps the page cache), so this checks the agent against its own sudden death; the
 * in-process harness covers lost unsynced bytes.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { PublishedMessage } from '../../src/transport.ts';
import { buildFirmwareImage } from '../../src/firmware-image.ts';
import { FileDevice } from './file-device.ts';
import { FAULT_IDENTITY, NEW_VERSION, OLD_VERSION, judgeTrial } from './harness.ts';
import type { TrialOutcome } from './harness.ts';

const CHILD = new URL('./sigkill-child.ts', import.meta.url).pathname;

export const SIGKILL_IMAGE_BYTES = 4 * 1024 * 1024;

export function sigkillImage(version: string): Uint8Array {
  return buildFirmwareImage({ vendor: FAULT_IDENTITY.vendor, model: FAULT_IDENTITY.model, version }, SIGKILL_IMAGE_BYTES);
}

const hashOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface SigkillSpec {
  /** Milliseconds after each boot's start at which it is killed, one per boot in order. */
  killAfterMs: number[];
  newStarts: boolean;
  newHealthy: boolean;
}

export async function runSigkillTrial(spec: SigkillSpec, imageUrl: string, baseDir: string): Promise<TrialOutcome> {
  const dir = await mkdtemp(join(baseDir, 'kill-'));
  const old = sigkillImage(OLD_VERSION);
  const hashes: Record<string, string> = { [OLD_VERSION]: hashOf(old), [NEW_VERSION]: hashOf(sigkillImage(NEW_VERSION)) };
  const device = new FileDevice({
    dir, identity: FAULT_IDENTITY, factoryImage: old, slotSizeBytes: 2 * SIGKILL_IMAGE_BYTES, backend: 'script',
    starts: (v) => v === OLD_VERSION || (v === NEW_VERSION && spec.newStarts),
  });
  try {
    await device.install();
    await device.boot();
    const offer = {
      v: PROTOCOL_VERSION, type: 'offer', jobId: 'job-1', releaseId: 'Acme/Plug/1.1.0', vendor: 'Acme', model: 'Plug',
      hardwareRevisions: ['rev2'], version: NEW_VERSION, applicableFrom: OLD_VERSION, applicableTo: null,
      image: { url: imageUrl, lengthBytes: SIGKILL_IMAGE_BYTES, sha256: hashes[NEW_VERSION] }, expectedInstallSeconds: 60,
    };
    const kills = [...spec.killAfterMs];
    const results: { outcome: string; firmwareVersion: string }[] = [];
    const falseSuccess: string[] = [];
    const cutSteps: string[] = [];
    let downloaded = false;

    for (let boots = 0; boots < 40 && results.length === 0; boots++) {
      const child: ChildProcess = fork(CHILD, [dir, String(SIGKILL_IMAGE_BYTES), spec.newHealthy ? 'healthy' : 'unhealthy'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.on('message', (m: PublishedMessage | { kind: 'reboot' }) => {
        if (m.kind === 'reboot') {
          // The restart: the process ends (its writes are in the page cache, as after a reboot's sync).
          child.kill('SIGKILL');
        } else if (m.kind === 'event') {
          if (m.event.type === 'result') results.push(m.event);
          if (m.event.type === 'progress' && m.event.phase === 'downloaded') downloaded = true;
        } else {
          const r = device.runningSync();
          if (m.state.firmwareVersion !== r.version || m.state.activeSlot !== r.slot) falseSuccess.push(`reported ${m.state.firmwareVersion} while running ${r.version}`);
        }
      });
      const killAt = kills.shift();
      const killer = killAt === undefined ? null : setTimeout(() => {
        cutSteps.push('sigkill');
        child.kill('SIGKILL');
      }, killAt);
      const hub = setInterval(() => {
        if (!child.connected) return;
        child.send(offer);
        if (downloaded) child.send({ v: PROTOCOL_VERSION, type: 'install', jobId: 'job-1' });
      }, 150);
      // A boot ends when it is killed or restarts; a boot that only reports is ended once it has.
      const reported = new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (results.length > 0) {
            clearInterval(poll);
            setTimeout(resolve, 100);
          }
        }, 20);
        void exited.then(() => { clearInterval(poll); resolve(); });
      });
      await reported;
      clearInterval(hub);
      if (killer) clearTimeout(killer);
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await device.boot();
    }
    if (results.length === 0) falseSuccess.push('no result was reported');
    await device.boot();
    // A job that ended with a trial still pending is settled by the next agent start (clear-fallback).
    return await judgeTrial(device, { imageBytes: SIGKILL_IMAGE_BYTES, hashes, results, spec, falseSuccess, cutSteps, pendingTrialIsUnbootable: false });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
