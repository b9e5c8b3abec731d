/**
 * The Mosquitto files are the embedded broker's rules written out (acl.ts); the service test
 * (test-services/mosquitto.test.ts) runs a real Mosquitto with them. Here: what the text says, what
 * it refuses, and that docs/protocol.md shows exactly what the generator writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isFirmwardError } from '@firmward/core';
import { MAX_PAYLOAD_BYTES } from '@firmward/protocol';
import { MOSQUITTO_MAX_PACKET_BYTES, mosquittoAclFile, mosquittoConfig, mosquittoPasswordFile } from '../src/mosquitto-config.ts';
import { hashDeviceSecret, hashSecret } from '../src/secrets.ts';
import { TEST_COST } from './helpers.ts';

const rules = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

test('the ACL: devices write only their own state, availability and events and read only their own commands; the hub the reverse', () => {
  assert.deepEqual(rules(mosquittoAclFile(['plug-1', 'plug-2'])), [
    'pattern write firmward/v1/d/%u/state',
    'pattern write firmward/v1/d/%u/availability',
    'pattern write firmward/v1/d/%u/evt',
    'pattern read firmward/v1/d/%u/cmd',
    'user hub',
    'topic read firmward/v1/d/+/state',
    'topic read firmward/v1/d/+/availability',
    'topic read firmward/v1/d/+/evt',
    'topic write firmward/v1/d/+/cmd',
  ]);
  assert.ok(rules(mosquittoAclFile([], { hubUser: 'hub-2' })).includes('user hub-2'));
  // The patterns come before any `user` line, so no reader takes them for the hub's alone.
  const lines = rules(mosquittoAclFile([]));
  assert.ok(lines.findLastIndex((l) => l.startsWith('pattern')) < lines.findIndex((l) => l.startsWith('user')));
});

test('the ACL refuses a device id that is not one, or that is the hub\'s user name', () => {
  for (const bad of ['a/b', 'a+b', '#', '', 'x y']) {
    assert.throws(() => mosquittoAclFile(['ok', bad]), (e) => isFirmwardError(e, 'invalid_input'), JSON.stringify(bad));
  }
  assert.throws(() => mosquittoAclFile(['hub']), (e) => isFirmwardError(e, 'invalid_input') && /hub's user name/.test(e.message));
  assert.throws(() => mosquittoAclFile(['boss'], { hubUser: 'boss' }), (e) => isFirmwardError(e, 'invalid_input'));
  assert.throws(() => mosquittoAclFile([], { hubUser: 'hub\ntopic readwrite #' }), (e) => isFirmwardError(e, 'invalid_input'));
});

test('the config: no anonymous clients, the two files, the packet limit, no persistence; no injected lines', () => {
  const text = mosquittoConfig({ host: '127.0.0.1', port: 18830, passwordFile: '/tmp/x/passwords', aclFile: '/tmp/x/acl' });
  assert.deepEqual(rules(text), [
    'per_listener_settings false',
    'listener 18830 127.0.0.1',
    'allow_anonymous false',
    'password_file /tmp/x/passwords',
    'acl_file /tmp/x/acl',
    `max_packet_size ${MAX_PAYLOAD_BYTES + 1024}`,
    'persistence false',
  ]);
  assert.equal(MOSQUITTO_MAX_PACKET_BYTES, 17408);
  assert.ok(rules(mosquittoConfig({ host: '127.0.0.1', port: 1, passwordFile: '/p', aclFile: '/a', user: 'svc' })).includes('user svc'));
  assert.throws(() => mosquittoConfig({ host: '127.0.0.1', port: 1883, passwordFile: '/p\nallow_anonymous true', aclFile: '/a' }), (e) => isFirmwardError(e, 'invalid_input'));
  for (const port of [0, 65536, 1.5]) {
    assert.throws(() => mosquittoConfig({ host: '127.0.0.1', port, passwordFile: '/p', aclFile: '/a' }), (e) => isFirmwardError(e, 'invalid_input'), String(port));
  }
});

test('docs/protocol.md shows exactly what the generators write', () => {
  const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
  const fenced = (text: string) => `\`\`\`\n${text}\`\`\``;
  assert.ok(doc.includes(fenced(mosquittoAclFile(['kitchen-plug', 'thermostat']))), 'the ACL example is out of date');
  const config = mosquittoConfig({ host: '0.0.0.0', port: 1883, passwordFile: '/etc/mosquitto/firmward/passwords', aclFile: '/etc/mosquitto/firmward/acl' });
  assert.ok(doc.includes(fenced(config)), 'the mosquitto.conf example is out of date');
});

test('the password file: one sorted user:hash line per entry, the same text for the same entries', async () => {
  const [h1, h2] = [await hashDeviceSecret('one', 10), await hashDeviceSecret('two', 10)];
  const sha512 = '$6$qpLt6TDgU/aqEAZX$P6M/s2V5ZUTc5zZyusXi0Sn09vhGIu8rbfBmqG+hInKDiXZcKhw9xVfg6yCaREPEuFlI44E5utnm6r4iIbES6A==';
  const entries = [{ username: 'plug-b', hash: h2 }, { username: 'hub', hash: h1 }, { username: 'plug-a', hash: sha512 }];
  const text = mosquittoPasswordFile(entries);
  assert.equal(text, `hub:${h1}\nplug-a:${sha512}\nplug-b:${h2}\n`);
  assert.equal(mosquittoPasswordFile([...entries].reverse()), text);
  assert.equal(mosquittoPasswordFile([]), '');
});

test('the password file refuses user names that are not one user on one line, names given twice, and hashes Mosquitto cannot check', async () => {
  const hash = await hashDeviceSecret('s', 10);
  for (const username of ['', 'a:b', 'a b', 'a\nb', 'a\rb', 'a\tb', 'tab\u00a0', '#comment', 'nul\u0000', 'del\u007f']) {
    assert.throws(() => mosquittoPasswordFile([{ username, hash }]), (e) => isFirmwardError(e, 'invalid_input'), JSON.stringify(username));
  }
  assert.throws(() => mosquittoPasswordFile([{ username: 'a', hash }, { username: 'a', hash }]), (e) => isFirmwardError(e, 'invalid_input') && /twice/.test(e.message));
  const scrypt = await hashSecret('s', TEST_COST);
  const [, , , salt, key] = hash.split('$') as [string, string, string, string, string];
  for (const bad of [scrypt, '', 'plain', '$7$', `$7$0$${salt}$${key}`, `$7$x$${salt}$${key}`, `$7$10$${salt}`, `$7$10$${salt}$${key}\nroot:x`, `$7$10$${salt}$${key}$`, `$8$10$${salt}$${key}`]) {
    assert.throws(() => mosquittoPasswordFile([{ username: 'a', hash: bad }]), (e) => isFirmwardError(e, 'invalid_input'), JSON.stringify(bad));
  }
});
