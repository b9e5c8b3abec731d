/**
 * HubService over the engine and the store: read models with one sentence per device, and a
 * person's actions, each through the same gates as automation (and each recorded with who).
 */
import {
  DEFAULT_ROLLOUT_RULES, FirmwardError, actOnRollout, assignWaves, effectiveWindow, isActive, isTerminal, newJob, newRollout, planReleases,
  rolloutProgress,
} from '@firmward/core';
import type { EpochMs, ErrorCode, Home, HomeSettings, Job, Release, Rollout, RolloutAction, Vulnerability } from '@firmward/core';
import type { Clock, DeviceRow, EventQuery, HistoryEvent, ImageRefusal, NewHistoryEvent, Store } from '@firmward/ports';
import type { PeopleEngine } from './engine.ts';
import { stripRow } from './engine.ts';
import { checkHomeSettings, definedOnly } from './home-settings.ts';
import type { ReleaseSources, SourceRefusal } from './release-sources.ts';
import type {
  DeviceSettingsPatch, DeviceUpdateView, DeviceView, HealthView, HomeSettingsPatch, HomeView, HubService, JobView, RolloutView, StartRolloutInput,
} from './service.ts';

export interface HubServiceDeps {
  store: Store;
  engine: PeopleEngine;
  clock: Clock;
  version: string;
  /** How devices are reached right now (bridges may be turned on and off while the hub runs). */
  gatewayName: string | (() => string);
  mqtt: { host: string; port: number } | null;
  /** Where releases come from, and why a repository is refused right now. */
  sources?: Pick<ReleaseSources, 'refusals' | 'names' | 'refusedImagesOf'>;
  /** How each device is reached ("agent", "ddi", "zigbee2mqtt", …). */
  protocolOf?: (deviceId: string) => string;
  /** False while the hub starts (health says so; device routes answer 503 meanwhile). */
  ready?: () => boolean;
}

export class DefaultHubService implements HubService {
  readonly #d: HubServiceDeps;
  readonly #listeners = new Set<(e: HistoryEvent) => void>();
  #seq = 0;

