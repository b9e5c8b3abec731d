/**
 * The hub's side of the native device protocol over MQTT (DESIGN.md, Layers: "MQTT gateway").
 * Works against the embedded broker or an external one (Mosquitto, EMQX) configured with the same
 * ACLs. Every payload is parsed with the protocol schemas at the boundary; what does not parse goes
 * to onRejected and changes nothing (STYLE principle 9).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { FirmwardError } from '@firmward/core';
import type { Clock, DeviceGateway, GatewayHandler } from '@firmward/ports';
import { MAX_PAYLOAD_BYTES, commandSchema, deviceTopics, encode, parseTopic } from '@firmward/protocol';
import type { CancelCommand, InstallCommand, OfferCommand } from '@firmward/protocol';
import { HUB_CLIENT_ID_PREFIX } from './acl.ts';
import { CatchUpCopies } from './catch-up-copies.ts';
import { hubSubscriptions, sharedGroupRefusal } from './hub-subscriptions.ts';
import type { HubSubscriptions } from './hub-subscriptions.ts';
import { consoleLogger, clip } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { parseDeviceMessage } from './messages.ts';
import type { DeviceMessage } from './messages.ts';

export interface MqttDeviceGatewayOptions {
  /** e.g. mqtt://127.0.0.1:1883 */
  url: string;
  /** The hub's user on the broker. */
  username: string;
  password: string;
  /** Stamps the `at` of every message handed to the handler. */
  clock: Clock;
  /** Must start with "hub/" on the embedded broker; a fresh "hub/<uuid>" by default. */
  clientId?: string;
  logger?: Logger;
  /** How long start() waits for the broker before giving up. 30 s by default. */
  startTimeoutMs?: number;
  /** Pause between reconnect attempts. 1 s by default. */
  reconnectPeriodMs?: number;
  /**
   * Join this shared subscription group (`$share/<group>/…`, hub-subscriptions.ts): the broker
   * hands each device message to one member, so several hub instances on one external broker
   * split the device traffic. Unset: this hub receives every device message. The embedded broker
   * refuses it (one hub only there), and start() says so.
   */
  sharedGroup?: string;
}

/** MQTT keepalive alone: the library's usual minute. */
const KEEPALIVE_SECONDS = 60;
/**
 * MQTT keepalive in a shared group. A member that hangs without its connection closing keeps
 * being handed its share of the messages until the broker gives up on it after 1.5 keepalives, and
 * a broker drops what it had queued for a clean session that ends (Mosquitto does not hand it to
 * another member): a shorter keepalive bounds what such a member loses to about 22 s of its share.
 * A member that dies outright closes its connection, and the broker stops at once.
 */
const SHARED_KEEPALIVE_SECONDS = 15;
/** The catch-up subscription ends once no retained copy has arrived for this long. */
const CATCH_UP_QUIET_MS = 500;

/** Key of the delivery queue for messages whose topic names no valid device. */
const NO_DEVICE = '';
/** Device messages being handled at once (#inFlight): enough to keep the store's pool busy. */
const MESSAGES_IN_FLIGHT = 100;

/**
 * @example
 * const gateway = new MqttDeviceGateway({ url: 'mqtt://127.0.0.1:1883', username: 'hub', password, clock: new SystemClock() });
 * await gateway.start(handler);
 * await gateway.send('plug-1', { v: 1, type: 'install', jobId: 'job-7' });
 */
export class MqttDeviceGateway implements DeviceGateway {
  readonly name = 'mqtt';
  readonly #options: MqttDeviceGatewayOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  #client: MqttClient | null = null;
  #handler: GatewayHandler | null = null;
  /** The tail of each device's delivery chain: one device's messages are handled one at a time, in order. */
  readonly #queues = new Map<string, Promise<void>>();
  /**
   * Messages handed to the handler at once, across devices. When every device reports at once (a
   * broker or hub restart), unbounded, each one's handling waited for the store at the same time
   * and the heap grew with the fleet (bench:scale's gateway, which queues the same way: 460 MiB at
   * 20,000 devices). Queued messages
   * wait here, a few hundred bytes each; each device's still go in order. Safe from deadlock at this
   * edge: nothing the handler waits for (a home's lock, the store, a publish) needs another message
   * handled first.
   */
  readonly #inFlight = pLimit(MESSAGES_IN_FLIGHT);
  /** A device that keeps sending what does not parse gets a few lines a minute, then a summary. */
  /** Retained copies already handed on during the catch-up under way (catch-up-copies.ts). */
  readonly #copies = new CatchUpCopies();
  /** When the last retained copy arrived (performance.now()). */
  #lastCopyAt = 0;

  constructor(options: MqttDeviceGatewayOptions) {
    this.#options = options;
    this.#clock = options.clock;
    this.#log = options.logger ?? consoleLogger('info', 'mqtt-gateway');
  }

