/**
 * Fixtures built by the production writer (STYLE 14): a real repository in a temporary folder,
 * real key files, real images.
 */
import { cp, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { INSECURE_FAST_KDF, ReleaseRepository, bumpVersion, readMetadata, setMetaVersion, signMetadata, writeMetadata } from '../src/index.ts';
import type { Envelope, InitOptions, RepositoryOptions, SigningKey, SnapshotSigned, TargetsSigned, TimestampSigned } from '../src/index.ts';

export const PASSPHRASE = 'correct horse battery staple';
export const DAY_MS = 24 * 3600 * 1000;

/** A temporary folder removed when the test file ends. */
export async function tempDir(prefix = 'firmward-release-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A valid signed description for a release. */
export function customFor(vendor: string, model: string, version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    vendor, model, version, hardwareRevisions: ['rev-a'], expectedInstallSeconds: 120,
    severity: 'high', vulnerabilitiesFixed: [{ id: 'CVE-2025-0001', severity: 'high' }],
    recovery: { steps: ['Unplug the device for ten seconds, then plug it back in.'] },
    ...extra,
  };
}

/** An image file with recognisable, version-specific bytes. */
export async function makeImage(dir: string, name: string, sizeBytes = 4096, seed = 1): Promise<string> {
  const bytes = Buffer.alloc(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) bytes[i] = (i * 31 + seed * 17) & 0xff;
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

export interface Built {
  dir: string;
  repoDir: string;
  keysDir: string;
  outDir: string;
  repository: ReleaseRepository;
}

/**
 * A repository with vendors acme and globex (defaults: 2-of-3 root, one key per online role). Its
 * key files use the fast test KDF (same format, milliseconds instead of half a second a key).
 */
export async function buildRepository(init: InitOptions = {}, options: RepositoryOptions = {}): Promise<Built> {
  const dir = await tempDir();
  const repoDir = join(dir, 'repo');
  const keysDir = join(dir, 'keys');
  const { repository } = await ReleaseRepository.init(repoDir, { vendors: [{ name: 'acme' }, { name: 'globex' }], ...init }, {
    keyDirs: [keysDir], passphrase: PASSPHRASE, keyFileKdf: INSECURE_FAST_KDF, ...options,
  });
  return { dir, repoDir, keysDir, outDir: join(dir, 'public'), repository };
}

/** A copy of a published folder to tamper with (its `metadata` link is relative, so it stays inside). */
export async function copyPublished(outDir: string): Promise<string> {
  const copy = `${outDir}-tampered-${Math.random().toString(16).slice(2, 8)}`;
  await cp(outDir, copy, { recursive: true, verbatimSymlinks: true });
  return copy;
}

/**
 * Puts a crafted version of a vendor role into a published copy and re-seals it the way an attacker
 * holding the snapshot and timestamp keys would: a new snapshot naming it and a new timestamp.
 */
export async function resealVendor(published: string, vendor: string, role: Envelope<TargetsSigned>, online: { snapshot: SigningKey[]; timestamp: SigningKey[] }): Promise<void> {
  const metadata = join(published, 'metadata');
  await writeMetadata(join(metadata, `${role.signed.version}.${vendor}.json`), role);
  const timestamp = await readMetadata(join(metadata, 'timestamp.json')) as Envelope<TimestampSigned>;
  const snapshotVersion = timestamp.signed.meta['snapshot.json'].version;
  const snapshot = await readMetadata(join(metadata, `${snapshotVersion}.snapshot.json`)) as Envelope<SnapshotSigned>;
  const newSnapshot = signMetadata(bumpVersion(setMetaVersion(snapshot, `${vendor}.json`, role.signed.version)), online.snapshot, { append: false });
  await writeMetadata(join(metadata, `${newSnapshot.signed.version}.snapshot.json`), newSnapshot);
  const newTimestamp = signMetadata(bumpVersion(setMetaVersion(timestamp, 'snapshot.json', newSnapshot.signed.version)), online.timestamp, { append: false });
  await writeMetadata(join(metadata, 'timestamp.json'), newTimestamp);
}

/** Every file under a folder with its bytes (links shown as their targets): "nothing was written" checks. */
export async function snapshotFolder(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (sub: string): Promise<void> => {
    for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = join(sub, entry.name);
      if (entry.isSymbolicLink()) files.set(rel, `-> ${await readlink(join(dir, rel))}`);
      else if (entry.isDirectory()) await walk(rel);
      else files.set(rel, (await readFile(join(dir, rel))).toString('base64'));
    }
  };
  await walk('.');
  return files;
}