  constructor(deps: HubServiceDeps) {
    this.#d = deps;
    // Every history line committed anywhere in the hub (engine, setup, this service) reaches the live views.
    deps.engine.notifier.subscribe((change) => change.kind === 'history' && this.#live(change.event));
  }

  #live(event: NewHistoryEvent): void {
    const live: HistoryEvent = { id: ++this.#seq, ...event };
    for (const l of this.#listeners) {
      try {
        l(live);
      } catch {
        // A broken listener never blocks an update.
      }
    }
  }

  subscribe(listener: (event: HistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  health(): HealthView {
    const refusals = this.#d.sources?.refusals ?? new Map<string, SourceRefusal>();
    const repositories = (this.#d.sources?.names ?? []).map((name) => {
      const refused = refusals.get(name);
      const refusedImages = this.#d.sources?.refusedImagesOf(name) ?? [];
      return refused ? { name, trusted: false, code: refused.code, message: refused.message, refusedImages } : { name, trusted: true, code: null, message: null, refusedImages };
    });
    return { status: this.#d.ready?.() === false ? 'starting' : 'ok', version: this.#d.version, now: this.#d.clock.now(), store: this.#d.store.kind, gateway: typeof this.#d.gatewayName === 'function' ? this.#d.gatewayName() : this.#d.gatewayName, mqtt: this.#d.mqtt, repositories };
  }

  /**
   * A maker's repository was refused (expired, replayed, badly signed): every home's history says
   * so, because no new release from that maker reaches any of them until it is fixed.
   */
  async recordRepositoryRefusal(refusal: SourceRefusal): Promise<void> {
    await this.#decisionInHomes((await this.#d.store.listHomes()).map((h) => h.id), refusal.code, refusal.message);
  }

  /**
   * A release was withheld because its image at the maker's server did not verify: the history of
   * every home it would have reached (a device of that model and hardware revision) says so once.
   */
  async recordImageRefusal(release: Release, refusal: Pick<ImageRefusal, 'code' | 'message'>): Promise<void> {
    const devices = await this.#d.store.listDevices();
    const homes = new Set(devices.filter((d) => d.vendor === release.vendor && d.model === release.model && release.hardwareRevisions.includes(d.hardwareRevision)).map((d) => d.homeId));
    await this.#decisionInHomes([...homes].sort(), refusal.code, `${release.vendor} ${release.model} ${release.version}: ${refusal.message}`);
  }

  /** The hub's decision, one line in each home's history, announced live. */
  async #decisionInHomes(homeIds: readonly string[], code: string, message: string): Promise<void> {
    const now = this.#d.clock.now();
    for (const homeId of homeIds) {
      const event: NewHistoryEvent = { at: now, homeId, deviceId: null, jobId: null, kind: 'decision', from: null, to: null, code, message, actor: 'hub' };
      await this.#d.store.appendEvent(event);
      this.#d.engine.notifier.committed({ kind: 'history', event });
    }
  }

  async listHomes(): Promise<HomeView[]> {
    const homes = await this.#d.store.listHomes();
    return Promise.all(homes.map((h) => this.#homeView(h)));
  }

  async getHome(homeId: string): Promise<HomeView> {
    return this.#homeView(await this.#home(homeId));
  }

  async listDevices(query: { homeId?: string }): Promise<DeviceView[]> {
    const rows = await this.#d.store.listDevices(query.homeId === undefined ? {} : { homeId: query.homeId });
    return this.#deviceViews(rows);
  }

  async getDevice(deviceId: string): Promise<DeviceView> {
    const [view] = await this.#deviceViews([await this.#device(deviceId)]);
    return view!;
  }

  async listJobs(query: { homeId?: string; deviceId?: string; open?: boolean }): Promise<JobView[]> {
    const jobs = await this.#d.store.listJobs({ ...query, limit: 500 });
    return jobs.map(jobView);
  }

  async getJob(jobId: string): Promise<JobView> {
    const job = await this.#d.store.getJob(jobId);
    if (!job) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
    return jobView(job);
  }

  listEvents(query: EventQuery): Promise<HistoryEvent[]> {
    return this.#d.store.listEvents(query);
  }

  async updateNow(deviceId: string, actor: string): Promise<JobView> {
    const device = await this.#device(deviceId);
    refuseIgnored(device);
    return this.#d.engine.withHome(device.homeId, async () => jobView(await this.#requestJob(device, actor)));
  }

  /** The device's open job marked as a person's request, or a new one for its applicable release. */
  async #requestJob(device: DeviceRow, actor: string): Promise<Job> {
    const now = this.#d.clock.now();
    const store = this.#d.store;
    const open = (await store.listJobs({ deviceId: device.id, open: true }))[0];
    if (open) {
      // Skips are lifted only once the request is granted: a refused request changes nothing.
      await store.removeSkips(device.id);
      if (open.requestedBy) return open;
      const marked: Job = { ...open, requestedBy: actor, updatedAt: now };
      const ok = await store.saveJob(marked, open.state, personEvent(open, now, actor, 'update_now', `${who(actor)} asked to update now; it starts as soon as every safety check passes.`));
      if (!ok) throw new FirmwardError('conflict', 'The update changed while you acted; look again and retry.');
      this.#d.engine.notifier.committed({ kind: 'device', deviceId: device.id, homeId: device.homeId });
      return marked;
    }
    const home = await this.#home(device.homeId);
    const plan = planReleases({
      now, devices: [stripRow(device)], homes: new Map([[home.id, home]]), releases: [...this.#d.engine.releases.values()],
      openJobsByDevice: new Map(), skipped: new Set(),
    });
    const planned = plan.jobs[0];
    if (!planned) {
      const why = plan.noJob[0]?.reason;
      throw new FirmwardError(why !== undefined && REFUSAL_CODES.has(why.code) ? why.code as ErrorCode : 'incompatible', why?.message ?? 'There is no update for this device.');
    }
    const job = newJob({
      id: crypto.randomUUID(), homeId: device.homeId, deviceId: device.id, releaseId: planned.releaseId,
      fromVersion: planned.fromVersion, targetVersion: planned.targetVersion, priority: planned.priority, requestedBy: actor,
    }, now);
    await store.transaction(async (tx) => {
      await tx.removeSkips(device.id);
      await tx.insertJob(job);
      await tx.appendEvent(personEvent(job, now, actor, 'update_now', `${who(actor)} asked to update to ${job.targetVersion} now; it starts as soon as every safety check passes.`));
    });
    this.#d.engine.notifier.committed({ kind: 'device', deviceId: device.id, homeId: device.homeId });
    return job;
  }

  async force(deviceId: string, actor: string): Promise<JobView> {
    const device = await this.#device(deviceId);
    refuseIgnored(device);
    return this.#d.engine.withHome(device.homeId, async () => {
      const home = await this.#home(device.homeId);
      if (home.halt) throw new FirmwardError('queue_halted', 'Updates in this home are paused after a failure; resume or skip first.');
      // Invariant 1 still holds for a forced start (the store refuses a second active job too).
      // Checked before anything is written: a refused force leaves no queued job behind.
      const active = (await this.#d.store.listJobs({ homeId: home.id, open: true })).find((j) => isActive(j.state));
      if (active && active.deviceId !== device.id) throw new FirmwardError('home_busy', 'Another device in this home is updating; only one at a time, even when forced.');
      const job = await this.#requestJob(device, actor);
      if (isActive(job.state)) return jobView(job);
      const release = this.#d.engine.releases.get(job.releaseId);
      const expectedDoneAt = this.#d.clock.now() + ((release?.expectedInstallSeconds ?? 0) + home.settings.soakSeconds) * 1000;
      return jobView(await this.#d.engine.applyHeld(home, job, { type: 'offer', expectedDoneAt, forcedBy: actor, reasons: [] }, actor));
    });
  }

  async cancel(jobId: string, actor: string): Promise<JobView> {
    const found = await this.#d.store.getJob(jobId);
    if (!found) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
    return this.#d.engine.withHome(found.homeId, async () => {
      const job = (await this.#d.store.getJob(jobId))!;
      // Invariant 8: cancelling twice is the same as cancelling once.
      if (job.state === 'cancelled') return jobView(job);
      if (isTerminal(job.state)) throw new FirmwardError('conflict', `This update already ${job.state === 'succeeded' ? 'succeeded' : 'failed'}; there is nothing left to cancel.`);
      // A person's "no" sticks: the same release is not queued again until they ask for it. The
      // skip commits with the cancel, so the planner never sees the one without the other.
      const cancelled = await this.#d.engine.applyHeld(await this.#home(job.homeId), job, { type: 'cancel', by: actor, message: `Cancelled by ${who(actor)}.` }, actor,
        (tx, saved, now) => tx.addSkip(saved.deviceId, saved.releaseId, now, actor));
      return jobView(cancelled);
    });
  }

  async resume(homeId: string, actor: string): Promise<HomeView> {
    return this.#d.engine.withHome(homeId, async () => {
      const home = await this.#home(homeId);
      if (!home.halt) throw new FirmwardError('queue_not_halted', 'Updates in this home are not paused.');
      await this.#d.store.transaction(async (tx) => {
        await tx.setHomeHalt(homeId, null);
        await tx.appendEvent({ at: this.#d.clock.now(), homeId, deviceId: home.halt!.deviceId, jobId: home.halt!.jobId, kind: 'person', from: null, to: null, code: 'resumed', message: `${who(actor)} resumed updates; the failed device will be tried again.`, actor });
      });
      this.#d.engine.notifier.committed({ kind: 'home', homeId });
      return this.#homeView((await this.#d.store.getHome(homeId))!);
    });
  }

