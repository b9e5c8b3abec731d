/**
 * The hub's DDI gateway against the real client: Debian's SWUpdate (suricatta mode) on loopback.
 * The real hub (startHub, DDI enabled from its config) serves a signed .swu from the maker's signed
 * repository (published with the release tool); four SWUpdate devices poll it through a proxy that
 * plays the network's part:
 *
 * - home-1: dev-a (registers itself with the GatewayToken and is approved; its first download is cut off mid-body)
 *   and dev-b (provisioned, with its own TargetToken) — updated one after the other, each counted
 *   a success only after its restart (`swupdate -c 2`, the device coming back from its reboot);
 *   the hub itself restarts while the second device reboots, and still takes its confirmation;
 * - home-1: dev-c (registers itself too, and is approved), another hardware revision — never offered the image;
 * - home-2: dev-t — its image is tampered with on the way; SWUpdate refuses it, the slot stays as
 *   it was, and the hub records SWUpdate's reason.
 *
 * Needs `swupdate`, `cpio` and `openssl` (.ci/run installs them: apt-get install swupdate cpio openssl).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import type { Home, Job } from '@firmward/core';
import { generateTargetToken, targetTokenCredential } from '@firmward/hawkbit';
import { SystemClock, consoleLogger } from '@firmward/ports';
import type { Store } from '@firmward/ports';
import { loadConfig } from '../apps/hub/src/config.ts';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';
import { SwupdateDevice } from './swupdate-device.ts';
import { signedRelease } from './swupdate-hub.ts';
import { DdiProxy } from './swupdate-proxy.ts';

const OWNER_TOKEN = 'swupdate-test-owner-token-0123456789';
const GATEWAY_TOKEN = 'swupdate-test-gateway-token-0123456789';
const OLD_SLOT = Buffer.from('the old image, which must stay when an update is refused\n');
const IMAGE = randomBytes(200_000);

function home(id: string): Home {
  return {
    id, name: id, halt: null,
    settings: {
      timeZone: 'UTC',
      // start == end: open all day, so the test is about the protocol, not about waiting for the night.
      window: { start: '00:00', end: '00:00' },
      learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS,
      soakSeconds: 2, silenceTimeoutSeconds: 120,
    },
  };
}

describe('Debian SWUpdate updated by the hub over DDI', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-swupdate-'));
  const logs: string[] = [];
  const tokens = { b: generateTargetToken(), t: generateTargetToken() };
  const versions = new Map<string, string>();
  let hub: RunningHub;
  let store: Store;
  let startAgain: () => Promise<void>;
  let proxy: DdiProxy;
  let url: string;
  const devices = new Map<string, SwupdateDevice>();

  /** Waits (polling, bounded) for something the hub and the devices do in their own time. */
  async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, seconds = 90): Promise<T> {
    for (let i = 0; i < seconds * 10; i++) {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
      await sleep(100);
    }
    const tails = [...devices.values()].map((d) => d.tail(15)).join('\n');
    assert.fail(`gave up waiting for ${what}\n--- hub\n${logs.slice(-40).join('\n')}\n--- devices\n${tails}`);
  }

  function device(controllerId: string, board: string, auth: SwupdateDevice['o']['auth']): SwupdateDevice {
    const deviceDir = path.join(dir, controllerId);
    versions.set(controllerId, '1.0.0');
    const d = new SwupdateDevice({
      controllerId, dir: deviceDir, cert: path.join(dir, 'maker', 'signer.pem'), board, auth,
      identify: () => ({ vendor: 'acme', model: 'board', hardwareRevision: board.split(':')[1]!, firmwareVersion: versions.get(controllerId)!, name: `Gateway ${controllerId}` }),
    });
    writeFileSync(d.slot, OLD_SLOT);
    devices.set(controllerId, d);
    return d;
  }

  before(async () => {
    for (const tool of ['swupdate', 'cpio', 'openssl']) {
      try {
        execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
      } catch {
        assert.fail(`${tool} is not installed: apt-get install -y swupdate cpio openssl (.ci/run does this)`);
      }
    }
    // The maker's signed repository, built with the release tool (the only way a release gets in).
    const { repository } = await signedRelease(dir, IMAGE);
    const configFile = path.join(dir, 'hub.json');
    writeFileSync(configFile, JSON.stringify({
      repositories: [repository.config],
      ddi: {
        enabled: true, tenant: 'DEFAULT', gatewayToken: GATEWAY_TOKEN, homeId: 'home-1', pollingSleep: '00:00:01',
        autoRegister: { allowedControllerIds: ['dev-a', 'dev-c'] },
      },
    }));
    const config = loadConfig({
      argv: ['--config', configFile, '--data-dir', path.join(dir, 'hub'), '--port', '0', '--mqtt-port', '0', '--tick-ms', '100'],
      env: {},
      readFile: (file) => readFileSync(file, 'utf8'),
    });
    const overrides = { clock: new SystemClock(), ownerToken: OWNER_TOKEN, log: consoleLogger('info', 'hub', { write: (line) => logs.push(line) }) };
    startAgain = async () => {
      await hub.stop();
      logs.push('--- hub restarted');
      hub = await startHub(config, overrides);
      store = hub.store;
      proxy.hubPort = hub.httpPort;
    };
    hub = await startHub(config, {
      ...overrides,
      seed: async (s) => {
        await s.putHome(home('home-1'));
        await s.putHome(home('home-2'));
        // dev-b and dev-t are provisioned: in the hub with their own TargetToken (stored as a digest).
        for (const [controllerId, homeId, token] of [['dev-b', 'home-1', tokens.b], ['dev-t', 'home-2', tokens.t]] as const) {
          await s.putDevice({
            id: `ddi-${controllerId}`, homeId, name: `Gateway ${controllerId}`, vendor: 'acme', model: 'board', hardwareRevision: '1.0',
            firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [],
          });
          await s.setDeviceSecret(`ddi-${controllerId}`, targetTokenCredential(token));
        }
      },
    });
    store = hub.store;
    proxy = new DdiProxy(hub.httpPort);
    await proxy.start();
    url = `http://127.0.0.1:${proxy.port}`;
    proxy.faults.cutOnce.add('dev-a');
    proxy.faults.tamperWith.set('dev-t', IMAGE);

    device('dev-a', 'board:1.0', { gatewayToken: GATEWAY_TOKEN }).start(url);
    device('dev-b', 'board:1.0', { targetToken: tokens.b }).start(url);
    device('dev-c', 'board:2.0', { gatewayToken: GATEWAY_TOKEN }).start(url);
    device('dev-t', 'board:1.0', { targetToken: tokens.t }).start(url);

    // dev-a and dev-c registered themselves with the GatewayToken: each waits for a person's
    // approval, into the home the settings propose (home-1).
    const waiting = await until('dev-a and dev-c to wait for approval', async () => {
      const pending = await hub.setup.listPendingDevices({});
      return pending.length >= 2 ? pending : null;
    });
    assert.deepEqual(waiting.map((p) => p.deviceId).sort(), ['ddi-dev-a', 'ddi-dev-c']);
    for (const p of waiting) await hub.setup.approve(p.id, {}, 'person:owner');
  });

  after(async () => {
    for (const d of devices.values()) await d.stop();
    await proxy?.stop();
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const jobsOf = (deviceId: string): Promise<Job[]> => store.listJobs({ deviceId });

  test('two devices in one home are updated one after the other, each a success only after its restart (the hub restarting meanwhile)', async () => {
    const done: string[] = [];
    let firstInstalledAt = -1;
    for (let n = 0; n < 2; n++) {
      // The update reaches "rebooting" when SWUpdate says "All Chunks Installed.": written, not yet confirmed.
      const job = await until(`update ${n + 1} of home-1 to be installed and waiting for the restart`, async () =>
        (await store.listJobs({ homeId: 'home-1', states: ['rebooting'] }))[0]);
      const controllerId = job.deviceId.replace(/^ddi-/, '');
      if (n === 0) firstInstalledAt = proxy.log.length;
      const d = devices.get(controllerId)!;
      await until(`${controllerId}'s slot to hold the new image`, () => readFileSync(d.slot).equals(IMAGE));
      const active = await store.listJobs({ homeId: 'home-1', states: ['offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming'] });
      assert.deepEqual(active.map((j) => j.id), [job.id], 'one update at a time in the home (invariant 1)');
      assert.equal((await store.getJob(job.id))?.state, 'rebooting', 'installed is not a success before the restart');

      // The device reboots into the new image: SWUpdate starts again with -c 2 and reports "Update Installed.".
      await d.stop();
      // The second time the hub restarts meanwhile: it hands the running update back to the DDI
      // gateway (restore), which takes the device's confirmation for the action it re-learned.
      if (n === 1) await startAgain();
      versions.set(controllerId, '1.1.0');
      d.start(url, 2);
      await until(`${controllerId}'s update to be confirmed`, async () => (await store.getJob(job.id))?.state === 'succeeded');
      done.push(job.deviceId);
    }
    assert.deepEqual([...done].sort(), ['ddi-dev-a', 'ddi-dev-b']);
    for (const id of done) assert.equal((await store.getDevice(id))?.firmwareVersion, '1.1.0');

    // The history shows every step of both, and the second was offered only after the first succeeded.
    const history = (await store.listEvents({ homeId: 'home-1', limit: 1000 })).reverse().filter((e) => e.kind === 'transition');
    const steps = (deviceId: string) => history.filter((e) => e.deviceId === deviceId).map((e) => e.to);
    for (const id of done) {
      const all = steps(id);
      const from = all.indexOf('offered');
      // The one that waits its turn first says so ("Next in line: one device at a time in this home.").
      assert.deepEqual(all.slice(0, from).filter((s) => s !== 'waiting'), [], id);
      assert.deepEqual(all.slice(from), ['offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming', 'succeeded'], id);
    }
    assert.ok(steps(done[1]!).includes('waiting'), 'the second device waited for its turn');
    const firstSucceeded = history.find((e) => e.deviceId === done[0] && e.to === 'succeeded')!;
    const secondOffered = history.find((e) => e.deviceId === done[1] && e.to === 'offered')!;
    assert.ok(secondOffered.id > firstSucceeded.id, `the second device was offered only after the first was confirmed:\n${history.map((e) => `${e.id} ${e.deviceId} ${e.from} → ${e.to} ${e.message}`).join('\n')}`);
    // Held until its turn by withholding the link: the second device asked for no deployment while
    // the first was installed and waiting for its restart.
    const second = done[1]!.replace(/^ddi-/, '');
    const firstSeen = proxy.log.findIndex((r) => r.controllerId === second && r.resource.startsWith('deploymentBase'));
    assert.ok(firstSeen >= firstInstalledAt, `${second} saw the update at request ${firstSeen}, before ${done[0]} was installed (${firstInstalledAt})`);
    assert.ok(proxy.log.slice(0, firstInstalledAt).filter((r) => r.controllerId === second && r.resource === '').length >= 2, `${second} polled meanwhile`);
  });

  test('the download cut off mid-body was resumed with Range, and the slot holds the image', () => {
    const downloads = proxy.requestsOf('dev-a').filter((r) => r.method === 'GET' && r.resource.includes('/artifacts/'));
    assert.ok(downloads[0]?.cut, `the first download was cut: ${JSON.stringify(downloads)}`);
    const resumed = downloads.find((r) => r.range !== null && r.status === 206);
    assert.ok(resumed, `a resumed download with Range: ${JSON.stringify(downloads)}`);
    assert.match(resumed.range!, /^bytes=[1-9][0-9]*-$/);
    assert.ok(readFileSync(devices.get('dev-a')!.slot).equals(IMAGE));
  });

  test('a tampered image is refused by SWUpdate: the slot is untouched and the hub records SWUpdate\'s reason', async () => {
    const failed = await until('dev-t\'s update to fail', async () => (await jobsOf('ddi-dev-t')).find((j) => j.state === 'failed'));
    // SWUpdate's words: its installer's check of the image against sw-description, its check of the
    // artifact against the deployment's sha1, or — when the tampered bytes break the archive before
    // any hash is checked — its refusal of the archive; which one it reports last varies by run.
    const refusal = /HASH mismatch|Checksum does not match|No suitable \.swu image found/;
    assert.match(failed.failure?.message ?? '', new RegExp(`It said: .*(${refusal.source})`));
    assert.ok(devices.get('dev-t')!.output.some((line) => refusal.test(line)), 'SWUpdate refused the image itself');
    assert.equal(failed.failure?.code, 'install_failed');
    assert.ok(readFileSync(devices.get('dev-t')!.slot).equals(OLD_SLOT), 'the slot was not written');
    const halted = await store.getHome('home-2');
    assert.equal(halted?.halt?.deviceId, 'ddi-dev-t', 'the failure halts that home\'s queue');
  });

  test('a device with another hardware revision is never offered the image', async () => {
    const c = await until('dev-c to be known to the hub', () => store.getDevice('ddi-dev-c'));
    assert.equal(c.hardwareRevision, '2.0');
    assert.deepEqual(await jobsOf('ddi-dev-c'), []);
    const asked = proxy.requestsOf('dev-c');
    assert.ok(asked.filter((r) => r.resource === '').length >= 2, 'it kept polling');
    assert.deepEqual(asked.filter((r) => r.resource !== '' && r.resource !== 'configData'), [], 'never a deployment or a download');
    assert.ok(readFileSync(devices.get('dev-c')!.slot).equals(OLD_SLOT));
  });

  test('a controller the operator did not allow is refused, and nothing is stored', async () => {
    const answer = await fetch(`${url}/DEFAULT/controller/v1/dev-x`, { headers: { authorization: `GatewayToken ${GATEWAY_TOKEN}` } });
    assert.equal(answer.status, 404);
    assert.match(((await answer.json()) as { error: { message: string } }).error.message, /does not know the device "dev-x"/);
    assert.equal(await store.getDevice('ddi-dev-x'), null);
    assert.equal(await store.getDeviceSecret('ddi-dev-x'), null);
  });
});
