/**
 * What every part of the household's setup needs: the store, the engine's home lock and its one
 * write path for jobs, the broker that must agree with the credentials, and the history.
 */
import { FirmwardError, cancelReason, changeRefusal } from '@firmward/core';
import type { DeviceChange, EpochMs, Home } from '@firmward/core';
import type { Clock, DeviceRow, Logger, NewHistoryEvent, Store } from '@firmward/ports';
import type { BrokerAddress } from '@firmward/protocol';
import type { BrokerAccess } from '../broker-access.ts';
import type { PeopleEngine } from '../engine.ts';
import type { DeviceView, HomeView } from '../service.ts';

/** The hawkBit gateway, as far as setting devices up goes. */
export interface DdiRegistrar {
  readonly tenant: string;
  readonly gatewayTokenSet: boolean;
  deviceIdOf(controllerId: string): string;
  controllerIdOf(deviceId: string): string;
  /** A new TargetToken, stored as its digest only; returned once. */
  issueTargetToken(controllerId: string): Promise<string>;
  /** Who may register on first contact (the GatewayToken): nobody, the listed ids, or any. */
  setRegistration(rule: false | { allowedControllerIds?: string[] }): void;
}

export interface SetupDeps {
  store: Store;
  engine: PeopleEngine;
  clock: Clock;
  log: Logger;
  /** The broker agrees with every credential change at once (new logins and live sessions). */
  access: BrokerAccess;
  /**
   * The hub marks a device offline itself when it cut the device's session (Mosquitto drops a
   * client on reload without publishing its last will).
   */
  markOffline: (deviceId: string) => Promise<void>;
  /** How a device is reached ("agent", "ddi", "zigbee2mqtt", …), and forgetting what a gateway keeps in memory about one. */
  gateway: { protocolOf(deviceId: string): string; forget(deviceId: string): void };
  /** Live views (dashboard, `firmward watch`) hear every history line at once. */
  publish: (event: NewHistoryEvent) => void;
  /** The hub's read models (hub-service.ts), so answers read the same as everywhere else. */
  views: { device(deviceId: string): Promise<DeviceView>; home(homeId: string): Promise<HomeView> };
  /** What an enrolling agent is told about reaching the broker. */
  broker: BrokerAddress;
  /** The hub's own address for devices (http.publicUrl, else where it listens). */
  hubUrl: () => string;
  /** New homes: a silent update fails after this long (config engine.silenceTimeoutSeconds). */
  silenceTimeoutSeconds: number;
  /** New homes without a time zone given: the hub machine's. */
  defaultTimeZone: string;
  ddi: DdiRegistrar | null;
}

/**
 * An agent's device id must be its own: not the hub's broker login, and not in the id space of a
 * bridge (`ddi-…`, `z2m-…`), whose commands would go to that bridge instead of the device.
 */
export function agentIdRefusal(d: Pick<SetupDeps, 'gateway'>, deviceId: string): FirmwardError | null {
  if (deviceId === 'hub' || deviceId.startsWith('hub/')) return new FirmwardError('invalid_input', `"${deviceId}" is the hub's own name on the broker; give the device another id.`);
  const protocol = d.gateway.protocolOf(deviceId);
  if (protocol !== 'agent') return new FirmwardError('invalid_input', `"${deviceId}" is an id of the ${protocol} devices; give the device another id.`);
  return null;
}

/** "a Plug", "an Acme Plug". */
export function aOrAn(phrase: string): string {
  return /^[aeiou]/i.test(phrase) ? `an ${phrase}` : `a ${phrase}`;
}

export function who(actor: string): string {
  return actor.startsWith('person:') ? actor.slice('person:'.length) : actor;
}

/** One history line, stored then announced (an announcement never comes before the write). */
export function record(d: Pick<SetupDeps, 'store' | 'publish'>, event: NewHistoryEvent): Promise<void> {
  return commit(d, [event], () => Promise.resolve());
}

/**
 * What `write` changes and the history lines that say so, in one transaction; the lines are
 * announced to live views only once it committed. `write` throws to refuse (nothing is written).
 */
export async function commit<T>(d: Pick<SetupDeps, 'store' | 'publish'>, events: readonly NewHistoryEvent[], write: (tx: Store) => Promise<T>): Promise<T> {
  const result = await d.store.transaction(async (tx) => {
    const value = await write(tx);
    for (const event of events) await tx.appendEvent(event);
    return value;
  });
  for (const event of events) d.publish(event);
  return result;
}

/** A history line of a person's action (or, with `kind: 'device'`, of what a device asked). */
export function personEvent(o: { at: EpochMs; homeId: string; deviceId?: string | null; code: string; message: string; actor: string; kind?: 'person' | 'device' }): NewHistoryEvent {
  return { at: o.at, homeId: o.homeId, deviceId: o.deviceId ?? null, jobId: null, kind: o.kind ?? 'person', from: null, to: null, code: o.code, message: o.message, actor: o.actor };
}

export async function homeOf(store: Store, homeId: string): Promise<Home> {
  const home = await store.getHome(homeId);
  if (!home) throw new FirmwardError('not_found', `There is no home "${homeId}".`);
  return home;
}

export async function deviceOf(store: Store, deviceId: string): Promise<DeviceRow> {
  const device = await store.getDevice(deviceId);
  if (!device) throw new FirmwardError('not_found', `There is no device "${deviceId}".`);
  return device;
}

/**
 * Ends the device's open update before a change takes it away (invariant 6): refused from the
 * install step on; before it, cancelled through the engine's one write path (the device is told,
 * the history says why). Call with the home's lock held (engine.withHome). Returns whether an
 * update was cancelled.
 */
export async function endOpenUpdate(d: SetupDeps, home: Home, device: DeviceRow, change: DeviceChange, actor: string): Promise<boolean> {
  const [open] = await d.store.listJobs({ deviceId: device.id, open: true, limit: 1 });
  const refusal = changeRefusal(change, device.name, open ?? null);
  if (refusal) throw refusal;
  if (!open) return false;
  // The job is the home's it was planned in (a device moved earlier may have one from before).
  const jobHome = open.homeId === home.id ? home : await homeOf(d.store, open.homeId);
  await d.engine.applyHeld(jobHome, open, { type: 'cancel', by: actor, message: cancelReason(change, device.name, who(actor)) }, actor);
  return true;
}
