/**
 * The bridges inside the real hub: turned on from the config, their devices join the configured
 * home, and the engine's rules apply to them unchanged. A Tasmota device (a double speaking
 * Tasmota's own topics) is found, planned for by the maker's signed release, held outside the
 * window, then updated with the hub's verified image URL and confirmed only by the version it runs
 * after its restart. A Zigbee device's update comes from Zigbee2MQTT's index and says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import { SystemClock, consoleLogger, silentLogger } from '@firmward/ports';
import { FakeTasmota } from '../../../adapters/tasmota/test/tasmota-device.ts';
import { startPlainBroker } from '@firmward/bridge-common/testing/plain-broker.ts';
import { loadConfig } from '../src/config.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import { until } from './fixtures/until.ts';

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}


const HOME = 'flat';

async function hubWithTasmota(brokerUrl: string, windowOpen: boolean): Promise<RunningHub> {
  const dir = tempDir('firmward-bridges-');
  const maker = await publishReleases(path.join(dir, 'maker'), 'tasmota', [{
    custom: {
      vendor: 'tasmota', model: 'tasmota', hardwareRevisions: ['ESP8266EX'], version: '14.3.0', expectedInstallSeconds: 60,
      recovery: { steps: ['Switch it off and on again; Tasmota falls back to its previous image by itself.'] },
    },
    image: new Uint8Array(2048).fill(7),
  }]);
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--tick-ms', '100', '--offer-resend-seconds', '2'],
    env: {}, readFile: () => { throw new Error('no config file'); },
  });
  const hub = await startHub({
    ...config,
    repositories: [maker.config],
    bridges: { ...config.bridges, tasmota: { enabled: true, url: brokerUrl, username: '', password: '', homeId: HOME } },
  }, {
    clock: new SystemClock(), log: process.env['BRIDGES_TEST_LOG'] === '1' ? consoleLogger('info', 'hub') : silentLogger, ownerToken: 'bridges-test-owner-token-0123456',
    seed: async (store) => {
      await store.putHome({
        id: HOME, name: 'Flat', halt: null,
        settings: {
          timeZone: 'UTC', policy: 'automatic', learnQuietHours: false, thresholds: DEFAULT_THRESHOLDS, soakSeconds: 1, silenceTimeoutSeconds: 60,
          // Open all day, or closed all day but for one minute that has just passed.
          window: windowOpen ? { start: '00:00', end: '00:00' } : closedNow(),
        },
      });
    },
  });
  stops.push(() => hub.stop());
  return hub;
}

function closedNow(): { start: string; end: string } {
  const now = new Date();
  const at = (m: number) => `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
  return { start: at(minute + 120), end: at(minute + 121) };
}

test('a Tasmota device found by the bridge joins the home and is updated under the hub\'s rules, confirmed by its version after restart', { timeout: 60_000 }, async () => {
  const broker = await startPlainBroker();
  stops.push(() => broker.stop());
  const hub = await hubWithTasmota(broker.url, true);
  const device = new FakeTasmota({ url: broker.url, topic: 'tasmota_1A2B3C', mac: 'A4CF121A2B3C', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX', deviceName: 'Hall light', discovery: true, wifi: { RSSI: 90, Signal: -45 } });
  stops.push(() => device.powerOff());
  await device.powerOn();
  const id = 'tasmota-tasmota_1A2B3C';
  const registered = await until('the bridge to register the device', () => hub.store.getDevice(id));
  assert.equal(registered.homeId, HOME);
  assert.deepEqual([registered.vendor, registered.model, registered.hardwareRevision, registered.firmwareVersion], ['tasmota', 'tasmota', 'ESP8266EX', '14.2.0']);

  // The signed release is planned, offered, and the go-ahead turns into Tasmota's own commands.
  // Telemetry every few seconds here (Tasmota's TelePeriod): the signal rule wants several readings.
  const telemetry = setInterval(() => void device.publishState().catch(() => undefined), 100);
  stops.push(() => Promise.resolve(clearInterval(telemetry)));
  await device.waitForCommand('Upgrade 1');
  const ota = device.commands.find((c) => c.startsWith('OtaUrl '));
  assert.equal(ota, `OtaUrl ${hub.baseUrl}/firmware/${encodeURIComponent('tasmota/tasmota/14.3.0')}`, 'the hub\'s verified image, not Tasmota\'s own server');
  const installing = await until('installing', async () => (await hub.store.listJobs({ deviceId: id }))[0]?.state === 'installing' ? true : null);
  assert.ok(installing);

  // Tasmota restarts into the new image; only the version it then reports confirms the update.
  await device.publishUpgradeResult('Successful. Restarting');
  await device.powerOff();
  await sleep(200);
  const before = (await hub.store.listJobs({ deviceId: id }))[0]!;
  assert.notEqual(before.state, 'succeeded', 'no success while the device is away');
  await device.powerOn('14.3.0(release-tasmota)');
  const done = await until('the update to end', async () => {
    const job = (await hub.store.listJobs({ deviceId: id }))[0];
    return job && (job.state === 'succeeded' || job.state === 'failed') ? job : null;
  });
  assert.equal(done.state, 'succeeded', done.failure?.message);
  assert.equal((await hub.store.getDevice(id))?.firmwareVersion, '14.3.0');
  const history = await hub.store.listEvents({ jobId: done.id, limit: 100 });
  // Newest first: every step of the path, in order, the restart before the confirmation. A wait
  // for enough signal readings may come first, depending on how fast the telemetry arrived — also
  // at the install check, which sends a downloaded update back to waiting and offers it again (on
  // a loaded machine): such rounds of offered → downloaded come before the install, never after.
  const path = history.filter((e) => e.kind === 'transition' && e.to !== 'waiting').map((e) => e.to).reverse();
  assert.deepEqual(path.slice(-6), ['offered', 'downloaded', 'installing', 'rebooting', 'confirming', 'succeeded']);
  assert.deepEqual(path.slice(0, -6), Array.from({ length: path.length - 6 }, (_, i) => (i % 2 === 0 ? 'offered' : 'downloaded')), path.join(' → '));
  // And the hold-back, if any, went through waiting: downloaded is never followed by offered directly.
  const all = history.filter((e) => e.kind === 'transition').map((e) => `${e.from}→${e.to}`);
  assert.ok(!all.includes('downloaded→offered'), all.join(' '));
});

test('outside the quiet window a bridged device is only queued: nothing is sent to it', { timeout: 60_000 }, async () => {
  const broker = await startPlainBroker();
  stops.push(() => broker.stop());
  const hub = await hubWithTasmota(broker.url, false);
  const device = new FakeTasmota({ url: broker.url, topic: 'tasmota_9F9F9F', mac: 'A4CF129F9F9F', version: '14.2.0(release-tasmota)', hardware: 'ESP8266EX', discovery: true, wifi: { Signal: -50 } });
  stops.push(() => device.powerOff());
  await device.powerOn();
  const id = 'tasmota-tasmota_9F9F9F';
  const telemetry = setInterval(() => void device.publishState().catch(() => undefined), 100);
  stops.push(() => Promise.resolve(clearInterval(telemetry)));
  const job = await until('the job to wait', async () => {
    const j = (await hub.store.listJobs({ deviceId: id }))[0];
    return j?.state === 'waiting' ? j : null;
  });
  assert.match(job.reasons.map((r) => r.message).join(' '), /window|quiet|between/i);
  await sleep(500);
  assert.deepEqual(device.commands.filter((c) => c.startsWith('OtaUrl') || c.startsWith('Upgrade')), []);
});
