/**
 * The Tasmota bridge: Firmward's device protocol for devices running Tasmota, spoken over
 * Tasmota's own MQTT topics (/work/shared/reference/ecosystems.md, section 3). It never decides
 * whether to update — the hub does; it reports what the devices say, turns the hub's commands into
 * `OtaUrl` + `Upgrade 1`, and synthesises the ack / progress / result events the engine expects.
 *
 * Images always come from the maker's signed repository through the hub (`offer.image.url`), so
 * `releases()` is empty: Tasmota itself vouches for nothing here.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { DeliveryQueue, connectBroker, offerMisfit, parseJson } from '@firmward/bridge-common';
import type { BrokerOptions } from '@firmward/bridge-common';
import { FirmwardError, tryCompareVersions } from '@firmward/core';
import type { EpochMs, PowerSource, Release } from '@firmward/core';
import { consoleLogger } from '@firmward/ports';
import type { Bridge, BridgeHandler, Clock, DiscoveredDevice, Logger } from '@firmward/ports';
import { MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, commandSchema } from '@firmward/protocol';
import type { CancelCommand, DeviceCode, DeviceReason, DeviceState, InstallCommand, OfferCommand, OwnDeviceEvent, OwnResultEvent, ResultEvent } from '@firmward/protocol';
import {
  DEFAULT_DISCOVERY_PREFIX, DEFAULT_FULL_TOPIC, DEFAULT_PREFIXES, MAX_OTA_URL_LENGTH, commandReplySchema, discoveryConfigSchema,
  isIntermediateImage, parseTasmotaTopic, parseTasmotaVersion, readUpgradeReply, signalDbm, statusReplySchema, telemetrySchema,
} from './messages.ts';
import type { CommandReply, DiscoveryConfig, StatusReply, TasmotaPrefixes, TasmotaVersion, Telemetry } from './messages.ts';

/** Device ids of this bridge are `tasmota-<Tasmota topic>`. */
export const TASMOTA_ID_PREFIX = 'tasmota-';
export const TASMOTA_VENDOR = 'tasmota';
/**
 * Not applicable: the device's own OTA checks space. Tasmota refuses an image that does not fit
 * (or falls back to its minimal image first), so the hub's storage rule has nothing to check here;
 * a large number lets that rule pass without pretending to a measurement.
 */
export const NOT_APPLICABLE_FREE_STORAGE_BYTES = 2 ** 40;

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface TasmotaBridgeOptions extends BrokerOptions {
  /** The broker the Tasmota devices use, e.g. mqtt://192.168.1.2:1883. */
  url: string;
  /** Stamps the `at` of everything handed to the hub. */
  clock: Clock;
  logger?: Logger;
  /** A fresh "firmward-tasmota-<uuid>" by default. */
  clientId?: string;
  /** Tasmota's Prefix1..3 when changed from cmnd / stat / tele. */
  prefixes?: TasmotaPrefixes;
  /** Where Tasmota's discovery messages are; "tasmota/discovery" by default. */
  discoveryPrefix?: string;
}

/**
 * Where the bridge is in one update. Tasmota downloads and writes in one step (`Upgrade 1`), so
 * "downloaded" is reported at once and the device is first touched on the hub's install go-ahead.
 */
type Step =
  /** Accepted; nothing sent to the device yet. */
  | 'downloaded'
  /** `OtaUrl <url>` sent, waiting for the device to echo it; `Upgrade 1` follows only then. */
  | 'url-sent'
  /** `Upgrade 1` sent, waiting for Tasmota's "Version … from …". */
  | 'upgrade-sent'
  | 'installing'
  | 'rebooting';

interface UpdateJob {
  offer: OfferCommand;
  fromVersion: string;
  step: Step;
  /** The device came back after dropping off: the version in its next status decides the result. */
  awaitingVersion: boolean;
}

interface TasmotaDevice {
  /** Tasmota's `%topic%`. */
  topic: string;
  id: string;
  online: boolean | null;
  /** The availability last told to the hub. */
  toldOnline: boolean | null;
  statusName: string | null;
  discoveryName: string | null;
  /** The discovery config says it runs on a battery (`bat`). */
  batteryPowered: boolean;
  version: TasmotaVersion | null;
  hardware: string | null;
  batteryPercent: number | null;
  signalDbm: number | null;
  /** What the hub was last told it is (null until the first `Status 0` reply names the version). */
  told: DiscoveredDevice | null;
  job: UpdateJob | null;
  /** The last finished update's result: re-sent when the hub asks about that job again (protocol job-id rules). */
  ended: OwnResultEvent | null;
}

