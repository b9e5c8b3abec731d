/**
 * Strangers against the real embedded broker with mqtt.js (security audit, issue 14):
 *  - finding 4: what a refused CONNECT, PUBLISH or SUBSCRIBE with huge fields writes to the log is
 *    bounded, and a burst of refused logins gives a bounded number of lines;
 *  - finding 5: a flood of wrong logins from one address does not hold up a real device's login
 *    (unknown user names cost no hash; the slow hash runs at most two at once per address and
 *    three in all; a reconnecting device is not hashed again).
 * The attackers connect from 127.0.0.2 and the devices from 127.0.0.1 (Linux answers the whole
 * of 127/8 on loopback), since the broker counts per source address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { MqttClient } from 'mqtt';
import type { IClientOptions } from 'mqtt';
import { consoleLogger } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { EmbeddedBroker } from '../src/broker.ts';
import { credentialCheck } from '../src/credential-check.ts';
import type { StoredCredential } from '../src/credential-check.ts';
import { hashSecret, verifySecret } from '../src/secrets.ts';
import { TEST_COST, recordingLogger } from './helpers.ts';

const ATTACKER = '127.0.0.2';
const DEVICE_ADDRESS = '127.0.0.1';

/** A login from `localAddress` that never reconnects: the client, and null or the CONNACK code it was refused with (-1: closed). */
function login(port: number, localAddress: string, options: IClientOptions, clients: MqttClient[] = []): Promise<{ client: MqttClient; code: number | null }> {
  return new Promise((resolve) => {
    const client = new MqttClient(() => createConnection({ host: '127.0.0.1', port, localAddress }), {
      protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000, ...options,
    });
    clients.push(client);
    client.once('connect', () => resolve({ client, code: null }));
    client.once('error', (error) => {
      client.end(true);
      const code = (error as { code?: unknown }).code;
      resolve({ client, code: typeof code === 'number' ? code : -1 });
    });
    client.once('close', () => resolve({ client, code: -1 }));
  });
}

/** A logger that writes real console lines (as the hub's does) and keeps them. */
function lineLogger(): Logger & { lines: string[]; bytes(): number } {
  const lines: string[] = [];
  const log = consoleLogger('debug', 'broker', { write: (line) => lines.push(line) });
  return Object.assign(log, { lines, bytes: () => lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) });
}

