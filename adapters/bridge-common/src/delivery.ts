/**
 * Ordered delivery to the hub, one chain per device. The bridge changes its own records
 * synchronously as messages and commands arrive and only queues what it tells the hub: the hub
 * calls `send()` while holding its home's lock, and its handlers take that same lock, so a
 * command must never wait for a handler call (that would deadlock).
 */
import type { Logger } from '@firmward/ports';

/**
 * @example
 * const deliveries = new DeliveryQueue(log);
 * deliveries.push(deviceId, () => handler.onState(deviceId, state, at));
 * await deliveries.drain(); // in stop(): everything received has reached the hub
 */
export class DeliveryQueue {
  readonly #log: Logger;
  /** The tail of each device's chain; removed once it runs dry. */
  readonly #tails = new Map<string, Promise<void>>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Runs `task` after everything queued before it for `key`. A failing task is logged; the next one still runs. */
  push(key: string, task: () => Promise<void> | void): void {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous
      .then(task)
      .catch((error: unknown) => {
        // The handler contract says it does not throw; if it does, one bad call must not stop the others.
        this.#log.error('A bridge handler call failed.', { key, error: String(error) });
      })
      .finally(() => {
        if (this.#tails.get(key) === next) this.#tails.delete(key);
      });
    this.#tails.set(key, next);
  }

  /** Resolves once every queued delivery has run (including those queued meanwhile). */
  async drain(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all([...this.#tails.values()]);
  }
}