/**
 * @example
 * const bridge = new TasmotaBridge({ url: 'mqtt://192.168.1.2:1883', clock: new SystemClock() });
 * await bridge.start(handler); // devices appear through handler.onDiscovered as "tasmota-<topic>"
 * await bridge.send('tasmota-kitchen', offer);
 */
export class TasmotaBridge implements Bridge {
  readonly name = 'tasmota';
  readonly #options: TasmotaBridgeOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #prefixes: TasmotaPrefixes;
  readonly #discoveryPrefix: string;
  readonly #devices = new Map<string, TasmotaDevice>();
  readonly #deliveries: DeliveryQueue;
  #client: MqttClient | null = null;
  #handler: BridgeHandler | null = null;

  constructor(options: TasmotaBridgeOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#log = options.logger ?? consoleLogger('info', 'tasmota');
    this.#prefixes = options.prefixes ?? DEFAULT_PREFIXES;
    this.#discoveryPrefix = options.discoveryPrefix ?? DEFAULT_DISCOVERY_PREFIX;
    this.#deliveries = new DeliveryQueue(this.#log);
  }

  /** Connects, listens to discovery, LWT, telemetry and replies; resolves once subscribed. Retained LWTs then name every device. */
  async start(handler: BridgeHandler, signal?: AbortSignal): Promise<void> {
    if (this.#client !== null) throw new FirmwardError('conflict', 'The Tasmota bridge is already running.');
    const { url } = this.#options;
    // Retained LWTs and discovery configs arrive again on every reconnect: the bridge catches up.
    const { client, connected } = connectBroker(this.#options, {
      clientId: this.#options.clientId ?? `firmward-tasmota-${randomUUID()}`,
      refusedMessage: "The Tasmota MQTT broker refused the bridge's login; check its user name and password.",
      unreachableMessage: `The Tasmota bridge could not reach its MQTT broker at ${url}.`,
    }, signal);
    this.#client = client;
    this.#handler = handler;
    client.on('message', (topic, payload) => this.#receive(topic, payload));
    client.on('error', (error) => this.#log.warn('Tasmota MQTT connection error.', { url, error: error.message }));
    client.on('offline', () => this.#log.warn('Lost the connection to the Tasmota MQTT broker; reconnecting.', { url }));
    try {
      await connected;
      const { telemetry, status } = this.#prefixes;
      await client.subscribeAsync([`${this.#discoveryPrefix}/+/config`, `${telemetry}/+/LWT`, `${telemetry}/+/STATE`, `${status}/+/+`], { qos: 1 });
      this.#log.info('Listening to Tasmota devices.', { url });
    } catch (error) {
      this.#client = null;
      this.#handler = null;
      await client.endAsync(true);
      throw error;
    }
  }

  /** Disconnects and waits until everything already received has reached the hub. */
  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.endAsync();
    await this.#deliveries.drain();
    this.#handler = null;
  }

  owns(deviceId: string): boolean {
    return deviceId.startsWith(TASMOTA_ID_PREFIX);
  }

  /** Tasmota vouches for no image here: every image comes from the maker's signed repository. */
  releases(): Release[] {
    return [];
  }

  /**
   * Takes one command from the hub. Idempotent by job id: a repeated offer or install is answered
   * again and starts nothing new. Resolves once the bridge has acted; its answers reach the hub's
   * handler afterwards (never while the hub waits here).
   */
  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    const parsed = commandSchema.safeParse(command);
    if (!parsed.success) return Promise.reject(new FirmwardError('invalid_input', `The command for ${deviceId} is malformed, so it was not sent.`));
    if (this.#client === null) return Promise.reject(new FirmwardError('gateway_failure', `The Tasmota bridge is not running, so it could not pass the command to ${deviceId}; it will try again.`));
    const device = [...this.#devices.values()].find((d) => d.id === deviceId);
    if (!device?.told) {
      return Promise.reject(new FirmwardError('not_found', `The Tasmota bridge has not heard from ${deviceId} yet; the hub will try again.`, { detail: { deviceId } }));
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

  #offer(d: TasmotaDevice, offer: OfferCommand, at: EpochMs): void {
    const job = d.job;
    if (job?.offer.jobId === offer.jobId) {
      // Offer twice: answer again and say where it is; nothing restarts.
      this.#ack(d, offer.jobId, null, at);
      this.#progress(d, offer.jobId, this.#phase(job.step), job.step === 'downloaded' || job.step === 'url-sent' ? 100 : null, at);
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
    if (offer.image.url.length > MAX_OTA_URL_LENGTH) {
      return this.#ack(d, offer.jobId, {
        code: 'image_url_too_long',
        message: `The firmware address is longer than the ${MAX_OTA_URL_LENGTH} characters Tasmota accepts, so the device could not fetch it; give the hub a shorter address.`,
      }, at);
    }
    d.job = { offer, fromVersion: told.firmwareVersion, step: 'downloaded', awaitingVersion: false };
    this.#ack(d, offer.jobId, null, at);
    // Tasmota downloads while it installs, so there is nothing to fetch first: the hub's second
    // preflight check (at "downloaded") then runs right before the device is touched at all.
    this.#progress(d, offer.jobId, 'downloaded', 100, at);
    this.#report(d, at);
  }

  #install(d: TasmotaDevice, install: InstallCommand, at: EpochMs): void {
    const job = d.job;
    if (job?.offer.jobId !== install.jobId) {
      if (d.ended?.jobId === install.jobId) {
        this.#ack(d, install.jobId, null, at);
        this.#event(d, d.ended, at);
        return;
      }
      return this.#ack(d, install.jobId, { code: 'unknown_job', message: `It has no update ${install.jobId} to install.` }, at);
    }
    if (job.step === 'downloaded' || job.step === 'url-sent') {
      if (d.online !== true) {
        // A command to an offline Tasmota is lost (cmnd is not retained). The state keeps saying
        // "downloaded", so the hub sends the go-ahead again once the device is back.
        this.#log.info('Install go-ahead for an offline device; waiting for it to come back.', { deviceId: d.id, jobId: job.offer.jobId });
        return;
      }
      // `Upgrade 1` fetches from whatever OtaUrl is set: it is sent only after the device has
      // echoed the hub's address (#commandReply), never before, so no other image can be flashed.
      // Setting the address again is harmless, so a repeated go-ahead repeats it.
      this.#publish(d, 'OtaUrl', job.offer.image.url);
      job.step = 'url-sent';
    }
    this.#ack(d, install.jobId, null, at);
  }

  #cancel(d: TasmotaDevice, cancel: CancelCommand, at: EpochMs): void {
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
    // A repeated cancel, or one for a job it never had: nothing left to stop.
    this.#ack(d, cancel.jobId, null, at);
  }

  // ── messages from Tasmota ─────────────────────────────────────────────────────────────────

  #receive(topic: string, payload: Buffer): void {
    if (this.#handler === null) return;
    const at = this.#clock.now();
    const parsed = parseTasmotaTopic(topic, this.#prefixes, this.#discoveryPrefix);
    if (parsed === null) return;
    if (parsed.kind === 'discovery') {
      const config = parseJson(discoveryConfigSchema, payload, MAX_PAYLOAD_BYTES);
      if (!config.ok) return this.#reject(null, topic, `discovery: ${config.error}`, at);
      return this.#discovery(config.value, topic, at);
    }
    const d = this.#device(parsed.topic);
    if (d === null) return this.#reject(null, topic, `"${parsed.topic}" does not make a valid device id`, at);
    switch (parsed.kind) {
      case 'lwt': {
        const text = payload.byteLength <= 64 ? payload.toString('utf8').trim() : '';
        // Section 3.2: the build defaults MQTT_LWT_ONLINE / MQTT_LWT_OFFLINE.
        if (text === 'Online') return this.#setOnline(d, true, at);
        if (text === 'Offline') return this.#setOnline(d, false, at);
        return this.#reject(d.told ? d.id : null, topic, 'LWT: payload is neither "Online" nor "Offline"', at);
      }
      case 'telemetry': {
        const state = parseJson(telemetrySchema, payload, MAX_PAYLOAD_BYTES);
        if (!state.ok) return this.#reject(d.told ? d.id : null, topic, `STATE: ${state.error}`, at);
        this.#telemetry(d, state.value);
        // A first battery reading makes it a battery device.
        this.#discover(d, at);
        return this.#report(d, at);
      }
      case 'reply': {
        if (parsed.command.startsWith('STATUS')) {
          const status = parseJson(statusReplySchema, payload, MAX_PAYLOAD_BYTES);
          if (!status.ok) return this.#reject(d.told ? d.id : null, topic, `${parsed.command}: ${status.error}`, at);
          return this.#status(d, status.value, topic, at);
        }
        const reply = parseJson(commandReplySchema, payload, MAX_PAYLOAD_BYTES);
        if (!reply.ok) return this.#reject(d.told ? d.id : null, topic, `${parsed.command}: ${reply.error}`, at);
        return this.#commandReply(d, reply.value, at);
      }
    }
  }

  #discovery(config: DiscoveryConfig, topic: string, at: EpochMs): void {
    // The bridge builds topics as `<prefix>/<topic>/<command>`; a device with another FullTopic or
    // other prefixes would never hear it, so it is refused rather than half-served.
    const prefixes = [this.#prefixes.command, this.#prefixes.status, this.#prefixes.telemetry];
    if ((config.ft !== undefined && config.ft !== DEFAULT_FULL_TOPIC) || (config.tp !== undefined && config.tp.join('|') !== prefixes.join('|'))) {
      return this.#reject(null, topic, `discovery: device "${config.t}" uses FullTopic "${config.ft ?? ''}" with prefixes ${JSON.stringify(config.tp ?? [])}; the bridge supports "${DEFAULT_FULL_TOPIC}" with ${JSON.stringify(prefixes)} only`, at);
    }
    const d = this.#device(config.t);
    if (d === null) return this.#reject(null, topic, `discovery: "${config.t}" does not make a valid device id`, at);
    d.discoveryName = config.dn ?? config.hn ?? null;
    d.batteryPowered = config.bat === true || config.bat === 1;
    // The retained LWT "Online" is what asks the device for its status (#setOnline): every Tasmota
    // publishes one, so asking here as well would only double the traffic.
    this.#discover(d, at);
    this.#report(d, at);
  }

  #setOnline(d: TasmotaDevice, online: boolean, at: EpochMs): void {
    d.online = online;
    this.#tellAvailability(d, at);
    const job = d.job;
    if (online) {
      if (job?.step === 'rebooting') job.awaitingVersion = true;
      // Every (re)connect: ask what runs now (identity, version, signal).
      this.#publish(d, 'STATUS', '0');
      return;
    }
    if (job && (job.step === 'upgrade-sent' || job.step === 'installing')) {
      // Dropping off after `Upgrade 1` is the restart (or a power cut): either way what runs after it decides.
      job.step = 'rebooting';
      this.#progress(d, job.offer.jobId, 'rebooting', null, at);
    }
  }

  #telemetry(d: TasmotaDevice, state: Telemetry): void {
    if (state.BatteryPercentage !== undefined) d.batteryPercent = state.BatteryPercentage;
    if (state.Wifi !== undefined) d.signalDbm = signalDbm(state.Wifi);
  }