  /**
   * Connects, subscribes to every device's state, availability and events (alone, or as a member of
   * the shared group) and asks for the retained copies; resolves once the broker has acknowledged.
   * The same happens again after every reconnect.
   */
  async start(handler: GatewayHandler): Promise<void> {
    if (this.#client !== null) throw new FirmwardError('conflict', 'The MQTT gateway is already running.');
    const { url, username, password, sharedGroup } = this.#options;
    if (sharedGroup !== undefined) {
      const refusal = sharedGroupRefusal(sharedGroup);
      if (refusal !== null) throw new FirmwardError('invalid_input', `The shared subscription group "${sharedGroup}" ${refusal}.`, { detail: { sharedGroup } });
    }
    const subscriptions = hubSubscriptions(sharedGroup ?? null);
    const client = connect(url, {
      clientId: this.#options.clientId ?? `${HUB_CLIENT_ID_PREFIX}${randomUUID()}`,
      username,
      password,
      protocolVersion: 4,
      clean: true,
      // The gateway subscribes again itself after every reconnect (#subscribe): the live filters
      // first, then the catch-up, in that order, and the catch-up filters must not come back on
      // their own after a reconnect that interrupted it.
      resubscribe: false,
      keepalive: sharedGroup === undefined ? KEEPALIVE_SECONDS : SHARED_KEEPALIVE_SECONDS,
      reconnectPeriod: this.#options.reconnectPeriodMs ?? 1000,
    });
    this.#client = client;
    this.#handler = handler;
    client.on('message', (topic, payload, packet) => this.#receive(topic, payload, packet.retain));
    client.on('error', (error: Error & { code?: unknown }) => {
      // A CONNACK refusal stops the client's reconnecting: the operator must fix the hub's credentials.
      if (typeof error.code === 'number') this.#log.error('The MQTT broker refused the hub\'s login; devices are not heard until it is fixed.', { url, error: error.message });
      else this.#log.warn('MQTT connection error.', { url, error: error.message });
    });
    client.on('offline', () => this.#log.warn('Lost the connection to the MQTT broker; reconnecting.', { url }));
    client.on('connect', () => this.#log.info('Connected to the MQTT broker.', { url }));
    try {
      await firstConnect(client, url, this.#options.startTimeoutMs ?? 30_000);
      // Registered after the first connection: from now on every 'connect' is a reconnect.
      client.on('connect', () => {
        this.#subscribe(client, subscriptions).catch((error: unknown) => {
          if (this.#client !== client) return;
          this.#log.error('After reconnecting, the hub could not subscribe to the devices again; it tries at the next reconnect.', { url, error: error instanceof Error ? error.message : String(error) });
        });
      });
      await this.#subscribe(client, subscriptions);
      if (sharedGroup !== undefined) this.#log.info(`Joined the shared subscription group "${sharedGroup}": the hubs in it split the device messages.`, { url });
    } catch (error) {
      this.#client = null;
      this.#handler = null;
      await client.endAsync(true);
      throw error;
    }
  }

  /**
   * Subscribes on a fresh connection (a clean session keeps none), then catches up: after a start
   * or a reconnect the hub learns what it missed from every device's retained state and
   * availability. Alone, the live subscriptions bring those copies themselves. In a shared group
   * they need not (hub-subscriptions.ts), so the catch-up filters are subscribed for a moment
   * without the group. Live first, so that nothing published meanwhile is missed; while the
   * catch-up lasts a device's live state may reach this instance both ways, which is harmless (a
   * state report is idempotent for its job) and lasts about as long as the broker takes to send
   * the retained copies.
   */
  async #subscribe(client: MqttClient, subscriptions: HubSubscriptions): Promise<void> {
    const sharedGroup = this.#options.sharedGroup;
    const catchingUp = subscriptions.catchUp.length > 0;
    if (catchingUp) this.#copies.begin();
    try {
      const granted = await client.subscribeAsync([...subscriptions.live], { qos: 1 }).catch((cause: unknown) => {
        throw sharedGroup === undefined
          ? new FirmwardError('forbidden', 'The MQTT broker did not let the hub listen to the devices; check the hub user\'s permissions.', { cause })
          : new FirmwardError('forbidden', `The MQTT broker refused the hub's shared subscriptions ($share/${sharedGroup}/…): it may not support them (the hub's embedded broker does not), or the hub user may not read the device topics. Use Mosquitto 2 or EMQX, or turn shared subscriptions off (mqtt.sharedSubscriptions false) when one hub runs alone.`, { cause });
      });
      this.#log.debug('Subscribed.', { topics: granted.map((g) => g.topic) });
      if (!catchingUp) return;
      await client.subscribeAsync([...subscriptions.catchUp], { qos: 0 }).catch((cause: unknown) => {
        throw new FirmwardError('forbidden', 'The MQTT broker did not let the hub read the devices\' retained state; check the hub user\'s permissions.', { cause });
      });
      // Mosquitto sends the retained copies right after its SUBACK; a broker may also send them a
      // little later, and a copy that arrives after the UNSUBSCRIBE may be dropped. So the gateway
      // unsubscribes only once none has come for a while.
      this.#lastCopyAt = performance.now();
      // One reading per turn: with two, the wait could come out negative (Node warns, TimeoutNegativeWarning).
      for (let quietFor = performance.now() - this.#lastCopyAt; quietFor < CATCH_UP_QUIET_MS; quietFor = performance.now() - this.#lastCopyAt) {
        await sleep(CATCH_UP_QUIET_MS - quietFor);
      }
      await client.unsubscribeAsync([...subscriptions.catchUp]);
      this.#log.debug('Caught up on the retained state and availability.', { topics: subscriptions.catchUp });
    } finally {
      if (catchingUp) this.#copies.end();
    }
  }

  /** Disconnects and waits until every message already received has been handled. */
  async stop(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.endAsync();
    while (this.#queues.size > 0) await Promise.all([...this.#queues.values()]);
    this.#handler = null;
  }

  /**
   * Publishes a command to the device's own command topic at QoS 1, never retained. Resolves when
   * the broker has it. Commands are idempotent by job id, so the hub may simply send again.
   */
  async send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    const topic = deviceTopics(deviceId).command;
    if (parseTopic(topic)?.deviceId !== deviceId) {
      throw new FirmwardError('invalid_input', `"${deviceId}" is not a valid device id.`, { detail: { deviceId } });
    }
    const parsed = commandSchema.safeParse(command);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new FirmwardError('invalid_input', `The command for ${deviceId} is malformed, so it was not sent.`, {
        detail: { deviceId, issue: issue ? `${issue.path.join('.') || 'command'}: ${issue.message}` : 'does not match the schema' },
      });
    }
    const payload = encode(parsed.data);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      throw new FirmwardError('payload_too_large', `The command for ${deviceId} is too large to send.`, { detail: { deviceId } });
    }
    const client = this.#client;
    if (client === null || !client.connected) {
      throw new FirmwardError('gateway_failure', `The hub is not connected to its MQTT broker, so it could not send the command to ${deviceId}; it will try again.`);
    }
    try {
      await client.publishAsync(topic, payload, { qos: 1, retain: false });
    } catch (cause) {
      throw new FirmwardError('gateway_failure', `The hub could not send the command to ${deviceId}; it will try again.`, { cause });
    }
  }

  #receive(topic: string, payload: Buffer, retained: boolean): void {
    const handler = this.#handler;
    if (handler === null) return;
    if (retained) {
      this.#lastCopyAt = performance.now();
      // The same retained message again in one catch-up (once for each subscription): handled once.
      if (this.#copies.repeated(topic, payload)) return;
    }
    const at = this.#clock.now();
    const result = parseDeviceMessage(topic, payload);
    if (!result.ok) {
      // Clipped: the topic and the error (which may quote a field name the device chose) are only
      // for logs and history. The handler (the engine) logs it — the one place every gateway's
      // refusals are said, a few lines per device and topic a minute.
      const info = { deviceId: result.deviceId, topic: clip(topic), error: clip(result.error), at };
      this.#enqueue(result.deviceId ?? NO_DEVICE, () => handler.onRejected(info));
      return;
    }
    const message = result.message;
    this.#enqueue(message.deviceId, () => deliver(handler, message, at));
  }

  #enqueue(key: string, task: () => Promise<void> | void): void {
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.#inFlight(task))
      .catch((error: unknown) => {
        // The handler contract says it does not throw; if it does, one bad message must not stop the others.
        this.#log.error('A device message handler failed.', { deviceId: key === NO_DEVICE ? null : key, error: String(error) });
      })
      .finally(() => {
        if (this.#queues.get(key) === next) this.#queues.delete(key);
      });
    this.#queues.set(key, next);
  }
}

function deliver(handler: GatewayHandler, message: DeviceMessage, at: number): Promise<void> {
  switch (message.kind) {
    case 'state': return handler.onState(message.deviceId, message.state, at);
    case 'availability': return handler.onAvailability(message.deviceId, message.online, at);
    case 'event': return handler.onEvent(message.deviceId, message.event, at);
  }
}

/** Resolves on the first successful connection; rejects when the broker refuses the login or never answers. */
function firstConnect(client: MqttClient, url: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
    };
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error & { code?: unknown }) => {
      // A numeric code is a CONNACK refusal (bad user name or password, not authorized): retrying will not help.
      if (typeof error.code !== 'number') return;
      cleanup();
      reject(new FirmwardError('unauthorized', 'The MQTT broker refused the hub\'s login; check the hub\'s MQTT user name and password.', { cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new FirmwardError('gateway_failure', `The hub could not reach its MQTT broker at ${url}.`));
    }, timeoutMs);
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}
