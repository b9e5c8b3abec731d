/**
 * One DeviceGateway for the engine over several: our MQTT protocol for Firmward agents, plus the
 * bridges (hawkBit clients, Zigbee2MQTT, Tasmota, Shelly). Each command goes to the gateway that
 * speaks for the device; the engine's rules stay the same whichever protocol carries them.
 * The hub waits for its own gateway only: each bridge starts in the background and tries again
 * with backoff (bridge-runner.ts), so an ecosystem's broker that is down never keeps the hub down.
 */
import { FirmwardError } from '@firmward/core';
import type { EpochMs, JobState } from '@firmward/core';
import { SystemClock } from '@firmward/ports';
import type { Bridge, BridgeHandler, Clock, DeviceGateway, DiscoveredDevice, GatewayHandler, Logger, Store } from '@firmward/ports';
import type { CancelCommand, InstallCommand, OfferCommand } from '@firmward/protocol';
import { BRIDGE_OFF, BridgeRunner } from './bridge-runner.ts';
import type { BridgeStatus } from './bridge-runner.ts';

export interface RoutedBridge {
  bridge: Bridge;
  /** The home the bridge's devices belong to (a bridge serves one home's ecosystem). */
  homeId: string;
  /**
   * A device it finds that the hub does not know waits for a person's approval instead of joining
   * `homeId` at once (hawkBit clients registering themselves: nothing vouches for them but the
   * tenant's shared token). Its name then stays the one the person approved.
   */
  approval?: boolean;
}

/** A device an approval bridge found that the hub does not know yet, with the home it is proposed for ('' : none). */
export type SelfRegistration = (found: DiscoveredDevice, homeId: string) => Promise<void>;

/** A bridge that is turned on, and what keeps it starting. */
interface OnBridge {
  routed: RoutedBridge;
  runner: BridgeRunner;
}

export class GatewayRouter implements DeviceGateway {
  readonly #fallback: DeviceGateway;
  /** Bridges turned on, running or not yet: a command to one of their devices goes to them only when running. */
  #bridges: OnBridge[];
  /** Bridges a person turned off: they still say which devices are theirs, so commands to those are refused, never sent elsewhere. */
  readonly #off = new Map<string, Bridge>();
  readonly #store: Store;
  readonly #log: Logger;
  readonly #onRegistered: () => void;
  readonly #onSelfRegistered: SelfRegistration;
  readonly #clock: Clock;
  #handler: GatewayHandler | null = null;

  /**
   * `fallback` carries every device no bridge claims: Firmward's own agents. `clock` times the
   * pauses between a bridge's attempts to start (the system clock by default).
   */
  constructor(o: {
    fallback: DeviceGateway; bridges: readonly RoutedBridge[]; store: Store; log: Logger; onRegistered?: () => void; clock?: Clock;
    onSelfRegistered?: SelfRegistration;
  }) {
    this.#fallback = o.fallback;
    this.#onSelfRegistered = o.onSelfRegistered ?? (() => Promise.resolve());
    this.#onRegistered = o.onRegistered ?? (() => {});
    this.#clock = o.clock ?? new SystemClock();
    this.#store = o.store;
    this.#log = o.log;
    this.#bridges = o.bridges.map((routed) => this.#on(routed));
  }

