import type { EpochMs } from '@firmward/core';

/**
 * Time comes from here, so a whole week of quiet hours, battery drain and usage runs in a test in
 * milliseconds. `sleep` resolves after `ms` of *this clock's* time, or rejects when aborted.
 */
export interface Clock {
  now(): EpochMs;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
