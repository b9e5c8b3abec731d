import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { isFirmwardError } from '@firmward/core';
import { ManualClock, clip } from '@firmward/ports';
import { MAX_PAYLOAD_BYTES, deviceTopics, encode } from '@firmward/protocol';
import type { Command, DeviceEvent, OfferCommand } from '@firmward/protocol';
import { connectDevice } from '../src/device-client.ts';
import type { DeviceConnection } from '../src/device-client.ts';
import { MqttDeviceGateway } from '../src/gateway.ts';
import { RecordingHandler, ackEvent, recordingLogger, sampleState, startTestBroker } from './helpers.ts';
import type { HandlerCall, TestBroker } from './helpers.ts';

const A = 'plug-a';
const B = 'plug-b';

function offer(jobId: string): OfferCommand {
  return {
    v: 1, type: 'offer', jobId, releaseId: 'acme/plug-s/1.3.0', vendor: 'acme', model: 'plug-s', hardwareRevisions: ['r2'],
    version: '1.3.0', applicableFrom: '1.0.0', applicableTo: null,
    image: { url: 'http://127.0.0.1:8080/images/plug-s-1.3.0.bin', lengthBytes: 1024, sha256: 'a'.repeat(64) },
    expectedInstallSeconds: 120,
  };
}

function brief(call: HandlerCall): string {
  switch (call.kind) {
    case 'state': return `state ${call.deviceId} ${call.state.firmwareVersion}`;
    case 'availability': return `availability ${call.deviceId} ${call.online}`;
    case 'event': return `event ${call.deviceId} ${call.event.type} ${call.event.jobId}`;
    case 'rejected': return `rejected ${call.deviceId} ${call.topic}`;
  }
}

/** Collects what a device receives; resolves waits once `count` commands arrived. */
function commandsOf(device: DeviceConnection): { commands: Command[]; rejections: string[]; until(count: number): Promise<void> } {
  const commands: Command[] = [];
  const rejections: string[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) if (commands.length + rejections.length >= w.count) w.resolve(); else waiters.push(w);
  };
  device.onCommand((command) => { commands.push(command); wake(); });
  device.onRejected((r) => { rejections.push(r.error); wake(); });
  return {
    commands, rejections,
    until: (count) => new Promise((resolve) => { waiters.push({ count, resolve }); wake(); }),
  };
}

