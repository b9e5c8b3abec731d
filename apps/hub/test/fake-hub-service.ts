/**
 * An in-memory HubService for testing the edges (HTTP mapping, CLI output). It keeps just
 * enough behaviour to be believable and records every call, so a test can assert that the edge
 * refused a request *without* reaching the service. It decides nothing about safety: the engine's
 * own tests own the invariants.
 */
import { DEFAULT_ROLLOUT_RULES, DEFAULT_THRESHOLDS, DEFAULT_WINDOW, FirmwardError, actOnRollout, isCancellable, newRollout } from '@firmward/core';
import type { JobState, Rollout, RolloutAction } from '@firmward/core';
import type { EventQuery, HistoryEvent } from '@firmward/ports';
import type {
  DeviceSettingsPatch, DeviceView, HealthView, HomeSettingsPatch, HomeView, HubService, JobView, RolloutView, StartRolloutInput,
} from '../src/service.ts';

export interface Call {
  method: keyof HubService;
  args: unknown[];
}

export function homeView(id: string, patch: Partial<HomeView> = {}): HomeView {
  return {
    id,
    name: `Home ${id}`,
    settings: {
      timeZone: 'Europe/Berlin', window: DEFAULT_WINDOW, learnQuietHours: true, policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS, soakSeconds: 120, silenceTimeoutSeconds: 900,
    },
    effectiveWindow: { start: '01:00', end: '05:00', learned: false },
    halted: null,
    activeJobId: null,
    deviceCount: 0,
    summary: 'All devices are up to date.',
    ...patch,
  };
}

export function deviceView(id: string, homeId: string, patch: Partial<DeviceView> = {}): DeviceView {
  return {
    id, homeId,
    name: `Device ${id}`,
    vendor: 'acme', model: 'plug-2', hardwareRevision: 'rev-b',
    firmwareVersion: '1.2.0', availableVersion: null, protocol: 'agent', ignored: false,
    online: true, lastSeenAt: 1_700_000_000_000, report: null, policy: null, thresholds: {}, schedules: [],
    update: {
      status: 'up-to-date', summary: 'Up to date.', reasons: [], jobId: null, jobState: null, targetVersion: null,
      progressPercent: null, overdue: false, forced: false, vulnerabilities: [], recovery: null, recheckAt: null,
    },
    ...patch,
  };
}

export function jobView(id: string, deviceId: string, homeId: string, state: JobState, patch: Partial<JobView> = {}): JobView {
  return {
    id, homeId, deviceId, releaseId: 'acme/plug-2/1.3.0', fromVersion: '1.2.0', targetVersion: '1.3.0', state,
    reasons: [], progressPercent: null, forcedBy: null, requestedBy: null, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000,
    ...patch,
  };
}

export class FakeHubService implements HubService {
  readonly homes = new Map<string, HomeView>();
  readonly devices = new Map<string, DeviceView>();
  readonly jobs = new Map<string, JobView>();
  readonly events: HistoryEvent[] = [];
  readonly calls: Call[] = [];
  readonly listeners = new Set<(event: HistoryEvent) => void>();
  /** When set, every call but health and subscribe throws it. */
  failWith: Error | null = null;
  /** What health() says about the makers' repositories. */
  repositories: HealthView['repositories'] = [];
  now = 1_700_000_000_000;
  #nextJob = 1;

