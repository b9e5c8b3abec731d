/**
 * A simulated device: the real agent (DESIGN: "the device simulator is built on the real agent
 * with a simulated platform, never on a second copy of the logic") on simulated slots, power,
 * radio and usage. Everything timed runs on the injected clock, so with a ManualClock or a
 * ScaledClock a week of battery drain and evening TV passes in moments.
 */
import { Agent, MemoryHardware, buildFirmwareImage, sleepOn } from '@firmward/agent';
import type { AgentConfig, AgentTransport, DeviceIdentity, OfferVerifier } from '@firmward/agent';
import { FirmwardError, parseTimeOfDay, validateTimeZone } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { Clock, Logger } from '@firmward/ports';
import { silentLogger } from '@firmward/ports';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import { SimulatedEnvironment } from './environment.ts';
import type { DeviceProfile } from './profile.ts';
import { SeededRandom } from './random.ts';
import { SimulatedPlatform } from './simulated-platform.ts';

/** Pause before the agent tries to start again after its connection failed (the agent's own default). */
const AGENT_START_RETRY_MS = 1000;

export interface SimulatedDeviceDeps {
  clock: Clock;
  /** A new connection to the hub for each boot of the device (a restart ends the old session). */
  connect: (identity: DeviceIdentity) => AgentTransport;
  /** Seeded randomness for signal drift and drop-outs; seed 1 by default. */
  random?: SeededRandom;
  agentConfig?: Partial<AgentConfig>;
  log?: Logger;
  /** How often the radio link is checked for drop-outs (simulated time). 10 s by default. */
  linkCheckIntervalMs?: number;
  fetch?: typeof fetch;
  /** The device's own check of offers against the maker's signed repository (the demo's devices ship its root). */
  verifier?: OfferVerifier;
}

/**
 * The device's radio between the agent and the hub: down during drop-outs (the connection is
 * closed, so the hub sees it go offline), mute once the device hangs, dead after a power cut.
 */
class SimulatedLink implements AgentTransport {
  readonly #inner: AgentTransport;
  readonly #mute: () => boolean;
  #down = false;
  #dead = false;
  #started = false;

  constructor(inner: AgentTransport, mute: () => boolean) {
    this.#inner = inner;
    this.#mute = mute;
  }

  get up(): boolean {
    return this.#started && !this.#down && !this.#dead && !this.#mute();
  }

  async start(): Promise<void> {
    this.#started = true;
    if (!this.#down && !this.#dead) await this.#inner.start();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#inner.stop();
  }

  /** The power went: nothing more leaves this boot of the device. */
  async kill(): Promise<void> {
    this.#dead = true;
    await this.stop();
  }

  /** Follows the radio: closes the connection at a drop-out, reconnects after it. */
  async setDown(down: boolean): Promise<void> {
    if (down === this.#down || this.#dead) return;
    this.#down = down;
    if (!this.#started) return;
    if (down) await this.#inner.stop();
    else await this.#inner.start();
  }

  publishState(state: DeviceState): Promise<void> {
    if (!this.up) return Promise.reject(offline());
    return this.#inner.publishState(state);
  }

  publishEvent(event: DeviceEvent): Promise<void> {
    if (!this.up) return Promise.reject(offline());
    return this.#inner.publishEvent(event);
  }

  onCommand(handler: (command: Command) => void): () => void {
    return this.#inner.onCommand((command) => {
      if (this.up) handler(command);
    });
  }
}

function offline(): FirmwardError {
  return new FirmwardError('gateway_failure', 'The device has no connection to the hub right now.');
}

interface Boot {
  agent: Agent;
  link: SimulatedLink;
}

/**
 * @example
 * const device = createSimulatedDevice(demoProfiles().hallSensor, { clock, connect: () => new InProcessTransport() });
 * await device.start();
 * device.setCharging(true);
 */
export class SimulatedDevice {
  readonly profile: DeviceProfile;
  readonly hardware: MemoryHardware;
  readonly environment: SimulatedEnvironment;
  /** When the radio link went down, oldest first. */
  readonly dropouts: EpochMs[] = [];
  readonly #deps: SimulatedDeviceDeps;
  readonly #log: Logger;
  #boot: Boot | null = null;
  #generation = 0;
  #lifetime: AbortController | null = null;
  #linkLoop: Promise<void> = Promise.resolve();
  #offBoot: () => void = () => undefined;
  #silent = false;
  #hangsLeft: number;
  #down = false;
  #agentListeners = new Set<(agent: Agent) => void>();

