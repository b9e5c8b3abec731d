/**
 * The device's TUF client as the public conformance suite drives it (theupdateframework/tuf-conformance,
 * CLIENT-CLI.md): `npm run -s tuf-client:device -- --metadata-dir D init ROOT`, `… refresh`,
 * `… download`; exit 0 on success, 1 on any failure (docs/release-tool.md, "Conformance").
 *
 * What runs is the device's production path: `DeviceTrust` (the device's own root and anchor,
 * its own refresh of the repository, the signed target found through the delegations — the same
 * `signedTarget` its offer check runs first), then the agent's verified download, `downloadToSlot`,
 * into an inactive slot of a `LinuxPlatform` (the daemon's platform, slots as files, a file
 * bootloader): bounded by the signed length, hashed while streaming, synced, read back and hashed
 * again. Only a slot that verified is copied into `--target-dir`.
 *
 * The seams, each as thin as the production shape allows:
 * - An offer is checked in two halves; the second (the signed firmware fields — model, hardware
 *   revisions, version range, retraction — against the device) needs `custom` fields the
 *   suite's generic targets do not have, so only the first, TUF half runs (`signedTarget`).
 * - The device downloads the URL the hub's offer names; here that URL is made the way a TUF
 *   client makes it from the signed target: `<url>/targets/<dir>/<sha256>.<name>` under consistent
 *   snapshots (the signed root says), else `<url>/targets/<path>`.
 * - The agent's own cache is its journal (bytes already in the slot); for the suite's cache, a
 *   target already in `--target-dir` with its signed length and SHA-256 is not fetched again.
 * - State lives in `D/.firmward/device/` (trust folder, slots, boot environment); the trusted
 *   metadata is copied to `D/<role>.json` after every command, for the suite to read.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { FirmwardError } from '@firmward/core';
import { SystemClock } from '@firmward/ports';
import {
  CONFORMANCE_REPOSITORY, DeviceTrust, holds, initConformanceClient, initialRootFile, placeVerified, publishTrustedCopies, runConformance,
  stateDir, targetFile,
} from '@firmward/tuf';
import type { SignedTarget } from '@firmward/tuf';
import { downloadToSlot } from './download.ts';
import { FileBootloader, initBootEnv } from './linux/file-bootloader.ts';
import { LinuxPlatform } from './linux/linux-platform.ts';

const NAME = 'tuf-client:device';
/** What one slot holds; nothing is written past it. */
const SLOT_BYTES = 1 << 30;

process.exitCode = await runConformance(NAME, process.argv.slice(2), async (command) => {
  if (command.command === 'init') {
    await initConformanceClient(command.metadataDir, command.trustedRoot);
    return null;
  }
  const deviceDir = path.join(stateDir(command.metadataDir), 'device');
  const trustDir = path.join(deviceDir, 'trust');
  const trust = new DeviceTrust({ dir: trustDir, roots: { [CONFORMANCE_REPOSITORY]: await readFile(initialRootFile(command.metadataDir)) } });
  // DeviceTrust keeps each repository's TrustedRepository in `<dir>/<name>`, whose tuf-js working copy is `metadata/`.
  const workDir = path.join(trustDir, encodeURIComponent(CONFORMANCE_REPOSITORY), 'metadata');
  try {
    if (command.command === 'refresh') {
      return await trust.refresh(CONFORMANCE_REPOSITORY, command.repositoryUrl);
    }
    const platform = await slotPlatform(deviceDir);
    // In argument order, one client; the first failure ends the command (CLIENT-CLI.md).
    for (const targetPath of command.targetNames) {
      const found = await trust.signedTarget({ repository: CONFORMANCE_REPOSITORY, url: command.repositoryUrl, path: targetPath });
      if (!found.ok) return found.reason;
      const file = targetFile(command.targetDir, targetPath);
      if (await holds(file, found.target.length, found.target.sha256)) continue;
      const consistent = await consistentSnapshots(workDir);
      await downloadToSlot({ url: imageUrl(command.repositoryUrl, found.target, consistent), lengthBytes: found.target.length, sha256: found.target.sha256, slot: 'b', resumeFrom: 0 }, {
        platform, clock: new SystemClock(), chunkBytes: 1 << 20,
        // The suite wants an answer per command, not the agent's half hour of patience.
        retryBudgetMs: 0, retryDelayMs: 0, stallTimeoutMs: 30_000,
        onCheckpoint: () => Promise.resolve(), signal: AbortSignal.timeout(10 * 60_000),
      });
      await placeVerified(path.join(deviceDir, 'slot-b.img'), found.target.length, file);
    }
    return null;
  } finally {
    await publishTrustedCopies(workDir, command.metadataDir);
  }
});

/** The daemon's platform over two slot files and a file bootloader: `a` running, `b` written. */
async function slotPlatform(deviceDir: string): Promise<LinuxPlatform> {
  await mkdir(deviceDir, { recursive: true });
  const bootEnv = path.join(deviceDir, 'boot.env');
  if (!(await stat(bootEnv).catch(() => null))) await initBootEnv(bootEnv);
  return new LinuxPlatform({
    identity: { deviceId: 'tuf-conformance', vendor: 'conformance', model: 'tuf-client', hardwareRevision: 'none' },
    slots: { a: path.join(deviceDir, 'slot-a.img'), b: path.join(deviceDir, 'slot-b.img') },
    slotSizeBytes: SLOT_BYTES,
    bootloader: new FileBootloader(bootEnv),
    journalPath: path.join(deviceDir, 'journal.json'),
    version: { kind: 'header' },
    healthCheck: null,
    conditions: { batteryPercent: null, charging: null, onMains: null, signalDbm: null, busy: null },
    commandTimeoutMs: 10_000,
    readChunkBytes: 1 << 20,
    writeBufferBytes: 1 << 20,
    reboot: () => Promise.reject(new FirmwardError('internal', 'The conformance client never restarts.')),
  });
}

/** Whether the trusted root (as tuf-js verified and persisted it) asks for hash-prefixed image names. */
async function consistentSnapshots(workDir: string): Promise<boolean> {
  const root = JSON.parse(await readFile(path.join(workDir, 'root.json'), 'utf8')) as { signed?: { consistent_snapshot?: unknown } };
  return root.signed?.consistent_snapshot === true;
}

/** Where a TUF client fetches a target's bytes (TUF spec 5.7.3): the hash-prefixed name under consistent snapshots. */
function imageUrl(repositoryUrl: string, target: SignedTarget, consistent: boolean): string {
  const segments = target.path.split('/');
  const base = segments.pop() ?? '';
  if (consistent) segments.push(`${target.sha256}.${base}`);
  else segments.push(base);
  return new URL(`targets/${segments.map(encodeURIComponent).join('/')}`, repositoryUrl).href;
}
