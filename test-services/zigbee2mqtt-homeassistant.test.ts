/**
 * The Zigbee2MQTT bridge and the Home Assistant publisher through a real Mosquitto 2, the broker
 * a Zigbee2MQTT or Home Assistant installation usually runs (anonymous, no ACLs, as they ship):
 *  (a) the bridge's core scenario against the Zigbee2MQTT double: discovery, telemetry, a whole
 *      update confirmed by the new version, one update per Zigbee network;
 *  (b) the publisher's discovery payloads checked against Home Assistant's field list, and
 *      Install in Home Assistant reaching the hub's "update now";
 *  (c) at compile time: the hub's DefaultHubService is a HomeAssistantHub as it is.
 * Mosquitto runs with a temp config: startPlainMosquitto of @firmward/bridge-common/testing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainMosquitto } from '@firmward/bridge-common/testing/plain-mosquitto.ts';
import type { PlainMosquitto } from '@firmward/bridge-common/testing/plain-mosquitto.ts';
import { RecordingHub, brief } from '@firmward/bridge-common/testing/recording-hub.ts';
import { recordingLogger } from '@firmward/bridge-common/testing/recording-logger.ts';
import { HomeAssistantPublisher, objectId } from '@firmward/homeassistant';
import type { HomeAssistantHub } from '@firmward/homeassistant';
import { ManualClock } from '@firmward/ports';
import { deviceStateSchema } from '@firmward/protocol';
import { Zigbee2MqttBridge } from '@firmward/zigbee2mqtt';
import { versionText } from '../adapters/zigbee2mqtt/src/mapping.ts';
import { haSensorConfigSchema, haUpdateConfigSchema, haUpdateStateSchema } from '../adapters/homeassistant/test/ha-schema.ts';
import { FakeHomeAssistant, FakeHub, device } from '../adapters/homeassistant/test/helpers.ts';
import { FakeZigbee2Mqtt } from '../adapters/zigbee2mqtt/test/fake-zigbee2mqtt.ts';
import type { FakeDevice } from '../adapters/zigbee2mqtt/test/fake-zigbee2mqtt.ts';
import type { DefaultHubService } from '../apps/hub/src/hub-service.ts';

// (c) Compile-time: `npm run check` fails if HubService drifts from what the publisher needs.
export const hubServiceFits: (service: DefaultHubService) => HomeAssistantHub = (service) => service;

const PLUG: FakeDevice = { ieee: '0x00158d0001a2b3c4', name: 'Kitchen plug', type: 'Router', vendor: 'IKEA', model: 'E1603', powerSource: 'Mains (single phase)' };
const SENSOR: FakeDevice = { ieee: '0x00158d0009f8e7d6', name: 'Hall/motion sensor', type: 'EndDevice', vendor: 'Philips', model: '9290012607', powerSource: 'Battery' };
const OLD = 16_777_241;
const NEW = 16_777_250;

let mosquitto: PlainMosquitto;
before(async () => {
  mosquitto = await startPlainMosquitto();
});
after(async () => {
  await mosquitto.stop();
});

describe('Zigbee2MQTT bridge through Mosquitto', { timeout: 30_000 }, () => {
  test('discovery, telemetry, a whole update confirmed by the new version, one update per network', async (t) => {
    const clock = new ManualClock(1_700_000_000_000);
    const fake = await FakeZigbee2Mqtt.connect(mosquitto.url, 'zigbee2mqtt');
    const hub = new RecordingHub();
    const bridge = new Zigbee2MqttBridge({ url: mosquitto.url, clock, logger: recordingLogger(), reconnectPeriodMs: 100 });
    // Also after a timeout, when the test body never reaches its end: open connections would keep the run alive.
    t.after(async () => {
      await bridge.stop();
      await fake.close();
    });
    {
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
      await hub.next('state', (c) => c.deviceId === `z2m-${PLUG.ieee}` && c.state.firmwareVersion === versionText(OLD));
      assert.deepEqual(bridge.releases().map((r) => r.id), [`IKEA/E1603/${versionText(NEW)}`, `Philips/9290012607/${versionText(NEW)}`]);

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
        v: 1, type: 'offer', jobId: 'job-s', releaseId: `Philips/9290012607/${versionText(NEW)}`, vendor: 'Philips', model: '9290012607', hardwareRevisions: ['9290012607'],
        version: versionText(NEW), applicableFrom: null, applicableTo: null, image: { url: 'http://127.0.0.1:8080/firmware/y', lengthBytes: 0, sha256: '' }, expectedInstallSeconds: 1500,
      });
      assert.equal(brief((await hub.next('event', (c) => c.deviceId === `z2m-${SENSOR.ieee}`, from)).event), 'ack no not_now');

      await fake.publishAvailability(PLUG.name, false);
      await fake.publishAvailability(PLUG.name, true);
      await fake.finishUpdate(update, PLUG.name, OLD, NEW, { linkquality: 190 });
      await hub.next('event', (c) => c.event.type === 'result');
      assert.deepEqual(hub.events(plugId).map(brief), [
        'ack ok', 'progress downloaded 100', 'ack ok', 'progress installing -', 'progress installing 50', 'progress rebooting -', `result installed ${versionText(NEW)}`,
      ]);
      assert.equal(hub.states(plugId).at(-1)!.firmwareVersion, versionText(NEW));
      assert.equal(fake.count('check'), 1);
      assert.equal(fake.count('update'), 1);
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
    const publisher = new HomeAssistantPublisher({ url: mosquitto.url, hub, clock: new ManualClock(0), logger: recordingLogger(), refreshSeconds: 0 });
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
