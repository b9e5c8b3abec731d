/**
 * A DeviceGateway whose devices answer at once: the hub's side of the wire with the devices'
 * latency taken out, so a benchmark measures the hub (engine, store, sequencer) alone.
 *
 * Every command the hub sends and every message a device answers goes through the wire contract
 * (encode, then parse with the protocol's schemas) exactly as the MQTT gateway does, so the cost
 * of parsing stays in the measurement and an invalid message would be refused, not hidden.
 * Messages of one device are delivered in order, one at a time, after `send` returns — as a
 * broker would — so the engine's per-home lock is never re-entered from inside a send.
 */
import type { Clock } from '../src/clock.ts';
import type { DeviceGateway, GatewayHandler } from '../src/device-gateway.ts';
import {
  PROTOCOL_VERSION, availabilitySchema, commandSchema, deviceEventSchema, deviceStateSchema, encode, parsePayload,
} from '@firmward/protocol';
import type { Availability, Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import pLimit from 'p-limit';

export interface InstantDeviceIdentity {
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
}

interface InstantDevice extends InstantDeviceIdentity {
  /** Its new image does not come up: it rolls back to the old one (fault injection for tests). */
  failsUpdate: boolean;
  activeSlot: 'a' | 'b';
  /** The offer being worked on: its id and the version it brings. */
  job: { jobId: string; version: string; phase: 'downloaded' | 'installing' } | null;
}

/** Counts of what crossed the (in-process) wire, for the benchmark's table. */
export interface WireCounts {
  commands: number;
  deviceMessages: number;
  refused: number;
}

export class InstantDeviceGateway implements DeviceGateway {
  readonly name = 'instant';
  readonly #clock: Clock;
  readonly #devices = new Map<string, InstantDevice>();
  /** Per-device delivery chains (in order, one at a time). */
  readonly #queues = new Map<string, Promise<void>>();
  /** Devices answering at once, as the MQTT gateway bounds messages in flight (gateway.ts, MESSAGES_IN_FLIGHT). */
  readonly #inFlight = pLimit(100);
  #pending = 0;
  #idleWaiters: (() => void)[] = [];
  #handler: GatewayHandler | null = null;
  readonly counts: WireCounts = { commands: 0, deviceMessages: 0, refused: 0 };

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  addDevice(deviceId: string, identity: InstantDeviceIdentity, o: { failsUpdate?: boolean } = {}): void {
    this.#devices.set(deviceId, { ...identity, failsUpdate: o.failsUpdate ?? false, activeSlot: 'a', job: null });
  }

  /** What the device runs now. */
  versionOf(deviceId: string): string | undefined {
    return this.#devices.get(deviceId)?.firmwareVersion;
  }

  start(handler: GatewayHandler): Promise<void> {
    this.#handler = handler;
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await this.idle();
    this.#handler = null;
  }

  /** Every device says it is online and reports its state (what a device does when it connects). */
  announceAll(): void {
    for (const deviceId of this.#devices.keys()) {
      this.#enqueue(deviceId, async (h) => {
        await h.onAvailability(deviceId, this.#wire(availabilitySchema, { v: PROTOCOL_VERSION, online: true }).online, this.#clock.now());
        await h.onState(deviceId, this.#wire(deviceStateSchema, this.#state(deviceId)), this.#clock.now());
      });
    }
  }

  send(deviceId: string, command: Command): Promise<void> {
    this.counts.commands++;
    // The device reads the command off the wire like any agent would.
    const parsed = parsePayload(commandSchema, encode(command));
    if (!parsed.ok) throw new Error(`invalid command for ${deviceId}: ${parsed.error}`);
    const cmd = parsed.value;
    const device = this.#devices.get(deviceId);
    if (!device) return Promise.resolve();
    switch (cmd.type) {
      case 'offer':
        device.job = { jobId: cmd.jobId, version: cmd.version, phase: 'downloaded' };
        this.#enqueue(deviceId, async (h) => {
          await this.#event(h, deviceId, { v: PROTOCOL_VERSION, type: 'ack', jobId: cmd.jobId, accepted: true, code: null, message: null });
          await this.#event(h, deviceId, { v: PROTOCOL_VERSION, type: 'progress', jobId: cmd.jobId, phase: 'downloading', percent: 0 });
          await this.#event(h, deviceId, { v: PROTOCOL_VERSION, type: 'progress', jobId: cmd.jobId, phase: 'downloaded', percent: 100 });
        });
        break;
      case 'install': {
        const job = device.job;
        if (!job || job.jobId !== cmd.jobId || job.phase !== 'downloaded') break;
        job.phase = 'installing';
        this.#enqueue(deviceId, async (h) => {
          await this.#event(h, deviceId, { v: PROTOCOL_VERSION, type: 'progress', jobId: cmd.jobId, phase: 'installing', percent: 0 });
          await this.#event(h, deviceId, { v: PROTOCOL_VERSION, type: 'progress', jobId: cmd.jobId, phase: 'rebooting', percent: null });
          if (device.failsUpdate) {
            // The new image does not come up; the bootloader falls back to the old slot.
            device.job = null;
            this.counts.deviceMessages++;
            await h.onState(deviceId, this.#wire(deviceStateSchema, this.#state(deviceId)), this.#clock.now());
            await this.#event(h, deviceId, {
              v: PROTOCOL_VERSION, type: 'result', jobId: cmd.jobId, outcome: 'rolled-back', firmwareVersion: device.firmwareVersion, healthy: true,
              code: 'boot_failed', message: 'The new version did not start; the device went back to the old one.',
            });
            return;
          }
          // The switch to the other slot: the new version runs, the job is over on the device's side.
          device.firmwareVersion = job.version;
          device.activeSlot = device.activeSlot === 'a' ? 'b' : 'a';
          device.job = null;
          this.counts.deviceMessages++;
          await h.onState(deviceId, this.#wire(deviceStateSchema, this.#state(deviceId)), this.#clock.now());
          await this.#event(h, deviceId, {
            v: PROTOCOL_VERSION, type: 'result', jobId: cmd.jobId, outcome: 'installed', firmwareVersion: job.version, healthy: true, code: null, message: null,
          });
        });
        break;
      }
      case 'cancel':
        if (device.job?.jobId === cmd.jobId && device.job.phase === 'downloaded') device.job = null;
        break;
    }
    return Promise.resolve();
  }

  /** Resolves once every message already queued has been handled by the hub. */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #state(deviceId: string): DeviceState {
    const d = this.#devices.get(deviceId)!;
    return {
      v: PROTOCOL_VERSION, vendor: d.vendor, model: d.model, hardwareRevision: d.hardwareRevision, firmwareVersion: d.firmwareVersion,
      activeSlot: d.activeSlot, powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: null, busy: false,
      freeStorageBytes: 512 * 1024 * 1024, healthy: true,
      job: d.job === null ? null : { jobId: d.job.jobId, phase: d.job.phase },
    };
  }

  async #event(h: GatewayHandler, deviceId: string, event: DeviceEvent): Promise<void> {
    this.counts.deviceMessages++;
    await h.onEvent(deviceId, this.#wire(deviceEventSchema, event), this.#clock.now());
  }

  /** Through the wire contract and back: a message the schema refuses never reaches the hub. */
  #wire<T>(schema: Parameters<typeof parsePayload<T>>[0], message: DeviceState | Availability | DeviceEvent): T {
    const parsed = parsePayload(schema, encode(message));
    if (!parsed.ok) {
      this.counts.refused++;
      throw new Error(`the instant device sent an invalid message: ${parsed.error}`);
    }
    return parsed.value;
  }

  #enqueue(deviceId: string, task: (h: GatewayHandler) => Promise<void>): void {
    this.#pending++;
    const previous = this.#queues.get(deviceId) ?? Promise.resolve();
    const next = previous
      .then(() => this.#inFlight(() => {
        const h = this.#handler;
        return h ? task(h) : undefined;
      }))
      .catch((error: unknown) => {
        // The handler contract says it does not throw; a benchmark that sees one must say so loudly.
        process.exitCode = 1;
        console.error(`device ${deviceId}: message handling failed:`, error);
      })
      .finally(() => {
        if (this.#queues.get(deviceId) === next) this.#queues.delete(deviceId);
        if (--this.#pending === 0) {
          const waiters = this.#idleWaiters;
          this.#idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    this.#queues.set(deviceId, next);
  }
}
