import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJson, validate } from '@firmward/bridge-common';
import { MAX_PAYLOAD_BYTES } from '@firmward/protocol';
import { deviceInfoSchema, notifyEventParamsSchema, prefixProblem, shellyTopics, statusSchema } from '../src/messages.ts';

const bytes = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

describe('Shelly messages', () => {
  test('topics of one device under its prefix', () => {
    assert.deepEqual(shellyTopics('shellyplus1-c4dd57877294'), {
      rpc: 'shellyplus1-c4dd57877294/rpc', events: 'shellyplus1-c4dd57877294/events/rpc', online: 'shellyplus1-c4dd57877294/online',
    });
  });

  test('topic prefixes Shelly would refuse are refused', () => {
    assert.equal(prefixProblem('shellies/porch'), null);
    assert.notEqual(prefixProblem(''), null);
    assert.notEqual(prefixProblem('$SYS'), null);
    assert.notEqual(prefixProblem('shellies/#'), null);
    assert.notEqual(prefixProblem('a+b'), null);
    assert.notEqual(prefixProblem('x'.repeat(301)), null);
  });

  test('GetDeviceInfo as the aioshelly fixture shows it', () => {
    const info = validate(deviceInfoSchema, {
      name: 'Shelly 1 Mini Gen4 [DDEEFF]', id: 'shelly1minig4-aabbccddeeff', mac: 'AABBCCDDEEFF', slot: 1, model: 'S4SW-001X8EU', gen: 4,
      fw_id: '20250214-121701/1.5.99-g4prod1-gc32c24b', ver: '1.5.99-g4prod1', app: 'Mini1G4ZB', auth_en: false, auth_domain: null,
    });
    assert.ok(info.ok);
    assert.equal(info.ok && info.value.ver, '1.5.99-g4prod1');
    assert.equal(validate(deviceInfoSchema, { id: 'x', model: 'y', gen: 1, ver: '1.0' }).ok, false);
  });

  test('status: available updates, signal and battery; wrong types refused', () => {
    const status = validate(statusSchema, { sys: { available_updates: { stable: { version: '1.6.0' }, beta: { version: '1.6.0-beta1' } } }, wifi: { rssi: -65 } });
    assert.ok(status.ok);
    assert.equal(status.ok && status.value.sys?.available_updates?.stable?.version, '1.6.0');
    assert.equal(validate(statusSchema, { wifi: { rssi: 'strong' } }).ok, false);
    assert.equal(validate(statusSchema, { 'devicepower:0': { battery: { percent: 180 } } }).ok, false);
  });

  test('NotifyEvent events and bad JSON', () => {
    assert.ok(validate(notifyEventParamsSchema, { ts: 1, events: [{ component: 'sys', event: 'ota_progress', progress_percent: 42, msg: 'x', ts: 1 }] }).ok);
    assert.equal(validate(notifyEventParamsSchema, { ts: 1, events: 'ota_success' }).ok, false);
    assert.deepEqual(parseJson(statusSchema, bytes('{'), MAX_PAYLOAD_BYTES), { ok: false, error: 'payload is not valid JSON' });
    assert.equal(parseJson(statusSchema, bytes('x'.repeat(MAX_PAYLOAD_BYTES + 1)), MAX_PAYLOAD_BYTES).ok, false);
  });
});
