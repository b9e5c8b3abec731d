/**
 * The planner's writer: which device gets a queued job for which release (core planner.ts), written
 * to the store. It learns what to plan from committed changes (Notifier): a job that ended or a
 * device that changed re-plans that device; a home's change, that home's devices; the releases, a
 * staged rollout or anything else fleet-wide, the whole fleet. Every plan sees the complete set of
 * open jobs of the devices it plans, and the store's unique index (one open job per device,
 * invariant 1) refuses a job another instance or a person queued first.
 */
import { newJob, planReleases, skipKey } from '@firmward/core';
import type { EpochMs, Home, Release } from '@firmward/core';
import type { CommittedChange, DeviceRow, NewHistoryEvent, Notifier, PlannedJob, Store } from '@firmward/ports';
import { NotApplicableNotes } from '../not-applicable.ts';

export interface PlanWriterDeps {
  store: Store;
  notifier: Notifier;
  /** The releases that may be planned (trusted, not called off by a staged rollout). */
  plannable: () => Release[];
}

/** Planned jobs inserted per transaction: short enough that device messages wait only milliseconds for the store. */
const PLAN_BATCH_JOBS = 1000;
/**
 * Past this many devices to re-plan at once, the whole fleet is planned instead: a full plan reads
 * every device in a few statements, a device's own plan takes a few reads of its own.
 */
const MAX_SCOPED_DEVICES = 500;

export class PlanWriter {
  readonly #d: PlanWriterDeps;
  readonly #notApplicable: NotApplicableNotes;
  #everything = true;
  readonly #devices = new Set<string>();
  readonly #homes = new Set<string>();

  constructor(deps: PlanWriterDeps) {
    this.#d = deps;
    this.#notApplicable = new NotApplicableNotes({ store: deps.store, onHistory: (event) => deps.notifier.committed({ kind: 'history', event }) });
    deps.notifier.subscribe((change) => this.#heard(change));
  }

  #heard(change: CommittedChange): void {
    // Another instance plans what it committed itself.
    if (change.from !== undefined) return;
    switch (change.kind) {
      case 'job':
        if (change.ended) this.#devices.add(change.job.deviceId);
        break;
      case 'device':
        this.#devices.add(change.deviceId);
        break;
      case 'home':
        this.#homes.add(change.homeId);
        break;
      case 'fleet':
        this.#everything = true;
        break;
      case 'history':
        break;
    }
  }

  /** Plans what changed since the last plan; returns the jobs created. */
  async planChanged(now: EpochMs): Promise<number> {
    if (this.#everything || this.#devices.size > MAX_SCOPED_DEVICES) return this.planAll(now);
    if (this.#devices.size === 0 && this.#homes.size === 0) return 0;
    const deviceIds = [...this.#devices];
    const homeIds = [...this.#homes];
    this.#devices.clear();
    this.#homes.clear();
    const { store } = this.#d;
    const devices = new Map<string, DeviceRow>();
    for (const homeId of homeIds) for (const d of await store.listDevices({ homeId })) devices.set(d.id, d);
    for (const id of deviceIds) {
      if (devices.has(id)) continue;
      const d = await store.getDevice(id);
      if (d) devices.set(id, d);
    }
    const homes = new Map<string, Home>();
    for (const homeId of new Set([...devices.values()].map((d) => d.homeId))) {
      const home = await store.getHome(homeId);
      if (home) homes.set(homeId, home);
    }
    const open: { deviceId: string; targetVersion: string }[] = [];
    for (const id of devices.keys()) open.push(...await store.listJobs({ deviceId: id, open: true }));
    return this.#plan(now, [...devices.values()], homes, open);
  }

  /** Every device × release, a queued job where one applies. */
  async planAll(now: EpochMs): Promise<number> {
    this.#everything = false;
    this.#devices.clear();
    this.#homes.clear();
    const [devices, homes, open] = await Promise.all([this.#d.store.listDevices(), this.#d.store.listHomes(), this.#d.store.listOpenJobTargets()]);
    return this.#plan(now, devices, new Map(homes.map((h) => [h.id, h])), open);
  }

  async #plan(now: EpochMs, devices: DeviceRow[], homes: Map<string, Home>, open: { deviceId: string; targetVersion: string }[]): Promise<number> {
    const skipped = await this.#d.store.listSkips();
    // The update that halted a home is not queued again on its own: a person resumes (retry) or skips.
    for (const home of homes.values()) {
      if (!home.halt) continue;
      const failed = await this.#d.store.getJob(home.halt.jobId);
      if (failed) skipped.add(skipKey(failed.deviceId, failed.releaseId));
    }
    const plan = planReleases({
      now, devices, homes, releases: this.#d.plannable(),
      openJobsByDevice: new Map(open.map((j) => [j.deviceId, j])),
      skipped,
      ignored: new Set(devices.filter((d) => d.ignored).map((d) => d.id)),
    });
    await this.#notApplicable.record(plan.noJob, new Map(devices.map((d) => [d.id, d])), now);
    let created = 0;
    for (let i = 0; i < plan.jobs.length; i += PLAN_BATCH_JOBS) {
      created += await this.#insert(plan.jobs.slice(i, i + PLAN_BATCH_JOBS).map((p) => {
        const job = newJob({
          id: crypto.randomUUID(), homeId: p.homeId, deviceId: p.deviceId, releaseId: p.releaseId,
          fromVersion: p.fromVersion, targetVersion: p.targetVersion, priority: p.priority, requestedBy: null,
        }, now);
        const event: NewHistoryEvent = { at: now, homeId: job.homeId, deviceId: job.deviceId, jobId: job.id, kind: 'decision', from: null, to: 'queued', code: 'planned', message: p.reason.message, actor: 'hub' };
        return { job, event };
      }));
    }
    return created;
  }

  /**
   * Planned jobs go in by batches, one transaction each (Store.insertPlannedJobs: one statement per
   * thousand rows on PostgreSQL, one fsync per batch on SQLite): 100,000 devices plan in seconds,
   * and a device message waits for the store only as long as one batch takes. A device another
   * instance or a person queued a job for meanwhile is left out by the store. Only what committed
   * is announced.
   */
  async #insert(batch: PlannedJob[]): Promise<number> {
    const inserted = new Set((await this.#d.store.insertPlannedJobs(batch)).map((j) => j.id));
    for (const { job, event } of batch) {
      if (!inserted.has(job.id)) continue;
      this.#d.notifier.committed({ kind: 'history', event });
      this.#d.notifier.committed({ kind: 'job', job, ended: false });
    }
    return inserted.size;
  }
}