  #enter(method: keyof HubService, args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith !== null) throw this.failWith;
  }

  #home(homeId: string): HomeView {
    const home = this.homes.get(homeId);
    if (home === undefined) throw new FirmwardError('not_found', `There is no home "${homeId}".`);
    return home;
  }
  #device(deviceId: string): DeviceView {
    const device = this.devices.get(deviceId);
    if (device === undefined) throw new FirmwardError('not_found', `There is no device "${deviceId}".`);
    return device;
  }

  /** Records a history line and tells every subscriber, as the engine would. */
  emit(event: Omit<HistoryEvent, 'id' | 'at'> & { at?: number }): HistoryEvent {
    const full: HistoryEvent = { ...event, id: this.events.length + 1, at: event.at ?? this.now };
    this.events.push(full);
    for (const listener of this.listeners) listener(full);
    return full;
  }

  health(): HealthView {
    this.calls.push({ method: 'health', args: [] });
    return { status: 'ok', version: '0.1.0', now: this.now, store: 'memory', gateway: 'none', mqtt: null, repositories: this.repositories };
  }
  listHomes(): Promise<HomeView[]> {
    this.#enter('listHomes', []);
    return Promise.resolve([...this.homes.values()]);
  }
  getHome(homeId: string): Promise<HomeView> {
    this.#enter('getHome', [homeId]);
    return Promise.resolve(this.#home(homeId));
  }
  listDevices(query: { homeId?: string }): Promise<DeviceView[]> {
    this.#enter('listDevices', [query]);
    return Promise.resolve([...this.devices.values()].filter((d) => query.homeId === undefined || d.homeId === query.homeId));
  }
  getDevice(deviceId: string): Promise<DeviceView> {
    this.#enter('getDevice', [deviceId]);
    return Promise.resolve(this.#device(deviceId));
  }
  listJobs(query: { homeId?: string; deviceId?: string; open?: boolean }): Promise<JobView[]> {
    this.#enter('listJobs', [query]);
    const terminal = (s: JobState) => s === 'succeeded' || s === 'failed' || s === 'cancelled';
    return Promise.resolve([...this.jobs.values()].filter((j) =>
      (query.homeId === undefined || j.homeId === query.homeId)
      && (query.deviceId === undefined || j.deviceId === query.deviceId)
      && (query.open === undefined || query.open === !terminal(j.state))));
  }
  getJob(jobId: string): Promise<JobView> {
    this.#enter('getJob', [jobId]);
    const job = this.jobs.get(jobId);
    if (job === undefined) throw new FirmwardError('not_found', `There is no update "${jobId}".`);
    return Promise.resolve(job);
  }
  listEvents(query: EventQuery): Promise<HistoryEvent[]> {
    this.#enter('listEvents', [query]);
    return Promise.resolve(this.events
      .filter((e) => (query.homeId === undefined || e.homeId === query.homeId)
        && (query.deviceId === undefined || e.deviceId === query.deviceId)
        && (query.jobId === undefined || e.jobId === query.jobId)
        && (query.to === undefined || e.to === query.to)
        && (query.beforeId === undefined || e.id < query.beforeId))
      .sort((a, b) => b.id - a.id)
      .slice(0, query.limit));
  }
  updateNow(deviceId: string, actor: string): Promise<JobView> {
    this.#enter('updateNow', [deviceId, actor]);
    const device = this.#device(deviceId);
    const open = [...this.jobs.values()].find((j) => j.deviceId === deviceId && isCancellable(j.state));
    if (open !== undefined) return Promise.resolve(open);
    const job = jobView(`job-${this.#nextJob++}`, deviceId, device.homeId, 'queued', {
      requestedBy: actor, reasons: [{ code: 'queued', message: 'Queued; it starts when every safety check passes.' }],
    });
    this.jobs.set(job.id, job);
    return Promise.resolve(job);
  }
  force(deviceId: string, actor: string): Promise<JobView> {
    this.#enter('force', [deviceId, actor]);
    const device = this.#device(deviceId);
    const job = jobView(`job-${this.#nextJob++}`, deviceId, device.homeId, 'offered', { forcedBy: actor, requestedBy: actor });
    this.jobs.set(job.id, job);
    return Promise.resolve(job);
  }
  cancel(jobId: string, actor: string): Promise<JobView> {
    this.#enter('cancel', [jobId, actor]);
    const job = this.jobs.get(jobId);
    if (job === undefined) throw new FirmwardError('not_found', `There is no update "${jobId}".`);
    if (!isCancellable(job.state)) throw new FirmwardError('cancel_too_late', 'The device is already installing; stopping now could break it, so the update goes on.');
    const next = { ...job, state: 'cancelled' as const };
    this.jobs.set(jobId, next);
    return Promise.resolve(next);
  }
  resume(homeId: string, actor: string): Promise<HomeView> {
    this.#enter('resume', [homeId, actor]);
    const home = this.#home(homeId);
    if (home.halted === null) throw new FirmwardError('queue_not_halted', 'Updates in this home are not halted.');
    const next = { ...home, halted: null };
    this.homes.set(homeId, next);
    return Promise.resolve(next);
  }
  skip(homeId: string, actor: string): Promise<HomeView> {
    this.#enter('skip', [homeId, actor]);
    const home = this.#home(homeId);
    if (home.halted === null) throw new FirmwardError('queue_not_halted', 'Updates in this home are not halted.');
    const next = { ...home, halted: null };
    this.homes.set(homeId, next);
    return Promise.resolve(next);
  }
  updateHomeSettings(homeId: string, patch: HomeSettingsPatch, actor: string): Promise<HomeView> {
    this.#enter('updateHomeSettings', [homeId, patch, actor]);
    const home = this.#home(homeId);
    const next: HomeView = {
      ...home,
      settings: { ...home.settings, ...patch, thresholds: { ...home.settings.thresholds, ...patch.thresholds } },
    };
    this.homes.set(homeId, next);
    return Promise.resolve(next);
  }
  updateDeviceSettings(deviceId: string, patch: DeviceSettingsPatch, actor: string): Promise<DeviceView> {
    this.#enter('updateDeviceSettings', [deviceId, patch, actor]);
    const device = this.#device(deviceId);
    const next: DeviceView = { ...device, ...patch, thresholds: { ...device.thresholds, ...patch.thresholds } };
    this.devices.set(deviceId, next);
    return Promise.resolve(next);
  }
  /** Rollouts as the real service keeps them, without a fleet behind them: no homes, nothing counted. */
  readonly rollouts = new Map<string, RolloutView>();
  startRollout(input: StartRolloutInput, actor: string): Promise<RolloutView> {
    this.#enter('startRollout', [input, actor]);
    const { releaseId, ...rules } = input;
    if ([...this.rollouts.values()].some((r) => r.releaseId === releaseId)) throw new FirmwardError('conflict', `${releaseId} already has a staged rollout.`);
    const rollout = newRollout({ id: `rollout-${this.rollouts.size + 1}`, releaseId, rules: { ...DEFAULT_ROLLOUT_RULES, ...rules }, actor }, this.now);
    return Promise.resolve(this.#rolloutView(rollout));
  }
  listRollouts(): Promise<RolloutView[]> {
    this.#enter('listRollouts', []);
    return Promise.resolve([...this.rollouts.values()]);
  }
  getRollout(rolloutId: string): Promise<RolloutView> {
    this.#enter('getRollout', [rolloutId]);
    const rollout = this.rollouts.get(rolloutId);
    if (!rollout) throw new FirmwardError('not_found', `There is no rollout "${rolloutId}".`);
    return Promise.resolve(rollout);
  }
  actOnRollout(rolloutId: string, action: RolloutAction, actor: string): Promise<RolloutView> {
    this.#enter('actOnRollout', [rolloutId, action, actor]);
    const rollout = this.rollouts.get(rolloutId);
    if (!rollout) throw new FirmwardError('not_found', `There is no rollout "${rolloutId}".`);
    return Promise.resolve(this.#rolloutView(actOnRollout(rollout, action, actor, this.now)));
  }
  #rolloutView(rollout: Rollout): RolloutView {
    const view: RolloutView = {
      ...rollout, homesPerWave: rollout.rules.waves.map(() => 0),
      progress: { finished: 0, succeeded: 0, failed: 0, running: 0, stuck: 0, waiting: 0, waveDone: false },
      summary: rollout.state === 'running' ? `Running, wave ${rollout.wave + 1} of ${rollout.rules.waves.length}.` : (rollout.reason?.message ?? rollout.state),
    };
    this.rollouts.set(rollout.id, view);
    return view;
  }
  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

/** Two homes, three devices, one running update, one halted home: enough for every screen. */
export function seededFake(): FakeHubService {
  const fake = new FakeHubService();
  fake.homes.set('home-1', homeView('home-1', { name: 'Flat 12', deviceCount: 2, activeJobId: 'job-run', summary: 'Updating the kitchen plug; one device at a time.' }));
  fake.homes.set('home-2', homeView('home-2', {
    name: 'Cabin', deviceCount: 1, summary: 'Updates are halted: the thermostat update failed.',
    halted: { jobId: 'job-failed', deviceId: 'thermo', at: fake.now, message: 'The thermostat came back on 2.0.0 instead of 2.1.0.', recovery: null },
  }));
  fake.devices.set('plug', deviceView('plug', 'home-1', {
    name: 'Kitchen plug', availableVersion: '1.3.0',
    update: {
      status: 'updating', summary: 'Installing 1.3.0 (40 %). Leave it powered.', reasons: [], jobId: 'job-run', jobState: 'installing',
      targetVersion: '1.3.0', progressPercent: 40, overdue: false, forced: false, vulnerabilities: [], recovery: null, recheckAt: null,
    },
  }));
  fake.devices.set('lock', deviceView('lock', 'home-1', {
    name: 'Front door lock', availableVersion: '3.1.0',
    update: {
      status: 'waiting', summary: 'Waiting: battery 23 %, needs 50 % or charging.',
      reasons: [{ code: 'battery_low', message: 'Battery 23 %, needs 50 % or charging.' }], jobId: 'job-wait', jobState: 'waiting',
      targetVersion: '3.1.0', progressPercent: null, overdue: false, forced: false,
      vulnerabilities: [{ id: 'CVE-2026-1234', severity: 'high' }], recovery: null, recheckAt: null,
    },
  }));
  fake.devices.set('thermo', deviceView('thermo', 'home-2', {
    name: 'Thermostat', firmwareVersion: '2.0.0', availableVersion: '2.1.0',
    update: {
      status: 'failed', summary: 'The update to 2.1.0 failed; it went back to 2.0.0 and works as before.',
      reasons: [], jobId: 'job-failed', jobState: 'failed', targetVersion: '2.1.0', progressPercent: null, overdue: false, forced: false,
      vulnerabilities: [], recheckAt: null,
      recovery: { steps: ['Leave it powered for ten minutes.', 'Hold the button for five seconds.'], supportUrl: 'https://acme.example/support' },
    },
  }));
  fake.jobs.set('job-run', jobView('job-run', 'plug', 'home-1', 'installing', { progressPercent: 40 }));
  fake.jobs.set('job-wait', jobView('job-wait', 'lock', 'home-1', 'waiting', { releaseId: 'acme/lock/3.1.0', fromVersion: '3.0.0', targetVersion: '3.1.0' }));
  fake.jobs.set('job-failed', jobView('job-failed', 'thermo', 'home-2', 'failed', { releaseId: 'acme/thermo/2.1.0', fromVersion: '2.0.0', targetVersion: '2.1.0' }));
  fake.emit({ homeId: 'home-2', deviceId: 'thermo', jobId: 'job-failed', kind: 'transition', from: 'rebooting', to: 'failed', code: 'rolled_back', message: 'The thermostat came back on 2.0.0 instead of 2.1.0.', actor: 'device' });
  fake.emit({ homeId: 'home-1', deviceId: 'plug', jobId: 'job-run', kind: 'transition', from: 'downloaded', to: 'installing', code: 'install_approved', message: 'Checks passed again right before installing.', actor: 'hub' });
  fake.calls.length = 0;
  return fake;
}
