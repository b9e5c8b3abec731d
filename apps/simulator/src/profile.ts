/**
 * What a simulated device is like: what it is, how it is powered, how good its radio is, when it
 * is in use, how long its install takes and how it fails. Demo profiles cover the cases the hub's
 * rules exist for (DESIGN "the careful person's rule" table).
 */
import type { TimeOfDay } from '@firmward/core';
import type { DeviceIdentity } from '@firmward/agent';

/**
 * none: updates go well.
 * boot-fails: the new image starts but fails its health check, so the device rolls back.
 * no-boot: the new image does not start at all; the bootloader falls back after its attempts.
 * goes-silent: the device hangs in the middle of its first install and says nothing until it is power-cycled.
 */
export type FailureMode = 'none' | 'boot-fails' | 'no-boot' | 'goes-silent';

/** A daily period in the device's local time; may cross midnight. */
export interface DailyWindow {
  start: TimeOfDay;
  end: TimeOfDay;
  /** 0 = Sunday … 6 = Saturday; empty or absent = every day. */
  weekdays?: number[];
}

export interface BatteryProfile {
  startPercent: number;
  /** Lost per hour on battery (not charging). */
  drainPercentPerHour: number;
  /** Gained per hour while charging. */
  chargePercentPerHour: number;
  /** When it sits on its charger, in local time. */
  chargingWindows: DailyWindow[];
}

export interface SignalProfile {
  baseDbm: number;
  /** The signal wanders up to this much either side of the base. */
  driftDb: number;
  /** Chance of one drop-out in any hour (0 … 1). */
  dropoutChancePerHour: number;
  dropoutSeconds: number;
  /** Drop-outs that happen every day at these times (a microwave, a closing garage door). */
  dropoutWindows: DailyWindow[];
}

export interface DeviceProfile {
  /** What the person calls it. */
  name: string;
  identity: DeviceIdentity;
  /** The version in slot A from the factory. */
  firmwareVersion: string;
  /** IANA zone the usage and charging times are in. */
  timeZone: string;
  power: 'mains' | 'battery';
  /** Required when `power` is battery. */
  battery: BatteryProfile | null;
  /** null for a wired device. */
  signal: SignalProfile | null;
  /** When it is in use, in local time. */
  busy: DailyWindow[];
  /** Simulated time the install step takes (writing the boot switch, migrations). */
  installSeconds: number;
  /** Simulated time from restart until the agent runs again. */
  bootSeconds: number;
  failure: FailureMode;
  slotCapacityBytes: number;
  /** Size of the factory image. */
  imageBytes: number;
}

const MIB = 1024 * 1024;

function base(id: string, name: string, model: string, overrides: Partial<DeviceProfile>): DeviceProfile {
  return {
    name,
    identity: { deviceId: id, vendor: 'Acme', model, hardwareRevision: 'rev2' },
    firmwareVersion: '1.0.0',
    timeZone: 'Europe/Berlin',
    power: 'mains',
    battery: null,
    signal: { baseDbm: -55, driftDb: 3, dropoutChancePerHour: 0, dropoutSeconds: 60, dropoutWindows: [] },
    busy: [],
    installSeconds: 45,
    bootSeconds: 20,
    failure: 'none',
    slotCapacityBytes: 4 * MIB,
    imageBytes: 1 * MIB,
    ...overrides,
  };
}

/**
 * Ready-made devices for demos and tests. Call it again for fresh copies.
 *
 * @example
 * const { kitchenPlug } = demoProfiles();
 * const device = createSimulatedDevice(kitchenPlug, { clock, connect });
 */
export function demoProfiles(timeZone = 'Europe/Berlin') {
  return {
    /** Always on mains, strong WiFi, never busy: updates at the first chance. */
    kitchenPlug: base('kitchen-plug', 'Kitchen plug', 'SmartPlug', { timeZone, installSeconds: 30 }),
    /** On battery, starts at 23 % and sits on its charger 14:00–16:00: waits for the charger, then updates. */
    hallSensor: base('hall-sensor', 'Hall motion sensor', 'MotionSensor', {
      timeZone,
      power: 'battery',
      battery: { startPercent: 23, drainPercentPerHour: 0.2, chargePercentPerHour: 30, chargingWindows: [{ start: '14:00', end: '16:00' }] },
      signal: { baseDbm: -64, driftDb: 4, dropoutChancePerHour: 0, dropoutSeconds: 60, dropoutWindows: [] },
      installSeconds: 90,
      imageBytes: 512 * 1024,
    }),
    /** Weak, wandering signal with frequent drop-outs: the radio rule holds it back. */
    porchCamera: base('porch-camera', 'Porch camera', 'Cam2', {
      timeZone,
      signal: { baseDbm: -74, driftDb: 9, dropoutChancePerHour: 0.5, dropoutSeconds: 120, dropoutWindows: [{ start: '12:00', end: '12:05' }] },
      installSeconds: 120,
      imageBytes: 2 * MIB,
    }),
    /** In use every evening 18:00–23:00 and at breakfast: never updated while watched or about to be. */
    livingRoomTv: base('living-tv', 'Living room TV', 'TV55', {
      timeZone,
      signal: null,
      busy: [{ start: '07:00', end: '08:00' }, { start: '18:00', end: '23:00' }],
      installSeconds: 300,
      bootSeconds: 60,
      imageBytes: 3 * MIB,
    }),
    /** Wired thermostat, busy during the morning heat-up. */
    thermostat: base('thermostat', 'Thermostat', 'Thermo3', {
      timeZone,
      signal: { baseDbm: -60, driftDb: 2, dropoutChancePerHour: 0.02, dropoutSeconds: 30, dropoutWindows: [] },
      busy: [{ start: '06:00', end: '06:30' }],
      installSeconds: 60,
    }),
    /** Its new image fails the health check: it rolls back by itself and reports the old version. */
    deskLamp: base('desk-lamp', 'Desk lamp', 'Bulb', { timeZone, failure: 'boot-fails', installSeconds: 20 }),
    /** Its new image does not start at all: the bootloader goes back after three tries. */
    garageDoor: base('garage-door', 'Garage door opener', 'Door1', { timeZone, failure: 'no-boot', installSeconds: 40 }),
    /** Hangs in the middle of its install and goes silent: the hub must call it a failure, never a success. */
    frontLock: base('front-lock', 'Front door lock', 'Lock2', {
      timeZone,
      power: 'battery',
      battery: { startPercent: 80, drainPercentPerHour: 0.1, chargePercentPerHour: 20, chargingWindows: [] },
      failure: 'goes-silent',
      installSeconds: 60,
    }),
  } satisfies Record<string, DeviceProfile>;
}
