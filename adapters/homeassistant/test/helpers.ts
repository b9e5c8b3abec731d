/**
 * Test fixtures: a fake hub (HomeAssistantHub) whose answers the test sets, and a double of Home Assistant's MQTT side: it keeps the retained messages it sees,
 * sends the birth message and presses Install the way HA does (reference §2.1–2.2).
 */
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { FirmwardError } from '@firmward/core';
import type { HomeAssistantDevice, HomeAssistantHistoryEvent, HomeAssistantHome, HomeAssistantHub, HomeAssistantJob } from '../src/index.ts';

export function device(overrides: Partial<HomeAssistantDevice> & { id: string }, update: Partial<HomeAssistantDevice['update']> = {}): HomeAssistantDevice {
  return {
    homeId: 'home-1', name: overrides.id, vendor: 'acme', model: 'plug-s', hardwareRevision: 'r2', firmwareVersion: '1.2.0',
    availableVersion: null, online: true, ...overrides,
    update: {
      status: 'up-to-date', summary: 'Up to date (1.2.0).', jobState: null, targetVersion: null, progressPercent: null,
      vulnerabilities: [], recovery: null, ...update,
    },
  };
}

/** The hub as the publisher sees it; `answer` decides what "update now" does. */
export class FakeHub implements HomeAssistantHub {
  homes: HomeAssistantHome[] = [{ id: 'home-1', name: 'Our flat' }];
  devices: HomeAssistantDevice[] = [];
  readonly updateNowCalls: { deviceId: string; actor: string }[] = [];
  answer: (deviceId: string) => HomeAssistantJob = () => {
    throw new FirmwardError('already_up_to_date', 'Up to date (1.2.0).');
  };
  #listeners = new Set<(event: HomeAssistantHistoryEvent) => void>();
  #callWaiters: (() => void)[] = [];

  listHomes(): Promise<HomeAssistantHome[]> {
    return Promise.resolve(structuredClone(this.homes));
  }
  listDevices(query: { homeId?: string }): Promise<HomeAssistantDevice[]> {
    return Promise.resolve(structuredClone(this.devices.filter((d) => query.homeId === undefined || d.homeId === query.homeId)));
  }
  updateNow(deviceId: string, actor: string): Promise<HomeAssistantJob> {
    this.updateNowCalls.push({ deviceId, actor });
    for (const wake of this.#callWaiters.splice(0)) wake();
    return Promise.resolve().then(() => this.answer(deviceId));
  }
  subscribe(listener: (event: HomeAssistantHistoryEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  /** A history line, as the hub's engine emits after every decision. */
  emit(event: HomeAssistantHistoryEvent): void {
    for (const l of this.#listeners) l(event);
  }
  async calledTimes(n: number): Promise<void> {
    while (this.updateNowCalls.length < n) await new Promise<void>((resolve) => this.#callWaiters.push(resolve));
  }
}

/** Home Assistant's MQTT side: what it would read (retained state of every topic) and what it sends. */
export class FakeHomeAssistant {
  readonly mqtt: MqttClient;
  /** topic → last payload ("" = cleared). */
  readonly topics = new Map<string, string>();
  /** Every message in arrival order. */
  readonly log: { topic: string; payload: string; retain: boolean }[] = [];
  #waiters: (() => void)[] = [];

  private constructor(mqtt: MqttClient) {
    this.mqtt = mqtt;
  }

  static async connect(url: string, filters: string[]): Promise<FakeHomeAssistant> {
    const mqtt = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    const ha = new FakeHomeAssistant(mqtt);
    mqtt.on('message', (topic, payload, packet) => {
      ha.topics.set(topic, payload.toString());
      ha.log.push({ topic, payload: payload.toString(), retain: packet.retain });
      for (const wake of ha.#waiters.splice(0)) wake();
    });
    await mqtt.subscribeAsync(filters, { qos: 1 });
    return ha;
  }

  /** Resolves once `until` holds for what HA has seen. */
  async until(until: (ha: FakeHomeAssistant) => boolean): Promise<void> {
    while (!until(this)) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  json(topic: string): Record<string, unknown> {
    return JSON.parse(this.topics.get(topic) ?? 'null') as Record<string, unknown>;
  }

  /** HA's birth message (§2.1), published when HA (re)starts. */
  async birth(prefix = 'homeassistant'): Promise<void> {
    await this.mqtt.publishAsync(`${prefix}/status`, 'online', { qos: 1 });
  }

  /** Install pressed: HA publishes `payload_install` to the entity's `command_topic` (§2.2). */
  async pressInstall(configTopic: string): Promise<void> {
    const config = this.json(configTopic);
    await this.mqtt.publishAsync(String(config['command_topic']), String(config['payload_install']), { qos: Number(config['qos'] ?? 0) as 0 | 1 });
  }

  async close(): Promise<void> {
    await this.mqtt.endAsync(true);
  }
}
