/**
 * The Zigbee2MQTT bridge: a DeviceGateway for Zigbee devices that Zigbee2MQTT manages (the Bridge
 * port, packages/ports/src/bridge.ts). It reads Zigbee2MQTT's inventory, telemetry and
 * availability from its MQTT broker and turns them into our state reports; it turns the hub's
 * offer / install / cancel into Zigbee2MQTT's own OTA requests and answers with our ack /
 * progress / result events, so the engine's rules apply unchanged. It never decides whether to
 * update — the hub does — but it refuses to start a second Zigbee update on the same network
 * (defense in depth beside the hub's one-per-home rule: the mesh shares its airtime).
 *
 * Topics and payloads: /work/shared/reference/ecosystems.md §1 (Zigbee2MQTT 2.x). The README of
 * this package says how each Zigbee2MQTT state maps to ours.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { z } from 'zod';
import { connectBroker, readJson, validate } from '@firmward/bridge-common';
import type { BrokerOptions } from '@firmward/bridge-common';
import { FirmwardError } from '@firmward/core';
import type { EpochMs, Release } from '@firmward/core';
import { consoleLogger } from '@firmward/ports';
import type { Bridge, BridgeHandler, Clock, DiscoveredDevice, Logger } from '@firmward/ports';
import { PROTOCOL_VERSION, cancelCommandSchema, deviceStateSchema as ourStateSchema, installCommandSchema, offerCommandSchema } from '@firmward/protocol';
import type { CancelCommand, DeviceReason, DeviceState, InstallCommand, OfferCommand, OwnDeviceEvent, OwnResultEvent } from '@firmward/protocol';
import {
  deviceState, discoveredDevice, fileVersionOf, identityOf, parseFileVersion, versionText, zigbee2mqttReleases,
} from './mapping.ts';
import type { Identity, OfferedImage, Telemetry } from './mapping.ts';
import {
  RESPONSE_TOPIC, TOPICS, checkDataSchema, deviceEntrySchema, deviceStateSchema, parseOnline,
  responseSchema, saysAlreadyInProgress, saysDeviceDidNotRespond, updateDataSchema,
} from './messages.ts';
import type { DeviceEntry, OtaRequest, OtaRequestKind } from './messages.ts';

export interface Zigbee2MqttBridgeOptions extends BrokerOptions {
  /** Zigbee2MQTT's broker, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  /** Zigbee2MQTT's `mqtt.base_topic`; "zigbee2mqtt" by default. */
  baseTopic?: string;
  /** Our device ids are "<idPrefix>-<ieee address>"; "z2m" by default. Give each Zigbee2MQTT instance its own. */
  idPrefix?: string;
  /** Stamps the `at` of everything handed to the hub, and times unanswered checks. */
  clock: Clock;
  logger?: Logger;
  /** A fresh "firmward-z2m-<uuid>" by default. */
  clientId?: string;
  /**
   * A check Zigbee2MQTT has not answered after this long is sent again when the hub re-sends its
   * offer (Zigbee2MQTT may have restarted and forgotten it). 120 s by default: Zigbee2MQTT waits
   * up to 60 s for a device itself.
   */
  checkRetrySeconds?: number;
  /** `bridge/devices` carries every device's exposes; large networks publish megabytes. 16 MiB by default. */
  maxDevicesPayloadBytes?: number;
  /** Any other message. 256 KiB by default. */
  maxMessageBytes?: number;
}

/** Where our side of one update stands on Zigbee2MQTT. */
type Phase =
  | 'checking'    // offer received; Zigbee2MQTT is asked whether it still offers exactly this image
  | 'downloaded'  // accepted; Zigbee OTA downloads and writes in one step, so there is nothing to fetch first
  | 'installing'  // the update request is out; Zigbee2MQTT sends the image block by block
  | 'scheduling'  // the device did not answer: asking Zigbee2MQTT to update it when it next wakes
  | 'scheduled'   // armed for the device's next wake-up
  | 'rebooting';  // Zigbee2MQTT says the transfer ended; waiting for the device to report the new version

const INSTALL_PHASES: readonly Phase[] = ['installing', 'scheduling', 'scheduled', 'rebooting'];

interface Work {
  jobId: string;
  deviceId: string;
  target: number;
  from: number | null;
  phase: Phase;
  percent: number | null;
  /** The request Zigbee2MQTT has not answered yet. */
  transaction: string | null;
  sentAt: EpochMs;
  /** The device or Zigbee2MQTT went away while the image was being sent. */
  interrupted: 'device' | 'zigbee2mqtt' | null;
}

type Ended = { jobId: string; result: OwnResultEvent } | { jobId: string; cancelled: true };

interface Known {
  id: string;
  entry: DeviceEntry;
  identity: Identity;
}

interface PendingRequest {
  transaction: string;
  deviceId: string;
  jobId: string;
  kind: OtaRequestKind;
}

type CheckAnswer = { available: boolean } | { error: string };
type UpdateAnswer = { toVersion: number | null } | { error: string };

type Refusal = DeviceReason;

/** The hub only offers what releases() returned; the image itself is fetched by Zigbee2MQTT from its own index. */
const bridgeOfferSchema = offerCommandSchema.extend({ image: z.unknown() });

/** Kept per device for re-sent commands (idempotent by job id, invariant 8). */
const ENDED_KEPT = 8;
/** Telemetry and availability of names not (yet) in the inventory: groups, or devices listed later. */
const MAX_UNLISTED_NAMES = 4096;
const MAX_MESSAGE_CHARS = 500;

const ASLEEP = 'The device is asleep; press a button on it to wake it, then try again.';

