/**
 * What the hub offers to its edges (HTTP API, CLI through HTTP, dashboard): read models with a
 * sentence for every state, and person actions that go through the same gates as automation.
 * The HTTP layer maps FirmwardError codes to statuses; nothing here knows about HTTP.
 */
import type {
  Rollout, RolloutAction, RolloutProgress, RolloutRules, Device, DeviceReport, HomeSettings, Job, JobState, Policy, PreflightThresholds, Reason, RecoveryInstructions, UsageSchedule, Vulnerability,
} from '@firmward/core';
import type { EventQuery, HistoryEvent, ImageRefusal } from '@firmward/ports';

/** What the person sees for one device, in one word; `summary` says it in a sentence. */
export type UpdateStatus =
  | 'up-to-date'
  | 'available'     // a release applies but policy leaves it to a person
  | 'queued'        // will run when it is this device's turn
  | 'waiting'       // held by a preflight rule or the window: `reasons` say which
  | 'updating'      // the home's one active update
  | 'failed'        // halted the home's queue: recovery steps shown
  | 'ignored'       // a person asked Firmward to leave it alone
  | 'unknown';      // the device has not reported yet

export interface DeviceUpdateView {
  status: UpdateStatus;
  /** One sentence: "Waiting: battery 23 %, needs 50 % or charging." */
  summary: string;
  reasons: Reason[];
  jobId: string | null;
  jobState: JobState | null;
  targetVersion: string | null;
  progressPercent: number | null;
  /** The update runs longer than expected: "taking longer than expected — leave it powered". */
  overdue: boolean;
  forced: boolean;
  /** Vulnerabilities the installed version has that a release fixes. */
  vulnerabilities: Vulnerability[];
  /** Set when the last update of this device failed: the maker's steps for this model. */
  recovery: RecoveryInstructions | null;
  recheckAt: number | null;
}

export interface DeviceView extends Device {
  availableVersion: string | null;
  /** How the hub reaches it: "agent" (our MQTT protocol), "ddi" (hawkBit), or an ecosystem bridge ("zigbee2mqtt", …). */
  protocol: string;
  /** A person asked Firmward never to update it. */
  ignored: boolean;
  online: boolean;
  lastSeenAt: number | null;
  report: DeviceReport | null;
  update: DeviceUpdateView;
}

export interface HomeView {
  id: string;
  name: string;
  settings: HomeSettings;
  /** The window in force now (learned or configured), in the home's time zone. */
  effectiveWindow: { start: string; end: string; learned: boolean };
  halted: { jobId: string; deviceId: string; at: number; message: string; recovery: RecoveryInstructions | null } | null;
  activeJobId: string | null;
  deviceCount: number;
  summary: string;
}

export type JobView = Pick<Job,
  'id' | 'homeId' | 'deviceId' | 'releaseId' | 'fromVersion' | 'targetVersion' | 'state' | 'reasons' | 'progressPercent' |
  'forcedBy' | 'requestedBy' | 'createdAt' | 'updatedAt'>;

export interface HealthView {
  /** 'starting': the hub listens but its gateways and engine are not up yet (device routes answer 503). */
  status: 'ok' | 'starting';
  version: string;
  now: number;
  store: string;
  gateway: string;
  mqtt: { host: string; port: number } | null;
  /** Each maker's signed repository: trusted right now, or refused with a code and why. */
  repositories: {
    name: string; trusted: boolean; code: string | null; message: string | null;
    /** Releases withheld because their image at the maker's server did not verify (altered, cut short, too long, out of reach). */
    refusedImages: ImageRefusal[];
  }[];
}

export interface HomeSettingsPatch {
  timeZone?: string;
  window?: { start: string; end: string };
  learnQuietHours?: boolean;
  policy?: Policy;
  thresholds?: Partial<PreflightThresholds>;
  soakSeconds?: number;
}

export interface DeviceSettingsPatch {
  policy?: Policy | null;
  thresholds?: Partial<PreflightThresholds>;
  schedules?: UsageSchedule[];
}

/**
 * Every action takes `actor` ("person:owner") for the history. Each action is idempotent: asking
 * twice for the same thing returns the same job.
 */
export interface HubService {
  health(): HealthView;
  listHomes(): Promise<HomeView[]>;
  getHome(homeId: string): Promise<HomeView>;
  listDevices(query: { homeId?: string }): Promise<DeviceView[]>;
  getDevice(deviceId: string): Promise<DeviceView>;
  listJobs(query: { homeId?: string; deviceId?: string; open?: boolean }): Promise<JobView[]>;
  getJob(jobId: string): Promise<JobView>;
  listEvents(query: EventQuery): Promise<HistoryEvent[]>;
  /** "Update now": queue the device's applicable release ahead of policy, still through every gate. */
  updateNow(deviceId: string, actor: string): Promise<JobView>;
  /** Start now, past a failing preflight gate; recorded as forced. Never past compatibility or the one-per-home rule. */
  force(deviceId: string, actor: string): Promise<JobView>;
  /** Cancel before the install step; `cancel_too_late` after. */
  cancel(jobId: string, actor: string): Promise<JobView>;
  /** A halted queue goes on; the failed device will be tried again. */
  resume(homeId: string, actor: string): Promise<HomeView>;
  /** A halted queue goes on without the failed device's release (it is not offered again until a newer one). */
  skip(homeId: string, actor: string): Promise<HomeView>;
  updateHomeSettings(homeId: string, patch: HomeSettingsPatch, actor: string): Promise<HomeView>;
  updateDeviceSettings(deviceId: string, patch: DeviceSettingsPatch, actor: string): Promise<DeviceView>;
  /** Staged rollouts across homes: a release in growing waves, stopping by itself on failures. */
  startRollout(input: StartRolloutInput, actor: string): Promise<RolloutView>;
  listRollouts(): Promise<RolloutView[]>;
  getRollout(rolloutId: string): Promise<RolloutView>;
  actOnRollout(rolloutId: string, action: RolloutAction, actor: string): Promise<RolloutView>;
  /** Live updates for the dashboard and `firmward watch`; returns an unsubscribe function. */
  subscribe(listener: (event: HistoryEvent) => void): () => void;
}

export type StartRolloutInput = { releaseId: string } & Partial<RolloutRules>;

/** A rollout with where it stands: homes per wave, and its updates counted from its start (or resume). */
export interface RolloutView extends Rollout {
  homesPerWave: number[];
  progress: RolloutProgress;
  /** One sentence: where the rollout is and what happens next. */
  summary: string;
}
