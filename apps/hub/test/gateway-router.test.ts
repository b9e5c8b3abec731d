/**
 * GatewayRouter with a bridge whose ecosystem is down: start() does not wait for it, commands to
 * its devices are refused (never sent to another gateway) until it runs, it comes up by itself
 * on the next attempt, and stop() leaves nothing waiting.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { Bridge, BridgeHandler, DeviceGateway, GatewayHandler } from '@firmward/ports';
import type { CancelCommand, InstallCommand, OfferCommand } from '@firmward/protocol';
import { SqliteStore } from '@firmward/store-sqlite';
import { GatewayRouter } from '../src/gateway-router.ts';

type Command = OfferCommand | InstallCommand | CancelCommand;

class RecordingGateway implements DeviceGateway {
  readonly name = 'mqtt';
  readonly sent: string[] = [];
  start(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  send(deviceId: string, command: Command): Promise<void> {
    this.sent.push(`${deviceId} ${command.type}`);
    return Promise.resolve();
  }
}

/** A Tasmota-like bridge whose broker is down while `down` is true. */
class FlakyBridge implements Bridge {
  readonly name = 'tasmota';
  readonly sent: string[] = [];
  down = true;
  starts = 0;
  start(_handler: BridgeHandler): Promise<void> {
    this.starts++;
    return this.down ? Promise.reject(new FirmwardError('gateway_failure', 'The Tasmota bridge could not reach its MQTT broker at mqtt://127.0.0.1:1883: connection refused.')) : Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  send(deviceId: string, command: Command): Promise<void> {
    this.sent.push(`${deviceId} ${command.type}`);
    return Promise.resolve();
  }
  owns(deviceId: string): boolean {
    return deviceId.startsWith('tasmota-');
  }
  releases() {
    return [];
  }
}

const handler: GatewayHandler = {
  onState: () => Promise.resolve(), onAvailability: () => Promise.resolve(), onEvent: () => Promise.resolve(), onRejected: () => undefined,
};
const install: InstallCommand = { v: 1, type: 'install', jobId: 'job-1' };

test('a bridge whose broker is down: the router starts, refuses its devices\' commands, and routes them once it runs', async () => {
  const store = await SqliteStore.open(':memory:');
  const clock = new ManualClock(1_700_000_000_000);
  const fallback = new RecordingGateway();
  const bridge = new FlakyBridge();
  const router = new GatewayRouter({ fallback, bridges: [{ bridge, homeId: 'flat' }], store, log: silentLogger, clock });
  try {
    await router.start(handler);
    await clock.advance(0);
    assert.equal(router.statusOf('tasmota').state, 'retrying');
    assert.equal(router.statusOf('shelly').state, 'off', 'a bridge that is not turned on');
    assert.match(router.name, /tasmota/, 'still turned on');

    await assert.rejects(router.send('tasmota-kitchen', install), (error: unknown) => isFirmwardError(error, 'gateway_failure')
      && /^The tasmota bridge is not running yet, so Firmward cannot reach this device\. The tasmota bridge did not start: .*connection refused; Firmward tries again in 1 s\.$/.test(error.message));
    await router.send('agent-1', install);
    assert.deepEqual([fallback.sent, bridge.sent], [['agent-1 install'], []], 'never sent to another gateway');

    bridge.down = false;
    await clock.advance(1_000);
    assert.equal(router.statusOf('tasmota').state, 'running');
    await router.send('tasmota-kitchen', install);
    assert.deepEqual(bridge.sent, ['tasmota-kitchen install']);
  } finally {
    await router.stop();
    await store.close();
  }
  assert.equal(clock.pending, 0);
});

test('stop() while a bridge waits to try again ends the wait', async () => {
  const store = await SqliteStore.open(':memory:');
  const clock = new ManualClock(1_700_000_000_000);
  const bridge = new FlakyBridge();
  const router = new GatewayRouter({ fallback: new RecordingGateway(), bridges: [{ bridge, homeId: 'flat' }], store, log: silentLogger, clock });
  await router.start(handler);
  await clock.advance(0);
  assert.equal(clock.pending, 1);
  await router.stop();
  await store.close();
  assert.deepEqual([clock.pending, router.statusOf('tasmota').state, bridge.starts], [0, 'off', 1]);
});
