/**
 * What the MQTT fleet benchmark's processes agree on: who the devices are (ids, models, homes,
 * passwords), what they report, and the messages between the benchmark and its device processes.
 * Imported by both sides, so it holds no top-level work.
 */
import { createHmac } from 'node:crypto';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { DeviceState } from '@firmward/protocol';
import { VENDOR } from './support.ts';

export const DEVICES_PER_HOME = 5;
export const FLEET_MODELS = ['Plug', 'Bulb', 'Sensor', 'Camera', 'Speaker'] as const;
export const FLEET_VERSION = '1.0.0';
export const FLEET_HARDWARE_REVISION = 'A';

export function fleetDeviceId(i: number): string {
  return `dev-${String(i).padStart(6, '0')}`;
}

/** The fleet index of a device id made by fleetDeviceId, or -1 for any other id. */
export function fleetIndexOf(deviceId: string): number {
  const match = /^dev-(\d{6})$/.exec(deviceId);
  return match ? Number(match[1]) : -1;
}

export function fleetHomeId(i: number): string {
  return `home-${String(Math.floor(i / DEVICES_PER_HOME)).padStart(5, '0')}`;
}

export function fleetModel(i: number): string {
  return FLEET_MODELS[i % FLEET_MODELS.length]!;
}

/** Sensors run on battery; everything else on mains. */
function onBattery(i: number): boolean {
  return fleetModel(i) === 'Sensor';
}

/**
 * Each device's broker password, derived from a key made fresh for every run: the device processes
 * get the key, not 10,000 secrets, and nothing outlives the run.
 */
export function fleetPassword(runKey: string, deviceId: string): string {
  return createHmac('sha256', runKey).update(deviceId).digest('base64url');
}

const FLEET_FREE_STORAGE_BYTES = 64 * 2 ** 20;

/** The round a report of fleetState was made for. */
export function fleetRoundOf(state: DeviceState): number {
  return state.freeStorageBytes - FLEET_FREE_STORAGE_BYTES;
}

/**
 * The state report of device `i` in round `round`: valid per deviceStateSchema, with the identity
 * the store holds (so the hub accepts it), the same firmware (so no re-plan is triggered), and
 * signal and battery that move from round to round as a real fleet's do. The free storage carries
 * the round (FLEET_FREE_STORAGE_BYTES + round, fleetRoundOf), so that the scale-out phase can tell
 * every report apart and count how often each was handled across the hub instances.
 */
export function fleetState(i: number, round: number): DeviceState {
  const battery = onBattery(i);
  return {
    v: PROTOCOL_VERSION,
    vendor: VENDOR,
    model: fleetModel(i),
    hardwareRevision: FLEET_HARDWARE_REVISION,
    firmwareVersion: FLEET_VERSION,
    activeSlot: 'a',
    powerSource: battery ? 'battery' : 'mains',
    batteryPercent: battery ? 20 + ((i * 7 + round * 3) % 80) : null,
    charging: battery && (i + round) % 4 === 0,
    signalDbm: -40 - ((i * 13 + round * 5) % 45),
    busy: false,
    freeStorageBytes: FLEET_FREE_STORAGE_BYTES + round,
    healthy: true,
    job: null,
  };
}

// ── the benchmark ⇄ device process messages (over the fork's IPC channel) ──────────────────────

export interface DevicesStart {
  kind: 'start';
  url: string;
  runKey: string;
  /** Devices `from` … `to - 1` of the fleet. */
  from: number;
  to: number;
  /** Connections being opened at once (the broker's listen backlog is short). */
  connectWindow: number;
  /** QoS 1 publishes awaiting their PUBACK at once, across this process's devices. */
  publishWindow: number;
}

/** Every device of the process publishes `rounds` reports, round after round (rounds `firstRound` …). */
export interface DevicesPublish {
  kind: 'publish';
  firstRound: number;
  rounds: number;
}

/**
 * Answered once every device of the process has connected again since this message (after the hub
 * and its embedded broker restarted) and republished its state, as an agent does on reconnecting.
 */
export interface DevicesWatchReconnect {
  kind: 'watch-reconnect';
}

export type ToDevices = DevicesStart | DevicesPublish | DevicesWatchReconnect | { kind: 'exit' };

export type FromDevices =
  /** Every device connected (login, will, command subscription, "online") and published its first state, retained. */
  | { kind: 'connected'; devices: number; ms: number }
  | { kind: 'published'; reports: number; ms: number }
  /** `lastAt`: wall-clock time (Date.now()) the slowest device of the process was back; `cpuMs`: the process's CPU since the watch began. */
  | { kind: 'reconnected'; devices: number; lastAt: number; cpuMs: number }
  | { kind: 'failed'; error: string };

// ── the benchmark ⇄ hub instance messages (scale-out phase, mqtt-fleet-hub.ts) ─────────────────

/**
 * Start one hub instance: a PostgresStore on `databaseUrl` (already migrated and seeded), the
 * engine, and an MqttDeviceGateway in the shared group `sharedGroup`. Answered with "ready" once
 * the gateway has started and the instance has handled its catch-up (every device's retained state
 * and availability: `devices` × 2).
 */
export interface HubStart {
  kind: 'start';
  url: string;
  username: string;
  password: string;
  clientId: string;
  sharedGroup: string;
  instanceId: string;
  databaseUrl: string;
  devices: number;
  timeoutMs: number;
}

/** From now on, reports of rounds `firstRound` … `firstRound + rounds - 1` are the live phase's. */
export interface HubLive {
  kind: 'live';
  firstRound: number;
  rounds: number;
}

export type ToHub = HubStart | HubLive | { kind: 'tally' } | { kind: 'collect' } | { kind: 'exit' };

/** What one instance did in a live phase. */
export interface HubCollected {
  kind: 'collected';
  /** Live reports handled (the engine's onState done), duplicates included. */
  handled: number;
  /** Wall-clock time (performance.timeOrigin + performance.now()) the last live report was handled; NaN when none was. */
  lastAt: number;
  /** How often each live report was handled here: base64 of one byte per (device, round), device-major, capped at 255. */
  seen: string;
  /** State reports of a round outside the live phase's, handled during it (a catch-up after a reconnect). */
  outside: number;
  /** This process's CPU time during the phase (user + system). */
  cpuMs: number;
  /** Receipt by the gateway → store writes done, per live report. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Store calls (countingStore) and SQL statements sent to PostgreSQL during the phase. */
  reads: number;
  commits: number;
  failed: number;
  queries: number;
  warnings: number;
  errors: number;
  rssPeakBytes: number;
}

export type FromHub =
  | { kind: 'ready'; retained: number; catchUpMs: number; complete: boolean }
  | { kind: 'live-ready' }
  | { kind: 'tally'; handled: number }
  | HubCollected
  | { kind: 'failed'; error: string };
