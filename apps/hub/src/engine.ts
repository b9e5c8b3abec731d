/**
 * The rollout engine: the hub's loop around the pure core. It gathers snapshots from the store,
 * asks the planner and the per-home sequencer for decisions, persists every transition before it
 * acts (invariant 8), then sends the command. Device messages come in through the gateway and go
 * through the same transition function. Restart-safe: everything it needs is in the store.
 */
import {
  DAY_MS, FirmwardError, HOUR_MS, SECOND_MS, advanceRollout, assignWaves, deviceReport, deviceStateReport, isActive, isFirmwardError, isTerminal,
  newJob, planReleases, rolloutHold, rolloutProgress, sequenceHome, skipKey, transition,
} from '@firmward/core';
import type {
  Device, DeviceConditions, DeviceReport, EpochMs, Home, HomeSnapshot, Job, JobEvent, Reason, Release, Rollout, StateChange,
} from '@firmward/core';
import type { DeviceGateway, GatewayHandler, Logger, NewHistoryEvent, ReleaseSource, Store, Clock } from '@firmward/ports';
import type { DeviceEvent, DeviceState, OfferCommand } from '@firmward/protocol';
import { deviceCodeKind, PROTOCOL_VERSION } from '@firmward/protocol';
import { DueHomes } from './due-homes.ts';
import { KeyedMutex } from './home-lock.ts';
import { NotApplicableNotes } from './not-applicable.ts';

export interface EngineConfig {
  /** How often the engine looks at every home (clock time). */
  tickMs: number;
  /** Re-send an unanswered offer or install go-ahead after this long (commands are idempotent by job id). */
  offerResendSeconds: number;
  /** A device that could not get its update (the hub or the repository out of reach) is offered it again after this long; 60 s by default. */
  unreachableRetrySeconds?: number;
  /** Re-read the release source this often. */
  releaseRefreshSeconds: number;
  /**
   * This instance's name among the hubs sharing a database, and how long its hold on a home lasts
   * without renewal (a dead instance's homes are taken over after this long). Defaults: a fresh id,
   * and three ticks but at least 5 s.
   */
  instanceId?: string;
  claimLeaseMs?: number;
  /**
   * A home is looked at when something about it changed or a time it computed comes due (DueHomes);
   * besides, each held home is looked at again at most this long after its last look (default
   * 900 s). Several instances on one database need it short: what another instance changed in a
   * home this one holds reaches it no later than this (the hub sets 30 s on PostgreSQL).
   */
  lookAtLeastEverySeconds?: number;
}

export interface EngineDeps {
  store: Store;
  gateway: DeviceGateway;
  source: ReleaseSource;
  clock: Clock;
  log: Logger;
  config: EngineConfig;
  /** Where a device downloads a release's image (the hub's /firmware route). */
  imageUrl: (releaseId: string) => string;
  /** Where devices read a signed repository's metadata through the hub (null: not a signed repository). */
  repositoryUrl?: (repository: string) => string | null;
  /** Called with every history event written (dashboard, CLI watch). */
  onHistory?: (event: NewHistoryEvent) => void;
}

/** More rows a transition implies, written in its transaction (after the job is saved, before the commit). */
export type AlsoWrite = (tx: Store, saved: Job, now: EpochMs) => Promise<void>;

/** Planned jobs inserted per transaction: short enough that device messages wait only milliseconds for the store. */
const PLAN_BATCH_JOBS = 500;
const DEFAULT_UNREACHABLE_RETRY_SECONDS = 60;

export class RolloutEngine implements GatewayHandler {
  readonly #d: EngineDeps;
  readonly #log: Logger;
  readonly #homes = new KeyedMutex();
  #releases = new Map<string, Release>();
  #releasesRefreshedAt: EpochMs = -Infinity;
  readonly #notApplicable: NotApplicableNotes;
  #planDirty = true;
  #prunedAt: EpochMs = -Infinity;
  #listeningSince: EpochMs = 0;
  /** When each job's last command went out, to re-send unanswered ones. */
  readonly #sentAt = new Map<string, EpochMs>();
  /** The staged rollouts as of this tick, by release id, each with the wave of every home. */
  #rollouts = new Map<string, { rollout: Rollout; waves: Map<string, number> }>();
  /** Since when each device has been busy (its usage history is built from these periods). */
  readonly #busySince = new Map<string, EpochMs>();
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  /** Which homes to look at, and when; the homes this instance held at the last pass. */
  readonly #due = new DueHomes();
  #held = new Set<string>();
  /** Homes being looked at: their own steps do not make them due again. */
  readonly #looking = new Set<string>();
  readonly #lookAgain = new Set<string>();
  /** A look at due homes outside the tick (a device's message, a job's end), when the loop runs. */
  #passing: Promise<void> | null = null;
  #passAgain = false;

