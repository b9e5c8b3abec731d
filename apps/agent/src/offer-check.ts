/**
 * The device's own look at an offer, before it accepts anything: defense in depth behind the
 * hub's planner (invariants 2 and 5: the device refuses an image outside its model, hardware and
 * version range, and never downgrades, even if the hub got it wrong) and its own view of the
 * preflight rules (invariant 3). Pure: data in, a refusal or null out (STYLE principle 2).
 */
import { checkCompatibility } from '@firmward/core';
import type { CompatibilityRelease } from '@firmward/core';
import type { DeviceReason, OfferCommand } from '@firmward/protocol';
import type { DeviceConditionsReport, DeviceIdentity } from './platform.ts';

/**
 * Refuses an offer that is not for this exact device and version, or null when it fits. The same
 * gate the hub's planner uses (core `checkCompatibility`), run again here on the device's own
 * view of what it is and what it runs — one rule, checked in two places.
 *
 * @example
 * checkOfferFits(offer, identity, '1.2.0'); // { code: 'downgrade', message: '…' } for an offer of 1.1.0
 */
export function checkOfferFits(offer: OfferCommand, identity: DeviceIdentity, installedVersion: string): DeviceReason | null {
  const release: CompatibilityRelease = {
    vendor: offer.vendor, model: offer.model, hardwareRevisions: offer.hardwareRevisions, version: offer.version, retracted: false,
    ...(offer.applicableFrom !== null && { applicableFrom: offer.applicableFrom }),
    ...(offer.applicableTo !== null && { applicableTo: offer.applicableTo }),
  };
  const result = checkCompatibility(release, { ...identity, firmwareVersion: installedVersion });
  return result.ok ? null : { code: result.code, message: result.message };
}

export interface OwnPreflightThresholds {
  /** On battery and not charging, at least this charge. */
  minBatteryPercent: number;
  /** A signal weaker than this (dBm) is refused; wired devices report none. */
  minSignalDbm: number;
}

/**
 * The device's own "not now": low battery, unstable power, weak signal, in use, or no room for the image. The hub checks the
 * same with its thresholds first; the device has the freshest view of itself.
 *
 * @example
 * checkOwnPreflight(offer, { powerSource: 'battery', batteryPercent: 12, charging: false, … }, { minBatteryPercent: 20 });
 * // { code: 'battery_low', message: 'Battery 12 %, needs 20 % or a charger; the device will try later.' }
 */
export function checkOwnPreflight(offer: OfferCommand, conditions: DeviceConditionsReport, thresholds: OwnPreflightThresholds): DeviceReason | null {
  const battery = conditions.batteryPercent;
  if (conditions.powerSource === 'battery' && !conditions.charging && (battery === null || battery < thresholds.minBatteryPercent)) {
    const level = battery === null ? 'unknown' : `${Math.round(battery)} %`;
    return { code: 'battery_low', message: `Battery ${level}, needs ${thresholds.minBatteryPercent} % or a charger; the device will try later.` };
  }
  if (conditions.powerStable === false) {
    return { code: 'power_unstable', message: 'The power supply is unstable right now; the device will try later.' };
  }
  if (conditions.signalDbm !== null && conditions.signalDbm < thresholds.minSignalDbm) {
    return { code: 'signal_weak', message: `WiFi signal ${conditions.signalDbm} dBm is too weak (needs ${thresholds.minSignalDbm} dBm); the device will try later.` };
  }
  if (conditions.busy) {
    return { code: 'device_busy', message: 'The device is in use right now; the update waits until it is free.' };
  }
  if (offer.image.lengthBytes > conditions.freeStorageBytes) {
    return {
      code: 'insufficient_storage',
      message: `The update needs ${offer.image.lengthBytes} bytes but the device has room for ${conditions.freeStorageBytes}.`,
    };
  }
  return null;
}