/**
 * @example
 * const bridge = new Zigbee2MqttBridge({ url: 'mqtt://192.168.1.5:1883', clock: new SystemClock() });
 * await bridge.start(handler);            // handler.onDiscovered('z2m-0x00158d0001a2b3c4', …) follows
 * await bridge.send('z2m-0x00158d0001a2b3c4', offer);
 */
export class Zigbee2MqttBridge implements Bridge {
  readonly name = 'zigbee2mqtt';
  readonly #options: Zigbee2MqttBridgeOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #base: string;
  readonly #prefix: string;
  #client: MqttClient | null = null;
  #handler: BridgeHandler | null = null;
  /** Calls to the hub, one at a time and in order; commands never wait for them (the hub may call send() from inside its handler). */
  #delivery: Promise<void> = Promise.resolve();

  #inventoryLoaded = false;
  /** deviceId → what `bridge/devices` says. */
  #devices = new Map<string, Known>();
  /** friendly name → deviceId */
  #idByName = new Map<string, string>();
  /** deviceId → what the hub was last told in onDiscovered. */
  readonly #announced = new Map<string, string>();
  /** friendly name → the latest telemetry (keyed by name: that is how Zigbee2MQTT addresses it). */
  readonly #telemetry = new Map<string, Telemetry>();
  /** friendly name → the device's own availability; absent when Zigbee2MQTT does not track it. */
  readonly #availability = new Map<string, boolean>();
  /** Zigbee2MQTT's own state (`bridge/state`); null until heard. */
  #bridgeOnline: boolean | null = null;
  /** deviceId → the update this bridge works on for it. */
  readonly #work = new Map<string, Work>();
  /** deviceId → the last updates that ended, newest last. */
  readonly #ended = new Map<string, Ended[]>();
  /** transaction → the request it answers. */
  readonly #transactions = new Map<string, PendingRequest>();
  /** Every image Zigbee2MQTT offered since start, by release id (a release does not vanish once one device installed it). */
  readonly #offered = new Map<string, OfferedImage>();

  constructor(options: Zigbee2MqttBridgeOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#log = options.logger ?? consoleLogger('info', 'zigbee2mqtt');
    this.#base = options.baseTopic ?? 'zigbee2mqtt';
    this.#prefix = options.idPrefix ?? 'z2m';
  }

