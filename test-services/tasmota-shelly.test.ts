/**
 * The Tasmota and Shelly bridges over a real Mosquitto 2, the broker most homes run for these
 * devices: discovery, telemetry and one full update each, confirmed by the new version after the
 * restart, with the devices' last wills published by Mosquitto itself. The broker runs with a temp
 * config (one loopback listener, anonymous, no persistence), started the way
 * test-services/mosquitto-broker.ts starts its own.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { ResultEvent } from '@firmward/protocol';
import { ShellyBridge } from '@firmward/shelly';
import { TasmotaBridge } from '@firmward/tasmota';
import { freePort } from '../packages/ports/testing/free-port.ts';
import { FakeShelly } from '../adapters/shelly/test/shelly-device.ts';
import { RecordingHub } from '../adapters/tasmota/test/helpers.ts';
import { FakeTasmota } from '../adapters/tasmota/test/tasmota-device.ts';

interface Broker {
  url: string;
  log(): string;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Mosquitto on a free loopback port, anonymous: a home's ecosystem broker, not Firmward's locked-down one. */
async function startMosquitto(): Promise<Broker> {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-bridges-mosquitto-'));
  const port = await freePort();
  const config = path.join(dir, 'mosquitto.conf');
  await writeFile(config, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_type all\n`);
  // Debian installs the broker in /usr/sbin, which a non-root PATH often lacks.
  const binary = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';
  let output = '';
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.once('error', (error) => (output += `\ncould not run mosquitto: ${error.message}`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`Mosquitto did not start on 127.0.0.1:${port}:\n${output}`);
    }
    await sleep(50);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function isResult(event: { type: string }): event is ResultEvent {
  return event.type === 'result';
}

describe('Tasmota and Shelly bridges with Mosquitto', { timeout: 60_000 }, () => {
  let broker: Broker;
  const clock = new ManualClock(1_000);

  before(async () => {
    broker = await startMosquitto();
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
