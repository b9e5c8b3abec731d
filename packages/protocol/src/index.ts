/**
 * The device protocol over MQTT: one typed contract shared by hub, agent, CLI and tests
 * (STYLE principle 13). Payloads are JSON; every payload is parsed with these schemas at the
 * boundary, and anything that does not parse is refused with a reason and changes nothing.
 * Documented in docs/protocol.md.
 */
import { z } from 'zod';
import type { DeviceCode } from './device-codes.ts';

export const PROTOCOL_VERSION = 1;
export const TOPIC_ROOT = 'firmward/v1';
/** No payload on our topics is legitimately larger than this. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');
const version = z.string().min(1).max(64);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');

/** The topics of one device. A device may only use its own (enforced by the broker's ACL). */
export function deviceTopics(deviceId: string) {
  const base = `${TOPIC_ROOT}/d/${deviceId}`;
  return {
    /** device → hub, retained: what it is and how it is. */
    state: `${base}/state`,
    /** device → hub, retained; the broker publishes the last will "offline" when it drops. */
    availability: `${base}/availability`,
    /** hub → device: offer, install go-ahead, cancel. */
    command: `${base}/cmd`,
    /** device → hub: acknowledgements, progress, results. */
    event: `${base}/evt`,
  } as const;
}

/** Parse a topic of ours back into device id and kind; null for anything else. */
export function parseTopic(topic: string): { deviceId: string; kind: 'state' | 'availability' | 'cmd' | 'evt' } | null {
  const m = /^firmward\/v1\/d\/([A-Za-z0-9._:-]{1,128})\/(state|availability|cmd|evt)$/.exec(topic);
  if (!m) return null;
  return { deviceId: m[1]!, kind: m[2] as 'state' | 'availability' | 'cmd' | 'evt' };
}

export const deviceStateSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  vendor: z.string().min(1).max(64),
  model: z.string().min(1).max(64),
  hardwareRevision: z.string().min(1).max(64),
  firmwareVersion: version,
  activeSlot: z.enum(['a', 'b']),
  powerSource: z.enum(['mains', 'battery']),
  batteryPercent: z.number().min(0).max(100).nullable(),
  charging: z.boolean(),
  signalDbm: z.number().min(-130).max(0).nullable(),
  busy: z.boolean(),
  freeStorageBytes: z.number().int().min(0),
  healthy: z.boolean(),
  /** The update the device is working on, if any (lets the hub resume after either side restarts). */
  job: z.strictObject({ jobId: id, phase: z.enum(['downloading', 'downloaded', 'installing', 'rebooting', 'idle']) }).nullable(),
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

export const availabilitySchema = z.strictObject({ v: z.literal(PROTOCOL_VERSION), online: z.boolean() });
export type Availability = z.infer<typeof availabilitySchema>;

export const offerCommandSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('offer'),
  jobId: id,
  releaseId: z.string().min(1).max(256),
  vendor: z.string().min(1).max(64),
  model: z.string().min(1).max(64),
  hardwareRevisions: z.array(z.string().min(1).max(64)).min(1).max(64),
  version,
  applicableFrom: version.nullable(),
  applicableTo: version.nullable(),
  image: z.strictObject({ url: z.string().min(1).max(2048), lengthBytes: z.number().int().positive(), sha256 }),
  expectedInstallSeconds: z.number().int().positive(),
  /**
   * Which offer of this job this is (1 for the first; re-sends of one offer repeat it). The device
   * answers with it, so an answer to an earlier offer that arrives late changes nothing.
   */
  offerSeq: z.number().int().min(1).optional(),
  /**
   * Where the maker signed this image: the device checks the offer against it with its own trusted
   * root (docs/protocol.md, "Signed offers"). `url` is the repository as the hub mirrors it.
   */
  target: z.strictObject({
    repository: z.string().min(1).max(64),
    path: z.string().min(1).max(512),
    url: z.string().min(1).max(2048),
  }).optional(),
});
export const installCommandSchema = z.strictObject({ v: z.literal(PROTOCOL_VERSION), type: z.literal('install'), jobId: id });
export const cancelCommandSchema = z.strictObject({ v: z.literal(PROTOCOL_VERSION), type: z.literal('cancel'), jobId: id, message: z.string().max(500) });
export const commandSchema = z.discriminatedUnion('type', [offerCommandSchema, installCommandSchema, cancelCommandSchema]);
export type OfferCommand = z.infer<typeof offerCommandSchema>;
export type InstallCommand = z.infer<typeof installCommandSchema>;
export type CancelCommand = z.infer<typeof cancelCommandSchema>;
export type Command = z.infer<typeof commandSchema>;

export const ackEventSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('ack'),
  jobId: id,
  accepted: z.boolean(),
  /** When refused: a stable code (device-codes.ts) and a sentence (e.g. the device's own preflight said no). */
  code: z.string().max(64).nullable(),
  message: z.string().max(500).nullable(),
  /** The offerSeq of the offer this answers, when it answers one that carried it. */
  offerSeq: z.number().int().min(1).optional(),
});
export const progressEventSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('progress'),
  jobId: id,
  phase: z.enum(['downloading', 'downloaded', 'installing', 'rebooting']),
  percent: z.number().min(0).max(100).nullable(),
});
export const resultEventSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('result'),
  jobId: id,
  /** installed: new version committed after its health check. rolled-back: the old version runs again. failed: nothing changed. */
  outcome: z.enum(['installed', 'rolled-back', 'failed']),
  firmwareVersion: version,
  healthy: z.boolean(),
  code: z.string().max(64).nullable(),
  message: z.string().max(500).nullable(),
});
export const deviceEventSchema = z.discriminatedUnion('type', [ackEventSchema, progressEventSchema, resultEventSchema]);
export type AckEvent = z.infer<typeof ackEventSchema>;
export type ProgressEvent = z.infer<typeof progressEventSchema>;
export type ResultEvent = z.infer<typeof resultEventSchema>;
export type DeviceEvent = z.infer<typeof deviceEventSchema>;

/**
 * What our own senders (the agent, the bridges, the hawkBit gateway) publish: the same messages,
 * with a code from the shared table (device-codes.ts), so a mistyped code is a type error. The wire
 * type above still takes any string: a device of another maker may send its own, and a code
 * outside the table counts as final.
 */
export type OwnAckEvent = Omit<AckEvent, 'code'> & { code: DeviceCode | null };
export type OwnResultEvent = Omit<ResultEvent, 'code'> & { code: DeviceCode | null };
export type OwnDeviceEvent = OwnAckEvent | ProgressEvent | OwnResultEvent;

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Bytes → typed message, or a one-line reason. Never throws. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Uint8Array | string): ParseResult<T> {
  const size = typeof payload === 'string' ? payload.length : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${size} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit` };
  let json: unknown;
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    return { ok: false, error: 'payload is not valid JSON' };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: issue ? `${issue.path.join('.') || 'payload'}: ${issue.message}` : 'payload does not match the schema' };
  }
  return { ok: true, value: parsed.data };
}

export function encode(message: DeviceState | Availability | Command | DeviceEvent): string {
  return JSON.stringify(message);
}

export * from './device-codes.ts';
export * from './enrollment.ts';
