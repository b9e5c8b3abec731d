/**
 * The Shelly bridge: Firmward's device protocol for Shelly Gen2+ devices (Plus, Pro, Gen3, Gen4),
 * spoken over Shelly's RPC-over-MQTT channel (/work/shared/reference/ecosystems.md, section 4).
 * It never decides whether to update — the hub does; it reports what the devices say, turns the
 * hub's install go-ahead into `Shelly.Update`, and synthesises the ack / progress / result events
 * the engine expects from Shelly's own OTA events and from the version the device runs after its
 * restart.
 *
 * Two kinds of image: Shelly's own stable channel, which `releases()` offers with its origin
 * (the device fetches and checks the image itself: `Shelly.Update {stage: "stable"}`), and images
 * from the maker's signed repository, passed to the device as the hub's URL (`{url}`).
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { DeliveryQueue, connectBroker, offerMisfit, parseJson, validate } from '@firmward/bridge-common';
import type { BrokerOptions } from '@firmward/bridge-common';
import { FirmwardError, releaseId, tryCompareVersions } from '@firmward/core';
import type { EpochMs, PowerSource, RecoveryInstructions, Release } from '@firmward/core';
import { consoleLogger } from '@firmward/ports';
import type { Bridge, BridgeHandler, Clock, DiscoveredDevice, Logger } from '@firmward/ports';
import { MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, commandSchema } from '@firmward/protocol';
import type { CancelCommand, DeviceCode, DeviceReason, DeviceState, InstallCommand, OfferCommand, OwnDeviceEvent, OwnResultEvent, ResultEvent } from '@firmward/protocol';
import { deviceInfoSchema, notificationSchema, notifyEventParamsSchema, prefixProblem, rpcReplySchema, shellyTopics, statusSchema } from './messages.ts';
import type { DeviceInfo, RpcReply, ShellyEvent, ShellyStatus } from './messages.ts';

/** Device ids of this bridge are `shelly-<Shelly device id>`, e.g. "shelly-shellyplus1-c4dd57877294". */
export const SHELLY_ID_PREFIX = 'shelly-';
export const SHELLY_VENDOR = 'shelly';
/** `Release.origin.ecosystem` of the releases Shelly's stable channel vouches for. */
export const SHELLY_STABLE_ECOSYSTEM = 'shelly-stable';
export const SHELLY_STABLE_TRUST = 'Shelly\'s own stable channel: Shelly builds and signs this firmware, and the device checks the signature itself before installing it.';
/**
 * Not applicable: the device's own OTA checks space. A Shelly writes the new image into its
 * second firmware slot and refuses one that does not fit, so the hub's storage rule has nothing
 * to check; a large number lets that rule pass without pretending to a measurement.
 */
export const NOT_APPLICABLE_FREE_STORAGE_BYTES = 2 ** 40;

/**
 * Shelly's steps when a device does not come back after an update (support.shelly.cloud, "How to
 * factory reset a Shelly device?", article 103000095415). Shelly devices keep the previous firmware
 * in a second slot, so most failed updates need nothing more than the first step.
 */
export const SHELLY_RECOVERY: RecoveryInstructions = {
  steps: [
    'Switch the power to the Shelly off (at the fuse or the plug) for one minute, switch it on again and wait two minutes.',
    'If it still does not come back, reset it to factory settings: hold its reset button for at least 10 seconds, or, if it has none, switch its power on and off 5 times in a row.',
    'After the reset it opens its own Wi-Fi network: add it again with the Shelly app and point its MQTT settings at your broker.',
  ],
  supportUrl: 'https://support.shelly.cloud/en/support/solutions/articles/103000095415-how-to-factory-reset-a-shelly-device-',
};

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Requests still waiting for an answer; older ones are forgotten (a device that never answers must not grow the map). */
const MAX_PENDING_REQUESTS = 1024;

