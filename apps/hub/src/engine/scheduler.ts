/**
 * What runs when: the hub's loop. Each tick it refreshes the releases when due, plans what changed,
 * moves staged rollouts on, renews this instance's hold on its homes, and looks at the held homes
 * that are due (DueHomes): a home is looked at when something about it changed or when a time it
 * computed comes due, so an idle fleet costs nothing per tick. A look is one snapshot of the home,
 * the per-home sequencer (core sequencer.ts), and each of its steps through the job runner.
 */
import { DAY_MS, HOUR_MS, SECOND_MS, isActive, rolloutHold, sequenceHome } from '@firmward/core';
import type { DeviceConditions, Device, EpochMs, Home, HomeSnapshot, Job } from '@firmward/core';
import type { Clock, Logger, Notifier, Store } from '@firmward/ports';
import { DueHomes } from '../due-homes.ts';
import type { KeyedMutex } from '../home-lock.ts';
import { describe } from './describe.ts';
import type { JobRunner } from './job-runner.ts';
import type { ReleaseCache } from './release-cache.ts';
import type { StagedRollouts } from './staged-rollouts.ts';
import type { UsageTracker } from './usage-tracker.ts';

export interface SchedulerDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  homes: KeyedMutex;
  runner: JobRunner;
  /** Plans what changed since the last plan (PlanWriter.planChanged); returns the jobs created. */
  planChanged: (now: EpochMs) => Promise<number>;
  releases: ReleaseCache;
  rollouts: StagedRollouts;
  usage: UsageTracker;
  instanceId: string;
  tickMs: number;
  claimLeaseMs: number;
  /** Each held home is looked at again at most this long after its last look (EngineConfig). */
  lookAtLeastEverySeconds: number;
}

/** Homes looked at side by side in one pass (#sequenceDue). */
const LOOKS_AT_ONCE = 8;
/** The list of every home's id (the waves of staged rollouts) is read again at least this often. */
const HOME_LIST_MS = 30 * SECOND_MS;

export class Scheduler {
  readonly #d: SchedulerDeps;
  readonly #due = new DueHomes();
  /** The homes this instance held at the last claim. */
  #held = new Set<string>();
  #claimedAt: EpochMs = -Infinity;
  #homeIds: readonly string[] = [];
  #homeIdsAt: EpochMs = -Infinity;
  /** A home was added or removed here since the last claim: claim and list again at once. */
  #homesChanged = true;
  /** Homes being looked at: their own steps do not make them due again. */
  readonly #looking = new Set<string>();
  readonly #lookAgain = new Set<string>();
  #prunedAt: EpochMs = -Infinity;
  #listeningSince: EpochMs = 0;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  /** A look at due homes outside the tick (a device's message, a job's end), when the loop runs. */
  #passing: Promise<void> | null = null;
  #passAgain = false;

  constructor(deps: SchedulerDeps) {
    this.#d = deps;
    deps.notifier.subscribe((change) => {
      switch (change.kind) {
        case 'job':
          // An update that ended lets the next device of its home go at once.
          this.changed(change.job.homeId, change.ended);
          break;
        case 'device':
          this.changed(change.homeId);
          break;
        case 'home':
          this.#homesChanged = true;
          this.changed(change.homeId);
          break;
        case 'fleet':
          this.#homesChanged = true;
          this.#due.all();
          break;
        case 'history':
          break;
      }
    });
  }

  get listeningSince(): EpochMs {
    return this.#listeningSince;
  }

  /** Since now the hub hears devices: who has not spoken since is not taken as silent for a while. */
  listen(): void {
    this.#listeningSince = this.#d.clock.now();
  }

