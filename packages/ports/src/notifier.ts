import type { Job } from '@firmward/core';
import type { NewHistoryEvent } from './store.ts';

/** What listeners learn of a job that changed: which one, where, and its new state (small enough to cross instances). */
export type JobRef = Pick<Job, 'id' | 'homeId' | 'deviceId' | 'releaseId' | 'state'>;

/**
 * What was committed, said once the transaction that wrote it is durable. Whoever holds derived
 * state — the planner's idea of what is queued, the scheduler's idea of which homes to look at,
 * the dashboard's live stream — learns of a change only through this, so nothing acts on a write
 * that was rolled back.
 */
export type CommittedChange = (
  /** A history line was written. */
  | { kind: 'history'; event: NewHistoryEvent }
  /** A job's state changed (queued, moved on, ended); `ended` when it reached a final state. */
  | { kind: 'job'; job: JobRef; ended: boolean }
  /** One device changed: added, moved, its version, settings, skips or "ignored". */
  | { kind: 'device'; deviceId: string; homeId: string }
  /** One home changed: its settings, its halt, its devices as a whole (a home added or removed). */
  | { kind: 'home'; homeId: string }
  /** Something every home may depend on: the releases, a staged rollout, a device set registered by a bridge. */
  | { kind: 'fleet'; why: string }
) & {
  /**
   * The hub instance that committed it, when another one did (PostgresChangeFeed); absent for this
   * instance's own. What follows from a change in the store (a plan) is done by the instance that
   * committed it; the others only learn what to look at again.
   */
  from?: string;
};

/**
 * The after-commit event bus. Best effort and in order: a failing listener is logged by the
 * implementation, never thrown back at the writer (the write has committed already). In one hub
 * process it is `LocalNotifier`; hub instances sharing PostgreSQL hear each other's changes
 * through `PostgresChangeFeed` (LISTEN/NOTIFY), the same port.
 */
export interface Notifier {
  committed(change: CommittedChange): void;
  /** Calls `listener` with every change committed from now on; returns the unsubscribe. */
  subscribe(listener: (change: CommittedChange) => void): () => void;
}
