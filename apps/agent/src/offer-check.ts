/**
 * The device's own look at an offer, before it accepts anything: defense in depth behind the
 * hub's planner (invariants 2 and 5: the device refuses an image outside its model, hardware and
 * version range, and never downgrades, even if the hub got it wrong) and its own view of the
 * preflight rules (invariant 3). Pure: data in, a refusal or null out (STYLE principle 2).
 */
import { compareVersions, isFirmwardError } from '@firmward/core';
import type { Reason } from '@firmward/core';
import type { OfferCommand } from '@firmward/protocol';
import type { DeviceConditionsReport, DeviceIdentity } from './platform.ts';

/**
 * Refuses an offer that is not for this exact device and version, or null when it fits.
 *
 * @example
 * checkOfferFits(offer, identity, '1.2.0'); // { code: 'downgrade', message: '…' } for an offer of 1.1.0
 */
export function checkOfferFits(offer: OfferCommand, identity: DeviceIdentity, installedVersion: string): Reason | null {
  if (offer.vendor !== identity.vendor || offer.model !== identity.model) {
    return {
      code: 'incompatible',
      message: `This update is for the ${offer.vendor} ${offer.model}, not for this ${identity.vendor} ${identity.model}.`,
    };
  }
  if (!offer.hardwareRevisions.includes(identity.hardwareRevision)) {
    return {
      code: 'incompatible',
      message: `This update does not support hardware revision ${identity.hardwareRevision} of the ${identity.model}.`,
    };
  }
  try {
    if (offer.applicableFrom !== null && compareVersions(installedVersion, offer.applicableFrom) < 0) {
      return {
        code: 'incompatible',
        message: `This update needs version ${offer.applicableFrom} or later installed first; the device runs ${installedVersion}.`,
      };
    }
    if (offer.applicableTo !== null && compareVersions(installedVersion, offer.applicableTo) > 0) {
      return {
        code: 'incompatible',
        message: `This update applies only up to version ${offer.applicableTo}; the device runs ${installedVersion}.`,
      };
    }
    const order = compareVersions(offer.version, installedVersion);
    if (order === 0) return { code: 'already_up_to_date', message: `The device already runs ${installedVersion}.` };
    if (order < 0) {
      return { code: 'downgrade', message: `Version ${offer.version} is older than the ${installedVersion} the device runs; it never goes back.` };
    }
  } catch (error) {
    // A comparison we cannot be sure of is a refusal, never a guess (invariant 5).
    if (isFirmwardError(error, 'version_ambiguous') || isFirmwardError(error, 'version_invalid')) {
      return { code: error.code, message: error.message };
    }
    throw error;
  }
  return null;
}

export interface OwnPreflightThresholds {
  /** On battery and not charging, at least this charge. */
  minBatteryPercent: number;
}

/**
 * The device's own "not now": low battery, in use, or no room for the image. The hub checks the
 * same with its thresholds first; the device has the freshest view of itself.
 *
 * @example
 * checkOwnPreflight(offer, { powerSource: 'battery', batteryPercent: 12, charging: false, … }, { minBatteryPercent: 20 });
 * // { code: 'battery_low', message: 'Battery 12 %, needs 20 % or a charger; the device will try later.' }
 */
export function checkOwnPreflight(offer: OfferCommand, conditions: DeviceConditionsReport, thresholds: OwnPreflightThresholds): Reason | null {
  const battery = conditions.batteryPercent;
  if (conditions.powerSource === 'battery' && !conditions.charging && (battery === null || battery < thresholds.minBatteryPercent)) {
    const level = battery === null ? 'unknown' : `${Math.round(battery)} %`;
    return { code: 'battery_low', message: `Battery ${level}, needs ${thresholds.minBatteryPercent} % or a charger; the device will try later.` };
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
