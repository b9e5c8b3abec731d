/**
 * The hub's ReleaseSource over one maker's signed repository. A release exists for the hub only
 * when the maker's vendor key signed it inside that vendor's paths, under a timestamp, snapshot
 * and root the TUF workflow accepts; its image is mirrored into the hub only after its length and
 * SHA-256 match the signed target (invariant 4), and devices then download it from the hub.
 *
 * The image is mirrored and verified *before* the release is handed to the hub, not when the first
 * device asks for it: one altered file at the maker's server would otherwise be offered to every
 * device, fail each download and halt every home it reached. A release whose image does not
 * verify is withheld (never planned, never offered) and tried again with backoff; it is handed to
 * the hub at the first refresh after its image verifies.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { ImageRefusal, ReleaseSource } from '@firmward/ports';
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
  /** A release withheld because its image did not verify; told once per release and code, until it verifies. */
  onImageRefused?: (release: Release, refusal: ImageRefusal) => void;
  /** An image verified after the refresh that needed it had returned (large, slow, or refused before): refresh again to plan it. */
  onImageVerified?: (release: Release) => void;
  /** How long a refresh waits for the images it mirrors before it returns without the unfinished ones (default 10 s). */
  mirrorWaitMs?: number;
  /** Backoff between tries of an image that did not verify: first wait, doubling up to the last (default 1 min → 1 h). */
  imageRetryMs?: { first: number; max: number };
  now?: () => number;
}

/** Images mirrored at once: a refresh listing many new releases does not open them all against the maker's server together. */
const MIRROR_CONCURRENCY = 2;

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
  /** Why each withheld release's image did not verify, and when it is tried again (by release id). */
  readonly #imageRefusals = new Map<string, ImageRefusal>();
  /** Releases a refresh returned without (their image still mirroring): whoever waits is told when they verify. */
  readonly #awaited = new Set<string>();
  #mirrorsRunning = 0;
  readonly #mirrorQueue: (() => void)[] = [];
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
    return this.#withVerifiedImages(unique);
  }

  /** Withheld images are tried at the next refresh, backoff or not (a person asked to read the repository again now). */
  retryRefusedImages(): void {
    for (const refusal of this.#imageRefusals.values()) refusal.retryAt = 0;
  }

  /** The releases withheld because their image did not verify (yet), with why. */
  refusedImages(): ImageRefusal[] {
    return [...this.#imageRefusals.values()].sort((a, b) => (a.releaseId < b.releaseId ? -1 : a.releaseId > b.releaseId ? 1 : 0));
  }

  /**
   * Only releases whose image verified (or that are retracted: never offered, but the planner
   * must know a device runs one). Mirrors the others — each no sooner than its backoff allows —
   * waiting for them at most `mirrorWaitMs`.
   */
  async #withVerifiedImages(releases: Release[]): Promise<Release[]> {
    const now = (this.#o.now ?? Date.now)();
    const listed = new Set(releases.map((r) => r.id));
    for (const id of this.#imageRefusals.keys()) if (!listed.has(id)) this.#imageRefusals.delete(id);
    const tries: Promise<unknown>[] = [];
    for (const release of releases) {
      if (release.retracted || this.#verified.has(release.image.sha256)) continue;
      const refused = this.#imageRefusals.get(release.id);
      if (refused !== undefined && refused.retryAt > now && !this.#mirroring.has(mirrorKey(release))) continue;
      tries.push(this.#mirrorOnce(release, path.join(this.#imagesDir, release.image.sha256)).catch(() => undefined));
    }
    if (tries.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(tries),
        new Promise((resolve) => { timer = setTimeout(resolve, this.#o.mirrorWaitMs ?? 10_000); }),
      ]);
      clearTimeout(timer);
    }
    const ready = releases.filter((r) => r.retracted || this.#verified.has(r.image.sha256));
    for (const r of releases) if (!ready.includes(r) && this.#mirroring.has(mirrorKey(r))) this.#awaited.add(r.id);
    return ready;
  }

  /** One mirror at a time per image and place (a device's download and a refresh share it), at most MIRROR_CONCURRENCY in all. */
  #mirrorOnce(release: Release, file: string): Promise<string> {
    const key = mirrorKey(release);
    let pending = this.#mirroring.get(key);
    if (!pending) {
      pending = this.#queued(() => this.#mirror(release, file))
        .then((verified) => {
          const wasRefused = this.#imageRefusals.delete(release.id);
          if (this.#awaited.delete(release.id) || wasRefused) this.#o.onImageVerified?.(release);
          return verified;
        }, (error: unknown) => {
          this.#awaited.delete(release.id);
          throw this.#refuseImage(release, error);
        })
        .finally(() => this.#mirroring.delete(key));
      this.#mirroring.set(key, pending);
    }
    return pending;
  }

  async #queued<T>(work: () => Promise<T>): Promise<T> {
    if (this.#mirrorsRunning >= MIRROR_CONCURRENCY) await new Promise<void>((resolve) => this.#mirrorQueue.push(resolve));
    this.#mirrorsRunning += 1;
    try {
      return await work();
    } finally {
      this.#mirrorsRunning -= 1;
      this.#mirrorQueue.shift()?.();
    }
  }

  /** Records why an image did not verify and when to try again; tells once per release and code. */
  #refuseImage(release: Release, error: unknown): FirmwardError {
    const refusal = isFirmwardError(error) && ['image_hash_mismatch', 'image_length_mismatch', 'image_unavailable'].includes(error.code)
      ? error
      : new FirmwardError('image_unavailable', `The image of ${release.id} cannot be fetched from ${this.name} right now.`, { cause: error });
    const before = this.#imageRefusals.get(release.id);
    const attempts = (before?.attempts ?? 0) + 1;
    const backoff = this.#o.imageRetryMs ?? { first: 60_000, max: 3600_000 };
    const wait = Math.min(backoff.max, backoff.first * 2 ** Math.min(attempts - 1, 30));
    const entry: ImageRefusal = {
      releaseId: release.id, code: refusal.code, message: `${refusal.message} Nothing is offered; the hub tries the maker's server again later.`,
      attempts, retryAt: (this.#o.now ?? Date.now)() + wait,
    };
    this.#imageRefusals.set(release.id, entry);
    if (before?.code !== entry.code) this.#o.onImageRefused?.(release, entry);
    return refusal;
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
    return this.#mirrorOnce(release, file);
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
    const url = new URL(consistentTargetPath(release.image.path, release.image.sha256), repositoryUrl(this.#o.url, 'targets/')).href;
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

/** An image is fetched from its place in the repository: two targets with one hash are two places. */
const mirrorKey = (release: Release): string => `${release.image.sha256}\n${release.image.path}`;

/**
 * Where a consistent snapshot keeps a target: `<folders>/<sha256>.<name>`, relative to `targets/`,
 * each segment URL-encoded (a name may hold `?`, `#` or `%`). A path without a folder stays a
 * relative `<sha256>.<name>`: joined with a leading `/` it would resolve at the server's root.
 */
export function consistentTargetPath(targetPath: string, sha256: string): string {
  const segments = targetPath.split('/');
  segments.push(`${sha256}.${segments.pop() ?? ''}`);
  return segments.map(encodeURIComponent).join('/');
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