  /** Runs `pass` (the tick, or what the engine wraps around it) every tickMs until stop(). */
  start(pass: () => Promise<void> = () => this.tick()): void {
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#loop = (async () => {
      while (!signal.aborted) {
        try {
          await pass();
        } catch (error) {
          this.#d.log.error('tick failed', { error: describe(error) });
        }
        try {
          await this.#d.clock.sleep(this.#d.tickMs, signal);
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
  }

  /** One pass. Public so tests and benchmarks can drive the engine step by step. */
  async tick(): Promise<void> {
    const now = this.#d.clock.now();
    if (this.#d.releases.isDue(now)) await this.#d.releases.refresh();
    await this.#d.planChanged(now);
    if (now - this.#prunedAt >= HOUR_MS) await this.#prune(now);
    const refresh = this.#homesChanged;
    await this.#d.rollouts.advance(await this.#everyHomeId(now, refresh), now);
    await this.#claim(now, refresh);
    await this.#sequenceDue(now);
  }

  async #everyHomeId(now: EpochMs, refresh: boolean): Promise<readonly string[]> {
    if (refresh || now - this.#homeIdsAt >= HOME_LIST_MS) {
      this.#homeIds = (await this.#d.store.listHomes()).map((h) => h.id);
      this.#homeIdsAt = now;
    }
    return this.#homeIds;
  }

  /**
   * Several instances on one database each sequence only the homes they hold (Store.claimHomes).
   * The hold is renewed three times per lease, not at every tick: with 20,000 homes a claim
   * rewrites 20,000 leases.
   */
  async #claim(now: EpochMs, refresh: boolean): Promise<void> {
    if (!refresh && now - this.#claimedAt < this.#d.claimLeaseMs / 3) return;
    this.#homesChanged = false;
    this.#claimedAt = now;
    const held = await this.#d.store.claimHomes({ owner: this.#d.instanceId, now, leaseMs: this.#d.claimLeaseMs });
    // A home taken over from another instance: what it computed is not known here.
    for (const homeId of held) if (!this.#held.has(homeId)) this.#due.now(homeId);
    this.#held = new Set(held);
  }

  /**
   * Looks at the held homes that are due; the others are not read. Several at a time: homes do not
   * depend on each other (each look holds its own home's lock), and their reads and commits then
   * overlap — on PostgreSQL concurrent commits share one flush of the log. A look that fails is
   * logged and its home is due again at the next pass; the other homes are still looked at.
   */
  async #sequenceDue(now: EpochMs): Promise<void> {
    const due = this.#due.take([...this.#held], now);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < due.length) {
        const homeId = due[next++]!;
        try {
          await this.#d.homes.run(homeId, () => this.#sequence(homeId));
        } catch (error) {
          this.#d.log.error('look at a home failed', { homeId, error: describe(error) });
          this.#due.at(homeId, now + this.#d.tickMs);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKS_AT_ONCE, due.length) }, worker));
  }

  /** Every home is looked at in the next pass. */
  lookAtEveryHome(): void {
    this.#due.all();
  }

  /**
   * Something about a home changed: it is looked at in the next pass. With `atOnce` (an update
   * ended) and the loop running, that pass starts now: the next device is offered as soon as the
   * previous one is confirmed, not a tick later. Other changes keep the tick's pace.
   */
  changed(homeId: string, atOnce = false): void {
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
        await this.#sequenceDue(this.#d.clock.now()).catch((error: unknown) => this.#d.log.error('look at changed homes failed', { error: describe(error) }));
      } while (this.#passAgain && this.#abort?.signal.aborted !== true);
    })().finally(() => {
      this.#passing = null;
    });
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
        const event = job.state === 'downloaded' && this.#d.runner.oneStep(job.deviceId) ? { type: 'approve-install' as const, oneStep: true } : step.event;
        await this.#d.runner.apply(home, job, event, 'hub');
      }
      const resendAt = await this.#d.runner.resend(snapshot, now);
      this.#due.at(homeId, Math.min(decision.nextLookAt ?? Infinity, resendAt ?? Infinity, this.#latestLook(homeId, now)));
    } finally {
      this.#looking.delete(homeId);
      if (this.#lookAgain.delete(homeId)) this.changed(homeId, true);
    }
  }

  /** The safety net (EngineConfig.lookAtLeastEverySeconds), spread by home so the fleet's looks do not bunch up. */
  #latestLook(homeId: string, now: EpochMs): EpochMs {
    const every = this.#d.lookAtLeastEverySeconds * SECOND_MS;
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
    const rollouts = new Map([...this.#d.rollouts.current].map(([releaseId, r]) => [releaseId, { rollout: r.rollout, wave: r.waves.get(home.id) }]));
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
      conditions.set(d.id, { online: d.online, report: d.report, ...tel, usage: this.#d.usage.withOpen(d.id, tel.usage, now) });
    }
    const ignored = new Set(devices.filter((d) => d.ignored).map((d) => d.id));
    return { now, home, jobs, devices: deviceMap, conditions, releases: this.#d.releases.all, homeUsage, listeningSince: this.#listeningSince, rollouts, ignored };
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
}

/** A number in [0, 1) fixed for a home id. */
function spread(homeId: string): number {
  let h = 2166136261;
  for (let i = 0; i < homeId.length; i++) h = Math.imul(h ^ homeId.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}
