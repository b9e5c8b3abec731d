/**
 * Shows Firmward's devices in Home Assistant through MQTT discovery: one `update` entity per
 * device (installed → latest version, the hub's sentence, progress) and one sensor per home
 * counting devices with known vulnerabilities. Pressing Install in Home Assistant asks the hub to
 * "update now" — the same person's action as the dashboard's button, through every safety gate;
 * the hub decides, and a refusal is shown, never an update that did not start.
 *
 * Not a gateway: it talks to the hub through HomeAssistantHub (a subset of HubService) and to Home
 * Assistant through an MQTT broker both can reach. Topics and fields:
 * /work/shared/reference/ecosystems.md §2.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { connectBroker } from '@firmward/bridge-common';
import type { BrokerOptions } from '@firmward/bridge-common';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { consoleLogger } from '@firmward/ports';
import type { Clock, Logger } from '@firmward/ports';
import {
  PAYLOAD_INSTALL, PAYLOAD_OFFLINE, PAYLOAD_ONLINE, topicsOf, updateAttributes, updateConfig, updateState, vulnerableDevices, vulnerableSensorConfig,
} from './discovery.ts';
import type { InstallRequestOutcome, Origin, Topics } from './discovery.ts';
import type { HomeAssistantHub } from './hub.ts';

/** Who asked, in the hub's history ("home-assistant asked to update now …"). */
export const HOME_ASSISTANT_ACTOR = 'home-assistant';

export interface HomeAssistantPublisherOptions extends BrokerOptions {
  /** The broker Home Assistant's MQTT integration uses, e.g. mqtt://192.168.1.5:1883. */
  url: string;
  hub: HomeAssistantHub;
  /** Times the refresh between history lines and stamps install requests. */
  clock: Clock;
  logger?: Logger;
  /** Home Assistant's discovery prefix; "homeassistant" by default. */
  discoveryPrefix?: string;
  /** Our node id under the discovery prefix; "firmward" by default. */
  nodeId?: string;
  /** Our state, attribute and command topics; "firmward/homeassistant" by default. */
  baseTopic?: string;
  /** The hub's dashboard, linked from every device in Home Assistant. */
  dashboardUrl?: string;
  /** Firmward's version, shown in Home Assistant's MQTT info. */
  softwareVersion?: string;
  /** History lines trigger a republish; this also re-reads the hub for progress in between. 30 s by default; 0 turns it off. */
  refreshSeconds?: number;
  clientId?: string;
}

const DISCOVERY_ID = /^[A-Za-z0-9_-]+$/;

/**
 * @example
 * const publisher = new HomeAssistantPublisher({ url: 'mqtt://127.0.0.1:1883', hub: hubService, clock: new SystemClock() });
 * await publisher.start();   // every device appears in Home Assistant as an update entity
 */
export class HomeAssistantPublisher {
  readonly #o: HomeAssistantPublisherOptions;
  readonly #log: Logger;
  readonly #topics: Topics;
  readonly #base: string;
  readonly #origin: Origin;
  #client: MqttClient | null = null;
  #unsubscribe: (() => void) | null = null;
  #abort: AbortController | null = null;
  #loop: Promise<void> | null = null;
  /** topic → the retained payload we last published there. */
  readonly #published = new Map<string, string>();
  /** Retained configs under our node id found on the broker that the hub no longer lists (an earlier run's). */
  readonly #strayConfigs = new Set<string>();
  /** object id → device id, from the last refresh (commands name the object id). */
  #deviceByObject = new Map<string, string>();
  /** deviceId → the answer to the last Install pressed in Home Assistant. */
  readonly #lastRequest = new Map<string, InstallRequestOutcome>();
  /** The refresh that will still pick up new changes, and the latest one queued. */
  #pending: Promise<void> | null = null;
  #latest: Promise<void> = Promise.resolve();
  /** Publish everything again, changed or not (Home Assistant restarted). */
  #force = false;