  readonly #instanceId: string;
  readonly #claimLeaseMs: number;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    this.#log = deps.log.child('engine');
    this.#instanceId = deps.config.instanceId ?? crypto.randomUUID();
    this.#claimLeaseMs = deps.config.claimLeaseMs ?? Math.max(3 * deps.config.tickMs, 5_000);
    this.#notApplicable = new NotApplicableNotes({ store: deps.store, onHistory: (event) => deps.onHistory?.(event) });
  }

  get releases(): ReadonlyMap<string, Release> {
    return this.#releases;
  }

  async start(): Promise<void> {
    this.#listeningSince = this.#d.clock.now();
    await this.#loadReleases();
    await this.refreshReleases();
    await this.#restoreGateway();
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#loop = (async () => {
      while (!signal.aborted) {
        try {
          await this.tick();
        } catch (error) {
          this.#log.error('tick failed', { error: describe(error) });
        }
        try {
          await this.#d.clock.sleep(this.#d.config.tickMs, signal);
        } catch {
          break;
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    await this.#passing;
    this.#loop = null;
    // A clean stop lets the other instances take this one's homes at once.
    await this.#d.store.releaseHomes(this.#instanceId).catch((error: unknown) => this.#log.warn('could not let go of the homes', { error: describe(error) }));
  }

  get instanceId(): string {
    return this.#instanceId;
  }

  /** Devices, homes, settings or skips changed (a person, onboarding): plan again, and look at every home. */
  markPlanDirty(): void {
    this.#planDirty = true;
    this.#due.all();
  }

  /** Reads the releases again at the next tick (an image that was withheld has verified). */
  refreshReleasesSoon(): void {
    this.#releasesRefreshedAt = -Infinity;
  }

  /** One pass over everything. Public so tests and benchmarks can drive the engine step by step. */
  async tick(): Promise<void> {
    const now = this.#d.clock.now();
    if (now - this.#releasesRefreshedAt >= this.#d.config.releaseRefreshSeconds * SECOND_MS) await this.refreshReleases();
    if (this.#planDirty) await this.plan(now);
    if (now - this.#prunedAt >= HOUR_MS) await this.#prune(now);
    const homes = await this.#d.store.listHomes();
    await this.#advanceRollouts(homes.map((h) => h.id), now);
    // Several instances on one database each sequence only the homes they hold (Store.claimHomes).
    const held = await this.#d.store.claimHomes({ owner: this.#instanceId, now, leaseMs: this.#claimLeaseMs });
    // A home taken over from another instance: what it computed is not known here.
    for (const homeId of held) if (!this.#held.has(homeId)) this.#due.now(homeId);
    this.#held = new Set(held);
    await this.#sequenceDue(now);
  }

  /** Looks at the held homes that are due; the others are not read. */
  async #sequenceDue(now: EpochMs): Promise<void> {
    for (const homeId of this.#due.take([...this.#held], now)) {
      await this.#homes.run(homeId, () => this.#sequence(homeId));
    }
  }

  /**
   * Something about a home changed: it is looked at in the next pass. With `atOnce` (an update
   * ended) and the loop running, that pass starts now: the next device is offered as soon as the
   * previous one is confirmed, not a tick later. Other changes keep the tick's pace.
   */
  #changed(homeId: string, atOnce = false): void {
    if (this.#looking.has(homeId)) {
      // Its own step ended an update (a soak completed, a silent device failed): what it computed
      // before that step no longer holds, so it is looked at again right after.
      if (atOnce) this.#lookAgain.add(homeId);
      return;
    }
    this.#due.now(homeId);
    if (atOnce) this.#passSoon();
  }

  /** Starts a look at the due homes now, when the loop runs (else the next tick does it). */
  #passSoon(): void {
    if (this.#loop === null || this.#abort?.signal.aborted === true) return;
    if (this.#passing !== null) {
      this.#passAgain = true;
      return;
    }
    this.#passing = (async () => {
      do {
        this.#passAgain = false;
        await this.#sequenceDue(this.#d.clock.now()).catch((error: unknown) => this.#log.error('look at changed homes failed', { error: describe(error) }));
      } while (this.#passAgain && this.#abort?.signal.aborted !== true);
    })().finally(() => {
      this.#passing = null;
    });
  }

  /**
   * Staged rollouts: each running one opens its next wave once the newest is done, or stops by
   * itself on too many failures or stuck updates (core rollout.ts). Every hub instance computes the
   * same waves; the compare-and-set on the rollout's version lets exactly one of them move it on.
   * An aborted rollout's updates that have not started are cancelled; running ones finish.
   */
  async #advanceRollouts(homeIds: string[], now: EpochMs): Promise<void> {
    const current = new Map<string, { rollout: Rollout; waves: Map<string, number> }>();
    for (let rollout of await this.#d.store.listRollouts()) {
      const waves = assignWaves(rollout, homeIds);
      if (rollout.state === 'running') {
        const jobs = await this.#d.store.listReleaseJobs(rollout.releaseId);
        const next = advanceRollout(rollout, rolloutProgress(rollout, jobs, waves, now), now);
        if (next && (await this.#d.store.saveRollout(next, rollout.version))) {
          const entry = next.log[next.log.length - 1];
          this.#log.info(`rollout ${rollout.releaseId}: ${entry?.message ?? next.state}`, { rolloutId: rollout.id });
          rollout = next;
          // A wave opened or the rollout stopped: the homes it holds or releases are looked at.
          this.#due.all();
        }
      }
      if (rollout.state === 'aborted') await this.#cancelNotStarted(rollout);
      current.set(rollout.releaseId, { rollout, waves });
    }
    this.#rollouts = current;
  }

  async #cancelNotStarted(rollout: Rollout): Promise<void> {
    for (const job of await this.#d.store.listReleaseJobs(rollout.releaseId)) {
      if (job.state !== 'queued' && job.state !== 'waiting') continue;
      try {
        await this.applyAs(job.id, { type: 'cancel', by: 'hub', message: rollout.reason?.message ?? 'The staged rollout was called off.' }, 'hub');
      } catch (error) {
        // Moved on meanwhile (another instance, a person): the next tick looks again.
        if (!isFirmwardError(error, 'conflict') && !isFirmwardError(error, 'illegal_transition')) throw error;
      }
    }
  }

  /**
   * Telemetry is kept only as long as a rule looks at it: signal samples and drop-outs for the
   * longest signal or drop-out window of any home, usage for the longest usage look-back.
   */
  async #prune(now: EpochMs): Promise<void> {
    this.#prunedAt = now;
    const homes = await this.#d.store.listHomes();
    const signalSeconds = Math.max(3600, ...homes.map((h) => Math.max(h.settings.thresholds.signalWindowSeconds, h.settings.thresholds.noDropoutSeconds)));
    const usageDays = Math.max(14, ...homes.map((h) => h.settings.thresholds.usageLookbackDays));
    await this.#d.store.pruneTelemetry({ signalBefore: now - signalSeconds * SECOND_MS, usageBefore: now - usageDays * DAY_MS });
  }

  async #loadReleases(): Promise<void> {
    for (const r of await this.#d.store.listReleases()) this.#releases.set(r.id, r);
  }

  async refreshReleases(): Promise<void> {
    this.#releasesRefreshedAt = this.#d.clock.now();
    try {
      const fresh = await this.#d.source.refresh();
      const changed = fresh.length !== this.#releases.size || fresh.some((r) => JSON.stringify(r) !== JSON.stringify(this.#releases.get(r.id)));
      if (!changed) return;
      await this.#d.store.putReleases(fresh);
      this.#releases = new Map(fresh.map((r) => [r.id, r]));
      this.#planDirty = true;
      // A release gone or retracted changes what waiting updates say.
      this.#due.all();
      this.#log.info('releases refreshed', { count: fresh.length, source: this.#d.source.name });
    } catch (error) {
      // Keep the last good set; a source that cannot be trusted adds nothing.
      this.#log.warn('release source refused', { error: describe(error) });
    }
  }

  /** Planner: every device × release, a queued job where one applies. */
  async plan(now: EpochMs): Promise<number> {
    this.#planDirty = false;
    const [devices, homes, open, skipped] = await Promise.all([
      this.#d.store.listDevices(),
      this.#d.store.listHomes(),
      this.#d.store.listOpenJobTargets(),
      this.#d.store.listSkips(),
    ]);
    // The update that halted a home is not queued again on its own: a person resumes (retry) or skips.
    for (const home of homes) {
      if (!home.halt) continue;
      const failed = await this.#d.store.getJob(home.halt.jobId);
      if (failed) skipped.add(skipKey(failed.deviceId, failed.releaseId));
    }
    const plan = planReleases({
      now,
      devices,
      homes: new Map(homes.map((h) => [h.id, h])),
      // A release whose staged rollout was called off is not planned again.
      releases: [...this.#releases.values()].filter((r) => this.#rollouts.get(r.id)?.rollout.state !== 'aborted'),
      openJobsByDevice: new Map(open.map((j) => [j.deviceId, j])),
      skipped,
      ignored: new Set(devices.filter((d) => d.ignored).map((d) => d.id)),
    });
    await this.#notApplicable.record(plan.noJob, new Map(devices.map((d) => [d.id, d])), now);
    let created = 0;
    for (let i = 0; i < plan.jobs.length; i += PLAN_BATCH_JOBS) {
      created += await this.#insertPlanned(plan.jobs.slice(i, i + PLAN_BATCH_JOBS).map((p) => {
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
   * Planned jobs go in by batches, one transaction each: one durable commit (one fsync with
   * synchronous=FULL) per batch instead of per job — 100,000 devices plan in seconds, not minutes
   * (docs/benchmarks.md). A batch commits whole or not at all (invariant 8), and its history is
   * announced only once committed. A conflict rolls the batch back and it goes in job by job.
   */
  async #insertPlanned(batch: { job: Job; event: NewHistoryEvent }[]): Promise<number> {
    try {
      await this.#d.store.transaction(async (tx) => {
        for (const { job, event } of batch) {
          await tx.insertJob(job);
          await tx.appendEvent(event);
        }
      });
    } catch (error) {
      // Another hub (or a person) queued one first: the store keeps one open job per device.
      if (!isFirmwardError(error, 'conflict')) throw error;
      if (batch.length === 1) return 0;
      let created = 0;
      for (const item of batch) created += await this.#insertPlanned([item]);
      return created;
    }
    for (const { job, event } of batch) {
      this.#d.onHistory?.(event);
      this.#changed(job.homeId);
    }
    return batch.length;
  }

  async #sequence(homeId: string): Promise<void> {
    const now = this.#d.clock.now();
    const home = await this.#d.store.getHome(homeId);
    if (!home) return;
    this.#looking.add(homeId);
    try {
      const snapshot = await this.snapshot(home, now);
      const decision = sequenceHome(snapshot);
      for (const step of decision.steps) {
        const job = snapshot.jobs.find((j) => j.id === step.jobId);
        if (!job) continue;
        // A device that installs on its own once downloaded cannot be held back any more (one-step).
        const event = job.state === 'downloaded' && this.#oneStep(job.deviceId) ? { type: 'approve-install' as const, oneStep: true } : step.event;
        await this.#apply(home, job, event, 'hub');
      }
      const resendAt = await this.#resend(snapshot, now);
      this.#due.at(homeId, Math.min(decision.nextLookAt ?? Infinity, resendAt ?? Infinity, this.#latestLook(homeId, now)));
    } finally {
      this.#looking.delete(homeId);
      if (this.#lookAgain.delete(homeId)) this.#changed(homeId, true);
    }
  }

  /** The safety net (EngineConfig.lookAtLeastEverySeconds), spread by home so the fleet's looks do not bunch up. */
  #latestLook(homeId: string, now: EpochMs): EpochMs {
    const every = (this.#d.config.lookAtLeastEverySeconds ?? 900) * SECOND_MS;
    return now + every * (0.75 + 0.25 * spread(homeId));
  }

  /** Everything the sequencer needs for one home, read once (one reference time per operation). */
  async snapshot(home: Home, now: EpochMs): Promise<HomeSnapshot> {
    const t = home.settings.thresholds;
    const [jobs, devices, homeUsage] = await Promise.all([
      this.#d.store.listJobs({ homeId: home.id, open: true }),
      this.#d.store.listDevices({ homeId: home.id }),
      this.#d.store.getHomeUsage(home.id, now - t.usageLookbackDays * DAY_MS),
    ]);
    const conditions = new Map<string, DeviceConditions>();
    const deviceMap = new Map<string, Device>();
    const rollouts = new Map([...this.#rollouts].map(([releaseId, r]) => [releaseId, { rollout: r.rollout, wave: r.waves.get(home.id) }]));
    // A job a staged rollout holds (its wave not open, the rollout paused) is held before any check
    // looks at the device: its telemetry is not read — most homes of a large rollout wait so.
    const heldByRollout = (j: Job) => {
      const staged = rollouts.get(j.releaseId);
      return staged !== undefined && rolloutHold(staged.rollout, staged.wave) !== null;
    };
    const needsConditions = (j: Job) => isActive(j.state) || !heldByRollout(j);
    for (const d of devices) {
      deviceMap.set(d.id, d);
      if (!jobs.some((j) => j.deviceId === d.id && needsConditions(j))) continue;
      const since = now - Math.max(t.signalWindowSeconds, t.noDropoutSeconds) * SECOND_MS;
      const tel = await this.#d.store.getTelemetry(d.id, since, now - t.usageLookbackDays * DAY_MS);
      conditions.set(d.id, { online: d.online, report: d.report, ...tel, usage: this.#withOpenUsage(d.id, tel.usage, now) });
    }
    const ignored = new Set(devices.filter((d) => d.ignored).map((d) => d.id));
    return { now, home, jobs, devices: deviceMap, conditions, releases: this.#releases, homeUsage, listeningSince: this.#listeningSince, rollouts, ignored };
  }

  /** A device busy right now counts as used up to now. */
  #withOpenUsage(deviceId: string, usage: { start: EpochMs; end: EpochMs }[], now: EpochMs) {
    const since = this.#busySince.get(deviceId);
    return since === undefined ? usage : [...usage, { start: since, end: now }];
  }

  /**
   * Persist, then act. The transition function checks legality; the store's compare-and-set and
   * unique index check invariant 1 again. Returns the saved job, or null when nothing changed.
   */
  async #apply(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job | null> {
    const now = this.#d.clock.now();
    const { job: next, change } = transition(job, event, { now, soakSeconds: home.settings.soakSeconds });
    const history = historyOf(job, next, change, event, now, actor);
    const saved = await this.#d.store.transaction(async (tx) => {
      const ok = await tx.saveJob(next, job.state, history);
      if (!ok) return false;
      await alsoWrite?.(tx, next, now);
      if (next.state === 'failed') {
        const device = await tx.getDevice(job.deviceId);
        await tx.setHomeHalt(home.id, {
          jobId: job.id, deviceId: job.deviceId, at: now,
          message: `The update of ${device?.name ?? job.deviceId} to ${job.targetVersion} failed: ${next.failure?.message ?? 'unknown reason'} Other updates in this home wait until you resume or skip.`,
        });
      }
      return true;
    });
    if (!saved) return null;
    if (history) this.#d.onHistory?.(history);
    this.#changed(home.id, isTerminal(next.state));
    if (isTerminal(next.state)) {
      this.#planDirty = true;
      this.#sentAt.delete(job.id);
    }
    if (change) this.#log.info(`${job.deviceId}: ${change.from} → ${change.to}`, { reason: change.reason.message });
    await this.#act(next, event);
    // The checks ran right before the offer; such a device is installing already (EngineDeps.gateway, installsOnOffer).
    if (next.state === 'downloaded' && this.#oneStep(next.deviceId)) return (await this.#apply(home, next, { type: 'approve-install', oneStep: true }, 'hub')) ?? next;
    return next;
  }

  #oneStep(deviceId: string): boolean {
    return this.#d.gateway.installsOnOffer?.(deviceId) ?? false;
  }

  /** The command that follows a persisted transition. A failed send is retried by #resend. */
  async #act(job: Job, event: JobEvent): Promise<void> {
    try {
      switch (event.type) {
        case 'offer':
          await this.#sendOffer(job);
          break;
        case 'approve-install':
          this.#sentAt.set(job.id, this.#d.clock.now());
          await this.#d.gateway.send(job.deviceId, { v: PROTOCOL_VERSION, type: 'install', jobId: job.id });
          break;
        case 'defer-install':
          // The device keeps its verified download and waits for the go-ahead (job.ts, defer-install).
          // A cancel here would make it refuse this job id when the sequencer offers it again
          // (docs/protocol.md, job-id rule 5), failing the update and halting the home for nothing.
          break;
        case 'cancel':
          await this.#d.gateway.send(job.deviceId, { v: PROTOCOL_VERSION, type: 'cancel', jobId: job.id, message: job.reasons[0]?.message ?? 'Not now.' });
          break;
        default:
          break;
      }
    } catch (error) {
      this.#log.warn('command not sent; will retry', { jobId: job.id, error: describe(error) });
    }
  }

  async #sendOffer(job: Job): Promise<void> {
    const offer = this.#offerFor(job);
    if (!offer) return;
    this.#sentAt.set(job.id, this.#d.clock.now());
    await this.#d.gateway.send(job.deviceId, offer);
  }

  #offerFor(job: Job): OfferCommand | null {
    const release = this.#releases.get(job.releaseId);
    if (!release) return null;
    return {
      v: PROTOCOL_VERSION, type: 'offer', jobId: job.id, releaseId: release.id,
      vendor: release.vendor, model: release.model, hardwareRevisions: release.hardwareRevisions, version: release.version,
      applicableFrom: release.applicableFrom ?? null, applicableTo: release.applicableTo ?? null,
      image: { url: this.#d.imageUrl(release.id), lengthBytes: release.image.lengthBytes, sha256: release.image.sha256 },
      expectedInstallSeconds: release.expectedInstallSeconds,
      ...(job.offers > 0 && { offerSeq: job.offers }),
      ...this.#targetOf(release),
    };
  }

  #targetOf(release: Release): Pick<OfferCommand, 'target'> {
    const url = release.repository === undefined ? null : this.#d.repositoryUrl?.(release.repository) ?? null;
    return url === null || release.repository === undefined ? {} : { target: { repository: release.repository, path: release.image.path, url } };
  }

  /** Hands every running update back to a gateway that keeps its state in memory (DeviceGateway.restore). */
  async #restoreGateway(): Promise<void> {
    const restore = this.#d.gateway.restore?.bind(this.#d.gateway);
    if (!restore) return;
    for (const job of await this.#d.store.listJobs({ open: true })) {
      const offer = isActive(job.state) ? this.#offerFor(job) : null;
      if (offer) await restore(job.deviceId, offer, job.state).catch((error: unknown) => this.#log.warn('gateway restore failed', { jobId: job.id, error: describe(error) }));
    }
  }

  /**
   * Commands are idempotent by job id, so an offer nobody answered is simply sent again (after a
   * lost message, a broker restart, or a hub restart). An unanswered install go-ahead is re-sent
   * when the device's state shows it still waiting for one (onState).
   */
  async #resend(snapshot: HomeSnapshot, now: EpochMs): Promise<EpochMs | null> {
    const after = this.#d.config.offerResendSeconds * SECOND_MS;
    let next: EpochMs | null = null;
    for (const job of snapshot.jobs) {
      if (job.state !== 'offered') continue;
      const last = Math.max(this.#sentAt.get(job.id) ?? -Infinity, job.lastHeardAt !== null && job.lastHeardAt > job.stateSince ? job.lastHeardAt : -Infinity);
      if (now - last >= after) await this.#act(job, { type: 'offer', expectedDoneAt: 0, forcedBy: null, reasons: [] });
      // #act stamps the send; a send that failed leaves the old stamp and is tried at the next look.
      const resendAt = Math.max(this.#sentAt.get(job.id) ?? now, last) + after;
      next = next === null ? resendAt : Math.min(next, resendAt);
    }
    return next;
  }

  // ── the gateway's side ────────────────────────────────────────────────────────────────────

  async onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    const device = await this.#d.store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'state', error: 'unknown device', at });
    if (state.vendor !== device.vendor || state.model !== device.model || state.hardwareRevision !== device.hardwareRevision) {
      // Identity is provisioned, never taken from the device's word (invariant 2).
      return this.onRejected({ deviceId, topic: 'state', error: `identity ${state.vendor}/${state.model}/${state.hardwareRevision} does not match the registered device`, at });
    }
    await this.#homes.run(device.homeId, async () => {
      const report: DeviceReport = {
        at, firmwareVersion: state.firmwareVersion, activeSlot: state.activeSlot, powerSource: state.powerSource,
        batteryPercent: state.batteryPercent, charging: state.charging, signalDbm: state.signalDbm, busy: state.busy,
        freeStorageBytes: state.freeStorageBytes, healthy: state.healthy,
      };
      const usage = this.#trackUsage(deviceId, state.busy, at);
      await this.#d.store.recordTelemetry(deviceId, {
        report, online: true,
        ...(state.signalDbm !== null && { signalSample: { at, dbm: state.signalDbm } }),
        ...(usage && { usage }),
      });
      if (state.firmwareVersion !== device.firmwareVersion) {
        await this.#d.store.putDevice({ ...stripRow(device), firmwareVersion: state.firmwareVersion });
        this.#planDirty = true;
      }
      const job = (await this.#d.store.listJobs({ deviceId, open: true }))[0];
      // What the checks see may have changed (battery, signal, busy): a home with an update is looked at again.
      if (job) this.#changed(device.homeId);
      // The home is read only when there is an update to move (most reports are plain telemetry).
      const home = job && isActive(job.state) ? await this.#d.store.getHome(device.homeId) : null;
      // What the report means is decided in the core (device-report.ts); here it is only carried out.
      const meant = deviceStateReport(job, state, { homeFound: home !== null });
      switch (meant.kind) {
        case 'event':
          // Only ever for an active job whose home was found.
          if (job && home) await this.#apply(home, job, meant.event, 'device');
          break;
        case 'resend-install':
          if (job) await this.#act(job, { type: 'approve-install' });
          break;
        case 'cancel-on-device':
          await this.#d.gateway.send(deviceId, { v: PROTOCOL_VERSION, type: 'cancel', jobId: meant.jobId, message: meant.message }).catch(() => undefined);
          break;
        case 'none':
          break;
      }
    });
  }

  #trackUsage(deviceId: string, busy: boolean, at: EpochMs): { start: EpochMs; end: EpochMs } | null {
    const since = this.#busySince.get(deviceId);
    if (busy && since === undefined) this.#busySince.set(deviceId, at);
    if (!busy && since !== undefined) {
      this.#busySince.delete(deviceId);
      return { start: since, end: at };
    }
    return null;
  }

  async onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    const device = await this.#d.store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'availability', error: 'unknown device', at });
    if (device.online === online) return;
    await this.#d.store.recordTelemetry(deviceId, { online, ...(!online && { dropoutAt: at }) });
    this.#changed(device.homeId);
    await this.#record(this.#d.store, {
      at, homeId: device.homeId, deviceId, jobId: null, kind: 'device', from: null, to: null,
      code: online ? 'online' : 'offline', message: online ? `${device.name} is online.` : `${device.name} went offline.`, actor: 'device',
    });
  }

  async onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    const device = await this.#d.store.getDevice(deviceId);
    if (!device) return this.onRejected({ deviceId, topic: 'evt', error: 'unknown device', at });
    await this.#homes.run(device.homeId, async () => {
      const job = await this.#d.store.getJob(event.jobId);
      if (!job || job.deviceId !== deviceId) return this.onRejected({ deviceId, topic: 'evt', error: `unknown job ${event.jobId}`, at });
      const home = await this.#d.store.getHome(job.homeId);
      if (!home) return;
      const interpreted = deviceReport(job, event, {
        now: this.#d.clock.now(), unreachableRetrySeconds: this.#d.config.unreachableRetrySeconds ?? DEFAULT_UNREACHABLE_RETRY_SECONDS, codeKind: deviceCodeKind,
      });
      // A stale or replayed message changes nothing, and says so: nothing is dropped silently.
      if ('ignored' in interpreted) return this.onRejected({ deviceId, topic: 'evt', error: interpreted.ignored, at });
      try {
        await this.#apply(home, job, interpreted.event, 'device');
      } catch (error) {
        // A replayed or out-of-order message: refused, nothing changed.
        if (isFirmwardError(error, 'illegal_transition')) return this.onRejected({ deviceId, topic: 'evt', error: error.message, at });
        throw error;
      }
    });
  }

  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#log.warn('device message refused', info);
  }

  // ── a person's actions ────────────────────────────────────────────────────────────────────

  /** Runs `fn` with the home's lock held (actions and sequencing never interleave). */
  withHome<T>(homeId: string, fn: () => Promise<T>): Promise<T> {
    return this.#homes.run(homeId, fn);
  }

  /** Applies a person's (or the hub's) event to a job under the home's lock. */
  async applyAs(jobId: string, event: JobEvent, actor: string): Promise<Job> {
    const job = await this.#d.store.getJob(jobId);
    if (!job) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
    return this.#homes.run(job.homeId, async () => {
      const fresh = await this.#d.store.getJob(jobId);
      const home = await this.#d.store.getHome(job.homeId);
      if (!fresh || !home) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
      return this.applyHeld(home, fresh, event, actor);
    });
  }

  /**
   * Like applyAs, for a caller that already holds the home's lock (withHome). `alsoWrite` goes into
   * the transition's own transaction: what the transition implies (a cancel's skip) is never seen
   * without it — the planner does not take the home's lock.
   */
  async applyHeld(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job> {
    const saved = await this.#apply(home, job, event, actor, alsoWrite);
    if (!saved) throw new FirmwardError('conflict', 'The update changed while you acted; look again and retry.');
    return saved;
  }

  async #record(store: Store, event: NewHistoryEvent): Promise<void> {
    await store.appendEvent(event);
    this.#d.onHistory?.(event);
  }

  async sendOffer(job: Job): Promise<void> {
    await this.#sendOffer(job);
  }
}

