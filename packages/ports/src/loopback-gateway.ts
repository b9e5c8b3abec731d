/**
 * The fake beside the DeviceGateway port (STYLE principle 14): hub and devices in one process,
 * for simulations that run a week of simulated time in seconds. Every message is encoded to JSON
 * and parsed back with the wire schemas, exactly as over MQTT, so a message the real gateway
 * would refuse is refused here too. Delivery is asynchronous and in order per device.
 *
 * It proves nothing about MQTT: the MQTT gateway has its own tests against a real broker.
 */
import type { EpochMs } from '@firmward/core';
import { availabilitySchema, commandSchema, deviceEventSchema, deviceStateSchema, encode, parsePayload, PROTOCOL_VERSION } from '@firmward/protocol';
import type { CancelCommand, Command, DeviceEvent, DeviceState, InstallCommand, OfferCommand } from '@firmward/protocol';
import type { Clock } from './clock.ts';
import type { DeviceGateway, GatewayHandler } from './device-gateway.ts';

/** The device's end: the same shape as the agent's transport port. */
export interface LoopbackDeviceEnd {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Connection lost without a goodbye (power cut): the hub hears the last will. */
  cut(): void;
  publishState(state: DeviceState): Promise<void>;
  publishEvent(event: DeviceEvent): Promise<void>;
  onCommand(handler: (command: Command) => void): () => void;
}

interface Link {
  connected: boolean;
  handlers: Set<(command: Command) => void>;
  /** Per-device delivery chain: messages of one device arrive in order. */
  tail: Promise<void>;
}

export class LoopbackGateway implements DeviceGateway {
  readonly name = 'loopback';
  readonly #clock: Clock;
  readonly #links = new Map<string, Link>();
  #handler: GatewayHandler | null = null;
  /** Every command sent, for assertions. */
  readonly sent: { deviceId: string; command: Command; at: EpochMs }[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  start(handler: GatewayHandler): Promise<void> {
    this.#handler = handler;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.#handler = null;
    return Promise.resolve();
  }

  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    const parsed = parsePayload(commandSchema, encode(command));
    if (!parsed.ok) return Promise.reject(new Error(`invalid command: ${parsed.error}`));
    this.sent.push({ deviceId, command: parsed.value, at: this.#clock.now() });
    const link = this.#links.get(deviceId);
    // Like QoS 1 without a persistent session: a device that is not connected misses it.
    if (!link?.connected) return Promise.resolve();
    queueMicrotask(() => {
      for (const h of link.handlers) h(parsed.value);
    });
    return Promise.resolve();
  }

  /** A new connection for one device (a device makes a new one on every boot). */
  connect(deviceId: string): LoopbackDeviceEnd {
    const link: Link = { connected: false, handlers: new Set(), tail: Promise.resolve() };
    const deliver = (fn: (h: GatewayHandler, at: EpochMs) => Promise<void> | void): Promise<void> => {
      const at = this.#clock.now();
      link.tail = link.tail.then(async () => {
        const h = this.#handler;
        if (h) await fn(h, at);
      }).catch(() => undefined);
      return Promise.resolve();
    };
    const availability = (online: boolean) => {
      const parsed = parsePayload(availabilitySchema, JSON.stringify({ v: PROTOCOL_VERSION, online }));
      if (parsed.ok) void deliver((h, at) => h.onAvailability(deviceId, parsed.value.online, at));
    };
    return {
      start: () => {
        this.#links.set(deviceId, link);
        link.connected = true;
        availability(true);
        return Promise.resolve();
      },
      stop: () => {
        if (link.connected) availability(false);
        link.connected = false;
        return Promise.resolve();
      },
      cut: () => {
        if (link.connected) availability(false);
        link.connected = false;
      },
      publishState: (state) => {
        if (!link.connected) return Promise.resolve();
        const parsed = parsePayload(deviceStateSchema, encode(state));
        return deliver((h, at) => (parsed.ok ? h.onState(deviceId, parsed.value, at) : h.onRejected({ deviceId, topic: 'state', error: parsed.error, at })));
      },
      publishEvent: (event) => {
        if (!link.connected) return Promise.resolve();
        const parsed = parsePayload(deviceEventSchema, encode(event));
        return deliver((h, at) => (parsed.ok ? h.onEvent(deviceId, parsed.value, at) : h.onRejected({ deviceId, topic: 'evt', error: parsed.error, at })));
      },
      onCommand: (handler) => {
        link.handlers.add(handler);
        return () => link.handlers.delete(handler);
      },
    };
  }
}
