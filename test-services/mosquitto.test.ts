/**
 * The native protocol through a real Mosquitto 2 (DESIGN, scale-out: "an external MQTT broker
 * with per-device credentials and topic ACLs"), configured with the files mosquittoConfig and
 * mosquittoAclFile write and a password file from mosquitto_passwd:
 *  (a) the gateway and two device clients: delivery, commands only to the addressed device, a
 *      device's publish to another device's topics dropped by the broker, the last will;
 *  (b) a whole update, hub in-process with its external-broker login (mqtt.url, mqtt.username,
 *      mqtt.password), one simulated device (the real agent) on the real clock.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync } from 'mqtt';
import { isFirmwardError } from '@firmward/core';
import { MqttAgentTransport } from '@firmward/agent';
import { MqttDeviceGateway, connectDevice, generateDeviceSecret } from '@firmward/mqtt';
import type { DeviceConnection } from '@firmward/mqtt';
import { ManualClock, SystemClock, consoleLogger } from '@firmward/ports';
import { deviceTopics, encode } from '@firmward/protocol';
import type { Command, OfferCommand } from '@firmward/protocol';
import { SeededRandom, createSimulatedDevice } from '@firmward/simulator';
import type { SimulatedDevice } from '@firmward/simulator';
import { RecordingHandler, ackEvent, recordingLogger, sampleState } from '../adapters/mqtt/test/helpers.ts';
import { loadConfig } from '../apps/hub/src/config.ts';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';
import { FLEET_TARGET_VERSION, fleetDevices, publishFleetRelease, seedFleet } from '../apps/hub/test/fixtures/fleet-fixture.ts';
import { startMosquitto } from './mosquitto-broker.ts';
import type { RunningMosquitto } from './mosquitto-broker.ts';

const A = 'plug-a';
const B = 'plug-b';
/** The one device of part (b), as fleet-fixture.ts makes it. */
const UPDATED_PROFILE = fleetDevices({ homes: 1, devicesPerHome: 1 })[0]!.profile;
const UPDATED = UPDATED_PROFILE.identity.deviceId;

const hubLogin = { username: 'hub', password: generateDeviceSecret() };
const secrets = new Map([A, B, UPDATED].map((id) => [id, generateDeviceSecret()]));

let broker: RunningMosquitto;
before(async () => {
  broker = await startMosquitto({ hub: hubLogin, devices: [...secrets].map(([username, password]) => ({ username, password })) });
});
after(async () => {
  await broker.stop();
});

function offer(jobId: string): OfferCommand {
  return {
    v: 1, type: 'offer', jobId, releaseId: 'acme/plug-s/1.3.0', vendor: 'acme', model: 'plug-s', hardwareRevisions: ['r2'],
    version: '1.3.0', applicableFrom: '1.0.0', applicableTo: null,
    image: { url: 'http://127.0.0.1:8080/firmware/acme/plug-s/1.3.0', lengthBytes: 1024, sha256: 'a'.repeat(64) },
    expectedInstallSeconds: 120,
  };
}

