import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { connectAsync } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { isFirmwardError } from '@firmward/core';
import { ManualClock } from '@firmward/ports';
import { MAX_PAYLOAD_BYTES, deviceTopics, encode } from '@firmward/protocol';
import { EmbeddedBroker } from '../src/broker.ts';
import { connectDevice } from '../src/device-client.ts';
import { MqttDeviceGateway } from '../src/gateway.ts';
import { RecordingHandler, ackEvent, recordingLogger, sampleState, startTestBroker } from './helpers.ts';
import type { TestBroker } from './helpers.ts';

const A = 'plug-a';
const B = 'plug-b';

/** A raw client that never reconnects, so a refusal stays a refusal. */
function raw(url: string, options: IClientOptions): Promise<MqttClient> {
  return connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
}

function refusedCode(error: unknown): unknown {
  return (error as { code?: unknown }).code;
}

/** SUBACK return code 0x80: the broker refused the subscription. */
function subscriptionRefused(error: unknown): boolean {
  const granted = (error as { packet?: { granted?: unknown } }).packet?.granted;
  return Array.isArray(granted) && granted.length === 1 && granted[0] === 128;
}

describe('EmbeddedBroker', { timeout: 20_000 }, () => {
  let env: TestBroker;
  let hub: MqttDeviceGateway;
  const handler = new RecordingHandler();
  const clients: MqttClient[] = [];

  before(async () => {
    env = await startTestBroker([A, B]);
    hub = new MqttDeviceGateway({ url: env.url, ...env.hub, clock: new ManualClock(1000), logger: recordingLogger() });
    await hub.start(handler);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await hub.stop();
    await env.stop();
  });

  async function device(deviceId: string, extra: IClientOptions = {}): Promise<MqttClient> {
    const client = await raw(env.url, { clientId: deviceId, username: deviceId, password: env.devices.get(deviceId)!, ...extra });
    clients.push(client);
    return client;
  }

  describe('logins', () => {
    test('refuses a wrong password with "not authorized"', async () => {
      await assert.rejects(raw(env.url, { clientId: A, username: A, password: 'not-the-secret' }), (e) => refusedCode(e) === 5);
      assert.ok(env.logs.some((l) => l.level === 'warn' && l.message === 'Refused a login.' && l.detail?.username === A));
    });

    test('refuses an unknown user', async () => {
      await assert.rejects(raw(env.url, { clientId: 'ghost', username: 'ghost', password: 'whatever' }), (e) => refusedCode(e) === 5);
    });

    test('refuses a login without user name or password', async () => {
      await assert.rejects(raw(env.url, { clientId: A }), (e) => refusedCode(e) === 5);
    });

    test('refuses a device that uses another client id than its own (it could throw that device off)', async () => {
      await assert.rejects(raw(env.url, { clientId: B, username: A, password: env.devices.get(A)! }), (e) => refusedCode(e) === 5);
    });

    test('refuses a hub client id without the hub prefix', async () => {
      await assert.rejects(raw(env.url, { clientId: 'hub-without-slash', ...env.hub }), (e) => refusedCode(e) === 5);
    });

    test('accepts the right secret', async () => {
      const client = await device(A);
      assert.equal(client.connected, true);
      await client.endAsync();
    });

    test('refuses a last will on another device\'s availability topic', async () => {
      const will = { topic: deviceTopics(B).availability, payload: Buffer.from(encode({ v: 1, online: false })), qos: 1 as const, retain: true };
      await assert.rejects(device(A, { will }), (e) => refusedCode(e) === 5);
    });

    test('refuses a last will that is not "offline" on the own availability topic', async () => {
      const topic = deviceTopics(A).availability;
      await assert.rejects(device(A, { will: { topic, payload: Buffer.from(encode({ v: 1, online: true })), qos: 1, retain: true } }), (e) => refusedCode(e) === 5);
      await assert.rejects(device(A, { will: { topic, payload: Buffer.from('gone'), qos: 1, retain: true } }), (e) => refusedCode(e) === 5);
      await assert.rejects(device(A, { will: { topic: deviceTopics(A).state, payload: Buffer.from(encode({ v: 1, online: false })), qos: 1, retain: true } }), (e) => refusedCode(e) === 5);
    });

    test('refuses any last will from the hub', async () => {
      const will = { topic: deviceTopics(A).command, payload: Buffer.from('{}'), qos: 1 as const, retain: false };
      await assert.rejects(raw(env.url, { clientId: 'hub/with-will', ...env.hub, will }), (e) => refusedCode(e) === 5);
    });
  });

  describe('topic ACLs', () => {
    test('device A cannot publish to B\'s state or events; the hub gets only A\'s own messages, and A stays connected', async () => {
      handler.calls.length = 0;
      const a = await device(A);
      await a.publishAsync(deviceTopics(B).state, encode(sampleState({ firmwareVersion: '6.6.6' })), { qos: 1, retain: true });
      await a.publishAsync(deviceTopics(B).event, encode(ackEvent('forged')), { qos: 1 });
      await a.publishAsync(deviceTopics(B).availability, encode({ v: 1, online: false }), { qos: 1, retain: true });
      await a.publishAsync(deviceTopics(A).command, encode({ v: 1, type: 'install', jobId: 'self-made' }), { qos: 1 });
      // Sent after the refused ones on the same connection: once it arrives, they would have too.
      await a.publishAsync(deviceTopics(A).event, encode(ackEvent('sentinel')), { qos: 1 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event' && c.event.jobId === 'sentinel'));
      assert.deepEqual(handler.calls.map((c) => [c.kind, 'deviceId' in c ? c.deviceId : null]), [['event', A]]);
      assert.equal(a.connected, true, 'a refused publish is dropped, not answered by closing the connection');
      const refusals = env.logs.filter((l) => l.message === 'Refused a publish; it was dropped.' && l.detail?.clientId === A);
      assert.deepEqual(refusals.map((l) => l.detail?.topic), [deviceTopics(B).state, deviceTopics(B).event, deviceTopics(B).availability, deviceTopics(A).command]);
    });

    test('a refused retained publish leaves nothing retained for later subscribers', async () => {
      const late = await raw(env.url, { clientId: 'hub/late', ...env.hub });
      clients.push(late);
      const seen: string[] = [];
      late.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
      await late.subscribeAsync([deviceTopics(B).state], { qos: 1 });
      const b = await device(B);
      const arrived = new Promise<void>((resolve) => late.once('message', () => resolve()));
      await b.publishAsync(deviceTopics(B).state, encode(sampleState({ firmwareVersion: '1.0.0' })), { qos: 1, retain: true });
      await arrived;
      assert.equal(seen.length, 1);
      assert.match(seen[0]!, /"firmwareVersion":"1\.0\.0"/);
    });

    test('device A cannot subscribe to B\'s commands, to "#" or to its own events; it can subscribe to its own commands', async () => {
      const a = await device(A);
      for (const filter of [deviceTopics(B).command, '#', 'firmward/v1/d/+/cmd', deviceTopics(A).event, deviceTopics(B).state]) {
        await assert.rejects(a.subscribeAsync(filter, { qos: 1 }), subscriptionRefused, filter);
      }
      const granted = await a.subscribeAsync(deviceTopics(A).command, { qos: 1 });
      assert.deepEqual(granted.map((g) => g.qos), [1]);
      assert.ok(env.logs.some((l) => l.message === 'Refused a subscription.' && l.detail?.topic === '#'));
    });

    test('the hub can subscribe to device topics but not to commands, "#" or a shared subscription (aedes has none), and cannot publish state', async () => {
      const h = await raw(env.url, { clientId: 'hub/probe', ...env.hub });
      clients.push(h);
      await assert.rejects(h.subscribeAsync('#', { qos: 1 }), subscriptionRefused);
      await assert.rejects(h.subscribeAsync('firmward/v1/d/+/cmd', { qos: 1 }), subscriptionRefused);
      await assert.rejects(h.subscribeAsync('$SYS/#', { qos: 1 }), subscriptionRefused);
      // aedes has no shared subscriptions: granted, this would be a filter that never matches.
      await assert.rejects(h.subscribeAsync('$share/firmward-hub/firmward/v1/d/+/state', { qos: 1 }), subscriptionRefused);
      assert.ok(env.logs.some((l) => l.message === 'Refused a subscription.' && l.detail?.reason === 'this broker has no shared subscriptions ($share/…)'));
      const granted = await h.subscribeAsync(['firmward/v1/d/+/state', deviceTopics(A).event], { qos: 1 });
      assert.deepEqual(granted.map((g) => g.qos), [1, 1]);

      handler.calls.length = 0;
      await h.publishAsync(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '9.9.9' })), { qos: 1 });
      const a = await device(A);
      await a.publishAsync(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '2.0.0' })), { qos: 1, retain: true });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'state'));
      const states = handler.calls.flatMap((c) => (c.kind === 'state' ? [c.state.firmwareVersion] : []));
      assert.deepEqual(states, ['2.0.0']);
    });

    test('a retained command from the hub is dropped; a plain one reaches the device', async () => {
      const a = await device(A);
      await a.subscribeAsync(deviceTopics(A).command, { qos: 1 });
      const got: string[] = [];
      a.on('message', (_topic, payload) => got.push(payload.toString()));
      const h = await raw(env.url, { clientId: 'hub/retainer', ...env.hub });
      clients.push(h);
      const arrived = new Promise<void>((resolve) => a.once('message', () => resolve()));
      await h.publishAsync(deviceTopics(A).command, encode({ v: 1, type: 'install', jobId: 'retained' }), { qos: 1, retain: true });
      await h.publishAsync(deviceTopics(A).command, encode({ v: 1, type: 'install', jobId: 'plain' }), { qos: 1 });
      await arrived;
      assert.deepEqual(got.map((p) => (JSON.parse(p) as { jobId: string }).jobId), ['plain']);
    });
  });

  describe('sizes', () => {
    test('a payload over MAX_PAYLOAD_BYTES is dropped at the broker and the device stays connected', async () => {
      handler.calls.length = 0;
      const a = await device(A);
      const big = JSON.stringify({ ...ackEvent('big'), message: 'x'.repeat(MAX_PAYLOAD_BYTES) });
      await a.publishAsync(deviceTopics(A).event, big, { qos: 1 });
      await a.publishAsync(deviceTopics(A).event, encode(ackEvent('after-big')), { qos: 1 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event' && c.event.jobId === 'after-big'));
      assert.deepEqual(handler.calls.map((c) => c.kind), ['event']);
      assert.ok(env.logs.some((l) => l.message === 'Refused a publish; it was dropped.' && /over the 16384-byte limit/.test(String(l.detail?.reason))));
    });

    test('a packet far over the limit closes the connection before it is buffered', async () => {
      handler.calls.length = 0;
      const a = await device(A);
      const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
      a.publish(deviceTopics(A).event, Buffer.alloc(10 * MAX_PAYLOAD_BYTES, 0x20), { qos: 0 });
      await closed;
      assert.ok(env.logs.some((l) => l.level === 'warn' && /larger than the hub accepts/.test(l.message)));
      assert.equal(handler.calls.length, 0);
    });
  });

  describe('last will', () => {
    test('when a device\'s socket is destroyed the hub hears onAvailability(false)', async () => {
      handler.calls.length = 0;
      const dev = await connectDevice({ url: env.url, deviceId: B, password: env.devices.get(B)!, reconnectPeriodMs: 60_000 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'availability' && c.deviceId === B && c.online));
      dev.mqtt.stream.destroy();
      await dev.mqtt.endAsync(true);
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'availability' && c.deviceId === B && !c.online));
      const availability = handler.calls.flatMap((c) => (c.kind === 'availability' && c.deviceId === B ? [c.online] : []));
      assert.deepEqual(availability, [true, false]);
    });

    test('a clean close says offline too, without the will', async () => {
      handler.calls.length = 0;
      const dev = await connectDevice({ url: env.url, deviceId: B, password: env.devices.get(B)! });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'availability' && c.deviceId === B && c.online));
      await dev.close();
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'availability' && c.deviceId === B && !c.online));
    });
  });
});

