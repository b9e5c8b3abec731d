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

/** A job the planner queues, with the history line that says why. */
export interface PlannedJob {
  job: Job;
  event: NewHistoryEvent;
}

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
  /** A person chose that Firmward never updates this device (it stays listed). */
  ignored: boolean;
}

/**
 * A one-time code that lets one device ask to join a home. Only the code's SHA-256 digest is
 * stored: a copy of the database does not let anybody enroll.
 */
export interface Enrollment {
  id: string;
  homeId: string;
  /** SHA-256 of the normalized code, lowercase hex. */
  codeDigest: string;
  createdAt: EpochMs;
  expiresAt: EpochMs;
  /** "person:<name>" */
  createdBy: string;
  /** A code works once: when it was used, and by which request to join. */
  usedAt: EpochMs | null;
  usedBy: string | null;
}

export type PendingDeviceState = 'waiting' | 'approved' | 'rejected';
export type PendingDeviceProtocol = 'agent' | 'hawkbit';

/**
 * A device that asked to join and waits for a person's yes or no (invariant 2: the identity
 * stored on approval is this one, as the person saw and approved it).
 */
export interface PendingDevice {
  id: string;
  /** Where it asks to join; null for a hawkBit device that registered itself with no home to go to (the person picks one). */
  homeId: string | null;
  deviceId: string;
  protocol: PendingDeviceProtocol;
  name: string;
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
  /** The credential that becomes the device's on approval (an agent's issued MQTT secret, hashed); null for hawkBit. */
  secretHash: string | null;
  enrollmentId: string | null;
  state: PendingDeviceState;
  requestedAt: EpochMs;
  /** The network address the request came from (shown to the person approving). */
  requestedFrom: string;
  decidedAt: EpochMs | null;
  decidedBy: string | null;
}

/** A maker's signed repository added while the hub runs (the config file's are not stored). */
export interface RepositoryRecord {
  name: string;
  url: string;
  /** The maker's root.json as the person gave it: trust starts here, never fetched on first use. */
  root: string;
  addedAt: EpochMs;
  addedBy: string;
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
  /** A new home; fails with `conflict` when one with that id exists (putHome would replace it). */
  insertHome(home: Home): Promise<void>;
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
  /** Revokes the device's credential (it stays listed, but can no longer log in). */
  deleteDeviceSecret(deviceId: string): Promise<void>;
  /** Every stored credential (what an external broker's password file is written from). */
  listDeviceSecrets(): Promise<{ deviceId: string; secretHash: string }[]>;

  /**
   * Removes a home and everything that hangs off it: its devices (with their credentials,
   * telemetry and skips), its jobs, enrollments, waiting devices and lease. The history stays.
   * The caller ends open jobs first (invariant 6 is the caller's to keep).
   */
  deleteHome(homeId: string): Promise<void>;
  /** Removes a device with its jobs, credential, telemetry and skips. The history stays. */
  deleteDevice(deviceId: string): Promise<void>;
  setDeviceIgnored(deviceId: string, ignored: boolean): Promise<void>;

  insertEnrollment(enrollment: Enrollment): Promise<void>;
  /** The enrollment whose code has this digest, used or not. */
  findEnrollment(codeDigest: string): Promise<Enrollment | null>;
  /** Newest first. */
  listEnrollments(query: { homeId?: string }): Promise<Enrollment[]>;
  /** Compare-and-set: marks it used only when nobody used it first (a code works once). */
  useEnrollment(enrollmentId: string, at: EpochMs, by: string): Promise<boolean>;
  deleteEnrollment(enrollmentId: string): Promise<boolean>;

  /** Fails with `conflict` when a request for the same device id is already waiting. */
  insertPendingDevice(pending: PendingDevice): Promise<void>;
  getPendingDevice(pendingId: string): Promise<PendingDevice | null>;
  /** Oldest first. */
  listPendingDevices(query: { homeId?: string; deviceId?: string; states?: PendingDeviceState[] }): Promise<PendingDevice[]>;
  /** Compare-and-set on a waiting request: saves the decision only if it is still waiting. */
  decidePendingDevice(decided: PendingDevice): Promise<boolean>;
  /** Drops decided requests decided before `before`, and enrollments that expired before it. */
  pruneEnrollments(before: EpochMs): Promise<void>;

  /** Fails with `conflict` when a repository of that name exists. */
  insertRepository(repository: RepositoryRecord): Promise<void>;
  listRepositories(): Promise<RepositoryRecord[]>;
  deleteRepository(name: string): Promise<boolean>;

  /** Hub-wide settings a person changed while the hub runs, shared by every instance (each a JSON object). */
  getSetting(key: string): Promise<Record<string, unknown> | null>;
  putSetting(key: string, value: Record<string, unknown>): Promise<void>;

  /**
   * Inserts a new job. Fails with `conflict` when the device already has an open job, and with
   * `home_busy` when the job is active and the home already has an active job.
   */
  insertJob(job: Job): Promise<void>;
  /**
   * Inserts planned jobs, each with its history line, in one transaction (a few round trips for
   * thousands of jobs, not two per job). A job for a device that already has an open job — another
   * hub instance or a person queued one first, or an earlier job of the same batch — is left out
   * with its line, not an error. Returns the jobs inserted, in the given order. Any other refusal
   * fails the whole batch as `insertJob` would: `conflict` for a job id that exists, `home_busy`
   * for an active job in a busy home, `not_found` for an unknown home or device.
   */
  insertPlannedJobs(items: PlannedJob[]): Promise<Job[]>;
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
