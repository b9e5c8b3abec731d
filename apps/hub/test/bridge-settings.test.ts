/**
 * Bridges set from the dashboard's API while the hub runs: turned on, its devices join the chosen
 * home; not turned off while one of its devices installs (the hub would lose sight of it); turned
 * off, its devices are out of reach and nothing is sent to them; kept across a restart, without
 * any password in the file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import { SystemClock, silentLogger } from '@firmward/ports';
import { FakeTasmota } from '../../../adapters/tasmota/test/tasmota-device.ts';
import { loadConfig } from '../src/config.ts';
import type { HubConfig } from '../src/config.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import { until } from './fixtures/until.ts';

const stops: (() => Promise<void>)[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKEN = 'bridge-settings-test-owner-token-01';


/** The hub's API as the dashboard calls it, with the owner token. */
function apiOf(hub: () => RunningHub) {
  return async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${hub().baseUrl}${p}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() as Record<string, unknown> & { error?: { code: string; message: string } } };
  };
}

async function start(config: HubConfig, seed: boolean): Promise<RunningHub> {
  const hub = await startHub(config, {
    clock: new SystemClock(), log: silentLogger, ownerToken: TOKEN,
    ...(seed && {
      seed: async (store) => {
        await store.putHome({
          id: 'flat', name: 'Flat', halt: null,
          settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 1, silenceTimeoutSeconds: 60 },
        });
      },
    }),
  });
  stops.push(() => hub.stop());
  return hub;
}

test('a bridge turned on, refused off while its device installs, turned off, and kept across a restart', { timeout: 90_000 }, async () => {
  const broker = await startPlainBroker();
  stops.push(() => broker.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-bridge-settings-'));
  dirs.push(dir);
  const maker = await publishReleases(path.join(dir, 'maker'), 'tasmota', [{
    custom: { vendor: 'tasmota', model: 'tasmota', hardwareRevisions: ['ESP8266EX'], version: '14.3.0', expectedInstallSeconds: 60, recovery: { steps: ['Switch it off and on again.'] } },
    image: new Uint8Array(2048).fill(7),
  }]);
  const loaded = loadConfig({
    argv: ['--data-dir', path.join(dir, 'hub'), '--port', '0', '--mqtt-port', '0', '--tick-ms', '100', '--offer-resend-seconds', '2'],
    env: { FIRMWARD_TASMOTA_PASSWORD: 'not-used-by-the-plain-broker' }, readFile: () => { throw new Error('no config file'); },
  });
  const config = { ...loaded, repositories: [maker.config] };
  let hub = await start(config, true);
  const api = apiOf(() => hub);

  const listed = await api('GET', '/api/v1/bridges');
  assert.deepEqual((listed.body as unknown as { name: string; enabled: boolean; passwordSet: boolean }[]).map((b) => [b.name, b.enabled]),
    [['zigbee2mqtt', false], ['tasmota', false], ['shelly', false], ['homeAssistant', false]]);
  assert.equal(JSON.stringify(listed.body).includes('not-used-by-the-plain-broker'), false, 'no password leaves the hub');

  // A home that does not exist, or no broker: refused, nothing changes.
  assert.equal((await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: broker.url, homeId: 'nope' })).status, 400);
  assert.equal((await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, homeId: 'flat' })).status, 400);
  assert.equal((await api('PATCH', '/api/v1/bridges/nope', { enabled: true })).status, 404);

  const on = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: broker.url, username: 'firmward', homeId: 'flat' });
  assert.equal(on.status, 200, JSON.stringify(on.body));
  assert.equal(on.body['enabled'], true);
  assert.match(String((await api('GET', '/api/v1/health')).body['gateway']), /tasmota/);

  const device = new FakeTasmota({ url: broker.url, topic: 'tasmota_1A2B3C', mac: 'A4CF121A2B3C', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX', discovery: true, wifi: { Signal: -45 } });
  stops.push(() => device.powerOff());
  await device.powerOn();
  const telemetry = setInterval(() => void device.publishState().catch(() => undefined), 100);
  stops.push(() => Promise.resolve(clearInterval(telemetry)));
  const id = 'tasmota-tasmota_1A2B3C';
  assert.equal((await until('the device to join the home', () => hub.store.getDevice(id))).homeId, 'flat');

  // While it installs, the bridge stays as it is.
  await device.waitForCommand('Upgrade 1');
  await until('installing', async () => ((await hub.store.listJobs({ deviceId: id }))[0]?.state === 'installing' ? true : null));
  const refused = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: false });
  assert.equal(refused.status, 409);
  assert.match(refused.body.error?.message ?? '', /being updated right now/);

  await device.publishUpgradeResult('Successful. Restarting');
  await device.powerOff();
  await device.powerOn('14.3.0(release-tasmota)');
  await until('the update to succeed', async () => ((await hub.store.listJobs({ deviceId: id }))[0]?.state === 'succeeded' ? true : null));

  // Off: the device is out of reach for the hub.
  const off = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: false });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.equal((await hub.store.getDevice(id))?.online, false);
  assert.doesNotMatch(String((await api('GET', '/api/v1/health')).body['gateway']), /tasmota/);
  const events = await hub.store.listEvents({ deviceId: id, limit: 5 });
  assert.ok(events.some((e) => e.code === 'offline'), 'the history says it went offline');

  // Kept across a restart; the file holds no password.
  const saved = readFileSync(path.join(config.dataDir, 'bridges.json'), 'utf8');
  assert.deepEqual(JSON.parse(saved), { tasmota: { enabled: false, url: broker.url, username: 'firmward', homeId: 'flat' } });
  clearInterval(telemetry);
  await hub.stop();
  hub = await start(config, false);
  const again = (await api('GET', '/api/v1/bridges')).body as unknown as { name: string; enabled: boolean; url: string; changedHere: boolean; passwordSet: boolean }[];
  const tasmota = again.find((b) => b.name === 'tasmota')!;
  assert.deepEqual([tasmota.enabled, tasmota.url, tasmota.changedHere, tasmota.passwordSet], [false, broker.url, true, true]);
});

