/**
 * A device for which the maker signed a release that does not apply to it — another hardware
 * revision, a model spelled differently, a stepping stone needed first, only older versions — is
 * told so in its history once per release and reason, not at every plan (issue 14, finding 2).
 * The device view says the same sentence all along (the planner's reason).
 */
import type { Device, EpochMs, NoJob } from '@firmward/core';
import type { NewHistoryEvent, Store } from '@firmward/ports';

/** The planner's reasons worth a history line: a release exists but is not for this device. */
const SAID_ONCE = new Set(['model_mismatch', 'hardware_mismatch', 'not_applicable_from', 'downgrade']);
/** How far back a device's history is read to find the line said before (a restart forgets what was said). */
const LOOK_BACK_EVENTS = 50;
const LINES_PER_TRANSACTION = 1000;

export class NotApplicableNotes {
  readonly #store: Store;
  readonly #onHistory: (event: NewHistoryEvent) => void;
  /** `device|release|code` already in the history. */
  readonly #said = new Set<string>();

  constructor(o: { store: Store; onHistory?: (event: NewHistoryEvent) => void }) {
    this.#store = o.store;
    this.#onHistory = o.onHistory ?? (() => {});
  }

  async record(noJob: readonly NoJob[], devices: ReadonlyMap<string, Pick<Device, 'homeId'>>, now: EpochMs): Promise<void> {
    const lines: NewHistoryEvent[] = [];
    const keys: string[] = [];
    for (const { deviceId, reason, releaseId } of noJob) {
      if (releaseId === undefined || !SAID_ONCE.has(reason.code)) continue;
      const key = `${deviceId}|${releaseId}|${reason.code}`;
      if (this.#said.has(key)) continue;
      const homeId = devices.get(deviceId)?.homeId;
      if (homeId === undefined) continue;
      keys.push(key);
      const recent = await this.#store.listEvents({ deviceId, limit: LOOK_BACK_EVENTS });
      if (recent.some((e) => e.code === reason.code && e.message === reason.message)) continue;
      lines.push({ at: now, homeId, deviceId, jobId: null, kind: 'decision', from: null, to: null, code: reason.code, message: reason.message, actor: 'hub' });
    }
    // By the thousand in one transaction: a first plan of a large fleet says this for thousands of
    // devices, and a commit each (an fsync each) made that plan three times slower.
    for (let i = 0; i < lines.length; i += LINES_PER_TRANSACTION) {
      const batch = lines.slice(i, i + LINES_PER_TRANSACTION);
      await this.#store.transaction(async (tx) => {
        for (const line of batch) await tx.appendEvent(line);
      });
    }
    for (const key of keys) this.#said.add(key);
    for (const line of lines) this.#onHistory(line);
  }
}