describe('MqttDeviceGateway with the embedded broker', { timeout: 20_000 }, () => {
  let env: TestBroker;
  let gateway: MqttDeviceGateway;
  let handler: RecordingHandler;
  const clock = new ManualClock(1_000);
  const gatewayLog = recordingLogger();
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    env = await startTestBroker([A, B]);
    handler = new RecordingHandler();
    gateway = new MqttDeviceGateway({ url: env.url, ...env.hub, clock, logger: gatewayLog, reconnectPeriodMs: 50 });
    await gateway.start(handler);
  });
  afterEach(async () => {
    // One session per client id: a device left connected would be thrown off (and its will fire) by the next test's.
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  after(async () => {
    await gateway.stop();
    await env.stop();
  });

  async function device(deviceId: string): Promise<DeviceConnection> {
    const d = await connectDevice({ url: env.url, deviceId, password: env.devices.get(deviceId)!, clock });
    cleanups.push(() => d.mqtt.endAsync(true));
    return d;
  }
  async function rawDevice(deviceId: string): Promise<MqttClient> {
    const c = await connectAsync(env.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: deviceId, username: deviceId, password: env.devices.get(deviceId)! });
    cleanups.push(() => c.endAsync(true));
    return c;
  }

  test('state and events are parsed and delivered in order, stamped by the clock', async () => {
    handler.calls.length = 0;
    const a = await device(A);
    await handler.waitFor((calls) => calls.length >= 1);
    await a.publishState(sampleState({ firmwareVersion: '1.2.0', job: { jobId: 'job-1', phase: 'downloading' } }));
    const events: DeviceEvent[] = [
      ackEvent('job-1'),
      { v: 1, type: 'progress', jobId: 'job-1', phase: 'downloading', percent: 40 },
      { v: 1, type: 'progress', jobId: 'job-1', phase: 'downloaded', percent: 100 },
      { v: 1, type: 'result', jobId: 'job-1', outcome: 'installed', firmwareVersion: '1.3.0', healthy: true, code: null, message: null },
    ];
    for (const event of events) await a.publishEvent(event);
    await handler.waitFor((calls) => calls.length >= 6);
    assert.deepEqual(handler.calls.map(brief), [
      `availability ${A} true`, `state ${A} 1.2.0`, `event ${A} ack job-1`, `event ${A} progress job-1`, `event ${A} progress job-1`, `event ${A} result job-1`,
    ]);
    const delivered = handler.calls.flatMap((c) => (c.kind === 'event' ? [c.event] : []));
    assert.deepEqual(delivered, events);
    assert.ok(handler.calls.every((c) => c.at === 1_000));

    await clock.advance(60_000);
    await a.publishState(sampleState({ firmwareVersion: '1.3.0' }));
    await handler.waitFor((calls) => calls.length >= 7);
    assert.equal(handler.calls[6]!.at, 61_000);
  });

  test('every kind of bad input is rejected with its device and topic, and no handler sees it', async () => {
    handler.calls.length = 0;
    const a = await rawDevice(A);
    const t = deviceTopics(A);
    const bad: [string, string | Buffer, string][] = [
      [t.state, 'not json {', 'not valid JSON'],
      [t.event, encode(sampleState()), 'event: type'],
      [t.state, JSON.stringify({ ...sampleState(), sneaky: true }), 'state: payload'],
      [t.availability, JSON.stringify({ v: 2, online: true }), 'availability: v'],
      [t.event, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'not valid JSON'],
      [t.state, '', 'not valid JSON'],
      [t.event, JSON.stringify({ ...ackEvent('job-1'), accepted: 'yes' }), 'event: accepted'],
    ];
    for (const [topic, payload] of bad) await a.publishAsync(topic, payload, { qos: 1 });
    await a.publishAsync(t.event, encode(ackEvent('sentinel')), { qos: 1 });
    await handler.waitFor((calls) => calls.some((c) => c.kind === 'event'));
    // The previous test's device A going offline may still be on its way; it is not part of this test.
    const calls = handler.calls.filter((c) => c.kind !== 'availability');
    assert.deepEqual(calls.map(brief), [...bad.map(([topic]) => `rejected ${A} ${topic}`), `event ${A} ack sentinel`]);
    calls.slice(0, bad.length).forEach((call, i) => {
      assert.ok(call.kind === 'rejected' && call.error.includes(bad[i]![2]), `${i}: ${call.kind === 'rejected' ? call.error : call.kind}`);
    });
    // Said once, by the handler (the engine logs every gateway's refusals, throttled), not here as well.
    assert.equal(gatewayLog.lines.filter((l) => /reject/i.test(l.message)).length, 0);
  });

  test('a handler that throws is logged and later messages still arrive', async () => {
    handler.calls.length = 0;
    const a = await rawDevice(A);
    handler.before = (call) => (call.kind === 'event' && call.event.jobId === 'boom' ? Promise.reject(new Error('handler bug')) : Promise.resolve());
    try {
      await a.publishAsync(deviceTopics(A).event, encode(ackEvent('boom')), { qos: 1 });
      await a.publishAsync(deviceTopics(A).event, encode(ackEvent('after-boom')), { qos: 1 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event' && c.event.jobId === 'after-boom'));
    } finally {
      handler.before = null;
    }
    assert.deepEqual(handler.calls.map(brief), [`event ${A} ack after-boom`]);
    assert.ok(gatewayLog.lines.some((l) => l.level === 'error' && l.detail?.error === 'Error: handler bug'));
  });

  test('send() reaches only the addressed device, at QoS 1 and not retained', async () => {
    const a = await device(A);
    const b = await device(B);
    const atA = commandsOf(a);
    const atB = commandsOf(b);
    const seen: { topic: string; qos: number; retain: boolean }[] = [];
    a.mqtt.on('message', (topic, _payload, packet) => seen.push({ topic, qos: packet.qos, retain: packet.retain }));
    await gateway.send(A, offer('job-a'));
    await gateway.send(B, { v: 1, type: 'cancel', jobId: 'job-b', message: 'A person cancelled it.' });
    await gateway.send(A, { v: 1, type: 'install', jobId: 'job-a' });
    await atA.until(2);
    await atB.until(1);
    assert.deepEqual(atA.commands, [offer('job-a'), { v: 1, type: 'install', jobId: 'job-a' }]);
    assert.deepEqual(atB.commands, [{ v: 1, type: 'cancel', jobId: 'job-b', message: 'A person cancelled it.' }]);
    assert.deepEqual(seen, [
      { topic: deviceTopics(A).command, qos: 1, retain: false },
      { topic: deviceTopics(A).command, qos: 1, retain: false },
    ]);
  });

  test('send() refuses a malformed command or device id and publishes nothing', async () => {
    const a = await device(A);
    const atA = commandsOf(a);
    const malformed = [
      { ...offer('job-x'), extra: 1 },
      { ...offer('job-x'), v: 2 },
      { v: 1, type: 'reboot', jobId: 'job-x' },
      { v: 1, type: 'install' },
    ];
    for (const command of malformed) {
      await assert.rejects(gateway.send(A, command as unknown as OfferCommand), (e) => isFirmwardError(e, 'invalid_input'));
    }
    for (const id of ['#', 'a/b', '', 'x'.repeat(129), 'plug a']) {
      await assert.rejects(gateway.send(id, offer('job-x')), (e) => isFirmwardError(e, 'invalid_input'), JSON.stringify(id));
    }
    await gateway.send(A, { v: 1, type: 'install', jobId: 'valid' });
    await atA.until(1);
    assert.deepEqual(atA.commands, [{ v: 1, type: 'install', jobId: 'valid' }]);
    assert.deepEqual(atA.rejections, []);
  });

  test('stop() waits for the messages already received to be handled', async () => {
    const localEnv = await startTestBroker([A]);
    const localHandler = new RecordingHandler();
    const local = new MqttDeviceGateway({ url: localEnv.url, ...localEnv.hub, clock, logger: recordingLogger() });
    await local.start(localHandler);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let handled = false;
    localHandler.before = async (call) => {
      if (call.kind === 'state') {
        await gate;
        handled = true;
      }
    };
    const a = await connectAsync(localEnv.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: A, username: A, password: localEnv.devices.get(A)! });
    const entered = new Promise<void>((resolve) => {
      const before = localHandler.before!;
      localHandler.before = (call) => { resolve(); return before(call); };
    });
    await a.publishAsync(deviceTopics(A).state, encode(sampleState()), { qos: 1 });
    await entered;
    let stopped = false;
    const stopping = local.stop().then(() => { stopped = true; });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(stopped, false);
    release();
    await stopping;
    assert.equal(handled, true);
    await a.endAsync(true);
    await localEnv.stop();
  });
});

