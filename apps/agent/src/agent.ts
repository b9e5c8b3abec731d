/**
 * The device agent: takes the hub's offer, checks it itself, downloads into the inactive slot,
 * switches on the hub's go-ahead, boots on trial, runs its health check and commits or rolls back
 * (DESIGN "The path of one update", step 7). The agent owns the state machine; the platform owns
 * the hardware (STYLE principle 6); the transport only carries messages.
 *
 * Every phase change goes through `#commitJournal`, which checks the transition, persists it and
 * only then emits it (STYLE principle 4). What the device runs is always read from the platform,
 * never from the journal (invariant 7: report truthfully what runs).
 */
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Reason } from '@firmward/core';
import type { Clock, Logger } from '@firmward/ports';
import { silentLogger } from '@firmward/ports';
import { isDeviceCode, isTemporary, PROTOCOL_VERSION } from '@firmward/protocol';
import type {
  CancelCommand, Command, DeviceEvent, DeviceReason, DeviceState, InstallCommand, OfferCommand, OwnDeviceEvent, OwnResultEvent, ResultEvent,
} from '@firmward/protocol';
import { agentConfig } from './config.ts';
import type { AgentConfig } from './config.ts';
import { downloadToSlot, verifySlot } from './download.ts';
import { EMPTY_JOURNAL, FINISHED_JOBS_KEPT, newJournalJob, parseJournal } from './journal.ts';
import type { AgentJournal, AgentPhase, JournalJob } from './journal.ts';
import { checkOfferFits, checkOwnPreflight } from './offer-check.ts';
import type { OwnPreflightThresholds } from './offer-check.ts';
import type { AgentPlatform, BootState, DeviceIdentity, HealthReport } from './platform.ts';
import { planRecovery } from './recovery.ts';
import { sleepOn } from './sleep.ts';
import type { AgentTransport } from './transport.ts';

export type AgentPhaseOrIdle = AgentPhase | 'idle';

/** One change of the agent's phase, emitted after it was persisted. */
export interface AgentTransition {
  jobId: string;
  from: AgentPhaseOrIdle;
  to: AgentPhaseOrIdle;
  reason: Reason;
}

export interface AgentDeps {
  platform: AgentPlatform;
  transport: AgentTransport;
  clock: Clock;
  config?: Partial<AgentConfig>;
  log?: Logger;
  /** The HTTP client for images; the global fetch by default. */
  fetch?: typeof fetch;
  /**
   * The device's own check that the maker signed exactly the offered image for this device
   * (adapters/tuf DeviceTrust, with the roots shipped on the device). Without one the agent
   * trusts the hub's offer — only for tests of the agent's other rules.
   */
  verifier?: OfferVerifier;
}

export interface OfferVerifier {
  /** null when the maker vouches for this offer for this device; else why not. */
  check(offer: OfferCommand, device: DeviceIdentity & { firmwareVersion: string }): Promise<Reason | null>;
}

/** The only legal phase changes; anything else is a bug and throws `illegal_transition`. */
const LEGAL: Record<AgentPhaseOrIdle, readonly AgentPhaseOrIdle[]> = {
  idle: ['downloading'],
  downloading: ['downloaded', 'idle'],
  downloaded: ['installing', 'idle'],
  installing: ['installing', 'rebooting', 'rolling-back', 'idle'],
  rebooting: ['rolling-back', 'idle'],
  'rolling-back': ['idle'],
};

/** The phases before the install step: the only ones a cancel can stop (invariant 6). */
const CANCELLABLE: readonly AgentPhaseOrIdle[] = ['downloading', 'downloaded'];

interface Run {
  abort: AbortController;
  unsubscribe: () => void;
}

interface DownloadTask {
  jobId: string;
  abort: AbortController;
  done: Promise<void>;
}

/**
 * @example
 * const agent = new Agent({ platform, transport, clock: new SystemClock(), config: { stateReportIntervalMs: 30_000 } });
 * await agent.start();
 * // … later
 * await agent.stop();
 */
