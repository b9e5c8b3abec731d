import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import type { PlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { RecordingHub } from '@firmward/bridge-common/testing/recording-hub.ts';
import { isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { OfferCommand, ResultEvent } from '@firmward/protocol';
import { SHELLY_STABLE_ECOSYSTEM, ShellyBridge } from '../src/shelly-bridge.ts';
import type { ShellyBridgeOptions } from '../src/shelly-bridge.ts';
import { FakeShelly } from './shelly-device.ts';
import type { ShellyDeviceOptions } from './shelly-device.ts';

const SHELLY_ID = 'shellyplus1-c4dd57877294';
const ID = `shelly-${SHELLY_ID}`;
const MODEL = 'SNSW-001X16EU';
const HUB_IMAGE_URL = 'http://127.0.0.1:8080/firmware/shelly%2FSNSW-001X16EU%2F1.5.1';

/** An offer for Shelly's stable channel release (as the hub builds it from releases()). */
function channelOffer(jobId: string, version = '1.5.0'): OfferCommand {
  return {
    v: 1, type: 'offer', jobId, releaseId: `shelly/${MODEL}/${version}`, vendor: 'shelly', model: MODEL, hardwareRevisions: ['gen2'], version,
    applicableFrom: null, applicableTo: null,
    image: { url: `http://127.0.0.1:8080/firmware/shelly%2F${MODEL}%2F${version}`, lengthBytes: 1, sha256: '0'.repeat(64) }, expectedInstallSeconds: 300,
  };
}

/** An offer for an image from the maker's signed repository, fetched from the hub. */
function repositoryOffer(jobId: string): OfferCommand {
  return {
    v: 1, type: 'offer', jobId, releaseId: `shelly/${MODEL}/1.5.1`, vendor: 'shelly', model: MODEL, hardwareRevisions: ['gen2'], version: '1.5.1',
    applicableFrom: '1.4.0', applicableTo: null,
    image: { url: HUB_IMAGE_URL, lengthBytes: 1_572_864, sha256: 'b'.repeat(64) }, expectedInstallSeconds: 300,
  };
}

function isResult(event: { type: string }): event is ResultEvent {
  return event.type === 'result';
}

describe('ShellyBridge over a real MQTT broker', { timeout: 20_000 }, () => {
  let broker: PlainBroker;
  let hub: RecordingHub;
  let bridge: ShellyBridge;
  let device: FakeShelly;
  const extra: FakeShelly[] = [];
  const clock = new ManualClock(1_000);

  function fakeDevice(overrides: Partial<ShellyDeviceOptions> = {}): FakeShelly {
    return new FakeShelly({ url: broker.url, id: SHELLY_ID, model: MODEL, gen: 2, ver: '1.4.4', name: 'Porch light', rssi: -61, stable: '1.5.0', ...overrides });
  }

  async function startBridge(options: Partial<ShellyBridgeOptions> = {}): Promise<void> {
    bridge = new ShellyBridge({ url: broker.url, clock, logger: silentLogger, devices: [SHELLY_ID], rpcSource: 'firmward-test', ...options });
    await bridge.start(hub);
  }

  /**
   * Powers the device on and waits until everything of its boot reached the hub: it has answered
   * GetStatus, then a marker the bridge refuses has come back as onRejected.
   */
  async function online(d: FakeShelly, count = 1): Promise<void> {
    await d.powerOn();
    await d.waitForRequest('Shelly.GetStatus', count);
    await settled(d);
  }

  async function settled(d: FakeShelly): Promise<void> {
    const from = hub.calls.length;
    await d.publishRaw(`${d.prefix}/events/rpc`, 'marker');
    await hub.next('rejected', (c) => c.topic === `${d.prefix}/events/rpc`, from);
  }

  /** Offer and go-ahead, up to Shelly's answer to Shelly.Update (the bridge's "installing"). */
  async function installing(offer: OfferCommand): Promise<void> {
    bridge.releases();
    await bridge.send(ID, offer);
    await bridge.send(ID, { v: 1, type: 'install', jobId: offer.jobId });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing' && c.event.jobId === offer.jobId);
  }

  beforeEach(async () => {
    broker = await startPlainBroker();
    hub = new RecordingHub();
    device = fakeDevice();
  });

  afterEach(async () => {
    await device.powerOff();
    for (const d of extra.splice(0)) await d.powerOff();
    await bridge.stop();
    await broker.stop();
  });

  test('discovers a configured device through Shelly.GetDeviceInfo and reports it online with its signal', async () => {
    await startBridge();
    await online(device);
    const found = await hub.next('discovered');
    assert.deepEqual(found.device, { id: ID, name: 'Porch light', vendor: 'shelly', model: MODEL, hardwareRevision: 'gen2', firmwareVersion: '1.4.4', powerSource: 'mains' });
    assert.equal(hub.calls.filter((c) => c.kind !== 'rejected')[0]!.kind, 'discovered');
    assert.ok(hub.calls.some((c) => c.kind === 'availability' && c.deviceId === ID && c.online));
    const state = hub.lastState(ID)!;
    assert.equal(state.signalDbm, -61);
    assert.equal(state.healthy, true);
    assert.equal(state.busy, false);
    assert.equal(state.charging, false);
    assert.equal(state.batteryPercent, null);
    assert.equal(state.job, null);
    assert.ok(bridge.owns(ID));
    assert.ok(!bridge.owns('tasmota-plug'));
    // Requests name the bridge as their source: Shelly answers on <src>/rpc.
    assert.ok(device.requests.every((r) => r.src === 'firmward-test'));
  });

  test('releases(): Shelly\'s stable channel, one release per model, newest version, with its origin; none when not allowed', async () => {
    const second = fakeDevice({ id: 'shellyplus1-0123456789ab', stable: '1.5.1', gen: 3 });
    extra.push(second);
    await startBridge({ devices: [SHELLY_ID, second.prefix] });
    await online(device);
    await online(second);
    const releases = bridge.releases();
    assert.equal(releases.length, 1);
    const release = releases[0]!;
    assert.equal(release.id, `shelly/${MODEL}/1.5.1`);
    assert.equal(release.version, '1.5.1');
    assert.deepEqual(release.hardwareRevisions, ['gen2', 'gen3']);
    assert.deepEqual(release.image, { path: `${SHELLY_STABLE_ECOSYSTEM}:${MODEL}/1.5.1`, lengthBytes: 0, sha256: '' });
    assert.equal(release.origin?.ecosystem, 'shelly-stable');
    assert.match(release.origin?.trust ?? '', /Shelly/);
    assert.ok(release.recovery.steps.length > 0);
    await bridge.stop();

    await startBridge({ stableChannel: false });
    await settled(device);
    await device.waitForRequest('Shelly.GetStatus', 2);
    assert.deepEqual(bridge.releases(), []);
  });

  test('NotifyStatus updates the signal; a battery below the threshold is visible in the state', async () => {
    device = fakeDevice({ battery: { percent: 18, external: false } });
    await startBridge();
    await online(device);
    let state = hub.lastState(ID)!;
    assert.equal(state.powerSource, 'battery');
    assert.equal(state.batteryPercent, 18);
    assert.equal(state.charging, false);

    const from = hub.calls.length;
    await device.notify('NotifyStatus', { ts: 1_773_540_100.5, wifi: { rssi: -72 }, 'devicepower:0': { external: { present: true } } });
    state = (await hub.next('state', (c) => c.deviceId === ID, from)).state;
    assert.equal(state.signalDbm, -72);
    assert.equal(state.batteryPercent, 18);
    // External power present: it is charging.
    assert.equal(state.charging, true);
  });

  test('a full update over the stable channel: Shelly.Update {stage: "stable"}, OTA progress, restart, the new version confirms it', async () => {
    await startBridge();
    await online(device);
    bridge.releases();
    await bridge.send(ID, channelOffer('job-1'));
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'downloaded');
    await hub.waitFor(() => hub.lastState(ID)?.job?.phase === 'downloaded');
    assert.ok(!device.requests.some((r) => r.method === 'Shelly.Update'), 'nothing reaches the device before the go-ahead');

    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-1' });
    await device.waitForRequest('Shelly.Update');
    assert.deepEqual(device.requests.find((r) => r.method === 'Shelly.Update')!.params, { stage: 'stable' });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'installing');
    await device.notifyEvent({ event: 'ota_begin', msg: 'Waiting for data' });
    await device.notifyEvent({ event: 'ota_progress', msg: 'Downloading', progress_percent: 42 });
    const progress = await hub.next('event', (c) => c.event.type === 'progress' && c.event.percent === 42);
    assert.equal(progress.event.type === 'progress' && progress.event.phase, 'installing');
    await device.notifyEvent({ event: 'ota_success', msg: 'Update applied, rebooting' });
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'rebooting');
    await device.powerOff();
    await hub.next('availability', (c) => !c.online);
    device.stable = null;
    await device.powerOn('1.5.0');
    const result = await hub.next('event', (c) => isResult(c.event));
    assert.deepEqual(result.event, { v: 1, type: 'result', jobId: 'job-1', outcome: 'installed', firmwareVersion: '1.5.0', healthy: true, code: null, message: null });
    await hub.waitFor(() => hub.lastState(ID)?.firmwareVersion === '1.5.0');
    assert.equal(hub.lastState(ID)!.job, null);
    assert.deepEqual(hub.eventLines(ID), [
      'ack job-1 accepted', 'progress job-1 downloaded', 'ack job-1 accepted', 'progress job-1 installing', 'progress job-1 installing',
      'progress job-1 installing', 'progress job-1 rebooting', 'result job-1 installed 1.5.0',
    ]);
  });

  test('an image from the maker\'s signed repository goes to the device as the hub\'s URL', async () => {
    await startBridge();
    await online(device);
    await installing(repositoryOffer('job-url'));
    assert.deepEqual(device.requests.find((r) => r.method === 'Shelly.Update')!.params, { url: HUB_IMAGE_URL });
  });

  test('a device that drops off mid-update and comes back with the old version: result failed', async () => {
    await startBridge();
    await online(device);
    await installing(channelOffer('job-2'));
    await device.notifyEvent({ event: 'ota_progress', progress_percent: 10 });
    await device.powerOff();
    await hub.next('event', (c) => c.event.type === 'progress' && c.event.phase === 'rebooting');
    await device.powerOn();
    const result = (await hub.next('event', (c) => isResult(c.event))).event;
    if (!isResult(result)) return assert.fail('expected a result');
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'version_unchanged');
    assert.equal(result.firmwareVersion, '1.4.4');
    assert.match(result.message ?? '', /still runs 1\.4\.4/);
  });

  test('an update Shelly reports as failed (ota_error): result failed with Shelly\'s message', async () => {
    await startBridge();
    await online(device);
    await installing(channelOffer('job-3'));
    await device.notifyEvent({ event: 'ota_error', msg: 'Image validation failed' });
    const result = (await hub.next('event', (c) => isResult(c.event))).event;
    if (!isResult(result)) return assert.fail('expected a result');
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'ota_error');
    assert.match(result.message ?? '', /Image validation failed/);
    await hub.waitFor(() => hub.lastState(ID)?.job === null);
  });

  test('Shelly.Update answered with an RPC error: result failed with Shelly\'s message, nothing changed', async () => {
    await startBridge();
    await online(device);
    device.updateAnswer = { error: { code: -114, message: 'Resource unavailable: update in progress' } };
    bridge.releases();
    await bridge.send(ID, channelOffer('job-e'));
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-e' });
    const result = (await hub.next('event', (c) => isResult(c.event))).event;
    if (!isResult(result)) return assert.fail('expected a result');
    assert.equal(result.code, 'update_refused');
    assert.match(result.message ?? '', /Resource unavailable: update in progress/);
    assert.match(result.message ?? '', /nothing was changed/);
  });

  test('a bad payload is refused and changes nothing', async () => {
    await startBridge();
    await online(device);
    const before = hub.lastState(ID)!;
    const from = hub.calls.length;
    await device.publishRaw(`${device.prefix}/events/rpc`, '{"method": ');
    await device.notify('NotifyStatus', { ts: 1, wifi: { rssi: 'strong' } });
    await device.notify('NotifyEvent', { ts: 1, events: 'ota_success' });
    await device.publishRaw(`${device.prefix}/online`, 'maybe');
    await device.publishRaw('firmward-test/rpc', JSON.stringify({ src: SHELLY_ID, result: {} }));
    await settled(device);
    const rejected = hub.calls.slice(from).filter((c) => c.kind === 'rejected');
    assert.equal(rejected.length, 6, JSON.stringify(rejected));
    assert.deepEqual(hub.calls.slice(from).filter((c) => c.kind !== 'rejected'), []);
    assert.deepEqual(hub.lastState(ID), before);
  });

  test('cancel before install: the job is forgotten and the device never asked; cancel after install is too late', async () => {
    await startBridge();
    await online(device);
    bridge.releases();
    await bridge.send(ID, channelOffer('job-4'));
    await bridge.send(ID, { v: 1, type: 'cancel', jobId: 'job-4', message: 'Cancelled by person:owner.' });
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-4' });
    await hub.waitFor(() => hub.eventLines(ID).length >= 4);
    assert.deepEqual(hub.eventLines(ID), ['ack job-4 accepted', 'progress job-4 downloaded', 'ack job-4 accepted', 'ack job-4 refused unknown_job']);
    await hub.waitFor(() => hub.lastState(ID)?.job === null);
    assert.ok(!device.requests.some((r) => r.method === 'Shelly.Update'));

    await installing(channelOffer('job-5'));
    await bridge.send(ID, { v: 1, type: 'cancel', jobId: 'job-5', message: 'too late' });
    await hub.next('event', (c) => c.event.type === 'ack' && c.event.code === 'cancel_too_late');
  });

  test('re-sent commands are idempotent by job id', async () => {
    await startBridge();
    await online(device);
    bridge.releases();
    await bridge.send(ID, channelOffer('job-6'));
    await bridge.send(ID, channelOffer('job-6'));
    await bridge.send(ID, repositoryOffer('job-other'));
    await hub.waitFor(() => hub.eventLines(ID).length >= 5);
    assert.deepEqual(hub.eventLines(ID), [
      'ack job-6 accepted', 'progress job-6 downloaded', 'ack job-6 accepted', 'progress job-6 downloaded', 'ack job-other refused busy',
    ]);
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await device.waitForRequest('Shelly.Update');
    await device.notifyEvent({ event: 'ota_success' });
    await device.powerOff();
    await hub.next('availability', (c) => !c.online);
    await device.powerOn('1.5.0');
    await hub.next('event', (c) => isResult(c.event));
    assert.equal(device.requests.filter((r) => r.method === 'Shelly.Update').length, 1);

    const from = hub.calls.length;
    await bridge.send(ID, { v: 1, type: 'install', jobId: 'job-6' });
    await bridge.send(ID, channelOffer('job-6'));
    const again = (await hub.next('event', (c) => isResult(c.event), from)).event;
    assert.equal(isResult(again) && again.outcome, 'installed');
    assert.equal(device.requests.filter((r) => r.method === 'Shelly.Update').length, 1);
  });

  test('refuses a stable-channel offer once the channel has moved on, and offers that do not fit the device', async () => {
    await startBridge();
    await online(device);
    bridge.releases();
    const from = hub.calls.length;
    await device.notify('NotifyStatus', { ts: 2, sys: { available_updates: { stable: { version: '1.5.2' } } } });
    await hub.next('state', (c) => c.deviceId === ID, from);
    await bridge.send(ID, channelOffer('job-moved'));
    await bridge.send(ID, { ...repositoryOffer('job-model'), model: 'S3SW-001X8EU' });
    await bridge.send(ID, { ...repositoryOffer('job-old'), version: '1.4.0', applicableFrom: null });
    await hub.waitFor(() => hub.eventLines(ID).length >= 3);
    assert.deepEqual(hub.eventLines(ID), ['ack job-moved refused incompatible', 'ack job-model refused model_mismatch', 'ack job-old refused downgrade']);
    assert.match(hub.events(ID)[0]!.type === 'ack' ? (hub.events(ID)[0] as { message: string }).message : '', /now offers 1\.5\.2/);
  });

  test('commands for a device it has not found are refused with a clear error; bad prefixes are refused at start', async () => {
    await startBridge();
    await assert.rejects(bridge.send('shelly-nobody', channelOffer('job-x')), (e) => isFirmwardError(e, 'not_found'));
    await bridge.stop();
    bridge = new ShellyBridge({ url: broker.url, clock, logger: silentLogger, devices: ['shellies/#'] });
    await assert.rejects(bridge.start(hub), (e) => isFirmwardError(e, 'config_invalid'));
  });
});
