import type {
  Device, DeviceReport, EpochMs, Home, HomeHalt, HomeSettings, Interval, Job, JobState, Policy, Release, SignalSample,
  StateChange, UsageSchedule, PreflightThresholds, Rollout,
} from '@firmward/core';

/** One line of the history: who, what, when, why. */
export interface HistoryEvent {
  id: number;
  at: EpochMs;
  homeId: string;
  deviceId: string | null;
  jobId: string | null;
  /** transition: a job changed state. decision: the hub decided (hold, plan, skip). person: someone acted. device: the device said something notable. */
  kind: 'transition' | 'decision' | 'person' | 'device';
  from: JobState | null;
  to: JobState | null;
  code: string;
  message: string;
  /** "hub", "device", or "person:<name>" */
  actor: string;
}
export type NewHistoryEvent = Omit<HistoryEvent, 'id'>;

export interface EventQuery {
  homeId?: string;
  deviceId?: string;
  jobId?: string;
  /** Only transitions into this state (e.g. "failed"). */
  to?: JobState;
  /** Events with id below this (paging backwards). */
  beforeId?: number;
  limit: number;
}

/** The columns of a job a staged rollout counts. */
export type ReleaseJob = Pick<Job, 'id' | 'homeId' | 'deviceId' | 'releaseId' | 'state' | 'stateSince'>;

export interface JobQuery {
  homeId?: string;
  deviceId?: string;
  /** true: not succeeded/failed/cancelled; false: only those. */
  open?: boolean;
  states?: JobState[];
  /** run (default): the order jobs run in — priority, then oldest. newest: most recently created first. */
  order?: 'run' | 'newest';
  limit?: number;
}

export interface DeviceTelemetryWrite {
  report?: DeviceReport;
  signalSample?: SignalSample;
  dropoutAt?: EpochMs;
  /** A finished busy period. */
  usage?: Interval;
  online?: boolean;
}

export interface DeviceRow extends Device {
  online: boolean;
  lastSeenAt: EpochMs | null;
  report: DeviceReport | null;
}

/**
 * Persistence for the hub. Every method is atomic on its own; `transaction` groups several.
 * Invariant 1 is held by the store itself: writing a second active job for a home fails with
 * `home_busy` (a partial unique index, so the same holds on PostgreSQL with several hubs).
 * Invariant 8: a write resolves only once it is durable.
 */
export interface Store {
  /** Creates or upgrades the schema. Idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  putHome(home: Home): Promise<void>;
  getHome(homeId: string): Promise<Home | null>;
  listHomes(): Promise<Home[]>;
  updateHomeSettings(homeId: string, settings: HomeSettings): Promise<void>;
  setHomeHalt(homeId: string, halt: HomeHalt | null): Promise<void>;

  /** Creates the device or updates its identity and settings (not its telemetry). */
  putDevice(device: Device): Promise<void>;
  getDevice(deviceId: string): Promise<DeviceRow | null>;
  listDevices(query?: { homeId?: string }): Promise<DeviceRow[]>;
  updateDeviceSettings(deviceId: string, patch: { policy?: Policy | null; thresholds?: Partial<PreflightThresholds>; schedules?: UsageSchedule[] }): Promise<void>;
  recordTelemetry(deviceId: string, write: DeviceTelemetryWrite): Promise<void>;
  /** Signal samples and drop-outs since `since`, usage periods since `usageSince`. */
  getTelemetry(deviceId: string, since: EpochMs, usageSince: EpochMs): Promise<{ signalSamples: SignalSample[]; dropouts: EpochMs[]; usage: Interval[] }>;
  /** Usage of every device of a home since `since` (learning quiet hours). */
  getHomeUsage(homeId: string, since: EpochMs): Promise<Interval[]>;
  /** Drops signal samples and drop-outs older than `signalBefore`, usage that ended before `usageBefore`. */
  pruneTelemetry(cut: { signalBefore: EpochMs; usageBefore: EpochMs }): Promise<void>;

  putReleases(releases: Release[]): Promise<void>;
  getRelease(releaseId: string): Promise<Release | null>;
  listReleases(): Promise<Release[]>;

  /** A person said no to this release for this device (skip or cancel): it is not queued again. */
  addSkip(deviceId: string, releaseId: string, at: EpochMs, actor: string): Promise<void>;
  /** "Update now" lifts every skip of the device. */
  removeSkips(deviceId: string): Promise<void>;
  /** Keys `${deviceId}|${releaseId}`. */
  listSkips(): Promise<Set<string>>;

  /**
   * Work claiming for hub instances sharing one database: renews this instance's heartbeat and
   * leases, then claims free or expired homes (row locks, skipping rows another instance holds)
   * up to a fair share — homes ÷ live instances — letting go of any beyond it. Returns the homes
   * this instance holds until `now + leaseMs`; it sequences only those. An instance that dies
   * stops renewing, and the others take its homes over once the lease runs out.
   */
  claimHomes(o: { owner: string; now: EpochMs; leaseMs: number }): Promise<string[]>;
  /** Lets go of every lease of `owner` (a clean stop), so the others need not wait for them to expire. */
  releaseHomes(owner: string): Promise<void>;
  /** A new staged rollout; `conflict` when the release already has one. */
  insertRollout(rollout: Rollout): Promise<void>;
  getRollout(rolloutId: string): Promise<Rollout | null>;
  listRollouts(): Promise<Rollout[]>;
  /** Compare-and-set on `version`: saves only if the stored rollout is still at `expectedVersion`. */
  saveRollout(rollout: Rollout, expectedVersion: number): Promise<boolean>;
  /** Every job of a release, unbounded and light: what a rollout counts. */
  listReleaseJobs(releaseId: string): Promise<ReleaseJob[]>;

  /** The hash of a device's MQTT secret (never the secret itself). */
  setDeviceSecret(deviceId: string, secretHash: string): Promise<void>;
  getDeviceSecret(deviceId: string): Promise<string | null>;

  /**
   * Inserts a new job. Fails with `conflict` when the device already has an open job, and with
   * `home_busy` when the job is active and the home already has an active job.
   */
  insertJob(job: Job): Promise<void>;
  getJob(jobId: string): Promise<Job | null>;
  /** Every open job's device and target, unbounded and light: what the planner needs to skip. */
  listOpenJobTargets(): Promise<{ deviceId: string; targetVersion: string }[]>;
  listJobs(query: JobQuery): Promise<Job[]>;
  /**
   * Saves `job` only if the stored job is still in `expectedState` (compare-and-set), and
   * appends `event` in the same transaction. Returns false when the stored state moved on
   * (someone else won). Fails with `home_busy` when it would make a second active job in the home.
   */
  saveJob(job: Job, expectedState: JobState, event: NewHistoryEvent | null): Promise<boolean>;

  appendEvent(event: NewHistoryEvent): Promise<HistoryEvent>;
  listEvents(query: EventQuery): Promise<HistoryEvent[]>;

  readonly kind: 'sqlite' | 'postgres';
}

export type { StateChange };
