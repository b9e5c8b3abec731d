/**
 * One DeviceGateway for the engine over several: our MQTT protocol for Firmward agents, plus the
 * bridges (hawkBit clients, Zigbee2MQTT, Tasmota, Shelly). Each command goes to the gateway that
 * speaks for the device; the engine's rules stay the same whichever protocol carries them.
 */
import { FirmwardError } from '@firmward/core';
import type { EpochMs, JobState } from '@firmward/core';
import type { Bridge, BridgeHandler, DeviceGateway, DiscoveredDevice, GatewayHandler, Logger, Store } from '@firmward/ports';
import type { CancelCommand, InstallCommand, OfferCommand } from '@firmward/protocol';

export interface RoutedBridge {
  bridge: Bridge;
  /** The home the bridge's devices belong to (a bridge serves one home's ecosystem). */
  homeId: string;
}

export class GatewayRouter implements DeviceGateway {
  readonly #fallback: DeviceGateway;
  #bridges: RoutedBridge[];
  /** Bridges a person turned off: they still say which devices are theirs, so commands to those are refused, never sent elsewhere. */
  readonly #off = new Map<string, Bridge>();
  readonly #store: Store;
  readonly #log: Logger;
  readonly #onRegistered: () => void;
  #handler: GatewayHandler | null = null;

  /** `fallback` carries every device no bridge claims: Firmward's own agents. */
  constructor(o: { fallback: DeviceGateway; bridges: readonly RoutedBridge[]; store: Store; log: Logger; onRegistered?: () => void }) {
    this.#fallback = o.fallback;
    this.#onRegistered = o.onRegistered ?? (() => {});
    this.#bridges = [...o.bridges];
    this.#store = o.store;
    this.#log = o.log;
  }

  get name(): string {
    return [this.#fallback.name, ...this.#bridges.map((b) => b.bridge.name)].join('+');
  }

  get bridges(): readonly RoutedBridge[] {
    return this.#bridges;
  }

  async start(handler: GatewayHandler): Promise<void> {
    this.#handler = handler;
    await this.#fallback.start(handler);
    for (const routed of this.#bridges) await routed.bridge.start(this.#bridgeHandler(routed, handler));
  }

  /**
   * Turns a bridge on, changes it, or turns it off (`next` null) while the hub runs: the old one
   * stops first. Devices of a bridge that is off keep their ids; commands to them are refused.
   */
  async replaceBridge(name: string, next: RoutedBridge | null, ownerWhenOff: Bridge | null): Promise<void> {
    const old = this.#bridges.find((b) => b.bridge.name === name);
    if (old) {
      this.#bridges = this.#bridges.filter((b) => b !== old);
      await old.bridge.stop().catch((error: unknown) => this.#log.warn('bridge stop failed', { bridge: name, error: String(error) }));
    }
    this.#off.delete(name);
    if (next === null) {
      if (ownerWhenOff) this.#off.set(name, ownerWhenOff);
      return;
    }
    if (this.#handler) await next.bridge.start(this.#bridgeHandler(next, this.#handler));
    this.#bridges.push(next);
  }

  #bridgeHandler(routed: RoutedBridge, handler: GatewayHandler): BridgeHandler {
    return {
      onState: (id, state, at) => handler.onState(id, state, at),
      onAvailability: (id, online, at) => handler.onAvailability(id, online, at),
      onEvent: (id, event, at) => handler.onEvent(id, event, at),
      onRejected: (info) => handler.onRejected(info),
      onDiscovered: (device, at) => this.#register(routed, device, at, handler),
    };
  }

  async stop(): Promise<void> {
    for (const routed of [...this.#bridges].reverse()) {
      await routed.bridge.stop().catch((error: unknown) => this.#log.warn('bridge stop failed', { bridge: routed.bridge.name, error: String(error) }));
    }
    await this.#fallback.stop();
  }

  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    return this.#gatewayOf(deviceId).send(deviceId, command);
  }

  installsOnOffer(deviceId: string): boolean {
    return this.#gatewayOf(deviceId).installsOnOffer?.(deviceId) ?? false;
  }

  async restore(deviceId: string, offer: OfferCommand, state: JobState): Promise<void> {
    await this.#gatewayOf(deviceId).restore?.(deviceId, offer, state);
  }

  #gatewayOf(deviceId: string): DeviceGateway {
    const on = this.#bridges.find((b) => b.bridge.owns(deviceId))?.bridge;
    if (on) return on;
    for (const [name, off] of this.#off) {
      if (off.owns(deviceId)) return refusing(name);
    }
    return this.#fallback;
  }

  /**
   * A device a bridge found joins the bridge's home. For these devices the ecosystem's inventory is
   * the provisioning; still, a known device whose vendor, model or hardware revision changes is
   * refused (a different device under the same id must be removed and added again by a person),
   * because compatibility (invariant 2) rests on that identity.
   */
  async #register(routed: RoutedBridge, found: DiscoveredDevice, at: EpochMs, handler: GatewayHandler): Promise<void> {
    try {
      const known = await this.#store.getDevice(found.id);
      if (known && (known.vendor !== found.vendor || known.model !== found.model || known.hardwareRevision !== found.hardwareRevision)) {
        handler.onRejected({ deviceId: found.id, topic: routed.bridge.name, error: `identity ${found.vendor}/${found.model}/${found.hardwareRevision} does not match the registered device`, at });
        return;
      }
      if (known && known.name === found.name && known.firmwareVersion === found.firmwareVersion) return;
      await this.#store.putDevice({
        id: found.id, homeId: known?.homeId ?? routed.homeId, name: found.name, vendor: found.vendor, model: found.model,
        hardwareRevision: found.hardwareRevision, firmwareVersion: found.firmwareVersion,
        policy: known?.policy ?? null, thresholds: known?.thresholds ?? {}, schedules: known?.schedules ?? [],
      });
      if (!known) this.#log.info('device found by a bridge', { deviceId: found.id, bridge: routed.bridge.name, homeId: routed.homeId });
      this.#onRegistered();
    } catch (error) {
      handler.onRejected({ deviceId: found.id, topic: routed.bridge.name, error: `could not register: ${String(error)}`, at });
    }
  }
}

/** Stands in for a bridge that is turned off: nothing reaches its devices, and the hub is told so. */
function refusing(name: string): DeviceGateway {
  const refuse = () => Promise.reject(new FirmwardError('gateway_failure', `The ${name} bridge is turned off, so Firmward cannot reach this device.`));
  return { name, start: () => Promise.resolve(), stop: () => Promise.resolve(), send: refuse };
}
