/**
 * The Zigbee2MQTT bridge and the Home Assistant publisher through a real Mosquitto 2, the broker
 * a Zigbee2MQTT or Home Assistant installation usually runs (anonymous, no ACLs, as they ship):
 *  (a) the bridge's core scenario against the Zigbee2MQTT double: discovery, telemetry, a whole
 *      update confirmed by the new version, one update per Zigbee network;
 *  (b) the publisher's discovery payloads checked against Home Assistant's field list, and
 *      Install in Home Assistant reaching the hub's "update now";
 *  (c) at compile time: the hub's DefaultHubService is a HomeAssistantHub as it is.
 * Mosquitto is started here with a temp config (the process handling of mosquitto-broker.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HomeAssistantPublisher, objectId } from '@firmward/homeassistant';
import type { HomeAssistantHub } from '@firmward/homeassistant';
import { ManualClock } from '@firmward/ports';
import { deviceStateSchema } from '@firmward/protocol';
import { Zigbee2MqttBridge } from '@firmward/zigbee2mqtt';
import { haSensorConfigSchema, haUpdateConfigSchema, haUpdateStateSchema } from '../adapters/homeassistant/test/ha-schema.ts';
import { FakeHomeAssistant, FakeHub, device, recordingLogger as haLogger } from '../adapters/homeassistant/test/helpers.ts';
import { FakeZigbee2Mqtt } from '../adapters/zigbee2mqtt/test/fake-zigbee2mqtt.ts';
import type { FakeDevice } from '../adapters/zigbee2mqtt/test/fake-zigbee2mqtt.ts';
import { RecordingHub, brief, recordingLogger } from '../adapters/zigbee2mqtt/test/helpers.ts';
import type { DefaultHubService } from '../apps/hub/src/hub-service.ts';
import { freePort } from '../packages/ports/testing/free-port.ts';

// (c) Compile-time: `npm run check` fails if HubService drifts from what the publisher needs.
export const hubServiceFits: (service: DefaultHubService) => HomeAssistantHub = (service) => service;

interface RunningMosquitto {
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

/** Mosquitto on a free loopback port, anonymous: how Zigbee2MQTT's and Home Assistant's add-on brokers often run at home. */
async function startAnonymousMosquitto(): Promise<RunningMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-z2m-ha-'));
  const port = await freePort();
  const config = path.join(dir, 'mosquitto.conf');
  // Started as root, Mosquitto would drop to the "mosquitto" user, who cannot read our temp folder.
  await writeFile(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', `user ${userInfo().username}`, 'log_type all', ''].join('\n'));
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

const PLUG: FakeDevice = { ieee: '0x00158d0001a2b3c4', name: 'Kitchen plug', type: 'Router', vendor: 'IKEA', model: 'E1603', powerSource: 'Mains (single phase)' };
const SENSOR: FakeDevice = { ieee: '0x00158d0009f8e7d6', name: 'Hall/motion sensor', type: 'EndDevice', vendor: 'Philips', model: '9290012607', powerSource: 'Battery' };
const OLD = 16_777_241;
const NEW = 16_777_250;

let mosquitto: RunningMosquitto;
before(async () => {
  mosquitto = await startAnonymousMosquitto();
});
after(async () => {
  await mosquitto.stop();
});

describe('Zigbee2MQTT bridge through Mosquitto', { timeout: 30_000 }, () => {
  test('discovery, telemetry, a whole update confirmed by the new version, one update per network', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const fake = await FakeZigbee2Mqtt.connect(mosquitto.url, 'zigbee2mqtt');
    const hub = new RecordingHub();
    const bridge = new Zigbee2MqttBridge({ url: mosquitto.url, clock, logger: recordingLogger(), reconnectPeriodMs: 100 });
    try {
      await fake.publishBridgeState(true);
      await fake.publishDevices([PLUG, SENSOR]);
      await bridge.start(hub);
      await hub.waitFor((calls) => calls.filter((c) => c.kind === 'discovered').length === 2);

      await fake.publishState(SENSOR.name, { battery: 23, linkquality: 66, update: { state: 'available', installed_version: OLD, latest_version: NEW } });
      const sensor = (await hub.next('state', (c) => c.deviceId === `z2m-${SENSOR.ieee}`)).state;
      assert.deepEqual(deviceStateSchema.parse(sensor), sensor);
      assert.equal(sensor.batteryPercent, 23);
      assert.equal(sensor.signalDbm, -72);
      await fake.publishState(PLUG.name, { linkquality: 200, update: { state: 'available', installed_version: OLD, latest_version: NEW } });
      await hub.next('state', (c) => c.deviceId === `z2m-${PLUG.ieee}` && c.state.firmwareVersion === String(OLD));
      assert.deepEqual(bridge.releases().map((r) => r.id), [`IKEA/E1603/${NEW}`, `Philips/9290012607/${NEW}`]);

      const plugId = `z2m-${PLUG.ieee}`;
      const release = bridge.releases()[0]!;
      await bridge.send(plugId, {
        v: 1, type: 'offer', jobId: 'job-m', releaseId: release.id, vendor: release.vendor, model: release.model, hardwareRevisions: release.hardwareRevisions,
        version: release.version, applicableFrom: null, applicableTo: null, image: { url: 'http://127.0.0.1:8080/firmware/x', lengthBytes: 0, sha256: '' },
        expectedInstallSeconds: release.expectedInstallSeconds,
      });
      await fake.answerCheck(await fake.request('check'), { name: PLUG.name, installed: OLD, latest: NEW, extra: { linkquality: 200 } });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
      await bridge.send(plugId, { v: 1, type: 'install', jobId: 'job-m' });
      const update = await fake.request('update');
      await fake.reportProgress(PLUG.name, OLD, NEW, 50, { linkquality: 200 });
      await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 50);

      // The mesh is busy: the sensor's offer is refused by the bridge itself, nothing sent to Zigbee2MQTT.
      const from = hub.calls.length;
      await bridge.send(`z2m-${SENSOR.ieee}`, {
        v: 1, type: 'offer', jobId: 'job-s', releaseId: `Philips/9290012607/${NEW}`, vendor: 'Philips', model: '9290012607', hardwareRevisions: ['9290012607'],
        version: String(NEW), applicableFrom: null, applicableTo: null, image: { url: 'http://127.0.0.1:8080/firmware/y', lengthBytes: 0, sha256: '' }, expectedInstallSeconds: 1500,
      });
      assert.equal(brief((await hub.next('event', (c) => c.deviceId === `z2m-${SENSOR.ieee}`, from)).event), 'ack no not_now');

      await fake.publishAvailability(PLUG.name, false);
      await fake.publishAvailability(PLUG.name, true);
      await fake.finishUpdate(update, PLUG.name, OLD, NEW, { linkquality: 190 });
      await hub.next('event', (c) => c.event.type === 'result');
      assert.deepEqual(hub.events(plugId).map(brief), [
        'ack ok', 'progress downloaded 100', 'ack ok', 'progress installing -', 'progress installing 50', 'progress rebooting -', `result installed ${NEW}`,
      ]);
      assert.equal(hub.states(plugId).at(-1)!.firmwareVersion, String(NEW));
      assert.equal(fake.count('check'), 1);
      assert.equal(fake.count('update'), 1);
    } finally {
      await bridge.stop();
      await fake.close();
    }
  });
});