  /** Connects and subscribes to everything under the base topic; resolves once subscribed. Retained inventory and availability follow. */
  async start(handler: BridgeHandler, signal?: AbortSignal): Promise<void> {
    if (this.#client !== null) throw new FirmwardError('conflict', 'The Zigbee2MQTT bridge is already running.');
    const { url } = this.#options;
    // Retained inventory and availability come again on every reconnect: the bridge catches up.
    const { client, connected } = connectBroker(this.#options, {
      clientId: this.#options.clientId ?? `firmward-z2m-${randomUUID()}`,
      refusedMessage: "Zigbee2MQTT's MQTT broker refused Firmward's login; check the bridge's MQTT user name and password.",
      unreachableMessage: `Firmward could not reach Zigbee2MQTT's MQTT broker at ${url}.`,
    }, signal);
    this.#client = client;
    this.#handler = handler;
    client.on('message', (topic, payload) => this.#receive(topic, payload));
    client.on('error', (error: Error & { code?: unknown }) => {
      if (typeof error.code === 'number') this.#log.error("Zigbee2MQTT's MQTT broker refused the bridge's login; Zigbee devices are not heard until it is fixed.", { url, error: error.message });
      else this.#log.warn("Connection error with Zigbee2MQTT's MQTT broker.", { url, error: error.message });
    });
    client.on('offline', () => this.#log.warn("Lost the connection to Zigbee2MQTT's MQTT broker; reconnecting.", { url }));
    client.on('connect', () => this.#log.info("Connected to Zigbee2MQTT's MQTT broker.", { url }));
    try {
      await connected;
      // Everything under the base topic: friendly names may contain "/", so `<base>/+` would miss some.
      await client.subscribeAsync(`${this.#base}/#`, { qos: 1 }).catch((cause: unknown) => {
        throw new FirmwardError('forbidden', `The MQTT broker did not let Firmward listen to ${this.#base}/#; check the bridge user's permissions.`, { cause });
      });
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
    await this.#delivery;
    this.#handler = null;
  }

  owns(deviceId: string): boolean {
    return deviceId.startsWith(`${this.#prefix}-`);
  }

  releases(): Release[] {
    return zigbee2mqttReleases([...this.#offered.values()]);
  }

  /**
   * Translates one command into Zigbee2MQTT's OTA API. Idempotent by job id: a re-sent command is
   * answered again and never starts anything twice. Throws `gateway_failure` when the command
   * cannot be handled now (not connected, inventory not heard yet); the hub sends it again.
   */
  async send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    if (!this.owns(deviceId)) throw new FirmwardError('invalid_input', `${deviceId} is not a Zigbee2MQTT device of this bridge.`, { detail: { deviceId } });
    const client = this.#client;
    if (client === null || !client.connected) {
      throw new FirmwardError('gateway_failure', `Firmward is not connected to Zigbee2MQTT's MQTT broker, so it could not send the command to ${deviceId}; it will try again.`);
    }
    if (!this.#inventoryLoaded) {
      throw new FirmwardError('gateway_failure', `Zigbee2MQTT has not listed its devices yet, so the command to ${deviceId} waits; it will be sent again.`);
    }
    const at = this.#clock.now();
    switch (command.type) {
      case 'offer': return this.#offer(deviceId, checked(bridgeOfferSchema, command, deviceId), at);
      case 'install': return this.#install(deviceId, checked(installCommandSchema, command, deviceId), at);
      case 'cancel': return this.#cancel(deviceId, checked(cancelCommandSchema, command, deviceId), at);
    }
  }

  // ── commands ──────────────────────────────────────────────────────────────────────────────

  async #offer(deviceId: string, offer: z.infer<typeof bridgeOfferSchema>, at: EpochMs): Promise<void> {
    if (this.#answerEnded(deviceId, offer.jobId, 'offer', at)) return;
    const current = this.#work.get(deviceId);
    if (current && current.jobId === offer.jobId) {
      if (current.phase === 'checking') {
        // The answer is on its way, unless Zigbee2MQTT lost the request (restart): then ask again.
        if (at - current.sentAt >= (this.#options.checkRetrySeconds ?? 120) * 1000) await this.#request(current, 'check', at);
        return;
      }
      this.#ack(deviceId, offer.jobId, null, at);
      this.#reportPhase(current, at);
      return;
    }
    if (current && INSTALL_PHASES.includes(current.phase)) {
      const name = this.#devices.get(deviceId)?.entry.friendly_name ?? deviceId;
      this.#ack(deviceId, offer.jobId, { code: 'update_in_progress', message: `${name} is already installing another update; it cannot take a new one until that is done.` }, at);
      return;
    }
    const known = this.#devices.get(deviceId);
    const target = parseFileVersion(offer.version);
    const refusal = this.#offerRefusal(known, offer, target);
    if (refusal || !known || target === null) {
      this.#log.info('Refused an offer.', { deviceId, jobId: offer.jobId, code: refusal?.code });
      this.#ack(deviceId, offer.jobId, refusal ?? { code: 'incompatible', message: 'This update does not apply to the device.' }, at);
      return;
    }
    if (current) {
      // The hub moved on to another job before the install step; nothing ran on the device for the old one.
      this.#drop(current);
      this.#remember(deviceId, { jobId: current.jobId, cancelled: true });
    }
    const work: Work = {
      jobId: offer.jobId, deviceId, target, from: fileVersionOf(this.#telemetryOf(known)?.update?.installed_version),
      phase: 'checking', percent: null, transaction: null, sentAt: at, interrupted: null,
    };
    this.#work.set(deviceId, work);
    try {
      // Zigbee2MQTT's check reads the device's running version and its OTA index again, and
      // publishes the device's `update` state before it answers (otaUpdate.ts): the answer decides.
      await this.#request(work, 'check', at);
    } catch (error) {
      if (this.#work.get(deviceId) === work) this.#work.delete(deviceId);
      throw error;
    }
  }

  #offerRefusal(known: Known | undefined, offer: z.infer<typeof bridgeOfferSchema>, target: number | null): Refusal | null {
    if (!known) return { code: 'incompatible', message: 'Zigbee2MQTT no longer lists this device; it may have left the Zigbee network.' };
    const { identity, entry } = known;
    if (entry.definition?.supports_ota === false) return { code: 'incompatible', message: 'Zigbee2MQTT cannot update this device over the air.' };
    // Invariant 2, checked again on this side: identity comes from Zigbee2MQTT's inventory, not from the offer.
    if (offer.vendor !== identity.vendor || offer.model !== identity.model || !offer.hardwareRevisions.includes(identity.hardwareRevision)) {
      return { code: 'incompatible', message: clip(`This update is for ${offer.vendor} ${offer.model}, not for this device (${identity.vendor} ${identity.model}).`) };
    }
    if (target === null) return { code: 'incompatible', message: clip(`"${offer.version}" is not a Zigbee firmware file version, so Zigbee2MQTT cannot install it.`) };
    const installed = fileVersionOf(this.#telemetryOf(known)?.update?.installed_version);
    // Invariant 5: never downgrade.
    if (installed !== null && installed >= target) return { code: 'downgrade', message: `The device already runs ${versionText(installed)}, which is not older than ${versionText(target)}.` };
    return this.#networkBusy(known.id);
  }

  async #install(deviceId: string, command: InstallCommand, at: EpochMs): Promise<void> {
    if (this.#answerEnded(deviceId, command.jobId, 'install', at)) return;
    const work = this.#work.get(deviceId);
    if (!work || work.jobId !== command.jobId) {
      this.#ack(deviceId, command.jobId, { code: 'unknown_job', message: 'The bridge has no checked update with this id for the device.' }, at);
      return;
    }
    switch (work.phase) {
      case 'checking':
        this.#ack(deviceId, command.jobId, { code: 'not_downloaded', message: 'Zigbee2MQTT is still checking that the update is available; it cannot be installed yet.' }, at);
        return;
      case 'downloaded': {
        // One Zigbee update at a time per network, checked again right before the install step.
        const busy = this.#networkBusy(deviceId);
        if (busy) {
          this.#ack(deviceId, command.jobId, busy, at);
          this.#reportPhase(work, at);
          return;
        }
        work.phase = 'installing';
        work.percent = null;
        // Answered before the request goes out, so the hub hears "installing" before any progress.
        this.#ack(deviceId, command.jobId, null, at);
        this.#progress(deviceId, work.jobId, 'installing', null, at);
        this.#reportState(deviceId, at);
        try {
          await this.#request(work, 'update', at);
        } catch (error) {
          // Nothing reached Zigbee2MQTT: back to waiting for the go-ahead, which the hub re-sends on seeing this state.
          work.phase = 'downloaded';
          this.#reportState(deviceId, at);
          throw error;
        }
        return;
      }
      case 'installing':
      case 'scheduling':
      case 'scheduled':
      case 'rebooting':
        // Already on its way: a repeated go-ahead changes nothing.
        this.#ack(deviceId, command.jobId, null, at);
        this.#reportPhase(work, at);
        return;
    }
  }

  #cancel(deviceId: string, command: CancelCommand, at: EpochMs): Promise<void> {
    const ended = this.#endedFor(deviceId, command.jobId);
    if (ended) {
      this.#ack(deviceId, command.jobId, 'cancelled' in ended ? null : { code: 'cancel_too_late', message: 'This update has already ended on the device; there is nothing left to cancel.' }, at);
      return Promise.resolve();
    }
    const work = this.#work.get(deviceId);
    if (!work || work.jobId !== command.jobId) {
      // Also a repeated cancel: nothing of this job runs, which is what was asked.
      this.#ack(deviceId, command.jobId, null, at);
      return Promise.resolve();
    }
    if (INSTALL_PHASES.includes(work.phase)) {
      // Invariant 6: once Zigbee2MQTT sends the image, stopping could leave the device half-written.
      this.#ack(deviceId, command.jobId, { code: 'cancel_too_late', message: 'The update is already installing; stopping now could break the device, so it goes on.' }, at);
      return Promise.resolve();
    }
    // Before the install step nothing was sent to the device (a check only reads), so there is nothing to undo there.
    this.#drop(work);
    this.#remember(deviceId, { jobId: work.jobId, cancelled: true });
    this.#ack(deviceId, command.jobId, null, at);
    this.#reportState(deviceId, at);
    return Promise.resolve();
  }

  /** A command for a job that already ended is answered with how it ended, never started over. */
  #answerEnded(deviceId: string, jobId: string, kind: 'offer' | 'install', at: EpochMs): boolean {
    const ended = this.#endedFor(deviceId, jobId);
    if (!ended) return false;
    if ('cancelled' in ended) {
      this.#ack(deviceId, jobId, { code: 'job_cancelled', message: 'This update was cancelled; the bridge does not start it again.' }, at);
      return true;
    }
    this.#log.debug(`A ${kind} for an update that already ended; its result is sent again.`, { deviceId, jobId });
    this.#ack(deviceId, jobId, { code: 'job_finished', message: 'This update has already ended on the device; its result is sent again.' }, at);
    this.#event(deviceId, ended.result, at);
    return true;
  }

  /**
   * Why a new Zigbee update may not start now, or null. Zigbee devices share one radio channel:
   * an OTA transfer fills it for many minutes, so a second one would slow both and starve the
   * mesh. Counts our own updates and any Zigbee2MQTT runs or has armed for someone else.
   */
  #networkBusy(deviceId: string): Refusal | null {
    for (const [otherId, work] of this.#work) {
      if (otherId === deviceId || !INSTALL_PHASES.includes(work.phase)) continue;
      const name = this.#devices.get(otherId)?.entry.friendly_name ?? otherId;
      return { code: 'not_now', message: clip(`Another device on this Zigbee network (${name}) is updating; Zigbee devices share the radio, so only one updates at a time.`) };
    }
    for (const known of this.#devices.values()) {
      const state = this.#telemetryOf(known)?.update?.state;
      if (state !== 'updating' && state !== 'scheduled') continue;
      const name = known.entry.friendly_name;
      if (known.id === deviceId) return { code: 'not_now', message: clip(`Zigbee2MQTT is already ${state === 'updating' ? 'updating' : 'set to update'} ${name} by itself; Firmward waits until that is over.`) };
      return { code: 'not_now', message: clip(`Another device on this Zigbee network (${name}) is ${state === 'updating' ? 'updating' : 'waiting to update when it wakes'}; Zigbee devices share the radio, so only one updates at a time.`) };
    }
    return null;
  }

  /** Sends one OTA request with a fresh transaction id; its answer is matched by that id (reference §1.3). */
  async #request(work: Work, kind: OtaRequestKind, at: EpochMs): Promise<void> {
    const known = this.#devices.get(work.deviceId);
    const client = this.#client;
    if (!known || client === null) {
      throw new FirmwardError('gateway_failure', `Firmward could not reach Zigbee2MQTT for ${work.deviceId}; it will try again.`);
    }
    const transaction = `firmward-${randomUUID()}`;
    // Registered before publishing: the answer may arrive before the broker's acknowledgement.
    if (work.transaction !== null) this.#transactions.delete(work.transaction);
    this.#transactions.set(transaction, { transaction, deviceId: work.deviceId, jobId: work.jobId, kind });
    work.transaction = transaction;
    work.sentAt = at;
    const request: OtaRequest = { id: known.entry.ieee_address, transaction };
    try {
      await client.publishAsync(`${this.#base}/${TOPICS.request(kind)}`, JSON.stringify(request), { qos: 1, retain: false });
    } catch (cause) {
      this.#transactions.delete(transaction);
      if (work.transaction === transaction) work.transaction = null;
      throw new FirmwardError('gateway_failure', `Firmward could not send the request for ${known.entry.friendly_name} to Zigbee2MQTT; it will try again.`, { cause });
    }
  }

  // ── what Zigbee2MQTT says ─────────────────────────────────────────────────────────────────

  #receive(topic: string, payload: Buffer): void {
    if (this.#handler === null || !topic.startsWith(`${this.#base}/`)) return;
    const at = this.#clock.now();
    const rest = topic.slice(this.#base.length + 1);
    try {
      if (rest === TOPICS.devices) return this.#onDevices(topic, payload, at);
      if (rest === TOPICS.bridgeState) return this.#onBridgeState(topic, payload, at);
      if (RESPONSE_TOPIC.test(rest)) return this.#onResponse(topic, payload, at);
      // bridge/info, bridge/logging, bridge/event, bridge/request/… : not ours to read.
      if (rest.startsWith('bridge/')) return;
      if (rest.endsWith('/availability')) return this.#onAvailability(rest.slice(0, -'/availability'.length), topic, payload, at);
      // Commands to devices from Home Assistant or people (…/set, …/get): not telemetry.
      if (/\/(?:set|get)(?:\/|$)/.test(rest)) return;
      return this.#onDeviceState(rest, topic, payload, at);
    } catch (error) {
      // Never crash on a message: whatever went wrong, nothing was half-applied to the hub.
      this.#log.error('A Zigbee2MQTT message could not be handled.', { topic, error: describe(error) });
    }
  }

  #onDevices(topic: string, payload: Buffer, at: EpochMs): void {
    const json = readJson(payload, this.#options.maxDevicesPayloadBytes ?? 16 * 1024 * 1024);
    if (!json.ok) return this.#reject(null, topic, `devices: ${json.error}`, at);
    if (!Array.isArray(json.value)) return this.#reject(null, topic, 'devices: payload is not an array', at);
    const listed = new Map<string, Known>();
    for (const [i, raw] of json.value.entries()) {
      const parsed = validate(deviceEntrySchema, raw);
      // One unreadable entry does not hide the others; it is reported and skipped.
      if (!parsed.ok) {
        this.#reject(null, topic, `devices[${i}]: ${parsed.error}`, at);
        continue;
      }
      const entry = parsed.value;
      // The coordinator is Zigbee2MQTT's own radio, not a device to update; a disabled device is one the person set aside.
      if (entry.type === 'Coordinator' || entry.disabled === true) continue;
      const id = `${this.#prefix}-${entry.ieee_address.toLowerCase()}`;
      const identity = identityOf(entry);
      if (!identity) {
        this.#reject(id, topic, `devices[${i}]: neither a definition nor the device's own manufacturer and model`, at);
        continue;
      }
      listed.set(id, { id, entry, identity });
    }
    this.#devices = listed;
    this.#idByName = new Map([...listed.values()].map((k) => [k.entry.friendly_name, k.id]));
    this.#inventoryLoaded = true;
    for (const known of listed.values()) {
      // Telemetry that arrived before the inventory is reported once the device is known.
      if (this.#announce(known, at) && this.#telemetryOf(known)) this.#reportState(known.id, at);
    }
  }

  #onBridgeState(topic: string, payload: Buffer, at: EpochMs): void {
    const parsed = parseOnline(payload);
    if (!parsed.ok) return this.#reject(null, topic, `bridge state: ${parsed.error}`, at);
    const before = new Map([...this.#devices.values()].map((k) => [k.id, this.#isOnline(k.entry.friendly_name)]));
    const wasOnline = this.#bridgeOnline;
    this.#bridgeOnline = parsed.value;
    if (wasOnline === parsed.value) return;
    this.#log[parsed.value ? 'info' : 'warn'](parsed.value ? 'Zigbee2MQTT is online.' : 'Zigbee2MQTT is offline; its devices cannot be reached.');
    for (const known of this.#devices.values()) {
      const online = this.#isOnline(known.entry.friendly_name);
      if (before.get(known.id) !== online) this.#deliver((h) => h.onAvailability(known.id, online, at));
      const work = this.#work.get(known.id);
      if (!work) continue;
      if (!parsed.value && (work.phase === 'installing' || work.phase === 'rebooting')) {
        // Zigbee2MQTT's transfer dies with it; its restart sets the device back from "updating" (otaUpdate.ts start()).
        work.interrupted ??= 'zigbee2mqtt';
      }
      if (parsed.value && work.phase === 'scheduled') {
        // Zigbee2MQTT keeps scheduled updates in memory only: arm it again after its restart.
        this.#requestInBackground(work, 'schedule', at);
      }
    }
  }

  #onAvailability(name: string, topic: string, payload: Buffer, at: EpochMs): void {
    const deviceId = this.#idByName.get(name) ?? null;
    const parsed = parseOnline(payload);
    if (!parsed.ok) return this.#reject(deviceId, topic, `availability: ${parsed.error}`, at);
    if (deviceId === null && !this.#availability.has(name) && this.#availability.size >= MAX_UNLISTED_NAMES) return;
    const before = this.#isOnline(name);
    this.#availability.set(name, parsed.value);
    if (deviceId === null) return;
    const online = this.#isOnline(name);
    if (before !== online) this.#deliver((h) => h.onAvailability(deviceId, online, at));
    const work = this.#work.get(deviceId);
    if (!parsed.value && work && (work.phase === 'installing' || work.phase === 'rebooting')) work.interrupted ??= 'device';
  }

  #onDeviceState(name: string, topic: string, payload: Buffer, at: EpochMs): void {
    const deviceId = this.#idByName.get(name) ?? null;
    const json = readJson(payload, this.#options.maxMessageBytes ?? 256 * 1024);
    if (!json.ok) return this.#reject(deviceId, topic, `state: ${json.error}`, at);
    const parsed = validate(deviceStateSchema, json.value);
    if (!parsed.ok) return this.#reject(deviceId, topic, `state: ${parsed.error}`, at);
    if (deviceId === null && !this.#telemetry.has(name) && this.#telemetry.size >= MAX_UNLISTED_NAMES) return;
    const message = parsed.value;
    const previous = this.#telemetry.get(name) ?? { batteryPercent: null, linkquality: null, update: null };
    // Only the keys present change: Zigbee2MQTT may publish a part of the state.
    const telemetry: Telemetry = {
      batteryPercent: message.battery === undefined ? previous.batteryPercent : message.battery,
      linkquality: message.linkquality === undefined ? previous.linkquality : message.linkquality,
      update: message.update ?? previous.update,
    };
    this.#telemetry.set(name, telemetry);
    const known = deviceId === null ? undefined : this.#devices.get(deviceId);
    if (!known) return;
    this.#rememberOffered(known, telemetry);
    this.#announce(known, at);
    if (!this.#advance(known, at)) this.#reportState(known.id, at);
  }

  /**
   * Moves the device's update on from what its `update` state says. Returns true when it reported
   * the state itself (the update ended).
   */
  #advance(known: Known, at: EpochMs): boolean {
    const work = this.#work.get(known.id);
    if (!work || !INSTALL_PHASES.includes(work.phase)) return false;
    const update = this.#telemetryOf(known)?.update ?? null;
    const installed = fileVersionOf(update?.installed_version);
    // Confirmation: the device runs the target version (Zigbee2MQTT reads it back after the device restarted).
    if (installed === work.target) {
      this.#finishInstalled(work, at);
      return true;
    }
    if (update?.state === 'updating' && work.phase !== 'rebooting') {
      const percent = update.progress ?? null;
      if (work.phase !== 'installing' || percent !== work.percent) {
        work.phase = 'installing';
        work.percent = percent;
        this.#progress(known.id, work.jobId, 'installing', percent, at);
      }
      return false;
    }
    if (work.interrupted !== null && (work.phase === 'installing' || work.phase === 'rebooting') && update !== null && update.state !== 'updating' && installed !== null) {
      const message = work.interrupted === 'device'
        ? `The device went offline during the update and came back still running ${versionText(installed)}; try again once it stays online.`
        : `Zigbee2MQTT restarted during the update; the device still runs ${versionText(installed)}.`;
      this.#finishFailed(work, { code: 'update_interrupted', message }, at);
      return true;
    }
    return false;
  }

  #onResponse(topic: string, payload: Buffer, at: EpochMs): void {
    const json = readJson(payload, this.#options.maxMessageBytes ?? 256 * 1024);
    if (!json.ok) return this.#reject(null, topic, `response: ${json.error}`, at);
    const envelope = validate(responseSchema, json.value);
    if (!envelope.ok) return this.#reject(null, topic, `response: ${envelope.error}`, at);
    const response = envelope.value;
    // Answers to other programs' requests (Zigbee2MQTT's frontend, Home Assistant) share these topics.
    if (response.transaction === undefined) return;
    const pending = this.#transactions.get(response.transaction);
    if (!pending) return;
    const work = this.#work.get(pending.deviceId);
    if (!work || work.jobId !== pending.jobId || work.transaction !== response.transaction) {
      this.#transactions.delete(response.transaction);
      return;
    }
    const known = this.#devices.get(work.deviceId);
    const consume = () => {
      this.#transactions.delete(pending.transaction);
      work.transaction = null;
    };
    const failure = response.status === 'error' ? { error: response.error ?? 'Zigbee2MQTT gave no reason.' } : null;
    switch (pending.kind) {
      case 'check': {
        let answer: CheckAnswer | null = failure;
        if (answer === null) {
          const parsed = validate(checkDataSchema, response.data);
          // A malformed answer changes nothing: the check stays open and the hub's re-sent offer asks again.
          if (!parsed.ok) return this.#reject(work.deviceId, topic, `response: data.${parsed.error}`, at);
          answer = { available: parsed.value.update_available ?? parsed.value.updateAvailable ?? false };
        }
        consume();
        return this.#checked(work, known, answer, at);
      }
      case 'update': {
        let answer: UpdateAnswer | null = failure;
        if (answer === null) {
          const parsed = validate(updateDataSchema, response.data);
          if (!parsed.ok) return this.#reject(work.deviceId, topic, `response: data.${parsed.error}`, at);
          answer = { toVersion: parsed.value.to?.file_version ?? null };
        }
        consume();
        return this.#updated(work, known, answer, at);
      }
      case 'schedule':
        consume();
        return this.#scheduled(work, failure?.error ?? null, at);
    }
  }

  /** Zigbee2MQTT's check answered: accept the offer if it still offers exactly this image. */
  #checked(work: Work, known: Known | undefined, answer: CheckAnswer, at: EpochMs): void {
    const update = known ? this.#telemetryOf(known)?.update : undefined;
    const latest = fileVersionOf(update?.latest_version);
    const installed = fileVersionOf(update?.installed_version);
    const stillOffered = latest === work.target && (installed === null || installed < work.target);
    let refusal: Refusal | null = null;
    if (!known) refusal = { code: 'incompatible', message: 'Zigbee2MQTT no longer lists this device; it may have left the Zigbee network.' };
    else if ('error' in answer) {
      if (saysDeviceDidNotRespond(answer.error)) {
        // A sleeping device cannot be asked now; Zigbee2MQTT's own check from its last wake-up stands.
        if (!stillOffered) refusal = { code: 'not_now', message: ASLEEP };
      } else if (saysAlreadyInProgress(answer.error)) {
        refusal = { code: 'not_now', message: 'Zigbee2MQTT is busy with this device right now; Firmward will try again.' };
      } else {
        refusal = { code: 'incompatible', message: clip(`Zigbee2MQTT cannot update this device: ${answer.error}`) };
      }
    } else if (installed !== null && installed >= work.target) {
      refusal = { code: 'downgrade', message: `The device already runs ${versionText(installed)}, which is not older than ${versionText(work.target)}.` };
    } else if (!answer.available || latest === null) {
      refusal = { code: 'incompatible', message: "Zigbee2MQTT's OTA index has no newer image for this device right now." };
    } else if (latest !== work.target) {
      refusal = { code: 'incompatible', message: `Zigbee2MQTT now offers ${versionText(latest)} for this device, not ${versionText(work.target)}; the hub will plan again.` };
    }
    if (refusal) {
      this.#work.delete(work.deviceId);
      this.#ack(work.deviceId, work.jobId, refusal, at);
      return;
    }
    // Zigbee OTA downloads and writes in one step during the install; there is nothing to fetch first.
    work.phase = 'downloaded';
    work.from = installed ?? work.from;
    this.#ack(work.deviceId, work.jobId, null, at);
    this.#progress(work.deviceId, work.jobId, 'downloaded', 100, at);
    this.#reportState(work.deviceId, at);
  }

  /** Zigbee2MQTT's update answered: sent only after the whole transfer ended (reference §1.3). */
  #updated(work: Work, known: Known | undefined, answer: UpdateAnswer, at: EpochMs): void {
    if ('error' in answer) {
      if (saysDeviceDidNotRespond(answer.error) && work.percent === null && work.interrupted === null && work.phase === 'installing') {
        // A sleeping device never answered the image notify: arm the update for its next wake-up.
        work.phase = 'scheduling';
        this.#progress(work.deviceId, work.jobId, 'installing', null, at);
        this.#requestInBackground(work, 'schedule', at);
        return;
      }
      this.#finishFailed(work, { code: 'update_failed', message: clip(`Zigbee2MQTT could not update the device: ${answer.error}`) }, at);
      return;
    }
    const installed = known ? fileVersionOf(this.#telemetryOf(known)?.update?.installed_version) : null;
    if (installed === work.target || answer.toVersion === work.target) {
      this.#finishInstalled(work, at);
      return;
    }
    if (work.phase !== 'rebooting') {
      work.phase = 'rebooting';
      this.#progress(work.deviceId, work.jobId, 'rebooting', null, at);
      this.#reportState(work.deviceId, at);
    }
  }

  #scheduled(work: Work, error: string | null, at: EpochMs): void {
    if (error !== null) {
      this.#finishFailed(work, { code: 'device_asleep', message: ASLEEP }, at);
      return;
    }
    if (work.phase === 'scheduling') work.phase = 'scheduled';
    this.#log.info('The update is armed for the device\'s next wake-up.', { deviceId: work.deviceId, jobId: work.jobId });
    this.#reportState(work.deviceId, at);
  }

  #requestInBackground(work: Work, kind: OtaRequestKind, at: EpochMs): void {
    this.#request(work, kind, at).catch((error: unknown) => {
      this.#log.warn('Could not send a request to Zigbee2MQTT.', { deviceId: work.deviceId, kind, error: describe(error) });
      if (kind === 'schedule' && this.#work.get(work.deviceId) === work && work.phase === 'scheduling') {
        this.#finishFailed(work, { code: 'device_asleep', message: ASLEEP }, this.#clock.now());
      }
    });
  }

  #finishInstalled(work: Work, at: EpochMs): void {
    this.#drop(work);
    if (work.phase !== 'rebooting') this.#progress(work.deviceId, work.jobId, 'rebooting', null, at);
    const known = this.#devices.get(work.deviceId);
    const result: OwnResultEvent = {
      v: PROTOCOL_VERSION, type: 'result', jobId: work.jobId, outcome: 'installed', firmwareVersion: versionText(work.target),
      healthy: known ? this.#isOnline(known.entry.friendly_name) : true, code: null, message: null,
    };
    this.#remember(work.deviceId, { jobId: work.jobId, result });
    this.#log.info('Zigbee2MQTT updated the device.', { deviceId: work.deviceId, jobId: work.jobId, version: result.firmwareVersion });
    if (known) this.#announce(known, at);
    this.#reportState(work.deviceId, at);
    this.#event(work.deviceId, result, at);
  }

  #finishFailed(work: Work, reason: Refusal, at: EpochMs): void {
    this.#drop(work);
    const known = this.#devices.get(work.deviceId);
    const installed = known ? fileVersionOf(this.#telemetryOf(known)?.update?.installed_version) : null;
    const version = installed ?? work.from;
    const result: OwnResultEvent = {
      v: PROTOCOL_VERSION, type: 'result', jobId: work.jobId, outcome: 'failed',
      firmwareVersion: version !== null ? versionText(version) : (this.#discovered(known)?.firmwareVersion ?? 'unknown'),
      healthy: known ? this.#isOnline(known.entry.friendly_name) : false, code: reason.code, message: clip(reason.message),
    };
    this.#remember(work.deviceId, { jobId: work.jobId, result });
    this.#log.warn('A Zigbee update failed.', { deviceId: work.deviceId, jobId: work.jobId, code: reason.code, message: reason.message });
    this.#reportState(work.deviceId, at);
    this.#event(work.deviceId, result, at);
  }

  // ── bookkeeping ───────────────────────────────────────────────────────────────────────────

  #drop(work: Work): void {
    if (work.transaction !== null) this.#transactions.delete(work.transaction);
    work.transaction = null;
    if (this.#work.get(work.deviceId) === work) this.#work.delete(work.deviceId);
  }

  #remember(deviceId: string, ended: Ended): void {
    const list = (this.#ended.get(deviceId) ?? []).filter((e) => e.jobId !== ended.jobId);
    list.push(ended);
    this.#ended.set(deviceId, list.slice(-ENDED_KEPT));
  }

  #endedFor(deviceId: string, jobId: string): Ended | undefined {
    return this.#ended.get(deviceId)?.find((e) => e.jobId === jobId);
  }

  #rememberOffered(known: Known, telemetry: Telemetry): void {
    const update = telemetry.update;
    const installed = fileVersionOf(update?.installed_version);
    const latest = fileVersionOf(update?.latest_version);
    if (known.entry.definition?.supports_ota === false || installed === null || latest === null || latest <= installed) return;
    const image: OfferedImage = { ...known.identity, latestFileVersion: latest, releaseNotes: update?.latest_release_notes ?? null };
    this.#offered.set(`${known.identity.vendor}/${known.identity.model}/${latest}/${known.identity.hardwareRevision}`, image);
  }

  #telemetryOf(known: Known): Telemetry | undefined {
    return this.#telemetry.get(known.entry.friendly_name);
  }

  #isOnline(name: string): boolean {
    return this.#bridgeOnline !== false && this.#availability.get(name) !== false;
  }