export interface ShellyBridgeOptions extends BrokerOptions {
  /** The broker the Shelly devices use, e.g. mqtt://192.168.1.2:1883. */
  url: string;
  /** Stamps the `at` of everything handed to the hub, and paces the status polling. */
  clock: Clock;
  logger?: Logger;
  /**
   * The devices' MQTT `topic_prefix`es (by default a device's id, e.g. "shellyplus1-c4dd57877294").
   * Shelly Gen2+ has no announcement topic the bridge could listen to, so the devices are named here.
   */
  devices: string[];
  /** Offer Shelly's stable channel as releases. On by default. */
  stableChannel?: boolean;
  /** The `src` of the bridge's requests; Shelly answers on `<src>/rpc`. "firmward-<uuid>" by default. */
  rpcSource?: string;
  /** How often each device is asked for its status (signal, battery, available update). 300 s by default. */
  pollSeconds?: number;
  /** A fresh "firmward-shelly-<uuid>" by default. */
  clientId?: string;
}

/** Where the bridge is in one update. A Shelly downloads, writes and checks the image in one step (`Shelly.Update`). */
type Step =
  /** Accepted; nothing sent to the device yet. */
  | 'downloaded'
  /** `Shelly.Update` sent, no answer or OTA event yet. */
  | 'update-sent'
  | 'installing'
  | 'rebooting';

interface UpdateJob {
  offer: OfferCommand;
  fromVersion: string;
  /** What `Shelly.Update` is asked for: the stable channel, or the image at the hub's URL. */
  params: { stage: 'stable' } | { url: string };
  step: Step;
  /** The device came back after its restart: the version in its next GetDeviceInfo decides the result. */
  awaitingVersion: boolean;
}

interface ShellyDevice {
  prefix: string;
  /** `shelly-<info.id>`, once the device has said who it is. */
  id: string | null;
  online: boolean | null;
  toldOnline: boolean | null;
  info: DeviceInfo | null;
  /** `sys.available_updates.stable.version`, when Shelly offers one. */
  stableVersion: string | null;
  rssi: number | null;
  /** Present only on battery devices (Shelly's DevicePower component). */
  battery: { percent: number | null; external: boolean } | null;
  told: DiscoveredDevice | null;
  job: UpdateJob | null;
  ended: OwnResultEvent | null;
}

type Method = 'Shelly.GetDeviceInfo' | 'Shelly.GetStatus' | 'Shelly.Update';

/**
 * @example
 * const bridge = new ShellyBridge({ url: 'mqtt://192.168.1.2:1883', clock: new SystemClock(), devices: ['shellyplus1-c4dd57877294'] });
 * await bridge.start(handler); // devices appear through handler.onDiscovered as "shelly-<id>"
 * bridge.releases();           // Shelly's stable channel, one release per model, with its origin
 */
export class ShellyBridge implements Bridge {
  readonly name = 'shelly';
  readonly #options: ShellyBridgeOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #src: string;
  readonly #devices = new Map<string, ShellyDevice>();
  readonly #pending = new Map<number, { prefix: string; method: Method }>();
  /** Ids of every release the stable channel offered: an offer for one of them means `{stage: "stable"}`. */
  readonly #vouched = new Set<string>();
  readonly #deliveries: DeliveryQueue;
  #nextRequestId = 1;
  #client: MqttClient | null = null;
  #handler: BridgeHandler | null = null;
  #stopPolling: AbortController | null = null;
  #polling: Promise<void> = Promise.resolve();

  constructor(options: ShellyBridgeOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#log = options.logger ?? consoleLogger('info', 'shelly');
    this.#src = options.rpcSource ?? `firmward-${randomUUID()}`;
    this.#deliveries = new DeliveryQueue(this.#log);
  }

