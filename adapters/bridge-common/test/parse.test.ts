/** Bytes → JSON → typed payloads: bounded, never throwing, with a one-line reason. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parseJson, readJson, validate } from '../src/index.ts';

const bytes = (text: string) => new TextEncoder().encode(text);
const schema = z.object({ version: z.string(), rssi: z.number().max(0) });

test('a payload over the limit is refused before it is read', () => {
  assert.deepEqual(readJson(bytes('{"a":1}'), 6), { ok: false, error: 'payload of 7 bytes is over the 6-byte limit' });
  assert.deepEqual(readJson(bytes('{"a":1}'), 7), { ok: true, value: { a: 1 } });
});

test('bytes that are not UTF-8 JSON are refused', () => {
  assert.deepEqual(readJson(bytes('{'), 100), { ok: false, error: 'payload is not valid JSON' });
  assert.deepEqual(readJson(new Uint8Array([0x22, 0xff, 0x22]), 100), { ok: false, error: 'payload is not valid JSON' });
});

test('a value that does not fit the schema names the first field that is wrong', () => {
  assert.deepEqual(validate(schema, { version: '1.0', rssi: -60 }), { ok: true, value: { version: '1.0', rssi: -60 } });
  const wrong = validate(schema, { version: '1.0', rssi: 5 });
  assert.equal(wrong.ok, false);
  assert.match(wrong.ok ? '' : wrong.error, /^rssi: /);
  const notAnObject = validate(schema, 'x');
  assert.match(notAnObject.ok ? '' : notAnObject.error, /^payload: /);
});

test('parseJson is readJson then validate', () => {
  assert.deepEqual(parseJson(schema, bytes('{"version":"2.1","rssi":-70}'), 100), { ok: true, value: { version: '2.1', rssi: -70 } });
  assert.deepEqual(parseJson(schema, bytes('{'), 100), { ok: false, error: 'payload is not valid JSON' });
  const wrong = parseJson(schema, bytes('{"version":2}'), 100);
  assert.match(wrong.ok ? '' : wrong.error, /^version: /);
});
