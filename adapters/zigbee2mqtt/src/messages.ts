/**
 * Zigbee2MQTT's side of the wire: its topics, and zod schemas for the payloads this bridge reads
 * (STYLE principle 9: parse `unknown` at the boundary). Field names and shapes follow
 * Zigbee2MQTT 2.x as recorded in /work/shared/reference/ecosystems.md §1 (lib/types/api.ts,
 * lib/extension/bridge.ts, lib/extension/otaUpdate.ts, lib/util/utils.ts `getResponse`). Objects
 * are loose: Zigbee2MQTT adds fields between releases, and a field we do not read must not make a
 * message bad.
 */
import { z } from 'zod';
import { readJson, validate } from '@firmward/bridge-common';
import type { ParseResult } from '@firmward/bridge-common';

/** A Zigbee OTA file version is a uint32 in the image header (§1.4, §1.9). */
export const MAX_FILE_VERSION = 0xffff_ffff;

/** The requests this bridge sends, with the payload each takes (the typed map of §1.1–1.2, after Zigbee2MQTT's api.ts). */
export interface Zigbee2MqttRequests {
  /** Is an image newer than the running one in the OTA index? Reads the device; changes nothing. */
  'bridge/request/device/ota_update/check': OtaRequest;
  /** Flash the latest image now; answered only when the whole transfer ended (§1.3). */
  'bridge/request/device/ota_update/update': OtaRequest;
  /** Flash when the device next asks for an image by itself: the path for sleeping devices. */
  'bridge/request/device/ota_update/schedule': OtaRequest;
}

export type OtaRequestKind = 'check' | 'update' | 'schedule';

export interface OtaRequest {
  /** The device's IEEE address (Zigbee2MQTT also takes the friendly name; the address survives a rename). */
  id: string;
  /** Echoed in the response, which is how an answer finds its request (§1.3). */
  transaction: string;
}

/** Topics relative to the base topic (§1.1, §1.5, §1.7). */
export const TOPICS = {
  devices: 'bridge/devices',
  bridgeState: 'bridge/state',
  request: (kind: OtaRequestKind) => `bridge/request/device/ota_update/${kind}` as const,
} as const;

/** Answers arrive on fixed topics per request kind, errors included (§1.1). */
export const RESPONSE_TOPIC = /^bridge\/response\/device\/ota_update\/(check|update|schedule|unschedule)(?:\/abort)?$/;

const IEEE_ADDRESS = /^0x[0-9a-fA-F]{16}$/;

/** One entry of the retained `bridge/devices` array (§1.5). */
export const deviceEntrySchema = z.looseObject({
  ieee_address: z.string().regex(IEEE_ADDRESS, 'an IEEE address like 0x00124b001f8e2a11'),
  type: z.enum(['Coordinator', 'Router', 'EndDevice', 'Unknown', 'GreenPower']),
  friendly_name: z.string().min(1).max(256),
  disabled: z.boolean().optional(),
  // Absent for devices Zigbee2MQTT does not support; then only genBasic's own words are known.
  definition: z.looseObject({
    model: z.string().min(1).max(64),
    vendor: z.string().min(1).max(64),
    supports_ota: z.boolean().optional(),
  }).nullish(),
  power_source: z.string().max(64).nullish(),
  software_build_id: z.string().max(64).nullish(),
  date_code: z.string().max(64).nullish(),
  model_id: z.string().max(64).nullish(),
  manufacturer: z.string().max(64).nullish(),
});
export type DeviceEntry = z.infer<typeof deviceEntrySchema>;

/** The `update` object inside a device's state message (§1.4, `UpdatePayload` in otaUpdate.ts). */
export const updateStateSchema = z.looseObject({
  state: z.enum(['idle', 'available', 'updating', 'scheduled']),
  // Zigbee2MQTT's Home Assistant extension fills -1 for "not known yet" (§1.4).
  installed_version: z.number().int().min(-1).max(MAX_FILE_VERSION).nullish(),
  latest_version: z.number().int().min(-1).max(MAX_FILE_VERSION).nullish(),
  progress: z.number().min(0).max(100).optional(),
  remaining: z.number().min(0).optional(),
  latest_release_notes: z.string().nullish(),
});
export type UpdateState = z.infer<typeof updateStateSchema>;

/** A device's state message on `<base>/<friendly_name>`: only the keys this bridge reads (§1.4, §1.6). */
export const deviceStateSchema = z.looseObject({
  battery: z.number().min(0).max(100).nullish(),
  linkquality: z.number().min(0).max(255).nullish(),
  update: updateStateSchema.optional(),
});
export type Z2mDeviceState = z.infer<typeof deviceStateSchema>;

const onlineState = z.looseObject({ state: z.enum(['online', 'offline']) });

/** The response envelope of `utils.getResponse` (§1.3). */
export const responseSchema = z.looseObject({
  status: z.enum(['ok', 'error']),
  data: z.unknown(),
  error: z.string().optional(),
  transaction: z.string().optional(),
});

/** `data` of a successful check; older releases spelled the flag `updateAvailable` (§1.3). */
export const checkDataSchema = z.looseObject({
  update_available: z.boolean().optional(),
  updateAvailable: z.boolean().optional(),
}).refine((d) => d.update_available !== undefined || d.updateAvailable !== undefined, 'update_available is missing');

const firmwareSide = z.looseObject({ file_version: z.number().int().min(0).max(MAX_FILE_VERSION).optional() }).nullish();
/** `data` of a successful update: the versions before and after (file_version only in newer releases). */
export const updateDataSchema = z.looseObject({ from: firmwareSide, to: firmwareSide });

/**
 * Availability of a device or of Zigbee2MQTT itself: `{"state":"online"}` since 2.0, the bare
 * string `online` / `offline` before (the legacy form, still seen on brokers with old retained
 * messages; §1.7).
 */
export function parseOnline(payload: Uint8Array): ParseResult<boolean> {
  if (payload.byteLength > 1024) return { ok: false, error: `payload of ${payload.byteLength} bytes is over the 1024-byte limit` };
  const text = new TextDecoder().decode(payload).trim();
  if (text === 'online' || text === 'offline') return { ok: true, value: text === 'online' };
  const json = readJson(payload, 1024);
  if (!json.ok) return { ok: false, error: 'payload is neither {"state":"online|offline"} nor the legacy "online" / "offline"' };
  const parsed = validate(onlineState, json.value);
  return parsed.ok ? { ok: true, value: parsed.value.state === 'online' } : parsed;
}

/**
 * Zigbee2MQTT's text when a device did not answer the image notify that starts an OTA exchange:
 * "Device didn't respond to OTA request" (zigbee-herdsman ota.ts), sleeping end devices mostly.
 * Timeouts in the middle of a transfer are other failures and are not matched.
 */
export function saysDeviceDidNotRespond(error: string): boolean {
  return /didn'?t respond|did not respond/i.test(error);
}

/** Zigbee2MQTT refuses a second request while one for the same device runs (§1.3 common error strings). */
export function saysAlreadyInProgress(error: string): boolean {
  return /already in progress/i.test(error);
}
