/**
 * Counting for the MQTT fleet benchmark, shared by the benchmark's own process and its hub
 * instances (mqtt-fleet-hub.ts): a count that can be awaited, and a silent logger that counts
 * warnings and errors.
 */
import { silentLogger } from '@firmward/ports';
import type { Logger } from '@firmward/ports';

/** A count that can be awaited: when it reached a target, or that it did not within a time. */
export class Tally {
  count = 0;
  reachedAt = Number.NaN;
  #target = Infinity;
  #resolve: (() => void) | null = null;

  add(): void {
    this.count++;
    if (this.count >= this.#target && this.#resolve) {
      this.reachedAt = performance.now();
      this.#resolve();
      this.#resolve = null;
    }
  }

  /** Resolves true once the count reaches `target`, false after `timeoutMs` (a lost message is a shortfall, not a hang). */
  reach(target: number, timeoutMs: number): Promise<boolean> {
    if (this.count >= target) {
      this.reachedAt = performance.now();
      return Promise.resolve(true);
    }
    this.#target = target;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#resolve = null;
        this.reachedAt = performance.now();
        resolve(false);
      }, timeoutMs);
      this.#resolve = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/** Silent, but counts what the hub logged as a warning or an error (a refused report would be one); shows the first few. */
export function countingLogger(name = 'hub'): { log: Logger; warnings: () => number; errors: () => number } {
  let warnings = 0;
  let errors = 0;
  let shown = 0;
  const show = (level: string, message: string, fields?: Record<string, unknown>) => {
    if (shown++ < 5) console.error(`${name} ${level}: ${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  const log: Logger = {
    ...silentLogger,
    warn: (message, fields) => {
      warnings++;
      show('warning', message, fields);
    },
    error: (message, fields) => {
      errors++;
      show('error', message, fields);
    },
    child: () => log,
  };
  return { log, warnings: () => warnings, errors: () => errors };
}
