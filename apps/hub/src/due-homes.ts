/**
 * Which homes the engine looks at, and when: a home is looked at when something about it changed
 * (a device's report, a job's transition, a person, a plan, a release, a rollout wave) or when a
 * time it computed comes due (SequencerDecision.nextLookAt, an offer to re-send). A home with
 * nothing due is not read at all, so an idle fleet costs nothing per tick.
 *
 * In memory, per instance. After a start every home is due (nothing is known yet); a home this
 * instance takes over from another is due at once (Store.claimHomes). What another instance
 * changes in a home this one holds reaches it through the engine's safety net
 * (EngineConfig.lookAtLeastEverySeconds): every look sets the next one no later than that.
 */
import type { EpochMs } from '@firmward/core';

export class DueHomes {
  /** When each home is next due; absent: only a change makes it due. */
  readonly #due = new Map<string, EpochMs>();
  /** Due at once, whoever they are (the start, a release that changed, a wave that opened). */
  #everyHome = true;

  /** Something about the home changed: it is looked at in the next pass. */
  now(homeId: string): void {
    this.#due.set(homeId, -Infinity);
  }

  /** Every home is looked at in the next pass. */
  all(): void {
    this.#everyHome = true;
  }

  /** The home is due at `at` unless it is due earlier already. */
  at(homeId: string, at: EpochMs): void {
    const current = this.#due.get(homeId);
    if (current === undefined || at < current) this.#due.set(homeId, at);
  }

  /**
   * The homes among `held` due by `now`, in `held`'s order; each is taken off (its look sets its
   * next time). `held` is what this instance holds this pass.
   */
  take(held: readonly string[], now: EpochMs): string[] {
    if (this.#everyHome) {
      this.#everyHome = false;
      for (const id of held) this.#due.delete(id);
      return [...held];
    }
    const due: string[] = [];
    for (const id of held) {
      const at = this.#due.get(id);
      if (at !== undefined && at <= now) {
        this.#due.delete(id);
        due.push(id);
      }
    }
    return due;
  }
}