  get name(): string {
    return [this.#fallback.name, ...this.#bridges.map((b) => b.routed.bridge.name)].join('+');
  }

  /** The bridges turned on, whether they run yet or not. */
  get bridges(): readonly RoutedBridge[] {
    return this.#bridges.map((b) => b.routed);
  }

  /** How a bridge is doing: off when it is not turned on. */
  statusOf(name: string): BridgeStatus {
    return this.#bridges.find((b) => b.routed.bridge.name === name)?.runner.status ?? BRIDGE_OFF;
  }

  /** Waits for the hub's own gateway; the bridges start in the background and keep trying until they run. */
  async start(handler: GatewayHandler): Promise<void> {
    this.#handler = handler;
    await this.#fallback.start(handler);
    for (const on of this.#bridges) on.runner.startInBackground();
  }

  /**
   * Turns a bridge on, changes it, or turns it off (`next` null) while the hub runs: the old one
   * stops first (and stops trying). A person waits for the answer, so the new one gets one attempt:
   * it runs when this resolves, and is left off when this throws its error. Devices of a bridge
   * that is off keep their ids; commands to them are refused.
   */
  async replaceBridge(name: string, next: RoutedBridge | null, ownerWhenOff: Bridge | null): Promise<void> {
    const old = this.#bridges.find((b) => b.routed.bridge.name === name);
    if (old) {
      this.#bridges = this.#bridges.filter((b) => b !== old);
      await old.runner.stop();
    }
    this.#off.delete(name);
    if (next === null) {
      if (ownerWhenOff) this.#off.set(name, ownerWhenOff);
      return;
    }
    // Listed before it starts, so commands to its devices are refused meanwhile, never sent elsewhere.
    const on = this.#on(next);
    this.#bridges.push(on);
    if (!this.#handler) return;
    try {
      await on.runner.startOnce();
    } catch (error) {
      this.#bridges = this.#bridges.filter((b) => b !== on);
      throw error;
    }
  }

  #on(routed: RoutedBridge): OnBridge {
    const runner = new BridgeRunner({
      name: routed.bridge.name, clock: this.#clock, log: this.#log,
      start: (signal) => {
        if (!this.#handler) return Promise.reject(new FirmwardError('internal', 'The gateway router has not started.'));
        return routed.bridge.start(this.#bridgeHandler(routed, this.#handler), signal);
      },
      stop: () => routed.bridge.stop(),
    });
    return { routed, runner };
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

  /** Stops every bridge, and every attempt or pause of one still starting, then the hub's own gateway. */
  async stop(): Promise<void> {
    for (const on of [...this.#bridges].reverse()) await on.runner.stop();
    await this.#fallback.stop();
  }

  send(deviceId: string, command: OfferCommand | InstallCommand | CancelCommand): Promise<void> {
    return this.#gatewayOf(deviceId).send(deviceId, command);
  }

  /** Asked of the bridge itself even while it starts: the answer is what kind of device it is, not whether it is reachable. */
  installsOnOffer(deviceId: string): boolean {
    return this.#ownerOf(deviceId).installsOnOffer?.(deviceId) ?? false;
  }

  /** A running update handed back after a restart reaches its bridge even before it runs: it keeps it in memory, nothing is sent. */
  async restore(deviceId: string, offer: OfferCommand, state: JobState): Promise<void> {
    await this.#ownerOf(deviceId).restore?.(deviceId, offer, state);
  }

  /** Where a command goes: the bridge that owns the device when it runs; refused when it is off or not running yet, never sent elsewhere. */
  #gatewayOf(deviceId: string): DeviceGateway {
    const on = this.#bridges.find((b) => b.routed.bridge.owns(deviceId));
    if (on) {
      if (on.runner.running) return on.routed.bridge;
      const name = on.routed.bridge.name;
      const why = on.runner.status.message;
      return refusing(name, `The ${name} bridge is not running yet, so Firmward cannot reach this device${why === null ? '; it keeps trying to start it.' : `. ${why}`}`);
    }
    for (const [name, off] of this.#off) {
      if (off.owns(deviceId)) return refusing(name, `The ${name} bridge is turned off, so Firmward cannot reach this device.`);
    }
    return this.#fallback;
  }

  /** How a device is reached: the name of the bridge that speaks for it (on or off), or "agent" (our own MQTT protocol). */
  protocolOf(deviceId: string): string {
    const on = this.#bridges.find((b) => b.routed.bridge.owns(deviceId))?.routed.bridge.name;
    if (on !== undefined) return on;
    for (const [name, off] of this.#off) if (off.owns(deviceId)) return name;
    return 'agent';
  }

  /** The device's gateway drops what it keeps in memory about it (it was removed, approved or cut off). */
  forget(deviceId: string): void {
    this.#ownerOf(deviceId).forget?.(deviceId);
  }

  /** The gateway that speaks for the device, running or not (a bridge turned off answers for nothing). */
  #ownerOf(deviceId: string): DeviceGateway {
    const on = this.#bridges.find((b) => b.routed.bridge.owns(deviceId))?.routed.bridge;
    if (on) return on;
    for (const [name, off] of this.#off) {
      if (off.owns(deviceId)) return refusing(name, `The ${name} bridge is turned off.`);
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
      if (!known && routed.approval === true) {
        await this.#onSelfRegistered(found, routed.homeId);
        return;
      }
      // A device a person approved or registered keeps the name the person gave it.
      const name = known && routed.approval === true ? known.name : found.name;
      if (known && known.name === name && known.firmwareVersion === found.firmwareVersion) return;
      await this.#store.putDevice({
        id: found.id, homeId: known?.homeId ?? routed.homeId, name, vendor: found.vendor, model: found.model,
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

/** Stands in for a bridge that is turned off or not running: nothing reaches its devices, and the hub is told why. */
function refusing(name: string, why: string): DeviceGateway {
  const refuse = () => Promise.reject(new FirmwardError('gateway_failure', why));
  return { name, start: () => Promise.resolve(), stop: () => Promise.resolve(), send: refuse };
}
