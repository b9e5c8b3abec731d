/**
 * Tasmota's MQTT topics and payloads, read at the boundary (STYLE principle 9): every payload is
 * parsed with a schema, and what does not parse is refused with a one-line reason. Tasmota adds
 * keys from release to release, so objects are read loosely (unknown keys are kept, not refused);
 * the keys the bridge relies on are checked strictly. Facts and their sources:
 * /work/shared/reference/ecosystems.md, section 3 (Tasmota).
 */
import { z } from 'zod';

/** Tasmota's `%prefix%` values: Prefix1 (commands), Prefix2 (replies), Prefix3 (telemetry). Section 3.1. */
export interface TasmotaPrefixes {
  command: string;
  status: string;
  telemetry: string;
}

export const DEFAULT_PREFIXES: TasmotaPrefixes = { command: 'cmnd', status: 'stat', telemetry: 'tele' };

/** The retained discovery topic of Tasmota's own Home Assistant integration (`SetOption19 0`). Section 3.6. */
export const DEFAULT_DISCOVERY_PREFIX = 'tasmota/discovery';

/** The only FullTopic the bridge speaks: Tasmota's default `%prefix%/%topic%/` (section 3.1). */
export const DEFAULT_FULL_TOPIC = '%prefix%/%topic%/';

/** Tasmota accepts at most 100 characters after `OtaUrl` (section 3.3, Commands.md). */
export const MAX_OTA_URL_LENGTH = 100;

export type TasmotaTopic =
  | { kind: 'discovery'; mac: string }
  | { kind: 'lwt'; topic: string }
  | { kind: 'telemetry'; topic: string }
  | { kind: 'reply'; topic: string; command: string };

/** The reply topics the bridge reads; Tasmota also publishes plain-text ones (e.g. `stat/<topic>/POWER` "ON") that it leaves alone. */
const READ_REPLIES = /^(RESULT|UPGRADE|OTAURL|STATUS\d{0,2})$/;

/** Topic → what it is, or null for a topic the bridge does not read. */
export function parseTasmotaTopic(topic: string, prefixes: TasmotaPrefixes, discoveryPrefix: string): TasmotaTopic | null {
  const discovery = `${discoveryPrefix}/`;
  if (topic.startsWith(discovery)) {
    const m = /^([^/]+)\/config$/.exec(topic.slice(discovery.length));
    return m ? { kind: 'discovery', mac: m[1]! } : null;
  }
  const parts = topic.split('/');
  if (parts.length !== 3) return null;
  const [prefix, device, last] = parts as [string, string, string];
  if (device.length === 0) return null;
  if (prefix === prefixes.telemetry && last === 'LWT') return { kind: 'lwt', topic: device };
  if (prefix === prefixes.telemetry && last === 'STATE') return { kind: 'telemetry', topic: device };
  if (prefix === prefixes.status && READ_REPLIES.test(last.toUpperCase())) return { kind: 'reply', topic: device, command: last.toUpperCase() };
  return null;
}

/** Keys of `tasmota/discovery/<MAC>/config` the bridge uses (section 3.6). */
export const discoveryConfigSchema = z.looseObject({
  t: z.string().min(1).max(128),
  dn: z.string().max(256).nullish(),
  hn: z.string().max(256).nullish(),
  md: z.string().max(256).nullish(),
  sw: z.string().max(64).nullish(),
  mac: z.string().max(64).nullish(),
  ft: z.string().max(256).optional(),
  tp: z.array(z.string()).optional(),
  bat: z.union([z.number(), z.boolean()]).optional(),
});
export type DiscoveryConfig = z.infer<typeof discoveryConfigSchema>;

/** The `Wifi` object of `tele/<topic>/STATE` and of `StatusSTS` (section 3.4). */
const wifiSchema = z.looseObject({
  /** Link quality in percent (0–100), not dBm, despite the name. */
  RSSI: z.number().min(0).max(100).optional(),
  /** The RSSI in dBm; missing on some older builds. */
  Signal: z.number().optional(),
});

/** `tele/<topic>/STATE` (section 3.4). */
export const telemetrySchema = z.looseObject({
  BatteryPercentage: z.number().min(0).max(100).optional(),
  Wifi: wifiSchema.optional(),
});
export type Telemetry = z.infer<typeof telemetrySchema>;

/**
 * Any `stat/<topic>/STATUS<n>` reply to `Status 0`: older builds answer with one message per part
 * (STATUS, STATUS2, STATUS11, …), newer ones with all parts in one STATUS0; the bridge merges
 * whichever parts come. `StatusFWR` is section 3.5; `Status` (device name) and `StatusSTS` (the
 * same content as `tele/<topic>/STATE`) are read only when present.
 */
