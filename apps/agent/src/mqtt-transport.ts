/**
 * The agent's transport over our MQTT protocol: connectDevice from the MQTT adapter behind the
 * AgentTransport port. Connecting happens in start(), never in the constructor.
 */
import { FirmwardError } from '@firmward/core';
import { connectDevice } from '@firmward/mqtt';
import type { DeviceConnection } from '@firmward/mqtt';
import type { Clock, Logger } from '@firmward/ports';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import type { AgentTransport } from './transport.ts';

export interface MqttTransportOptions {
  url: string;
  deviceId: string;
  password: string;
  /** Pause between reconnect attempts after the connection drops (1 s by default). */
  reconnectPeriodMs?: number;
  clock?: Clock;
  logger?: Logger;
}

export class MqttAgentTransport implements AgentTransport {
  readonly #options: MqttTransportOptions;
  #connection: DeviceConnection | null = null;
  readonly #handlers = new Set<(command: Command) => void>();

  constructor(options: MqttTransportOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#connection) return;
    const o = this.#options;
    this.#connection = await connectDevice({
      url: o.url, deviceId: o.deviceId, password: o.password,
      ...(o.reconnectPeriodMs !== undefined && { reconnectPeriodMs: o.reconnectPeriodMs }),
      ...(o.clock && { clock: o.clock }), ...(o.logger && { logger: o.logger }),
    });
    this.#connection.onCommand((command) => {
      for (const h of this.#handlers) h(command);
    });
    this.#connection.onRejected((rejection) => o.logger?.warn('command refused', { ...rejection }));
  }

  async stop(): Promise<void> {
    const c = this.#connection;
    this.#connection = null;
    await c?.close();
  }

  /** Drops the connection without a goodbye, like a power cut: the broker sends the last will. */
  cut(): void {
    const c = this.#connection;
    this.#connection = null;
    c?.mqtt.end(true);
  }

  publishState(state: DeviceState): Promise<void> {
    return this.#live().publishState(state);
  }

  publishEvent(event: DeviceEvent): Promise<void> {
    return this.#live().publishEvent(event);
  }

  onCommand(handler: (command: Command) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  #live(): DeviceConnection {
    if (!this.#connection) throw new FirmwardError('gateway_failure', 'The device is not connected to the hub.');
    return this.#connection;
  }
}
