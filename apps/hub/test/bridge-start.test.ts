/**
 * A bridge whose broker is down or refuses its login when the hub starts does not stop the hub
 * (the issue: a saved bridge with a dead broker killed `npm start` after ~30 s). The hub starts
 * and answers; the bridge shows why it is not running and when it tries again; once its broker
 * is there it comes up by itself and its devices appear; and hub.stop() does not wait for it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { AuthenticateError } from 'aedes';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import { SystemClock, silentLogger } from '@firmward/ports';
import { freePort } from '../../../packages/ports/testing/free-port.ts';
import { FakeTasmota } from '../../../adapters/tasmota/test/tasmota-device.ts';
import type { BridgeView } from '../src/bridge-settings.ts';
import { loadConfig } from '../src/config.ts';
import type { HubConfig } from '../src/config.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import { until } from './fixtures/until.ts';

const stops: (() => Promise<void>)[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKEN = 'bridge-start-test-owner-token-0123';
const HOME = 'flat';

function hubConfig(): HubConfig {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-bridge-start-'));
  dirs.push(dir);
  return loadConfig({
    argv: ['--data-dir', path.join(dir, 'hub'), '--port', '0', '--mqtt-port', '0', '--tick-ms', '100'],
    env: {}, readFile: () => { throw new Error('no config file'); },
  });
}

async function start(config: HubConfig): Promise<RunningHub> {
  const hub = await startHub(config, {
    clock: new SystemClock(), log: silentLogger, ownerToken: TOKEN,
    seed: async (store) => {
      await store.putHome({
        id: HOME, name: 'Flat', halt: null,
        settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 1, silenceTimeoutSeconds: 60 },
      });
    },
  });
  stops.push(() => hub.stop());
  return hub;
}

async function bridge(hub: RunningHub, name: string): Promise<BridgeView> {
  const res = await fetch(`${hub.baseUrl}/api/v1/bridges`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  return ((await res.json()) as BridgeView[]).find((b) => b.name === name)!;
}

const inState = (hub: RunningHub, name: string, state: BridgeView['status']['state']) =>
  until(`the ${name} bridge to be ${state}`, async () => {
    const b = await bridge(hub, name);
    return b.status.state === state ? b : null;
  });

test('a saved Tasmota bridge whose broker is down: the hub starts, the bridge says why, and comes up by itself once the broker is there', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const config = hubConfig();
  // Saved from the dashboard in an earlier run (bridge-settings.ts), as in the issue.
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(path.join(config.dataDir, 'bridges.json'), JSON.stringify({ tasmota: { enabled: true, url, homeId: HOME } }));

  const hub = await start(config);
  const health = await fetch(`${hub.baseUrl}/api/v1/health`);
  assert.equal(health.status, 200);
  assert.match(String(((await health.json()) as { gateway: unknown }).gateway), /tasmota/, 'turned on, though not running yet');

  const retrying = await inState(hub, 'tasmota', 'retrying');
  assert.equal(retrying.enabled, true);
  const quoted = url.replaceAll('.', '\\.').replaceAll('/', '\\/');
  assert.match(retrying.status.message ?? '', new RegExp(`^The tasmota bridge did not start: The Tasmota bridge could not reach its MQTT broker at ${quoted}: connection refused; Firmward tries again in \\d+ s\\.$`));
  assert.equal(typeof retrying.status.nextAttemptAt, 'number');

  // Turned on by a person meanwhile: the answer comes at once, as before — left off, with the reason.
  const dead = `mqtt://127.0.0.1:${await freePort()}`;
  const patched = await fetch(`${hub.baseUrl}/api/v1/bridges/zigbee2mqtt`, {
    method: 'PATCH', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ enabled: true, url: dead, homeId: HOME }),
  });
  assert.equal(patched.status, 502);
  assert.match(((await patched.json()) as { error: { message: string } }).error.message, /^The zigbee2mqtt bridge did not start: .*: connection refused\.$/);
  const z2m = await bridge(hub, 'zigbee2mqtt');
  assert.deepEqual([z2m.enabled, z2m.status], [false, { state: 'off', message: null, nextAttemptAt: null }]);

  // The broker comes up where the bridge looks for it.
  const broker = await startPlainBroker({}, { port });
  stops.push(() => broker.stop());
  const running = await inState(hub, 'tasmota', 'running');
  assert.deepEqual(running.status, { state: 'running', message: null, nextAttemptAt: null });

  const device = new FakeTasmota({ url, topic: 'tasmota_4D5E6F', mac: 'A4CF124D5E6F', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX', discovery: true, wifi: { Signal: -45 } });
  stops.push(() => device.powerOff());
  await device.powerOn();
  const found = await until('the device to join the home', () => hub.store.getDevice('tasmota-tasmota_4D5E6F'));
  assert.equal(found.homeId, HOME);
});

test('a Zigbee2MQTT bridge whose login is refused and a Home Assistant publisher whose broker is down: both retry with their reasons, and hub.stop() does not wait for them', { timeout: 60_000 }, async () => {
  let logins = 0;
  const locked = await startPlainBroker({
    authenticate: (_client, _username, _password, callback) => {
      logins++;
      // Return code 5: "not authorized", the CONNACK a wrong password gets.
      const refusal: AuthenticateError = Object.assign(new Error('bad login'), { returnCode: 5 });
      callback(refusal, false);
    },
  });
  stops.push(() => locked.stop());
  const haPort = await freePort();
  const loaded = hubConfig();
  const config: HubConfig = {
    ...loaded,
    bridges: {
      ...loaded.bridges,
      zigbee2mqtt: { ...loaded.bridges.zigbee2mqtt, enabled: true, url: locked.url, username: 'firmward', password: 'wrong', homeId: HOME },
      homeAssistant: { ...loaded.bridges.homeAssistant, enabled: true, url: `mqtt://127.0.0.1:${haPort}` },
    },
  };

  const hub = await start(config);
  assert.equal((await fetch(`${hub.baseUrl}/api/v1/health`)).status, 200);
  const z2m = await inState(hub, 'zigbee2mqtt', 'retrying');
  assert.match(z2m.status.message ?? '', /^The zigbee2mqtt bridge did not start: Zigbee2MQTT's MQTT broker refused Firmward's login; check the bridge's MQTT user name and password; Firmward tries again in \d+ s\.$/);
  const ha = await inState(hub, 'homeAssistant', 'retrying');
  assert.match(ha.status.message ?? '', /could not reach the MQTT broker at mqtt:\/\/127\.0\.0\.1:\d+ to publish to Home Assistant: connection refused; Firmward tries again in \d+ s\.$/);

  // Stopped in the middle of a pause of some seconds (the third one, 4 s less jitter).
  const pausing = await until('a pause of some seconds', async () => {
    const b = await bridge(hub, 'zigbee2mqtt');
    return b.status.state === 'retrying' && b.status.nextAttemptAt !== null && b.status.nextAttemptAt - Date.now() > 2_500 ? b : null;
  });
  const nextAttemptAt = pausing.status.nextAttemptAt!;
  const first = await Promise.race([hub.stop().then(() => 'stopped'), sleep(nextAttemptAt - Date.now()).then(() => 'the pause ended')]);
  assert.equal(first, 'stopped', 'hub.stop() does not wait for the next attempt');
  const attempts = logins;
  await sleep(Math.max(0, nextAttemptAt - Date.now()) + 500);
  assert.equal(logins, attempts, 'no attempt after the hub stopped');
});