  // ── staged rollouts ─────────────────────────────────────────────────────────────────────────

  async startRollout(input: StartRolloutInput, actor: string): Promise<RolloutView> {
    const { releaseId, ...rules } = input;
    const release = this.#d.engine.releases.get(releaseId);
    if (!release) throw new FirmwardError('not_found', `There is no release "${releaseId}" from a trusted source.`);
    if (release.retracted) throw new FirmwardError('retracted', `${releaseId} is retracted by its maker; it is not rolled out.`);
    const rollout = newRollout({ id: crypto.randomUUID(), releaseId, rules: { ...DEFAULT_ROLLOUT_RULES, ...rules }, actor }, this.#d.clock.now());
    try {
      await this.#d.store.insertRollout(rollout);
    } catch (error) {
      if (error instanceof FirmwardError && error.code === 'conflict') throw new FirmwardError('conflict', `${releaseId} already has a staged rollout; pause, resume or abort that one.`, { cause: error });
      throw error;
    }
    this.#d.engine.notifier.committed({ kind: 'fleet', why: 'a staged rollout started' });
    return this.#rolloutView(rollout);
  }

  async listRollouts(): Promise<RolloutView[]> {
    const rollouts = await this.#d.store.listRollouts();
    return Promise.all(rollouts.map((r) => this.#rolloutView(r)));
  }

  async getRollout(rolloutId: string): Promise<RolloutView> {
    return this.#rolloutView(await this.#rollout(rolloutId));
  }

  async actOnRollout(rolloutId: string, action: RolloutAction, actor: string): Promise<RolloutView> {
    const rollout = await this.#rollout(rolloutId);
    const next = actOnRollout(rollout, action, actor, this.#d.clock.now());
    if (!(await this.#d.store.saveRollout(next, rollout.version))) throw new FirmwardError('conflict', 'The rollout changed while you acted; look again and retry.');
    this.#d.engine.notifier.committed({ kind: 'fleet', why: `a staged rollout: ${action}` });
    return this.#rolloutView(next);
  }

  async #rollout(rolloutId: string): Promise<Rollout> {
    const rollout = await this.#d.store.getRollout(rolloutId);
    if (!rollout) throw new FirmwardError('not_found', `There is no rollout "${rolloutId}".`);
    return rollout;
  }

  async #rolloutView(rollout: Rollout): Promise<RolloutView> {
    const homes = await this.#d.store.listHomes();
    const waves = assignWaves(rollout, homes.map((h) => h.id));
    const homesPerWave = rollout.rules.waves.map((_, i) => [...waves.values()].filter((w) => w === i).length);
    const progress = rolloutProgress(rollout, await this.#d.store.listReleaseJobs(rollout.releaseId), waves, this.#d.clock.now());
    const counted = `${progress.succeeded} updated, ${progress.failed} failed, ${progress.running} running, ${progress.waiting} waiting`;
    const wave = `wave ${rollout.wave + 1} of ${rollout.rules.waves.length} (${rollout.rules.waves[rollout.wave]} % of homes)`;
    const summary = rollout.state === 'running' ? `Running, ${wave}: ${counted}.`
      : rollout.state === 'completed' ? `Completed: ${counted}.`
        : `${rollout.reason?.message ?? rollout.state} (${wave}: ${counted}.)`;
    return { ...rollout, homesPerWave, progress, summary };
  }

  async skip(homeId: string, actor: string): Promise<HomeView> {
    return this.#d.engine.withHome(homeId, async () => {
      const home = await this.#home(homeId);
      if (!home.halt) throw new FirmwardError('queue_not_halted', 'Updates in this home are not paused.');
      const failed = await this.#d.store.getJob(home.halt.jobId);
      const now = this.#d.clock.now();
      await this.#d.store.transaction(async (tx) => {
        if (failed) await tx.addSkip(failed.deviceId, failed.releaseId, now, actor);
        await tx.setHomeHalt(homeId, null);
        await tx.appendEvent({ at: now, homeId, deviceId: home.halt!.deviceId, jobId: home.halt!.jobId, kind: 'person', from: null, to: null, code: 'skipped', message: `${who(actor)} skipped ${failed?.targetVersion ?? 'the failed update'} for this device; the other updates go on.`, actor });
      });
      this.#d.engine.notifier.committed({ kind: 'home', homeId });
      return this.#homeView((await this.#d.store.getHome(homeId))!);
    });
  }

  async updateHomeSettings(homeId: string, patch: HomeSettingsPatch, actor: string): Promise<HomeView> {
    return this.#d.engine.withHome(homeId, async () => {
      const home = await this.#home(homeId);
      const settings: HomeSettings = {
        ...home.settings,
        ...(patch.timeZone !== undefined && { timeZone: patch.timeZone }),
        ...(patch.window !== undefined && { window: patch.window }),
        ...(patch.learnQuietHours !== undefined && { learnQuietHours: patch.learnQuietHours }),
        ...(patch.policy !== undefined && { policy: patch.policy }),
        ...(patch.soakSeconds !== undefined && { soakSeconds: patch.soakSeconds }),
        thresholds: { ...home.settings.thresholds, ...definedOnly(patch.thresholds ?? {}) },
      };
      checkHomeSettings(settings);
      await this.#d.store.transaction(async (tx) => {
        await tx.updateHomeSettings(homeId, settings);
        await tx.appendEvent({ at: this.#d.clock.now(), homeId, deviceId: null, jobId: null, kind: 'person', from: null, to: null, code: 'settings_changed', message: `${who(actor)} changed the home's settings: ${Object.keys(patch).join(', ')}.`, actor });
      });
      this.#d.engine.notifier.committed({ kind: 'home', homeId });
      return this.#homeView((await this.#d.store.getHome(homeId))!);
    });
  }

  async updateDeviceSettings(deviceId: string, patch: DeviceSettingsPatch, actor: string): Promise<DeviceView> {
    const device = await this.#device(deviceId);
    await this.#d.engine.withHome(device.homeId, async () => {
      await this.#d.store.transaction(async (tx) => {
        await tx.updateDeviceSettings(deviceId, {
          ...(patch.policy !== undefined && { policy: patch.policy }),
          ...(patch.thresholds !== undefined && { thresholds: { ...device.thresholds, ...definedOnly(patch.thresholds) } }),
          ...(patch.schedules !== undefined && { schedules: patch.schedules }),
        });
        await tx.appendEvent({ at: this.#d.clock.now(), homeId: device.homeId, deviceId, jobId: null, kind: 'person', from: null, to: null, code: 'settings_changed', message: `${who(actor)} changed ${device.name}'s settings: ${Object.keys(patch).join(', ')}.`, actor });
      });
    });
    this.#d.engine.notifier.committed({ kind: 'device', deviceId, homeId: device.homeId });
    return this.getDevice(deviceId);
  }

  // ── read models ─────────────────────────────────────────────────────────────────────────

  async #home(homeId: string): Promise<Home> {
    const home = await this.#d.store.getHome(homeId);
    if (!home) throw new FirmwardError('not_found', `There is no home ${homeId}.`);
    return home;
  }

  async #device(deviceId: string): Promise<DeviceRow> {
    const device = await this.#d.store.getDevice(deviceId);
    if (!device) throw new FirmwardError('not_found', `There is no device ${deviceId}.`);
    return device;
  }

  async #homeView(home: Home): Promise<HomeView> {
    const now = this.#d.clock.now();
    const [jobs, devices, usage] = await Promise.all([
      this.#d.store.listJobs({ homeId: home.id, open: true }),
      this.#d.store.listDevices({ homeId: home.id }),
      this.#d.store.getHomeUsage(home.id, now - home.settings.thresholds.usageLookbackDays * 86_400_000),
    ]);
    const active = jobs.find((j) => isActive(j.state)) ?? null;
    const win = effectiveWindow({ now, timeZone: home.settings.timeZone, window: home.settings.window, learnQuietHours: home.settings.learnQuietHours, homeUsage: usage, thresholds: home.settings.thresholds });
    let halted: HomeView['halted'] = null;
    if (home.halt) {
      const failed = await this.#d.store.getJob(home.halt.jobId);
      const release = failed ? this.#d.engine.releases.get(failed.releaseId) ?? (await this.#d.store.getRelease(failed.releaseId)) : null;
      halted = { ...home.halt, recovery: release?.recovery ?? null };
    }
    const activeDevice = active ? devices.find((d) => d.id === active.deviceId) : undefined;
    const summary = devices.length === 0
      ? 'No devices yet: add one (enroll a Firmward agent, register a hawkBit device, or turn on a bridge).'
      : home.halt
      ? `Paused: an update failed, so the others wait until you resume or skip.`
      : active
        ? `Updating ${activeDevice?.name ?? active.deviceId} to ${active.targetVersion}; the others wait their turn.`
        : jobs.length
          ? `${jobs.length} update${jobs.length === 1 ? '' : 's'} waiting; quiet hours ${win.window.start}–${win.window.end}${win.learned ? ' (learned)' : ''}.`
          : 'Everything is up to date.';
    return {
      id: home.id, name: home.name, settings: home.settings,
      effectiveWindow: { start: win.window.start, end: win.window.end, learned: win.learned },
      halted, activeJobId: active?.id ?? null, deviceCount: devices.length, summary,
    };
  }

  async #deviceViews(rows: DeviceRow[]): Promise<DeviceView[]> {
    if (rows.length === 0) return [];
    const homes = new Map((await this.#d.store.listHomes()).map((h) => [h.id, h]));
    const releases = [...this.#d.engine.releases.values()];
    const skipped = await this.#d.store.listSkips();
    const ignored = new Set(rows.filter((r) => r.ignored).map((r) => r.id));
    const plan = planReleases({ now: this.#d.clock.now(), devices: rows.map(stripRow), homes, releases, openJobsByDevice: new Map(), skipped: new Set(), ignored });
    const available = new Map(plan.jobs.map((p) => [p.deviceId, p.targetVersion]));
    const noJob = new Map(plan.noJob.map((n) => [n.deviceId, n.reason]));
    const views: DeviceView[] = [];
    for (const row of rows) {
      // The device's open job, else its most recent one (what happened last).
      const job = (await this.#d.store.listJobs({ deviceId: row.id, open: true, limit: 1 }))[0]
        ?? (await this.#d.store.listJobs({ deviceId: row.id, order: 'newest', limit: 1 }))[0] ?? null;
      const home = homes.get(row.homeId);
      const vulnerabilities = plan.vulnerable.get(row.id) ?? [];
      const update = updateView({
        row, job, home: home ?? null, now: this.#d.clock.now(), vulnerabilities,
        availableVersion: available.get(row.id) ?? null,
        noJobMessage: noJob.get(row.id)?.message ?? null,
        skipped: job !== null && skipped.has(`${row.id}|${job.releaseId}`),
        release: job ? this.#d.engine.releases.get(job.releaseId) ?? null : null,
      });
      views.push({
        id: row.id, homeId: row.homeId, name: row.name, vendor: row.vendor, model: row.model, hardwareRevision: row.hardwareRevision,
        firmwareVersion: row.firmwareVersion, availableVersion: available.get(row.id) ?? null, protocol: this.#d.protocolOf?.(row.id) ?? 'agent', ignored: row.ignored,
        online: row.online, lastSeenAt: row.lastSeenAt,
        report: row.report, policy: row.policy, thresholds: row.thresholds, schedules: row.schedules, update,
      });
    }
    return views;
  }
}

interface UpdateViewInput {
  row: DeviceRow;
  job: Job | null;
  home: Home | null;
  now: EpochMs;
  vulnerabilities: Vulnerability[];
  availableVersion: string | null;
  noJobMessage: string | null;
  skipped: boolean;
  release: Release | null;
}

/** The one sentence per device (DESIGN: every decision explained in one sentence). */
export function updateView(i: UpdateViewInput): DeviceUpdateView {
  const { job, row } = i;
  const base: DeviceUpdateView = {
    status: 'up-to-date', summary: '', reasons: [], jobId: job?.id ?? null, jobState: job?.state ?? null,
    targetVersion: job?.targetVersion ?? null, progressPercent: job?.progressPercent ?? null, overdue: false,
    forced: job?.forcedBy != null, vulnerabilities: i.vulnerabilities, recovery: null, recheckAt: job?.recheckAt ?? null,
  };
  const vulnerable = i.vulnerabilities.length
    ? ` Vulnerable: ${i.vulnerabilities.map((v) => v.id).join(', ')} fixed in ${i.availableVersion ?? job?.targetVersion ?? 'a newer version'}.`
    : '';
  if (job && !isTerminal(job.state)) {
    base.reasons = job.reasons;
    if (isActive(job.state)) {
      base.status = 'updating';
      base.overdue = job.expectedDoneAt !== null && i.now > job.expectedDoneAt;
      const pct = job.progressPercent === null ? '' : ` (${Math.round(job.progressPercent)} %)`;
      const keep = base.overdue ? ' Taking longer than expected — leave it powered.' : '';
      const text: Record<string, string> = {
        offered: `Starting the update to ${job.targetVersion}.`,
        downloading: `Downloading ${job.targetVersion}${pct}.`,
        downloaded: `Downloaded ${job.targetVersion}; checking conditions once more before installing.`,
        installing: `Installing ${job.targetVersion}${pct} — don't unplug or power it off.`,
        rebooting: `Restarting into ${job.targetVersion} — don't unplug or power it off.`,
        confirming: `Running ${job.targetVersion}; making sure it stays healthy.`,
      };
      base.summary = (text[job.state] ?? `Updating to ${job.targetVersion}.`) + keep + (job.forcedBy ? ` Forced by ${who(job.forcedBy)}.` : '');
      return base;
    }
    const policyHeld = job.reasons.some((r) => r.code.startsWith('policy_'));
    if (policyHeld) {
      base.status = 'available';
      base.summary = `Update ${job.targetVersion} available: ${job.reasons[0]?.message ?? 'waiting for you to start it.'}${vulnerable}`;
      return base;
    }
    if (job.state === 'queued' || job.reasons.length === 0) {
      base.status = 'queued';
      base.summary = `Queued: ${job.targetVersion} will install when it is this device's turn.${vulnerable}`;
      return base;
    }
    base.status = 'waiting';
    base.summary = `Waiting: ${job.reasons.map((r) => r.message).join(' ')}${vulnerable}`;
    return base;
  }
  if (job && job.state === 'failed' && i.home?.halt?.jobId === job.id) {
    base.status = 'failed';
    base.reasons = job.reasons;
    base.recovery = i.release?.recovery ?? null;
    base.summary = `Update to ${job.targetVersion} failed: ${job.failure?.message ?? 'unknown reason.'} Follow the maker's recovery steps, then resume or skip.`;
    return base;
  }
  if (row.ignored) {
    base.status = 'ignored';
    base.summary = `Firmward leaves this device alone (you asked it to): it runs ${row.firmwareVersion} and is never updated from here.${vulnerable}`;
    return base;
  }
  if (!row.report) {
    base.status = 'unknown';
    base.summary = 'Waiting for the device to report.';
    return base;
  }
  if (i.availableVersion && i.skipped) {
    base.status = 'available';
    base.summary = `Update ${i.availableVersion} skipped; press "update now" to install it.${vulnerable}`;
    return base;
  }
  if (i.availableVersion) {
    base.status = 'queued';
    base.targetVersion = i.availableVersion;
    base.summary = `Update ${i.availableVersion} found; planning it.${vulnerable}`;
    return base;
  }
  // No update applies: the planner's reason says why ("Up to date (2.4.1).", "No release for this hardware revision.").
  base.summary = i.noJobMessage ?? `Up to date (${row.firmwareVersion}).`;
  return base;
}

export function jobView(job: Job): JobView {
  return {
    id: job.id, homeId: job.homeId, deviceId: job.deviceId, releaseId: job.releaseId, fromVersion: job.fromVersion,
    targetVersion: job.targetVersion, state: job.state, reasons: job.reasons, progressPercent: job.progressPercent,
    forcedBy: job.forcedBy, requestedBy: job.requestedBy, createdAt: job.createdAt, updatedAt: job.updatedAt,
  };
}

/** The planner's reasons that are also the API's error codes for "update now" (the rest are `incompatible`). */
const REFUSAL_CODES = new Set<string>([
  'already_up_to_date', 'model_mismatch', 'hardware_mismatch', 'not_applicable_from', 'downgrade', 'retracted', 'version_ambiguous', 'version_invalid',
] satisfies ErrorCode[]);

function refuseIgnored(device: DeviceRow): void {
  if (device.ignored) throw new FirmwardError('device_ignored', `You asked Firmward to leave ${device.name} alone; let Firmward look after it again first.`);
}

function personEvent(job: Job, at: EpochMs, actor: string, code: string, message: string): NewHistoryEvent {
  return { at, homeId: job.homeId, deviceId: job.deviceId, jobId: job.id, kind: 'person', from: job.state, to: job.state, code, message, actor };
}

function who(actor: string): string {
  return actor.startsWith('person:') ? actor.slice('person:'.length) : actor;
}