describe('EmbeddedBroker start and stop', { timeout: 20_000 }, () => {
  test('falls back to a free port when the wanted one is taken, and says so', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as { port: number }).port;
    let env: TestBroker | null = null;
    try {
      env = await startTestBroker([A], { port: taken });
      assert.notEqual(env.port, taken);
      assert.ok(env.port > 0);
      assert.deepEqual(env.broker.address, { host: '127.0.0.1', port: env.port });
      assert.ok(env.logs.some((l) => l.level === 'warn' && l.message.includes(`Port ${taken} is taken`)));
      const client = await raw(env.url, { clientId: A, username: A, password: env.devices.get(A)! });
      assert.equal(client.connected, true);
      await client.endAsync();
    } finally {
      await env?.stop();
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  });

  test('a second start is refused; stop is safe twice; a stopped broker accepts no connection', async () => {
    const env = await startTestBroker([A]);
    await assert.rejects(env.broker.start(), (e) => isFirmwardError(e, 'conflict'));
    await env.stop();
    await env.stop();
    assert.equal(env.broker.address, null);
    await assert.rejects(raw(env.url, { clientId: A, username: A, password: env.devices.get(A)! }));
  });

  test('other listen errors are reported, not hidden by the fallback', async () => {
    const broker = new EmbeddedBroker({ host: '203.0.113.1', port: 0, credentials: { authenticate: () => Promise.resolve(null) }, logger: recordingLogger() });
    await assert.rejects(broker.start(), (e) => isFirmwardError(e, 'gateway_failure'));
  });
});
