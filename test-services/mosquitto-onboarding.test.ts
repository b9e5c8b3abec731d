/**
 * A real home on a real Mosquitto, through the hub's API only: the hub keeps Mosquitto's password
 * and ACL files (mqtt.mosquitto), so a device approved after enrollment logs in with the secret
 * it was issued, and a device removed loses its session and its login at once: the old secret
 * opens nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import mqtt from 'mqtt';
import { generateDeviceSecret } from '@firmward/mqtt';
import { SystemClock, silentLogger } from '@firmward/ports';
import type { EnrollmentClaimAnswer } from '@firmward/protocol';
import { loadConfig } from '../apps/hub/src/config.ts';
import { startHub } from '../apps/hub/src/hub.ts';
import type { EnrollmentCreated } from '../apps/hub/src/onboarding/types.ts';
import { until } from '../apps/hub/test/fixtures/until.ts';
import { startMosquitto } from './mosquitto-broker.ts';

const TOKEN = 'mosquitto-onboarding-owner-token-1';
const stops: (() => Promise<void>)[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function logIn(url: string, deviceId: string, secret: string): Promise<mqtt.MqttClient | null> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { clientId: deviceId, username: deviceId, password: secret, reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 4 });
    client.once('connect', () => resolve(client));
    client.once('error', () => {
      client.end(true);
      resolve(null);
    });
  });
}

test('enrolled, approved, removed: the hub-kept Mosquitto files follow at once', { timeout: 90_000 }, async () => {
  const hubLogin = { username: 'hub', password: generateDeviceSecret() };
  const broker = await startMosquitto({ hub: hubLogin, devices: [] });
  stops.push(() => broker.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-mosquitto-onboarding-'));
  dirs.push(dir);
  const loaded = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--tick-ms', '100'],
    env: { FIRMWARD_MQTT_URL: broker.url, FIRMWARD_MQTT_PASSWORD: hubLogin.password }, readFile: () => { throw new Error('no config file'); },
  });
  const config = { ...loaded, mqtt: { ...loaded.mqtt, mosquitto: { passwordFile: broker.files.passwords, aclFile: broker.files.acl, pidFile: broker.files.pid, reloadCommand: [] } } };
  const hub = await startHub(config, { clock: new SystemClock(), log: silentLogger, ownerToken: TOKEN });
  stops.push(() => hub.stop());
  const api = async <T>(method: string, route: string, body?: unknown, auth = true): Promise<{ status: number; json: T }> => {
    const res = await fetch(`${hub.baseUrl}${route}`, {
      method, headers: { 'content-type': 'application/json', ...(auth && { authorization: `Bearer ${TOKEN}` }) }, ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: (text === '' ? null : JSON.parse(text)) as T };
  };

  await api('POST', '/api/v1/homes', { name: 'Flat', timeZone: 'UTC' });
  const code = (await api<EnrollmentCreated>('POST', '/api/v1/homes/flat/enrollments', {})).json.code;
  const device = { id: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' };
  const claim = await api<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code, device }, false);
  assert.equal(claim.status, 202);
  assert.equal(claim.json.broker.url, broker.url, 'the enrolling device is given the external broker');
  assert.equal(await logIn(broker.url, device.id, claim.json.secret), null, 'not before approval');
  assert.equal((await api('POST', `/api/v1/pending-devices/${claim.json.claimId}/approve`, {})).status, 200);

  // The reload is Mosquitto's to do: poll until the new password file is in force.
  const client = await until('Mosquitto to let the approved device in', () => logIn(broker.url, device.id, claim.json.secret));
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  assert.equal((await api('DELETE', `/api/v1/devices/${device.id}`)).status, 200);
  await closed;
  client.end(true);
  assert.equal(await logIn(broker.url, device.id, claim.json.secret), null, 'the old secret opens nothing');
  assert.equal(await hub.store.getDevice(device.id), null);
});
