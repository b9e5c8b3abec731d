/**
 * The single write path of a job: transition (core) → save (compare-and-set, one transaction with
 * the history line, the halt a failure implies and whatever else the caller must commit with it)
 * → announce the committed change → send the command it implies. Persist, then act (invariant 8):
 * a command is never sent for a state that was not saved. Commands are idempotent by job id, so a
 * lost one is simply sent again (`resend`).
 */
import { FirmwardError, SECOND_MS, isActive, isTerminal, transition } from '@firmward/core';
import type { EpochMs, Home, HomeSnapshot, Job, JobEvent, Reason, Release, StateChange } from '@firmward/core';
import type { Clock, DeviceGateway, Logger, NewHistoryEvent, Notifier, Store } from '@firmward/ports';
import type { OfferCommand } from '@firmward/protocol';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import { describe } from './describe.ts';
import type { KeyedMutex } from '../home-lock.ts';

/** More rows a transition implies, written in its transaction (after the job is saved, before the commit). */
export type AlsoWrite = (tx: Store, saved: Job, now: EpochMs) => Promise<void>;

export interface JobRunnerDeps {
  store: Store;
  gateway: DeviceGateway;
  clock: Clock;
  log: Logger;
  notifier: Notifier;
  homes: KeyedMutex;
  releases: () => ReadonlyMap<string, Release>;
  /** Re-send an unanswered offer after this long. */
  offerResendSeconds: number;
  /** Where a device downloads a release's image (the hub's /firmware route). */
  imageUrl: (releaseId: string) => string;
  /** Where devices read a signed repository's metadata through the hub (null: not a signed repository). */
  repositoryUrl?: (repository: string) => string | null;
}

export class JobRunner {
  readonly #d: JobRunnerDeps;
  /** When each job's last command went out, to re-send unanswered ones. */
  readonly #sentAt = new Map<string, EpochMs>();

  constructor(deps: JobRunnerDeps) {
    this.#d = deps;
  }

  /**
   * Persist, then act. The transition function checks legality; the store's compare-and-set and
   * unique index check invariant 1 again. Returns the saved job, or null when nothing changed
   * (someone else moved it first). The caller holds the home's lock.
   */
  async apply(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job | null> {
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
    const ended = isTerminal(next.state);
    if (ended) this.#sentAt.delete(job.id);
    if (history) this.#d.notifier.committed({ kind: 'history', event: history });
    // A message that only says the device is still at it (an ack, progress, the state it reported
    // already) refreshes lastHeardAt and nothing a decision rests on: its home is not looked at for
    // it. The silence deadline computed before is earlier than the new one, so it is never missed.
    if (change) this.#d.notifier.committed({ kind: 'job', job: next, ended });
    if (change) this.#d.log.info(`${job.deviceId}: ${change.from} → ${change.to}`, { reason: change.reason.message });
    await this.#act(next, event);
    // The checks ran right before the offer; such a device is installing already (EngineDeps.gateway, installsOnOffer).
    if (next.state === 'downloaded' && this.oneStep(next.deviceId)) return (await this.apply(home, next, { type: 'approve-install', oneStep: true }, 'hub')) ?? next;
    return next;
  }

  /** Like `apply`, for a person's (or the hub's) action: a job that moved meanwhile is a conflict, said so. */
  async applyHeld(home: Home, job: Job, event: JobEvent, actor: string, alsoWrite?: AlsoWrite): Promise<Job> {
    const saved = await this.apply(home, job, event, actor, alsoWrite);
    if (!saved) throw new FirmwardError('conflict', 'The update changed while you acted; look again and retry.');
    return saved;
  }

  /** Reads the job and its home afresh under the home's lock, then `applyHeld`. */
  async applyAs(jobId: string, event: JobEvent, actor: string): Promise<Job> {
    const job = await this.#d.store.getJob(jobId);
    if (!job) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
    return this.#d.homes.run(job.homeId, async () => {
      const fresh = await this.#d.store.getJob(jobId);
      const home = await this.#d.store.getHome(job.homeId);
      if (!fresh || !home) throw new FirmwardError('not_found', `There is no update ${jobId}.`);
      return this.applyHeld(home, fresh, event, actor);
    });
  }

  /** A device that installs on its own once downloaded (DeviceGateway.installsOnOffer). */
  oneStep(deviceId: string): boolean {
    return this.#d.gateway.installsOnOffer?.(deviceId) ?? false;
  }

  /** The install go-ahead again: the device's state shows it still waiting for one. */
  async resendInstall(job: Job): Promise<void> {
    await this.#act(job, { type: 'approve-install' });
  }

  /** A history line that belongs to no transition (a device came online, went offline). */
  async record(event: NewHistoryEvent): Promise<void> {
    await this.#d.store.appendEvent(event);
    this.#d.notifier.committed({ kind: 'history', event });
  }

  /** The command that follows a persisted transition. A failed send is retried by `resend`. */
  async #act(job: Job, event: JobEvent): Promise<void> {
    try {
      switch (event.type) {
        case 'offer':
          await this.sendOffer(job);
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
      this.#d.log.warn('command not sent; will retry', { jobId: job.id, error: describe(error) });
    }
  }

  async sendOffer(job: Job): Promise<void> {
    const offer = this.#offerFor(job);
    if (!offer) return;
    this.#sentAt.set(job.id, this.#d.clock.now());
    await this.#d.gateway.send(job.deviceId, offer);
  }

  #offerFor(job: Job): OfferCommand | null {
    const release = this.#d.releases().get(job.releaseId);
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
  async restoreGateway(): Promise<void> {
    const restore = this.#d.gateway.restore?.bind(this.#d.gateway);
    if (!restore) return;
    for (const job of await this.#d.store.listJobs({ open: true })) {
      const offer = isActive(job.state) ? this.#offerFor(job) : null;
      if (offer) await restore(job.deviceId, offer, job.state).catch((error: unknown) => this.#d.log.warn('gateway restore failed', { jobId: job.id, error: describe(error) }));
    }
  }

  /**
   * Commands are idempotent by job id, so an offer nobody answered is simply sent again (after a
   * lost message, a broker restart, or a hub restart). An unanswered install go-ahead is re-sent
   * when the device's state shows it still waiting for one (DeviceInbox). Returns when the next
   * re-send of this home falls due, or null.
   */
  async resend(snapshot: HomeSnapshot, now: EpochMs): Promise<EpochMs | null> {
    const after = this.#d.offerResendSeconds * SECOND_MS;
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