test('a bridge turned on with a home made in the same step: its devices join that home; refused, it leaves no home behind', { timeout: 60_000 }, async () => {
  const broker = await startPlainBroker();
  stops.push(() => broker.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-bridge-newhome-'));
  dirs.push(dir);
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--tick-ms', '100'],
    env: { FIRMWARD_TASMOTA_PASSWORD: 'x' }, readFile: () => { throw new Error('no config file'); },
  });
  const hub = await start(config, false);
  const api = apiOf(() => hub);
  // A dead broker: the bridge does not start, and the home made for it is gone again.
  const refused = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: 'mqtt://127.0.0.1:9', username: 'firmward', newHome: { name: 'Garden shed', timeZone: 'UTC' } });
  assert.equal(refused.status, 502, JSON.stringify(refused.body));
  assert.deepEqual(await hub.store.listHomes(), []);
  assert.equal((await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: broker.url, homeId: 'x', newHome: { name: 'Shed' } })).status, 400);

  const noUser = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: broker.url, newHome: { name: 'Garden shed', timeZone: 'UTC' } });
  assert.equal(noUser.status, 400, 'a password without a user name is refused at once, not after a silent wait');
  assert.match(noUser.body.error?.message ?? '', /user name/);
  assert.deepEqual(await hub.store.listHomes(), []);
  const on = await api('PATCH', '/api/v1/bridges/tasmota', { enabled: true, url: broker.url, username: 'firmward', newHome: { name: 'Garden shed', timeZone: 'UTC' } });
  assert.equal(on.status, 200, JSON.stringify(on.body));
  assert.equal(on.body['homeId'], 'garden-shed');
  const device = new FakeTasmota({ url: broker.url, topic: 'tasmota_5E6F70', mac: 'A4CF125E6F70', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX', discovery: true, wifi: { Signal: -45 } });
  stops.push(() => device.powerOff());
  await device.powerOn();
  assert.equal((await until('the device to join the new home', () => hub.store.getDevice('tasmota-tasmota_5E6F70'))).homeId, 'garden-shed');
});
