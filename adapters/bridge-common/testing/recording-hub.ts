/** A BridgeHandler that records every call (a fake hub), for the bridges' tests. */
import type { EpochMs } from '@firmward/core';
import type { BridgeHandler, DiscoveredDevice } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';

export type HubCall =
  | { kind: 'discovered'; device: DiscoveredDevice; at: EpochMs }
  | { kind: 'state'; deviceId: string; state: DeviceState; at: EpochMs }
  | { kind: 'availability'; deviceId: string; online: boolean; at: EpochMs }
  | { kind: 'event'; deviceId: string; event: DeviceEvent; at: EpochMs }
  | { kind: 'rejected'; deviceId: string | null; topic: string; error: string; at: EpochMs };

/**
 * The hub as the bridge sees it: records every call in order and lets a test wait until something has arrived.
 *
 * @example
 * const hub = new RecordingHub();
 * await bridge.start(hub);
 * const { device } = await hub.next('discovered', (c) => c.device.id === 'tasmota-kitchen');
 */
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

  /** Resolves once `until` holds for the calls so far. */
  waitFor(until: (calls: HubCall[]) => boolean): Promise<void> {
    if (until(this.calls)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  /** Resolves with the first call from index `from` on that matches. */
  async next<K extends HubCall['kind']>(kind: K, match: (call: Extract<HubCall, { kind: K }>) => boolean = () => true, from = 0): Promise<Extract<HubCall, { kind: K }>> {
    const find = (calls: HubCall[]) => calls.slice(from).find((c): c is Extract<HubCall, { kind: K }> => c.kind === kind && match(c as Extract<HubCall, { kind: K }>));
    await this.waitFor((calls) => find(calls) !== undefined);
    return find(this.calls)!;
  }

  /** The events of one device, or of every device when none is named. */
  events(deviceId?: string): DeviceEvent[] {
    return this.calls.flatMap((c) => (c.kind === 'event' && (deviceId === undefined || c.deviceId === deviceId) ? [c.event] : []));
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