export const statusReplySchema = z.looseObject({
  Status: z.looseObject({
    DeviceName: z.string().max(256).optional(),
    FriendlyName: z.array(z.string().max(256).nullable()).optional(),
  }).optional(),
  StatusFWR: z.looseObject({
    Version: z.string().min(1).max(128),
    Hardware: z.string().max(128).optional(),
  }).optional(),
  StatusSTS: telemetrySchema.optional(),
});
export type StatusReply = z.infer<typeof statusReplySchema>;

/** Replies on `stat/<topic>/RESULT` (or `UPGRADE` / `OTAURL`, with `SetOption4 1`) that matter to an update (section 3.3). */
export const commandReplySchema = z.looseObject({
  OtaUrl: z.string().max(512).optional(),
  Upgrade: z.string().max(512).optional(),
});
export type CommandReply = z.infer<typeof commandReplySchema>;

export interface TasmotaVersion {
  /** The numeric part, e.g. "14.2.0": what Firmward compares and reports (core version rules, scheme `dotted`/`semver`). */
  version: string;
  /** The build variant Tasmota names in parentheses, without the "release-" marker of official builds, e.g. "tasmota32"; null when none is written. */
  image: string | null;
}

/**
 * `StatusFWR.Version` is `<version>(<image name>)[<core>]`, e.g. "14.2.0(release-tasmota)"
 * (section 3.5). The numbers are compared; the image name says which build runs.
 *
 * @example
 * parseTasmotaVersion('14.2.0(release-tasmota32)'); // { version: '14.2.0', image: 'tasmota32' }
 */
export function parseTasmotaVersion(text: string): TasmotaVersion | null {
  const m = /^\s*(\d+(?:\.\d+){0,3})\s*(?:\(([^)]*)\))?/.exec(text);
  if (!m) return null;
  const image = m[2]?.trim().replace(/^release-/, '') ?? '';
  return { version: m[1]!, image: image.length > 0 ? image : null };
}

/**
 * Intermediate images an upgrade passes through before the real one: ESP8266 builds may first
 * flash `minimal` and ESP32 builds with one OTA partition restart into `safeboot` (section 3.3).
 * A device running one of them is still on its way; its version decides nothing yet.
 */
export function isIntermediateImage(image: string | null): boolean {
  return image !== null && /(^|-)(minimal|safeboot)$/.test(image);
}

/**
 * The signal in dBm from Tasmota's `Wifi` object. `Signal` is the RSSI in dBm already. Builds
 * without it give only `RSSI`, a link quality Tasmota computes as `2 × (dBm + 100)` clamped to
 * 0–100 (`WifiGetRssiAsQuality`), so dBm = quality / 2 − 100. At the clamps this is the
 * conservative end: 100 % reads as −50 dBm (the device may be stronger), 0 % as −100 dBm.
 * Null when neither is given or the value is outside what a radio can report.
 *
 * @example
 * signalDbm({ RSSI: 86 }); // -57
 */
export function signalDbm(wifi: { RSSI?: number | undefined; Signal?: number | undefined } | undefined): number | null {
  if (wifi === undefined) return null;
  if (wifi.Signal !== undefined) return wifi.Signal >= -130 && wifi.Signal <= 0 ? wifi.Signal : null;
  if (wifi.RSSI !== undefined) return wifi.RSSI / 2 - 100;
  return null;
}

export type UpgradeReply =
  /** `Upgrade 1` accepted: "Version <running> from <OtaUrl>". */
  | { kind: 'started' }
  /** `Upgrade` refused before anything was downloaded: "1 or >%s to upgrade". */
  | { kind: 'refused'; detail: string }
  /** The new image is written and verified: "Successful. Restarting". */
  | { kind: 'written' }
  /** "Failed <ESPhttpUpdate error>": nothing was written that the device will boot. */
  | { kind: 'failed'; detail: string }
  | { kind: 'other'; detail: string };

/**
 * The `Upgrade` texts Tasmota publishes (section 3.3: the immediate reply on RESULT, the final
 * one on `stat/<topic>/UPGRADE`).
 */
export function readUpgradeReply(text: string): UpgradeReply {
  const t = text.trim();
  if (/^Version\s/i.test(t)) return { kind: 'started' };
  if (/^1 or >/i.test(t)) return { kind: 'refused', detail: t };
  if (/^Successful/i.test(t)) return { kind: 'written' };
  if (/^Failed/i.test(t)) return { kind: 'failed', detail: t.replace(/^Failed\s*/i, '') };
  return { kind: 'other', detail: t };
}
