/**
 * Staged rollouts: each running one opens its next wave once the newest is done, or stops by itself
 * on too many failures or stuck updates (core rollout.ts). Every hub instance computes the same
 * waves; the compare-and-set on the rollout's version lets exactly one of them move it on. An
 * aborted rollout's updates that have not started are cancelled; running ones finish.
 *
 * A rollout's jobs are counted again only when one of them changed here, or `RECOUNT_MS` after the
 * last count (stuck updates are a matter of time, and other instances' jobs change unseen here):
 * a rollout of 100,000 devices is not read in full at every tick.
 */
import { SECOND_MS, advanceRollout, assignWaves, rolloutProgress } from '@firmward/core';
import type { EpochMs, Rollout } from '@firmward/core';
import type { Logger, Notifier, ReleaseJob, Store } from '@firmward/ports';

export interface StagedRollout {
  rollout: Rollout;
  /** The wave of every home. */
  waves: Map<string, number>;
}

export interface StagedRolloutsDeps {
  store: Store;
  log: Logger;
  notifier: Notifier;
  /** Calls off an update that has not started (an aborted rollout's). Moved on meanwhile: ignored. */
  cancel: (job: ReleaseJob, message: string) => Promise<void>;
  /**
   * A rollout moved: the homes it lets go or holds are looked at — the homes of the waves that
   * opened, or every home (`null`) when it paused, stopped, was called off or completed.
   */
  moved: (homeIds: readonly string[] | null) => void;
}

const RECOUNT_MS = 10 * SECOND_MS;

export class StagedRollouts {
  readonly #d: StagedRolloutsDeps;
  #current = new Map<string, StagedRollout>();
  /** Waves by rollout id, for the home list they were computed from. */
  readonly #waves = new Map<string, { homeIds: readonly string[]; waves: Map<string, number> }>();
  /** Releases with a job that changed here since their rollout was last counted. */
  readonly #touched = new Set<string>();
  /** When each rollout was last counted (or its aborted leftovers cancelled), and at which version. */
  readonly #counted = new Map<string, { at: EpochMs; version: number }>();
  /** Each rollout's state and newest wave as of the last pass. */
  readonly #seen = new Map<string, { state: Rollout['state']; wave: number }>();
  #firstPass = true;

  constructor(deps: StagedRolloutsDeps) {
    this.#d = deps;
    deps.notifier.subscribe((change) => {
      if (change.kind === 'job') this.#touched.add(change.job.releaseId);
    });
  }

  /** The staged rollouts as of the last pass, by release id. */
  get current(): ReadonlyMap<string, StagedRollout> {
    return this.#current;
  }

  isAborted(releaseId: string): boolean {
    return this.#current.get(releaseId)?.rollout.state === 'aborted';
  }

  async advance(homeIds: readonly string[], now: EpochMs): Promise<void> {
    const current = new Map<string, StagedRollout>();
    for (let rollout of await this.#d.store.listRollouts()) {
      const waves = this.#wavesOf(rollout, homeIds);
      if ((rollout.state === 'running' || rollout.state === 'aborted') && this.#due(rollout, now)) {
        this.#touched.delete(rollout.releaseId);
        this.#counted.set(rollout.id, { at: now, version: rollout.version });
        const jobs = await this.#d.store.listReleaseJobs(rollout.releaseId);
        if (rollout.state === 'running') {
          const next = advanceRollout(rollout, rolloutProgress(rollout, jobs, waves, now), now);
          if (next && (await this.#d.store.saveRollout(next, rollout.version))) {
            const entry = next.log[next.log.length - 1];
            this.#d.log.info(`rollout ${rollout.releaseId}: ${entry?.message ?? next.state}`, { rolloutId: rollout.id });
            rollout = next;
            this.#counted.set(rollout.id, { at: now, version: rollout.version });
          }
        }
        if (rollout.state === 'aborted') await this.#cancelNotStarted(rollout, jobs);
      }
      this.#saw(rollout, waves);
      current.set(rollout.releaseId, { rollout, waves });
    }
    this.#current = current;
    this.#firstPass = false;
  }

  /**
   * The homes a rollout lets go or holds are looked at when it moved — here or on another instance
   * (each pass lists the rollouts): those of the waves that opened, or every home when it paused,
   * stopped, was called off, completed or first appeared.
   */
  #saw(rollout: Rollout, waves: ReadonlyMap<string, number>): void {
    const before = this.#seen.get(rollout.id);
    this.#seen.set(rollout.id, { state: rollout.state, wave: rollout.wave });
    if (before === undefined) {
      // At the first pass every home is due already.
      if (!this.#firstPass) this.#d.moved(null);
      return;
    }
    if (before.state === rollout.state && before.wave === rollout.wave) return;
    // The last wave also holds any home the waves were not computed for (rolloutHold): everyone then.
    const someWaves = before.state === 'running' && rollout.state === 'running' && rollout.wave < rollout.rules.waves.length - 1;
    this.#d.moved(someWaves ? homesOpened(waves, before.wave, rollout.wave) : null);
  }

  #due(rollout: Rollout, now: EpochMs): boolean {
    const last = this.#counted.get(rollout.id);
    return last === undefined || last.version !== rollout.version || this.#touched.has(rollout.releaseId) || now - last.at >= RECOUNT_MS;
  }

  #wavesOf(rollout: Rollout, homeIds: readonly string[]): Map<string, number> {
    const cached = this.#waves.get(rollout.id);
    if (cached?.homeIds === homeIds) return cached.waves;
    const waves = assignWaves(rollout, homeIds);
    this.#waves.set(rollout.id, { homeIds, waves });
    return waves;
  }

  async #cancelNotStarted(rollout: Rollout, jobs: readonly ReleaseJob[]): Promise<void> {
    for (const job of jobs) {
      if (job.state !== 'queued' && job.state !== 'waiting') continue;
      await this.#d.cancel(job, rollout.reason?.message ?? 'The staged rollout was called off.');
    }
  }
}

/** The homes of the waves after `from` up to `to` (those a wave opening lets go). */
function homesOpened(waves: ReadonlyMap<string, number>, from: number, to: number): string[] {
  const opened: string[] = [];
  for (const [homeId, wave] of waves) if (wave > from && wave <= to) opened.push(homeId);
  return opened;
}