describe('what strangers can make the broker log', { timeout: 60_000 }, () => {
  const DEVICE = 'plug-a';
  const SECRET = 'secret-of-plug-a';
  let broker: EmbeddedBroker;
  let port: number;
  const log = lineLogger();
  const clients: MqttClient[] = [];

  before(async () => {
    const users = new Map<string, StoredCredential>([[DEVICE, { principal: { role: 'device', deviceId: DEVICE }, secretHash: await hashSecret(SECRET, TEST_COST) }]]);
    broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: log, credentials: credentialCheck((u) => users.get(u) ?? null) });
    ({ port } = await broker.start());
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await broker.stop();
  });

  /** What `attempt` logged, at debug level (everything), in bytes. */
  async function loggedBy(attempt: () => Promise<void>): Promise<{ bytes: number; lines: string[] }> {
    const [lines, bytes] = [log.lines.length, log.bytes()];
    await attempt();
    // The refusal may be logged a moment after the client hears it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { bytes: log.bytes() - bytes, lines: log.lines.slice(lines) };
  }

  test('a refused CONNECT with an 8,000-character client id and user name logs well under 1 KB, the long fields clipped', async (t) => {
    const { bytes, lines } = await loggedBy(async () => {
      const { code } = await login(port, ATTACKER, { clientId: 'c'.repeat(8000), username: 'u'.repeat(8000), password: 'guess' });
      assert.equal(code, 5);
    });
    t.diagnostic(`${bytes} bytes logged: ${lines.join(' | ')}`);
    assert.ok(bytes < 1024, `${bytes} bytes`);
    assert.equal(lines.length, 1, 'the refusal is logged once');
    assert.match(lines[0]!, /Refused a login\./);
    assert.equal(lines[0]!.split('…(8000 chars)').length - 1, 2, 'both clipped fields say how long they were');
    assert.ok(lines[0]!.includes(ATTACKER), 'the line names the address');
  });

  test('a 16,000-character topic, published or subscribed to, is logged once, clipped, well under 1 KB', async (t) => {
    const { client, code } = await login(port, DEVICE_ADDRESS, { clientId: DEVICE, username: DEVICE, password: SECRET });
    assert.equal(code, null);
    clients.push(client);
    const topic = 't'.repeat(16_000);
    const published = await loggedBy(async () => {
      await client.publishAsync(topic, 'x', { qos: 1 });
    });
    const subscribed = await loggedBy(async () => {
      await client.subscribeAsync(topic, { qos: 1 }).catch(() => undefined);
    });
    for (const [what, { bytes, lines }] of [['publish', published], ['subscribe', subscribed]] as const) {
      t.diagnostic(`${what}: ${bytes} bytes logged: ${lines.join(' | ')}`);
      assert.ok(bytes < 1024, `${what}: ${bytes} bytes`);
      assert.equal(lines.join('\n').split('…(16000 chars)').length - 1, 1, `${what}: the topic appears once`);
    }
    assert.equal(client.connected, true, 'the device keeps its session');
  });

  test('a burst of 1,000 refused logins from one address gives ten lines and one summary', async (t) => {
    // A broker of its own, so the window is this burst's alone.
    const logger = recordingLogger();
    const own = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger, credentials: credentialCheck(() => null) });
    const at = await own.start();
    try {
      for (let batch = 0; batch < 10; batch++) {
        const codes = await Promise.all(Array.from({ length: 100 }, (_, i) => login(at.port, ATTACKER, { clientId: `ghost-${batch}-${i}`, username: `ghost-${batch}-${i}`, password: 'guess' })));
        assert.ok(codes.every((c) => c.code === 5));
      }
    } finally {
      await own.stop();
    }
    // Every line, debug ones too.
    const lines = logger.lines;
    t.diagnostic(`${lines.length} lines; the last: ${lines.at(-1)?.message}`);
    assert.equal(lines.filter((l) => l.message === 'Refused a login.').length, 10);
    const summaries = lines.filter((l) => /more refused logins/.test(l.message));
    assert.deepEqual(summaries.map((l) => l.message), [`990 more refused logins from ${ATTACKER} in the last minute.`]);
    assert.ok(lines.length <= 13, `${lines.length} lines`);
  });
});

