/**
 * MosquittoFilesAccess (apps/hub/src/broker-access.ts) against a real Mosquitto 2: the hub writes
 * the password and ACL files from the store and sends SIGHUP to the pid in Mosquitto's pid_file.
 *  - The files the hub writes are what Mosquitto reads: our `$7$` hashes let the hub and the
 *    devices in, and a hash from the real `mosquitto_passwd -b` verifies with our verifySecret.
 *  - Revoking or rotating a device's credential in the store and calling credentialsChanged is in
 *    force at once: Mosquitto, reloading, closes the device's open session (it checks every
 *    connected client's password again), the old secret is refused, and nothing sent with it
 *    reaches the hub.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { connectDevice, generateDeviceSecret, hashDeviceSecret, hashSecret, verifySecret } from '@firmward/mqtt';
import type { DeviceConnection } from '@firmward/mqtt';
import { deviceTopics, encode } from '@firmward/protocol';
import { recordingLogger, sampleState } from '../adapters/mqtt/test/helpers.ts';
import { MosquittoFilesAccess } from '../apps/hub/src/broker-access.ts';
import { startMosquitto } from './mosquitto-broker.ts';
import type { RunningMosquitto } from './mosquitto-broker.ts';

const A = 'plug-a';
const B = 'plug-b';
/** A device whose password line was made by mosquitto_passwd itself. */
const MADE_BY_MOSQUITTO = 'plug-m';
const OLD_FORM = 'plug-old';

const hubLogin = { username: 'hub', password: generateDeviceSecret() };
const secrets = new Map([A, B, MADE_BY_MOSQUITTO, OLD_FORM].map((id) => [id, generateDeviceSecret()]));

/** The store's credentials, as the test changes them. */
const stored = new Map<string, string>();
const store = {
  listDeviceSecrets: () => Promise.resolve([...stored].map(([deviceId, secretHash]) => ({ deviceId, secretHash }))),
};

