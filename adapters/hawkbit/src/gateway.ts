/**
 * The hub's side of hawkBit's device API (DDI), for devices whose own update client speaks it
 * (SWUpdate's suricatta, rauc-hawkbit-updater). It keeps the engine's rules unchanged by speaking
 * our protocol to the hub: offers become DDI actions, and the device's polls, downloads and
 * feedback become ack / progress / result events and state reports.
 *
 * Our rules on this path:
 * - An action is visible to the device only after the hub's offer, i.e. once compatibility,
 *   policy, window and preflight passed and it is that home's turn (invariants 1–3). An update
 *   is held by withholding the deploymentBase link — never with `update: "skip"`, which SWUpdate
 *   answers with "success" without installing.
 * - SWUpdate downloads and installs in one go, so these are one-step devices (installsOnOffer):
 *   the hub runs its install-time checks before the offer and approves the install itself when
 *   the download completes.
 * - Success only after a confirmed restart: SWUpdate's install run ends with "All Chunks
 *   Installed." (rebooting); closed+success comes after the restart. A client that closes with
 *   success before that is treated as restarting, and the hub waits for the new version.
 *
 * Per-device state lives in memory; the engine hands running updates back after a hub restart
 * (restore), and action ids are derived from job ids, so the device's feedback still fits.
 */
import { FirmwardError } from '@firmward/core';
import type { EpochMs, JobState } from '@firmward/core';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { CancelCommand, DeviceReason, DeviceState, InstallCommand, OfferCommand, OwnDeviceEvent } from '@firmward/protocol';
import { consoleLogger } from '@firmward/ports';
import type { Bridge, BridgeHandler, Clock, DiscoveredDevice, Logger } from '@firmward/ports';
import type { Release } from '@firmward/core';
import { actionIdOf } from './action-id.ts';
import { ArtifactHashes } from './artifact.ts';
import type { ArtifactFile } from './artifact.ts';
import { readAttributes } from './attributes.ts';
import type { DdiConditions, DdiIdentity } from './attributes.ts';
import { DDI_REVOKED, generateTargetToken, matchesGatewayToken, matchesTargetToken, targetTokenCredential } from './credentials.ts';
import type { DdiCredentialStore } from './credentials.ts';
import { CONTROLLER_ID_PATTERN, DEFAULT_POLLING_SLEEP, pollingSleepSeconds } from './wire.ts';
import type { ConfigData, Feedback } from './wire.ts';

export interface DdiGatewayOptions {
  /** The DDI tenant this hub answers for (SWUpdate's `-t`), compared without case as hawkBit does. */
  tenant: string;
  /** The tenant-wide `GatewayToken`; null: only devices with their own TargetToken are let in. */
  gatewayToken: string | null;
  /**
   * Whether a controller id the hub does not know may register itself on first contact (with the
   * GatewayToken): false, or only the listed ids, or (`{}`) any.
   */
  autoRegister: false | { allowedControllerIds?: string[] };
  /** hawkBit's `HH:mm:ss`, sent in every poll answer; SWUpdate needs it. Default "00:05:00". */
  pollingSleep?: string;
  credentials: DdiCredentialStore;
  /** The file of a release's image, verified by the release source (the hub's /firmware route uses the same). */
  imagePath: (releaseId: string) => Promise<string | null>;
  /** Stamps the `at` of everything handed to the hub, and drives the offline check. */
  clock: Clock;
  logger?: Logger;
  /** Device ids are this prefix and the controller id; default "ddi-". */
  deviceIdPrefix?: string;
  /** The vendor of devices whose attributes do not name one; default null (they must). */
  defaultVendor?: string | null;
  /** Free storage assumed when a device does not report it (see AttributeDefaults); default 4 GiB. */
  assumedFreeStorageBytes?: number;
  /** A device not heard from for this long is offline; default three polling intervals and a minute. */
  offlineAfterSeconds?: number;
}

/** How far the device got with an action, as far as the gateway can tell. */
type ActionPhase = 'offered' | 'downloading' | 'downloaded' | 'installing' | 'rebooting';
const PHASES: readonly ActionPhase[] = ['offered', 'downloading', 'downloaded', 'installing', 'rebooting'];
const rank = (phase: ActionPhase): number => PHASES.indexOf(phase);
/** Where a restored action stands, from the state the hub recorded for its job. */
const PHASE_OF_JOB_STATE: Partial<Record<JobState, ActionPhase>> = {
  offered: 'offered', downloading: 'downloading', downloaded: 'downloaded', installing: 'installing', rebooting: 'rebooting', confirming: 'rebooting',
};

