/**
 * A client of one maker's signed repository, for the hub and for the device alike: tuf-js does
 * the TUF client workflow (root rotation, rollback and freeze checks, thresholds, delegations); we
 * keep the trust anchor safe around it and list what the repository vouches for.
 *
 * Trust anchor: tuf-js rewrites `root.json` in place, so a power cut while it saves could leave a
 * device unable to start its updater. We keep our own copy — `anchor/root.json`, written
 * atomically (temp file, fsync, rename) after every successful refresh, with the one before it
 * kept as `anchor/root.previous.json` — and restore tuf-js's working copy from it before every
 * refresh. A damaged anchor falls back to the previous one, then to the root shipped with the
 * device or configured on the hub.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Metadata, MetadataKind } from '@tufjs/models';
import type { TargetFile, Targets } from '@tufjs/models';
import { BaseFetcher, Updater } from 'tuf-js';
import { FirmwardError } from '@firmward/core';
import { tufRefusal } from './errors.ts';
import { RepositoryFetcher } from './fetcher.ts';

export interface TrustedRepositoryOptions {
  /** Our name for the repository (one per maker), used in every message. */
  name: string;
  /** Where the repository is published (http(s) or file URL): metadata under `metadata/`, images under `targets/`. */
  url: string;
  /** A folder of our own for this repository's trusted metadata. */
  dir: string;
  /** The root this client starts from (shipped with the device, configured on the hub): its bytes or its file, read when first needed. */
  initialRoot: Uint8Array | { file: string };
  timeoutMs?: number;
  /** Upper bounds for metadata sizes (endless-data attack). */
  maxMetadataBytes?: number;
}

/** One image the repository vouches for, as its signed target says. */
export interface SignedTarget {
  path: string;
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
  /** The delegated role that signed it. */
  role: string;
}

export interface TargetListing {
  targets: SignedTarget[];
  /** Targets listed by a role that is not trusted for their path, or otherwise unusable: each with why. */
  refused: { path: string; role: string; error: FirmwardError }[];
}

const MAX_ROLES = 256;

export class TrustedRepository {
  readonly name: string;
  readonly #o: TrustedRepositoryOptions;
  readonly #workDir: string;
  readonly #anchorDir: string;
  #updater: Updater | null = null;
  #offline = false;

  constructor(o: TrustedRepositoryOptions) {
    this.name = o.name;
    this.#o = o;
    this.#workDir = path.join(o.dir, 'metadata');
    this.#anchorDir = path.join(o.dir, 'anchor');
  }

