/**
 * The bridges as a person sets them from the dashboard (or the API): on or off, which broker,
 * which login name, which home. What is set here is kept in `<dataDir>/bridges.json` (mode 0600)
 * and wins over the config file at the next start; passwords stay in the config file or the
 * environment, never in the browser. A change takes effect at once: the old bridge stops, the new
 * one starts. A bridge whose device is in the middle of an update is not turned off or changed —
 * the hub would lose sight of an install it must see to the end (invariant 6).
 *
 * At hub start the bridges start in the background and keep trying with backoff until they run
 * (bridge-runner.ts): an ecosystem's broker that is down does not keep the hub down, and each
 * bridge's `status` says how it is doing. A person who turns one on or changes it gets an answer
 * at once instead: on and running, or left off with the bridge's reason.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ACTIVE_STATES, FirmwardError } from '@firmward/core';
import type { Bridge, Clock, Logger, Store } from '@firmward/ports';
import type { HomeAssistantHub } from '@firmward/homeassistant';
import { BRIDGE_OFF, BridgeRunner } from './bridge-runner.ts';
import type { BridgeStatus } from './bridge-runner.ts';
import { GATEWAY_BRIDGES, bridgesSchema, createBridge, createHomeAssistant } from './bridges.ts';
import type { BridgesConfig, GatewayBridgeName } from './bridges.ts';
import type { GatewayRouter } from './gateway-router.ts';
import { writeSecretFile } from './secret-file.ts';

export const BRIDGE_NAMES = [...GATEWAY_BRIDGES, 'homeAssistant'] as const;
export type BridgeName = (typeof BRIDGE_NAMES)[number];

/** What a person may change of one bridge (no secrets). */
export const bridgePatchSchema = z.strictObject({
  enabled: z.boolean().optional(),
  url: z.string().max(500).optional(),
  username: z.string().max(200).optional(),
  homeId: z.string().max(200).optional(),
});
export type BridgePatch = z.infer<typeof bridgePatchSchema>;

export interface BridgeView {
  name: BridgeName;
  enabled: boolean;
  url: string;
  username: string;
  /** Whether a password is set (in the config file or the environment); never the password. */
  passwordSet: boolean;
  /** The home its devices join ('' for Home Assistant, which shows every home). */
  homeId: string;
  /** Where the settings come from: the config file alone, or changed from the dashboard. */
  changedHere: boolean;
  /** Whether it runs; when it does not, why (in the bridge's own words) and when it tries again. */
  status: BridgeStatus;
}

const FILE = 'bridges.json';

