/**
 * The releases the hub may plan and offer, as last vouched for by the release source. Read from the
 * store at start (what was trusted before a restart stays trusted until the source says otherwise),
 * then from the source every `refreshSeconds`. A source that cannot be trusted right now changes
 * nothing: the last good set stays.
 */
import { SECOND_MS } from '@firmward/core';
import type { EpochMs, Release } from '@firmward/core';
import type { Clock, Logger, Notifier, ReleaseSource, Store } from '@firmward/ports';
import { describe } from './describe.ts';

export interface ReleaseCacheDeps {
  store: Store;
  source: ReleaseSource;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  refreshSeconds: number;
}

export class ReleaseCache {
  readonly #d: ReleaseCacheDeps;
  #releases = new Map<string, Release>();
  #refreshedAt: EpochMs = -Infinity;

  constructor(deps: ReleaseCacheDeps) {
    this.#d = deps;
  }

  get all(): ReadonlyMap<string, Release> {
    return this.#releases;
  }

  async load(): Promise<void> {
    for (const r of await this.#d.store.listReleases()) this.#releases.set(r.id, r);
  }

  isDue(now: EpochMs): boolean {
    return now - this.#refreshedAt >= this.#d.refreshSeconds * SECOND_MS;
  }

  /** Reads the source again at the next tick (an image that was withheld has verified). */
  refreshSoon(): void {
    this.#refreshedAt = -Infinity;
  }

  async refresh(): Promise<void> {
    this.#refreshedAt = this.#d.clock.now();
    try {
      const fresh = await this.#d.source.refresh();
      const changed = fresh.length !== this.#releases.size || fresh.some((r) => JSON.stringify(r) !== JSON.stringify(this.#releases.get(r.id)));
      if (!changed) return;
      await this.#d.store.putReleases(fresh);
      this.#releases = new Map(fresh.map((r) => [r.id, r]));
      // Plan again, and every home is looked at: a release gone or retracted changes what waiting updates say.
      this.#d.notifier.committed({ kind: 'fleet', why: 'releases' });
      this.#d.log.info('releases refreshed', { count: fresh.length, source: this.#d.source.name });
    } catch (error) {
      // Keep the last good set; a source that cannot be trusted adds nothing.
      this.#d.log.warn('release source refused', { error: describe(error) });
    }
  }
}
