import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_PAYLOAD_BYTES, deviceTopics, encode } from '@firmward/protocol';
import { parseDeviceMessage } from '../src/messages.ts';
import { ackEvent, sampleState } from './helpers.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('parseDeviceMessage', () => {
  const t = deviceTopics('plug-1');

  test('state, availability and events of a device parse into typed messages', () => {
    assert.deepEqual(parseDeviceMessage(t.state, bytes(encode(sampleState()))), { ok: true, message: { kind: 'state', deviceId: 'plug-1', state: sampleState() } });
    assert.deepEqual(parseDeviceMessage(t.availability, bytes('{"v":1,"online":false}')), { ok: true, message: { kind: 'availability', deviceId: 'plug-1', online: false } });
    assert.deepEqual(parseDeviceMessage(t.event, bytes(encode(ackEvent('j')))), { ok: true, message: { kind: 'event', deviceId: 'plug-1', event: ackEvent('j') } });
  });

  test('a command on the device side is an unknown kind for the hub', () => {
    const r = parseDeviceMessage(t.command, bytes('{"v":1,"type":"install","jobId":"j"}'));
    assert.deepEqual(r, { ok: false, deviceId: 'plug-1', error: 'commands are not accepted from devices' });
  });

  test('topics that are not ours, or carry an invalid device id, have no device', () => {
    for (const topic of ['firmward/v1/d/plug-1/status', 'firmward/v2/d/plug-1/state', 'firmward/v1/d/plug 1/state', `firmward/v1/d/${'x'.repeat(129)}/evt`, 'elsewhere', '']) {
      const r = parseDeviceMessage(topic, bytes(encode(sampleState())));
      assert.equal(r.ok, false, topic);
      assert.equal(r.ok ? undefined : r.deviceId, null, topic);
    }
  });

  test('an oversized payload is refused before it is decoded', () => {
    const r = parseDeviceMessage(t.event, new Uint8Array(MAX_PAYLOAD_BYTES + 1).fill(0x7b));
    assert.deepEqual(r, { ok: false, deviceId: 'plug-1', error: `payload of ${MAX_PAYLOAD_BYTES + 1} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit` });
  });

  test('property: never throws, and whatever it accepts re-encodes to a payload it accepts again', () => {
    fc.assert(fc.property(
      fc.constantFrom(t.state, t.availability, t.event, t.command, 'firmward/v1/d/+/state'),
      fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map(bytes), fc.constant(bytes(encode(sampleState())))),
      (topic, payload) => {
        const r = parseDeviceMessage(topic, payload);
        if (!r.ok) return;
        const m = r.message;
        const again = m.kind === 'state' ? encode(m.state) : m.kind === 'event' ? encode(m.event) : encode({ v: 1, online: m.online });
        assert.deepEqual(parseDeviceMessage(topic, bytes(again)), r);
      },
    ));
  });
});
