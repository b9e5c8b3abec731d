import type { Clock } from '@firmward/ports';

/**
 * `clock.sleep` for loops that wait many times on one long-lived signal: each wait gets its own
 * short-lived signal and unhooks itself afterwards, so a week of waits does not pile listeners
 * onto the long-lived one (whatever the clock does with the signal it is given).
 *
 * @example
 * while (!signal.aborted) { await report(); await sleepOn(clock, intervalMs, signal); }
 */
export async function sleepOn(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const own = new AbortController();
  const forward = () => own.abort(signal.reason);
  signal.addEventListener('abort', forward, { once: true });
  try {
    await clock.sleep(ms, own.signal);
  } finally {
    signal.removeEventListener('abort', forward);
  }
}