/** The settings kept in the data folder, merged over the config file's (a file that does not parse is reported, not guessed). */
export function withSavedBridges(config: BridgesConfig, dataDir: string): BridgesConfig {
  let saved: unknown;
  try {
    saved = JSON.parse(readFileSync(path.join(dataDir, FILE), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return config;
    throw new FirmwardError('config_invalid', `${path.join(dataDir, FILE)} (bridge settings made in the dashboard) cannot be read; fix or remove it.`, { cause: error });
  }
  const patches = z.partialRecord(z.enum(BRIDGE_NAMES), bridgePatchSchema).safeParse(saved);
  if (!patches.success) throw new FirmwardError('config_invalid', `${path.join(dataDir, FILE)} (bridge settings made in the dashboard) is not valid; fix or remove it.`);
  return merge(config, patches.data);
}

function merge(config: BridgesConfig, patches: Partial<Record<BridgeName, BridgePatch>>): BridgesConfig {
  const next = structuredClone(config);
  for (const name of BRIDGE_NAMES) {
    const patch = patches[name];
    if (!patch) continue;
    const target = next[name] as Record<string, unknown>;
    for (const [key, value] of Object.entries(patch)) if (value !== undefined) target[key] = value;
  }
  return next;
}

export interface BridgeSettingsDeps {
  dataDir: string;
  router: GatewayRouter;
  store: Store;
  clock: Clock;
  log: Logger;
  homeAssistantHub: HomeAssistantHub;
  /** The hub's address, known only once it listens. */
  dashboardUrl: () => string;
  /** Tells the hub a device went out of reach (its history says so; nothing is offered to it). */
  markOffline: (deviceId: string) => Promise<void>;
  version: string;
}

export class BridgeSettings {
  #config: BridgesConfig;
  readonly #o: BridgeSettingsDeps;
  /** Home Assistant's publisher while it is turned on (running or still trying). */
  #homeAssistant: BridgeRunner | null = null;

  constructor(config: BridgesConfig, o: BridgeSettingsDeps) {
    this.#config = config;
    this.#o = o;
  }

  /**
   * Starts Home Assistant's publisher in the background when it is on, and returns at once (the
   * gateway bridges start with the router, also in the background).
   */
  start(): Promise<void> {
    this.#homeAssistant = this.#homeAssistantRunner(this.#config.homeAssistant);
    this.#homeAssistant?.startInBackground();
    return Promise.resolve();
  }

  /** Stops the publisher, or its attempts to start. */
  async stop(): Promise<void> {
    await this.#homeAssistant?.stop();
    this.#homeAssistant = null;
  }

  list(): BridgeView[] {
    const saved = this.#saved();
    return BRIDGE_NAMES.map((name) => {
      const b = this.#config[name];
      return {
        name, enabled: b.enabled, url: b.url, username: b.username, passwordSet: b.password !== '',
        homeId: 'homeId' in b ? b.homeId : '', changedHere: saved[name] !== undefined, status: this.#statusOf(name),
      };
    });
  }

  async update(name: BridgeName, patch: BridgePatch): Promise<BridgeView> {
    const saved = this.#saved();
    const nextPatch = { ...saved[name], ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) };
    const next = merge(this.#config, { [name]: nextPatch });
    const checked = bridgesSchema.safeParse(next);
    if (!checked.success) {
      throw new FirmwardError('invalid_input', `These ${name} settings cannot be used: ${checked.error.issues.map((i) => i.message).join('; ')}.`);
    }
    if (name !== 'homeAssistant' && homeIdOf(next, name) !== '' && (await this.#o.store.getHome(homeIdOf(next, name))) === null) {
      throw new FirmwardError('invalid_input', `There is no home "${homeIdOf(next, name)}" for the ${name} devices to join.`);
    }
    if (name === 'homeAssistant') {
      await this.#homeAssistant?.stop();
      const runner = this.#homeAssistantRunner(checked.data.homeAssistant);
      this.#homeAssistant = runner;
      await this.#startOrExplain(name, () => runner?.startOnce() ?? Promise.resolve());
    } else {
      await this.#refuseWhileUpdating(name);
      const routed = createBridge(name, checked.data, { clock: this.#o.clock, log: this.#o.log });
      if (checked.data[name].enabled) {
        await this.#startOrExplain(name, () => this.#o.router.replaceBridge(name, routed, null), routed.bridge);
      } else {
        await this.#o.router.replaceBridge(name, null, routed.bridge);
        // Out of reach: its devices are offline for the hub, so nothing is offered to them.
        for (const device of await this.#o.store.listDevices()) {
          if (routed.bridge.owns(device.id) && device.online) await this.#o.markOffline(device.id);
        }
      }
    }
    this.#config = checked.data;
    writeSecretFile(path.join(this.#o.dataDir, FILE), `${JSON.stringify({ ...saved, [name]: nextPatch }, null, 2)}\n`);
    this.#o.log.info('bridge settings changed', { bridge: name, enabled: checked.data[name].enabled });
    return this.list().find((b) => b.name === name)!;
  }

  /**
   * A bridge that cannot start is left off, and the person is told why in the bridge's own words;
   * commands to its devices are refused as for any bridge turned off (`owner` says which are its).
   */
  async #startOrExplain(name: BridgeName, start: () => Promise<void>, owner: Bridge | null = null): Promise<void> {
    try {
      await start();
    } catch (error) {
      if (name !== 'homeAssistant') await this.#o.router.replaceBridge(name, null, owner);
      throw new FirmwardError('gateway_failure', `The ${name} bridge did not start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  async #refuseWhileUpdating(name: GatewayBridgeName): Promise<void> {
    const current = this.#o.router.bridges.find((b) => b.bridge.name === name)?.bridge;
    if (!current) return;
    const running = (await this.#o.store.listJobs({ states: [...ACTIVE_STATES] })).filter((j) => current.owns(j.deviceId));
    if (running.length > 0) {
      throw new FirmwardError('conflict', `A ${name} device is being updated right now (${running[0]!.deviceId}); the bridge stays as it is until that update is over.`);
    }
  }

  #saved(): Partial<Record<BridgeName, BridgePatch>> {
    try {
      return JSON.parse(readFileSync(path.join(this.#o.dataDir, FILE), 'utf8')) as Partial<Record<BridgeName, BridgePatch>>;
    } catch {
      return {};
    }
  }

  #statusOf(name: BridgeName): BridgeStatus {
    if (name === 'homeAssistant') return this.#homeAssistant?.status ?? BRIDGE_OFF;
    return this.#o.router.statusOf(name);
  }

  /** What keeps Home Assistant's publisher starting; null when it is turned off. */
  #homeAssistantRunner(config: BridgesConfig['homeAssistant']): BridgeRunner | null {
    const publisher = createHomeAssistant(config, this.#haDeps());
    if (publisher === null) return null;
    return new BridgeRunner({
      name: 'homeAssistant', clock: this.#o.clock, log: this.#o.log,
      start: (signal) => publisher.start(signal),
      stop: () => publisher.stop(),
    });
  }

  #haDeps() {
    return { hub: this.#o.homeAssistantHub, clock: this.#o.clock, log: this.#o.log, dashboardUrl: this.#o.dashboardUrl(), version: this.#o.version };
  }
}

function homeIdOf(config: BridgesConfig, name: GatewayBridgeName): string {
  return config[name].homeId;
}
