/**
 * How the agent talks to the hub. The agent core knows only this port; the MQTT adapter
 * (connectDevice) implements it for real devices, `InProcessTransport` for tests and in-process
 * simulations (STYLE principles 5 and 14: ports in the core, fakes beside the port).
 */
import { FirmwardError } from '@firmward/core';
import { commandSchema, deviceEventSchema, deviceStateSchema } from '@firmward/protocol';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';

export interface AgentTransport {
  /** Connects; commands are delivered only after this resolves. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Retained: the hub always sees the latest one, even after either side restarts. */
  publishState(state: DeviceState): Promise<void>;
  publishEvent(event: DeviceEvent): Promise<void>;
  /** Commands already parsed against the protocol schema. Returns a function that unsubscribes. */
  onCommand(handler: (command: Command) => void): () => void;
}

export type PublishedMessage = { kind: 'state'; state: DeviceState } | { kind: 'event'; event: DeviceEvent };

/**
 * An in-memory transport: what the agent publishes is checked against the wire schema (an agent
 * bug fails the test instead of reaching a hub) and kept; `send` plays the hub.
 *
 * @example
 * const transport = new InProcessTransport();
 * const agent = new Agent({ platform, transport, clock });
 * await agent.start();
 * transport.send({ v: 1, type: 'install', jobId: 'job-1' });
 * await transport.waitForEvent((e) => e.type === 'progress' && e.phase === 'rebooting');
 */
export class InProcessTransport implements AgentTransport {
  readonly states: DeviceState[] = [];
  readonly events: DeviceEvent[] = [];
  #connected = false;
  #closed = false;
  #handlers = new Set<(command: Command) => void>();
  #observers = new Set<(message: PublishedMessage) => void>();

  get connected(): boolean {
    return this.#connected;
  }

  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new FirmwardError('gateway_failure', 'This connection was cut and cannot be used again.'));
    this.#connected = true;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.#connected = false;
    return Promise.resolve();
  }

  /** Cuts the connection for good, like a power cut: later publishes are lost, commands are not delivered. */
  cut(): void {
    this.#closed = true;
    this.#connected = false;
  }

  publishState(state: DeviceState): Promise<void> {
    if (!this.#connected) return Promise.reject(notConnected());
    const checked = deviceStateSchema.parse(state);
    this.states.push(checked);
    this.#emit({ kind: 'state', state: checked });
    return Promise.resolve();
  }

  publishEvent(event: DeviceEvent): Promise<void> {
    if (!this.#connected) return Promise.reject(notConnected());
    const checked = deviceEventSchema.parse(event);
    this.events.push(checked);
    this.#emit({ kind: 'event', event: checked });
    return Promise.resolve();
  }

  onCommand(handler: (command: Command) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /**
   * Plays the hub: parses `command` like a real transport would and hands it to the agent.
   * Returns false when nobody is connected to receive it (the hub would re-send later).
   */
  send(command: unknown): boolean {
    const parsed = commandSchema.safeParse(command);
    if (!parsed.success) throw new FirmwardError('invalid_input', 'The command does not match the device protocol.', { cause: parsed.error });
    if (!this.#connected) return false;
    for (const handler of [...this.#handlers]) handler(parsed.data);
    return true;
  }

  /** Sees every message as it is published (for tests and simulations that collect across reboots). */
  observe(observer: (message: PublishedMessage) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** Resolves with the first event (already published or to come) that matches. */
  waitForEvent<T extends DeviceEvent>(match: (event: DeviceEvent) => event is T, signal?: AbortSignal): Promise<T>;
  waitForEvent(match: (event: DeviceEvent) => boolean, signal?: AbortSignal): Promise<DeviceEvent>;
  waitForEvent(match: (event: DeviceEvent) => boolean, signal?: AbortSignal): Promise<DeviceEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return this.#waitFor((m) => (m.kind === 'event' && match(m.event) ? m.event : undefined), signal);
  }

  /** Resolves with the first state (already published or to come) that matches. */
  waitForState(match: (state: DeviceState) => boolean, signal?: AbortSignal): Promise<DeviceState> {
    const seen = this.states.find(match);
    if (seen) return Promise.resolve(seen);
    return this.#waitFor((m) => (m.kind === 'state' && match(m.state) ? m.state : undefined), signal);
  }

  #waitFor<T>(pick: (message: PublishedMessage) => T | undefined, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason as Error);
      const onAbort = () => {
        stopObserving();
        reject(signal?.reason as Error);
      };
      const stopObserving = this.observe((message) => {
        const value = pick(message);
        if (value === undefined) return;
        stopObserving();
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #emit(message: PublishedMessage): void {
    for (const observer of [...this.#observers]) observer(message);
  }
}

function notConnected(): FirmwardError {
  return new FirmwardError('gateway_failure', 'The device is not connected to the hub right now.');
}