describe('wrong logins do not hold up a real device', { timeout: 60_000 }, () => {
  const DEVICE = 'plug-real';
  const SECRET = 'the-real-device-secret';
  const KNOWN = Array.from({ length: 10 }, (_, i) => `plug-${i}`);
  const users = new Map<string, StoredCredential>();
  /** Every slow check, by whose credential it checked against. */
  const checks: string[] = [];
  const running = { all: 0, attacker: 0, maxAll: 0, maxAttacker: 0 };
  /** The attackers' checks wait for this: the test holds them to see who else gets a turn. */
  let holdAttackers: Promise<void> = Promise.resolve();
  let broker: EmbeddedBroker;
  let port: number;

  before(async () => {
    for (const id of [DEVICE, ...KNOWN]) {
      users.set(id, { principal: { role: 'device', deviceId: id }, secretHash: await hashSecret(id === DEVICE ? SECRET : `secret-of-${id}`, TEST_COST) });
    }
    // The real check, counted.
    const verify = async (secret: string, stored: string) => {
      const whose = [...users].find(([, c]) => c.secretHash === stored)?.[0] ?? 'nobody';
      const attacker = whose !== DEVICE;
      checks.push(whose);
      running.all += 1;
      running.maxAll = Math.max(running.maxAll, running.all);
      if (attacker) running.maxAttacker = Math.max(running.maxAttacker, (running.attacker += 1));
      try {
        if (attacker) await holdAttackers;
        return await verifySecret(secret, stored);
      } finally {
        running.all -= 1;
        if (attacker) running.attacker -= 1;
      }
    };
    broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: recordingLogger(), credentials: credentialCheck((u) => users.get(u) ?? null, { verify }) });
    ({ port } = await broker.start());
  });
  after(() => broker.stop());

  const device = async (password = SECRET) => {
    const t0 = performance.now();
    const { client, code } = await login(port, DEVICE_ADDRESS, { clientId: DEVICE, username: DEVICE, password });
    const ms = performance.now() - t0;
    await client.endAsync(true);
    return { code, ms };
  };
  const deviceChecks = () => checks.filter((c) => c === DEVICE).length;

  async function attackerFillsItsShare(): Promise<void> {
    for (let i = 0; i < 500 && running.attacker < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(running.attacker, 2, 'two of the attacker\'s checks run');
  }

  test('80 wrong logins at once from one address: unknown names cost no check, two checks at most run for it, the device logs in meanwhile', async (t) => {
    let release = () => {};
    holdAttackers = new Promise((resolve) => (release = resolve));
    const attempts = Array.from({ length: 80 }, (_, i) => {
      const username = i % 2 === 0 ? KNOWN[i % KNOWN.length]! : `ghost-${i}`;
      return login(port, ATTACKER, { clientId: username, username, password: 'a-wrong-guess' });
    });
    await attackerFillsItsShare();

    const first = await device();
    t.diagnostic(`the real device's login took ${first.ms.toFixed(1)} ms while 40 checks of wrong logins waited`);
    assert.equal(first.code, null, 'the real device logged in');
    assert.equal(deviceChecks(), 1);

    release();
    const answers = await Promise.all(attempts);
    assert.ok(answers.every((a) => a.code === 5), 'every wrong login was refused');
    const attackerChecks = checks.filter((c) => c !== DEVICE);
    assert.equal(attackerChecks.length, 40, 'one check per wrong login with a known name; the 40 unknown names cost none');
    assert.ok(attackerChecks.every((c) => KNOWN.includes(c)));
    assert.equal(running.maxAttacker, 2, 'never more than two at once for one address');
    assert.ok(running.maxAll <= 3, `${running.maxAll} at once in all`);

    // Reconnecting costs no check: the successful one is remembered for this stored credential.
    const second = await device();
    t.diagnostic(`its next login took ${second.ms.toFixed(1)} ms`);
    assert.equal(second.code, null);
    assert.equal(deviceChecks(), 1);
    // A wrong secret for the remembered device is checked the slow way, and does not make it forget.
    assert.equal((await device('not-the-secret')).code, 5);
    assert.equal(deviceChecks(), 2);
    assert.equal((await device()).code, null);
    assert.equal(deviceChecks(), 2);
  });

  test('a login whose connection closed while it waited for its turn is never checked', async () => {
    let release = () => {};
    holdAttackers = new Promise((resolve) => (release = resolve));
    const before = checks.length;
    const clients: MqttClient[] = [];
    const attempts = Array.from({ length: 20 }, (_, i) => login(port, ATTACKER, { clientId: KNOWN[i % KNOWN.length]!, username: KNOWN[i % KNOWN.length]!, password: 'a-wrong-guess' }, clients));
    await attackerFillsItsShare();
    // The attacker gives up: its logins still in line go with their connections.
    for (const client of clients) client.end(true);
    await Promise.all(attempts);
    await new Promise((resolve) => setTimeout(resolve, 200));
    release();
    for (let i = 0; i < 500 && running.all > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(checks.length - before, 2, 'only the two under way were checked');
  });

  test('a rotated credential: the remembered login no longer counts, the old secret is refused, the new one is checked once', async () => {
    assert.equal((await device()).code, null);
    const checked = deviceChecks();
    const rotated = 'the-rotated-secret';
    users.set(DEVICE, { principal: { role: 'device', deviceId: DEVICE }, secretHash: await hashSecret(rotated, TEST_COST) });
    assert.equal((await device()).code, 5, 'the old secret no longer opens a session');
    assert.equal((await device(rotated)).code, null);
    assert.equal((await device(rotated)).code, null);
    assert.equal(deviceChecks(), checked + 2, 'the old secret and the new one were checked once each, the reconnect not at all');
  });
});
