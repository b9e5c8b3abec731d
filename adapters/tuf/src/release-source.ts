/**
 * The hub's ReleaseSource over one maker's signed repository. A release exists for the hub only
 * when the maker's vendor key signed it inside that vendor's paths, under a timestamp, snapshot
 * and root the TUF workflow accepts; its image is mirrored into the hub only after its length and
 * SHA-256 match the signed target (invariant 4), and devices then download it from the hub.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { ReleaseSource } from '@firmward/ports';
import { releaseFromTarget } from './custom.ts';
import { openImage, openUrl } from './fetcher.ts';
import { TrustedRepository, repositoryUrl } from './trusted-repository.ts';

export interface TufReleaseSourceOptions {
  name: string;
  /** Where the maker publishes the repository (http(s) or file URL). */
  url: string;
  /** The maker's root.json the hub trusts first (after that, only rotations signed by it): its file, or its bytes as a person gave them. */
  rootFile: string | Uint8Array;
  /** The hub's folder for this repository: trusted metadata and mirrored images. */
  dir: string;
  timeoutMs?: number;
  /** A target the repository lists but that is refused (outside its vendor's paths, not a release): with why. */
  onTargetRefused?: (refusal: { path: string; error: FirmwardError }) => void;
}

/** Metadata file names a device may ask the hub's mirror for. */
const METADATA_FILE = /^(?:\d{1,10}\.)?[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\.json$/;

export class TufReleaseSource implements ReleaseSource {
  readonly name: string;
  readonly #o: TufReleaseSourceOptions;
  readonly #repo: TrustedRepository;
  readonly #imagesDir: string;
  /** Images hashed in this process, by sha256: the mirror is ours, but a file changed behind our back is caught at the next start. */
  readonly #verified = new Set<string>();
  readonly #mirroring = new Map<string, Promise<string>>();
  #kept: Release[] | null = null;
  #reported = new Set<string>();

  constructor(o: TufReleaseSourceOptions) {
    this.name = o.name;
    this.#o = o;
    this.#repo = new TrustedRepository({ name: o.name, url: o.url, dir: path.join(o.dir, 'trust'), initialRoot: typeof o.rootFile === 'string' ? { file: o.rootFile } : o.rootFile, ...(o.timeoutMs !== undefined && { timeoutMs: o.timeoutMs }) });
    this.#imagesDir = path.join(o.dir, 'images');
  }

  get repository(): TrustedRepository {
    return this.#repo;
  }

  async refresh(): Promise<Release[]> {
    this.#kept = null;
    try {
      await this.#repo.refresh();
    } catch (error) {
      // Out of reach: the releases verified before (and not expired) are still vouched for.
      if (this.#repo.offline) this.#kept = await this.#releases().catch(() => null);
      throw error;
    }
    return this.#releases();
  }

  /** After a refresh that could not reach the repository: the releases its earlier, unexpired metadata still vouches for, or null. */
  lastVerified(): Release[] | null {
    return this.#kept;
  }

  async #releases(): Promise<Release[]> {
    const listing = await this.#repo.listTargets();
    const refusals = listing.refused.map(({ path: p, error }) => ({ path: p, error }));
    const releases: Release[] = [];
    for (const target of listing.targets) {
      try {
        releases.push(releaseFromTarget(this.name, target.path, target.length, target.sha256, target.custom));
      } catch (error) {
        if (!isFirmwardError(error)) throw error;
        refusals.push({ path: target.path, error });
      }
    }
    // Two images for one vendor/model/version: which was meant is a guess, and a release is never guessed.
    const count = new Map<string, number>();
    for (const r of releases) count.set(r.id, (count.get(r.id) ?? 0) + 1);
    const unique = releases.filter((r) => {
      if (count.get(r.id) === 1) return true;
      refusals.push({ path: r.image.path, error: new FirmwardError('metadata_invalid', `${this.name} signs more than one image for ${r.id}; none of them is offered.`) });
      return false;
    });
    this.#report(refusals);
    return unique;
  }

  /** Each refused target is reported once, when it first appears (a refresh runs every few minutes). */
  #report(refusals: { path: string; error: FirmwardError }[]): void {
    const now = new Set<string>();
    for (const refusal of refusals) {
      const key = `${refusal.path}\n${refusal.error.code}`;
      now.add(key);
      if (!this.#reported.has(key)) this.#o.onTargetRefused?.(refusal);
    }
    this.#reported = now;
  }

  /**
   * The mirrored image of a release, fetched once, verified before it is kept. The release must
   * still be what the repository vouches for right now: a release row changed in the hub's own
   * database does not get an image.
   */
  async imagePath(release: Release): Promise<string> {
    const signed = await this.#repo.target(release.image.path);
    if (!signed || signed.sha256 !== release.image.sha256 || signed.length !== release.image.lengthBytes) {
      throw new FirmwardError('not_signed', `${this.name} does not vouch for this image of ${release.id}; it is not served.`);
    }
    const file = path.join(this.#imagesDir, release.image.sha256);
    if (this.#verified.has(release.image.sha256)) return file;
    let pending = this.#mirroring.get(release.image.sha256);
    if (!pending) {
      pending = this.#mirror(release, file).finally(() => this.#mirroring.delete(release.image.sha256));
      this.#mirroring.set(release.image.sha256, pending);
    }
    return pending;
  }

  /** A metadata file of the repository, for the hub's mirror (devices verify it with their own root). */
  async metadataFile(name: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    if (!METADATA_FILE.test(name)) throw new FirmwardError('not_found', `"${name}" is not a metadata file name.`);
    return openUrl(new URL(name, repositoryUrl(this.#o.url, 'metadata/')).href, this.#o.timeoutMs ?? 30_000);
  }

  async #mirror(release: Release, file: string): Promise<string> {
    await mkdir(this.#imagesDir, { recursive: true });
    const existing = await stat(file).catch(() => null);
    if (existing?.isFile() === true && existing.size === release.image.lengthBytes) {
      if ((await hashFile(file)) === release.image.sha256) {
        this.#verified.add(release.image.sha256);
        return file;
      }
    }
    const [vendorModelVersion, base] = splitPath(release.image.path);
    const url = new URL(`${vendorModelVersion}/${release.image.sha256}.${base}`, repositoryUrl(this.#o.url, 'targets/')).href;
    const tmp = `${file}.${process.pid}.part`;
    const hash = createHash('sha256');
    let length = 0;
    const out = await open(tmp, 'w', 0o600);
    try {
      const body = await openImage(url, this.#o.timeoutMs ?? 10 * 60_000).catch((cause: unknown) => {
        throw new FirmwardError('image_unavailable', `The image of ${release.id} cannot be fetched from ${this.name} right now.`, { cause });
      });
      for await (const chunk of body) {
        const bytes = chunk as Buffer;
        length += bytes.byteLength;
        // Never read past the signed length (endless-data attack): stop at the first extra byte.
        if (length > release.image.lengthBytes) throw new FirmwardError('image_length_mismatch', `The image of ${release.id} from ${this.name} is longer than its signed ${release.image.lengthBytes} bytes; it was refused.`);
        hash.update(bytes);
        await out.write(bytes);
      }
      if (length !== release.image.lengthBytes) throw new FirmwardError('image_length_mismatch', `The image of ${release.id} from ${this.name} is ${length} bytes, not its signed ${release.image.lengthBytes}; it was refused.`);
      if (hash.digest('hex') !== release.image.sha256) throw new FirmwardError('image_hash_mismatch', `The image of ${release.id} from ${this.name} does not match its signed checksum; it was refused.`);
      await out.sync();
    } catch (error) {
      await out.close();
      await rm(tmp, { force: true });
      throw error;
    }
    await out.close();
    await rename(tmp, file);
    this.#verified.add(release.image.sha256);
    return file;
  }
}

function splitPath(targetPath: string): [string, string] {
  const at = targetPath.lastIndexOf('/');
  return [targetPath.slice(0, at), targetPath.slice(at + 1)];
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await handle.close().catch(() => undefined);
  }
  return hash.digest('hex');
}
