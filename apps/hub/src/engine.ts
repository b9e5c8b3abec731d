/**
 * The rollout engine: the hub's loop around the pure core, put together from parts with one reason
 * to change each (engine/):
 *
 * - `Scheduler` — what runs when: the tick, which homes are due, one look at a home;
 * - `JobRunner` — the single write path of a job: transition → save → halt → announce → act;
 * - `DeviceInbox` — what devices say, taken in (the GatewayHandler);
 * - `PlanWriter` — queued jobs for the releases that apply, planned for what changed;
 * - `ReleaseCache` — the releases as last vouched for by the source;
 * - `StagedRollouts` — waves opened, rollouts stopped;
 * - the after-commit bus (`Notifier`) that tells each of them, and the dashboard, what committed.
 *
 * Persist before acting (invariant 8); restart-safe: everything it needs is in the store.
 * The rest of the hub reaches it through `PeopleEngine` (a person's actions) and `notifier`.
 */
import type { EpochMs, Home, HomeSnapshot, Job, JobEvent, Release } from '@firmward/core';
import type { DeviceGateway, GatewayHandler, Logger, NewHistoryEvent, Notifier, ReleaseSource, Store, Clock } from '@firmward/ports';
import { LocalNotifier, LogThrottle, clip } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { isFirmwardError } from '@firmward/core';
import { describe } from './engine/describe.ts';
import { DeviceInbox } from './engine/device-inbox.ts';
import { JobRunner } from './engine/job-runner.ts';
import type { AlsoWrite } from './engine/job-runner.ts';
import { PlanWriter } from './engine/plan-writer.ts';
import { ReleaseCache } from './engine/release-cache.ts';
import { Scheduler } from './engine/scheduler.ts';
import { StagedRollouts } from './engine/staged-rollouts.ts';
import { UsageTracker } from './engine/usage-tracker.ts';
import { KeyedMutex } from './home-lock.ts';

export type { AlsoWrite } from './engine/job-runner.ts';
export { describe } from './engine/describe.ts';
export { stripRow } from './engine/device-row.ts';

export interface EngineConfig {
  /** How often the loop runs (clock time). */
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
  /** The after-commit bus; the engine makes its own when none is given. */
  notifier?: Notifier;
  /** Called with every history event written (dashboard, CLI watch). */
  onHistory?: (event: NewHistoryEvent) => void;
}

/** What a person's actions (hub-service, onboarding) may use of the engine, and nothing more. */
export interface PeopleEngine {
  /** The releases as last vouched for by the source. */
  readonly releases: ReadonlyMap<string, Release>;
  /** Where a person's committed changes are announced (the planner and the scheduler listen). */
  readonly notifier: Notifier;
  /** Runs `fn` with the home's lock held (actions and sequencing never interleave). */
  withHome<T>(homeId: string, fn: () => Promise<T>): Promise<T>;
  /** A person's event on a job whose home's lock the caller holds; `alsoWrite` commits with it. */
  applyHeld(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job>;
  /** Reads the release source now. */
  refreshReleases(): Promise<void>;
}

const DEFAULT_UNREACHABLE_RETRY_SECONDS = 60;
const DEFAULT_LOOK_AT_LEAST_EVERY_SECONDS = 900;

export class RolloutEngine implements GatewayHandler, PeopleEngine {
  readonly #d: EngineDeps;
  readonly #homes = new KeyedMutex();
  readonly #instanceId: string;
  readonly notifier: Notifier;
  readonly #releases: ReleaseCache;
  readonly #runner: JobRunner;
  readonly #inbox: DeviceInbox;
  readonly #planner: PlanWriter;
  readonly #rollouts: StagedRollouts;
  readonly #scheduler: Scheduler;
  readonly #rejections: LogThrottle;