describe('Home Assistant publisher through Mosquitto', { timeout: 30_000 }, () => {
  test('discovery payloads valid for Home Assistant; Install reaches "update now"', async () => {
    const hub = new FakeHub();
    hub.devices = [
      device({ id: 'z2m-0x00158d0001a2b3c4', name: 'Kitchen plug', vendor: 'IKEA', model: 'E1603', hardwareRevision: 'E1603', firmwareVersion: String(OLD), availableVersion: String(NEW) }, {
        status: 'waiting', summary: 'Waiting: outside the quiet hours (01:00–05:00).', jobState: 'waiting', targetVersion: String(NEW),
        vulnerabilities: [{ id: 'CVE-2026-1234', severity: 'high' }],
      }),
    ];
    hub.answer = (deviceId) => ({ id: `job-${deviceId}`, state: 'queued', targetVersion: String(NEW) });
    const ha = await FakeHomeAssistant.connect(mosquitto.url, ['homeassistant/#', 'firmward/homeassistant/#']);
    const publisher = new HomeAssistantPublisher({ url: mosquitto.url, hub, clock: new ManualClock(0), logger: haLogger(), refreshSeconds: 0 });
    const config = `homeassistant/update/firmward/${objectId('z2m-0x00158d0001a2b3c4')}/config`;
    const sensor = 'homeassistant/sensor/firmward/home-1_vulnerable/config';
    try {
      await publisher.start();
      await ha.until((h) => h.topics.has(config) && h.topics.has(sensor));
      const cfg = haUpdateConfigSchema.parse(ha.json(config));
      await ha.until((h) => h.topics.has(cfg.state_topic!));
      const state = haUpdateStateSchema.parse(ha.json(cfg.state_topic!));
      assert.equal(state.installed_version, String(OLD));
      assert.equal(state.latest_version, String(NEW));
      assert.equal(state.in_progress, false);
      const home = haSensorConfigSchema.parse(ha.json(sensor));
      await ha.until((h) => h.topics.get(home.state_topic) === '1');

      await ha.pressInstall(config);
      await hub.calledTimes(1);
      assert.deepEqual(hub.updateNowCalls, [{ deviceId: 'z2m-0x00158d0001a2b3c4', actor: 'home-assistant' }]);
      await ha.until((h) => (h.json(cfg.json_attributes_topic!)['last_install_request'] as { outcome?: string } | null)?.outcome === 'accepted');
    } finally {
      await publisher.stop();
      await ha.close();
    }
  });
});
