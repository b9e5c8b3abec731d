/**
 * Debian's SWUpdate devices polling the hub's port from the instant it opens, while the hub is
 * still starting (its gateways and engine not up yet, the running updates not yet handed back):
 * nothing they say is lost.
 *
 * - Four devices register themselves with the tenant's GatewayToken (auto-registration on): each
 *   is waiting for approval, none lost. Approved, each is asked for its attributes again, sends
 *   them, and shows up with a report.
 * - Two devices whose TargetTokens a person issued (setup.registerDevice) before the hub
 *   restarted: after the restart they poll, are served, and install the update — one in each home,
 *   at the same time.
 *
 * The devices start before the hub, on the port it will listen on; the maker's repository answers
 * the starting hub only once every device has a request waiting at the hub's open port, so the
 * devices' requests reach it before the hub is ready — the start-up gate holds them. A proxy records every request and its answer.
 *
 * Needs `swupdate`, `cpio` and `openssl` (.ci/run installs them).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { SystemClock } from '@firmward/ports';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';
import { freePort } from '../packages/ports/testing/free-port.ts';
import { GATEWAY_TOKEN, OWNER_TOKEN, RepositoryServer, hubConfig, hubLog, openHome, requireTools, signedRelease, waiter } from './swupdate-hub.ts';
import type { SignedRelease } from './swupdate-hub.ts';
import { SwupdateDevice } from './swupdate-device.ts';
import { DdiProxy } from './swupdate-proxy.ts';

const IMAGE = randomBytes(200_000);
const OLD_SLOT = Buffer.from('the old image\n');
const SELF_REGISTERED = ['walk-1', 'walk-2', 'walk-3', 'walk-4'];
const PROVISIONED = [['kept-1', 'home-1'], ['kept-2', 'home-2']] as const;
const ACTOR = 'person:owner';

describe('Debian SWUpdate devices polling while the hub starts', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-swupdate-startup-'));
  const { log, lines, times } = hubLog();
  const devices = new Map<string, SwupdateDevice>();
  const until = waiter(lines, () => devices.values());
  const overrides = { clock: new SystemClock(), ownerToken: OWNER_TOKEN, log };
  let release: SignedRelease;
  let repositoryServer: RepositoryServer;
  let proxy: DdiProxy;
  let hub: RunningHub | null = null;
  let openedAt = 0;
  let readyAt = 0;

  function device(controllerId: string, auth: SwupdateDevice['o']['auth']): SwupdateDevice {
    const d = new SwupdateDevice({
      controllerId, dir: path.join(dir, controllerId), cert: release.signer.cert, board: 'board:1.0', auth, pollSeconds: 1,
      identify: () => ({ vendor: 'acme', model: 'board', hardwareRevision: '1.0', firmwareVersion: '1.0.0', name: `Board ${controllerId}` }),
    });
    writeFileSync(d.slot, OLD_SLOT);
    devices.set(controllerId, d);
    return d;
  }

  before(async () => {
    requireTools();
    release = await signedRelease(dir, IMAGE);
    repositoryServer = new RepositoryServer(release.repository.publishedDir);
    const repositoryUrl = await repositoryServer.start();
    const port = await freePort();
    const config = hubConfig(dir, { repository: { ...release.repository.config, url: repositoryUrl }, ddi: { homeId: 'home-g', autoRegister: {} }, port });

    // First run: a person sets the homes up and registers two devices, each with its own TargetToken.
    const first = await startHub(config, {
      ...overrides,
      seed: async (s) => {
        for (const id of ['home-1', 'home-2']) await s.putHome(openHome(id));
        // Where self-registered devices are proposed; "manual": nothing is offered there by itself.
        await s.putHome(openHome('home-g', 'manual'));
      },
    });
    const tokens = new Map<string, string>();
    for (const [controllerId, homeId] of PROVISIONED) {
      const registered = await first.setup.registerDevice(homeId, {
        protocol: 'hawkbit', id: controllerId, name: `Board ${controllerId}`, vendor: 'acme', model: 'board', hardwareRevision: '1.0', firmwareVersion: '1.0.0',
      }, ACTOR);
      assert.equal(registered.credential.kind, 'hawkbit');
      if (registered.credential.kind === 'hawkbit') tokens.set(controllerId, registered.credential.targetToken);
    }
    await first.stop();
    lines.push('--- hub stopped; the devices start before it comes back');

    proxy = new DdiProxy(port);
    await proxy.start();
    const url = `http://127.0.0.1:${proxy.port}`;
    for (const id of SELF_REGISTERED) device(id, { gatewayToken: GATEWAY_TOKEN }).start(url);
    for (const [id] of PROVISIONED) device(id, { targetToken: tokens.get(id)! }).start(url);
    // They knock on the closed port (refused) for a while, every second.
    await until('every device to knock on the closed port', () => devices.size === [...new Set(proxy.log.map((r) => r.controllerId))].length);

    // The maker's repository answers the starting hub once every device has a request waiting at
    // its open port (or after 20 s): the hub listens, its engine is not up.
    const restartedAt = Date.now();
    repositoryServer.hold = (async () => {
      while (!(await accepts(port))) await sleep(20);
      openedAt = Date.now();
      const waiting = (id: string) => proxy.log.some((r) => r.controllerId === id && r.at >= openedAt && !r.refused && r.answeredAt === null);
      for (const deadline = Date.now() + 20_000; ![...devices.keys()].every(waiting) && Date.now() < deadline;) await sleep(50);
      // and they wait a second more, so the hold is plain to see.
      await sleep(1000);
    })();
    hub = await startHub(config, overrides);
    repositoryServer.hold = null;
    readyAt = times.filter((t) => t.line.includes(' ready ')).at(-1)!.at;
    assert.ok(openedAt >= restartedAt);
  });

  after(async () => {
    for (const d of devices.values()) await d.stop();
    await proxy?.stop();
    await hub?.stop();
    await repositoryServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('requests that reached the port while the hub was starting waited for it, and none was refused', async () => {
    const reached = () => proxy.log.filter((r) => !r.refused && r.at >= openedAt && r.at < readyAt);
    await until('the requests held during the start to be answered', () => reached().every((r) => r.answeredAt !== null), 30);
    const duringStart = proxy.log.filter((r) => !r.refused && r.answeredAt !== null && r.at >= openedAt && r.at < readyAt);
    assert.ok(openedAt < readyAt, 'the port was open before the hub was ready');
    for (const r of duringStart) {
      // Held until ready, or — past the gate's 10 s — told to come back (503 with Retry-After): never refused.
      assert.ok(r.status === 200 ? r.answeredAt! >= readyAt : r.status === 503 && r.retryAfter !== null, `${r.controllerId} ${r.method} ${r.resource || '(poll)'} → ${r.status}`);
    }
    const held = new Set(duringStart.map((r) => r.controllerId));
    assert.deepEqual([...held].sort(), [...devices.keys()].sort(), 'each device had a request waiting while the hub started');
    const told = duringStart.filter((r) => r.status === 503).length;
    console.log(`start-up: port open ${readyAt - openedAt} ms before ready; ${duringStart.length} requests from ${held.size} devices waited: ${duringStart.length - told} answered 200 once ready, ${told} answered 503 after the 10 s hold`);
  });

  test('every device that registered itself meanwhile waits for approval: none lost', async () => {
    const pending = await until('all four self-registered devices to wait for approval', async () => {
      const waiting = await hub!.setup.listPendingDevices({});
      return waiting.length >= SELF_REGISTERED.length ? waiting : null;
    }, 60);
    assert.deepEqual(pending.map((p) => p.deviceId).sort(), SELF_REGISTERED.map((id) => `ddi-${id}`));
    for (const p of pending) {
      assert.equal(p.protocol, 'hawkbit');
      assert.equal(p.homeId, 'home-g', 'proposed for the home the settings name');
      assert.equal(await hub!.store.getDevice(p.deviceId), null, 'not in a home before a person approves it');
    }
  });

  test('approved, each is asked for its attributes again, sends them, and shows up with a report', async () => {
    const pending = await hub!.setup.listPendingDevices({});
    const approvedAt = proxy.log.length;
    for (const p of pending) await hub!.setup.approve(p.id, {}, ACTOR);
    for (const id of SELF_REGISTERED) {
      // SWUpdate PUTs configData only when the poll offers the link: the hub asked again.
      await until(`${id} to send its attributes again`, () => proxy.log.slice(approvedAt).some((r) => r.controllerId === id && r.method === 'PUT' && r.resource === 'configData' && r.status === 200), 30);
      const view = await until(`${id} to show up with a report`, async () => {
        const v = await hub!.service.getDevice(`ddi-${id}`);
        return v.report !== null && v.online ? v : null;
      }, 30);
      assert.equal(view.homeId, 'home-g');
      assert.equal(view.protocol, 'ddi');
      assert.equal(view.firmwareVersion, '1.0.0');
    }
  });

  test('devices with the TargetTokens issued before the restart are served: both homes install at once', async () => {
    for (const [id, homeId] of PROVISIONED) {
      const job = await until(`${id}'s update to be installed`, async () => (await hub!.store.listJobs({ homeId, states: ['rebooting'] }))[0], 90);
      assert.equal(job.deviceId, `ddi-${id}`);
      await until(`${id}'s slot to hold the new image`, () => readFileSync(devices.get(id)!.slot).equals(IMAGE));
    }
    const rebooting = await hub!.store.listJobs({ states: ['rebooting'] });
    assert.deepEqual(rebooting.map((j) => j.deviceId).sort(), ['ddi-kept-1', 'ddi-kept-2'], 'the two homes did not wait for each other');
    for (const [id] of PROVISIONED) {
      assert.deepEqual(proxy.requestsOf(id).filter((r) => r.status === 401 || r.status === 404), [], `${id} was never refused`);
    }
  });
});

/** Whether something listens on the loopback port now. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
