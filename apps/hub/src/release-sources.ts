/**
 * The hub's releases from every place that may vouch for firmware: each maker's signed
 * repository (one trusted root each) and the ecosystems the bridges speak for (Zigbee2MQTT's OTA
 * index, Shelly's stable channel). One source refusing — expired, replayed, badly signed — costs
 * only that source's new releases: its last verified set stays, the others go on.
 */
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { Bridge, ImageRefusal, ReleaseSource } from '@firmward/ports';

export interface SourceRefusal {
  source: string;
  code: string;
  message: string;
}

export class ReleaseSources implements ReleaseSource {
  readonly name = 'releases';
  readonly #sources: () => readonly ReleaseSource[];
  readonly #bridges: () => readonly Bridge[];
  readonly #lastGood = new Map<string, Release[]>();
  readonly #refusals = new Map<string, SourceRefusal>();
  readonly #onRefused: (refusal: SourceRefusal) => void;
  readonly #now: () => number;
  readonly #refreshedAt = new Map<string, number>();

  /**
   * `sources` may be a function: repositories are added and removed while the hub runs
   * (onboarding/repositories.ts). `bridges` is asked at every refresh: bridges may be added after
   * the sources (the DDI gateway needs them to serve images).
   */
  constructor(o: {
    sources: readonly ReleaseSource[] | (() => readonly ReleaseSource[]); bridges?: () => readonly Bridge[]; onRefused?: (refusal: SourceRefusal) => void; now?: () => number;
  }) {
    const sources = o.sources;
    if (typeof sources !== 'function') {
      const names = new Set<string>();
      for (const s of sources) {
        if (names.has(s.name)) throw new FirmwardError('config_invalid', `Two release repositories are both called "${s.name}"; give each its own name.`);
        names.add(s.name);
      }
    }
    this.#sources = typeof sources === 'function' ? sources : () => sources;
    this.#bridges = o.bridges ?? (() => []);
    this.#onRefused = o.onRefused ?? (() => {});
    this.#now = o.now ?? Date.now;
  }

  /** The sources' names, signed repositories first. */
  get names(): string[] {
    return this.#sources().map((s) => s.name);
  }

  /** How many releases each source vouched for at its last good read. */
  releaseCount(name: string): number {
    return this.#lastGood.get(name)?.length ?? 0;
  }

  /** The releases a source withholds because their image did not verify, with why. */
  refusedImagesOf(name: string): ImageRefusal[] {
    return this.#sources().find((s) => s.name === name)?.refusedImages?.() ?? [];
  }

  /** When a source was last read and trusted, or null. */
  refreshedAt(name: string): number | null {
    return this.#refreshedAt.get(name) ?? null;
  }

  /** Why a source's newest metadata was refused, by source name (shown in the API and the CLI). */
  get refusals(): ReadonlyMap<string, SourceRefusal> {
    return this.#refusals;
  }

  async refresh(signal?: AbortSignal): Promise<Release[]> {
    const sources = this.#sources();
    // A repository removed meanwhile vouches for nothing any more.
    const current = new Set(sources.map((s) => s.name));
    for (const name of [...this.#lastGood.keys(), ...this.#refusals.keys()]) {
      if (!current.has(name)) {
        this.#lastGood.delete(name);
        this.#refusals.delete(name);
        this.#refreshedAt.delete(name);
      }
    }
    for (const source of sources) {
      try {
        const releases = await source.refresh(signal);
        this.#lastGood.set(source.name, releases.map((r) => ({ ...r, repository: source.name })));
        this.#refusals.delete(source.name);
        this.#refreshedAt.set(source.name, this.#now());
      } catch (error) {
        const refusal: SourceRefusal = {
          source: source.name,
          code: isFirmwardError(error) ? error.code : 'internal',
          message: error instanceof Error ? error.message : String(error),
        };
        // Past its expiry a repository vouches for nothing (a freeze attack hides newer metadata, such
        // as a retraction); any other refusal keeps the last verified set, which was valid when read —
        // also across a hub restart, from the source's own verified copies when it is out of reach.
        if (refusal.code === 'metadata_expired') this.#lastGood.delete(source.name);
        else if (!this.#lastGood.has(source.name)) {
          const kept = source.lastVerified?.() ?? null;
          if (kept !== null) this.#lastGood.set(source.name, kept.map((r) => ({ ...r, repository: source.name })));
        }
        const before = this.#refusals.get(source.name);
        this.#refusals.set(source.name, refusal);
        if (before?.code !== refusal.code || before.message !== refusal.message) this.#onRefused(refusal);
      }
    }
    const byId = new Map<string, Release>();
    for (const release of [...[...this.#lastGood.values()].flat(), ...this.#bridges().flatMap((b) => b.releases())]) {
      // The same vendor/model/version from two places is ambiguous; the first (signed repositories come first) wins.
      if (!byId.has(release.id)) byId.set(release.id, release);
    }
    return [...byId.values()];
  }

  async imagePath(release: Release): Promise<string> {
    if (release.origin) throw new FirmwardError('image_unavailable', `${release.id} is delivered by ${release.origin.ecosystem}, not by this hub.`);
    const source = this.#sources().find((s) => s.name === release.repository);
    if (!source) throw new FirmwardError('image_unavailable', `No repository "${release.repository ?? '?'}" vouches for ${release.id} any more.`);
    return source.imagePath(release);
  }
}
