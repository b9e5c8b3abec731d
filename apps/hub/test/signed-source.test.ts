/**
 * The maker's signed repository end to end: the real hub (embedded broker, HTTP) trusts a
 * repository built and published with our release tool; a device (the real agent) ships the same
 * root and checks every offer against the maker's metadata as mirrored by the hub. Then a hub
 * that is compromised — it offers an image the maker never signed — gets nothing installed.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { releaseId } from '@firmward/core';
import { MqttAgentTransport } from '@firmward/agent';
import { MemoryReleaseSource, SystemClock, silentLogger } from '@firmward/ports';
import type { Logger, Store } from '@firmward/ports';
import { SeededRandom, buildReleaseImage, createSimulatedDevice } from '@firmward/simulator';
import type { SimulatedDevice } from '@firmward/simulator';
import { DeviceTrust } from '@firmward/tuf';
import { loadConfig } from '../src/config.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { FLEET_FROM_VERSION, FLEET_IMAGE_BYTES, FLEET_TARGET_VERSION, fleetDevices, fleetHomeId, publishFleetRelease, seedFleet } from './fixtures/fleet-fixture.ts';
import { until } from './fixtures/until.ts';

const dirs: string[] = [];
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  for (const r of running.reverse()) await r.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const LAYOUT = { homes: 1, devicesPerHome: 1 };
const DEVICE = fleetDevices(LAYOUT)[0]!;

/** A logger that keeps what is logged (the hub's own lines, not a double of its behaviour). */
function capturing(into: { message: string; fields: Record<string, unknown> }[]): Logger {
  const keep = (message: string, fields?: Record<string, unknown>) => into.push({ message, fields: fields ?? {} });
  const logger: Logger = { debug: keep, info: keep, warn: keep, error: keep, child: () => logger };
  return logger;
}

async function hubWith(overrides: { source?: MemoryReleaseSource; log?: Logger }, repository: { name: string; url: string; root: string } | null) {
  const dir = tempDir('firmward-signed-hub-');
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--tick-ms', '100', '--offer-resend-seconds', '2'],
    env: {}, readFile: () => { throw new Error('no config file'); },
  });
  const secrets = new Map<string, string>();
  const hub = await startHub({ ...config, repositories: repository ? [repository] : [] }, {
    clock: new SystemClock(), log: overrides.log ?? silentLogger, ownerToken: 'signed-source-test-owner-token',
    ...(overrides.source && { source: overrides.source }),
    seed: async (store: Store) => {
      const { secrets: s } = await seedFleet(store, LAYOUT, { soakSeconds: 1, silenceTimeoutSeconds: 60 });
      for (const [id, secret] of Object.entries(s)) secrets.set(id, secret);
    },
  });
  running.push(hub);
  return { hub, secrets };
}

async function deviceFor(hub: RunningHub, secrets: Map<string, string>, root: Buffer): Promise<SimulatedDevice> {
  const clock = new SystemClock();
  const device = createSimulatedDevice(DEVICE.profile, {
    clock, random: new SeededRandom(1),
    agentConfig: { stateReportIntervalMs: 500, downloadRetryDelayMs: 500 },
    // The device's own root: the maker's first root.json, shipped with it.
    verifier: new DeviceTrust({ dir: tempDir('firmward-device-trust-'), roots: { acme: root } }),
    connect: (identity) => new MqttAgentTransport({ url: hub.mqttUrl, deviceId: identity.deviceId, password: secrets.get(identity.deviceId)!, clock, logger: silentLogger }),
  });
  await device.start();
  running.push(device);
  return device;
}


test('a release signed by the maker reaches the device, which checks it itself through the hub\'s mirror, installs it and is confirmed', async () => {
  const maker = await publishFleetRelease(tempDir('firmward-maker-'));
  const { hub, secrets } = await hubWith({}, maker.config);
  // The mirror serves the maker's metadata unchanged.
  const mirrored = await fetch(`${hub.baseUrl}/tuf/acme/metadata/1.root.json`);
  assert.equal(mirrored.status, 200);
  assert.deepEqual(Buffer.from(await mirrored.arrayBuffer()), maker.root);
  assert.equal((await fetch(`${hub.baseUrl}/tuf/acme/metadata/..%2F..%2Fetc%2Fpasswd`)).status, 404);
  assert.equal((await fetch(`${hub.baseUrl}/tuf/unknown/metadata/1.root.json`)).status, 404);

  const device = await deviceFor(hub, secrets, maker.root);
  const job = await until('the update to end', async () => {
    const [j] = await hub.store.listJobs({ deviceId: DEVICE.profile.identity.deviceId });
    return j && (j.state === 'succeeded' || j.state === 'failed') ? j : null;
  });
  assert.equal(job.state, 'succeeded', job.failure?.message);
  assert.equal(device.runningVersion, FLEET_TARGET_VERSION);
  const health = await (await fetch(`${hub.baseUrl}/api/v1/health`)).json() as { repositories: { name: string; trusted: boolean }[] };
  assert.deepEqual(health.repositories, [{ name: 'acme', trusted: true, code: null, message: null, refusedImages: [] }]);
});

