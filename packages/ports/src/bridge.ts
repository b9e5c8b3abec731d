import type { EpochMs, PowerSource, Release } from '@firmward/core';
import type { DeviceGateway, GatewayHandler } from './device-gateway.ts';

/**
 * A device another system already manages (Zigbee2MQTT, Tasmota, Shelly), as its bridge found it.
 * The hub adds it to the bridge's configured home, or updates what it knows about it.
 */
export interface DiscoveredDevice {
  /** Unique across the hub: the bridge's prefix and the ecosystem's own id, e.g. "z2m-0x00158d0001a2b3c4". */
  id: string;
  name: string;
  vendor: string;
  model: string;
  /** What the ecosystem says about the hardware (Zigbee image type, Shelly "gen2"/app name, Tasmota module); "" when unknown is not allowed — use the model. */
  hardwareRevision: string;
  firmwareVersion: string;
  powerSource: PowerSource;
}

export interface BridgeHandler extends GatewayHandler {
  /** Called when a device is seen for the first time and whenever what the ecosystem says about it changes. */
  onDiscovered(device: DiscoveredDevice, at: EpochMs): Promise<void>;
}

/**
 * An ecosystem bridge: a DeviceGateway for devices another system manages. It speaks our
 * protocol to the hub (it synthesises `DeviceState` reports and ack/progress/result events from
 * the ecosystem's own messages, so the engine's rules apply unchanged) and the ecosystem's
 * protocol to the devices.
 */
export interface Bridge extends DeviceGateway {
  /**
   * Connects to the ecosystem; rejects, leaving nothing running, when it cannot (the hub tries
   * again later). `signal` gives up a start still waiting for the ecosystem (the hub stops, or a
   * person changed the bridge).
   */
  start(handler: BridgeHandler, signal?: AbortSignal): Promise<void>;
  /** The devices this bridge speaks for (the hub routes commands by this). */
  owns(deviceId: string): boolean;
  /**
   * Releases the ecosystem itself vouches for (Zigbee2MQTT's OTA index, Shelly's stable
   * channel), each with `origin` set; [] when the bridge's images come from the maker's signed
   * repository.
   */
  releases(): Release[];
}