/** Every command a device receives, and a wait for the first one that matches. */
function inbox(device: DeviceConnection): { commands: Command[]; next(match: (c: Command) => boolean): Promise<Command> } {
  const commands: Command[] = [];
  const waiters: { match: (c: Command) => boolean; resolve: (c: Command) => void }[] = [];
  device.onCommand((command) => {
    commands.push(command);
    for (const w of waiters.splice(0)) if (w.match(command)) w.resolve(command); else waiters.push(w);
  });
  return {
    commands,
    next: (match) => {
      const seen = commands.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

describe('the gateway and two devices through Mosquitto', { timeout: 60_000 }, () => {
  const handler = new RecordingHandler();
  let gateway: MqttDeviceGateway;
  let a: DeviceConnection;
  let b: DeviceConnection;

  before(async () => {
    gateway = new MqttDeviceGateway({ url: broker.url, ...hubLogin, clock: new ManualClock(0), logger: recordingLogger() });
    await gateway.start(handler);
    a = await connectDevice({ url: broker.url, deviceId: A, password: secrets.get(A)!, logger: recordingLogger() });
    b = await connectDevice({ url: broker.url, deviceId: B, password: secrets.get(B)!, reconnectPeriodMs: 200, logger: recordingLogger() });
    await handler.waitFor((calls) => [A, B].every((id) => calls.some((c) => c.kind === 'availability' && c.deviceId === id && c.online)));
  });
  after(async () => {
    await a.close();
    await b.close();
    await gateway.stop();
  });

  test('no login without the right password: anonymous and wrong secrets are refused', async () => {
    await assert.rejects(connectAsync(broker.url, { clientId: 'anonymous-1', reconnectPeriod: 0, connectTimeout: 10_000 }), /Not authorized/i);
    await assert.rejects(connectDevice({ url: broker.url, deviceId: A, password: 'wrong', logger: recordingLogger() }), (e) => isFirmwardError(e, 'unauthorized'));
    await assert.rejects(connectDevice({ url: broker.url, deviceId: 'stranger', password: secrets.get(A)!, logger: recordingLogger() }), (e) => isFirmwardError(e, 'unauthorized'));
    const intruder = new MqttDeviceGateway({ url: broker.url, username: hubLogin.username, password: 'wrong', clock: new ManualClock(0), logger: recordingLogger(), startTimeoutMs: 10_000 });
    await assert.rejects(intruder.start(new RecordingHandler()), (e) => isFirmwardError(e, 'unauthorized'));
  });

  test('state and events reach the hub, each under the device that sent them', async () => {
    const from = handler.calls.length;
    await a.publishState(sampleState({ firmwareVersion: '1.2.0' }));
    await b.publishEvent(ackEvent('job-b-1'));
    await handler.waitFor((calls) => calls.slice(from).filter((c) => c.kind === 'state' || c.kind === 'event').length >= 2);
    const got = handler.calls.slice(from).flatMap((c) => {
      if (c.kind === 'state') return [`state ${c.deviceId} ${c.state.firmwareVersion}`];
      if (c.kind === 'event') return [`event ${c.deviceId} ${c.event.type} ${c.event.jobId}`];
      return [];
    });
    assert.deepEqual(got.sort(), ['event plug-b ack job-b-1', 'state plug-a 1.2.0']);
  });

  test('a command reaches only the device it is addressed to; a device cannot listen in on another', async () => {
    const inboxA = inbox(a);
    const inboxB = inbox(b);
    const overheard: string[] = [];
    b.mqtt.on('message', (topic) => overheard.push(topic));
    // Mosquitto 2.0 may grant the subscription itself: it checks read access on every message it
    // would deliver, so what counts is that nothing arrives.
    await b.mqtt.subscribeAsync(deviceTopics(A).command, { qos: 1 });

    await gateway.send(A, offer('job-a-1'));
    // Sent after A's on the same hub connection: once B has it, A's would have reached B too.
    await gateway.send(B, { v: 1, type: 'install', jobId: 'job-b-2' });
    assert.deepEqual(await inboxA.next((c) => c.jobId === 'job-a-1'), offer('job-a-1'));
    await inboxB.next((c) => c.jobId === 'job-b-2');
    assert.deepEqual(inboxB.commands.map((c) => c.jobId), ['job-b-2']);
    assert.deepEqual(overheard, [deviceTopics(B).command]);
    assert.deepEqual(inboxA.commands.map((c) => c.jobId), ['job-a-1']);
  });

  test('a device publishing on another device\'s topics, or a command, is dropped by Mosquitto: the hub never sees it', async () => {
    const inboxA = inbox(a);
    const inboxB = inbox(b);
    const from = handler.calls.length;
    const forged = sampleState({ firmwareVersion: '6.6.6' });
    const payload = encode(forged);
    // Straight on the MQTT client: connectDevice itself only ever publishes on its own topics.
    // QoS 1 is acknowledged either way (MQTT 3.1.1 lets a broker drop a refused publish silently).
    await a.mqtt.publishAsync(deviceTopics(B).state, payload, { qos: 1, retain: true });
    await a.mqtt.publishAsync(deviceTopics(B).availability, encode({ v: 1, online: false }), { qos: 1, retain: true });
    await a.mqtt.publishAsync(deviceTopics(B).event, encode(ackEvent('forged-job')), { qos: 1 });
    await a.mqtt.publishAsync(deviceTopics(B).command, encode({ v: 1, type: 'install', jobId: 'forged-install' }), { qos: 1 });
    await a.mqtt.publishAsync(deviceTopics(A).command, encode({ v: 1, type: 'install', jobId: 'self-install' }), { qos: 1 });
    // Then something A may say, on the same connection: when the hub has it, it would have had the forgeries.
    await a.publishState(sampleState({ firmwareVersion: '1.2.1' }));
    await handler.waitFor((calls) => calls.slice(from).some((c) => c.kind === 'state' && c.deviceId === A && c.state.firmwareVersion === '1.2.1'));
    // And B's own command, sent by the hub after all that: B got nothing else in between.
    await gateway.send(B, { v: 1, type: 'cancel', jobId: 'job-b-3', message: 'Not now.' });
    await inboxB.next((c) => c.jobId === 'job-b-3');

    const seen = handler.calls.slice(from).map((c) => `${c.kind} ${c.deviceId ?? '?'}`);
    assert.deepEqual(seen, [`state ${A}`], 'the hub should hear only plug-a\'s own state');
    assert.deepEqual(inboxB.commands.map((c) => c.jobId), ['job-b-3']);
    assert.deepEqual(inboxA.commands, [], 'a device may not send commands, not even to itself');

    // Nothing was retained on B's topics either: a hub connecting now gets only B's own retained state.
    const late = new RecordingHandler();
    const lateGateway = new MqttDeviceGateway({ url: broker.url, ...hubLogin, clock: new ManualClock(0), logger: recordingLogger() });
    await lateGateway.start(late);
    try {
      await late.waitFor((calls) => calls.some((c) => c.kind === 'availability' && c.deviceId === B));
      await sleep(200);
      assert.ok(!late.calls.some((c) => c.kind === 'state' && c.state.firmwareVersion === '6.6.6'), 'the forged state must not be retained');
      assert.deepEqual(late.calls.filter((c) => c.kind === 'availability' && c.deviceId === B).map((c) => c.kind === 'availability' && c.online), [true]);
    } finally {
      await lateGateway.stop();
    }
  });

  test('a dropped connection: Mosquitto publishes the last will, the hub hears "offline", then "online" after the reconnect', async () => {
    const from = handler.calls.length;
    b.mqtt.stream.destroy();
    await handler.waitFor((calls) => calls.slice(from).some((c) => c.kind === 'availability' && c.deviceId === B && c.online));
    const availability = handler.calls.slice(from).flatMap((c) => (c.kind === 'availability' && c.deviceId === B ? [c.online] : []));
    assert.deepEqual(availability, [false, true]);
    // Still listening to its own commands after the reconnect.
    const inboxB = inbox(b);
    await gateway.send(B, { v: 1, type: 'install', jobId: 'job-b-after-reconnect' });
    await inboxB.next((c) => c.jobId === 'job-b-after-reconnect');
  });
});

describe('a whole update through Mosquitto', { timeout: 120_000 }, () => {
  let dataDir: string;
  let hub: RunningHub | null = null;
  let device: SimulatedDevice | null = null;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'firmward-hub-mosquitto-'));
  });
  after(async () => {
    await device?.stop();
    await hub?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('the hub logs in as its configured user; the device ends on the new version and the job succeeds', async () => {
    // The same path a user takes: flags and environment through the one config loader.
    const config = loadConfig({
      argv: ['--data-dir', dataDir, '--port', '0', '--mqtt-url', broker.url, '--mqtt-username', hubLogin.username, '--tick-ms', '200', '--offer-resend-seconds', '2'],
      env: { FIRMWARD_MQTT_PASSWORD: hubLogin.password },
      readFile: () => {
        throw new Error('no config file in this test');
      },
    });
    const clock = new SystemClock();
    // Errors only: the retained state of part (a)'s devices, unknown to this hub, is refused with a warning.
    const log = consoleLogger('error', 'hub');
    const maker = await publishFleetRelease(path.join(dataDir, 'repository'));
    hub = await startHub({ ...config, repositories: [maker.config] }, {
      clock, log, ownerToken: 'mosquitto-test-owner-token-0123',
      // With an external broker the device's secret is in Mosquitto's password file.
      seed: async (store) => {
        await seedFleet(store, { homes: 1, devicesPerHome: 1 }, { soakSeconds: 2, silenceTimeoutSeconds: 60 }, (id) => secrets.get(id)!);
      },
    });
    assert.equal(hub.mqttUrl, broker.url, 'the hub must use the external broker, not start its own');

    const url = broker.url;
    device = createSimulatedDevice(UPDATED_PROFILE, {
      clock, random: new SeededRandom(1), log: log.child(UPDATED),
      agentConfig: { stateReportIntervalMs: 1000, downloadRetryDelayMs: 1000 },
      connect: (identity) => new MqttAgentTransport({ url, deviceId: identity.deviceId, password: secrets.get(identity.deviceId)!, clock, logger: log.child(identity.deviceId) }),
    });
    await device.start();

    const running = hub;
    const deadline = Date.now() + 90_000;
    for (;;) {
      const jobs = await running.store.listJobs({ deviceId: UPDATED });
      const failed = jobs.find((j) => j.state === 'failed' || j.state === 'cancelled');
      if (failed) assert.fail(`the update ended ${failed.state}: ${failed.reasons.map((r) => r.message).join(' ')}`);
      if (jobs.some((j) => j.state === 'succeeded')) break;
      if (Date.now() > deadline) {
        assert.fail(`no success within 90 s; jobs: ${jobs.map((j) => j.state).join(', ') || 'none'}; device runs ${String(device.runningVersion)}\n${broker.log().split('\n').slice(-30).join('\n')}`);
      }
      await sleep(200);
    }
    const jobs = await running.store.listJobs({ deviceId: UPDATED });
    assert.deepEqual(jobs.map((j) => [j.state, j.targetVersion]), [['succeeded', FLEET_TARGET_VERSION]]);
    assert.equal(device.runningVersion, FLEET_TARGET_VERSION, 'the device itself runs the new version');
    assert.equal((await running.store.getDevice(UPDATED))?.firmwareVersion, FLEET_TARGET_VERSION, 'the hub recorded what the device reported');
    const history = await running.store.listEvents({ jobId: jobs[0]!.id, limit: 100 });
    assert.deepEqual(history.filter((e) => e.to === 'failed'), []);
  });
});
