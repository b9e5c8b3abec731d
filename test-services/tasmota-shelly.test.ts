/**
 * The Tasmota and Shelly bridges over a real Mosquitto 2, the broker most homes run for these
 * devices: discovery, telemetry and one full update each, confirmed by the new version after the
 * restart, with the devices' last wills published by Mosquitto itself. The broker runs with a temp
 * config (one loopback listener, anonymous, no persistence): startPlainMosquitto of
 * @firmward/bridge-common/testing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainMosquitto } from '@firmward/bridge-common/testing/plain-mosquitto.ts';
import type { PlainMosquitto } from '@firmward/bridge-common/testing/plain-mosquitto.ts';
import { RecordingHub } from '@firmward/bridge-common/testing/recording-hub.ts';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { ResultEvent } from '@firmward/protocol';
import { ShellyBridge } from '@firmward/shelly';
import { TasmotaBridge } from '@firmward/tasmota';
import { FakeShelly } from '../adapters/shelly/test/shelly-device.ts';
import { FakeTasmota } from '../adapters/tasmota/test/tasmota-device.ts';

function isResult(event: { type: string }): event is ResultEvent {
  return event.type === 'result';
}

describe('Tasmota and Shelly bridges with Mosquitto', { timeout: 60_000 }, () => {
  let broker: PlainMosquitto;
  const clock = new ManualClock(1_000);

  before(async () => {
    broker = await startPlainMosquitto();
  });

  after(async () => {
    await broker.stop();
  });

  test('Tasmota: discovery, telemetry and an update confirmed by the new version after the restart', async () => {
    const hub = new RecordingHub();
    const bridge = new TasmotaBridge({ url: broker.url, clock, logger: silentLogger });
    const device = new FakeTasmota({
      url: broker.url, topic: 'hall_plug', mac: '0A1B2C3D4E5F', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX',
      deviceName: 'Hall plug', discovery: true, wifi: { RSSI: 70, Signal: -65 },
    });
    const id = 'tasmota-hall_plug';
    try {
      await bridge.start(hub);
      await device.powerOn();
      const found = await hub.next('discovered', (c) => c.device.id === id);
      assert.equal(found.device.firmwareVersion, '14.2.0');
      await hub.next('state', (c) => c.deviceId === id && c.state.signalDbm === -65);

      const url = 'http://127.0.0.1:8080/firmware/tasmota%2Ftasmota%2F14.3.0';
      await bridge.send(id, {
        v: 1, type: 'offer', jobId: 'svc-t1', releaseId: 'tasmota/tasmota/14.3.0', vendor: 'tasmota', model: 'tasmota', hardwareRevisions: ['ESP8266EX'],
        version: '14.3.0', applicableFrom: null, applicableTo: null, image: { url, lengthBytes: 655_360, sha256: 'a'.repeat(64) }, expectedInstallSeconds: 120,
      });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
      await bridge.send(id, { v: 1, type: 'install', jobId: 'svc-t1' });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing');
      assert.ok(device.commands.indexOf(`OtaUrl ${url}`) < device.commands.indexOf('Upgrade 1'));
      await device.publishUpgradeResult('Successful. Restarting');
      await device.powerOff();
      // Mosquitto publishes the device's will.
      await hub.next('availability', (c) => c.deviceId === id && !c.online);
      await device.powerOn('14.3.0(release-tasmota)');
      const result = (await hub.next('event', (c) => isResult(c.event))).event;
      assert.ok(isResult(result));
      assert.equal(result.outcome, 'installed');
      assert.equal(result.firmwareVersion, '14.3.0');
    } finally {
      await device.powerOff();
      await bridge.stop();
    }
  });

  test('Shelly: discovery, stable-channel release and an update confirmed by the new version after the restart', async () => {
    const hub = new RecordingHub();
    const shellyId = 'shellyplus1pm-a8032ab12345';
    const id = `shelly-${shellyId}`;
    const bridge = new ShellyBridge({ url: broker.url, clock, logger: silentLogger, devices: [shellyId] });
    const device = new FakeShelly({ url: broker.url, id: shellyId, model: 'SNSW-001P16EU', gen: 2, ver: '1.4.4', name: 'Boiler', rssi: -58, stable: '1.5.0' });
    try {
      await device.powerOn();
      await bridge.start(hub);
      const found = await hub.next('discovered', (c) => c.device.id === id);
      assert.equal(found.device.firmwareVersion, '1.4.4');
      await hub.next('state', (c) => c.deviceId === id && c.state.signalDbm === -58);
      await device.waitForRequest('Shelly.GetStatus');
      await hub.waitFor(() => bridge.releases().length === 1);
      const [release] = bridge.releases();
      assert.equal(release!.version, '1.5.0');
      assert.equal(release!.origin?.ecosystem, 'shelly-stable');

      await bridge.send(id, {
        v: 1, type: 'offer', jobId: 'svc-s1', releaseId: release!.id, vendor: 'shelly', model: 'SNSW-001P16EU', hardwareRevisions: release!.hardwareRevisions,
        version: '1.5.0', applicableFrom: null, applicableTo: null,
        image: { url: 'http://127.0.0.1:8080/firmware/x', lengthBytes: 1, sha256: '0'.repeat(64) }, expectedInstallSeconds: 300,
      });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
      await bridge.send(id, { v: 1, type: 'install', jobId: 'svc-s1' });
      await device.waitForRequest('Shelly.Update');
      assert.deepEqual(device.requests.find((r) => r.method === 'Shelly.Update')!.params, { stage: 'stable' });
      await device.notifyEvent({ event: 'ota_progress', progress_percent: 80 });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 80);
      await device.notifyEvent({ event: 'ota_success' });
      await device.powerOff();
      await hub.next('availability', (c) => c.deviceId === id && !c.online);
      device.stable = null;
      await device.powerOn('1.5.0');
      const result = (await hub.next('event', (c) => isResult(c.event))).event;
      assert.ok(isResult(result));
      assert.equal(result.outcome, 'installed');
      assert.equal(result.firmwareVersion, '1.5.0');
    } finally {
      await device.powerOff();
      await bridge.stop();
    }
  });
});
