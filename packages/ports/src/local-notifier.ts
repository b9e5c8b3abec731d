import type { Logger } from './logger.ts';
import type { CommittedChange, Notifier } from './notifier.ts';

/** The after-commit bus inside one process: listeners are called synchronously, in subscription order. */
export class LocalNotifier implements Notifier {
  readonly #listeners = new Set<(change: CommittedChange) => void>();
  readonly #log: Logger | null;

  constructor(log: Logger | null = null) {
    this.#log = log;
  }

  committed(change: CommittedChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        // The write committed already; one listener's fault must not hide it from the others.
        this.#log?.error('a listener of committed changes failed', { kind: change.kind, error: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  subscribe(listener: (change: CommittedChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
