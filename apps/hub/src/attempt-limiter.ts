/**
 * Failed attempts per address in a sliding window (wrong enrollment codes, wrong claim secrets).
 * An attempt is counted when it *begins*, synchronously, before anything is awaited: forty guesses
 * sent at once are forty attempts, not one (the window cannot be raced). A success gives its
 * attempt back.
 */
import { FirmwardError } from '@firmward/core';

export interface AttemptLimiterOptions {
  /** Attempts that may fail within `windowMs` before the next one is refused. */
  maxFailures: number;
  windowMs: number;
  now: () => number;
  /** The sentence a refused attempt gets. */
  message: string;
  /** At most this many addresses are remembered (the oldest are forgotten first). */
  maxKeys?: number;
}

/**
 * @example
 * const attempt = limiter.begin(remoteAddress); // throws too_many_attempts when the window is full
 * if (await checkCode(code)) attempt.succeeded();
 */
export class AttemptLimiter {
  readonly #o: AttemptLimiterOptions;
  readonly #attempts = new Map<string, number[]>();

  constructor(o: AttemptLimiterOptions) {
    this.#o = o;
  }

  begin(key: string): { succeeded(): void } {
    const now = this.#o.now();
    const recent = (this.#attempts.get(key) ?? []).filter((t) => t > now - this.#o.windowMs);
    if (recent.length >= this.#o.maxFailures) {
      this.#attempts.set(key, recent);
      const retryAfterSeconds = Math.max(1, Math.ceil((recent[0]! + this.#o.windowMs - now) / 1000));
      throw new FirmwardError('too_many_attempts', this.#o.message, { detail: { retryAfterSeconds } });
    }
    recent.push(now);
    this.#attempts.delete(key);
    this.#attempts.set(key, recent);
    this.#forgetOldest();
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        const list = this.#attempts.get(key);
        const i = list?.indexOf(now) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
      },
    };
  }

  /** Forgets every attempt from `key` (the right password: the person is who they say). */
  clear(key: string): void {
    this.#attempts.delete(key);
  }

  #forgetOldest(): void {
    const max = this.#o.maxKeys ?? 10_000;
    while (this.#attempts.size > max) {
      const oldest = this.#attempts.keys().next().value;
      if (oldest === undefined) break;
      this.#attempts.delete(oldest);
    }
  }
}
