/**
 * Shelly Gen2+ RPC over MQTT, read at the boundary (STYLE principle 9): every frame is parsed
 * with a schema, and what does not parse is refused with a one-line reason. Shelly adds fields
 * from release to release, so objects are read loosely; the fields the bridge relies on are
 * checked strictly. Facts and their sources: /work/shared/reference/ecosystems.md, section 4
 * (Shelly Gen2+).
 */
import { z } from 'zod';

/** Topics of one device under its MQTT `topic_prefix` (section 4.2). */
export function shellyTopics(prefix: string) {
  return {
    /** bridge → device: RPC request frames. */
    rpc: `${prefix}/rpc`,
    /** device → bridge: NotifyStatus / NotifyFullStatus / NotifyEvent (with `rpc_ntf` on). */
    events: `${prefix}/events/rpc`,
    /** device → bridge: "true" on connect, "false" as its last will. */
    online: `${prefix}/online`,
  } as const;
}

/** A `topic_prefix` Shelly accepts (section 4.2: ≤ 300 characters, not starting with `$`, no `#`, `+`, `%`, `?`). */
export function prefixProblem(prefix: string): string | null {
  if (prefix.length === 0 || prefix.length > 300) return 'must be 1 to 300 characters';
  if (prefix.startsWith('$')) return 'must not start with "$"';
  if (/[#+%?]/.test(prefix)) return 'must not contain #, +, % or ?';
  return null;
}

/** A reply frame on `<src>/rpc` (section 4.1): `result`, or `error` with a code and a message. */
export const rpcReplySchema = z.looseObject({
  id: z.union([z.number(), z.string()]),
  src: z.string().max(256).optional(),
  dst: z.string().max(512).optional(),
  result: z.unknown().optional(),
  error: z.looseObject({ code: z.number(), message: z.string().max(1000) }).optional(),
});
export type RpcReply = z.infer<typeof rpcReplySchema>;

/** A notification frame on `<prefix>/events/rpc` (section 4.1). */
export const notificationSchema = z.looseObject({
  src: z.string().max(256).optional(),
  method: z.string().min(1).max(64),
  params: z.looseObject({}).optional(),
});

/** `Shelly.GetDeviceInfo` (section 4.3). */
export const deviceInfoSchema = z.looseObject({
  id: z.string().min(1).max(120),
  name: z.string().max(256).nullish(),
  mac: z.string().max(64).optional(),
  model: z.string().min(1).max(64),
  gen: z.number().int().min(2).max(99),
  fw_id: z.string().max(128).optional(),
  ver: z.string().min(1).max(64),
  app: z.string().max(64).optional(),
});
export type DeviceInfo = z.infer<typeof deviceInfoSchema>;

const stageSchema = z.looseObject({ version: z.string().min(1).max(64) });

/**
 * The parts of `Shelly.GetStatus` (and of NotifyStatus / NotifyFullStatus, which carry the same
 * keys) the bridge reads: `sys.available_updates` (section 4.3), `wifi.rssi` in dBm (section 4.3),
 * and `devicepower:0` on battery devices (battery.percent, external.present: Shelly's DevicePower
 * component, https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/DevicePower/).
 */
export const statusSchema = z.looseObject({
  sys: z.looseObject({
    available_updates: z.looseObject({ stable: stageSchema.optional(), beta: stageSchema.optional() }).optional(),
  }).optional(),
  wifi: z.looseObject({ rssi: z.number().nullish() }).optional(),
  'devicepower:0': z.looseObject({
    battery: z.looseObject({ percent: z.number().min(0).max(100).nullish() }).optional(),
    external: z.looseObject({ present: z.boolean().optional() }).optional(),
  }).optional(),
});
export type ShellyStatus = z.infer<typeof statusSchema>;

/** NotifyEvent params (section 4.4); the OTA events come from the `sys` component. */
export const notifyEventParamsSchema = z.looseObject({
  events: z.array(z.looseObject({
    component: z.string().max(64),
    event: z.string().max(64),
    msg: z.string().max(500).optional(),
    progress_percent: z.number().optional(),
  })).max(64),
});
export type ShellyEvent = z.infer<typeof notifyEventParamsSchema>['events'][number];
