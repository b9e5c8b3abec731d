/** Test fixtures: a plain aedes broker on a free loopback port, and a BridgeHandler that records every call (a fake hub). */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { Aedes } from 'aedes';
import type { EpochMs } from '@firmward/core';
import type { BridgeHandler, DiscoveredDevice } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';

export interface PlainBroker {
  url: string;
  stop(): Promise<void>;
}

/** A broker with no users and no ACLs, as a home's Tasmota setup often has (not our EmbeddedBroker, whose ACLs allow Firmward's topics only). */
export async function startPlainBroker(): Promise<PlainBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type Call =
  | { kind: 'discovered'; device: DiscoveredDevice; at: EpochMs }
  | { kind: 'state'; deviceId: string; state: DeviceState; at: EpochMs }
  | { kind: 'availability'; deviceId: string; online: boolean; at: EpochMs }
  | { kind: 'event'; deviceId: string; event: DeviceEvent; at: EpochMs }
  | { kind: 'rejected'; deviceId: string | null; topic: string; error: string; at: EpochMs };

/** The hub as the bridge sees it: records every call and lets a test wait until something has arrived. */
export class RecordingHub implements BridgeHandler {
  readonly calls: Call[] = [];
  #waiters: { until: (calls: Call[]) => boolean; resolve: () => void }[] = [];

  onDiscovered(device: DiscoveredDevice, at: EpochMs): Promise<void> {
    this.#push({ kind: 'discovered', device, at });
    return Promise.resolve();
  }
  onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    this.#push({ kind: 'state', deviceId, state, at });
    return Promise.resolve();
  }
  onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    this.#push({ kind: 'availability', deviceId, online, at });
    return Promise.resolve();
  }
  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    this.#push({ kind: 'event', deviceId, event, at });
    return Promise.resolve();
  }
  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#push({ kind: 'rejected', ...info });
  }

  /** Resolves once `until` holds for the calls so far. */
  waitFor(until: (calls: Call[]) => boolean): Promise<void> {
    if (until(this.calls)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  /** Resolves with the first call from index `from` on that matches. */
  async next<K extends Call['kind']>(kind: K, match: (call: Extract<Call, { kind: K }>) => boolean = () => true, from = 0): Promise<Extract<Call, { kind: K }>> {
    const find = (calls: Call[]) => calls.slice(from).find((c): c is Extract<Call, { kind: K }> => c.kind === kind && match(c as Extract<Call, { kind: K }>));
    await this.waitFor((calls) => find(calls) !== undefined);
    return find(this.calls)!;
  }

  events(deviceId: string): DeviceEvent[] {
    return this.calls.flatMap((c) => (c.kind === 'event' && c.deviceId === deviceId ? [c.event] : []));
  }

  states(deviceId: string): DeviceState[] {
    return this.calls.flatMap((c) => (c.kind === 'state' && c.deviceId === deviceId ? [c.state] : []));
  }

  lastState(deviceId: string): DeviceState | undefined {
    return this.states(deviceId).at(-1);
  }

  /** Short lines for assertions on order: "ack job-1 true", "progress job-1 installing", "result job-1 installed". */
  eventLines(deviceId: string): string[] {
    return this.events(deviceId).map((e) => {
      switch (e.type) {
        case 'ack': return `ack ${e.jobId} ${e.accepted ? 'accepted' : `refused ${e.code ?? ''}`}`;
        case 'progress': return `progress ${e.jobId} ${e.phase}`;
        case 'result': return `result ${e.jobId} ${e.outcome} ${e.firmwareVersion}`;
      }
    });
  }

  #push(call: Call): void {
    this.calls.push(call);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.until(this.calls)) return true;
      w.resolve();
      return false;
    });
  }
}
