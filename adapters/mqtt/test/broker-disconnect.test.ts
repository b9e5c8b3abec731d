/**
 * EmbeddedBroker.disconnect: when a device's credential is rotated or revoked, its open session
 * ends at once, and because every login is looked up again (credentialCheck), the old secret opens
 * no new one. Real broker on a free loopback port, real MQTT clients, credentials in a Map.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { ManualClock } from '@firmward/ports';
import { deviceTopics, encode } from '@firmward/protocol';
import { EmbeddedBroker } from '../src/broker.ts';
import { connectDevice } from '../src/device-client.ts';
import type { DeviceConnection } from '../src/device-client.ts';
import { MqttDeviceGateway } from '../src/gateway.ts';
import { credentialCheck } from '../src/credential-check.ts';
import type { StoredCredential } from '../src/credential-check.ts';
import { hashDeviceSecret, hashSecret } from '../src/secrets.ts';
import { RecordingHandler, TEST_COST, recordingLogger, sampleState } from './helpers.ts';
import type { HandlerCall } from './helpers.ts';

const A = 'plug-a';
const B = 'plug-b';

/** Polls until `check` holds; fails with `what` after the deadline (no timed assertion). */
async function eventually(what: string, check: () => boolean, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

function raw(url: string, options: IClientOptions): Promise<MqttClient> {
  return connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

const states = (calls: HandlerCall[], deviceId: string) =>
  calls.flatMap((c) => (c.kind === 'state' && c.deviceId === deviceId ? [c.state.firmwareVersion] : []));
const availability = (calls: HandlerCall[], deviceId: string) =>
  calls.flatMap((c) => (c.kind === 'availability' && c.deviceId === deviceId ? [c.online] : []));

describe('EmbeddedBroker.disconnect', { timeout: 30_000 }, () => {
  const users = new Map<string, StoredCredential>();
  const secrets = new Map([[A, 'secret-of-a'], [B, 'secret-of-b']]);
  const logger = recordingLogger();
  /** When set, runs inside each credential lookup, after the store was read (to revoke a credential mid-login). */
  let duringLookup: (() => Promise<void>) | null = null;
  let broker: EmbeddedBroker;
  let url: string;
  let gateway: MqttDeviceGateway;
  const handler = new RecordingHandler();
  const devices: DeviceConnection[] = [];
  const clients: MqttClient[] = [];

  before(async () => {
    users.set('hub', { principal: { role: 'hub' }, secretHash: await hashSecret('hub-secret', TEST_COST) });
    for (const [id, secret] of secrets) users.set(id, { principal: { role: 'device', deviceId: id }, secretHash: await hashDeviceSecret(secret) });
    broker = new EmbeddedBroker({
      host: '127.0.0.1', port: 0, logger,
      credentials: credentialCheck(async (username) => {
        const found = users.get(username) ?? null;
        if (duringLookup !== null) await duringLookup();
        return found;
      }),
    });
    const { port } = await broker.start();
    url = `mqtt://127.0.0.1:${port}`;
    gateway = new MqttDeviceGateway({ url, username: 'hub', password: 'hub-secret', clock: new ManualClock(1000), logger: recordingLogger() });
    await gateway.start(handler);
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.mqtt.endAsync(true)));
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await gateway.stop();
    await broker.stop();
  });

  async function device(deviceId: string, password: string): Promise<DeviceConnection> {
    // Reconnects quickly by itself, as a real device would try its old secret again.
    const d = await connectDevice({ url, deviceId, password, reconnectPeriodMs: 50, logger: recordingLogger() });
    devices.push(d);
    return d;
  }

  test('a revoked device is thrown off at once, cannot log in again with its old secret, and nothing it sends gets through', async () => {
    const a = await device(A, secrets.get(A)!);
    const b = await device(B, secrets.get(B)!);
    await a.publishState(sampleState({ firmwareVersion: '1.0.0' }));
    await handler.waitFor((calls) => states(calls, A).includes('1.0.0') && availability(calls, B).includes(true));
    let closes = 0;
    a.mqtt.on('close', () => (closes += 1));
    const refusals = () => logger.lines.filter((l) => l.message === 'Refused a login.' && l.detail?.username === A).length;
    const refusedBefore = refusals();

    users.delete(A);
    assert.equal(await broker.disconnect(A), true);
    // aedes publishes the will as after a dropped connection: the hub hears "offline".
    await handler.waitFor((calls) => availability(calls, A).at(-1) === false);
    await eventually('the device saw its connection close', () => closes > 0);

    // What it sends now waits for a connection it never gets again: its reconnect is refused
    // (after which mqtt.js stops trying: reconnectOnConnackError is off by default).
    a.mqtt.publish(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '6.6.6' })), { qos: 1, retain: true });
    await eventually('the device tried its old secret again and was refused', () => refusals() > refusedBefore);
    await assert.rejects(raw(url, { clientId: A, username: A, password: secrets.get(A)! }), (e) => (e as { code?: unknown }).code === 5);
    assert.equal(a.mqtt.connected, false);

    // The other device was not touched; what it sends after all that arrives, and A's never did.
    assert.equal(b.mqtt.connected, true);
    await b.publishState(sampleState({ firmwareVersion: '2.0.0' }));
    await handler.waitFor((calls) => states(calls, B).includes('2.0.0'));
    assert.deepEqual(states(handler.calls, A), ['1.0.0']);
  });

  test('a rotated secret: the session opened with the old one is closed, the old one is refused, the new one works', async () => {
    users.set(A, { principal: { role: 'device', deviceId: A }, secretHash: await hashDeviceSecret('second-secret-of-a') });
    const second = await device(A, 'second-secret-of-a');
    let closed = false;
    second.mqtt.on('close', () => (closed = true));

    users.set(A, { principal: { role: 'device', deviceId: A }, secretHash: await hashDeviceSecret('third-secret-of-a') });
    assert.equal(await broker.disconnect(A), true);
    await eventually('the session on the old secret closed', () => closed);
    await assert.rejects(raw(url, { clientId: A, username: A, password: 'second-secret-of-a' }), (e) => (e as { code?: unknown }).code === 5);
    const from = handler.calls.length;
    const third = await device(A, 'third-secret-of-a');
    await third.publishState(sampleState({ firmwareVersion: '3.0.0' }));
    await handler.waitFor((calls) => states(calls.slice(from), A).includes('3.0.0'));
  });

  test('a login whose credential lookup was under way when the credential changed is refused', async () => {
    let entered = () => {};
    const lookupEntered = new Promise<void>((resolve) => (entered = resolve));
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    duringLookup = async () => {
      entered();
      await gate;
    };
    const refused = assert.rejects(raw(url, { clientId: B, username: B, password: secrets.get(B)! }), (e) => (e as { code?: unknown }).code === 5);
    // The lookup has read B's (still valid) credential and waits; now the hub revokes it.
    await lookupEntered;
    users.delete(B);
    await broker.disconnect(B);
    duringLookup = null;
    release();
    await refused;
    assert.ok(logger.lines.some((l) => l.message === 'Refused a login.' && l.detail?.reason === 'its credential changed while the login was checked'));
  });

  test('disconnect of a client id that is not connected is false', async () => {
    assert.equal(await broker.disconnect('nobody-here'), false);
  });
});
