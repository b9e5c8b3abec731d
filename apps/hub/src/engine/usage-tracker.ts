/**
 * Since when each device has been busy, from its state reports. A busy period is written to the
 * device's usage history when it ends (DeviceInbox); one still open counts as used up to now for
 * the checks (the learned quiet hours and "not in use").
 */
import type { EpochMs } from '@firmward/core';

type Period = { start: EpochMs; end: EpochMs };

export class UsageTracker {
  readonly #busySince = new Map<string, EpochMs>();

  /** The period that just ended, if this report ends one. */
  track(deviceId: string, busy: boolean, at: EpochMs): Period | null {
    const since = this.#busySince.get(deviceId);
    if (busy && since === undefined) this.#busySince.set(deviceId, at);
    if (!busy && since !== undefined) {
      this.#busySince.delete(deviceId);
      return { start: since, end: at };
    }
    return null;
  }

  /** The stored periods, plus the one still open up to now. */
  withOpen(deviceId: string, usage: Period[], now: EpochMs): Period[] {
    const since = this.#busySince.get(deviceId);
    return since === undefined ? usage : [...usage, { start: since, end: now }];
  }
}