interface Action {
  id: number;
  jobId: string;
  offer: OfferCommand;
  artifact: ArtifactFile;
  phase: ActionPhase;
  /**
   * Handed back after a hub restart, at the phase the hub recorded for its job, and nothing heard
   * from the device since: the engine judges cancels and refusals, and a closing success is the
   * device back from its restart.
   */
  restored: boolean;
  /** The device fetched the deployment at least once. */
  seen: boolean;
  /** The hub cancelled it before the install step: the poll shows cancelAction. */
  cancel: string | null;
  /** Moves with every change the device should notice (the `c` of the deploymentBase link). */
  revision: number;
  /** The last download percent reported, in steps of ten. */
  downloadPercent: number;
}

interface Controller {
  deviceId: string;
  controllerId: string;
  /**
   * Let in on first contact in this run through the GatewayToken, with nothing stored: the hub
   * hears of it and keeps it waiting for a person's approval, which stores its registration.
   */
  pendingRegistration: boolean;
  credentialStored: boolean;
  attributes: Record<string, string>;
  identity: DdiIdentity | null;
  conditions: DdiConditions | null;
  /** The version it runs after a confirmed update, until its attributes say again. */
  installedVersion: string | null;
  /** The DiscoveredDevice last handed to the hub (JSON), to tell it only about changes. */
  discovered: string | null;
  wantsConfigData: boolean;
  lastContactAt: EpochMs;
  /** What the hub was last told about its availability. */
  reportedOnline: boolean;
  action: Action | null;
  /** Recently closed action ids: feedback for them is answered 410 Gone. */
  closed: number[];
}

/** What a poll answer needs; the routes turn it into hrefs. */
export interface PollView {
  sleep: string;
  deploymentBase: { actionId: number; cacheBuster: string } | null;
  cancelAction: { actionId: number } | null;
  configData: boolean;
}

export interface DeploymentView {
  actionId: number;
  version: string;
  name: string;
  filename: string;
  artifact: ArtifactFile;
}

/** One served download of an action's artifact (the routes report how far it got). */
export interface ArtifactDownload {
  path: string;
  artifact: ArtifactFile;
  /** Bytes [start, end] of the file are being sent. */
  started(start: number, end: number): void;
  /** `upTo` bytes of the file (from its start) have been sent. */
  progressed(upTo: number): void;
}

const CLOSED_REMEMBERED = 8;
const GIB = 2 ** 30;

export class DdiGateway implements Bridge {
  readonly name = 'ddi';
  readonly #o: DdiGatewayOptions;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #sleep: string;
  readonly #offlineAfterMs: number;
  readonly #hashes = new ArtifactHashes();
  readonly #controllers = new Map<string, Controller>();
  #registration: false | { allowedControllerIds?: string[] };
  /** The tail of each device's delivery chain: one device's messages reach the hub one at a time, in order. */
  readonly #queues = new Map<string, Promise<void>>();
  #handler: BridgeHandler | null = null;
  #abort: AbortController | null = null;
  #sweeper: Promise<void> | null = null;

