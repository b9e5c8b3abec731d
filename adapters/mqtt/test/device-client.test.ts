import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectAsync } from 'mqtt';
import { isFirmwardError } from '@firmward/core';
import { ManualClock } from '@firmward/ports';
import { deviceTopics, encode } from '@firmward/protocol';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import { connectDevice } from '../src/device-client.ts';
import type { CommandRejection, DeviceConnection } from '../src/device-client.ts';
import { MqttDeviceGateway } from '../src/gateway.ts';
import { RecordingHandler, ackEvent, recordingLogger, sampleState, startTestBroker } from './helpers.ts';
import type { TestBroker } from './helpers.ts';

const A = 'plug-a';

describe('connectDevice', { timeout: 20_000 }, () => {
  let env: TestBroker;
  let gateway: MqttDeviceGateway;
  const handler = new RecordingHandler();

  before(async () => {
    env = await startTestBroker([A]);
    gateway = new MqttDeviceGateway({ url: env.url, ...env.hub, clock: new ManualClock(0), logger: recordingLogger() });
    await gateway.start(handler);
  });
  after(async () => {
    await gateway.stop();
    await env.stop();
  });

  /** Closes and waits until the hub heard "offline", so the next test starts from a quiet hub. */
  async function closeAndWaitOffline(device: DeviceConnection): Promise<void> {
    const from = handler.calls.length;
    await device.close();
    await handler.waitFor((calls) => calls.slice(from).some((c) => c.kind === 'availability' && !c.online));
  }

  test('refuses a wrong secret with "unauthorized" and an invalid device id with "invalid_input"', async () => {
    await assert.rejects(connectDevice({ url: env.url, deviceId: A, password: 'wrong' }), (e) => isFirmwardError(e, 'unauthorized'));
    await assert.rejects(connectDevice({ url: env.url, deviceId: 'a/b', password: 'x' }), (e) => isFirmwardError(e, 'invalid_input'));
  });

  test('commands are parsed; malformed ones go to onRejected, stamped by the clock', async () => {
    const clock = new ManualClock(5_000);
    const device = await connectDevice({ url: env.url, deviceId: A, password: env.devices.get(A)!, clock });
    const commands: [Command, number][] = [];
    const rejections: CommandRejection[] = [];
    let done!: () => void;
    const last = new Promise<void>((resolve) => { done = resolve; });
    device.onCommand((command, at) => {
      commands.push([command, at]);
      if (command.jobId === 'last') done();
    });
    const stopListening = device.onRejected((r) => rejections.push(r));
    // A raw hub client, because the gateway itself never sends a malformed command.
    const hub = await connectAsync(env.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'hub/raw', ...env.hub });
    try {
      const cmd = deviceTopics(A).command;
      await hub.publishAsync(cmd, 'not json', { qos: 1 });
      await hub.publishAsync(cmd, JSON.stringify({ v: 1, type: 'install', jobId: 'j', extra: true }), { qos: 1 });
      await hub.publishAsync(cmd, JSON.stringify({ v: 1, type: 'self-destruct', jobId: 'j' }), { qos: 1 });
      await hub.publishAsync(cmd, Buffer.from([0xc3, 0x28]), { qos: 1 });
      await hub.publishAsync(cmd, encode({ v: 1, type: 'install', jobId: 'last' }), { qos: 1 });
      await last;
      assert.deepEqual(commands, [[{ v: 1, type: 'install', jobId: 'last' }, 5_000]]);
      assert.equal(rejections.length, 4);
      assert.ok(rejections.every((r) => r.topic === cmd && r.at === 5_000 && r.error.length > 0));
      stopListening();
    } finally {
      await hub.endAsync();
      await closeAndWaitOffline(device);
    }
  });

  test('publishState and publishEvent check the schema before sending', async () => {
    const device = await connectDevice({ url: env.url, deviceId: A, password: env.devices.get(A)! });
    try {
      await assert.rejects(device.publishState({ ...sampleState(), batteryPercent: 140 }), (e) => isFirmwardError(e, 'invalid_input'));
      await assert.rejects(device.publishState({ ...sampleState(), extra: 1 } as DeviceState), (e) => isFirmwardError(e, 'invalid_input'));
      await assert.rejects(device.publishEvent({ ...ackEvent('j'), v: 2 } as unknown as DeviceEvent), (e) => isFirmwardError(e, 'invalid_input'));
      handler.calls.length = 0;
      await device.publishEvent(ackEvent('checked'));
      await handler.waitFor((calls) => calls.some((c) => c.kind === 'event'));
      assert.deepEqual(handler.calls.filter((c) => c.kind !== 'availability').map((c) => c.kind), ['event']);
    } finally {
      await closeAndWaitOffline(device);
    }
  });

  test('after a dropped connection the will says offline, and the reconnect says online again', async () => {
    const from = handler.calls.length;
    const device = await connectDevice({ url: env.url, deviceId: A, password: env.devices.get(A)!, reconnectPeriodMs: 100 });
    await handler.waitFor((calls) => calls.slice(from).some((c) => c.kind === 'availability' && c.online));
    handler.calls.length = 0;
    try {
      device.mqtt.stream.destroy();
      await handler.waitFor((calls) => calls.filter((c) => c.kind === 'availability').length >= 2);
      assert.deepEqual(handler.calls.flatMap((c) => (c.kind === 'availability' ? [c.online] : [])), [false, true]);
      // Still listening to its commands after the reconnect.
      const got = new Promise<Command>((resolve) => device.onCommand(resolve));
      await gateway.send(A, { v: 1, type: 'install', jobId: 'after-reconnect' });
      assert.deepEqual(await got, { v: 1, type: 'install', jobId: 'after-reconnect' });
    } finally {
      await device.close();
    }
  });
});
