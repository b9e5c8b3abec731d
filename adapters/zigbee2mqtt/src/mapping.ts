/**
 * What Zigbee2MQTT says, in our words: identity, versions, power, signal, and the releases
 * Zigbee2MQTT vouches for. Pure functions (data in, data out); the bridge does the I/O.
 */
import { releaseId } from '@firmward/core';
import type { PowerSource, Release } from '@firmward/core';
import type { DiscoveredDevice } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { DeviceState } from '@firmward/protocol';
import type { DeviceEntry, UpdateState } from './messages.ts';

/**
 * Not applicable: a Zigbee device's own OTA client checks that the image fits before it asks for
 * the first block, so the hub's storage rule has nothing to measure. A large, exact integer (1 TiB)
 * lets that rule pass without pretending to know the device's flash size.
 */
export const FREE_STORAGE_NOT_APPLICABLE_BYTES = 2 ** 40;

/**
 * Link quality (LQI, 0–255) as dBm for the hub's signal rule. LQI is not a power level and each
 * radio computes it its own way, so this is a deliberate, documented approximation: a straight
 * line from LQI 0 = -90 dBm (about the edge of 2.4 GHz 802.15.4 reception) to LQI 255 = -20 dBm
 * (a device next to its parent). The hub's default threshold of -72 dBm is LQI 66 on this line.
 */
export function lqiToDbm(lqi: number): number {
  const clamped = Math.max(0, Math.min(255, lqi));
  return Math.round(LQI_ZERO_DBM + (clamped / 255) * (LQI_FULL_DBM - LQI_ZERO_DBM));
}
const LQI_ZERO_DBM = -90;
const LQI_FULL_DBM = -20;

/**
 * Zigbee's power source names (zigbee-herdsman POWER_SOURCES, reference §1.5) as ours. "Unknown"
 * or missing: routers relay for others and are therefore always powered; anything else is treated
 * as battery, so the hub's battery rule applies rather than being skipped on a guess.
 */
export function powerSourceOf(entry: Pick<DeviceEntry, 'power_source' | 'type'>): PowerSource {
  const source = entry.power_source ?? 'Unknown';
  if (source === 'Battery') return 'battery';
  if (source.startsWith('Mains') || source === 'DC Source' || source.startsWith('Emergency')) return 'mains';
  return entry.type === 'Router' ? 'mains' : 'battery';
}

/**
 * Versions are Zigbee OTA file versions, the 32-bit numbers Zigbee2MQTT compares with its OTA index
 * (`installed_version` / `latest_version`, reference §1.4). -1 and null mean "not known yet".
 */
export function fileVersionOf(value: number | null | undefined): number | null {
  return value === null || value === undefined || value < 0 ? null : value;
}

/**
 * Our version text for a file version: its four bytes, dotted (0x01020304 → "1.2.3.4"). Dotted
 * numbers compare exactly as the integers do, and never look like a calendar date — an 8-digit
 * decimal such as 20241015 would, and the core refuses to compare a date with a plain number.
 */
export function versionText(fileVersion: number): string {
  return [24, 16, 8, 0].map((shift) => (fileVersion >>> shift) & 0xff).join('.');
}

/** The file version an offer names ("1.2.3.4"), or null when it is not one (the hub only offers what releases() returned). */
export function parseFileVersion(text: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  const bytes = m.slice(1).map(Number);
  if (bytes.some((b) => b > 0xff)) return null;
  return ((bytes[0]! << 24) >>> 0) + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]!;
}

export interface Identity {
  vendor: string;
  model: string;
  hardwareRevision: string;
}

/**
 * Vendor and model from Zigbee2MQTT's device definition, else what the device says about itself
 * (genBasic manufacturerName / modelId). Zigbee2MQTT publishes no image type or manufacturer code
 * in `bridge/devices`, so the hardware revision is the model: one image line per model, which is
 * also how the OTA index is matched for most devices (reference §1.9).
 */
export function identityOf(entry: DeviceEntry): Identity | null {
  const vendor = entry.definition?.vendor ?? entry.manufacturer ?? null;
  const model = entry.definition?.model ?? entry.model_id ?? null;
  if (!vendor || !model) return null;
  return { vendor, model, hardwareRevision: model };
}

/**
 * The version the hub tracks: the OTA file version once Zigbee2MQTT has reported it, else the
 * device's software build id (genBasic swBuildId) or date code so the person sees something; the
 * device is announced again when the file version becomes known.
 */