  /**
   * @example
   * const gateway = new DdiGateway({ tenant: 'DEFAULT', gatewayToken, autoRegister: false, credentials, imagePath, clock });
   */
  constructor(options: DdiGatewayOptions) {
    this.#o = options;
    this.#log = options.logger ?? consoleLogger('info', 'ddi');
    this.#prefix = options.deviceIdPrefix ?? 'ddi-';
    this.#sleep = options.pollingSleep ?? DEFAULT_POLLING_SLEEP;
    const sleepSeconds = pollingSleepSeconds(this.#sleep);
    this.#offlineAfterMs = (options.offlineAfterSeconds ?? sleepSeconds * 3 + 60) * 1000;
    this.#registration = options.autoRegister;
  }

  get tenant(): string {
    return this.#o.tenant;
  }

  get gatewayTokenSet(): boolean {
    return this.#o.gatewayToken !== null && this.#o.gatewayToken !== '';
  }

  /** Who may register on first contact from now on (a person changed it while the hub runs). */
  setRegistration(rule: false | { allowedControllerIds?: string[] }): void {
    this.#registration = rule === false ? false : { ...(rule.allowedControllerIds !== undefined && { allowedControllerIds: [...rule.allowedControllerIds] }) };
  }

  /**
   * Drops what the gateway keeps in memory about a device (it was removed, approved, revoked):
   * its next poll starts afresh, and it is asked for its attributes again.
   */
  forget(deviceId: string): void {
    const c = this.#controllers.get(deviceId);
    // An update the device works on is never dropped from under it (invariant 6); the hub refuses such changes anyway.
    if (c?.action && !this.#cancellable(c.action)) return;
    this.#controllers.delete(deviceId);
  }

  start(handler: BridgeHandler): Promise<void> {
    if (this.#handler !== null) return Promise.reject(new FirmwardError('conflict', 'The DDI gateway is already running.'));
    this.#handler = handler;
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#sweeper = (async () => {
      while (!signal.aborted) {
        try {
          await this.#o.clock.sleep(this.#offlineAfterMs / 4, signal);
        } catch {
          break;
        }
        this.#markSilentOffline();
      }
    })();
    return Promise.resolve();
  }

  /** Stops the offline check and waits until everything already received has reached the hub. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#sweeper;
    this.#sweeper = null;
    while (this.#queues.size > 0) await Promise.all([...this.#queues.values()]);
    this.#handler = null;
  }

  owns(deviceId: string): boolean {
    return deviceId.startsWith(this.#prefix) && CONTROLLER_ID_PATTERN.test(deviceId.slice(this.#prefix.length));
  }

  /** The images come from the maker's signed repository, not from hawkBit. */
  releases(): Release[] {
    return [];
  }

  /** SWUpdate installs as soon as its download completes: the hub checks everything before the offer. */
  installsOnOffer(deviceId: string): boolean {
    return this.owns(deviceId);
  }

  deviceIdOf(controllerId: string): string {
    return this.#prefix + controllerId;
  }

  controllerIdOf(deviceId: string): string {
    return deviceId.slice(this.#prefix.length);
  }

  /**
   * Gives a device the hub already has (seeded, or discovered through the GatewayToken) its own
   * TargetToken. The token is returned once and stored only as its digest.
   */
  async issueTargetToken(controllerId: string): Promise<string> {
    if (!CONTROLLER_ID_PATTERN.test(controllerId)) throw new FirmwardError('invalid_input', `"${controllerId}" is not a controller id this hub accepts.`);
    const token = generateTargetToken();
    const deviceId = this.deviceIdOf(controllerId);
    await this.#o.credentials.set(deviceId, targetTokenCredential(token));
    const c = this.#controllers.get(deviceId);
    if (c) {
      c.credentialStored = true;
      c.pendingRegistration = false;
    }
    return token;
  }

  // ── commands from the hub ─────────────────────────────────────────────────────────────────

  async send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    if (!this.owns(deviceId)) throw new FirmwardError('invalid_input', `"${deviceId}" is not a DDI device.`);
    const c = this.#controller(deviceId);
    switch (command.type) {
      case 'offer':
        return this.#offer(c, command, false);
      case 'install':
        // The install started with the download (installsOnOffer); the go-ahead changes nothing.
        // For an update the gateway does not know there is nothing to say either way.
        if (c.action?.jobId === command.jobId) this.#ack(c, command.jobId, null);
        return;
      case 'cancel':
        this.#cancel(c, command);
        return;
    }
  }

  /** A running update handed back after a hub restart, where the hub left it: its feedback is accepted again. */
  async restore(deviceId: string, offer: OfferCommand, state: JobState): Promise<void> {
    if (!this.owns(deviceId)) return;
    const c = this.#controller(deviceId);
    await this.#offer(c, offer, true);
    const phase = PHASE_OF_JOB_STATE[state];
    if (c.action?.jobId === offer.jobId && phase !== undefined && rank(phase) > rank(c.action.phase)) c.action.phase = phase;
  }

  async #offer(c: Controller, offer: OfferCommand, restored: boolean): Promise<void> {
    if (c.action?.jobId === offer.jobId) return; // idempotent by job id
    if (c.action && !this.#cancellable(c.action)) {
      this.#ack(c, offer.jobId, { code: 'busy', message: 'The device is installing another update.' });
      return;
    }
    const path = await this.#o.imagePath(offer.releaseId);
    if (path === null) throw new FirmwardError('image_unavailable', `The hub has no image for ${offer.releaseId}, so it was not offered.`);
    // Invariant 4: announced only once its length and hash match the release.
    const artifact = await this.#hashes.describe(offer.releaseId, path, offer.image);
    if (c.action?.jobId === offer.jobId) return; // offered again while the image was being read
    c.action = {
      id: actionIdOf(offer.jobId), jobId: offer.jobId, offer, artifact, phase: 'offered', restored,
      seen: restored, cancel: null, revision: 0, downloadPercent: -1,
    };
    this.#log.info(restored ? 'update handed back after a restart' : 'update visible to the device', { deviceId: c.deviceId, jobId: offer.jobId, actionId: c.action.id });
  }

