/**
 * The published folder, servable as static files by any HTTP server or CDN:
 *
 *   targets/<vendor>/<model>/<version>/<sha256>.<file>     images, content-addressed (written first)
 *   metadata               → a link to metadata-sets/<n>/, swapped in one step (written last)
 *   metadata-sets/<n>/     <N>.root.json for every root version, timestamp.json, and the
 *                          consistent snapshots <N>.snapshot.json, <N>.targets.json, <N>.<vendor>.json
 *
 * Each new set holds every file of the one before it, so a device halfway through a refresh when
 * the link swaps still finds the versions its timestamp named. A crash leaves the old set current.
 */
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { FirmwardError } from '@firmward/core';
import { copyFileAtomic, linkTarget, removeAllBut, swapLink, writeFolder } from './atomic.ts';
import type { BeforeWrite } from './atomic.ts';
import { metadataText, parseMetadata, sameSigned } from './metadata.ts';
import type { Envelope, RootSigned, SnapshotSigned, TargetsSigned, TimestampSigned } from './metadata.ts';
import { withLock } from './lock.ts';

export interface PublishInput {
  roots: readonly Envelope<RootSigned>[];
  targets: Envelope<TargetsSigned>;
  vendors: ReadonlyMap<string, Envelope<TargetsSigned>>;
  snapshot: Envelope<SnapshotSigned>;
  timestamp: Envelope<TimestampSigned>;
  /** Where the working folder keeps the image of a target path. */
  imagePath: (path: string) => string;
}

export interface PublishResult {
  outDir: string;
  rootVersion: number;
  /** The root file (relative to outDir) to ship devices with: the newest, fully signed root. */
  shipRootFile: string;
  timestampVersion: number;
  snapshotVersion: number;
  imagesWritten: number;
  imagesAlreadyThere: number;
}

/** Where a target's image is published: its SHA-256 before its file name (consistent snapshots). */
export function publishedImagePath(path: string, sha256: string): string {
  return `${dirname(path)}/${sha256}.${basename(path)}`;
}

export async function publishState(outDir: string, input: PublishInput, beforeWrite: BeforeWrite): Promise<PublishResult> {
  await mkdir(join(outDir, 'metadata-sets'), { recursive: true });
  return withLock(join(outDir, '.firmward-publish.lock'), async () => {
    const link = join(outDir, 'metadata');
    const current = await linkTarget(link);
    if (current?.startsWith('not-a-link:') === true) {
      throw new FirmwardError('conflict', `${link} was not written by this tool; publish into an empty folder or one this tool published before.`);
    }
    const files = new Map<string, string>();
    if (current !== undefined) {
      for (const name of await readdir(current)) files.set(name, await readFile(join(current, name), 'utf8'));
      const published = files.get('timestamp.json');
      const publishedVersion = published === undefined ? 0 : parseMetadata(published, 'timestamp.json').signed.version;
      // Publishing an older working folder over a newer repository would be a rollback every device refuses.
      if (publishedVersion > input.timestamp.signed.version) {
        throw new FirmwardError('metadata_rollback', `${outDir} already holds timestamp version ${publishedVersion}, newer than this working folder's ${input.timestamp.signed.version}; publish from the working folder that wrote it.`);
      }
    }

    // Images first: nothing may name an image that is not there yet.
    let imagesWritten = 0;
    let imagesAlreadyThere = 0;
    for (const role of input.vendors.values()) {
      for (const [path, target] of Object.entries(role.signed.targets)) {
        const sha256 = target.hashes['sha256'];
        if (sha256 === undefined) throw new FirmwardError('metadata_invalid', `The target ${path} has no SHA-256.`);
        const destination = join(outDir, 'targets', ...publishedImagePath(path, sha256).split('/'));
        const existing = await stat(destination).catch(() => undefined);
        if (existing?.isFile() === true && existing.size === target.length) {
          imagesAlreadyThere++;
          continue;
        }
        await mkdir(dirname(destination), { recursive: true });
        const written = await copyFileAtomic(input.imagePath(path), destination, beforeWrite).catch((error: unknown) => {
          if (typeof (error as NodeJS.ErrnoException).code !== 'string') throw error;
          throw new FirmwardError('image_unavailable', `The image of ${path} cannot be read from the working folder.`, { cause: error });
        });
        if (written.sha256 !== sha256 || written.lengthBytes !== target.length) {
          await rm(destination, { force: true });
          throw new FirmwardError('image_hash_mismatch', `The image of ${path} in the working folder no longer matches what was signed; nothing was published.`);
        }
        imagesWritten++;
      }
    }

    const put = (name: string, envelope: Envelope): void => {
      const text = metadataText(envelope);
      const existing = files.get(name);
      // A version once published never changes content; more signatures on the same content are fine.
      if (existing !== undefined && existing !== text && name !== 'timestamp.json' && !sameSigned(parseMetadata(existing, name), envelope)) {
        throw new FirmwardError('conflict', `${name} was already published with different content; publish from the working folder that published it.`);
      }
      files.set(name, text);
    };
    for (const root of input.roots) put(`${root.signed.version}.root.json`, root);
    put(`${input.targets.signed.version}.targets.json`, input.targets);
    for (const [name, role] of input.vendors) put(`${role.signed.version}.${name}.json`, role);
    put(`${input.snapshot.signed.version}.snapshot.json`, input.snapshot);
    put('timestamp.json', input.timestamp);

    const sets = join(outDir, 'metadata-sets');
    const currentName = current === undefined ? undefined : basename(current);
    await removeAllBut(sets, new Set(currentName === undefined ? [] : [currentName]));
    const nextName = String((currentName === undefined ? 0 : Number(currentName)) + 1).padStart(6, '0');
    await writeFolder(join(sets, nextName), files, beforeWrite);
    await swapLink(link, join(sets, nextName), beforeWrite);
    // The set before stays one round, for a server still holding it open.
    await removeAllBut(sets, new Set([nextName, ...(currentName === undefined ? [] : [currentName])]));

    const rootVersion = (input.roots.at(-1) as Envelope<RootSigned>).signed.version;
    return {
      outDir,
      rootVersion,
      shipRootFile: `metadata/${rootVersion}.root.json`,
      timestampVersion: input.timestamp.signed.version,
      snapshotVersion: input.snapshot.signed.version,
      imagesWritten,
      imagesAlreadyThere,
    };
  });
}