export function firmwareVersionOf(entry: DeviceEntry, update: UpdateState | null): string {
  const installed = fileVersionOf(update?.installed_version);
  if (installed !== null) return versionText(installed);
  return entry.software_build_id || entry.date_code || 'unknown';
}

export function discoveredDevice(id: string, entry: DeviceEntry, identity: Identity, update: UpdateState | null): DiscoveredDevice {
  return {
    id, name: entry.friendly_name, ...identity,
    firmwareVersion: firmwareVersionOf(entry, update), powerSource: powerSourceOf(entry),
  };
}

export interface Telemetry {
  batteryPercent: number | null;
  linkquality: number | null;
  update: UpdateState | null;
}

/**
 * Our state report from what Zigbee2MQTT last said. Zigbee has no A/B slots the hub could see
 * (the device keeps its running image until the new one is complete), so the slot is always "a".
 * Charging is never reported by Zigbee sensors (false); nothing says a Zigbee device is in use
 * (busy false); healthy follows availability.
 */
export function deviceState(device: DiscoveredDevice, telemetry: Telemetry, online: boolean, job: DeviceState['job']): DeviceState {
  return {
    v: PROTOCOL_VERSION,
    vendor: device.vendor, model: device.model, hardwareRevision: device.hardwareRevision,
    firmwareVersion: device.firmwareVersion, activeSlot: 'a', powerSource: device.powerSource,
    batteryPercent: telemetry.batteryPercent, charging: false,
    signalDbm: telemetry.linkquality === null ? null : lqiToDbm(telemetry.linkquality),
    busy: false, freeStorageBytes: FREE_STORAGE_NOT_APPLICABLE_BYTES, healthy: online, job,
  };
}

/** Who vouches for the image, in the householder's words (shown as-is by the hub). */
export const ZIGBEE2MQTT_TRUST =
  "Zigbee2MQTT vouches for this image: it comes from Zigbee2MQTT's OTA index, matched by the device's model and image type.";

/**
 * Zigbee2MQTT's guide (docs/guide/usage/ota_updates.md, troubleshooting) and the way a Zigbee OTA
 * client works: the running image stays until the new one is complete.
 */
const RECOVERY_STEPS = [
  'Leave the device where it is: a Zigbee device keeps running its old firmware when an update does not finish.',
  'Restart it by removing its power or battery for a few seconds.',
  'If it runs on a battery, make sure the battery is above 70 %, then press a button on it to wake it just before trying again.',
  "If it no longer responds at all, pair it with Zigbee2MQTT again (allow joining, then reset the device as its manual describes).",
];

/** Zigbee2MQTT's guide: OTA drains batteries; some devices refuse below this themselves. */
const ZIGBEE_OTA_MIN_BATTERY_PERCENT = 70;
/** The guide: an update "typically takes 10–20 minutes", then up to 2 minutes for the device to announce itself again. */
const ZIGBEE_OTA_EXPECTED_SECONDS = 25 * 60;
const MAX_NOTES_CHARS = 2000;

export interface OfferedImage {
  vendor: string;
  model: string;
  hardwareRevision: string;
  latestFileVersion: number;
  releaseNotes: string | null;
}

/** One Release per vendor, model and offered file version (several devices of a model share it). */
export function zigbee2mqttReleases(images: OfferedImage[]): Release[] {
  const byId = new Map<string, Release>();
  for (const image of images) {
    const version = versionText(image.latestFileVersion);
    const id = releaseId(image.vendor, image.model, version);
    const existing = byId.get(id);
    if (existing) {
      if (!existing.hardwareRevisions.includes(image.hardwareRevision)) existing.hardwareRevisions.push(image.hardwareRevision);
      continue;
    }
    byId.set(id, {
      id, vendor: image.vendor, model: image.model, hardwareRevisions: [image.hardwareRevision], version,
      severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds: ZIGBEE_OTA_EXPECTED_SECONDS,
      preflightOverrides: { minBatteryPercent: ZIGBEE_OTA_MIN_BATTERY_PERCENT },
      recovery: { steps: [...RECOVERY_STEPS], supportUrl: 'https://www.zigbee2mqtt.io/guide/usage/ota_updates.html' },
      retracted: false,
      image: { path: `zigbee2mqtt:${image.model}/${version}`, lengthBytes: 0, sha256: '' },
      ...(image.releaseNotes ? { notes: image.releaseNotes.slice(0, MAX_NOTES_CHARS) } : {}),
      origin: { ecosystem: 'zigbee2mqtt', trust: ZIGBEE2MQTT_TRUST },
    });
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}
