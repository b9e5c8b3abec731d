/**
 * The demo's maker: a signed release repository built with the real release tool, under keys made
 * for the demo at every start. Their passphrase is in this file and the key files are named
 * `demo-…`: they prove the path, they protect nothing. A real hub trusts the maker's own root.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { INSECURE_FAST_KDF, ReleaseRepository } from '@firmward/release-tool';
import type { ReleaseCustomInput } from '@firmward/tuf';
import type { RepositoryConfig } from './config.ts';

/** Not a secret: the demo's keys say so in their names and live beside the demo's data. */
export const DEMO_KEY_PASSPHRASE = 'demo keys - not secret - never trust them';

export interface ReleaseToPublish {
  custom: ReleaseCustomInput;
  image: Uint8Array;
  fileName?: string;
}

export interface PublishedRepository {
  config: RepositoryConfig;
  /** The root devices ship with (the same file the hub trusts first). */
  root: Buffer;
  /** The maker's working folder (keys and unpublished state). */
  workDir: string;
  /** The published folder any web server could serve. */
  publishedDir: string;
}

/**
 * Creates a repository in `dir` (vendor roles for every vendor named), signs and publishes the
 * given releases, and returns what a hub needs to trust it.
 */
export async function publishReleases(dir: string, name: string, releases: readonly ReleaseToPublish[], o: { now?: () => number } = {}): Promise<PublishedRepository> {
  const workDir = path.join(dir, 'maker');
  const publishedDir = path.join(dir, 'published');
  const imagesDir = path.join(dir, 'images');
  const vendors = [...new Set(releases.map((r) => r.custom.vendor))];
  // The demo's keys protect nothing (see above): encrypted the fast way, so a demo starts at once.
  const options = { passphrase: DEMO_KEY_PASSPHRASE, keyFileKdf: INSECURE_FAST_KDF, ...(o.now && { now: o.now }) };
  const { repository } = await ReleaseRepository.init(workDir, { vendors: vendors.map((vendor) => ({ name: vendor })) }, options);
  await mkdir(imagesDir, { recursive: true });
  for (const release of releases) {
    const fileName = release.fileName ?? `${release.custom.model}-${release.custom.version}.img`;
    const file = path.join(imagesDir, `${release.custom.vendor}-${fileName}`);
    await writeFile(file, release.image);
    await repository.add({ image: file, custom: release.custom, fileName });
  }
  const result = await repository.publish(publishedDir);
  const rootFile = path.join(publishedDir, result.shipRootFile);
  return {
    config: { name, url: pathToFileURL(publishedDir).href + '/', root: rootFile },
    root: await readFile(rootFile),
    workDir,
    publishedDir,
  };
}