/** Polls until `check` answers something; fails with `what` after the deadline (no timed assertion). */
async function until<T>(what: string, check: () => Promise<T | null>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** One login attempt that never retries: the connected client, or the CONNACK return code. */
async function tryLogin(url: string, clientId: string, username: string, password: string): Promise<MqttClient | number> {
  try {
    return await connectAsync(url, { protocolVersion: 4, clientId, username, password, reconnectPeriod: 0, connectTimeout: 10_000 });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    throw error;
  }
}

/** Logs in as soon as the reloaded files let it (Mosquitto applies SIGHUP in its own loop). */
async function loginOnceReloaded(url: string, clientId: string, username: string, password: string): Promise<MqttClient> {
  return until(`Mosquitto lets ${username} in`, async () => {
    const result = await tryLogin(url, clientId, username, password);
    return typeof result === 'number' ? null : result;
  });
}

describe('the hub keeps Mosquitto\'s files: credentials in force at once', { timeout: 90_000 }, () => {
  let broker: RunningMosquitto;
  let access: MosquittoFilesAccess;
  const log = recordingLogger();
  let hub: MqttClient;
  let hubClosed = false;
  /** What the hub user's subscriber got: "<device> <kind> <payload summary>". */
  const heard: string[] = [];
  const devices: DeviceConnection[] = [];
  const clients: MqttClient[] = [];
  /** plug-m's line as mosquitto_passwd wrote it. */
  let madeByMosquitto = '';

  before(async () => {
    // Mosquitto starts from mosquitto_passwd's own file (the hub and plug-m); the hub then
    // replaces both files with its own and makes it reload.
    broker = await startMosquitto({ hub: hubLogin, devices: [{ username: MADE_BY_MOSQUITTO, password: secrets.get(MADE_BY_MOSQUITTO)! }] });
    const made = new Map((await readFile(broker.files.passwords, 'utf8')).trim().split('\n').map((line) => {
      const at = line.indexOf(':');
      return [line.slice(0, at), line.slice(at + 1)] as const;
    }));
    madeByMosquitto = made.get(MADE_BY_MOSQUITTO)!;
    stored.set(MADE_BY_MOSQUITTO, madeByMosquitto);
    stored.set(A, await hashDeviceSecret(secrets.get(A)!));
    stored.set(B, await hashDeviceSecret(secrets.get(B)!));
    stored.set(OLD_FORM, await hashSecret(secrets.get(OLD_FORM)!, { n: 1024, r: 8, p: 1 }));
    access = new MosquittoFilesAccess({
      store, passwordFile: broker.files.passwords, aclFile: broker.files.acl, hubUser: hubLogin.username, hubPassword: hubLogin.password,
      pidFile: broker.files.pid, reloadCommand: [], log,
    });
    await access.start();
  });
  after(async () => {
    await Promise.all(devices.map((d) => d.mqtt.endAsync(true)));
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await hub?.endAsync(true);
    await broker?.stop();
  });

  test('a hash made by the real mosquitto_passwd -b verifies with verifySecret', async () => {
    assert.match(madeByMosquitto, /^\$7\$\d+\$/);
    assert.equal(await verifySecret(secrets.get(MADE_BY_MOSQUITTO)!, madeByMosquitto), true);
    assert.equal(await verifySecret(secrets.get(A)!, madeByMosquitto), false);
    // The hub copied it into its own file as it was (it logs in: see the next test).
    assert.ok((await readFile(broker.files.passwords, 'utf8')).includes(`${MADE_BY_MOSQUITTO}:${madeByMosquitto}\n`));
  });

  test('the files the hub wrote are what Mosquitto checks: our $7$ hashes let the hub and the devices in; the old form is left out', async () => {
    hub = await loginOnceReloaded(broker.url, 'hub/access-test', hubLogin.username, hubLogin.password);
    hub.on('close', () => (hubClosed = true));
    hub.on('message', (topic, payload) => heard.push(`${topic.split('/')[3]} ${topic.split('/')[4]} ${payload.toString('utf8')}`));
    await hub.subscribeAsync([`firmward/v1/d/+/state`, `firmward/v1/d/+/availability`], { qos: 1 });
    for (const id of [A, B, MADE_BY_MOSQUITTO]) {
      devices.push(await connectDevice({ url: broker.url, deviceId: id, password: secrets.get(id)!, reconnectPeriodMs: 100, logger: recordingLogger() }));
    }
    assert.equal(await tryLogin(broker.url, OLD_FORM, OLD_FORM, secrets.get(OLD_FORM)!), 5, 'a scrypt credential cannot be in Mosquitto\'s file');
    const warning = log.lines.find((l) => l.level === 'warn');
    assert.match(warning?.message ?? '', /rotate its secret/);
    assert.deepEqual(warning?.detail?.deviceIds, [OLD_FORM]);

    await devices[0]!.publishState(sampleState({ firmwareVersion: '1.0.0' }));
    await until('the hub heard plug-a', () => Promise.resolve(heard.some((h) => h.startsWith(`${A} state`) && h.includes('"1.0.0"')) || null));
  });

  test('revoked: Mosquitto closes the open session at the reload, refuses the old secret, and nothing sent with it reaches the hub', async () => {
    const [a, b] = devices as [DeviceConnection, DeviceConnection];
    let aClosed = false;
    a.mqtt.on('close', () => (aClosed = true));

    stored.delete(A);
    await access.credentialsChanged(A);
    await until('Mosquitto closed plug-a\'s session', () => Promise.resolve(aClosed || null));
    assert.equal(await tryLogin(broker.url, A, A, secrets.get(A)!), 5);
    // Queued on the closed client: it could only go out on a connection Mosquitto no longer allows.
    a.mqtt.publish(deviceTopics(A).state, encode(sampleState({ firmwareVersion: '6.6.6' })), { qos: 1, retain: true });
    assert.equal(await tryLogin(broker.url, A, A, secrets.get(A)!), 5);

    // Everyone else kept their session; what B sends after all that arrives, and A's never did.
    assert.equal(b.mqtt.connected, true);
    assert.equal(hubClosed, false, 'the hub\'s session survives the reload');
    await b.publishState(sampleState({ firmwareVersion: '2.0.0' }));
    await until('the hub heard plug-b', () => Promise.resolve(heard.some((h) => h.startsWith(`${B} state`) && h.includes('"2.0.0"')) || null));
    assert.ok(!heard.some((h) => h.includes('"6.6.6"')), 'nothing plug-a sent after the revocation reached the hub');
    // Unlike the embedded broker, Mosquitto 2.0.11 does not publish the last will of a client it
    // throws off at a reload: plug-a's retained availability still says online. (Had it sent the
    // will, it would have reached the hub before plug-b's state, which came later.) The hub must
    // not take "online" on Mosquitto for a device it revoked.
    assert.deepEqual(heard.filter((h) => h.startsWith(`${A} availability`)), [`${A} availability {"v":1,"online":true}`]);
  });

  test('rotated: the session opened with the old secret is closed too, the old secret is refused, the new one works', async () => {
    const b = devices[1]!;
    let bClosed = false;
    b.mqtt.on('close', () => (bClosed = true));
    const rotated = generateDeviceSecret();
    stored.set(B, await hashDeviceSecret(rotated));
    await access.credentialsChanged(B);
    await until('Mosquitto closed plug-b\'s session', () => Promise.resolve(bClosed || null));
    assert.equal(await tryLogin(broker.url, `${B}-old`, B, secrets.get(B)!), 5);
    const renewed = await tryLogin(broker.url, `${B}-new`, B, rotated);
    assert.notEqual(typeof renewed, 'number', 'the new secret logs in');
    if (typeof renewed !== 'number') clients.push(renewed);
    assert.equal(devices[2]!.mqtt.connected, true, 'plug-m, untouched, is still connected');
    assert.equal(hubClosed, false);
  });

  test('a credential changed through another hub instance (only the shared store knows): resync brings it to the broker', async () => {
    const m = devices[2]!;
    let mClosed = false;
    m.mqtt.on('close', () => (mClosed = true));
    stored.delete(MADE_BY_MOSQUITTO);
    await access.resync();
    await until('Mosquitto closed plug-m\'s session', () => Promise.resolve(mClosed || null));
    assert.equal(await tryLogin(broker.url, MADE_BY_MOSQUITTO, MADE_BY_MOSQUITTO, secrets.get(MADE_BY_MOSQUITTO)!), 5);
  });
});
