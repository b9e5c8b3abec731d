import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import type { PlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { RecordingHub } from '@firmward/bridge-common/testing/recording-hub.ts';
import { isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { OfferCommand } from '@firmward/protocol';
import { TasmotaBridge } from '../src/tasmota-bridge.ts';
import { FakeTasmota } from './tasmota-device.ts';
import type { TasmotaDeviceOptions } from './tasmota-device.ts';

const ID = 'tasmota-kitchen_plug';
const HUB_IMAGE_URL = 'http://127.0.0.1:8080/firmware/tasmota%2Ftasmota%2F14.3.0';

function offer(jobId: string, overrides: Partial<OfferCommand> = {}): OfferCommand {
  return {
    v: 1, type: 'offer', jobId, releaseId: 'tasmota/tasmota/14.3.0', vendor: 'tasmota', model: 'tasmota', hardwareRevisions: ['ESP8266EX'],
    version: '14.3.0', applicableFrom: null, applicableTo: null,
    image: { url: HUB_IMAGE_URL, lengthBytes: 655_360, sha256: 'a'.repeat(64) }, expectedInstallSeconds: 120, ...overrides,
  };
}

describe('TasmotaBridge over a real MQTT broker', { timeout: 20_000 }, () => {
  let broker: PlainBroker;
  let hub: RecordingHub;
  let bridge: TasmotaBridge;
  let device: FakeTasmota;
  const clock = new ManualClock(1_000);

  function fakeDevice(overrides: Partial<TasmotaDeviceOptions> = {}): FakeTasmota {
    return new FakeTasmota({
      url: broker.url, topic: 'kitchen_plug', mac: 'A1B2C3D4E5F6', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX',
      deviceName: 'Kitchen plug', discovery: true, wifi: { RSSI: 86, Signal: -57 }, ...overrides,
    });
  }

  /**
   * Powers the device on and waits until everything of its boot reached the hub: its answer to
   * Status 0 is out, then a marker the bridge refuses (nothing else tells the hub apart from a
   * state report) has come back as onRejected, so everything before it was handled.
   */
  async function online(d: FakeTasmota): Promise<void> {
    await d.powerOn();
    await d.waitForCommand('STATUS 0');
    await settled(d);
  }

  async function settled(d: FakeTasmota): Promise<void> {
    const from = hub.calls.length;
    await d.publishRaw(`stat/${d.topic}/RESULT`, 'marker');
    await hub.next('rejected', (c) => c.topic === `stat/${d.topic}/RESULT`, from);
  }

  /** Offer and go-ahead, up to Tasmota's "Version … from …" (the bridge's "installing"). */
  async function installing(jobId: string): Promise<void> {
    await bridge.send(ID, offer(jobId));
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
    await bridge.send(ID, { v: 1, type: 'install', jobId });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing');
  }

  beforeEach(async () => {
    broker = await startPlainBroker();
    hub = new RecordingHub();
    bridge = new TasmotaBridge({ url: broker.url, clock, logger: silentLogger });
    await bridge.start(hub);
    device = fakeDevice();
  });

  afterEach(async () => {
    await device.powerOff();
    await bridge.stop();
    await broker.stop();
  });

  test('discovers a device from its discovery config, LWT and Status 0, then reports it online', async () => {
    await online(device);
    const found = await hub.next('discovered');
    assert.deepEqual(found.device, {
      id: ID, name: 'Kitchen plug', vendor: 'tasmota', model: 'tasmota', hardwareRevision: 'ESP8266EX', firmwareVersion: '14.2.0', powerSource: 'mains',
    });
    const kinds = hub.calls.filter((c) => c.kind !== 'rejected').map((c) => c.kind);
    // The hub must know the device before it hears anything about it.
    assert.equal(kinds[0], 'discovered');
    assert.ok(hub.calls.some((c) => c.kind === 'availability' && c.deviceId === ID && c.online));
    assert.ok(device.commands.includes('STATUS 0'));
    assert.ok(bridge.owns(ID));
    assert.ok(!bridge.owns('shelly-abc'));
    assert.deepEqual(bridge.releases(), []);
  });

  test('discovers from the LWT alone, reading a combined STATUS0 reply', async () => {
    device = fakeDevice({ discovery: false, combinedStatus: true, topic: 'tasmota_E5F6A1', hardware: 'ESP32-D0WD-V3', version: '14.2.0(release-tasmota32)' });
    await online(device);
    const found = await hub.next('discovered');
    assert.equal(found.device.id, 'tasmota-tasmota_E5F6A1');
    assert.equal(found.device.model, 'tasmota32');
    assert.equal(found.device.hardwareRevision, 'ESP32-D0WD-V3');
    assert.equal(found.device.name, 'Kitchen plug');
  });

  test('turns tele/STATE telemetry into a state report: Wifi.Signal in dBm, or Wifi.RSSI percent converted', async () => {
    await online(device);
    const first = hub.lastState(ID)!;
    assert.equal(first.signalDbm, -57);
    assert.equal(first.firmwareVersion, '14.2.0');
    assert.equal(first.healthy, true);
    assert.equal(first.busy, false);
    assert.equal(first.charging, false);
    assert.equal(first.job, null);
    assert.ok(first.freeStorageBytes > 1e12);

    const from = hub.calls.length;
    // An older build without Wifi.Signal: 60 % is 2 × (dBm + 100), so −70 dBm.
    await device.publishState({ Wifi: { AP: 1, RSSI: 60 } });
    const state = await hub.next('state', (c) => c.deviceId === ID, from);
    assert.equal(state.state.signalDbm, -70);
  });

  test('a battery below the threshold is visible in the state (the hub\'s gate refuses, not the bridge)', async () => {
    device = fakeDevice({ battery: true });
    await online(device);
    const from = hub.calls.length;
    await device.publishState({ BatteryPercentage: 18 });
    const state = await hub.next('state', (c) => c.deviceId === ID && c.state.batteryPercent !== null, from);
    assert.equal(state.state.batteryPercent, 18);
    assert.equal(state.state.powerSource, 'battery');
    assert.equal(state.state.charging, false);
  });

  test('a full update: offer → downloaded → OtaUrl echoed → Upgrade 1 → restart → the new version confirms it', async () => {
    await online(device);
    await bridge.send(ID, offer('job-1'));
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
    await hub.waitFor(() => hub.lastState(ID)?.job?.phase === 'downloaded');
    assert.deepEqual(hub.lastState(ID)!.job, { jobId: 'job-1', phase: 'downloaded' });
    // Nothing reaches the device before the hub's go-ahead.
    assert.ok(!device.commands.some((c) => c.startsWith('OtaUrl') || c.startsWith('Upgrade')));

    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-1' });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing');
    const otaAt = device.commands.indexOf(`OtaUrl ${HUB_IMAGE_URL}`);
    const upgradeAt = device.commands.indexOf('Upgrade 1');
    assert.ok(otaAt >= 0 && upgradeAt > otaAt, `OtaUrl before Upgrade 1: ${device.commands.join(', ')}`);

    await device.publishUpgradeResult('Successful. Restarting');
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'rebooting');
    await device.powerOff();
    await hub.next('availability', (c) => !c.online);
    await device.powerOn('14.3.0(release-tasmota)');
    const result = await hub.next('event', (c) => c.event.type === 'result');
    assert.deepEqual(result.event, { v: 1, type: 'result', jobId: 'job-1', outcome: 'installed', firmwareVersion: '14.3.0', healthy: true, code: null, message: null });
    await hub.waitFor(() => hub.lastState(ID)?.firmwareVersion === '14.3.0');
    assert.equal(hub.lastState(ID)!.job, null);
    assert.ok(hub.calls.some((c) => c.kind === 'discovered' && c.device.firmwareVersion === '14.3.0'));
    assert.deepEqual(hub.eventLines(ID), [
      'ack job-1 accepted', 'progress job-1 downloaded', 'ack job-1 accepted', 'progress job-1 installing', 'progress job-1 rebooting', 'result job-1 installed 14.3.0',
    ]);
  });

  test('waits through the intermediate minimal image before deciding', async () => {
    await online(device);
    await installing('job-min');
    await device.powerOff();
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'rebooting');
    await device.powerOn('14.3.0(minimal)');
    await device.waitForCommand('STATUS 0');
    await settled(device);
    const from = hub.calls.length;
    assert.deepEqual(hub.lastState(ID)!.job, { jobId: 'job-min', phase: 'rebooting' });
    assert.equal(hub.lastState(ID)!.firmwareVersion, '14.2.0');
    assert.ok(!hub.events(ID).some((e) => e.type === 'result'));
    await device.powerOff();
    await hub.next('availability', (c) => !c.online, from);
    await device.powerOn('14.3.0(release-tasmota)');
    const result = await hub.next('event', (c) => c.event.type === 'result');
    assert.equal(result.event.type === 'result' && result.event.outcome, 'installed');
    // The minimal image never became the device's identity.
    assert.ok(!hub.calls.some((c) => c.kind === 'discovered' && c.device.model === 'minimal'));
  });

  test('a device that drops off mid-update and comes back with the old version: result failed', async () => {
    await online(device);
    await installing('job-2');
    await device.powerOff();
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'rebooting');
    await device.powerOn();
    const result = await hub.next('event', (c) => c.event.type === 'result');
    assert.equal(result.event.type, 'result');
    if (result.event.type !== 'result') return;
    assert.equal(result.event.outcome, 'failed');
    assert.equal(result.event.code, 'version_unchanged');
    assert.equal(result.event.firmwareVersion, '14.2.0');
    assert.match(result.event.message ?? '', /still runs 14\.2\.0/);
  });

  test('an update Tasmota reports as failed: result failed with its reason', async () => {
    await online(device);
    await installing('job-3');
    await device.publishUpgradeResult('Failed Wrong Magic Byte');
    const result = await hub.next('event', (c) => c.event.type === 'result');
    if (result.event.type !== 'result') return assert.fail('expected a result');
    assert.equal(result.event.outcome, 'failed');
    assert.equal(result.event.code, 'upgrade_failed');
    assert.match(result.event.message ?? '', /Wrong Magic Byte/);
    await hub.waitFor(() => hub.lastState(ID)?.job === null);
  });

  test('Upgrade refused by Tasmota ("1 or >… to upgrade"): result failed, nothing changed', async () => {
    await online(device);
    device.upgradeAnswer = 'refuse';
    await bridge.send(ID, offer('job-r'));
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-r' });
    const result = await hub.next('event', (c) => c.event.type === 'result');
    if (result.event.type !== 'result') return assert.fail('expected a result');
    assert.equal(result.event.code, 'upgrade_refused');
    assert.match(result.event.message ?? '', /nothing was changed/);
  });

  test('a bad payload is refused and changes nothing', async () => {
    await online(device);
    const before = hub.lastState(ID)!;
    const from = hub.calls.length;
    await device.publishRaw(`tele/${device.topic}/STATE`, 'not json {');
    await device.publishRaw(`tele/${device.topic}/STATE`, JSON.stringify({ BatteryPercentage: 'full' }));
    await device.publishRaw(`tele/${device.topic}/LWT`, 'Maybe');
    await device.publishRaw(`stat/${device.topic}/STATUS2`, JSON.stringify({ StatusFWR: { Version: 'banana' } }));
    // A good message after the bad ones: once it arrives, the bad ones have been handled.
    await device.publishState();
    await hub.next('state', (c) => c.deviceId === ID, from);
    const rejected = hub.calls.slice(from).filter((c) => c.kind === 'rejected');
    assert.equal(rejected.length, 4, JSON.stringify(rejected));
    assert.match(rejected[0]!.kind === 'rejected' ? rejected[0]!.error : '', /not valid JSON/);
    const after = hub.calls.slice(from).filter((c) => c.kind !== 'rejected');
    assert.deepEqual(after.map((c) => c.kind), ['state']);
    assert.deepEqual(hub.lastState(ID), before);
  });

  test('cancel before install: the job is forgotten and the device was never touched; cancel after install is too late', async () => {
    await online(device);
    await bridge.send(ID, offer('job-4'));
    await bridge.send(ID, { v: 1, type: 'cancel', jobId: 'job-4', message: 'Cancelled by person:owner.' });
    await hub.waitFor(() => hub.eventLines(ID).length >= 3);
    await hub.waitFor(() => hub.lastState(ID)?.job === null);
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-4' });
    await hub.waitFor(() => hub.eventLines(ID).length >= 4);
    assert.deepEqual(hub.eventLines(ID), ['ack job-4 accepted', 'progress job-4 downloaded', 'ack job-4 accepted', 'ack job-4 refused unknown_job']);
    assert.ok(!device.commands.some((c) => c.startsWith('OtaUrl') || c.startsWith('Upgrade')));

    await installing('job-5');
    await bridge.send(ID, { v: 1, type: 'cancel', jobId: 'job-5', message: 'too late' });
    await hub.next('event', (c) => c.event.type === 'ack' && c.event.code === 'cancel_too_late');
  });

  test('re-sent commands are idempotent by job id', async () => {
    await online(device);
    await bridge.send(ID, offer('job-6'));
    await bridge.send(ID, offer('job-6'));
    await bridge.send(ID, offer('job-other'));
    await hub.waitFor(() => hub.eventLines(ID).length >= 5);
    assert.deepEqual(hub.eventLines(ID), [
      'ack job-6 accepted', 'progress job-6 downloaded', 'ack job-6 accepted', 'progress job-6 downloaded', 'ack job-other refused busy',
    ]);

    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing');
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await device.publishUpgradeResult('Successful. Restarting');
    await device.powerOff();
    await hub.next('availability', (c) => !c.online);
    await device.powerOn('14.3.0(release-tasmota)');
    await hub.next('event', (c) => c.event.type === 'result');
    assert.equal(device.commands.filter((c) => c === 'Upgrade 1').length, 1, device.commands.join(', '));

    // The hub asks again after the end: the same result comes back, nothing starts.
    const from = hub.calls.length;
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await bridge.send(ID, offer('job-6'));
    const again = await hub.next('event', (c) => c.event.type === 'result', from);
    assert.equal(again.event.type === 'result' && again.event.outcome, 'installed');
    assert.equal(device.commands.filter((c) => c === 'Upgrade 1').length, 1);
  });

  test('refuses an offer for another model, a downgrade, or an address longer than Tasmota takes', async () => {
    await online(device);
    await bridge.send(ID, offer('job-m', { model: 'tasmota32' }));
    await bridge.send(ID, offer('job-d', { version: '14.1.0', releaseId: 'tasmota/tasmota/14.1.0' }));
    await bridge.send(ID, offer('job-u', { image: { url: `http://127.0.0.1:8080/firmware/${'x'.repeat(100)}`, lengthBytes: 1, sha256: 'a'.repeat(64) } }));
    await hub.waitFor(() => hub.eventLines(ID).length >= 3);
    assert.deepEqual(hub.eventLines(ID), ['ack job-m refused model_mismatch', 'ack job-d refused downgrade', 'ack job-u refused image_url_too_long']);
    assert.equal(hub.lastState(ID)!.job, null);
  });

  test('commands for a device it has not found are refused with a clear error', async () => {
    await assert.rejects(bridge.send('tasmota-nobody', offer('job-x')), (e) => isFirmwardError(e, 'not_found'));
  });

  test('an install go-ahead while the device is offline waits; the hub repeats it when the device is back', async () => {
    await online(device);
    await bridge.send(ID, offer('job-7'));
    await device.powerOff();
    await hub.next('availability', (c) => !c.online);
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-7' });
    await device.powerOn();
    const back = await hub.next('state', (c) => c.deviceId === ID, hub.calls.findIndex((c) => c.kind === 'availability' && !c.online));
    // Still "downloaded": the engine re-sends the go-ahead on seeing it.
    assert.deepEqual(back.state.job, { jobId: 'job-7', phase: 'downloaded' });
    assert.ok(!device.commands.some((c) => c.startsWith('OtaUrl')));
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-7' });
    await device.waitForCommand('Upgrade 1');
  });
});