  constructor(deps: EngineDeps) {
    this.#d = deps;
    const log = deps.log.child('engine');
    this.#rejections = new LogThrottle({ log });
    const { store, clock, gateway, config } = deps;
    this.#instanceId = config.instanceId ?? crypto.randomUUID();
    const notifier = deps.notifier ?? new LocalNotifier(log);
    this.notifier = notifier;
    const onHistory = deps.onHistory;
    if (onHistory) notifier.subscribe((change) => change.kind === 'history' && onHistory(change.event));
    const homes = this.#homes;
    const usage = new UsageTracker();
    this.#releases = new ReleaseCache({ store, source: deps.source, clock, log, notifier, refreshSeconds: config.releaseRefreshSeconds });
    this.#runner = new JobRunner({
      store, gateway, clock, log, notifier, homes, releases: () => this.#releases.all, offerResendSeconds: config.offerResendSeconds,
      imageUrl: deps.imageUrl, ...(deps.repositoryUrl && { repositoryUrl: deps.repositoryUrl }),
    });
    this.#rollouts = new StagedRollouts({
      store, log, notifier,
      cancel: (job, message) => this.#cancelQuietly(job.id, message),
      moved: (homeIds) => {
        if (homeIds === null) this.#scheduler.lookAtEveryHome();
        else for (const homeId of homeIds) this.#scheduler.changed(homeId);
      },
    });
    this.#planner = new PlanWriter({
      store, notifier,
      // A release whose staged rollout was called off is not planned again.
      plannable: () => [...this.#releases.all.values()].filter((r) => !this.#rollouts.isAborted(r.id)),
    });
    this.#scheduler = new Scheduler({
      store, clock, log, notifier, homes, runner: this.#runner, planChanged: (now) => this.planChanged(now), releases: this.#releases, rollouts: this.#rollouts, usage,
      instanceId: this.#instanceId,
      tickMs: config.tickMs,
      claimLeaseMs: config.claimLeaseMs ?? Math.max(3 * config.tickMs, 5_000),
      lookAtLeastEverySeconds: config.lookAtLeastEverySeconds ?? DEFAULT_LOOK_AT_LEAST_EVERY_SECONDS,
    });
    this.#inbox = new DeviceInbox({
      store, gateway, clock, log, notifier, homes, runner: this.#runner, usage,
      conditionsChanged: (homeId) => this.#scheduler.changed(homeId),
      unreachableRetrySeconds: config.unreachableRetrySeconds ?? DEFAULT_UNREACHABLE_RETRY_SECONDS,
      // Through the engine's own onRejected: the one place a refused device message is said.
      rejected: (info) => this.onRejected(info),
    });
  }

  get releases(): ReadonlyMap<string, Release> {
    return this.#releases.all;
  }

  get instanceId(): string {
    return this.#instanceId;
  }

  async start(): Promise<void> {
    this.#scheduler.listen();
    await this.#releases.load();
    await this.#releases.refresh();
    await this.#runner.restoreGateway();
    // Through this.tick: the loop's passes are the ones a benchmark's subclass times.
    this.#scheduler.start(() => this.tick());
  }

  async stop(): Promise<void> {
    await this.#scheduler.stop();
    this.#rejections.close();
    // A clean stop lets the other instances take this one's homes at once.
    await this.#d.store.releaseHomes(this.#instanceId).catch((error: unknown) => this.#d.log.warn('could not let go of the homes', { error: describe(error) }));
  }

  /** One pass. Public so tests and benchmarks can drive the engine step by step. */
  tick(): Promise<void> {
    return this.#scheduler.tick();
  }

  /** Plans the whole fleet now (tests and benchmarks; the loop plans what changed). */
  plan(now: EpochMs): Promise<number> {
    return this.#planner.planAll(now);
  }

  /** Plans what changed since the last plan; the tick does it first. Returns the jobs created. */
  planChanged(now: EpochMs = this.#d.clock.now()): Promise<number> {
    return this.#planner.planChanged(now);
  }

  refreshReleases(): Promise<void> {
    return this.#releases.refresh();
  }

  /** Reads the releases again at the next tick (an image that was withheld has verified). */
  refreshReleasesSoon(): void {
    this.#releases.refreshSoon();
  }

  snapshot(home: Home, now: EpochMs): Promise<HomeSnapshot> {
    return this.#scheduler.snapshot(home, now);
  }

  sendOffer(job: Job): Promise<void> {
    return this.#runner.sendOffer(job);
  }

  withHome<T>(homeId: string, fn: () => Promise<T>): Promise<T> {
    return this.#homes.run(homeId, fn);
  }

  applyAs(jobId: string, event: JobEvent, actor: string): Promise<Job> {
    return this.#runner.applyAs(jobId, event, actor);
  }

  applyHeld(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job> {
    return this.#runner.applyHeld(home, job, event, actor, alsoWrite);
  }

  // ── the gateway's side (GatewayHandler) ───────────────────────────────────────────────────

  onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    return this.#inbox.onState(deviceId, state, at);
  }

  onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    return this.#inbox.onAvailability(deviceId, online, at);
  }

  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    return this.#inbox.onEvent(deviceId, event, at);
  }

  /**
   * A device message refused (by any gateway or here): logged, a few lines per device and topic
   * a minute, then one summary — a device that repeats a bad message at will cannot fill the log.
   */
  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    const from = info.deviceId ?? 'no device';
    this.#rejections.warn(`${from}\u0000${info.topic}`, { what: `refused "${clip(info.topic)}" messages`, from, field: 'deviceId' }, 'device message refused', info);
  }

  async #cancelQuietly(jobId: string, message: string): Promise<void> {
    try {
      await this.#runner.applyAs(jobId, { type: 'cancel', by: 'hub', message }, 'hub');
    } catch (error) {
      // Moved on meanwhile (another instance, a person): the next count looks again.
      if (!isFirmwardError(error, 'conflict') && !isFirmwardError(error, 'illegal_transition')) throw error;
    }
  }
}