  #cancel(c: Controller, command: CancelCommand): void {
    const a = c.action;
    if (a?.jobId !== command.jobId) return; // nothing left to stop
    if (!this.#cancellable(a)) {
      this.#ack(c, command.jobId, { code: 'cancel_too_late', message: 'The device is already installing; stopping now could break it, so it goes on.' });
      return;
    }
    if (!a.seen) {
      // It never saw the update: withdrawing the link is the whole cancel.
      c.action = null;
      return;
    }
    a.cancel = command.message;
    a.revision++;
  }

  /** Invariant 6: from the install step on, nothing is taken back. A restored action is the engine's to judge. */
  #cancellable(a: Action): boolean {
    return a.restored || rank(a.phase) < rank('installing');
  }

  // ── the device's requests (called by the routes after authenticate) ───────────────────────

  /**
   * Who is asking: the controller of `controllerId` in `tenant`, if `authorization` lets it in.
   * A controller the hub does not know registers here, if the operator allows it; otherwise
   * nothing is stored. Throws `not_found`, `unauthorized`, or `not_ready` while the gateway is not running.
   */
  async authenticate(tenant: string, controllerId: string, authorization: string | undefined): Promise<string> {
    // Before start and after stop nothing the device says would reach the hub: it is told to come
    // back (503) instead of being answered as if it had been heard — a registration, a feedback or
    // the end of a download would otherwise be lost.
    if (this.#handler === null) throw new FirmwardError('not_ready', 'The hub is starting or stopping; ask again in a few seconds.');
    if (tenant.toLowerCase() !== this.#o.tenant.toLowerCase()) {
      throw new FirmwardError('not_found', `This hub answers for the DDI tenant "${this.#o.tenant}" only; set the device's tenant to it.`);
    }
    if (!CONTROLLER_ID_PATTERN.test(controllerId)) {
      throw new FirmwardError('not_found', 'The controller id must be 1 to 120 letters, digits or . _ : - characters.');
    }
    const deviceId = this.deviceIdOf(controllerId);
    const m = /^(TargetToken|GatewayToken)\s+(\S+)\s*$/i.exec(authorization ?? '');
    if (!m) {
      throw new FirmwardError('unauthorized', 'This needs the device\'s token: send "Authorization: TargetToken <token>" (SWUpdate: -k) or the tenant\'s "GatewayToken <token>" (SWUpdate: -g).');
    }
    // One store lookup per request: a token revoked in the store stops working at once.
    const stored = await this.#o.credentials.get(deviceId);
    const byGateway = m[1]!.toLowerCase() === 'gatewaytoken';
    if (stored === DDI_REVOKED) {
      // Checked before the token, so the tenant's GatewayToken does not let a revoked device back in either.
      matchesTargetToken(null, m[2]!);
      throw new FirmwardError('unauthorized', 'The hub\'s owner revoked this device\'s access; it gets a new TargetToken on the hub to come back.');
    }
    const ok = byGateway ? matchesGatewayToken(this.#o.gatewayToken, m[2]!) : matchesTargetToken(stored, m[2]!);
    if (!ok) {
      throw new FirmwardError('unauthorized', byGateway
        ? 'The gateway token is wrong; use the one configured for this tenant on the hub.'
        : 'The target token is wrong, or the hub has not given this device one; use the token the hub issued for it.');
    }
    // One that registered itself and still waits for approval is let in only while self-registration
    // allows it: a person who turns it off keeps out everyone nobody approved yet.
    const known = stored !== null || (this.#controllers.get(deviceId)?.pendingRegistration === true && this.#mayRegister(controllerId));
    if (!known && !this.#mayRegister(controllerId)) {
      // Nothing is stored or kept for a device the operator did not allow.
      throw new FirmwardError('not_found', `The hub does not know the device "${controllerId}" and does not add devices by themselves; add it on the hub first.`);
    }
    const c = this.#controller(deviceId);
    c.credentialStored = stored !== null;
    if (!known) {
      c.pendingRegistration = true;
      this.#log.info('a new device registered itself', { deviceId });
    }
    return deviceId;
  }

  #mayRegister(controllerId: string): boolean {
    const rule = this.#registration;
    if (rule === false) return false;
    return rule.allowedControllerIds === undefined || rule.allowedControllerIds.includes(controllerId);
  }

  /** `GET {base}`. */
  poll(deviceId: string): PollView {
    const c = this.#contact(deviceId);
    const a = c.action;
    return {
      sleep: this.#sleep,
      deploymentBase: a !== null && a.cancel === null ? { actionId: a.id, cacheBuster: cacheBuster(a) } : null,
      cancelAction: a !== null && a.cancel !== null ? { actionId: a.id } : null,
      configData: c.wantsConfigData,
    };
  }

  /** `GET {base}/deploymentBase/{actionId}`. */
  deployment(deviceId: string, actionId: number): DeploymentView {
    const c = this.#contact(deviceId);
    const a = this.#current(c, actionId);
    if (a.cancel !== null) throw new FirmwardError('not_found', 'This update was cancelled; the device should ask again.');
    if (!a.seen) {
      a.seen = true;
      this.#ack(c, a.jobId, null);
    }
    return { actionId: a.id, version: a.offer.version, name: `${a.offer.vendor} ${a.offer.model}`, filename: artifactName(a.offer), artifact: a.artifact };
  }

  /** `GET {base}/cancelAction/{actionId}`. */
  cancelAction(deviceId: string, actionId: number): { actionId: number } {
    const c = this.#contact(deviceId);
    const a = this.#current(c, actionId);
    if (a.cancel === null) throw new FirmwardError('not_found', 'There is no cancellation for this update.');
    return { actionId: a.id };
  }

  /** `POST {base}/cancelAction/{actionId}/feedback`. */
  cancelFeedback(deviceId: string, actionId: number, feedback: Feedback): void {
    const c = this.#contact(deviceId);
    const a = this.#current(c, actionId);
    if (a.cancel === null) throw new FirmwardError('not_found', 'There is no cancellation for this update.');
    const { execution } = feedback.status;
    if (execution === 'rejected') {
      // The hub already cancelled the job; the device says it goes on. Withdrawn either way.
      this.#log.warn('the device refused to cancel; the hub has cancelled the update regardless', { deviceId, jobId: a.jobId, details: feedback.status.details.slice(0, 5) });
    } else if (execution !== 'closed') {
      return; // still stopping
    }
    this.#close(c, a);
  }

  /** `POST {base}/deploymentBase/{actionId}/feedback`: the device's progress, mapped onto our events. */
  async feedback(deviceId: string, actionId: number, feedback: Feedback): Promise<void> {
    const c = this.#contact(deviceId);
    const a = this.#current(c, actionId);
    const { execution, result, details } = feedback.status;
    const said = summarize(details);
    switch (execution) {
      case 'closed':
        if (result.finished === 'failure') return this.#failed(c, a, said);
        return this.#closedWithSuccess(c, a, said);
      case 'rejected':
        // Only a device that has not started installing can decline; a restored action's phase is unknown, so it cannot.
        if (a.restored || !this.#cancellable(a)) return this.#heard(c, a);
        // hawkBit: a warning, the action stays open. Ours: "not now" — back to waiting, nothing installed.
        c.action = null;
        this.#ack(c, a.jobId, { code: 'not_now', message: said === '' ? 'It gave no reason.' : said });
        return this.#flush(deviceId);
      case 'canceled':
        if (a.restored || !this.#cancellable(a)) return this.#heard(c, a);
        this.#close(c, a);
        this.#ack(c, a.jobId, { code: 'device_cancelled', message: `It cancelled the update itself${said === '' ? '.' : `: ${said}`}` });
        return this.#flush(deviceId);
      case 'download':
        return this.#advance(c, a, 'downloading', null);
      case 'downloaded':
        return this.#advance(c, a, 'downloaded', 100);
      case 'proceeding':
      case 'scheduled':
      case 'resumed':
        return this.#proceeding(c, a, feedback);
    }
  }

  /** `PUT {base}/configData`: attributes merged, replaced or removed; the hub hears identity and conditions. */
  async configData(deviceId: string, body: ConfigData): Promise<void> {
    const c = this.#contact(deviceId);
    const next: Record<string, string> = body.mode === 'replace' ? {} : { ...c.attributes };
    if (body.mode === 'remove') for (const key of Object.keys(body.data)) delete next[key];
    else Object.assign(next, body.data);
    const read = readAttributes(next, {
      vendor: this.#o.defaultVendor ?? null, name: c.controllerId, freeStorageBytes: this.#o.assumedFreeStorageBytes ?? 4 * GIB,
    });
    if (read.problems.length > 0) throw new FirmwardError('invalid_input', `The attributes are not valid, so none were taken: ${read.problems.join('; ')}.`);
    c.attributes = next;
    c.identity = read.identity;
    c.conditions = read.conditions;
    c.wantsConfigData = false;
    // Attributes sent after an update say what the device runs now; they win over the release's version.
    c.installedVersion = null;
    if (read.identity === null) {
      this.#log.info('attributes without a full identity; the device is not offered anything until they name it', { deviceId, missing: read.missing });
      return;
    }
    await this.#discover(c);
    this.#state(c);
    await this.#flush(deviceId);
  }

  /** The artifact of the current action, for `GET`/`HEAD` of its download link. */
  async artifact(deviceId: string, actionId: number, filename: string): Promise<ArtifactDownload> {
    const c = this.#contact(deviceId);
    const a = this.#current(c, actionId);
    if (filename !== artifactName(a.offer) || a.cancel !== null) throw new FirmwardError('not_found', 'There is no such file in this update.');
    const path = await this.#o.imagePath(a.offer.releaseId);
    if (path === null) throw new FirmwardError('image_unavailable', `The hub has no image for ${a.offer.releaseId} any more.`);
    // Checked again at every download (the file may have changed since the offer): invariant 4.
    const artifact = await this.#hashes.describe(a.offer.releaseId, path, a.offer.image);
    return {
      path, artifact,
      started: (start) => {
        if (c.action !== a || (!a.restored && rank(a.phase) > rank('downloading'))) return;
        void this.#advance(c, a, 'downloading', Math.floor((start / artifact.size) * 100));
      },
      progressed: (upTo) => {
        if (c.action !== a || rank(a.phase) > rank('downloading')) return;
        if (upTo >= artifact.size) {
          void this.#advance(c, a, 'downloaded', 100);
          return;
        }
        const percent = Math.floor((upTo / artifact.size) * 10) * 10;
        if (percent > a.downloadPercent) {
          a.downloadPercent = percent;
          void this.#advance(c, a, 'downloading', percent);
        }
      },
    };
  }

  // ── mapping ───────────────────────────────────────────────────────────────────────────────

  async #proceeding(c: Controller, a: Action, feedback: Feedback): Promise<void> {
    const { cnt, of } = feedback.status.result.progress ?? {};
    const percent = of !== undefined && of > 0 && cnt !== undefined ? Math.min(100, Math.round((cnt / of) * 100)) : null;
    // SWUpdate's last word of an install run; success comes only after the restart.
    if (feedback.status.details.some((line) => /all chunks installed/i.test(line))) return this.#advance(c, a, 'rebooting', null);
    if (a.restored) return percent !== null && cnt !== undefined && cnt > 0 ? this.#advance(c, a, 'installing', percent) : this.#heard(c, a);
    switch (a.phase) {
      case 'offered':
        // The first feedback: the client has started on it (SWUpdate: "Installing Update Chunk Artifacts.", before downloading).
        return this.#advance(c, a, 'downloading', null);
      case 'downloading':
        return this.#heard(c, a);
      case 'downloaded':
      case 'installing':
        return this.#advance(c, a, 'installing', percent);
      case 'rebooting':
        return this.#heard(c, a);
    }
  }

  /**
   * Moves the action forwards to `phase`, telling the hub every phase on the way (its state
   * machine takes them one by one, and the install step only after "downloaded": the go-ahead is
   * the hub's). A restored action starts from the phase the hub recorded for its job (restore), so
   * a device that goes on after a hub restart is followed from there; one that is behind it (a
   * repeated message) is only heard.
   */
  async #advance(c: Controller, a: Action, phase: ActionPhase, percent: number | null): Promise<void> {
    const from = rank(a.phase);
    const to = rank(phase);
    if (to < from) return this.#heard(c, a);
    for (let r = Math.max(from + 1, rank('downloading')); r < to; r++) this.#progress(c, a, PHASES[r]!, 100);
    if (a.restored || to !== from) a.revision++;
    a.phase = phase;
    a.restored = false;
    this.#progress(c, a, phase, percent);
    await this.#flush(c.deviceId);
  }

  /** closed + success (or none). */
  async #closedWithSuccess(c: Controller, a: Action, said: string): Promise<void> {
    if (a.restored || a.phase === 'rebooting') {
      // After the restart (SWUpdate `-c 2`, or `swupdate-ipc sendtohawkbit`): the new version runs.
      const version = a.offer.version;
      c.installedVersion = version;
      this.#close(c, a);
      this.#event(c, { v: PROTOCOL_VERSION, type: 'result', jobId: a.jobId, outcome: 'installed', firmwareVersion: version, healthy: c.conditions?.healthy ?? true, code: null, message: null });
      if (c.identity) {
        await this.#discover(c);
        this.#state(c);
      }
      return this.#flush(c.deviceId);
    }
    if (rank(a.phase) >= rank('downloaded')) {
      // Installed but not yet restarted (rauc-hawkbit-updater closes here): not a success yet.
      // The hub waits for the new version in the attributes after the restart, or fails it when silent.
      await this.#advance(c, a, 'rebooting', null);
      this.#close(c, a);
      this.#log.info('the device closed the update before restarting; waiting for it to report the new version', { deviceId: c.deviceId, jobId: a.jobId });
      return;
    }
    // Closed without having downloaded the image (SWUpdate answers "skip" like this): nothing was installed.
    this.#close(c, a);
    this.#event(c, {
      v: PROTOCOL_VERSION, type: 'result', jobId: a.jobId, outcome: 'failed', firmwareVersion: this.#runningVersion(c, a), healthy: c.conditions?.healthy ?? true,
      code: 'not_installed', message: clip(`The device ended the update without installing it${said === '' ? '.' : `; it said: ${said}`}`),
    });
    return this.#flush(c.deviceId);
  }

  /** closed + failure, with the client's own reason (SWUpdate's error lines, e.g. "HASH mismatch"). */
  async #failed(c: Controller, a: Action, said: string): Promise<void> {
    const afterRestart = !a.restored && a.phase === 'rebooting';
    this.#close(c, a);
    this.#event(c, {
      v: PROTOCOL_VERSION, type: 'result', jobId: a.jobId, outcome: afterRestart ? 'rolled-back' : 'failed',
      firmwareVersion: this.#runningVersion(c, a), healthy: c.conditions?.healthy ?? true,
      code: afterRestart ? 'rolled_back' : 'install_failed',
      message: clip(afterRestart
        ? `The new version did not work after the restart, so the device went back to its previous version. It said: ${said || 'no reason given'}`
        : `The device could not install the update and still runs its previous version. It said: ${said || 'no reason given'}`),
    });
    return this.#flush(c.deviceId);
  }

  #runningVersion(c: Controller, a: Action): string {
    return c.installedVersion ?? c.identity?.firmwareVersion ?? a.offer.applicableFrom ?? a.offer.version;
  }

  #close(c: Controller, a: Action): void {
    if (c.action === a) c.action = null;
    c.closed = [a.id, ...c.closed.filter((id) => id !== a.id)].slice(0, CLOSED_REMEMBERED);
    // hawkBit asks for attributes after an update: they say what the device runs now.
    c.wantsConfigData = true;
  }

  #heard(c: Controller, a: Action): Promise<void> {
    this.#ack(c, a.jobId, null);
    return this.#flush(c.deviceId);
  }

  #current(c: Controller, actionId: number): Action {
    const a = c.action;
    if (a?.id === actionId) return a;
    if (c.closed.includes(actionId)) throw new FirmwardError('conflict', 'This update has already ended; the hub takes no more feedback for it.', { detail: { gone: true } });
    throw new FirmwardError('not_found', 'The hub has no update with this id for this device.');
  }

  // ── to the hub ────────────────────────────────────────────────────────────────────────────

  #progress(c: Controller, a: Action, phase: ActionPhase, percent: number | null): void {
    if (phase === 'offered') return;
    this.#event(c, { v: PROTOCOL_VERSION, type: 'progress', jobId: a.jobId, phase, percent });
  }

  #ack(c: Controller, jobId: string, refusal: DeviceReason | null): void {
    this.#event(c, { v: PROTOCOL_VERSION, type: 'ack', jobId, accepted: refusal === null, code: refusal?.code ?? null, message: refusal ? clip(refusal.message) : null });
  }

  #event(c: Controller, event: OwnDeviceEvent): void {
    void this.#deliver(c.deviceId, (h, at) => h.onEvent(c.deviceId, event, at));
  }

  /** Tells the hub about the device when what it would say changed, then stores its registration. */
  async #discover(c: Controller): Promise<void> {
    const identity = c.identity;
    if (!identity) return;
    const device: DiscoveredDevice = {
      id: c.deviceId, name: identity.name, vendor: identity.vendor, model: identity.model, hardwareRevision: identity.hardwareRevision,
      firmwareVersion: c.installedVersion ?? identity.firmwareVersion, powerSource: identity.powerSource,
    };
    const json = JSON.stringify(device);
    // Only what reached the hub counts as told: before the hub listens (while it starts) the device
    // is told again at its next contact instead of being lost for good.
    if (json !== c.discovered && this.#handler !== null) {
      c.discovered = json;
      void this.#deliver(c.deviceId, (h, at) => h.onDiscovered(device, at));
    }
    if (!c.reportedOnline && this.#handler !== null) {
      c.reportedOnline = true;
      void this.#deliver(c.deviceId, (h, at) => h.onAvailability(c.deviceId, true, at));
    }
    // A device that registered itself is stored by the hub once a person approves it (the gateway stores nothing).
    await this.#flush(c.deviceId);
  }

  #state(c: Controller): void {
    const identity = c.identity;
    const conditions = c.conditions;
    if (!identity || !conditions) return;
    const a = c.action;
    const state: DeviceState = {
      v: PROTOCOL_VERSION, vendor: identity.vendor, model: identity.model, hardwareRevision: identity.hardwareRevision,
      firmwareVersion: c.installedVersion ?? identity.firmwareVersion, activeSlot: conditions.activeSlot, powerSource: conditions.powerSource,
      batteryPercent: conditions.batteryPercent, charging: conditions.charging, signalDbm: conditions.signalDbm, busy: conditions.busy,
      freeStorageBytes: conditions.freeStorageBytes, healthy: conditions.healthy,
      // A restored action says the phase the hub recorded (restore): after a hub restart the device is
      // still working on it — reporting none would read as "back on the old version" while it waits
      // for its restart, and fail an update that is fine.
      job: a !== null && a.phase !== 'offered' ? { jobId: a.jobId, phase: a.phase } : null,
    };
    void this.#deliver(c.deviceId, (h, at) => h.onState(c.deviceId, state, at));
  }

  /** Every request is a sign of life: a device the hub knows is online again. */
  #contact(deviceId: string): Controller {
    const c = this.#controller(deviceId);
    c.lastContactAt = this.#o.clock.now();
    if (!c.reportedOnline && (c.credentialStored || c.discovered !== null)) {
      c.reportedOnline = true;
      void this.#deliver(deviceId, (h, at) => h.onAvailability(deviceId, true, at));
    }
    return c;
  }

  #markSilentOffline(): void {
    const now = this.#o.clock.now();
    for (const c of this.#controllers.values()) {
      if (c.reportedOnline && now - c.lastContactAt >= this.#offlineAfterMs) {
        c.reportedOnline = false;
        void this.#deliver(c.deviceId, (h, at) => h.onAvailability(c.deviceId, false, at));
      }
    }
  }

  #controller(deviceId: string): Controller {
    let c = this.#controllers.get(deviceId);
    if (!c) {
      c = {
        deviceId, controllerId: this.controllerIdOf(deviceId), pendingRegistration: false, credentialStored: false,
        attributes: {}, identity: null, conditions: null, installedVersion: null, discovered: null,
        // First contact since the hub started: ask what the device is.
        wantsConfigData: true, lastContactAt: this.#o.clock.now(), reportedOnline: false, action: null, closed: [],
      };
      this.#controllers.set(deviceId, c);
    }
    return c;
  }

  /** Runs `fn` after everything queued for the device; the handler contract says it does not throw. */
  #deliver(deviceId: string, fn: (handler: BridgeHandler, at: EpochMs) => Promise<void>): Promise<void> {
    const handler = this.#handler;
    if (handler === null) return Promise.resolve();
    const at = this.#o.clock.now();
    const previous = this.#queues.get(deviceId) ?? Promise.resolve();
    const next = previous
      .then(() => fn(handler, at))
      .catch((error: unknown) => this.#log.error('the hub failed to take a device message', { deviceId, error: String(error) }))
      .finally(() => {
        if (this.#queues.get(deviceId) === next) this.#queues.delete(deviceId);
      });
    this.#queues.set(deviceId, next);
    return next;
  }

  /** Resolves once everything queued for the device so far has reached the hub (a request answers after that). */
  async #flush(deviceId: string): Promise<void> {
    await this.#queues.get(deviceId);
  }
}

/** SWUpdate installs only artifacts whose name ends in `.swu`. */
export function artifactName(offer: OfferCommand): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `${safe(offer.model)}-${safe(offer.version)}.swu`;
}

function cacheBuster(a: Action): string {
  return `${a.revision.toString(36)}${(a.id % 1296).toString(36)}`;
}

/** The client's detail lines as one sentence for the person (SWUpdate's errors read well as they are). */
function summarize(details: string[]): string {
  return details.map((d) => d.replace(/\s+/g, ' ').trim()).filter((d) => d !== '').join(' ');
}

/** The protocol allows 500 characters for a message. */
function clip(message: string): string {
  return message.length <= 500 ? message : `${message.slice(0, 499)}…`;
}