  /** The root currently trusted (after the last refresh), as bytes. */
  async trustedRoot(): Promise<Buffer> {
    return (await this.#anchor()).bytes;
  }

  /**
   * Runs the TUF client workflow against the published metadata. Throws FirmwardError with the
   * matching code (metadata_expired, metadata_rollback, signature_invalid, …) when the repository
   * must not be trusted; what was trusted before stays.
   */
  async refresh(): Promise<void> {
    const anchor = await this.#anchor();
    await mkdir(this.#workDir, { recursive: true });
    await atomicWrite(path.join(this.#workDir, 'root.json'), anchor.bytes);
    const max = this.#o.maxMetadataBytes ?? 2 * 1024 * 1024;
    const updater = new Updater({
      metadataDir: this.#workDir,
      metadataBaseUrl: repositoryUrl(this.#o.url, 'metadata/'),
      fetcher: new RepositoryFetcher({ timeoutMs: this.#o.timeoutMs ?? 30_000 }),
      config: { rootMaxLength: Math.min(max, 512 * 1024), timestampMaxLength: 64 * 1024, snapshotMaxLength: max, targetsMaxLength: max, maxDelegations: 64 },
    });
    try {
      await updater.refresh();
    } catch (error) {
      this.#updater = null;
      this.#offline = false;
      const refusal = tufRefusal(this.name, error);
      // Out of reach, not refused: what was verified here before still stands while it has not
      // expired (a hub restarted while the maker's server is down keeps serving the updates it
      // offered). It is read again from the local copies tuf-js persisted only after verifying
      // them, every signature and expiry checked again, nothing fetched.
      if (refusal.code === 'repository_unreachable') await this.#useLocalCopies(max);
      throw refusal;
    }
    this.#updater = updater;
    this.#offline = false;
    const trusted = await readFile(path.join(this.#workDir, 'root.json'));
    if (!trusted.equals(anchor.bytes)) {
      await mkdir(this.#anchorDir, { recursive: true });
      await atomicWrite(path.join(this.#anchorDir, 'root.previous.json'), anchor.bytes);
      await atomicWrite(path.join(this.#anchorDir, 'root.json'), trusted);
    }
  }

  /** The signed target at `targetPath`, found the way TUF says (delegations by path), or null. */
  async target(targetPath: string): Promise<SignedTarget | null> {
    const updater = this.#requireFresh();
    let info: TargetFile | undefined;
    try {
      info = await updater.getTargetInfo(targetPath);
    } catch (error) {
      throw tufRefusal(this.name, error);
    }
    return info ? toSigned(info, '') : null;
  }

  /**
   * Everything the repository vouches for. TUF has no "list" call: every delegated role is loaded
   * through tuf-js (so it is verified against its delegator and the snapshot), then every target it
   * lists is looked up again by path — a role that lists a path it is not trusted for does not
   * get the answer, and that target is refused with `outside_delegation`.
   */
  async listTargets(): Promise<TargetListing> {
    const updater = this.#requireFresh();
    const listing: TargetListing = { targets: [], refused: [] };
    const seen = new Set<string>();
    const queue: string[] = ['targets'];
    while (queue.length > 0 && seen.size < MAX_ROLES) {
      const role = queue.shift()!;
      if (seen.has(role)) continue;
      seen.add(role);
      const signed = await this.#loadedRole(role);
      if (!signed) continue;
      for (const delegated of signed.delegations?.roles ? Object.values(signed.delegations.roles) : []) {
        // Loading happens on a lookup that walks into the role: any path its patterns match will do.
        const probe = delegated.paths?.[0]?.replaceAll('*', '_').replaceAll('?', '_');
        if (probe === undefined) continue;
        try {
          await updater.getTargetInfo(probe);
        } catch (error) {
          listing.refused.push({ path: probe, role: delegated.name, error: tufRefusal(this.name, error) });
          continue;
        }
        queue.push(delegated.name);
      }
      for (const [targetPath, listed] of Object.entries(signed.targets)) {
        let answer: TargetFile | undefined;
        try {
          answer = await updater.getTargetInfo(targetPath);
        } catch (error) {
          listing.refused.push({ path: targetPath, role, error: tufRefusal(this.name, error) });
          continue;
        }
        if (!answer || !answer.equals(listed)) {
          listing.refused.push({
            path: targetPath, role,
            error: new FirmwardError('outside_delegation', `${role} signed ${targetPath}, a path it is not trusted for in ${this.name}; it was ignored.`),
          });
          continue;
        }
        const target = toSigned(answer, role);
        if (target) listing.targets.push(target);
        else listing.refused.push({ path: targetPath, role, error: new FirmwardError('metadata_invalid', `${targetPath} in ${this.name} has no SHA-256 hash; it was ignored.`) });
      }
    }
    return listing;
  }

  /**
   * True when the last refresh could not reach the repository and the metadata verified before
   * (unexpired, checked again offline) is what `target` and `listTargets` answer from.
   */
  get offline(): boolean {
    return this.#offline;
  }

  async #useLocalCopies(maxMetadataBytes: number): Promise<void> {
    const updater = new Updater({
      metadataDir: this.#workDir,
      metadataBaseUrl: repositoryUrl(this.#o.url, 'metadata/'),
      fetcher: new NoNetwork(),
      forceCache: true,
      config: { rootMaxLength: Math.min(maxMetadataBytes, 512 * 1024), timestampMaxLength: 64 * 1024, snapshotMaxLength: maxMetadataBytes, targetsMaxLength: maxMetadataBytes, maxDelegations: 64 },
    });
    try {
      await updater.refresh();
      this.#updater = updater;
      this.#offline = true;
    } catch {
      // Nothing verified before, or it has expired: nothing to fall back on.
    }
  }

  #requireFresh(): Updater {
    if (!this.#updater) throw new FirmwardError('metadata_invalid', `The release list of ${this.name} has not been verified yet.`);
    return this.#updater;
  }

  /** A role's targets as tuf-js verified and persisted them (the file is written only after verification). */
  async #loadedRole(role: string): Promise<Targets | null> {
    try {
      const bytes = await readFile(path.join(this.#workDir, `${encodeURIComponent(role)}.json`), 'utf8');
      return Metadata.fromJSON(MetadataKind.Targets, JSON.parse(bytes) as never).signed;
    } catch {
      return null;
    }
  }

  /** The newest intact root: our anchor, the one before it, then the configured one. */
  async #anchor(): Promise<{ bytes: Buffer }> {
    for (const file of ['root.json', 'root.previous.json']) {
      try {
        const bytes = await readFile(path.join(this.#anchorDir, file));
        if (isRoot(bytes)) return { bytes };
      } catch {
        // missing or unreadable: try the next
      }
    }
    const configured = this.#o.initialRoot;
    let initial: Buffer;
    try {
      initial = configured instanceof Uint8Array ? Buffer.from(configured) : await readFile(configured.file);
    } catch (cause) {
      throw new FirmwardError('config_invalid', `The trusted root file of ${this.name} cannot be read.`, { cause });
    }
    if (!isRoot(initial)) throw new FirmwardError('config_invalid', `The trusted root configured for ${this.name} is not a TUF root.`);
    return { bytes: initial };
  }
}

/** True when `bytes` parse as TUF root metadata (signatures are checked when the root is used). */
export function isRoot(bytes: Uint8Array): boolean {
  try {
    Metadata.fromJSON(MetadataKind.Root, JSON.parse(Buffer.from(bytes).toString('utf8')) as never);
    return true;
  } catch {
    return false;
  }
}

function toSigned(info: TargetFile, role: string): SignedTarget | null {
  const sha256 = info.hashes['sha256'];
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) return null;
  return { path: info.path, length: info.length, sha256, custom: info.custom, role };
}

/** A folder of the published repository as a URL ending in a slash (tuf-js joins file names onto it). */
export function repositoryUrl(base: string, folder: 'metadata/' | 'targets/'): string {
  return new URL(folder, base.endsWith('/') ? base : `${base}/`).href;
}

export async function atomicWrite(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  // The rename itself is durable only once the folder is synced.
  const folder = await open(path.dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** The fetcher of an offline read: anything not in the local copies is simply not there. */
class NoNetwork extends BaseFetcher {
  override fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    return Promise.reject(new Error(`offline: ${url} is not fetched`));
  }
}
