/**
 * Who may do what on the broker: pure decisions, no I/O (STYLE principle 2), so the same rules
 * can be tested on their own and written out for an external Mosquitto (docs/protocol.md).
 * Every function returns null when allowed, or a one-line reason for the refusal log.
 *
 * A device speaks only for itself: it publishes its own state, availability and events and
 * reads only its own commands. The hub reads every device and writes only commands. Nothing else
 * is allowed, so a compromised device can neither pose as another device nor send commands
 * (invariants 2 and 4 depend on the device receiving offers only from the hub).
 */
import { MAX_PAYLOAD_BYTES, TOPIC_ROOT, availabilitySchema, deviceTopics, parsePayload, parseTopic } from '@firmward/protocol';

export type Principal = { role: 'hub' } | { role: 'device'; deviceId: string };

/** Where a login comes from, as the broker saw it. */
export interface LoginSource {
  /** The peer's address: slow checks are limited per address (credential-check.ts). */
  address: string;
  /** Aborted when the connection closes: a login still waiting for its check is not checked. */
  signal?: AbortSignal;
}

/** Checks a login. Returns who it is, or null to refuse. Implementations compare secrets in constant time. */
export interface CredentialCheck {
  authenticate(username: string, password: string, source?: LoginSource): Promise<Principal | null>;
}

/** The topic filters the hub subscribes to: every device's state, availability and events. */
export const HUB_TOPIC_FILTERS = [
  `${TOPIC_ROOT}/d/+/state`,
  `${TOPIC_ROOT}/d/+/availability`,
  `${TOPIC_ROOT}/d/+/evt`,
] as const;

/**
 * Client ids of the hub start with this. It contains a "/", which no device id may, so a device
 * can never take over the hub's session (an MQTT broker closes the older of two sessions with
 * the same client id).
 */
export const HUB_CLIENT_ID_PREFIX = 'hub/';

function validDeviceId(deviceId: string): boolean {
  return parseTopic(deviceTopics(deviceId).state)?.deviceId === deviceId;
}

/**
 * A device must connect with its own id as client id, and the hub with HUB_CLIENT_ID_PREFIX: a
 * device that could pick another's client id could throw that device off the broker, and its
 * last will would then say it went offline.
 */
export function clientIdRefusal(principal: Principal, clientId: string): string | null {
  switch (principal.role) {
    case 'hub':
      return clientId.startsWith(HUB_CLIENT_ID_PREFIX) && clientId.length > HUB_CLIENT_ID_PREFIX.length
        ? null
        : `the hub's client id must start with "${HUB_CLIENT_ID_PREFIX}"`;
    case 'device':
      if (!validDeviceId(principal.deviceId)) return `"${principal.deviceId}" is not a valid device id`;
      return clientId === principal.deviceId ? null : `a device must use its own id "${principal.deviceId}" as client id`;
  }
}

export interface PublishFacts {
  topic: string;
  retain: boolean;
  payloadBytes: number;
}

export function publishRefusal(principal: Principal, message: PublishFacts): string | null {
  if (message.payloadBytes > MAX_PAYLOAD_BYTES) return `payload of ${message.payloadBytes} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`;
  const topic = parseTopic(message.topic);
  // The topic is not repeated here: the refusal log has it in its own (clipped) field.
  if (topic === null) return 'not a Firmward topic';
  switch (principal.role) {
    case 'hub':
      if (topic.kind !== 'cmd') return 'the hub may publish only commands';
      // A retained command would be replayed to the device on every reconnect, long after the
      // hub moved on (invariant 8: commands are idempotent by job id, not timeless).
      return message.retain ? 'commands are never retained' : null;
    case 'device':
      if (topic.deviceId !== principal.deviceId) return `device "${principal.deviceId}" may not publish for "${topic.deviceId}"`;
      if (topic.kind === 'cmd') return 'a device may not publish commands';
      if (topic.kind === 'evt' && message.retain) return 'events are never retained';
      return null;
  }
}

export function subscribeRefusal(principal: Principal, topicFilter: string): string | null {
  switch (principal.role) {
    case 'hub': {
      if ((HUB_TOPIC_FILTERS as readonly string[]).includes(topicFilter)) return null;
      const topic = parseTopic(topicFilter);
      return topic !== null && topic.kind !== 'cmd' ? null : 'the hub may not subscribe to that topic filter';
    }
    case 'device':
      return topicFilter === deviceTopics(principal.deviceId).command
        ? null
        : `device "${principal.deviceId}" may subscribe only to its own commands`;
  }
}

export interface WillFacts {
  topic: string;
  retain: boolean;
  payload: Uint8Array | string;
}

/**
 * The only last will allowed is a device's own retained `{"v":1,"online":false}` on its
 * availability topic: the broker publishes it on the device's behalf when the connection drops,
 * so a will elsewhere would let a device publish where it may not, at a time of its choosing.
 */
export function willRefusal(principal: Principal, will: WillFacts | null): string | null {
  if (will === null) return null;
  switch (principal.role) {
    case 'hub':
      return 'the hub may not set a last will';
    case 'device': {
      if (will.topic !== deviceTopics(principal.deviceId).availability) return 'a last will may only target the device\'s own availability topic';
      if (!will.retain) return 'the last will must be retained';
      const parsed = parsePayload(availabilitySchema, will.payload);
      if (!parsed.ok) return `last will: ${parsed.error}`;
      return parsed.value.online ? 'the last will must say the device is offline' : null;
    }
  }
}
