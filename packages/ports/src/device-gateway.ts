import type { EpochMs, JobState } from '@firmward/core';
import type { CancelCommand, DeviceEvent, DeviceState, InstallCommand, OfferCommand } from '@firmward/protocol';

/** What a gateway tells the hub. Handlers must not throw; the gateway logs what they reject. */
export interface GatewayHandler {
  onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void>;
  onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void>;
  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void>;
  /** A message that could not be accepted (bad JSON, wrong schema, unknown device): nothing changed. */
  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void;
}

/**
 * The hub's side of a device protocol. Commands are idempotent by job id: sending the same one
 * twice is harmless, and the hub re-sends until the device answers.
 */
export interface DeviceGateway {
  readonly name: string;
  start(handler: GatewayHandler): Promise<void>;
  stop(): Promise<void>;
  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void>;
  /**
   * True for a device that installs as soon as its download completes and cannot wait for a
   * go-ahead (a hawkBit client such as SWUpdate): the hub then treats its offer as the go-ahead —
   * every check runs before the offer — and approves the install itself at "downloaded".
   */
  installsOnOffer?(deviceId: string): boolean;
  /**
   * Called at hub start for every update still running, with the offer it was sent and the state
   * the hub recorded, for a gateway that keeps per-update state in memory (a polled protocol learns
   * nothing from a re-send).
   */
  restore?(deviceId: string, offer: OfferCommand, state: JobState): Promise<void>;
  /**
   * Drops what the gateway keeps in memory about a device a person removed, approved or cut off,
   * so it starts afresh with it (a polled device is asked what it is again).
   */
  forget?(deviceId: string): void;
}