export class Agent {
  readonly #platform: AgentPlatform;
  readonly #transport: AgentTransport;
  readonly #clock: Clock;
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #fetch: typeof fetch | undefined;
  readonly #verifier: OfferVerifier | null;
  readonly #listeners = new Set<(transition: AgentTransition) => void>();
  #journal: AgentJournal = EMPTY_JOURNAL;
  #identity: DeviceIdentity | null = null;
  #run: Run | null = null;
  #queue: Promise<void> = Promise.resolve();
  #download: DownloadTask | null = null;
  #stateLoop: Promise<void> = Promise.resolve();

  constructor(deps: AgentDeps) {
    this.#platform = deps.platform;
    this.#transport = deps.transport;
    this.#clock = deps.clock;
    this.#config = agentConfig(deps.config);
    this.#log = deps.log ?? silentLogger;
    this.#fetch = deps.fetch;
    this.#verifier = deps.verifier ?? null;
  }

  /** The phase of the current job as last persisted ('idle' without one). */
  get phase(): AgentPhaseOrIdle {
    return this.#journal.job?.phase ?? 'idle';
  }

  get jobId(): string | null {
    return this.#journal.job?.jobId ?? null;
  }

  get running(): boolean {
    return this.#run !== null;
  }

  /** Sees every phase change after it was persisted. Returns a function that unsubscribes. */
  onTransition(listener: (transition: AgentTransition) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Loads the journal, connects, then first settles whatever a restart interrupted (a pending
   * trial boot is judged by its health check before anything is reported) and only then starts
   * the periodic state report.
   */
  async start(): Promise<void> {
    if (this.#run) throw new FirmwardError('conflict', 'The agent is already running.');
    const run: Run = { abort: new AbortController(), unsubscribe: () => undefined };
    const signal = run.abort.signal;
    this.#run = run;
    try {
      this.#identity = await this.#platform.identity();
      const loaded = parseJournal(await this.#platform.loadJournal());
      if (loaded.error) this.#log.warn('The agent journal could not be read; starting without it.', { error: loaded.error });
      this.#journal = loaded.journal;

      const connected = this.#transport.start();
      // Recovery is queued before any command, so commands always meet a settled state.
      const recovered = this.#enqueue(signal, async () => {
        await connected;
        await this.#recover(signal);
      });
      run.unsubscribe = this.#transport.onCommand((command) => {
        void this.#enqueue(signal, () => this.#handleCommand(command, signal));
      });
      this.#stateLoop = this.#runStateLoop(recovered, signal);
      await connected;
    } catch (error) {
      this.#halt(run);
      throw error;
    }
  }

  /** Stops reporting and any download (resumed on the next start); an install already switching goes on. */
  async stop(): Promise<void> {
    const run = this.#run;
    if (!run) return;
    this.#halt(run);
    await this.#download?.done;
    await this.#queue;
    await this.#stateLoop;
    await this.#transport.stop().catch((error: unknown) => this.#log.warn('The connection did not close cleanly.', { error: String(error) }));
  }

  /** Resolves once every command received so far has been handled (for tests and simulations). */
  async settled(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.#queue;
      await seen;
    } while (seen !== this.#queue);
  }

  #halt(run: Run): void {
    if (this.#run === run) this.#run = null;
    run.unsubscribe();
    run.abort.abort(new FirmwardError('internal', 'The agent stopped.'));
    this.#download?.abort.abort(run.abort.signal.reason);
  }

  #enqueue(signal: AbortSignal, op: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(async () => {
      if (signal.aborted) return;
      await op();
    }).catch((error: unknown) => {
      if (signal.aborted) return;
      this.#log.error('The agent could not finish a step.', { error: describe(error) });
    });
    this.#queue = next;
    return next;
  }

  // ─── commands ──────────────────────────────────────────────────────────────────────────────

  async #handleCommand(command: Command, signal: AbortSignal): Promise<void> {
    switch (command.type) {
      case 'offer': return this.#handleOffer(command, signal);
      case 'install': return this.#handleInstall(command, signal);
      case 'cancel': return this.#handleCancel(command);
    }
  }

  async #handleOffer(offer: OfferCommand, signal: AbortSignal): Promise<void> {
    if (await this.#answerFinished(offer.jobId, offer.offerSeq)) return;
    const current = this.#journal.job;
    const seq = offer.offerSeq;
    if (current && current.jobId === offer.jobId) {
      // Idempotent by job id (invariant 8): answer again, never start over. A new offer of the same
      // job (after the device could not get it) is remembered, so later answers name it.
      if (seq !== undefined && seq !== current.offer.offerSeq) {
        await this.#commitJournal({ ...current, offer: { ...current.offer, offerSeq: seq } }, { code: 'offered_again', message: 'Offered again.' });
      }
      await this.#ack(offer.jobId, true, null, seq);
      await this.#reportPhase(current);
      // A download paused after the hub was out of reach for too long resumes where it stopped.
      if (current.phase === 'downloading' && !this.#download) this.#startDownload(signal);
      return;
    }
    if (current && !CANCELLABLE.includes(current.phase)) {
      await this.#ack(offer.jobId, false, {
        code: 'update_in_progress',
        message: `The device is installing another update (${current.offer.version}); it cannot take a new one until that is done.`,
      }, seq);
      return;
    }

    const identity = await this.#getIdentity();
    const boot = await this.#platform.bootState();
    const installed = boot.versions[boot.activeSlot];
    if (installed === null) {
      await this.#ack(offer.jobId, false, { code: 'version_unknown', message: 'The device cannot tell which version it runs, so it takes no update.' }, seq);
      return;
    }
    const refusal = checkOfferFits(offer, identity, installed)
      ?? verifierReason(await this.#verifier?.check(offer, { ...identity, firmwareVersion: installed }) ?? null)
      ?? checkOwnPreflight(offer, await this.#platform.conditions(), this.#ownThresholds());
    if (refusal) {
      this.#log.info('Refused an offer.', { jobId: offer.jobId, code: refusal.code });
      await this.#ack(offer.jobId, false, refusal, seq);
      return;
    }

    if (current) {
      // The hub moved on to another job before the install step: the old download is dropped.
      await this.#stopDownload();
      await this.#commitJournal(null, { code: 'replaced', message: `Replaced by update ${offer.jobId}.` }, { cancelled: current.jobId });
    }
    // Journalled before the ack: a repeated offer after a restart is recognised, not restarted.
    await this.#commitJournal(newJournalJob(offer, boot.activeSlot, installed), {
      code: 'accepted', message: `Accepted the update to ${offer.version}.`,
    });
    await this.#ack(offer.jobId, true, null, seq);
    this.#startDownload(signal);
    await this.#publishState();
  }

  #ownThresholds(): OwnPreflightThresholds {
    return { minBatteryPercent: this.#config.minBatteryPercent, minSignalDbm: this.#config.minSignalDbm };
  }

  async #handleInstall(command: InstallCommand, signal: AbortSignal): Promise<void> {
    if (await this.#answerFinished(command.jobId)) return;
    const job = this.#journal.job;
    if (!job || job.jobId !== command.jobId) {
      await this.#ack(command.jobId, false, { code: 'unknown_job', message: 'The device has no downloaded update with this id.' });
      return;
    }
    switch (job.phase) {
      case 'downloading':
        await this.#ack(command.jobId, false, { code: 'not_downloaded', message: 'The update is still downloading; it cannot be installed yet.' });
        return;
      case 'downloaded': {
        // Defense in depth (invariant 3): the device's own view once more, right before the
        // install step. Nothing has been touched yet; the download stays for the next go-ahead.
        const refusal = checkOwnPreflight(job.offer, await this.#platform.conditions(), this.#ownThresholds());
        if (refusal) {
          this.#log.info('Refused the install go-ahead.', { jobId: job.jobId, code: refusal.code });
          await this.#ack(command.jobId, false, refusal);
          await this.#reportPhase(job);
          return;
        }
        await this.#beginInstall(job);
        this.#startInstall(signal);
        return;
      }
      case 'installing':
      case 'rebooting':
      case 'rolling-back':
        // Already on its way: a repeated go-ahead changes nothing.
        await this.#reportPhase(job);
        return;
    }
  }

  async #handleCancel(command: CancelCommand): Promise<void> {
    if (this.#journal.cancelled.includes(command.jobId)) {
      await this.#ack(command.jobId, true, null);
      return;
    }
    if (await this.#answerFinished(command.jobId)) return;
    const job = this.#journal.job;
    if (!job || job.jobId !== command.jobId) {
      // Also a repeated cancel: nothing of this job runs, which is what was asked.
      await this.#ack(command.jobId, true, { code: 'not_running', message: 'This update is not running on the device.' });
      return;
    }
    if (!CANCELLABLE.includes(job.phase)) {
      // Invariant 6: from the install step on, stopping could leave the device without a good image.
      await this.#ack(command.jobId, false, {
        code: 'cancel_too_late',
        message: 'The update is already installing; stopping now could break the device, so it goes on.',
      });
      return;
    }
    await this.#stopDownload();
    await this.#commitJournal(null, { code: 'cancelled', message: command.message || 'Cancelled by the hub.' }, { cancelled: job.jobId });
    await this.#ack(command.jobId, true, null);
    await this.#publishState();
  }

  /**
   * A command for a job that already ended is answered with that job's result again, never started
   * over (invariant 8: idempotent by job id, also after the job ended).
   */
  async #answerFinished(jobId: string, offerSeq?: number): Promise<boolean> {
    if (this.#journal.job?.jobId === jobId) return false;
    if (this.#journal.cancelled.includes(jobId)) {
      await this.#ack(jobId, false, { code: 'job_cancelled', message: 'This update was cancelled; the device does not start it again.' }, offerSeq);
      return true;
    }
    const result = this.#journal.finished.find((r) => r.jobId === jobId);
    if (!result) return false;
    await this.#ack(jobId, false, { code: 'job_finished', message: 'This update has already ended on the device; its result is sent again.' }, offerSeq);
    await this.#publishAgain(result);
    return true;
  }

  // ─── download ──────────────────────────────────────────────────────────────────────────────

  #startDownload(runSignal: AbortSignal): void {
    const job = this.#journal.job;
    if (!job || job.phase !== 'downloading' || this.#download) return;
    const abort = new AbortController();
    const onRunAbort = () => abort.abort(runSignal.reason);
    runSignal.addEventListener('abort', onRunAbort, { once: true });
    const { jobId } = job;
    const { url, lengthBytes, sha256 } = job.offer.image;
    const task: DownloadTask = { jobId, abort, done: Promise.resolve() };
    task.done = (async () => {
      try {
        await this.#progress(jobId, 'downloading', percentOf(job.bytesWritten, lengthBytes));
        await downloadToSlot({ url, lengthBytes, sha256, slot: job.targetSlot, resumeFrom: job.bytesWritten }, {
          platform: this.#platform,
          clock: this.#clock,
          chunkBytes: this.#config.downloadChunkBytes,
          retryBudgetMs: this.#config.downloadRetryBudgetMs,
          retryDelayMs: this.#config.downloadRetryDelayMs,
          stallTimeoutMs: this.#config.downloadStallTimeoutMs,
          signal: abort.signal,
          ...(this.#fetch ? { fetch: this.#fetch } : {}),
          onCheckpoint: async (bytesWritten) => {
            abort.signal.throwIfAborted();
            const now = this.#currentJob(jobId);
            await this.#commitJournal({ ...now, bytesWritten }, { code: 'checkpoint', message: 'Download checkpoint.' });
            await this.#progress(jobId, 'downloading', percentOf(bytesWritten, lengthBytes));
          },
        });
        abort.signal.throwIfAborted();
        const now = this.#currentJob(jobId);
        await this.#commitJournal({ ...now, phase: 'downloaded', bytesWritten: lengthBytes }, {
          code: 'downloaded', message: 'Downloaded and verified; waiting for the go-ahead to install.',
        });
        await this.#progress(jobId, 'downloaded', 100);
        await this.#publishState();
      } catch (error) {
        if (abort.signal.aborted) return;
        const reason = reasonOf(error);
        this.#log.warn('The download failed.', { jobId, code: reason.code, error: describe(error) });
        // Reported from the command queue so it cannot cross a cancel or a new offer.
        void this.#enqueue(runSignal, async () => {
          const current = this.#journal.job;
          if (current?.jobId !== jobId || current.phase !== 'downloading') return;
          if (isTemporary(reason.code)) {
            // Nothing is wrong with the update: the hub could not deliver it for now. The device keeps
            // the job and what it downloaded, says so, and resumes when the hub offers it again.
            await this.#ack(jobId, false, reason, current.offer.offerSeq);
            await this.#publishState();
            return;
          }
          await this.#finish('failed', reason);
        });
      } finally {
        runSignal.removeEventListener('abort', onRunAbort);
        if (this.#download === task) this.#download = null;
      }
    })();
    this.#download = task;
  }

  async #stopDownload(): Promise<void> {
    const task = this.#download;
    if (!task) return;
    task.abort.abort(new FirmwardError('internal', 'The download was stopped.'));
    await task.done;
  }

  // ─── install, trial boot, commit or roll back ───────────────────────────────────────────────

  /** Journalled inside the command queue: a cancel queued behind the go-ahead already finds `installing`. */
  async #beginInstall(job: JournalJob): Promise<void> {
    await this.#commitJournal({ ...job, phase: 'installing', installAttempts: job.installAttempts + 1 }, {
      code: 'installing', message: `Installing ${job.offer.version}. Leave it powered.`,
    });
    await this.#progress(job.jobId, 'installing', 0);
  }

  /**
   * Runs beside the command queue so a cancel or a repeated offer is answered while it works; the
   * journal already says `installing`, so both get the right answer (invariant 6).
   */
  #startInstall(signal: AbortSignal): void {
    void (async () => {
      try {
        await this.#install(signal);
      } catch (error) {
        if (signal.aborted) return;
        this.#log.error('The install step failed; checking what the device runs.', { error: describe(error) });
        // The boot state tells whether the switch happened; recovery takes it from there.
        void this.#enqueue(signal, () => this.#recover(signal));
      }
    })();
  }

  async #install(signal: AbortSignal): Promise<void> {
    const job = this.#journal.job;
    if (!job || job.phase !== 'installing') return;
    try {
      // Verified again from storage right before it becomes bootable (invariant 4).
      await verifySlot(this.#platform, job.targetSlot, job.offer.image.lengthBytes, job.offer.image.sha256);
    } catch (error) {
      if (!isFirmwardError(error, 'image_hash_mismatch') && !isFirmwardError(error, 'image_length_mismatch')) throw error;
      await this.#finish('failed', reasonOf(error));
      return;
    }
    await this.#platform.setTrialBoot(job.targetSlot);
    // Stopped meanwhile: the switch stands; the next start sees the trial and restarts into it.
    if (signal.aborted) return;
    await this.#commitJournal({ ...this.#currentJob(job.jobId), phase: 'rebooting' }, {
      code: 'rebooting', message: `Restarting into ${job.offer.version}. Leave it powered.`,
    });
    await this.#progress(job.jobId, 'rebooting', null);
    if (signal.aborted) return;
    await this.#reboot();
  }

  async #recover(signal: AbortSignal): Promise<void> {
    const boot = await this.#platform.bootState();
    const step = planRecovery(this.#journal, boot);
    if (step.kind !== 'idle') this.#log.info('Resuming after a restart.', { step: step.kind, jobId: this.jobId });
    switch (step.kind) {
      case 'idle':
        return;
      case 'clear-fallback':
        // The bootloader went back by itself; the running slot is the good one.
        await this.#platform.commit(boot.activeSlot);
        return;
      case 'check-trial':
        return this.#checkTrial(boot);
      case 'resume-download':
        this.#startDownload(signal);
        return;
      case 'await-install':
        return this.#reportPhase(this.#currentJob(this.jobId ?? ''));
      case 'install':
        await this.#beginInstall(this.#currentJob(this.jobId ?? ''));
        this.#startInstall(signal);
        return;
      case 'reboot':
        await this.#progress(this.jobId ?? '', 'rebooting', null);
        return this.#reboot();
      case 'reject-trial':
        await this.#platform.rejectTrial(boot.activeSlot);
        return this.#reboot();
      case 'report-installed':
        return this.#finish('installed', null);
      case 'report-rolled-back':
        return this.#rolledBack(boot, step.reason);
      case 'report-failed':
        return this.#finish('failed', step.reason);
    }
  }

  /** Running on trial: the health check decides (DESIGN step 7). */
  async #checkTrial(boot: BootState): Promise<void> {
    const job = this.#journal.job;
    const ours = job !== null && (job.phase === 'installing' || job.phase === 'rebooting') && job.targetSlot === boot.activeSlot;
    const version = boot.versions[boot.activeSlot] ?? 'unknown';
    const health = await this.#checkHealth();
    if (health.healthy) {
      await this.#platform.commit(boot.activeSlot);
      this.#log.info('The new version passed its health check and is committed.', { version });
      if (ours) await this.#finish('installed', null);
      else await this.#publishState();
      return;
    }
    this.#log.warn('The new version failed its health check; going back.', { version, detail: health.detail });
    if (ours) {
      await this.#commitJournal({ ...job, phase: 'rolling-back', failure: {
        code: 'unhealthy',
        message: `Version ${version} started but failed its health check (${health.detail}), so the device went back to ${job.fromVersion}.`,
      } }, { code: 'unhealthy', message: health.detail });
    }
    await this.#platform.rejectTrial(boot.activeSlot);
    await this.#reboot();
  }

  async #rolledBack(boot: BootState, reason: DeviceReason): Promise<void> {
    const job = this.#journal.job;
    if (!job) return;
    // Persisted first: once the fallback record is cleared below, only the journal remembers it.
    if (job.phase !== 'rolling-back') await this.#commitJournal({ ...job, phase: 'rolling-back', failure: reason }, reason);
    if (boot.trial) await this.#platform.commit(boot.activeSlot);
    await this.#finish('rolled-back', reason);
  }

  async #reboot(): Promise<void> {
    const run = this.#run;
    // Nothing more is said from this boot; the next start reports what really runs.
    if (run) this.#halt(run);
    await this.#platform.reboot();
  }

  /**
   * Ends the job: the result carries what really runs (read from the platform now), then the
   * journal is cleared. A cut between the two repeats the result on the next start (idempotent).
   */
  async #finish(outcome: ResultEvent['outcome'], reason: DeviceReason | null): Promise<void> {
    const job = this.#journal.job;
    if (!job) return;
    const boot = await this.#platform.bootState();
    const health = await this.#checkHealth();
    const version = versionOf(boot);
    let finalOutcome = outcome;
    let finalReason = reason;
    if (outcome === 'installed' && version !== job.offer.version) {
      finalOutcome = 'failed';
      finalReason = { code: 'unexpected_version', message: `The device runs ${version} instead of ${job.offer.version}.` };
    }
    const result: OwnResultEvent = {
      v: PROTOCOL_VERSION, type: 'result', jobId: job.jobId, outcome: finalOutcome, firmwareVersion: version, healthy: health.healthy,
      code: finalReason?.code ?? null, message: finalReason ? clip(finalReason.message) : null,
    };
    await this.#publish(result);
    await this.#commitJournal(null, finalReason ?? { code: 'installed', message: `Now running ${version}.` }, { result });
    await this.#publishState(health);
  }

  // ─── journal, state, events ────────────────────────────────────────────────────────────────

  /** The one transition function (STYLE principle 4): check, persist, then emit. */
  async #commitJournal(next: JournalJob | null, reason: Reason, ended?: { result: ResultEvent } | { cancelled: string }): Promise<void> {
    const previous = this.#journal.job;
    const from: AgentPhaseOrIdle = previous?.phase ?? 'idle';
    const to: AgentPhaseOrIdle = next?.phase ?? 'idle';
    const sameJob = previous === null || next === null || previous.jobId === next.jobId;
    if (!sameJob || (from !== to && !LEGAL[from].includes(to))) {
      throw new FirmwardError('illegal_transition', `The agent cannot go from "${from}" to "${to}".`, {
        detail: { from, to, jobId: next?.jobId ?? previous?.jobId },
      });
    }
    let { finished, cancelled } = this.#journal;
    if (ended && 'result' in ended) {
      finished = [...finished.filter((r) => r.jobId !== ended.result.jobId), ended.result].slice(-FINISHED_JOBS_KEPT);
    } else if (ended) {
      cancelled = [...cancelled.filter((id) => id !== ended.cancelled), ended.cancelled].slice(-FINISHED_JOBS_KEPT);
    }
    const journal: AgentJournal = { v: 1, job: next, finished, cancelled };
    await this.#platform.saveJournal(journal);
    this.#journal = journal;
    const jobId = next?.jobId ?? previous?.jobId;
    if (from !== to && jobId !== undefined) {
      const transition: AgentTransition = { jobId, from, to, reason };
      for (const listener of [...this.#listeners]) listener(transition);
    }
  }

  #currentJob(jobId: string): JournalJob {
    const job = this.#journal.job;
    if (!job || job.jobId !== jobId) throw new FirmwardError('illegal_transition', 'The update the agent was working on is no longer current.');
    return job;
  }

  async #getIdentity(): Promise<DeviceIdentity> {
    this.#identity ??= await this.#platform.identity();
    return this.#identity;
  }

  /** A health check that does not answer in time has failed. */
  async #checkHealth(): Promise<HealthReport> {
    const timer = new AbortController();
    const timeout = this.#clock.sleep(this.#config.healthCheckTimeoutMs, timer.signal)
      .then((): HealthReport => ({ healthy: false, detail: 'The health check did not finish in time.' }));
    timeout.catch(() => undefined);
    try {
      return await Promise.race([this.#platform.healthCheck(), timeout]);
    } catch (error) {
      return { healthy: false, detail: `The health check could not run: ${describe(error)}` };
    } finally {
      timer.abort();
    }
  }

  async #runStateLoop(recovered: Promise<void>, signal: AbortSignal): Promise<void> {
    await recovered;
    while (!signal.aborted) {
      await this.#publishState();
      try {
        await sleepOn(this.#clock, this.#config.stateReportIntervalMs, signal);
      } catch {
        return;
      }
    }
  }

  /** Retained state: versions and slot from the platform right now, never from the journal. */
  async #publishState(knownHealth?: HealthReport): Promise<void> {
    const run = this.#run;
    if (!run) return;
    try {
      const identity = await this.#getIdentity();
      const boot = await this.#platform.bootState();
      const conditions = await this.#platform.conditions();
      const health = knownHealth ?? await this.#checkHealth();
      if (run.abort.signal.aborted) return;
      const job = this.#journal.job;
      const state: DeviceState = {
        v: PROTOCOL_VERSION,
        vendor: identity.vendor,
        model: identity.model,
        hardwareRevision: identity.hardwareRevision,
        firmwareVersion: versionOf(boot),
        activeSlot: boot.activeSlot,
        powerSource: conditions.powerSource,
        batteryPercent: conditions.batteryPercent === null ? null : Math.min(100, Math.max(0, conditions.batteryPercent)),
        charging: conditions.charging,
        signalDbm: conditions.signalDbm === null ? null : Math.min(0, Math.max(-130, conditions.signalDbm)),
        busy: conditions.busy,
        freeStorageBytes: Math.max(0, Math.floor(conditions.freeStorageBytes)),
        healthy: health.healthy,
        job: job ? { jobId: job.jobId, phase: job.phase === 'rolling-back' ? 'rebooting' : job.phase } : null,
      };
      await this.#transport.publishState(state);
    } catch (error) {
      this.#log.warn('Could not report the device state.', { error: describe(error) });
    }
  }

  async #reportPhase(job: JournalJob): Promise<void> {
    switch (job.phase) {
      case 'downloading': return this.#progress(job.jobId, 'downloading', percentOf(job.bytesWritten, job.offer.image.lengthBytes));
      case 'downloaded': return this.#progress(job.jobId, 'downloaded', 100);
      case 'installing': return this.#progress(job.jobId, 'installing', null);
      case 'rebooting':
      case 'rolling-back': return this.#progress(job.jobId, 'rebooting', null);
    }
  }

  /** `offerSeq`: the offer this answers (the hub judges a late answer to an earlier offer as stale). */
  #ack(jobId: string, accepted: boolean, reason: DeviceReason | null, offerSeq?: number): Promise<void> {
    return this.#publish({
      v: PROTOCOL_VERSION, type: 'ack', jobId, accepted, code: reason?.code ?? null, message: reason ? clip(reason.message) : null,
      ...(offerSeq !== undefined && { offerSeq }),
    });
  }

  #progress(jobId: string, phase: 'downloading' | 'downloaded' | 'installing' | 'rebooting', percent: number | null): Promise<void> {
    return this.#publish({ v: PROTOCOL_VERSION, type: 'progress', jobId, phase, percent });
  }

  /** Our own events carry codes of the shared table (a mistyped code is a type error). */
  #publish(event: OwnDeviceEvent): Promise<void> {
    return this.#send(event);
  }

  /** A result sent before, replayed as it was stored in the journal when it was first sent. */
  #publishAgain(result: ResultEvent): Promise<void> {
    return this.#send(result);
  }

  /** Events are best effort: the hub re-sends its commands and the retained state tells the rest. */
  async #send(event: DeviceEvent): Promise<void> {
    try {
      await this.#transport.publishEvent(event);
    } catch (error) {
      this.#log.warn('Could not send an event to the hub.', { type: event.type, error: describe(error) });
    }
  }
}

function versionOf(boot: BootState): string {
  return boot.versions[boot.activeSlot] ?? 'unknown';
}

function percentOf(bytes: number, total: number): number {
  return total <= 0 ? 0 : Math.max(0, Math.min(100, Math.floor((bytes * 100) / total)));
}

function clip(message: string): string {
  return message.length <= 500 ? message : `${message.slice(0, 497)}...`;
}

function reasonOf(error: unknown): DeviceReason {
  if (isFirmwardError(error) && isDeviceCode(error.code)) return { code: error.code, message: error.message };
  return { code: 'internal', message: 'The device could not store the update; it keeps running its current version.' };
}

/** The verifier's refusal in the protocol's terms; a code it should not use counts as unsigned (final). */
function verifierReason(reason: Reason | null): DeviceReason | null {
  if (reason === null) return null;
  return { code: isDeviceCode(reason.code) ? reason.code : 'not_signed', message: reason.message };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
