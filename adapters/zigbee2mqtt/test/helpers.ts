/** Test fixtures: a plain MQTT broker on loopback, a recording hub, a recording logger. */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import type { EpochMs } from '@firmward/core';
import type { BridgeHandler, DiscoveredDevice, Logger } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';

export interface PlainBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A plain aedes broker on 127.0.0.1 and a free port: no ACLs, like the broker a Zigbee2MQTT
 * installation brings (our EmbeddedBroker allows Firmward's topics only).
 */
export async function startPlainBroker(): Promise<PlainBroker> {
  const aedes = await Aedes.createBroker();
  const server = createServer(aedes.handle);
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

export type HubCall =
  | { kind: 'discovered'; device: DiscoveredDevice; at: EpochMs }
  | { kind: 'state'; deviceId: string; state: DeviceState; at: EpochMs }
  | { kind: 'availability'; deviceId: string; online: boolean; at: EpochMs }
  | { kind: 'event'; deviceId: string; event: DeviceEvent; at: EpochMs }
  | { kind: 'rejected'; deviceId: string | null; topic: string; error: string; at: EpochMs };

/** A fake hub: records every call in order and lets a test wait until a condition holds. */
export class RecordingHub implements BridgeHandler {
  readonly calls: HubCall[] = [];
  #waiters: { until: (calls: HubCall[]) => boolean; resolve: () => void }[] = [];

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

  waitFor(until: (calls: HubCall[]) => boolean): Promise<void> {
    if (until(this.calls)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  /** Waits for the n-th call (1-based) after `from` that matches, and returns it. */
  async next<K extends HubCall['kind']>(kind: K, match: (call: Extract<HubCall, { kind: K }>) => boolean = () => true, from = 0): Promise<Extract<HubCall, { kind: K }>> {
    const find = (calls: HubCall[]) => calls.slice(from).find((c): c is Extract<HubCall, { kind: K }> => c.kind === kind && match(c as Extract<HubCall, { kind: K }>));
    await this.waitFor((calls) => find(calls) !== undefined);
    return find(this.calls)!;
  }

  events(deviceId?: string): DeviceEvent[] {
    return this.calls.flatMap((c) => (c.kind === 'event' && (deviceId === undefined || c.deviceId === deviceId) ? [c.event] : []));
  }

  states(deviceId: string): DeviceState[] {
    return this.calls.flatMap((c) => (c.kind === 'state' && c.deviceId === deviceId ? [c.state] : []));
  }

  #push(call: HubCall): void {
    this.calls.push(call);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.until(this.calls)) return true;
      w.resolve();
      return false;
    });
  }
}

/** Events in a short form that reads well in assertions: "ack ok", "ack no not_now", "progress installing 40", "result installed 2". */
export function brief(event: DeviceEvent): string {
  switch (event.type) {
    case 'ack': return event.accepted ? 'ack ok' : `ack no ${event.code}`;
    case 'progress': return `progress ${event.phase} ${event.percent ?? '-'}`;
    case 'result': return `result ${event.outcome} ${event.firmwareVersion}`;
  }
}

export function recordingLogger(): Logger & { lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> | undefined }[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  const logger = { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => logger };
  return logger;
}