  #discovered(known: Known | undefined): DiscoveredDevice | null {
    if (!known) return null;
    return discoveredDevice(known.id, known.entry, known.identity, this.#telemetryOf(known)?.update ?? null);
  }

  /** Tells the hub about the device when it is new or what Zigbee2MQTT says about it changed; true when it did. */
  #announce(known: Known, at: EpochMs): boolean {
    const device = this.#discovered(known)!;
    const text = JSON.stringify(device);
    if (this.#announced.get(known.id) === text) return false;
    this.#announced.set(known.id, text);
    this.#deliver((h) => h.onDiscovered(device, at));
    return true;
  }

  // ── to the hub ────────────────────────────────────────────────────────────────────────────

  #reportState(deviceId: string, at: EpochMs): void {
    const known = this.#devices.get(deviceId);
    const telemetry = known ? this.#telemetryOf(known) : undefined;
    // Until Zigbee2MQTT relayed one message from the device there is nothing true to report.
    if (!known || !telemetry) return;
    const online = this.#isOnline(known.entry.friendly_name);
    // A state report tells the hub the device is online; an offline device gets none until it is back.
    if (!online) return;
    const work = this.#work.get(deviceId);
    const state: DeviceState = deviceState(this.#discovered(known)!, telemetry, online, work ? jobOf(work) : null);
    const valid = ourStateSchema.safeParse(state);
    if (!valid.success) {
      this.#log.error('A Zigbee device\'s state could not be put in our words; it is not reported.', { deviceId, error: valid.error.issues[0]?.message });
      return;
    }
    this.#deliver((h) => h.onState(deviceId, valid.data, at));
  }

