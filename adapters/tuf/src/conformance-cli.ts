/**
 * The hub's TUF client as the public conformance suite drives it (theupdateframework/tuf-conformance,
 * CLIENT-CLI.md): `npm run -s tuf-client:hub -- --metadata-dir D init ROOT`, `… refresh`,
 * `… download`; exit 0 on success, 1 on any failure (docs/release-tool.md, "Conformance").
 *
 * What runs is the hub's production path, not a bare tuf-js call: `TufReleaseSource.refresh()`
 * (TrustedRepository's refresh with its root anchor, then the listing of every vendor role the
 * hub does every five minutes), and for a download `TufReleaseSource.imagePath()` — the signed
 * target looked up again through the delegations, the image fetched into the hub's mirror only
 * after its length and SHA-256 match (reading stops at the first byte past the signed length), a
 * mirrored image not fetched again.
 *
 * The seams, each as thin as the production shape allows:
 * - The suite's targets are generic: no firmware `custom` fields, paths that are not
 *   `<vendor>/<model>/<version>/<file>`. The hub's listing refuses them as releases (that is its
 *   job; the refusals are not failures here), so a download hands `imagePath` a stand-in release
 *   built from the *signed* target — path, length and SHA-256 as the repository signed them, the
 *   firmware fields empty. `imagePath` checks it against the signed target again before it
 *   mirrors anything; nothing here decides trust.
 * - The hub keeps its state in `D/.firmward/hub/` (tuf-js's working copy under `trust/metadata`);
 *   the trusted metadata is copied to `D/<role>.json` after every command, for the suite to read.
 * - The verified image is copied from the hub's mirror into `--target-dir` (one file per target
 *   path). The cache the suite measures is the mirror's own: an image already mirrored and still
 *   matching its signed hash is not fetched again.
 * - One repository URL (metadata under `metadata/`, images under `targets/`), as the hub is
 *   configured; the suite serves exactly that.
 */
import path from 'node:path';
import { FirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import {
  CONFORMANCE_REPOSITORY, holds, initConformanceClient, initialRootFile, placeVerified, publishTrustedCopies, runConformance, stateDir, targetFile,
} from './conformance.ts';
import { TufReleaseSource } from './release-source.ts';
import type { SignedTarget } from './trusted-repository.ts';

const NAME = 'tuf-client:hub';

process.exitCode = await runConformance(NAME, process.argv.slice(2), async (command) => {
  if (command.command === 'init') {
    await initConformanceClient(command.metadataDir, command.trustedRoot);
    return null;
  }
  const hubDir = path.join(stateDir(command.metadataDir), 'hub');
  const source = new TufReleaseSource({ name: CONFORMANCE_REPOSITORY, url: command.repositoryUrl, rootFile: initialRootFile(command.metadataDir), dir: hubDir });
  try {
    await source.refresh();
    if (command.command === 'download') {
      // In argument order, one client; the first failure ends the command (CLIENT-CLI.md).
      for (const targetPath of command.targetNames) await download(source, targetPath, command.targetDir);
    }
    return null;
  } finally {
    // TufReleaseSource keeps TrustedRepository's folder at `<dir>/trust`, whose tuf-js working copy is `metadata/`.
    await publishTrustedCopies(path.join(hubDir, 'trust', 'metadata'), command.metadataDir);
  }
});

async function download(source: TufReleaseSource, targetPath: string, targetDir: string): Promise<void> {
  const signed = await source.repository.target(targetPath);
  if (!signed) throw new FirmwardError('not_signed', `The repository does not sign a target ${targetPath} (or not with a SHA-256 hash).`);
  const mirrored = await source.imagePath(standIn(signed));
  const file = targetFile(targetDir, targetPath);
  if (!(await holds(file, signed.length, signed.sha256))) await placeVerified(mirrored, signed.length, file);
}

/** The signed target as the release `imagePath` takes: path, length and hash as signed; no firmware fields (a generic target has none). */
function standIn(signed: SignedTarget): Release {
  return {
    id: signed.path, repository: CONFORMANCE_REPOSITORY, vendor: '', model: '', hardwareRevisions: [], version: '', severity: 'none',
    vulnerabilitiesFixed: [], expectedInstallSeconds: 0, preflightOverrides: {}, recovery: { steps: [] }, retracted: false,
    image: { path: signed.path, lengthBytes: signed.length, sha256: signed.sha256 },
  };
}