  constructor(profile: DeviceProfile, hardware: MemoryHardware, environment: SimulatedEnvironment, deps: SimulatedDeviceDeps) {
    this.profile = profile;
    this.hardware = hardware;
    this.environment = environment;
    this.#deps = deps;
    this.#log = deps.log ?? silentLogger;
    this.#hangsLeft = profile.failure === 'goes-silent' ? 1 : 0;
  }

  get id(): string {
    return this.profile.identity.deviceId;
  }

  /** The agent of the current boot, or null while the device is off or restarting. */
  get agent(): Agent | null {
    return this.#boot?.agent ?? null;
  }

  /** What the device really runs (the hub should be told exactly this). */
  get runningVersion(): string | null {
    return this.hardware.poweredOn ? this.hardware.running.version : null;
  }

  /** The hub can hear it right now. */
  get online(): boolean {
    return this.#boot?.link.up ?? false;
  }

  /** It hung in its install ('goes-silent') and says nothing until it is power-cycled. */
  get silent(): boolean {
    return this.#silent;
  }

  /** Turns the device on (the first boot runs the agent at once) and starts following its radio. */
  async start(): Promise<void> {
    if (this.#lifetime) throw new FirmwardError('conflict', `${this.profile.name} is already running.`);
    const lifetime = new AbortController();
    this.#lifetime = lifetime;
    if (!this.hardware.poweredOn) this.hardware.powerOn();
    // Every later boot (restart or power back on) takes bootSeconds before the agent runs again.
    this.#offBoot = this.hardware.onBoot(() => {
      void this.#afterBoot(true);
    });
    this.#linkLoop = this.#followLink(lifetime.signal);
    await this.#afterBoot(false);
  }

  /** Stops the simulation of this device cleanly (the agent stops; the device keeps its slots). */
  async stop(): Promise<void> {
    const lifetime = this.#lifetime;
    if (!lifetime) return;
    this.#lifetime = null;
    this.#generation++;
    lifetime.abort();
    this.#offBoot();
    await this.#linkLoop;
    await this.#retire();
  }

  /** Cuts the power at once: the agent dies in whatever it was doing and unsynced writes are lost. */
  async powerCut(): Promise<void> {
    this.#generation++;
    const boot = this.#boot;
    await boot?.link.kill();
    this.hardware.powerCut();
    this.#silent = false;
    await this.#retire();
  }

  /** Power back: the bootloader picks a slot by its trial rules, the agent runs after bootSeconds. */
  powerOn(): void {
    this.hardware.powerOn();
  }