describe('MqttDeviceGateway start, reconnect and refusals', { timeout: 20_000 }, () => {
  test('start() refuses a wrong hub password with "unauthorized"', async () => {
    const env = await startTestBroker([]);
    try {
      const gateway = new MqttDeviceGateway({ url: env.url, username: 'hub', password: 'wrong', clock: new ManualClock(0), logger: recordingLogger() });
      await assert.rejects(gateway.start(new RecordingHandler()), (e) => isFirmwardError(e, 'unauthorized'));
      await assert.rejects(gateway.send(A, offer('job-1')), (e) => isFirmwardError(e, 'gateway_failure'));
    } finally {
      await env.stop();
    }
  });

  test('start() gives up on a broker that never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const gateway = new MqttDeviceGateway({ url: `mqtt://127.0.0.1:${port}`, username: 'hub', password: 'x', clock: new ManualClock(0), logger: recordingLogger(), startTimeoutMs: 200 });
    try {
      await assert.rejects(gateway.start(new RecordingHandler()), (e) => isFirmwardError(e, 'gateway_failure'));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('send() before start() is refused', async () => {
    const gateway = new MqttDeviceGateway({ url: 'mqtt://127.0.0.1:1', username: 'hub', password: 'x', clock: new ManualClock(0), logger: recordingLogger() });
    await assert.rejects(gateway.send(A, offer('job-1')), (e) => isFirmwardError(e, 'gateway_failure'));
  });

  test('reconnects by itself when the broker comes back, and hears devices again', async () => {
    let env = await startTestBroker([A]);
    const port = env.port;
    const handler = new RecordingHandler();
    const gateway = new MqttDeviceGateway({ url: env.url, ...env.hub, clock: new ManualClock(0), logger: recordingLogger(), reconnectPeriodMs: 50 });
    await gateway.start(handler);
    try {
      await env.stop();
      env = await startTestBroker([A], { port });
      assert.equal(env.port, port);
      const a = await connectDevice({ url: env.url, deviceId: A, password: env.devices.get(A)! });
      await a.publishState(sampleState({ firmwareVersion: '4.0.0' }));
      // Retained: the hub gets it on resubscribe even if it reconnects after the device published.
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'state' && c.state.firmwareVersion === '4.0.0'));
      await a.close();
    } finally {
      await gateway.stop();
      await env.stop();
    }
  });

  test('in a shared group, the embedded broker refuses the subscriptions and start() says why, instead of hearing nothing', async () => {
    const env = await startTestBroker([]);
    try {
      const gateway = new MqttDeviceGateway({ url: env.url, ...env.hub, clock: new ManualClock(0), logger: recordingLogger(), sharedGroup: 'firmward-hub' });
      await assert.rejects(gateway.start(new RecordingHandler()), (e) => isFirmwardError(e, 'forbidden')
        && /refused the hub's shared subscriptions \(\$share\/firmward-hub\/…\).*embedded broker does not.*mqtt\.sharedSubscriptions false/.test(e.message));
      assert.ok(env.logs.some((l) => l.message === 'Refused a subscription.' && /no shared subscriptions/.test(String(l.detail?.['reason']))), JSON.stringify(env.logs));
      await assert.rejects(gateway.send(A, offer('job-1')), (e) => isFirmwardError(e, 'gateway_failure'));
    } finally {
      await env.stop();
    }
  });

  test('a shared group name a broker cannot take is refused before connecting', async () => {
    for (const sharedGroup of ['', 'a/b', 'x+', '#']) {
      const gateway = new MqttDeviceGateway({ url: 'mqtt://127.0.0.1:1', username: 'hub', password: 'x', clock: new ManualClock(0), logger: recordingLogger(), sharedGroup });
      await assert.rejects(gateway.start(new RecordingHandler()), (e) => isFirmwardError(e, 'invalid_input') && e.message.includes(`"${sharedGroup}"`), sharedGroup);
    }
  });
});

describe('MqttDeviceGateway behind a broker that enforces nothing (an external broker without our ACLs)', { timeout: 20_000 }, () => {
  let aedes: Aedes;
  let server: Server;
  let url: string;

  before(async () => {
    aedes = await Aedes.createBroker();
    server = createServer(aedes.handle);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('oversized payloads and topics with an invalid device id are rejected; valid ones still arrive', async () => {
    const handler = new RecordingHandler();
    const gateway = new MqttDeviceGateway({ url, username: 'hub', password: 'x', clock: new ManualClock(7), logger: recordingLogger() });
    await gateway.start(handler);
    const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    try {
      const oversized = JSON.stringify({ ...ackEvent('big'), message: 'x'.repeat(MAX_PAYLOAD_BYTES) });
      const badId = 'firmward/v1/d/plug a/state';
      const longId = `firmward/v1/d/${'x'.repeat(129)}/evt`;
      await client.publishAsync(deviceTopics(A).event, oversized, { qos: 1 });
      await client.publishAsync(badId, encode(sampleState()), { qos: 1 });
      await client.publishAsync(longId, encode(ackEvent('job-1')), { qos: 1 });
      await client.publishAsync(deviceTopics(A).event, encode(ackEvent('sentinel')), { qos: 1 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event'));
      // Different device ids run on different queues, so compare without order.
      const got = handler.calls.map((c) => (c.kind === 'rejected' ? `rejected ${c.deviceId} ${c.topic} ${c.error.slice(0, 20)}` : brief(c)));
      await handler.waitFor((calls) => calls.length >= 4);
      assert.deepEqual(handler.calls.map((c) => (c.kind === 'rejected' ? `rejected ${c.deviceId} ${c.topic}` : brief(c))).sort(), [
        `event ${A} ack sentinel`,
        `rejected ${A} ${deviceTopics(A).event}`,
        `rejected null ${badId}`,
        // The handler gets the topic clipped as the log does (log-limits.ts): it is only for logs and history.
        `rejected null ${clip(longId)}`,
      ].sort(), got.join('\n'));
      const big = handler.calls.find((c) => c.kind === 'rejected' && c.deviceId === A);
      assert.ok(big?.kind === 'rejected' && /over the 16384-byte limit/.test(big.error) && big.at === 7);
    } finally {
      await client.endAsync(true);
      await gateway.stop();
    }
  });

  test('one device\'s messages are handled one at a time; other devices are not held up', async () => {
    const handler = new RecordingHandler();
    const gateway = new MqttDeviceGateway({ url, username: 'hub', password: 'x', clock: new ManualClock(0), logger: recordingLogger() });
    await gateway.start(handler);
    // One publisher for both devices (only possible without our ACLs): the hub receives its
    // messages in the order sent, so once B's event is handled, A's event has been received too.
    const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const entered: string[] = [];
    handler.before = async (call) => {
      entered.push(brief(call));
      if (call.kind === 'state' && call.deviceId === A) await gate;
    };
    try {
      await client.publishAsync(deviceTopics(A).state, encode(sampleState({ firmwareVersion: 'slow' })), { qos: 1 });
      await client.publishAsync(deviceTopics(A).event, encode(ackEvent('queued-behind-state')), { qos: 1 });
      await client.publishAsync(deviceTopics(B).event, encode(ackEvent('independent')), { qos: 1 });
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event' && c.deviceId === B));
      assert.deepEqual(entered, [`state ${A} slow`, `event ${B} ack independent`]);
      assert.equal(handler.calls.some((c) => c.kind !== 'rejected' && c.deviceId === A), false);
    } finally {
      release();
    }
    await handler.waitFor((calls) => calls.some((c) => c.kind === 'event' && c.deviceId === A));
    assert.deepEqual(handler.calls.map(brief), [`event ${B} ack independent`, `state ${A} slow`, `event ${A} ack queued-behind-state`]);
    await client.endAsync(true);
    await gateway.stop();
  });

  test('in a shared group, the retained copies come through a catch-up subscription that ends once they are in, and again after a reconnect', async () => {
    // Its own broker, restarted on the same port below. aedes knows no shared subscriptions: it
    // keeps "$share/…" as a plain filter that nothing matches, so what the gateway hears here came
    // through the catch-up.
    const first = await startBareBroker(0);
    const port = first.port;
    const device = await connectAsync(first.url, { protocolVersion: 4, reconnectPeriod: 0 });
    await device.publishAsync(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '1.0.0' })), { qos: 1, retain: true });
    await device.publishAsync(deviceTopics(A).availability, encode({ v: 1, online: true }), { qos: 1, retain: true });
    await device.endAsync();
    const handler = new RecordingHandler();
    const gateway = new MqttDeviceGateway({ url: first.url, username: 'hub', password: 'x', clock: new ManualClock(0), logger: recordingLogger(), sharedGroup: 'fw', reconnectPeriodMs: 50 });
    let second: BareBroker | null = null;
    try {
      await gateway.start(handler);
      // start() resolves once caught up: both retained copies are in, each once.
      await handler.waitFor((calls) => calls.length >= 2);
      assert.deepEqual(handler.calls.map(brief).sort(), [`availability ${A} true`, `state ${A} 1.0.0`]);
      const shared = ['state', 'availability', 'evt'].map((kind) => `$share/fw/firmward/v1/d/+/${kind}`);
      const catchUp = ['firmward/v1/d/+/state', 'firmward/v1/d/+/availability'];
      const conversation = [...shared.map((f) => `subscribe ${f} 1`), ...catchUp.map((f) => `subscribe ${f} 0`), ...catchUp.map((f) => `unsubscribe ${f}`)];
      assert.deepEqual(first.heard(), conversation);

      // The broker goes away and comes back with a newer retained state: the gateway subscribes
      // again by itself and catches up once more.
      await first.stop();
      second = await startBareBroker(port);
      const again = await connectAsync(second.url, { protocolVersion: 4, reconnectPeriod: 0 });
      await again.publishAsync(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '2.0.0' })), { qos: 1, retain: true });
      await again.endAsync();
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'state' && c.state.firmwareVersion === '2.0.0'));
      const bare = second;
      await waitUntil(() => bare.heard().length >= conversation.length);
      assert.deepEqual(bare.heard(), conversation);
    } finally {
      await gateway.stop();
      await second?.stop();
      await first.stop();
    }
  });
});

interface BareBroker {
  url: string;
  port: number;
  /** What the hub's client subscribed and unsubscribed, in order: "subscribe <filter> <qos>", "unsubscribe <filter>". */
  heard(): string[];
  stop(): Promise<void>;
}

/** An aedes without our rules that records the hub's subscriptions. */
async function startBareBroker(port: number): Promise<BareBroker> {
  const broker = await Aedes.createBroker();
  const heard: string[] = [];
  broker.on('subscribe', (subscriptions, client) => {
    if (client.id.startsWith('hub/')) for (const s of subscriptions) heard.push(`subscribe ${s.topic} ${s.qos}`);
  });
  broker.on('unsubscribe', (filters, client) => {
    if (client.id.startsWith('hub/')) for (const f of filters) heard.push(`unsubscribe ${f}`);
  });
  const server = createServer(broker.handle);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as { port: number }).port;
  let stopped = false;
  return {
    url: `mqtt://127.0.0.1:${actual}`, port: actual, heard: () => [...heard],
    async stop() {
      if (stopped) return;
      stopped = true;
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function waitUntil(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
}
