/**
 * Topic + bytes from the broker → a typed device message, or the reason it is refused. Pure and
 * total (never throws), so the gateway can treat every input the same way: parse at the boundary,
 * and anything that does not parse changes nothing (STYLE principle 9).
 */
import {
  MAX_PAYLOAD_BYTES, availabilitySchema, deviceEventSchema, deviceStateSchema, parsePayload, parseTopic,
} from '@firmward/protocol';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';

export type DeviceMessage =
  | { kind: 'state'; deviceId: string; state: DeviceState }
  | { kind: 'availability'; deviceId: string; online: boolean }
  | { kind: 'event'; deviceId: string; event: DeviceEvent };

export type DeviceMessageResult =
  | { ok: true; message: DeviceMessage }
  | { ok: false; deviceId: string | null; error: string };

/**
 * @example
 * const r = parseDeviceMessage('firmward/v1/d/plug-1/evt', payload);
 * if (r.ok && r.message.kind === 'event') console.log(r.message.event.type);
 */
export function parseDeviceMessage(topic: string, payload: Uint8Array): DeviceMessageResult {
  const parsedTopic = parseTopic(topic);
  if (parsedTopic === null) return { ok: false, deviceId: null, error: 'not a device topic (bad device id or unknown kind)' };
  const { deviceId, kind } = parsedTopic;
  // Checked before decoding so an oversized payload costs nothing more, whatever its kind.
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    return { ok: false, deviceId, error: `payload of ${payload.byteLength} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit` };
  }
  switch (kind) {
    case 'state': {
      const r = parsePayload(deviceStateSchema, payload);
      return r.ok ? { ok: true, message: { kind: 'state', deviceId, state: r.value } } : { ok: false, deviceId, error: `state: ${r.error}` };
    }
    case 'availability': {
      const r = parsePayload(availabilitySchema, payload);
      return r.ok ? { ok: true, message: { kind: 'availability', deviceId, online: r.value.online } } : { ok: false, deviceId, error: `availability: ${r.error}` };
    }
    case 'evt': {
      const r = parsePayload(deviceEventSchema, payload);
      return r.ok ? { ok: true, message: { kind: 'event', deviceId, event: r.value } } : { ok: false, deviceId, error: `event: ${r.error}` };
    }
    case 'cmd':
      // Commands flow hub → device only; one arriving here is not something the hub listens to.
      return { ok: false, deviceId, error: 'commands are not accepted from devices' };
  }
}