  /** Connects, listens to each device's online flag, notifications and the bridge's replies, then asks every device who it is. */
  async start(handler: BridgeHandler, signal?: AbortSignal): Promise<void> {
    if (this.#client !== null) throw new FirmwardError('conflict', 'The Shelly bridge is already running.');
    for (const prefix of this.#options.devices) {
      const problem = prefixProblem(prefix);
      if (problem !== null) throw new FirmwardError('config_invalid', `The Shelly topic prefix "${prefix}" ${problem}.`);
    }
    const srcProblem = prefixProblem(this.#src);
    if (srcProblem !== null) throw new FirmwardError('config_invalid', `The Shelly bridge's RPC source "${this.#src}" ${srcProblem}.`);
    const { url } = this.#options;
    const { client, connected: firstConnection } = connectBroker(this.#options, {
      clientId: this.#options.clientId ?? `firmward-shelly-${randomUUID()}`,
      refusedMessage: "The Shelly MQTT broker refused the bridge's login; check its user name and password.",
      unreachableMessage: `The Shelly bridge could not reach its MQTT broker at ${url}.`,
    }, signal);
    this.#client = client;
    this.#handler = handler;
    for (const prefix of this.#options.devices) this.#devices.set(prefix, newDevice(prefix));
    client.on('message', (topic, payload) => this.#receive(topic, payload));
    client.on('error', (error) => this.#log.warn('Shelly MQTT connection error.', { url, error: error.message }));
    client.on('offline', () => this.#log.warn('Lost the connection to the Shelly MQTT broker; reconnecting.', { url }));
    let connected = false;
    client.on('connect', () => {
      // After a reconnect (the first connect asks once subscribed, below): ask again what each device is and how it is.
      if (connected) for (const d of this.#devices.values()) this.#query(d);
      connected = true;
    });
    try {
      await firstConnection;
      const topics = [`${this.#src}/rpc`, ...[...this.#devices.keys()].flatMap((p) => [shellyTopics(p).online, shellyTopics(p).events])];
      await client.subscribeAsync(topics, { qos: 1 });
      for (const d of this.#devices.values()) this.#query(d);
      this.#log.info('Listening to Shelly devices.', { url, devices: this.#devices.size });
    } catch (error) {
      this.#client = null;
      this.#handler = null;
      this.#devices.clear();
      await client.endAsync(true);
      throw error;
    }
    const stop = new AbortController();
    this.#stopPolling = stop;
    this.#polling = this.#poll(stop.signal);
  }

  /** Stops polling, disconnects, and waits until everything already received has reached the hub. */
  async stop(): Promise<void> {
    this.#stopPolling?.abort();
    this.#stopPolling = null;
    await this.#polling;
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.endAsync();
    await this.#deliveries.drain();
    this.#handler = null;
  }

  owns(deviceId: string): boolean {
    return deviceId.startsWith(SHELLY_ID_PREFIX);
  }

  /**
   * Shelly's stable channel, one release per model: the newest `available_updates.stable.version`
   * any device of that model reports, for the hardware revisions seen with it. Empty when the
   * stable channel is not allowed. Whether and when it goes on a device is the hub's decision.
   */
  releases(): Release[] {
    if (this.#options.stableChannel === false) return [];
    const byModel = new Map<string, { version: string; hardwareRevisions: Set<string> }>();
    for (const d of this.#devices.values()) {
      if (d.told === null || d.stableVersion === null) continue;
      const seen = byModel.get(d.told.model);
      if (seen === undefined) {
        byModel.set(d.told.model, { version: d.stableVersion, hardwareRevisions: new Set([d.told.hardwareRevision]) });
        continue;
      }
      seen.hardwareRevisions.add(d.told.hardwareRevision);
      const order = tryCompareVersions(d.stableVersion, seen.version);
      if (order.ok && order.order > 0) seen.version = d.stableVersion;
    }
    return [...byModel.entries()].map(([model, { version, hardwareRevisions }]) => {
      const release: Release = {
        id: releaseId(SHELLY_VENDOR, model, version), vendor: SHELLY_VENDOR, model, hardwareRevisions: [...hardwareRevisions].sort(), version,
        severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds: 300, preflightOverrides: {}, recovery: SHELLY_RECOVERY, retracted: false,
        image: { path: `${SHELLY_STABLE_ECOSYSTEM}:${model}/${version}`, lengthBytes: 0, sha256: '' },
        notes: `Shelly's stable firmware ${version} for the ${model}.`,
        origin: { ecosystem: SHELLY_STABLE_ECOSYSTEM, trust: SHELLY_STABLE_TRUST },
      };
      this.#vouched.add(release.id);
      return release;
    });
  }

  /**
   * Takes one command from the hub. Idempotent by job id: a repeated offer or install is answered
   * again and starts nothing new. Resolves once the bridge has acted; its answers reach the hub's
   * handler afterwards (never while the hub waits here).
   */
  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    const parsed = commandSchema.safeParse(command);
    if (!parsed.success) return Promise.reject(new FirmwardError('invalid_input', `The command for ${deviceId} is malformed, so it was not sent.`));
    if (this.#client === null) return Promise.reject(new FirmwardError('gateway_failure', `The Shelly bridge is not running, so it could not pass the command to ${deviceId}; it will try again.`));
    const device = [...this.#devices.values()].find((d) => d.id === deviceId);
    if (!device?.told) {
      return Promise.reject(new FirmwardError('not_found', `The Shelly bridge has not heard from ${deviceId} yet; the hub will try again.`, { detail: { deviceId } }));
    }
    const at = this.#clock.now();
    const c = parsed.data;
    switch (c.type) {
      case 'offer': this.#offer(device, c, at); break;
      case 'install': this.#install(device, c, at); break;
      case 'cancel': this.#cancel(device, c, at); break;
    }
    return Promise.resolve();
  }

  // ── commands from the hub ─────────────────────────────────────────────────────────────────

  #offer(d: ShellyDevice, offer: OfferCommand, at: EpochMs): void {
    const job = d.job;
    if (job?.offer.jobId === offer.jobId) {
      // Offer twice: answer again and say where it is; nothing restarts.
      this.#ack(d, offer.jobId, null, at);
      this.#progress(d, offer.jobId, this.#phase(job.step), job.step === 'downloaded' ? 100 : null, at);
      return;
    }
    if (d.ended?.jobId === offer.jobId) {
      this.#ack(d, offer.jobId, null, at);
      this.#event(d, d.ended, at);
      return;
    }
    if (job) return this.#ack(d, offer.jobId, { code: 'busy', message: `It is already working on another update (${job.offer.jobId}).` }, at);
    const told = d.told!;
    const misfit = offerMisfit(offer, told);
    if (misfit) return this.#ack(d, offer.jobId, misfit, at);
    let params: UpdateJob['params'] = { url: offer.image.url };
    if (this.#vouched.has(offer.releaseId)) {
      // `{stage: "stable"}` installs whatever the channel offers *now*: only when that is still the
      // version the hub chose, or the device would get a version nobody checked.
      if (d.stableVersion !== offer.version) {
        return this.#ack(d, offer.jobId, {
          code: 'incompatible',
          message: d.stableVersion === null
            ? `Shelly's stable channel no longer offers ${offer.version} for this device.`
            : `Shelly's stable channel now offers ${d.stableVersion} for this device, not ${offer.version}.`,
        }, at);
      }
      params = { stage: 'stable' };
    }
    d.job = { offer, fromVersion: told.firmwareVersion, params, step: 'downloaded', awaitingVersion: false };
    this.#ack(d, offer.jobId, null, at);
    // A Shelly downloads while it installs, so there is nothing to fetch first: the hub's second
    // preflight check (at "downloaded") then runs right before the device is touched at all.
    this.#progress(d, offer.jobId, 'downloaded', 100, at);
    this.#report(d, at);
  }

  #install(d: ShellyDevice, install: InstallCommand, at: EpochMs): void {
    const job = d.job;
    if (job?.offer.jobId !== install.jobId) {
      if (d.ended?.jobId === install.jobId) {
        this.#ack(d, install.jobId, null, at);
        this.#event(d, d.ended, at);
        return;
      }
      return this.#ack(d, install.jobId, { code: 'unknown_job', message: `It has no update ${install.jobId} to install.` }, at);
    }
    if (job.step === 'downloaded') {
      if (d.online !== true) {
        // A request to an offline Shelly is lost. The state keeps saying "downloaded", so the hub
        // sends the go-ahead again once the device is back.
        this.#log.info('Install go-ahead for an offline device; waiting for it to come back.', { deviceId: d.id, jobId: job.offer.jobId });
        return;
      }
      // Sent once only: a second Shelly.Update during an update would be refused, and read as a failure.
      this.#request(d, 'Shelly.Update', job.params);
      job.step = 'update-sent';
      this.#report(d, at);
    }
    this.#ack(d, install.jobId, null, at);
  }

  #cancel(d: ShellyDevice, cancel: CancelCommand, at: EpochMs): void {
    const job = d.job;
    if (job?.offer.jobId === cancel.jobId) {
      if (job.step !== 'downloaded') {
        return this.#ack(d, cancel.jobId, { code: 'cancel_too_late', message: 'The update is already installing; stopping now could break the device, so it goes on.' }, at);
      }
      // Nothing was sent to the device yet: forgetting the job is the whole cancel.
      d.job = null;
      this.#ack(d, cancel.jobId, null, at);
      this.#report(d, at);
      return;
    }
    if (d.ended?.jobId === cancel.jobId) {
      return this.#ack(d, cancel.jobId, { code: 'cancel_too_late', message: 'The update has already ended; there is nothing left to stop.' }, at);
    }
    this.#ack(d, cancel.jobId, null, at);
  }

  // ── messages from Shelly ──────────────────────────────────────────────────────────────────

  #receive(topic: string, payload: Buffer): void {
    if (this.#handler === null) return;
    const at = this.#clock.now();
    if (topic === `${this.#src}/rpc`) {
      const reply = parseJson(rpcReplySchema, payload, MAX_PAYLOAD_BYTES);
      if (!reply.ok) return this.#reject(null, topic, `reply: ${reply.error}`, at);
      return this.#reply(reply.value, topic, at);
    }
    for (const d of this.#devices.values()) {
      const topics = shellyTopics(d.prefix);
      if (topic === topics.online) {
        const text = payload.byteLength <= 16 ? payload.toString('utf8').trim() : '';
        if (text === 'true') return this.#setOnline(d, true, at);
        if (text === 'false') return this.#setOnline(d, false, at);
        return this.#reject(d.id, topic, 'online: payload is neither "true" nor "false"', at);
      }
      if (topic === topics.events) {
        const frame = parseJson(notificationSchema, payload, MAX_PAYLOAD_BYTES);
        if (!frame.ok) return this.#reject(d.id, topic, `notification: ${frame.error}`, at);
        return this.#notification(d, frame.value.method, frame.value.params ?? {}, topic, at);
      }
    }
  }

  #reply(reply: RpcReply, topic: string, at: EpochMs): void {
    const id = typeof reply.id === 'number' ? reply.id : Number(reply.id);
    const pending = this.#pending.get(id);
    // Another client may share the src, or the request was forgotten: not ours to act on.
    if (pending === undefined) return this.#log.debug('Reply to no pending request.', { id: reply.id });
    this.#pending.delete(id);
    const d = this.#devices.get(pending.prefix);
    if (d === undefined) return;
    this.#heard(d, at);
    if (reply.error !== undefined) return this.#rpcError(d, pending.method, reply.error, at);
    switch (pending.method) {
      case 'Shelly.GetDeviceInfo': {
        const info = validate(deviceInfoSchema, reply.result);
        if (!info.ok) return this.#reject(d.id, topic, `Shelly.GetDeviceInfo: ${info.error}`, at);
        return this.#deviceInfo(d, info.value, at);
      }
      case 'Shelly.GetStatus': {
        const status = validate(statusSchema, reply.result);
        if (!status.ok) return this.#reject(d.id, topic, `Shelly.GetStatus: ${status.error}`, at);
        this.#status(d, status.value, true);
        this.#discover(d, at);
        return this.#report(d, at);
      }
      case 'Shelly.Update': {
        const job = d.job;
        if (job?.step === 'update-sent') {
          job.step = 'installing';
          this.#progress(d, job.offer.jobId, 'installing', 0, at);
          this.#report(d, at);
        }
        return;
      }
    }
  }

  #rpcError(d: ShellyDevice, method: Method, error: { code: number; message: string }, at: EpochMs): void {
    const job = d.job;
    if (method === 'Shelly.Update' && job?.step === 'update-sent') {
      return this.#end(d, job, 'failed', 'update_refused', `Shelly refused the update: ${error.message} (error ${error.code}); nothing was changed.`, at);
    }
    this.#log.warn('A Shelly device answered a request with an error.', { deviceId: d.id, prefix: d.prefix, method, code: error.code, error: error.message });
  }

  #notification(d: ShellyDevice, method: string, params: Record<string, unknown>, topic: string, at: EpochMs): void {
    this.#heard(d, at);
    switch (method) {
      case 'NotifyStatus':
      case 'NotifyFullStatus': {
        const status = validate(statusSchema, params);
        if (!status.ok) return this.#reject(d.id, topic, `${method}: ${status.error}`, at);
        // NotifyStatus carries what changed, to overlay on what is known; NotifyFullStatus all of it (section 4.4).
        this.#status(d, status.value, method === 'NotifyFullStatus');
        this.#discover(d, at);
        return this.#report(d, at);
      }
      case 'NotifyEvent': {
        const events = validate(notifyEventParamsSchema, params);
        if (!events.ok) return this.#reject(d.id, topic, `NotifyEvent: ${events.error}`, at);
        for (const event of events.value.events) if (event.component === 'sys') this.#otaEvent(d, event, at);
        return;
      }
      default:
        return;
    }
  }

  /** The `sys` OTA events (section 4.4): ota_begin, ota_progress (progress_percent), ota_success, ota_error. */
  #otaEvent(d: ShellyDevice, event: ShellyEvent, at: EpochMs): void {
    if (!event.event.startsWith('ota_')) return;
    const job = d.job;
    if (!job || job.step === 'downloaded') {
      this.#log.info('Shelly reports an update the bridge did not start.', { deviceId: d.id, event: event.event });
      return;
    }
    switch (event.event) {
      case 'ota_begin':
      case 'ota_progress':
        if (job.step === 'rebooting') return;
        job.step = 'installing';
        this.#progress(d, job.offer.jobId, 'installing', clampPercent(event.progress_percent ?? 0), at);
        return this.#report(d, at);
      case 'ota_success':
        if (job.step === 'rebooting') return;
        job.step = 'rebooting';
        this.#progress(d, job.offer.jobId, 'rebooting', null, at);
        return this.#report(d, at);
      case 'ota_error':
        return this.#end(d, job, 'failed', 'ota_error', `Shelly could not install the update (${event.msg ?? 'no reason given'}); it still runs ${job.fromVersion}.`, at);
      default:
        return;
    }
  }

  /**
   * Any answer or notification means the device is connected, whatever the (maybe unretained)
   * online flag said. It is asked again only when an update waits for its restart: otherwise the
   * answer in hand is the news.
   */
  #heard(d: ShellyDevice, at: EpochMs): void {
    if (d.online === true) return;
    if (d.job?.step === 'rebooting') return this.#setOnline(d, true, at);
    d.online = true;
    this.#tellAvailability(d, at);
  }

  #setOnline(d: ShellyDevice, online: boolean, at: EpochMs): void {
    const was = d.online;
    d.online = online;
    this.#tellAvailability(d, at);
    const job = d.job;
    if (online) {
      // Every (re)connect: ask what runs now. During an update the "true" a device publishes when it
      // connects after its restart counts even when the bridge never saw it drop off.
      if (job?.step === 'rebooting') job.awaitingVersion = true;
      else if (was === true) return;
      this.#query(d);
      return;
    }
    if (job && (job.step === 'update-sent' || job.step === 'installing')) {
      // Dropping off during Shelly.Update is the restart (or a power cut): what runs after it decides.
      job.step = 'rebooting';
      this.#progress(d, job.offer.jobId, 'rebooting', null, at);
    }
  }

