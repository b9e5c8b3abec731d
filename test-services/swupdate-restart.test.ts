/**
 * The hub restarted while Debian's SWUpdate downloads an update from it, run after run: the hub is
 * stopped mid-download and started again on the same data folder and port; SWUpdate's download
 * drops, it resumes with Range once the hub is back, installs, restarts (`-c 2`), and the update
 * ends succeeded — never failed, and the home never halts.
 *
 * Each run is a new device (its own home, registered by a person with its own TargetToken), so the
 * runs do not wait for one another. SWUpdate's own speed limit (`-n`) stretches the download over
 * a few seconds; a proxy records what it asked for and what the hub answered across the restart.
 * Every other run the maker's repository answers slowly while the hub starts again, so SWUpdate's
 * resumed download reaches the hub's open port before the hub has handed the running update back
 * to its DDI gateway: the request waits for that (the start-up gate) instead of being told 404.
 *
 * Needs `swupdate`, `cpio` and `openssl` (.ci/run installs them).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { SystemClock } from '@firmward/ports';
import { startHub } from '../apps/hub/src/hub.ts';
import type { RunningHub } from '../apps/hub/src/hub.ts';
import { freePort } from '../packages/ports/testing/free-port.ts';
import { OWNER_TOKEN, RepositoryServer, hubConfig, hubLog, openHome, requireTools, signedRelease, waiter } from './swupdate-hub.ts';
import type { SignedRelease } from './swupdate-hub.ts';
import { SwupdateDevice } from './swupdate-device.ts';
import { DdiProxy } from './swupdate-proxy.ts';
import type { ProxiedRequest } from './swupdate-proxy.ts';

const RUNS = 6;
/**
 * How the hub comes back: at once, or slowly — its port open, its engine still reading the maker's
 * repository when SWUpdate's resumed download arrives.
 */
const MODES = ['quick', 'slow'] as const;
const OLD_SLOT = Buffer.from('the old image\n');
/**
 * 12 MiB at SWUpdate's 2 MiB/s: six seconds of download, most of it still in the hub's file when
 * the hub stops (loopback socket buffers hold a few MiB, which the device still gets).
 */
const IMAGE = randomBytes(12 * 2 ** 20);
const ACTOR = 'person:owner';