test('an image altered at the maker\'s server is never offered and halts nothing: withheld with its code in health, the repository view, the home\'s history and the log; once fixed and read again it is planned and installed', async () => {
  const maker = await publishFleetRelease(tempDir('firmward-maker-'));
  const [targetsFile] = readdirSync(path.join(maker.publishedDir, 'targets', 'Acme', 'QuickPlug', FLEET_TARGET_VERSION)).map((f) => path.join(maker.publishedDir, 'targets', 'Acme', 'QuickPlug', FLEET_TARGET_VERSION, f));
  const good = readFileSync(targetsFile!);
  const altered = Buffer.from(good);
  altered[1000] = altered[1000]! ^ 0xff;
  writeFileSync(targetsFile!, altered);
  const logged: { message: string; fields: Record<string, unknown> }[] = [];
  const { hub, secrets } = await hubWith({ log: capturing(logged) }, maker.config);
  const id = DEVICE.profile.identity;
  const device = await deviceFor(hub, secrets, maker.root);

  type Health = { repositories: { name: string; trusted: boolean; refusedImages: { releaseId: string; code: string; message: string }[] }[] };
  const health = await until('health to name the withheld image', async () => {
    const h = await (await fetch(`${hub.baseUrl}/api/v1/health`)).json() as Health;
    return h.repositories[0]?.refusedImages.length ? h : null;
  });
  const releaseId = `Acme/QuickPlug/${FLEET_TARGET_VERSION}`;
  assert.deepEqual(health.repositories[0]!.refusedImages.map((i) => [i.releaseId, i.code]), [[releaseId, 'image_hash_mismatch']]);
  assert.equal(health.repositories[0]!.trusted, true, 'the signed metadata itself is fine');
  const owner = { authorization: 'Bearer signed-source-test-owner-token' };
  const views = await (await fetch(`${hub.baseUrl}/api/v1/repositories`, { headers: owner })).json() as { refusedImages: { code: string }[] }[];
  assert.deepEqual(views.map((v) => v.refusedImages.map((i) => i.code)), [['image_hash_mismatch']]);
  const line = await until('the home\'s history to say why', async () => (await hub.store.listEvents({ homeId: fleetHomeId(0), limit: 50 })).find((e) => e.code === 'image_hash_mismatch') ?? null);
  assert.match(line.message, /does not match its signed checksum.*Nothing is offered/);
  assert.ok(logged.some((l) => l.fields['code'] === 'image_hash_mismatch' && l.fields['releaseId'] === releaseId), 'the log names the code');
  // Nothing planned, nothing offered, nothing halted — for several ticks.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(await hub.store.listJobs({ deviceId: id.deviceId }), []);
  assert.equal((await hub.store.getHome(fleetHomeId(0)))?.halt ?? null, null);
  assert.equal(device.runningVersion, FLEET_FROM_VERSION);

  // The maker puts the right file back; the owner asks for the repository to be read again.
  writeFileSync(targetsFile!, good);
  const refreshed = await (await fetch(`${hub.baseUrl}/api/v1/repositories/acme/refresh`, { method: 'POST', headers: { ...owner, 'content-type': 'application/json' }, body: '{}' })).json() as { refusedImages: unknown[] };
  assert.deepEqual(refreshed.refusedImages, []);
  const job = await until('the update to end', async () => {
    const [j] = await hub.store.listJobs({ deviceId: id.deviceId });
    return j && (j.state === 'succeeded' || j.state === 'failed') ? j : null;
  });
  assert.equal(job.state, 'succeeded', job.failure?.message);
  assert.equal(device.runningVersion, FLEET_TARGET_VERSION);
});

