/**
 * Strangers against the real embedded broker with mqtt.js (security audit, issue 14):
 *  - finding 4: what a refused CONNECT, PUBLISH or SUBSCRIBE with huge fields writes to the log is
 *    bounded, and a burst of refused logins gives a bounded number of lines.
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
import { credentialCheck, hashSecret } from '../src/secrets.ts';
import type { StoredCredential } from '../src/secrets.ts';
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
