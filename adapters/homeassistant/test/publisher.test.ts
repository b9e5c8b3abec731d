/**
 * The Home Assistant publisher over a real MQTT broker (aedes on loopback): a fake hub on one
 * side, a double of Home Assistant's MQTT side on the other. Every payload HA would read is
 * checked against HA's own field list (ha-schema.ts).
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { recordingLogger } from '@firmward/bridge-common/testing/recording-logger.ts';
import { FirmwardError } from '@firmward/core';
import { ManualClock } from '@firmward/ports';
import { HOME_ASSISTANT_ACTOR, HomeAssistantPublisher, objectId } from '../src/index.ts';
import { haSensorConfigSchema, haUpdateConfigSchema, haUpdateStateSchema } from './ha-schema.ts';
import { FakeHomeAssistant, FakeHub, device } from './helpers.ts';

const LONG_SUMMARY = `Waiting: ${'battery 23 %, needs 50 % or charging. '.repeat(12)}`;

describe('HomeAssistantPublisher', { timeout: 20_000 }, () => {
  let broker: { url: string; stop(): Promise<void> };
  let counter = 0;
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 2, 0, 0));
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

  /** A publisher and a Home Assistant on their own prefixes (retained messages never cross tests). */
  async function setup(hub: FakeHub, extra: { start?: boolean } = {}) {
    const n = ++counter;
    const prefix = `ha${n}`;
    const base = `firmward${n}/homeassistant`;
    const ha = await FakeHomeAssistant.connect(broker.url, [`${prefix}/#`, `${base}/#`]);
    cleanups.push(() => ha.close());
    const publisher = new HomeAssistantPublisher({
      url: broker.url, hub, clock, logger: recordingLogger(), discoveryPrefix: prefix, baseTopic: base,
      dashboardUrl: 'http://127.0.0.1:8080/', softwareVersion: '0.1.0', refreshSeconds: 0, reconnectPeriodMs: 50,
    });
    if (extra.start !== false) {
      await publisher.start();
      cleanups.push(() => publisher.stop());
    }
    const config = (id: string) => `${prefix}/update/firmward/${objectId(id)}/config`;
    const sensor = (homeId: string) => `${prefix}/sensor/firmward/${objectId(homeId)}_vulnerable/config`;
    return { ha, publisher, prefix, base, config, sensor };
  }

  function sampleHub(): FakeHub {
    const hub = new FakeHub();
    hub.devices = [
      device({ id: 'kitchen-plug', name: 'Kitchen plug', availableVersion: '1.3.0' }, {
        status: 'queued', summary: 'Queued: 1.3.0 will install when it is this device\'s turn. Vulnerable: CVE-2026-1234 fixed in 1.3.0.',
        jobState: 'queued', targetVersion: '1.3.0', vulnerabilities: [{ id: 'CVE-2026-1234', severity: 'high' }],
      }),
      device({ id: 'z2m-0x00158d0009f8e7d6', name: 'Hall sensor', vendor: 'Philips', model: '9290012607', hardwareRevision: '9290012607', firmwareVersion: '16777241', availableVersion: '16777250' }, {
        status: 'waiting', summary: LONG_SUMMARY, jobState: 'waiting', targetVersion: '16777250',
      }),
      device({ id: 'desk.lamp', name: 'Desk lamp' }),
    ];
    return hub;
  }

  test('every device as an update entity and every home as a sensor, each payload valid for Home Assistant', async () => {
    const hub = sampleHub();
    const { ha, config, sensor, base } = await setup(hub);
    await ha.until((h) => hub.devices.every((d) => h.topics.has(config(d.id))) && h.topics.has(sensor('home-1')));
    for (const d of hub.devices) {
      const cfg = haUpdateConfigSchema.parse(ha.json(config(d.id)));
      assert.ok(cfg.unique_id && cfg.state_topic && cfg.command_topic && cfg.payload_install && cfg.availability && cfg.json_attributes_topic, 'what the entity needs is there');
      await ha.until((h) => h.topics.has(cfg.state_topic!));
      haUpdateStateSchema.parse(ha.json(cfg.state_topic));
    }
    // Object ids use only what HA allows (§2.1); distinct ids stay distinct.
    assert.equal(objectId('desk.lamp'), 'desk_2elamp');
    assert.notEqual(objectId('desk.lamp'), objectId('desk_lamp'));
    assert.match(config('z2m-0x00158d0009f8e7d6'), /^ha\d+\/update\/firmward\/[A-Za-z0-9_-]+\/config$/);

    const plug = haUpdateConfigSchema.parse(ha.json(config('kitchen-plug')));
    assert.deepEqual(plug.device, {
      identifiers: ['firmward_kitchen-plug'], name: 'Kitchen plug', manufacturer: 'acme', model: 'plug-s', sw_version: '1.2.0', hw_version: 'r2',
      configuration_url: 'http://127.0.0.1:8080/',
    });
    assert.equal(plug.device_class, 'firmware');
    assert.equal(plug.command_topic, `${base}/devices/kitchen-plug/install`);
    assert.deepEqual(ha.json(plug.state_topic!), {
      installed_version: '1.2.0', latest_version: '1.3.0', title: 'acme plug-s firmware',
      release_summary: 'Queued: 1.3.0 will install when it is this device\'s turn. Vulnerable: CVE-2026-1234 fixed in 1.3.0.',
      release_url: 'http://127.0.0.1:8080/', in_progress: false, update_percentage: null,
    });
    const attributes = ha.json(plug.json_attributes_topic!);
    assert.deepEqual(attributes['vulnerabilities'], ['CVE-2026-1234']);

    const hall = haUpdateStateSchema.parse(ha.json(haUpdateConfigSchema.parse(ha.json(config('z2m-0x00158d0009f8e7d6'))).state_topic!));
    assert.equal(hall.release_summary?.length, 255, 'the hub\'s long sentence is cut to HA\'s 255 characters');
    assert.equal(hall.installed_version, '16777241');
    assert.equal(hall.latest_version, '16777250');
    const lamp = haUpdateStateSchema.parse(ha.json(haUpdateConfigSchema.parse(ha.json(config('desk.lamp'))).state_topic!));
    assert.equal(lamp.latest_version, lamp.installed_version, 'up to date: HA shows no update');

    const home = haSensorConfigSchema.parse(ha.json(sensor('home-1')));
    await ha.until((h) => h.topics.has(home.state_topic));
    assert.equal(ha.topics.get(home.state_topic), '1', 'one device with a known vulnerability');
    assert.deepEqual(ha.json(home.json_attributes_topic!), { devices: [{ id: 'kitchen-plug', name: 'Kitchen plug', vulnerabilities: ['CVE-2026-1234'] }] });
    assert.equal(ha.topics.get(`${base}/status`), 'online');

    // Retained: a Home Assistant that connects later gets every config and state at once.
    const late = await FakeHomeAssistant.connect(broker.url, [`${config('x').split('/')[0]}/#`, `${base}/#`]);
    cleanups.push(() => late.close());
    await late.until((h) => hub.devices.every((d) => h.topics.has(config(d.id))) && h.topics.has(plug.state_topic!) && h.topics.has(sensor('home-1')));
    assert.ok(late.log.every((m) => m.retain));
  });

  test('progress reaches Home Assistant when the hub records a change', async () => {
    const hub = sampleHub();
    const { ha, config } = await setup(hub);
    await ha.until((h) => h.topics.has(config('kitchen-plug')));
    const stateTopic = String(ha.json(config('kitchen-plug'))['state_topic']);
    hub.devices[0] = device({ id: 'kitchen-plug', name: 'Kitchen plug', availableVersion: '1.3.0' }, {
      status: 'updating', summary: 'Installing 1.3.0 (40 %) — don\'t unplug or power it off.', jobState: 'installing', targetVersion: '1.3.0', progressPercent: 40,
    });
    hub.emit({ homeId: 'home-1', deviceId: 'kitchen-plug' });
    await ha.until((h) => h.json(stateTopic)['in_progress'] === true);
    const state = haUpdateStateSchema.parse(ha.json(stateTopic));
    assert.equal(state.update_percentage, 40);
    assert.equal(state.latest_version, '1.3.0');
  });

  test('Install in Home Assistant asks the hub to update now; its answer is shown, nothing pretends to start', async () => {
    const hub = sampleHub();
    const { ha, config } = await setup(hub);
    await ha.until((h) => hub.devices.every((d) => h.topics.has(config(d.id))));
    const plugConfig = ha.json(config('kitchen-plug'));
    const attributesTopic = String(plugConfig['json_attributes_topic']);
    const stateTopic = String(plugConfig['state_topic']);

    // Accepted: the hub queued it (it still has to pass every gate), so it is not "in progress".
    hub.answer = (deviceId) => ({ id: `job-${deviceId}`, state: 'queued', targetVersion: '1.3.0' });
    await ha.pressInstall(config('kitchen-plug'));
    await hub.calledTimes(1);
    assert.deepEqual(hub.updateNowCalls[0], { deviceId: 'kitchen-plug', actor: HOME_ASSISTANT_ACTOR });
    await ha.until((h) => (h.json(attributesTopic)['last_install_request'] as { outcome?: string } | null)?.outcome === 'accepted');
    assert.equal(ha.json(stateTopic)['in_progress'], false);

    // Refused: the hub's sentence is shown as it is.
    const lampConfig = ha.json(config('desk.lamp'));
    hub.answer = () => {
      throw new FirmwardError('already_up_to_date', 'Up to date (1.2.0).');
    };
    await ha.pressInstall(config('desk.lamp'));
    await hub.calledTimes(2);
    assert.deepEqual(hub.updateNowCalls[1], { deviceId: 'desk.lamp', actor: HOME_ASSISTANT_ACTOR });
    await ha.until((h) => h.json(String(lampConfig['json_attributes_topic']))['last_install_request'] !== null);
    const request = ha.json(String(lampConfig['json_attributes_topic']))['last_install_request'] as Record<string, unknown>;
    assert.deepEqual({ outcome: request['outcome'], code: request['code'], message: request['message'] }, { outcome: 'refused', code: 'already_up_to_date', message: 'Up to date (1.2.0).' });
    assert.equal(request['at'], '2026-03-01T02:00:00.000Z');
    assert.equal(haUpdateStateSchema.parse(ha.json(String(lampConfig['state_topic']))).in_progress, false);

    // Anything but payload_install, or a device the hub does not list: ignored.
    await ha.mqtt.publishAsync(String(plugConfig['command_topic']), 'INSTALL NOW', { qos: 1 });
    await ha.mqtt.publishAsync(String(plugConfig['command_topic']).replace('kitchen-plug', 'unknown-device'), 'install', { qos: 1 });
    await ha.pressInstall(config('kitchen-plug'));
    await hub.calledTimes(3);
    assert.deepEqual(hub.updateNowCalls.map((c) => c.deviceId), ['kitchen-plug', 'desk.lamp', 'kitchen-plug']);
  });

  test('a device the hub no longer lists is removed from Home Assistant (empty retained config)', async () => {
    const hub = sampleHub();
    const { ha, config, publisher } = await setup(hub);
    await ha.until((h) => h.topics.has(config('desk.lamp')));
    const stateTopic = String(ha.json(config('desk.lamp'))['state_topic']);
    hub.devices = hub.devices.filter((d) => d.id !== 'desk.lamp');
    await publisher.refresh();
    await ha.until((h) => h.topics.get(config('desk.lamp')) === '' && h.topics.get(stateTopic) === '');
    const removal = ha.log.find((m) => m.topic === config('desk.lamp') && m.payload === '');
    assert.ok(removal, 'the empty payload was sent');
    assert.ok(ha.topics.get(config('kitchen-plug')), 'the others stay');
  });

  test('configs an earlier run left behind are cleared at start', async () => {
    const hub = sampleHub();
    const { ha, config, publisher, prefix, base } = await setup(hub, { start: false });
    const stale = `${prefix}/update/firmward/old-device/config`;
    const staleState = `${base}/devices/old-device/state`;
    await ha.mqtt.publishAsync(stale, JSON.stringify({ name: 'Firmware', unique_id: 'firmward_old-device', state_topic: staleState }), { qos: 1, retain: true });
    await ha.mqtt.publishAsync(staleState, JSON.stringify({ installed_version: '1.0.0' }), { qos: 1, retain: true });
    await publisher.start();
    cleanups.push(() => publisher.stop());
    await ha.until((h) => h.topics.get(stale) === '' && h.topics.get(staleState) === '');
    assert.ok(ha.topics.get(config('kitchen-plug')));
  });

  test("Home Assistant's birth message: everything is published again", async () => {
    const hub = sampleHub();
    const { ha, config, prefix } = await setup(hub);
    await ha.until((h) => hub.devices.every((d) => h.topics.has(config(d.id))));
    const before = ha.log.filter((m) => m.topic === config('kitchen-plug')).length;
    await ha.birth(prefix);
    await ha.until((h) => h.log.filter((m) => m.topic === config('kitchen-plug')).length > before);
    await ha.until((h) => h.log.filter((m) => m.topic === config('desk.lamp')).length > 1);
  });

  test('stop: Home Assistant sees Firmward offline', async () => {
    const hub = sampleHub();
    const { ha, publisher, base } = await setup(hub, { start: false });
    await publisher.start();
    await ha.until((h) => h.topics.get(`${base}/status`) === 'online');
    await publisher.stop();
    await ha.until((h) => h.topics.get(`${base}/status`) === 'offline');
  });
});