describe('Debian SWUpdate: the hub restarted mid-download, run after run', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-swupdate-restart-'));
  const { log, lines, times } = hubLog();
  const devices = new Map<string, SwupdateDevice>();
  const until = waiter(lines, () => devices.values(), () => `--- requests\n${listed(proxy.log.slice(-30))}`);
  let release: SignedRelease;
  let hub: RunningHub;
  let proxy: DdiProxy;
  let config: ReturnType<typeof hubConfig>;
  let repositoryServer: RepositoryServer;
  /** When the restarted hub was ready, from its log. */
  const readyAt = () => times.filter((t) => t.line.includes(' ready ')).at(-1)?.at ?? 0;

  before(async () => {
    requireTools();
    release = await signedRelease(dir, IMAGE);
    repositoryServer = new RepositoryServer(release.repository.publishedDir);
    const repositoryUrl = await repositoryServer.start();
    // A fixed port: the hub comes back where it was, as a hub restarted by its service manager does.
    const port = await freePort();
    config = hubConfig(dir, { repository: { ...release.repository.config, url: repositoryUrl }, ddi: { homeId: '', autoRegister: false }, port });
    hub = await startHub(config, { clock: new SystemClock(), ownerToken: OWNER_TOKEN, log });
    // Paced at the proxy, so the hub's stop reliably falls mid-download (see DdiProxy).
    proxy = new DdiProxy(hub.httpPort, { artifactBytesPerSecond: 2 * 1024 * 1024 });
    await proxy.start();
  });

  after(async () => {
    for (const d of devices.values()) await d.stop();
    await proxy?.stop();
    await hub?.stop();
    await repositoryServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the devices sent while a hub was starting slowly, and what they were answered. */
  const startRequests: ProxiedRequest[] = [];
  const outcomes: { run: number; mode: string; resumedWith: string | null; resumedStatus: number; state: string; heldMs: number | null }[] = [];

  for (let run = 1; run <= RUNS; run++) {
    test(`run ${run}: stopped mid-download and started again, the update still succeeds`, async (t) => {
      const controllerId = `run-${run}`;
      const mode = MODES[(run - 1) % MODES.length]!;
      const slowStart = mode === 'slow';
      const homeId = `home-${run}`;
      await hub.store.putHome(openHome(homeId));
      const registered = await hub.setup.registerDevice(homeId, {
        protocol: 'hawkbit', id: controllerId, name: `Board ${run}`, vendor: 'acme', model: 'board', hardwareRevision: '1.0', firmwareVersion: '1.0.0',
      }, ACTOR);
      assert.equal(registered.credential.kind, 'hawkbit');
      if (registered.credential.kind !== 'hawkbit') return;
      let version = '1.0.0';
      const d = new SwupdateDevice({
        controllerId, dir: path.join(dir, controllerId), cert: release.signer.cert, board: 'board:1.0', auth: { targetToken: registered.credential.targetToken },
        identify: () => ({ vendor: 'acme', model: 'board', hardwareRevision: '1.0', firmwareVersion: version, name: `Board ${run}` }),
        maxDownloadSpeed: '2M',
      });
      writeFileSync(d.slot, OLD_SLOT);
      devices.set(controllerId, d);
      // Whatever fails, this device does not poll on into the next run.
      t.after(() => d.stop());
      const url = `http://127.0.0.1:${proxy.port}`;
      d.start(url);

      // A quarter of the image is through: the hub stops (its connections close) and starts again.
      const downloads = () => proxy.requestsOf(controllerId).filter((r) => r.method === 'GET' && r.resource.includes('/artifacts/'));
      await until(`${controllerId}'s download to be a quarter through`, () => downloads()[0]?.bodyBytes !== undefined && downloads()[0]!.bodyBytes >= release.swu.length / 4);
      const jobId = (await hub.store.listJobs({ deviceId: registered.device.id }))[0]!.id;
      const stoppedAt = proxy.log.length;
      await hub.stop();
      lines.push(`--- hub restarted (run ${run}, ${mode})`);
      // slow: the maker's repository answers the restarted hub after 12 s, so its port is open that
      // long before its engine has handed the running update back: longer than the start-up gate
      // holds a request (10 s), so SWUpdate meets both the hold and the 503 that follows it.
      repositoryServer.hold = slowStart ? sleep(12_000) : null;
      try {
        hub = await startHub(config, { clock: new SystemClock(), ownerToken: OWNER_TOKEN, log });
      } finally {
        repositoryServer.hold = null;
      }
      assert.equal(hub.httpPort, config.http.port);

      await until(`${controllerId}'s update to be installed and waiting for the restart`, async () => {
        const state = (await hub.store.getJob(jobId))?.state;
        assert.notEqual(state, 'failed', `the update failed:\n${JSON.stringify(await hub.store.getJob(jobId))}\n${listed(proxy.log.slice(stoppedAt - 3))}\n--- hub\n${lines.slice(-60).join('\n')}\n--- device\n${d.tail(60)}`);
        return state === 'rebooting';
      }, 120);
      assert.ok(readFileSync(d.slot).equals(IMAGE), 'the slot holds the whole image');
      const first = downloads()[0]!;
      assert.ok(first.dropped, `the first download dropped when the hub stopped: ${listed(downloads())}`);
      const resumed = downloads().find((r) => r.range !== null && r.status === 206);
      assert.ok(resumed, `SWUpdate resumed with Range and the hub answered 206: ${listed(proxy.requestsOf(controllerId).slice(-12))}`);
      const refused = downloads().filter((r) => r.status === 404);
      assert.deepEqual(refused, [], 'no download answered 404 across the restart');
      if (slowStart) {
        // What SWUpdate sent while the hub was starting waited for it, or was told to come back: never refused.
        const duringStart = proxy.log.slice(stoppedAt).filter((r) => r.controllerId === controllerId && r.at < readyAt() && r.answeredAt !== null);
        assert.ok(duringStart.some((r) => r.status === 200 && r.answeredAt! >= readyAt()), `a request was held until the hub was ready:\n${listed(duringStart)}`);
        assert.deepEqual(duringStart.filter((r) => r.status !== 200 && r.status !== 503), [], 'held (200) or told to come back (503)');
        startRequests.push(...duringStart);
      }

      // The device restarts into the new image and reports it installed.
      await d.stop();
      version = '1.1.0';
      d.start(url, 2);
      await until(`${controllerId}'s update to be confirmed`, async () => (await hub.store.getJob(jobId))?.state === 'succeeded', 120);
      assert.equal((await hub.store.getHome(homeId))?.halt, null, 'the home did not halt');
      assert.equal((await hub.store.getDevice(registered.device.id))?.firmwareVersion, '1.1.0');
      await d.stop();
      outcomes.push({
        run, mode, resumedWith: resumed.range, resumedStatus: resumed.status, state: 'succeeded',
        heldMs: resumed.answeredAt === null ? null : resumed.answeredAt - resumed.at,
      });
    });
  }

  test(`every one of the ${RUNS} runs succeeded`, () => {
    assert.equal(outcomes.length, RUNS, JSON.stringify(outcomes));
    console.log(`restart runs: ${JSON.stringify(outcomes)}`);
    console.log(`while the hub started slowly: ${startRequests.length} requests, ${startRequests.filter((r) => r.status === 503).length} answered 503 after the 10 s hold, ${startRequests.filter((r) => r.status === 200).length} held until ready and answered 200`);
  });
});

function listed(requests: ProxiedRequest[]): string {
  const t0 = requests[0]?.at ?? 0;
  return requests.map((r) => `+${r.at - t0} ms ${r.controllerId ?? '?'} ${r.method} ${r.resource || '(poll)'} range=${r.range ?? '-'} → ${r.status} ${r.bodyBytes} B${r.dropped ? ' dropped' : ''}${r.retryAfter ? ` retry-after ${r.retryAfter}` : ''}${r.answeredAt === null ? ' (no answer)' : ` after ${r.answeredAt - r.at} ms`}`).join('\n');
}