  #status(d: TasmotaDevice, reply: StatusReply, topic: string, at: EpochMs): void {
    if (reply.StatusSTS) this.#telemetry(d, reply.StatusSTS);
    if (reply.Status) d.statusName = reply.Status.DeviceName ?? reply.Status.FriendlyName?.find((n) => n !== null) ?? d.statusName;
    if (reply.StatusFWR) {
      const version = parseTasmotaVersion(reply.StatusFWR.Version);
      if (version === null) return this.#reject(d.told ? d.id : null, topic, `StatusFWR.Version: cannot read "${reply.StatusFWR.Version}"`, at);
      if (isIntermediateImage(version.image)) {
        // On its way through the minimal / safeboot image: it restarts again into the real one.
        if (d.job) d.job.awaitingVersion = false;
        this.#log.info('The device runs an intermediate image during its update; waiting for the next restart.', { deviceId: d.id, image: version.image });
        return;
      }
      d.version = version;
      d.hardware = reply.StatusFWR.Hardware?.trim() || d.hardware;
      // The hub learns the new version before the result: the state sent with the result must not still carry the old one.
      this.#discover(d, at);
      if (d.job?.awaitingVersion && d.online === true) this.#conclude(d, d.job, at);
    }
    this.#discover(d, at);
    this.#report(d, at);
  }

  #commandReply(d: TasmotaDevice, reply: CommandReply, at: EpochMs): void {
    const job = d.job;
    if (reply.OtaUrl !== undefined && job?.step === 'url-sent') {
      if (reply.OtaUrl !== job.offer.image.url) {
        this.#log.debug('OtaUrl reply with another address; waiting for ours.', { deviceId: d.id, otaUrl: reply.OtaUrl });
      } else {
        this.#publish(d, 'Upgrade', '1');
        job.step = 'upgrade-sent';
        this.#report(d, at);
      }
    }
    if (reply.Upgrade === undefined) return;
    if (!job || job.step === 'downloaded' || job.step === 'url-sent') {
      this.#log.info('Tasmota reports an upgrade the bridge did not start.', { deviceId: d.id, upgrade: reply.Upgrade });
      return;
    }
    const upgrade = readUpgradeReply(reply.Upgrade);
    const name = d.told?.name ?? d.id;
    switch (upgrade.kind) {
      case 'started':
        if (job.step === 'upgrade-sent') {
          job.step = 'installing';
          // Tasmota publishes no download progress over MQTT (section 3.3): percent unknown.
          this.#progress(d, job.offer.jobId, 'installing', null, at);
          this.#report(d, at);
        }
        return;
      case 'refused':
        return this.#end(d, job, 'failed', 'upgrade_refused', `Tasmota refused to start the update (${upgrade.detail}); nothing was changed.`, at);
      case 'written':
        if (job.step !== 'rebooting') {
          job.step = 'rebooting';
          this.#progress(d, job.offer.jobId, 'rebooting', null, at);
          this.#report(d, at);
        }
        return;
      case 'failed':
        return this.#end(d, job, 'failed', 'upgrade_failed', `Tasmota could not install the update (${upgrade.detail || 'no reason given'}); ${name} still runs ${job.fromVersion}.`, at);
      case 'other':
        this.#log.debug('Unrecognised Upgrade reply.', { deviceId: d.id, upgrade: upgrade.detail });
        return;
    }
  }

  /** Confirmation: what the device runs after its restart (Status 2), compared by number with the target. */
  #conclude(d: TasmotaDevice, job: UpdateJob, at: EpochMs): void {
    const running = d.version!.version;
    const name = d.told?.name ?? d.id;
    if (sameVersion(running, job.offer.version)) return this.#end(d, job, 'installed', null, null, at);
    if (sameVersion(running, job.fromVersion)) {
      return this.#end(d, job, 'failed', 'version_unchanged', `${name} restarted but still runs ${running}; the update did not take, and nothing else changed.`, at);
    }
    this.#end(d, job, 'failed', 'unexpected_version', `${name} restarted running ${running}, not ${job.offer.version}.`, at);
  }

  #end(d: TasmotaDevice, job: UpdateJob, outcome: ResultEvent['outcome'], code: DeviceCode | null, message: string | null, at: EpochMs): void {
    const result: OwnResultEvent = {
      v: PROTOCOL_VERSION, type: 'result', jobId: job.offer.jobId, outcome,
      firmwareVersion: d.version?.version ?? job.fromVersion, healthy: d.online === true, code, message,
    };
    d.job = null;
    d.ended = result;
    this.#event(d, result, at);
    this.#report(d, at);
  }

  // ── telling the hub ───────────────────────────────────────────────────────────────────────

  /** Tells the hub what the device is, once the version and build are known and whenever they change. */
  #discover(d: TasmotaDevice, at: EpochMs): void {
    if (d.version === null) return;
    const model = d.version.image ?? TASMOTA_VENDOR;
    const powerSource: PowerSource = d.batteryPowered || d.batteryPercent !== null ? 'battery' : 'mains';
    const found: DiscoveredDevice = {
      id: d.id,
      name: d.statusName ?? d.discoveryName ?? d.topic,
      vendor: TASMOTA_VENDOR,
      // The image Tasmota runs is chosen by build variant and chip, not by module (a module is a
      // pin template): the build is the model, the chip the hardware revision.
      model,
      hardwareRevision: (d.hardware ?? model).slice(0, 64),
      firmwareVersion: d.version.version,
      powerSource,
    };
    if (d.told && JSON.stringify(d.told) === JSON.stringify(found)) return;
    d.told = found;
    const handler = this.#handler!;
    this.#deliveries.push(d.id, () => handler.onDiscovered(found, at));
    this.#tellAvailability(d, at);
  }

  /** Tells the hub a change of availability, once it knows the device. */
  #tellAvailability(d: TasmotaDevice, at: EpochMs): void {
    const online = d.online;
    if (d.told === null || online === null || d.toldOnline === online) return;
    d.toldOnline = online;
    const handler = this.#handler!;
    this.#deliveries.push(d.id, () => handler.onAvailability(d.id, online, at));
  }

  /** The device's state in our protocol; only while it is online (any state report means "online" to the hub). */
  #report(d: TasmotaDevice, at: EpochMs): void {
    const told = d.told;
    if (told === null || d.online !== true) return;
    const state: DeviceState = {
      v: PROTOCOL_VERSION, vendor: told.vendor, model: told.model, hardwareRevision: told.hardwareRevision, firmwareVersion: told.firmwareVersion,
      // Tasmota has no A/B slots the bridge can see.
      activeSlot: 'a',
      powerSource: told.powerSource, batteryPercent: d.batteryPercent,
      // Tasmota does not report charging: unknown counts as not charging (the battery rule then needs the charge itself).
      charging: false,
      signalDbm: d.signalDbm,
      // Tasmota does not say whether the device is in use.
      busy: false,
      freeStorageBytes: NOT_APPLICABLE_FREE_STORAGE_BYTES,
      healthy: true,
      job: d.job ? { jobId: d.job.offer.jobId, phase: this.#phase(d.job.step) } : null,
    };
    const handler = this.#handler!;
    this.#deliveries.push(d.id, () => handler.onState(d.id, state, at));
  }

  #phase(step: Step): 'downloaded' | 'installing' | 'rebooting' {
    switch (step) {
      // Until the device echoed the address and got `Upgrade 1`, nothing on it changed; "downloaded"
      // also makes the hub repeat a lost go-ahead (engine: installing + downloaded → install again).
      case 'downloaded':
      case 'url-sent': return 'downloaded';
      case 'upgrade-sent':
      case 'installing': return 'installing';
      case 'rebooting': return 'rebooting';
    }
  }

  #ack(d: TasmotaDevice, jobId: string, refusal: DeviceReason | null, at: EpochMs): void {
    this.#event(d, { v: PROTOCOL_VERSION, type: 'ack', jobId, accepted: refusal === null, code: refusal?.code ?? null, message: refusal?.message ?? null }, at);
  }

  #progress(d: TasmotaDevice, jobId: string, phase: 'downloaded' | 'installing' | 'rebooting', percent: number | null, at: EpochMs): void {
    this.#event(d, { v: PROTOCOL_VERSION, type: 'progress', jobId, phase, percent }, at);
  }

  #event(d: TasmotaDevice, event: OwnDeviceEvent, at: EpochMs): void {
    const handler = this.#handler!;
    this.#deliveries.push(d.id, () => handler.onEvent(d.id, event, at));
  }

  #reject(deviceId: string | null, topic: string, error: string, at: EpochMs): void {
    this.#log.warn('Rejected a Tasmota message; nothing changed.', { deviceId, topic, error });
    const handler = this.#handler!;
    this.#deliveries.push(deviceId ?? '', () => handler.onRejected({ deviceId, topic, error, at }));
  }

  // ── helpers ───────────────────────────────────────────────────────────────────────────────

  #device(topic: string): TasmotaDevice | null {
    const known = this.#devices.get(topic);
    if (known) return known;
    const id = `${TASMOTA_ID_PREFIX}${topic}`;
    if (!DEVICE_ID.test(id)) return null;
    const d: TasmotaDevice = {
      topic, id, online: null, toldOnline: null, statusName: null, discoveryName: null, batteryPowered: false,
      version: null, hardware: null, batteryPercent: null, signalDbm: null, told: null, job: null, ended: null,
    };
    this.#devices.set(topic, d);
    return d;
  }

  #publish(d: TasmotaDevice, command: string, payload: string): void {
    const client = this.#client;
    if (client === null) return;
    const topic = `${this.#prefixes.command}/${d.topic}/${command}`;
    // Never retained: a retained command would run again on every reconnect.
    client.publishAsync(topic, payload, { qos: 1, retain: false }).catch((error: unknown) => {
      this.#log.warn('Could not send a command to a Tasmota device.', { deviceId: d.id, topic, error: String(error) });
    });
  }
}

/** Same version by number (14.2 = 14.2.0); text that cannot be compared counts as different. */
function sameVersion(a: string, b: string): boolean {
  const r = tryCompareVersions(a, b);
  return r.ok && r.order === 0;
}