  #reportPhase(work: Work, at: EpochMs): void {
    switch (work.phase) {
      case 'checking': return;
      case 'downloaded': return this.#progress(work.deviceId, work.jobId, 'downloaded', 100, at);
      case 'installing':
      case 'scheduling':
      case 'scheduled': return this.#progress(work.deviceId, work.jobId, 'installing', work.percent, at);
      case 'rebooting': return this.#progress(work.deviceId, work.jobId, 'rebooting', null, at);
    }
  }

  #ack(deviceId: string, jobId: string, refusal: Refusal | null, at: EpochMs): void {
    this.#event(deviceId, { v: PROTOCOL_VERSION, type: 'ack', jobId, accepted: refusal === null, code: refusal?.code ?? null, message: refusal ? clip(refusal.message) : null }, at);
  }

  #progress(deviceId: string, jobId: string, phase: 'downloaded' | 'installing' | 'rebooting', percent: number | null, at: EpochMs): void {
    this.#event(deviceId, { v: PROTOCOL_VERSION, type: 'progress', jobId, phase, percent }, at);
  }

  #event(deviceId: string, event: OwnDeviceEvent, at: EpochMs): void {
    this.#deliver((h) => h.onEvent(deviceId, event, at));
  }

  #reject(deviceId: string | null, topic: string, error: string, at: EpochMs): void {
    this.#log.warn('Rejected a Zigbee2MQTT message; nothing changed.', { topic, deviceId, error });
    this.#deliver((h) => h.onRejected({ deviceId, topic, error, at }));
  }

  #deliver(task: (handler: BridgeHandler) => Promise<void> | void): void {
    const handler = this.#handler;
    if (handler === null) return;
    this.#delivery = this.#delivery.then(() => task(handler)).catch((error: unknown) => {
      // The handler contract says it does not throw; if it does, one bad call must not stop the others.
      this.#log.error("The hub's handler failed on a Zigbee2MQTT message.", { error: describe(error) });
    });
  }
}

function jobOf(work: Work): DeviceState['job'] {
  switch (work.phase) {
    // Not accepted yet: the device is not working on it.
    case 'checking': return null;
    case 'downloaded': return { jobId: work.jobId, phase: 'downloaded' };
    case 'installing':
    case 'scheduling':
    case 'scheduled': return { jobId: work.jobId, phase: 'installing' };
    case 'rebooting': return { jobId: work.jobId, phase: 'rebooting' };
  }
}

function checked<T>(schema: z.ZodType<T>, command: unknown, deviceId: string): T {
  const parsed = schema.safeParse(command);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new FirmwardError('invalid_input', `The command for ${deviceId} is malformed, so it was not sent.`, {
    detail: { deviceId, issue: issue ? `${issue.path.join('.') || 'command'}: ${issue.message}` : 'does not match the schema' },
  });
}

function clip(message: string): string {
  return message.length <= MAX_MESSAGE_CHARS ? message : `${message.slice(0, MAX_MESSAGE_CHARS - 3)}...`;
}

function describe(error: unknown): string {
  if (error instanceof FirmwardError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
