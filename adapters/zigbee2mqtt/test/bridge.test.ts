/**
 * The Zigbee2MQTT bridge over a real MQTT broker (aedes on loopback), against a double of
 * Zigbee2MQTT (fake-zigbee2mqtt.ts) and a recording hub. Each test has its own base topic, so
 * retained messages of one test never reach another.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import type { PlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { RecordingHub, brief } from '@firmward/bridge-common/testing/recording-hub.ts';
import { recordingLogger } from '@firmward/bridge-common/testing/recording-logger.ts';
import { ManualClock } from '@firmward/ports';
import { deviceStateSchema } from '@firmward/protocol';
import type { CancelCommand, InstallCommand, OfferCommand } from '@firmward/protocol';
import { versionText } from '../src/mapping.ts';
import { FREE_STORAGE_NOT_APPLICABLE_BYTES, ZIGBEE2MQTT_TRUST, Zigbee2MqttBridge, lqiToDbm } from '../src/index.ts';
import { FakeZigbee2Mqtt } from './fake-zigbee2mqtt.ts';
import type { FakeDevice } from './fake-zigbee2mqtt.ts';

const PLUG: FakeDevice = { ieee: '0x00158d0001a2b3c4', name: 'Kitchen plug', type: 'Router', vendor: 'IKEA', model: 'E1603', powerSource: 'Mains (single phase)', softwareBuildId: '2.3.089' };
// A friendly name with a slash: Zigbee2MQTT allows it, so topics cannot be split on "/".
const SENSOR: FakeDevice = { ieee: '0x00158d0009f8e7d6', name: 'Hall/motion sensor', type: 'EndDevice', vendor: 'Philips', model: '9290012607', powerSource: 'Battery', softwareBuildId: '6.1.1.27575' };
const BULB: FakeDevice = { ieee: '0x0017880100aabbcc', name: 'Living room bulb', type: 'Router', vendor: 'Philips', model: '9290022166', powerSource: 'Mains (single phase)' };

const id = (d: FakeDevice) => `z2m-${d.ieee}`;
const OLD = 16_777_241;
const NEW = 16_777_250;

function offer(device: FakeDevice, jobId: string, version = NEW): OfferCommand {
  // What the hub sends for a release Zigbee2MQTT vouches for: the image is Zigbee2MQTT's, not ours.
  return {
    v: 1, type: 'offer', jobId, releaseId: `${device.vendor}/${device.model}/${versionText(version)}`, vendor: device.vendor, model: device.model,
    hardwareRevisions: [device.model], version: versionText(version), applicableFrom: null, applicableTo: null,
    image: { url: `http://127.0.0.1:8080/firmware/${device.vendor}/${device.model}/${versionText(version)}`, lengthBytes: 0, sha256: '' },
    expectedInstallSeconds: 1500,
  };
}
const install = (jobId: string): InstallCommand => ({ v: 1, type: 'install', jobId });
const cancel = (jobId: string): CancelCommand => ({ v: 1, type: 'cancel', jobId, message: 'Cancelled by person:owner.' });

describe('Zigbee2MqttBridge', { timeout: 20_000 }, () => {
  let broker: PlainBroker;
  let counter = 0;
  const clock = new ManualClock(1_700_000_000_000);
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    broker = await startPlainBroker();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  after(async () => {
    await broker.stop();
  });

  /** Zigbee2MQTT online with `devices`, the bridge started, every device discovered. */
  async function setup(devices: FakeDevice[] = [PLUG, SENSOR, BULB]) {
    const base = `z2m-test-${++counter}`;
    const fake = await FakeZigbee2Mqtt.connect(broker.url, base);
    cleanups.push(() => fake.close());
    await fake.publishBridgeState(true);
    await fake.publishDevices(devices);
    const hub = new RecordingHub();
    const logger = recordingLogger();
    const bridge = new Zigbee2MqttBridge({ url: broker.url, baseTopic: base, clock, logger, reconnectPeriodMs: 50 });
    await bridge.start(hub);
    cleanups.push(() => bridge.stop());
    await hub.waitFor((calls) => calls.filter((c) => c.kind === 'discovered').length === devices.length);
    return { fake, hub, bridge, logger };
  }

  /** The device's state as Zigbee2MQTT relays it, with an update available; resolves once the hub has it. */
  async function report(fake: FakeZigbee2Mqtt, hub: RecordingHub, device: FakeDevice, extra: Record<string, unknown>, installed = OLD, latest = NEW) {
    const from = hub.calls.length;
    await fake.publishState(device.name, { ...extra, update: { state: latest > installed ? 'available' : 'idle', installed_version: installed, latest_version: latest } });
    return (await hub.next('state', (c) => c.deviceId === id(device), from)).state;
  }

  /** Offer → Zigbee2MQTT's check → accepted and "downloaded". */
  async function accepted(fake: FakeZigbee2Mqtt, hub: RecordingHub, bridge: Zigbee2MqttBridge, device: FakeDevice, jobId: string, nthCheck = 0) {
    await bridge.send(id(device), offer(device, jobId));
    const check = await fake.request('check', nthCheck);
    assert.equal(check.id, device.ieee, 'requests name the device by its IEEE address');
    assert.match(check.transaction ?? '', /^firmward-/);
    await fake.answerCheck(check, { name: device.name, installed: OLD, latest: NEW, extra: { linkquality: 120 } });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.jobId === jobId && c.event.phase === 'downloaded');
    await hub.next('state', (c) => c.state.job?.jobId === jobId && c.state.job.phase === 'downloaded');
  }

  test('discovers every device but the coordinator, with ids, identity, power and versions', async () => {
    const unnamed = { ieee_address: '0x00158d00000000ff', type: 'EndDevice', friendly_name: 'mystery', disabled: false, power_source: 'Battery' };
    const disabled = { ieee_address: '0x00158d00000000fe', type: 'Router', friendly_name: 'set aside', disabled: true, definition: { model: 'X', vendor: 'Y', supports_ota: true } };
    const unsupported = { ieee_address: '0x00158d00000000fd', type: 'EndDevice', friendly_name: 'generic', power_source: 'Unknown', manufacturer: 'Acme', model_id: 'TH-1' };
    const base = `z2m-test-${++counter}`;
    const fake = await FakeZigbee2Mqtt.connect(broker.url, base);
    cleanups.push(() => fake.close());
    await fake.publishDevices([PLUG, SENSOR], [unnamed, disabled, unsupported]);
    const hub = new RecordingHub();
    const bridge = new Zigbee2MqttBridge({ url: broker.url, baseTopic: base, clock, logger: recordingLogger() });
    await bridge.start(hub);
    cleanups.push(() => bridge.stop());
    await hub.waitFor((calls) => calls.filter((c) => c.kind === 'discovered').length === 3 && calls.some((c) => c.kind === 'rejected'));

    const discovered = hub.calls.flatMap((c) => (c.kind === 'discovered' ? [c.device] : []));
    assert.deepEqual(discovered, [
      { id: 'z2m-0x00158d0001a2b3c4', name: 'Kitchen plug', vendor: 'IKEA', model: 'E1603', hardwareRevision: 'E1603', firmwareVersion: '2.3.089', powerSource: 'mains' },
      { id: 'z2m-0x00158d0009f8e7d6', name: 'Hall/motion sensor', vendor: 'Philips', model: '9290012607', hardwareRevision: '9290012607', firmwareVersion: '6.1.1.27575', powerSource: 'battery' },
      // No definition: the device's own genBasic words; an end device of unknown power counts as battery.
      { id: 'z2m-0x00158d00000000fd', name: 'generic', vendor: 'Acme', model: 'TH-1', hardwareRevision: 'TH-1', firmwareVersion: 'unknown', powerSource: 'battery' },
    ]);
    const rejected = hub.calls.filter((c) => c.kind === 'rejected');
    assert.equal(rejected.length, 1, 'the device without any identity is reported, not invented');
    assert.equal(rejected[0]!.kind === 'rejected' && rejected[0]!.deviceId, 'z2m-0x00158d00000000ff');
    assert.ok(bridge.owns('z2m-0x00158d0001a2b3c4'));
    assert.ok(!bridge.owns('tasmota-plug'));

    // Once Zigbee2MQTT reports the OTA file version, that is the version (and the device is announced again).
    const from = hub.calls.length;
    await fake.publishState(PLUG.name, { linkquality: 90, update: { state: 'idle', installed_version: OLD, latest_version: OLD } });
    const again = await hub.next('discovered', (c) => c.device.id === id(PLUG), from);
    assert.equal(again.device.firmwareVersion, versionText(OLD));
    const state = await hub.next('state', (c) => c.deviceId === id(PLUG), from);
    assert.equal(state.state.firmwareVersion, versionText(OLD));
    assert.ok(hub.calls.indexOf(again) < hub.calls.indexOf(state), 'the hub hears the new identity before the state that uses it');
  });

  test('telemetry becomes our state: battery, link quality as dBm, availability in both forms', async () => {
    const { fake, hub } = await setup();
    const sensor = await report(fake, hub, SENSOR, { battery: 23, linkquality: 66, temperature: 21.5, occupancy: false });
    assert.deepEqual(deviceStateSchema.parse(sensor), sensor, 'a valid protocol state');
    assert.equal(sensor.powerSource, 'battery');
    // Below the hub's 50 % (and Zigbee's 70 %) threshold: the hub's gate refuses on exactly this number.
    assert.equal(sensor.batteryPercent, 23);
    assert.equal(sensor.charging, false);
    assert.equal(sensor.signalDbm, lqiToDbm(66));
    assert.equal(sensor.signalDbm, -72);
    assert.equal(sensor.busy, false);
    assert.equal(sensor.freeStorageBytes, FREE_STORAGE_NOT_APPLICABLE_BYTES);
    assert.equal(sensor.healthy, true);
    assert.equal(sensor.job, null);
    assert.equal(sensor.firmwareVersion, versionText(OLD));

    const plug = await report(fake, hub, PLUG, { linkquality: 255, state: 'ON', power: 12 });
    assert.equal(plug.powerSource, 'mains');
    assert.equal(plug.batteryPercent, null);
    assert.equal(plug.signalDbm, -20);

    let from = hub.calls.length;
    await fake.publishAvailability(SENSOR.name, false);
    assert.equal((await hub.next('availability', (c) => c.deviceId === id(SENSOR), from)).online, false);
    from = hub.calls.length;
    await fake.publishAvailability(SENSOR.name, true, true);
    assert.equal((await hub.next('availability', (c) => c.deviceId === id(SENSOR), from)).online, true, 'the legacy string form');

    // Zigbee2MQTT itself offline: none of its devices can be reached.
    from = hub.calls.length;
    await fake.publishBridgeState(false);
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'availability' && !c.online).length === 3);
    from = hub.calls.length;
    await fake.publishBridgeState(true, true);
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'availability' && c.online).length === 3);
  });

  test('releases(): one per model and image Zigbee2MQTT offers, vouched for by Zigbee2MQTT', async () => {
    const { fake, hub, bridge } = await setup();
    assert.deepEqual(bridge.releases(), []);
    await report(fake, hub, PLUG, { linkquality: 100 });
    await report(fake, hub, BULB, { linkquality: 100 }, OLD, OLD);
    await report(fake, hub, SENSOR, { battery: 90, linkquality: 100 }, OLD, NEW + 5);
    const releases = bridge.releases();
    assert.deepEqual(releases.map((r) => r.id), [`IKEA/E1603/${versionText(NEW)}`, `Philips/9290012607/${versionText(NEW + 5)}`]);
    const plug = releases[0]!;
    assert.equal(plug.version, versionText(NEW));
    assert.deepEqual(plug.hardwareRevisions, ['E1603']);
    assert.deepEqual(plug.origin, { ecosystem: 'zigbee2mqtt', trust: ZIGBEE2MQTT_TRUST });
    assert.deepEqual(plug.image, { path: `zigbee2mqtt:E1603/${versionText(NEW)}`, lengthBytes: 0, sha256: '' });
    assert.ok(plug.recovery.steps.length > 0);
    assert.equal(plug.retracted, false);
  });

  test('a full update: checked, installed with progress, confirmed by the new version after the restart', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    const start = hub.calls.length;
    await accepted(fake, hub, bridge, PLUG, 'job-1');
    assert.equal(fake.count('update'), 0, 'an offer never installs');
    const downloaded = await hub.next('state', (c) => c.deviceId === id(PLUG) && c.state.job !== null, start);
    assert.deepEqual(downloaded.state.job, { jobId: 'job-1', phase: 'downloaded' });

    await bridge.send(id(PLUG), install('job-1'));
    const update = await fake.request('update');
    assert.equal(update.id, PLUG.ieee);
    await fake.reportProgress(PLUG.name, OLD, NEW, 13.37, { linkquality: 110 });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 13.37);
    const during = hub.states(id(PLUG)).at(-1)!;
    assert.deepEqual(during.job, { jobId: 'job-1', phase: 'installing' });
    assert.equal(during.firmwareVersion, versionText(OLD));
    await fake.reportProgress(PLUG.name, OLD, NEW, 87.5, { linkquality: 110 });
    // The device restarts: Zigbee2MQTT's availability goes offline and back, then it reads the new version.
    await fake.publishAvailability(PLUG.name, false);
    await fake.publishAvailability(PLUG.name, true);
    await fake.finishUpdate(update, PLUG.name, OLD, NEW, { linkquality: 115 });
    await hub.next('event', (c) => c.event.type === 'result');

    assert.deepEqual(hub.events(id(PLUG)).map(brief), [
      'ack ok', 'progress downloaded 100', 'ack ok', 'progress installing -', 'progress installing 13.37', 'progress installing 87.5',
      'progress rebooting -', `result installed ${versionText(NEW)}`,
    ]);
    const result = hub.events(id(PLUG)).at(-1)!;
    assert.deepEqual(result, { v: 1, type: 'result', jobId: 'job-1', outcome: 'installed', firmwareVersion: versionText(NEW), healthy: true, code: null, message: null });
    const afterUpdate = hub.states(id(PLUG)).at(-1)!;
    assert.equal(afterUpdate.firmwareVersion, versionText(NEW));
    assert.equal(afterUpdate.job, null);
    const stateAt = hub.calls.findIndex((c) => c.kind === 'state' && c.state.firmwareVersion === versionText(NEW));
    const resultAt = hub.calls.findIndex((c) => c.kind === 'event' && c.event.type === 'result');
    assert.ok(stateAt < resultAt, 'the state with the new version comes before the result');
    // The late "ok" response changed nothing: exactly one result.
    await report(fake, hub, PLUG, { linkquality: 115 }, NEW, NEW);
    assert.equal(hub.events(id(PLUG)).filter((e) => e.type === 'result').length, 1);
    assert.equal(fake.count('update'), 1);
  });

  test('a device that drops off mid-update and comes back on the old version: failed', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, BULB, { linkquality: 140 });
    await accepted(fake, hub, bridge, BULB, 'job-drop');
    await bridge.send(id(BULB), install('job-drop'));
    const update = await fake.request('update');
    await fake.reportProgress(BULB.name, OLD, NEW, 40, { linkquality: 140 });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 40);
    let from = hub.calls.length;
    await fake.publishAvailability(BULB.name, false);
    await hub.next('availability', (c) => !c.online, from);
    from = hub.calls.length;
    await fake.publishAvailability(BULB.name, true);
    await hub.next('availability', (c) => c.online, from);
    // Back, still on the old image, no longer updating.
    await fake.publishState(BULB.name, { linkquality: 130, update: { state: 'available', installed_version: OLD, latest_version: NEW } });
    const result = (await hub.next('event', (c) => c.event.type === 'result')).event;
    assert.equal(result.type === 'result' && result.outcome, 'failed');
    assert.equal(result.type === 'result' && result.code, 'update_interrupted');
    assert.equal(result.type === 'result' && result.firmwareVersion, versionText(OLD));
    assert.match(result.type === 'result' ? result.message ?? '' : '', /went offline during the update/);
    // Zigbee2MQTT's own error answer arrives later: still one result.
    await fake.respondError(update, `Update of '${BULB.name}' failed (Timeout)`);
    await report(fake, hub, BULB, { linkquality: 130 });
    assert.equal(hub.events(id(BULB)).filter((e) => e.type === 'result').length, 1);
    assert.equal(hub.states(id(BULB)).at(-1)!.job, null);
  });

  test('an update Zigbee2MQTT reports as failed: failed, with its reason', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    await accepted(fake, hub, bridge, PLUG, 'job-fail');
    await bridge.send(id(PLUG), install('job-fail'));
    const update = await fake.request('update');
    await fake.reportProgress(PLUG.name, OLD, NEW, 5);
    await fake.failUpdate(update, PLUG.name, OLD, NEW, `OTA update of '${PLUG.name}' failed (Update failed with reason: 'aborted by device')`);
    const result = (await hub.next('event', (c) => c.event.type === 'result')).event;
    assert.deepEqual(result, {
      v: 1, type: 'result', jobId: 'job-fail', outcome: 'failed', firmwareVersion: versionText(OLD), healthy: true, code: 'update_failed',
      message: `Zigbee2MQTT could not update the device: OTA update of '${PLUG.name}' failed (Update failed with reason: 'aborted by device')`,
    });
  });

  test('bad payloads are reported and change nothing', async () => {
    const { fake, hub, bridge } = await setup();
    const before = await report(fake, hub, SENSOR, { battery: 80, linkquality: 100 });
    const from = hub.calls.length;
    await fake.publishRaw(SENSOR.name, '{not json');
    await fake.publishRaw(SENSOR.name, JSON.stringify({ battery: 'full', linkquality: 3 }));
    await fake.publishRaw(SENSOR.name, JSON.stringify({ battery: 50, update: { state: 'exploding' } }));
    await fake.publishRaw(SENSOR.name, JSON.stringify([1, 2, 3]));
    await fake.publishRaw(`${SENSOR.name}/availability`, 'maybe', true);
    await fake.publishRaw('bridge/devices', JSON.stringify({ not: 'an array' }), true);
    await fake.publishRaw('bridge/response/device/ota_update/check', 'garbage');
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'rejected').length === 7);
    const rejected = hub.calls.slice(from).filter((c) => c.kind === 'rejected');
    assert.deepEqual(rejected.map((c) => c.kind === 'rejected' && c.deviceId), [id(SENSOR), id(SENSOR), id(SENSOR), id(SENSOR), id(SENSOR), null, null]);
    assert.ok(hub.calls.slice(from).every((c) => c.kind === 'rejected'), 'nothing but the rejections reached the hub');
    // The inventory survived the bad list, and the last good values stand.
    assert.ok(bridge.owns(id(SENSOR)));
    const next = await report(fake, hub, SENSOR, { linkquality: 100 });
    assert.equal(next.batteryPercent, before.batteryPercent);
    await bridge.send(id(SENSOR), offer(SENSOR, 'job-after-garbage'));
    assert.equal((await fake.request('check')).id, SENSOR.ieee, 'the device is still known after the bad devices list');
  });

  test('cancel before the install step: acknowledged, nothing sent to the device; after it: too late', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    await accepted(fake, hub, bridge, PLUG, 'job-c');
    let from = hub.calls.length;
    await bridge.send(id(PLUG), cancel('job-c'));
    await hub.next('event', (c) => c.event.type === 'ack', from);
    const cleared = await hub.next('state', (c) => c.deviceId === id(PLUG), from);
    assert.equal(cleared.state.job, null);
    from = hub.calls.length;
    await bridge.send(id(PLUG), cancel('job-c'));
    await bridge.send(id(PLUG), install('job-c'));
    await bridge.send(id(PLUG), offer(PLUG, 'job-c'));
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'event').length === 3);
    assert.deepEqual(hub.events(id(PLUG)).slice(-3).map(brief), ['ack ok', 'ack no job_cancelled', 'ack no job_cancelled']);

    // A new job goes through; once installing, a cancel is refused and the install goes on.
    await accepted(fake, hub, bridge, PLUG, 'job-d', 1);
    assert.equal(fake.count('update'), 0, 'the cancelled job never reached the install step');
    await bridge.send(id(PLUG), install('job-d'));
    const update = await fake.request('update');
    from = hub.calls.length;
    await bridge.send(id(PLUG), cancel('job-d'));
    assert.equal(brief((await hub.next('event', (c) => c.event.type === 'ack', from)).event), 'ack no cancel_too_late');
    await fake.finishUpdate(update, PLUG.name, OLD, NEW);
    assert.equal(brief((await hub.next('event', (c) => c.event.type === 'result')).event), `result installed ${versionText(NEW)}`);
  });

  test('re-sent commands are idempotent by job id', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    await bridge.send(id(PLUG), offer(PLUG, 'job-r'));
    await bridge.send(id(PLUG), offer(PLUG, 'job-r'));
    const check = await fake.request('check');
    await fake.answerCheck(check, { name: PLUG.name, installed: OLD, latest: NEW });
    await hub.next('event', (c) => c.event.type === 'progress');
    let from = hub.calls.length;
    await bridge.send(id(PLUG), offer(PLUG, 'job-r'));
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'event').length === 2);
    assert.deepEqual(hub.events(id(PLUG)).map(brief), ['ack ok', 'progress downloaded 100', 'ack ok', 'progress downloaded 100']);

    await bridge.send(id(PLUG), install('job-r'));
    const update = await fake.request('update');
    from = hub.calls.length;
    await bridge.send(id(PLUG), install('job-r'));
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'event').length === 2);
    assert.deepEqual(hub.events(id(PLUG)).slice(-2).map(brief), ['ack ok', 'progress installing -']);
    await fake.finishUpdate(update, PLUG.name, OLD, NEW);
    await hub.next('event', (c) => c.event.type === 'result');
    from = hub.calls.length;
    await bridge.send(id(PLUG), install('job-r'));
    await hub.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'event').length === 2);
    assert.deepEqual(hub.events(id(PLUG)).slice(-2).map(brief), ['ack no job_finished', `result installed ${versionText(NEW)}`]);
    // One check and one update in all: nothing ran twice. A later check would have arrived after these.
    await bridge.send(id(BULB), offer(BULB, 'job-sentinel'));
    await fake.request('check', 1);
    assert.equal(fake.count('check'), 2);
    assert.equal(fake.count('update'), 1);
  });

  test('one update at a time per Zigbee network, at the offer and again at the install go-ahead', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    await report(fake, hub, BULB, { linkquality: 120 });
    await accepted(fake, hub, bridge, PLUG, 'job-p');
    await accepted(fake, hub, bridge, BULB, 'job-b', 1);
    await bridge.send(id(PLUG), install('job-p'));
    const update = await fake.request('update');
    let from = hub.calls.length;
    await bridge.send(id(BULB), install('job-b'));
    const refusal = (await hub.next('event', (c) => c.deviceId === id(BULB) && c.event.type === 'ack', from)).event;
    assert.equal(brief(refusal), 'ack no not_now');
    assert.match(refusal.type === 'ack' ? refusal.message ?? '' : '', /Another device on this Zigbee network \(Kitchen plug\) is updating/);
    from = hub.calls.length;
    await bridge.send(id(SENSOR), offer(SENSOR, 'job-s'));
    assert.equal(brief((await hub.next('event', (c) => c.deviceId === id(SENSOR), from)).event), 'ack no not_now');
    await fake.finishUpdate(update, PLUG.name, OLD, NEW);
    await hub.next('event', (c) => c.event.type === 'result');
    // The mesh is free again: the bulb's go-ahead now goes through.
    await bridge.send(id(BULB), install('job-b'));
    const bulbUpdate = await fake.request('update', 1);
    assert.equal(bulbUpdate.id, BULB.ieee);
    assert.equal(fake.count('check'), 2, 'the refused offer sent nothing to Zigbee2MQTT');
    await fake.finishUpdate(bulbUpdate, BULB.name, OLD, NEW);
    await hub.next('event', (c) => c.deviceId === id(BULB) && c.event.type === 'result');

    // An update Zigbee2MQTT runs by itself (started from its frontend) counts too.
    from = hub.calls.length;
    await fake.reportProgress(PLUG.name, NEW, NEW + 1, 3, { linkquality: 120 });
    await hub.next('state', (c) => c.deviceId === id(PLUG), from);
    from = hub.calls.length;
    await bridge.send(id(SENSOR), offer(SENSOR, 'job-s2'));
    const busy = (await hub.next('event', (c) => c.deviceId === id(SENSOR), from)).event;
    assert.equal(brief(busy), 'ack no not_now');
    assert.match(busy.type === 'ack' ? busy.message ?? '' : '', /\(Kitchen plug\) is updating/);
  });

  test('a sleeping device: the update is armed for its next wake-up, then runs', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, SENSOR, { battery: 95, linkquality: 90 });
    // The check cannot wake it either; Zigbee2MQTT's last word (latest = NEW) stands.
    await bridge.send(id(SENSOR), offer(SENSOR, 'job-z'));
    await fake.respondError(await fake.request('check'), `Failed to check if update available for '${SENSOR.name}' (Device didn't respond to OTA request)`);
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
    await bridge.send(id(SENSOR), install('job-z'));
    await fake.respondError(await fake.request('update'), `Update of '${SENSOR.name}' failed (Device didn't respond to OTA request)`);
    const schedule = await fake.request('schedule');
    assert.equal(schedule.id, SENSOR.ieee);
    await fake.publishState(SENSOR.name, { battery: 95, linkquality: 90, update: { state: 'scheduled', installed_version: OLD, latest_version: NEW } });
    await fake.respondOk(schedule, {});
    await hub.waitFor(() => hub.states(id(SENSOR)).some((s) => s.job?.phase === 'installing'));
    // It wakes up and Zigbee2MQTT flashes it.
    await fake.reportProgress(SENSOR.name, OLD, NEW, 50, { battery: 94, linkquality: 90 });
    await fake.publishState(SENSOR.name, { battery: 94, linkquality: 90, update: { state: 'idle', installed_version: NEW, latest_version: NEW } });
    await hub.next('event', (c) => c.event.type === 'result');
    assert.deepEqual(hub.events(id(SENSOR)).map(brief), [
      'ack ok', 'progress downloaded 100', 'ack ok', 'progress installing -', 'progress installing -', 'progress installing 50',
      'progress rebooting -', `result installed ${versionText(NEW)}`,
    ]);
  });

  test('a sleeping device Zigbee2MQTT cannot arm: failed with what to do', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, SENSOR, { battery: 95, linkquality: 90 });
    await accepted(fake, hub, bridge, SENSOR, 'job-a');
    await bridge.send(id(SENSOR), install('job-a'));
    await fake.respondError(await fake.request('update'), `Update of '${SENSOR.name}' failed (Device didn't respond to OTA request)`);
    await fake.respondError(await fake.request('schedule'), `Device '${SENSOR.name}' does not support OTA updates`);
    const result = (await hub.next('event', (c) => c.event.type === 'result')).event;
    assert.equal(result.type === 'result' && result.outcome, 'failed');
    assert.equal(result.type === 'result' && result.message, 'The device is asleep; press a button on it to wake it, then try again.');
  });

  test('offers Zigbee2MQTT does not back are refused with a reason', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    let from = hub.calls.length;
    await bridge.send(id(PLUG), offer(PLUG, 'job-x'));
    await fake.answerCheck(await fake.request('check'), { name: PLUG.name, installed: OLD, latest: OLD });
    assert.equal(brief((await hub.next('event', (c) => c.event.type === 'ack', from)).event), 'ack no incompatible');
    from = hub.calls.length;
    await bridge.send(id(PLUG), offer(PLUG, 'job-y', OLD));
    assert.equal(brief((await hub.next('event', (c) => c.event.type === 'ack', from)).event), 'ack no downgrade');
    from = hub.calls.length;
    await bridge.send(id(PLUG), { ...offer(PLUG, 'job-w'), model: 'E1234', hardwareRevisions: ['E1234'] });
    assert.equal(brief((await hub.next('event', (c) => c.event.type === 'ack', from)).event), 'ack no incompatible');
    // A sleeping device with nothing known to fall back on: not now, with what to do.
    await report(fake, hub, SENSOR, { battery: 95, linkquality: 90 }, OLD, OLD);
    from = hub.calls.length;
    await bridge.send(id(SENSOR), offer(SENSOR, 'job-v'));
    await fake.respondError(await fake.request('check', 1), `Failed to check if update available for '${SENSOR.name}' (Device didn't respond to OTA request)`);
    const asleep = (await hub.next('event', (c) => c.event.type === 'ack', from)).event;
    assert.equal(brief(asleep), 'ack no not_now');
    assert.equal(asleep.type === 'ack' && asleep.message, 'The device is asleep; press a button on it to wake it, then try again.');
    assert.equal(fake.count('check'), 2, 'refusals decided locally sent nothing');
  });

  test('Zigbee2MQTT restarting mid-update: failed once it reports the old version again', async () => {
    const { fake, hub, bridge } = await setup();
    await report(fake, hub, PLUG, { linkquality: 120 });
    await accepted(fake, hub, bridge, PLUG, 'job-restart');
    await bridge.send(id(PLUG), install('job-restart'));
    await fake.request('update');
    await fake.reportProgress(PLUG.name, OLD, NEW, 20);
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 20);
    await fake.publishBridgeState(false);
    await fake.publishBridgeState(true);
    // Its start-up sets "updating" back to "available" and sends the cached state (otaUpdate.ts start()).
    await fake.publishState(PLUG.name, { linkquality: 120, update: { state: 'available', installed_version: OLD, latest_version: NEW } });
    const result = (await hub.next('event', (c) => c.event.type === 'result')).event;
    assert.equal(result.type === 'result' && result.code, 'update_interrupted');
    assert.match(result.type === 'result' ? result.message ?? '' : '', /Zigbee2MQTT restarted during the update/);
  });
});