  /** Tells the hub a change of availability, once it knows the device. */
  #tellAvailability(d: ShellyDevice, at: EpochMs): void {
    const online = d.online;
    if (d.told === null || d.id === null || online === null || d.toldOnline === online) return;
    d.toldOnline = online;
    const handler = this.#handler!;
    const id = d.id;
    this.#deliveries.push(id, () => handler.onAvailability(id, online, at));
  }

  #deviceInfo(d: ShellyDevice, info: DeviceInfo, at: EpochMs): void {
    const id = `${SHELLY_ID_PREFIX}${info.id}`;
    if (!DEVICE_ID.test(id)) return this.#reject(null, shellyTopics(d.prefix).rpc, `Shelly.GetDeviceInfo: id "${info.id}" does not make a valid device id`, at);
    if (d.id !== null && d.id !== id) {
      // Another device answers under this prefix: start over with it (the hub refuses a changed identity itself).
      this.#log.warn('A different Shelly answers under a configured prefix.', { prefix: d.prefix, was: d.id, now: id });
      d.told = null;
      d.toldOnline = null;
      d.job = null;
    }
    d.id = id;
    d.info = info;
    const job = d.job;
    if (job?.awaitingVersion && d.online === true) this.#conclude(d, job, at);
    this.#discover(d, at);
    this.#report(d, at);
  }

  #status(d: ShellyDevice, status: ShellyStatus, full: boolean): void {
    if (status.sys?.available_updates !== undefined || full) d.stableVersion = status.sys?.available_updates?.stable?.version ?? null;
    if (status.wifi !== undefined || full) d.rssi = status.wifi?.rssi ?? null;
    const power = status['devicepower:0'];
    if (power !== undefined) {
      d.battery = {
        percent: power.battery?.percent ?? d.battery?.percent ?? null,
        external: power.external?.present ?? d.battery?.external ?? false,
      };
    }
  }

  /** Confirmation: the `ver` the device reports after its restart, compared with the target. */
  #conclude(d: ShellyDevice, job: UpdateJob, at: EpochMs): void {
    const running = d.info!.ver;
    const name = d.told?.name ?? d.id ?? d.prefix;
    if (sameVersion(running, job.offer.version)) return this.#end(d, job, 'installed', null, null, at);
    if (sameVersion(running, job.fromVersion)) {
      return this.#end(d, job, 'failed', 'version_unchanged', `${name} restarted but still runs ${running}; the update did not take, and nothing else changed.`, at);
    }
    this.#end(d, job, 'failed', 'unexpected_version', `${name} restarted running ${running}, not ${job.offer.version}.`, at);
  }

  #end(d: ShellyDevice, job: UpdateJob, outcome: ResultEvent['outcome'], code: DeviceCode | null, message: string | null, at: EpochMs): void {
    const result: OwnResultEvent = {
      v: PROTOCOL_VERSION, type: 'result', jobId: job.offer.jobId, outcome,
      firmwareVersion: d.info?.ver ?? job.fromVersion, healthy: d.online === true, code, message,
    };
    d.job = null;
    d.ended = result;
    this.#event(d, result, at);
    this.#report(d, at);
  }

  // ── telling the hub ───────────────────────────────────────────────────────────────────────

  #discover(d: ShellyDevice, at: EpochMs): void {
    const info = d.info;
    if (info === null || d.id === null) return;
    const powerSource: PowerSource = d.battery !== null ? 'battery' : 'mains';
    const found: DiscoveredDevice = {
      id: d.id,
      name: info.name ?? info.id,
      vendor: SHELLY_VENDOR,
      // The SKU names the hardware; the generation is what Shelly's firmware lines are built for.
      model: info.model,
      hardwareRevision: `gen${info.gen}`,
      firmwareVersion: info.ver,
      powerSource,
    };
    if (d.told && JSON.stringify(d.told) === JSON.stringify(found)) return;
    d.told = found;
    const handler = this.#handler!;
    this.#deliveries.push(found.id, () => handler.onDiscovered(found, at));
    this.#tellAvailability(d, at);
  }

  /** The device's state in our protocol; only while it is online (any state report means "online" to the hub). */
  #report(d: ShellyDevice, at: EpochMs): void {
    const told = d.told;
    if (told === null || d.id === null || d.online !== true) return;
    const state: DeviceState = {
      v: PROTOCOL_VERSION, vendor: told.vendor, model: told.model, hardwareRevision: told.hardwareRevision, firmwareVersion: told.firmwareVersion,
      // Shelly switches between its two firmware slots by itself; the bridge does not see which.
      activeSlot: 'a',
      powerSource: told.powerSource, batteryPercent: d.battery?.percent ?? null,
      // Shelly says only whether external power is present: that counts as charging; unknown as not.
      charging: d.battery?.external ?? false,
      signalDbm: d.rssi !== null && d.rssi >= -130 && d.rssi <= 0 ? d.rssi : null,
      // Shelly does not say whether the device is in use.
      busy: false,
      freeStorageBytes: NOT_APPLICABLE_FREE_STORAGE_BYTES,
      healthy: true,
      job: d.job ? { jobId: d.job.offer.jobId, phase: this.#phase(d.job.step) } : null,
    };
    const handler = this.#handler!;
    const id = d.id;
    this.#deliveries.push(id, () => handler.onState(id, state, at));
  }

  #phase(step: Step): 'downloaded' | 'installing' | 'rebooting' {
    switch (step) {
      case 'downloaded': return 'downloaded';
      case 'update-sent':
      case 'installing': return 'installing';
      case 'rebooting': return 'rebooting';
    }
  }

  #ack(d: ShellyDevice, jobId: string, refusal: DeviceReason | null, at: EpochMs): void {
    this.#event(d, { v: PROTOCOL_VERSION, type: 'ack', jobId, accepted: refusal === null, code: refusal?.code ?? null, message: refusal?.message ?? null }, at);
  }

  #progress(d: ShellyDevice, jobId: string, phase: 'downloaded' | 'installing' | 'rebooting', percent: number | null, at: EpochMs): void {
    this.#event(d, { v: PROTOCOL_VERSION, type: 'progress', jobId, phase, percent }, at);
  }

  #event(d: ShellyDevice, event: OwnDeviceEvent, at: EpochMs): void {
    const handler = this.#handler!;
    const id = d.id!;
    this.#deliveries.push(id, () => handler.onEvent(id, event, at));
  }

  #reject(deviceId: string | null, topic: string, error: string, at: EpochMs): void {
    this.#log.warn('Rejected a Shelly message; nothing changed.', { deviceId, topic, error });
    const handler = this.#handler!;
    this.#deliveries.push(deviceId ?? '', () => handler.onRejected({ deviceId, topic, error, at }));
  }

  // ── requests ──────────────────────────────────────────────────────────────────────────────

  /** Who it is, and how it is (signal, battery, the update Shelly offers). */
  #query(d: ShellyDevice): void {
    this.#request(d, 'Shelly.GetDeviceInfo', null);
    // One call for `sys`, `wifi` and `devicepower:0`: the same objects Sys.GetStatus and
    // WiFi.GetStatus return (section 4.3), and the battery for devices that have one.
    this.#request(d, 'Shelly.GetStatus', null);
  }

  #request(d: ShellyDevice, method: Method, params: Record<string, unknown> | null): void {
    const client = this.#client;
    if (client === null) return;
    const id = this.#nextRequestId++;
    this.#pending.set(id, { prefix: d.prefix, method });
    if (this.#pending.size > MAX_PENDING_REQUESTS) this.#pending.delete(this.#pending.keys().next().value!);
    const frame = { id, src: this.#src, method, ...(params !== null && { params }) };
    client.publishAsync(shellyTopics(d.prefix).rpc, JSON.stringify(frame), { qos: 1, retain: false }).catch((error: unknown) => {
      this.#log.warn('Could not send a request to a Shelly device.', { deviceId: d.id, prefix: d.prefix, method, error: String(error) });
    });
  }

  /** Asks every device for its status now and then, so the hub sees signal and battery as series. */
  async #poll(signal: AbortSignal): Promise<void> {
    const everyMs = (this.#options.pollSeconds ?? 300) * 1000;
    for (;;) {
      try {
        await this.#clock.sleep(everyMs, signal);
      } catch {
        return;
      }
      for (const d of this.#devices.values()) if (d.online !== false) this.#request(d, 'Shelly.GetStatus', null);
    }
  }
}

function newDevice(prefix: string): ShellyDevice {
  return {
    prefix, id: null, online: null, toldOnline: null, info: null, stableVersion: null, rssi: null, battery: null, told: null, job: null, ended: null,
  };
}

/** The same version: the same text, or the same by the core's version rules (1.6 = 1.6.0). */
function sameVersion(a: string, b: string): boolean {
  if (a === b) return true;
  const r = tryCompareVersions(a, b);
  return r.ok && r.order === 0;
}

function clampPercent(value: number): number {
  return Math.min(100, Math.max(0, value));
}