  /** Puts it on the charger (true), takes it off (false), or back to its schedule (null). */
  setCharging(on: boolean | null): void {
    this.environment.setCharging(on, this.#deps.clock.now());
  }

  /** Someone uses it (true), nobody does (false), or back to its usage pattern (null). */
  setBusy(on: boolean | null): void {
    this.environment.setBusy(on);
  }

  /** Pins the signal (dBm), or null for the profile's own. */
  setSignal(dbm: number | null): void {
    this.environment.setSignal(dbm);
  }

  /** Sees every agent the device starts (after each boot). */
  onAgentStarted(listener: (agent: Agent) => void): () => void {
    this.#agentListeners.add(listener);
    return () => this.#agentListeners.delete(listener);
  }

  /** Resolves with the next agent that starts. */
  whenAgentStarted(): Promise<Agent> {
    return new Promise((resolve) => {
      const off = this.onAgentStarted((agent) => {
        off();
        resolve(agent);
      });
    });
  }

  async #afterBoot(delayed: boolean): Promise<void> {
    const generation = ++this.#generation;
    await this.#retire();
    const lifetime = this.#lifetime;
    if (!lifetime) return;
    if (delayed) {
      try {
        await sleepOn(this.#deps.clock, this.profile.bootSeconds * 1000, lifetime.signal);
      } catch {
        return;
      }
    }
    if (generation !== this.#generation || !this.hardware.poweredOn) return;
    const { clock } = this.#deps;
    const platform = new SimulatedPlatform(this.hardware, {
      profile: this.profile,
      environment: this.environment,
      clock,
      hang: () => {
        if (this.#hangsLeft <= 0) return false;
        this.#hangsLeft--;
        this.#silent = true;
        this.#log.info('The device hangs in its install and goes silent.', { device: this.id });
        return true;
      },
    });
    // Start until it works, as the real agent's main does: a broker that drops the connection
    // while the agent says hello (a hub killed at that moment) is tried again a second later.
    let agent: Agent;
    for (;;) {
      const link = new SimulatedLink(this.#deps.connect(this.profile.identity), () => this.#silent);
      await link.setDown(this.#down);
      agent = new Agent({
        platform, transport: link, clock,
        ...(this.#deps.agentConfig ? { config: this.#deps.agentConfig } : {}),
        log: this.#log,
        ...(this.#deps.fetch ? { fetch: this.#deps.fetch } : {}),
        ...(this.#deps.verifier ? { verifier: this.#deps.verifier } : {}),
      });
      this.#boot = { agent, link };
      try {
        await agent.start();
        break;
      } catch (error) {
        this.#log.warn('The agent did not start; trying again.', { device: this.id, error: error instanceof Error ? error.message : String(error) });
        await this.#retire();
        await clock.sleep(AGENT_START_RETRY_MS);
        if (generation !== this.#generation || !this.hardware.poweredOn) return;
      }
    }
    for (const listener of [...this.#agentListeners]) listener(agent);
  }

  /** Lets go of the previous boot's agent and connection. */
  async #retire(): Promise<void> {
    const boot = this.#boot;
    if (!boot) return;
    this.#boot = null;
    await boot.agent.stop().catch(() => undefined);
    await boot.link.stop().catch(() => undefined);
  }

  async #followLink(signal: AbortSignal): Promise<void> {
    const { clock } = this.#deps;
    const every = this.#deps.linkCheckIntervalMs ?? 10_000;
    while (!signal.aborted) {
      const down = this.environment.inDropout(clock.now());
      if (down !== this.#down) {
        this.#down = down;
        if (down) this.dropouts.push(clock.now());
        await this.#boot?.link.setDown(down).catch(() => undefined);
      }
      try {
        await sleepOn(clock, every, signal);
      } catch {
        return;
      }
    }
  }
}

/** Checks a profile before a device is built on it; throws `config_invalid` with what is wrong. */
export function validateProfile(profile: DeviceProfile): void {
  const fail = (message: string) => {
    throw new FirmwardError('config_invalid', `${profile.name}: ${message}`);
  };
  try {
    validateTimeZone(profile.timeZone);
    for (const w of [...profile.busy, ...(profile.battery?.chargingWindows ?? []), ...(profile.signal?.dropoutWindows ?? [])]) {
      parseTimeOfDay(w.start);
      parseTimeOfDay(w.end);
    }
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  }
  if (profile.power === 'battery' && !profile.battery) fail('a battery device needs a battery profile.');
  if (profile.imageBytes > profile.slotCapacityBytes) fail('the factory image does not fit in a slot.');
  if (profile.installSeconds < 0 || profile.bootSeconds < 0) fail('durations cannot be negative.');
  if (profile.signal && (profile.signal.dropoutChancePerHour < 0 || profile.signal.dropoutChancePerHour > 1)) {
    fail('the drop-out chance is a number from 0 to 1.');
  }
}

/**
 * The image a release for this device would carry: the header the simulated bootloader reads
 * (vendor, model, version) and filler up to `bytes`. The demo maker signs and publishes these.
 *
 * @example
 * const image = buildReleaseImage(demoProfiles().kitchenPlug, '1.1.0');
 */
export function buildReleaseImage(profile: DeviceProfile, version: string, bytes = profile.imageBytes): Uint8Array {
  return buildFirmwareImage({ vendor: profile.identity.vendor, model: profile.identity.model, version }, bytes);
}

/**
 * Builds a simulated device from a profile: factory image in slot A, the failure mode wired into
 * its bootloader and health check, its environment starting at the clock's now.
 *
 * @example
 * const clock = new ManualClock(Date.UTC(2026, 2, 1, 20, 0));
 * const device = createSimulatedDevice(demoProfiles().livingRoomTv, { clock, connect: () => new InProcessTransport() });
 * await device.start();
 */
export function createSimulatedDevice(profile: DeviceProfile, deps: SimulatedDeviceDeps): SimulatedDevice {
  validateProfile(profile);
  const hardware = new MemoryHardware({
    identity: profile.identity,
    slotCapacityBytes: profile.slotCapacityBytes,
    factoryImage: buildReleaseImage(profile, profile.firmwareVersion),
    // 'no-boot': only the factory image starts; any new one fails every boot attempt.
    imageStarts: (header) => profile.failure !== 'no-boot' || header.version === profile.firmwareVersion,
  });
  const environment = new SimulatedEnvironment(profile, deps.random ?? new SeededRandom(1), deps.clock.now());
  return new SimulatedDevice(profile, hardware, environment, deps);
}
