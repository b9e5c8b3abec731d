import { FirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { Clock } from './clock.ts';

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new FirmwardError('internal', 'The wait was cancelled.', { cause: signal.reason });
}

/** Wall-clock time. */
export class SystemClock implements Clock {
  now(): EpochMs {
    return Date.now();
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return realSleep(ms, signal);
  }
}

function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Real time running `factor` times faster from `start` on: the demo's accelerated clock, shared
 * by hub and simulated devices so a night passes in a minute.
 */
export class ScaledClock implements Clock {
  readonly #origin: EpochMs;
  readonly #realOrigin: number;
  readonly factor: number;
  constructor(start: EpochMs, factor: number) {
    this.#origin = start;
    this.#realOrigin = performance.now();
    this.factor = factor;
  }
  now(): EpochMs {
    return Math.floor(this.#origin + (performance.now() - this.#realOrigin) * this.factor);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return realSleep(ms / this.factor, signal);
  }
}

interface Sleeper {
  at: EpochMs;
  seq: number;
  resolve: () => void;
}

/**
 * A clock that moves only when told to (the fake beside the port, STYLE principle 14). `advance`
 * wakes sleepers in time order and lets their continuations run before moving on.
 */
export class ManualClock implements Clock {
  #now: EpochMs;
  #seq = 0;
  #sleepers: Sleeper[] = [];
  constructor(start: EpochMs) {
    this.#now = start;
  }
  now(): EpochMs {
    return this.#now;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const onAbort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(abortError(signal!));
      };
      const sleeper: Sleeper = {
        at: this.#now + Math.max(0, ms), seq: this.#seq++,
        resolve: () => {
          // A long-lived signal must not collect one listener per sleep.
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#sleepers.push(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
  /** Number of pending sleepers (for tests). */
  get pending(): number {
    return this.#sleepers.length;
  }
  /** Moves time forward by `ms`, waking every sleeper due on the way, in order. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }
  async advanceTo(target: EpochMs): Promise<void> {
    for (;;) {
      this.#sleepers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#sleepers[0];
      if (!next || next.at > target) break;
      this.#sleepers.shift();
      this.#now = Math.max(this.#now, next.at);
      next.resolve();
      // Let the woken task run up to its next await before waking the next one.
      await flushMicrotasks();
    }
    this.#now = Math.max(this.#now, target);
    await flushMicrotasks();
  }
}

export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}