test('a compromised hub offering an image the maker never signed gets it refused by the device: nothing installed', async () => {
  const maker = await publishFleetRelease(tempDir('firmward-maker-'));
  // The hub's release list is forged: same model and version, other bytes, no signature.
  const forged = buildReleaseImage(DEVICE.profile, FLEET_TARGET_VERSION, FLEET_IMAGE_BYTES);
  forged[forged.length - 1] = forged[forged.length - 1]! ^ 0xff;
  const id = DEVICE.profile.identity;
  const source = new MemoryReleaseSource();
  source.publish({
    id: releaseId(id.vendor, id.model, FLEET_TARGET_VERSION), vendor: id.vendor, model: id.model, hardwareRevisions: [id.hardwareRevision],
    version: FLEET_TARGET_VERSION, severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds: 10, preflightOverrides: {}, retracted: false,
    recovery: { steps: ['x'] }, image: { path: 'acme/x.img', lengthBytes: forged.byteLength, sha256: createHash('sha256').update(forged).digest('hex') },
  }, forged);
  const { hub, secrets } = await hubWith({ source }, null);
  const device = await deviceFor(hub, secrets, maker.root);
  const job = await until('the device to refuse', async () => {
    const [j] = await hub.store.listJobs({ deviceId: id.deviceId });
    return j && j.state === 'failed' ? j : null;
  });
  assert.match(job.failure?.message ?? '', /signature|signed/);
  assert.equal(job.failure?.code, 'not_signed');
  assert.equal(device.runningVersion, FLEET_FROM_VERSION, 'the device still runs what it ran');
});

test('an expired repository is refused: nothing from it is planned, and the API and every home\'s history say why', async () => {
  const tenDaysAgo = Date.now() - 10 * 24 * 3600 * 1000;
  const id = DEVICE.profile.identity;
  const maker = await publishReleases(tempDir('firmward-maker-'), 'acme', [{
    custom: { vendor: id.vendor, model: id.model, hardwareRevisions: [id.hardwareRevision], version: FLEET_TARGET_VERSION, expectedInstallSeconds: 10, recovery: { steps: ['x'] } },
    image: buildReleaseImage(DEVICE.profile, FLEET_TARGET_VERSION, FLEET_IMAGE_BYTES),
  }], { now: () => tenDaysAgo });
  const { hub } = await hubWith({}, maker.config);
  const health = await (await fetch(`${hub.baseUrl}/api/v1/health`)).json() as { repositories: { name: string; trusted: boolean; code: string | null }[] };
  assert.deepEqual(health.repositories.map((r) => [r.name, r.trusted, r.code]), [['acme', false, 'metadata_expired']]);
  const history = await hub.store.listEvents({ homeId: fleetHomeId(0), limit: 50 });
  assert.ok(history.some((e) => e.code === 'metadata_expired' && /expired/.test(e.message)), history.map((e) => e.code).join(', '));
  assert.deepEqual(await hub.store.listJobs({ deviceId: id.deviceId }), [], 'nothing planned from an expired repository');
});

test('a hub restarted while the maker\'s server is down keeps the releases it verified before and serves their images (so a running update goes on); it says the repository is out of reach', async () => {
  const maker = await publishFleetRelease(tempDir('firmward-maker-'));
  // The hub's root stays on the hub (its config file): copy it out of the published folder.
  const rootCopy = path.join(tempDir('firmward-root-'), 'acme-root.json');
  writeFileSync(rootCopy, maker.root);
  const dir = tempDir('firmward-offline-hub-');
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--tick-ms', '100'],
    env: {}, readFile: () => { throw new Error('no config file'); },
  });
  const withRepo = { ...config, repositories: [{ ...maker.config, root: rootCopy }] };
  const first = await startHub(withRepo, { clock: new SystemClock(), log: silentLogger, ownerToken: 'offline-test-owner-token-1234' });
  const releaseId = `Acme/QuickPlug/${FLEET_TARGET_VERSION}`;
  const image = async (hub: RunningHub) => fetch(`${hub.baseUrl}/firmware/${encodeURIComponent(releaseId)}`);
  assert.equal((await image(first)).status, 200);
  await first.stop();

  renameSync(maker.publishedDir, `${maker.publishedDir}.away`);
  const again = await startHub(withRepo, { clock: new SystemClock(), log: silentLogger, ownerToken: 'offline-test-owner-token-1234' });
  running.push(again);
  assert.ok(again.engine.releases.has(releaseId), 'the release verified before is still vouched for');
  const served = await image(again);
  assert.equal(served.status, 200);
  assert.equal((await served.arrayBuffer()).byteLength, FLEET_IMAGE_BYTES);
  const health = await (await fetch(`${again.baseUrl}/api/v1/health`)).json() as { repositories: { name: string; trusted: boolean; code: string | null; message: string | null }[] };
  assert.deepEqual(health.repositories.map((r) => [r.name, r.trusted, r.code]), [['acme', false, 'repository_unreachable']]);
  assert.match(health.repositories[0]!.message ?? '', /cannot be reached right now; what was verified before stays/);
});