  constructor(options: HomeAssistantPublisherOptions) {
    this.#o = options;
    this.#log = options.logger ?? consoleLogger('info', 'homeassistant');
    this.#base = options.baseTopic ?? 'firmward/homeassistant';
    this.#topics = topicsOf({ discoveryPrefix: options.discoveryPrefix ?? 'homeassistant', nodeId: options.nodeId ?? 'firmward', baseTopic: this.#base });
    this.#origin = {
      name: 'Firmward',
      ...(options.softwareVersion !== undefined && { sw_version: options.softwareVersion }),
      ...(options.dashboardUrl !== undefined && { support_url: options.dashboardUrl }),
    };
  }

  /**
   * Connects, listens for Home Assistant's birth message and Install presses, and publishes every
   * device once. `signal` gives up while the broker has not answered yet; nothing is left running.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#client !== null) throw new FirmwardError('conflict', 'The Home Assistant publisher is already running.');
    const prefix = this.#o.discoveryPrefix ?? 'homeassistant';
    const nodeId = this.#o.nodeId ?? 'firmward';
    if (!DISCOVERY_ID.test(nodeId) || prefix.length === 0 || /[#+]/.test(prefix)) {
      throw new FirmwardError('config_invalid', 'The Home Assistant node id may use only letters, digits, "_" and "-", and the discovery prefix must be a plain topic.');
    }
    const { url } = this.#o;
    const { client, connected } = connectBroker(this.#o, {
      clientId: this.#o.clientId ?? `firmward-ha-${randomUUID()}`,
      refusedMessage: "The MQTT broker refused the Home Assistant publisher's login; check its MQTT user name and password.",
      unreachableMessage: `Firmward could not reach the MQTT broker at ${url} to publish to Home Assistant.`,
      // Home Assistant shows every entity unavailable as soon as Firmward is gone.
      will: { topic: this.#topics.status, payload: Buffer.from(PAYLOAD_OFFLINE), qos: 1, retain: true },
    }, signal);
    this.#client = client;
    client.on('message', (topic, payload) => this.#receive(topic, payload));
    client.on('error', (error: Error & { code?: unknown }) => {
      if (typeof error.code === 'number') this.#log.error("The MQTT broker refused the Home Assistant publisher's login; Home Assistant sees no updates until it is fixed.", { url, error: error.message });
      else this.#log.warn('MQTT connection error (Home Assistant publisher).', { url, error: error.message });
    });
    client.on('connect', () => {
      // After a reconnect the broker may have published our last will: say "online" again.
      void client.publishAsync(this.#topics.status, PAYLOAD_ONLINE, { qos: 1, retain: true }).catch(() => undefined);
    });
    try {
      await connected;
      await client.subscribeAsync([this.#topics.haStatus, this.#topics.commandFilter, this.#topics.updateConfigFilter, this.#topics.sensorConfigFilter], { qos: 1 });
      await client.publishAsync(this.#topics.status, PAYLOAD_ONLINE, { qos: 1, retain: true });
    } catch (error) {
      this.#client = null;
      await client.endAsync(true);
      throw error;
    }
    this.#unsubscribe = this.#o.hub.subscribe(() => void this.refresh());
    await this.refresh();
    const refreshMs = (this.#o.refreshSeconds ?? 30) * 1000;
    if (refreshMs > 0) {
      const abort = new AbortController();
      this.#abort = abort;
      this.#loop = this.#refreshEvery(refreshMs, abort.signal);
    }
  }

  /** Says "offline" (Home Assistant shows the entities unavailable) and disconnects. */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#abort?.abort();
    await this.#loop;
    await this.#latest;
    const client = this.#client;
    this.#client = null;
    if (client === null) return;
    await client.publishAsync(this.#topics.status, PAYLOAD_OFFLINE, { qos: 1, retain: true }).catch(() => undefined);
    await client.endAsync();
  }

  /**
   * Reads every home and device from the hub and publishes what changed (retained). Calls while
   * one runs share the next run, so a burst of history lines costs one read.
   */
  refresh(): Promise<void> {
    if (this.#pending) return this.#pending;
    const run = this.#latest.then(async () => {
      this.#pending = null;
      try {
        await this.#publishAll();
      } catch (error) {
        // The next history line or refresh tries again; nothing half-published is remembered as published.
        this.#log.warn('Could not publish to Home Assistant; will try again.', { error: describe(error) });
      }
    });
    this.#pending = run;
    this.#latest = run;
    return run;
  }

  async #refreshEvery(ms: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        await this.#o.clock.sleep(ms, signal);
      } catch {
        return;
      }
      await this.refresh();
    }
  }

  async #publishAll(): Promise<void> {
    if (this.#client === null) return;
    const force = this.#force;
    this.#force = false;
    const [homes, devices] = await Promise.all([this.#o.hub.listHomes(), this.#o.hub.listDevices({})]);
    const dashboardUrl = this.#o.dashboardUrl ?? null;
    // Insertion order is publish order: each config before the topics it names.
    const wanted = new Map<string, string>();
    const byObject = new Map<string, string>();
    for (const device of devices) {
      const t = this.#topics.device(device.id);
      byObject.set(t.objectId, device.id);
      wanted.set(t.config, JSON.stringify(updateConfig(device, this.#topics, this.#origin, dashboardUrl)));
      wanted.set(t.availability, device.online ? PAYLOAD_ONLINE : PAYLOAD_OFFLINE);
      wanted.set(t.attributes, JSON.stringify(updateAttributes(device, this.#lastRequest.get(device.id) ?? null)));
      wanted.set(t.state, JSON.stringify(updateState(device, dashboardUrl)));
    }
    for (const home of homes) {
      const t = this.#topics.home(home.id);
      const vulnerable = vulnerableDevices(devices.filter((d) => d.homeId === home.id));
      wanted.set(t.config, JSON.stringify(vulnerableSensorConfig(home, this.#topics, this.#origin, dashboardUrl)));
      wanted.set(t.attributes, JSON.stringify({ devices: vulnerable }));
      wanted.set(t.state, String(vulnerable.length));
    }
    this.#deviceByObject = byObject;

    for (const [topic, payload] of wanted) {
      if (!force && this.#published.get(topic) === payload) continue;
      await this.#publishRetained(topic, payload);
    }
    // Gone from the hub (or left by an earlier run): an empty retained config removes the entity (§2.1).
    const gone = new Set([...this.#published.keys(), ...this.#strayConfigs].filter((topic) => !wanted.has(topic)));
    for (const config of [...this.#strayConfigs].filter((topic) => !wanted.has(topic))) {
      for (const sibling of this.#siblingsOf(config)) if (!wanted.has(sibling)) gone.add(sibling);
    }
    for (const topic of [...gone].sort((a, b) => Number(b.endsWith('/config')) - Number(a.endsWith('/config')))) {
      await this.#publishRetained(topic, '');
      this.#published.delete(topic);
      this.#strayConfigs.delete(topic);
    }
  }

  /** Our state topics that belong to a config topic (to clear them with an earlier run's config). */
  #siblingsOf(configTopic: string): string[] {
    const obj = configTopic.split('/').at(-2) ?? '';
    const base = this.#base;
    if (configTopic.includes('/update/')) return ['state', 'attributes', 'availability'].map((k) => `${base}/devices/${obj}/${k}`);
    const home = obj.replace(/_vulnerable$/, '');
    return [`${base}/homes/${home}/vulnerable`, `${base}/homes/${home}/vulnerable/attributes`];
  }

  async #publishRetained(topic: string, payload: string): Promise<void> {
    const client = this.#client;
    if (client === null) throw new FirmwardError('gateway_failure', 'The Home Assistant publisher is not connected to its MQTT broker.');
    // Recorded first: the broker echoes our own configs back, and an echo must not look like a stray.
    const previous = this.#published.get(topic);
    if (payload === '') this.#published.delete(topic);
    else this.#published.set(topic, payload);
    try {
      await client.publishAsync(topic, payload, { qos: 1, retain: true });
    } catch (error) {
      if (previous === undefined) this.#published.delete(topic);
      else this.#published.set(topic, previous);
      throw error;
    }
  }

  #receive(topic: string, payload: Buffer): void {
    const text = payload.toString('utf8');
    if (topic === this.#topics.haStatus) {
      // Home Assistant restarted (its birth message): it may have lost what it knew; publish everything again.
      if (text.trim() === PAYLOAD_ONLINE) {
        this.#log.info('Home Assistant is online; publishing every device again.');
        this.#force = true;
        void this.refresh();
      }
      return;
    }
    const commands = `${this.#base}/devices/`;
    if (topic.startsWith(commands) && topic.endsWith('/install')) {
      void this.#install(topic.slice(commands.length, -'/install'.length), text);
      return;
    }
    // A retained config under our node id: ours, from this run (echo) or an earlier one.
    if (topic.endsWith('/config') && text.length > 0 && !this.#published.has(topic)) {
      this.#strayConfigs.add(topic);
      void this.refresh();
    }
  }

  async #install(objectId: string, payload: string): Promise<void> {
    const deviceId = this.#deviceByObject.get(objectId);
    if (payload !== PAYLOAD_INSTALL || deviceId === undefined) {
      this.#log.warn('Ignored a Home Assistant command that is not an Install for a known device.', { objectId, payload: payload.slice(0, 64) });
      return;
    }
    const at = new Date(this.#o.clock.now()).toISOString();
    let outcome: InstallRequestOutcome;
    try {
      const job = await this.#o.hub.updateNow(deviceId, HOME_ASSISTANT_ACTOR);
      outcome = { at, outcome: 'accepted', code: null, message: `Firmward will install ${job.targetVersion} as soon as every safety check passes.` };
      this.#log.info('Home Assistant asked to update a device now; the hub queued it.', { deviceId, jobId: job.id });
    } catch (error) {
      // The hub said no (or could not answer): show its sentence; nothing started.
      outcome = isFirmwardError(error)
        ? { at, outcome: 'refused', code: error.code, message: error.message }
        : { at, outcome: 'refused', code: 'internal', message: 'Firmward could not take the request; try again.' };
      this.#log[isFirmwardError(error) ? 'info' : 'error']('The hub did not start an update Home Assistant asked for.', { deviceId, error: describe(error) });
    }
    this.#lastRequest.set(deviceId, outcome);
    await this.refresh();
  }
}

function describe(error: unknown): string {
  if (error instanceof FirmwardError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
