/** Test fixtures: a real broker on a free loopback port, real credentials, a recording handler. */
import type { EpochMs } from '@firmward/core';
import type { GatewayHandler } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { EmbeddedBroker } from '../src/broker.ts';
import type { Logger } from '@firmward/ports';
import { credentialCheck } from '../src/credential-check.ts';
import type { StoredCredential } from '../src/credential-check.ts';
import { hashSecret } from '../src/secrets.ts';

/** Cheap scrypt parameters: the tests exercise the logic, not the cost. */
export const TEST_COST = { n: 1024, r: 8, p: 1 } as const;

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  detail: Readonly<Record<string, unknown>> | undefined;
}

export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (message: string, detail?: Readonly<Record<string, unknown>>) => {
    lines.push({ level, message, detail });
  };
  const logger: Logger & { lines: LogLine[] } = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}

export interface TestBroker {
  broker: EmbeddedBroker;
  url: string;
  port: number;
  hub: { username: string; password: string };
  /** deviceId → secret */
  devices: Map<string, string>;
  logs: LogLine[];
  stop(): Promise<void>;
}

/** A broker on 127.0.0.1 with a free port, the user "hub" and one user per device id given. */
export async function startTestBroker(deviceIds: string[], options: { port?: number } = {}): Promise<TestBroker> {
  const users = new Map<string, StoredCredential>();
  const hubPassword = 'hub-secret';
  users.set('hub', { principal: { role: 'hub' }, secretHash: await hashSecret(hubPassword, TEST_COST) });
  const devices = new Map<string, string>();
  for (const deviceId of deviceIds) {
    const secret = `secret-of-${deviceId}`;
    devices.set(deviceId, secret);
    users.set(deviceId, { principal: { role: 'device', deviceId }, secretHash: await hashSecret(secret, TEST_COST) });
  }
  const logger = recordingLogger();
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: options.port ?? 0, credentials: credentialCheck((u) => users.get(u) ?? null), logger });
  const { port } = await broker.start();
  return {
    broker, port, url: `mqtt://127.0.0.1:${port}`, hub: { username: 'hub', password: hubPassword }, devices, logs: logger.lines,
    stop: () => broker.stop(),
  };
}

export type HandlerCall =
  | { kind: 'state'; deviceId: string; state: DeviceState; at: EpochMs }
  | { kind: 'availability'; deviceId: string; online: boolean; at: EpochMs }
  | { kind: 'event'; deviceId: string; event: DeviceEvent; at: EpochMs }
  | { kind: 'rejected'; deviceId: string | null; topic: string; error: string; at: EpochMs };

/** A GatewayHandler that records every call and lets a test wait for the n-th one. */
export class RecordingHandler implements GatewayHandler {
  readonly calls: HandlerCall[] = [];
  #waiters: { until: (calls: HandlerCall[]) => boolean; resolve: () => void }[] = [];
  /** Runs inside each onState/onEvent/onAvailability call before it returns (to make a handler slow). */
  before: ((call: HandlerCall) => Promise<void>) | null = null;

  async onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    await this.#record({ kind: 'state', deviceId, state, at });
  }
  async onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    await this.#record({ kind: 'availability', deviceId, online, at });
  }
  async onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    await this.#record({ kind: 'event', deviceId, event, at });
  }
  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#push({ kind: 'rejected', ...info });
  }

  /** Resolves once `until` holds for the calls so far. */
  waitFor(until: (calls: HandlerCall[]) => boolean): Promise<void> {
    if (until(this.calls)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  async #record(call: HandlerCall): Promise<void> {
    if (this.before) await this.before(call);
    this.#push(call);
  }

  #push(call: HandlerCall): void {
    this.calls.push(call);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.until(this.calls)) return true;
      w.resolve();
      return false;
    });
  }
}

export function sampleState(overrides: Partial<DeviceState> = {}): DeviceState {
  return {
    v: 1, vendor: 'acme', model: 'plug-s', hardwareRevision: 'r2', firmwareVersion: '1.2.0', activeSlot: 'a',
    powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -55, busy: false,
    freeStorageBytes: 1_000_000, healthy: true, job: null, ...overrides,
  };
}

export function ackEvent(jobId: string): DeviceEvent {
  return { v: 1, type: 'ack', jobId, accepted: true, code: null, message: null };
}