/** The history line for a transition, or for a change of reasons while waiting. */
function historyOf(before: Job, after: Job, change: StateChange | null, event: JobEvent, now: EpochMs, actor: string): NewHistoryEvent | null {
  const base = { at: now, homeId: before.homeId, deviceId: before.deviceId, jobId: before.id, actor };
  if (change) return { ...base, kind: actor.startsWith('person:') ? 'person' : 'transition', from: change.from, to: change.to, code: change.reason.code, message: change.reason.message };
  if (event.type === 'hold' && codes(before.reasons) !== codes(after.reasons)) {
    const message = after.reasons.map((r) => r.message).join(' ');
    return { ...base, kind: 'decision', from: before.state, to: after.state, code: after.reasons[0]?.code ?? 'waiting', message };
  }
  return null;
}

function codes(reasons: Reason[]): string {
  return reasons.map((r) => r.code).sort().join(',');
}

/** A number in [0, 1) fixed for a home id. */
function spread(homeId: string): number {
  let h = 2166136261;
  for (let i = 0; i < homeId.length; i++) h = Math.imul(h ^ homeId.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

export function stripRow(row: Device & { online?: unknown; lastSeenAt?: unknown; report?: unknown }): Device {
  return {
    id: row.id, homeId: row.homeId, name: row.name, vendor: row.vendor, model: row.model, hardwareRevision: row.hardwareRevision,
    firmwareVersion: row.firmwareVersion, policy: row.policy, thresholds: row.thresholds, schedules: row.schedules,
  };
}

export function describe(error: unknown): string {
  if (error instanceof FirmwardError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

