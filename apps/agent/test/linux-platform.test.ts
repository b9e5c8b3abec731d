/**
 * The Linux platform on plain-file slots: both bootloader backends keep the same contract, the
 * whole update runs through it, health and conditions come from commands and files, and network
 * faults end in a verified install or a clean failure — never a bootable slot with unverified
 * bytes (invariant 4).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { ManualClock } from '@firmward/ports';
import type { DeviceEvent, ResultEvent } from '@firmward/protocol';
import { Agent, InProcessTransport, parseJournal } from '../src/index.ts';
import { bootEnvFile } from '../src/linux/file-bootloader.ts';
import { FileDevice } from './faults/file-device.ts';
import type { BackendKind, FileDeviceOptions } from './faults/file-device.ts';
import { IDENTITY, image, offerFor, sha256, startImageServer } from './helpers.ts';
import type { ImageServer } from './helpers.ts';

const NEW = image('1.1.0');
// The manual clock runs fast in these tests; a long stall timeout keeps a busy machine from
// turning into a spurious stall (stalls are covered by the agent's own tests).
const CONFIG = {
  downloadChunkBytes: 8 * 1024, stateReportIntervalMs: 60_000, healthCheckTimeoutMs: 5_000, downloadRetryDelayMs: 1_000, downloadStallTimeoutMs: 3_600_000,
};
const isResult = (e: DeviceEvent): e is ResultEvent => e.type === 'result';

let server: ImageServer;
let dir: string;
before(async () => {
  server = await startImageServer({ '/plug-1.1.0.bin': NEW });
});
after(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'firmward-linux-'));
  server.release();
  Object.assign(server.behaviour, {
    ignoreRange: false, extraBytes: 0, chunked: false, flipByteAt: null, holdAfterBytes: null, dropAfterBytes: null, failNext: 0,
  });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function newDevice(backend: BackendKind, options: Partial<FileDeviceOptions> = {}): Promise<FileDevice> {
  const device = new FileDevice({
    dir, identity: IDENTITY, factoryImage: image('1.0.0'), slotSizeBytes: 256 * 1024, backend, ...options,
  });
  await device.install();
  await device.boot();
  return device;
}

/** Runs agents over the device, restarting one after every reboot, with a manual clock the test drives. */
function runDevice(device: FileDevice) {
  const transport = new InProcessTransport();
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 2, 0));
  const live: { agent: Agent | null } = { agent: null };
  const start = async () => {
    const agent = new Agent({
      platform: device.platform(() => {
        setImmediate(() => {
          void (async () => {
            await agent.stop();
            await device.boot();
            await start();
          })();
        });
        return Promise.resolve();
      }),
      transport, clock, config: CONFIG,
    });
    live.agent = agent;
    await agent.start();
  };
  return { transport, clock, live, start };
}

describe('bootloader backends keep one contract', () => {
  for (const backend of ['file', 'script', 'uboot'] as const) {
    test(`${backend}: trial, bounded attempts, fallback, commit`, async () => {
      const device = await newDevice(backend);
      const bl = device.bootloader;
      assert.deepEqual(await bl.read(), { current: 'a', committed: 'a', trial: null, good: { a: true, b: false } });
      await bl.markBad('b');
      await bl.setPrimary('b');
      assert.deepEqual((await bl.read()).trial, { slot: 'b', attemptsLeft: 3 });
      assert.equal(bootEnvFile(device.statePath, () => true).slot, 'b');
      let s = await bl.read();
      assert.equal(s.current, 'b');
      assert.equal(s.committed, 'a');
      assert.deepEqual(s.trial, { slot: 'b', attemptsLeft: 2 });
      await bl.markGood('b');
      s = await bl.read();
      assert.deepEqual(s, { current: 'b', committed: 'b', trial: null, good: { a: true, b: true } });
      // A trial whose image never starts: every try counts, then the known-good slot boots.
      await bl.setPrimary('a');
      const boot = bootEnvFile(device.statePath, (slot) => slot === 'b');
      assert.deepEqual(boot, { slot: 'b', fellBack: true });
      s = await bl.read();
      assert.deepEqual(s, { current: 'b', committed: 'b', trial: { slot: 'a', attemptsLeft: 0 }, good: { a: false, b: true } });
    });
  }
});

describe('the agent on the Linux platform', () => {
  test('custom script backend: download, verify, switch, reboot, commit, report installed', { timeout: 20_000 }, async () => {
    const device = await newDevice('script', { healthCheck: { command: ['sh', '-c', 'echo relay answers'] } });
    const d = runDevice(device);
    await d.start();
    d.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await d.transport.waitForEvent((e) => e.type === 'progress' && e.phase === 'downloaded');
    d.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const result = await d.transport.waitForEvent(isResult);
    assert.equal(result.outcome, 'installed');
    assert.equal(result.firmwareVersion, '1.1.0');
    assert.equal(sha256(await device.slotBytes('b', NEW.byteLength)), sha256(NEW));
    assert.deepEqual(await device.bootloaderState(), { current: 'b', committed: 'b', trial: null, good: { a: true, b: true } });
    await d.live.agent?.stop();
  });

  test('U-Boot env backend: a failing health check rolls back and says why', { timeout: 20_000 }, async () => {
    const device = await newDevice('uboot', {
      // Unhealthy whenever slot b (the new version) runs.
      healthCheck: { command: ['sh', '-c', 'if grep -q "^FW_CURRENT=b" "$0"; then echo "The radio did not come up."; exit 1; fi', join(dir, 'bootloader.env')] },
    });
    const d = runDevice(device);
    await d.start();
    d.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    await d.transport.waitForEvent((e) => e.type === 'progress' && e.phase === 'downloaded');
    d.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const result = await d.transport.waitForEvent(isResult);
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.firmwareVersion, '1.0.0');
    assert.match(result.message ?? '', /radio did not come up/);
    const s = await device.bootloaderState();
    assert.equal(s.current, 'a');
    assert.equal(s.good.b, false, 'the rejected slot is not bootable');
    await d.live.agent?.stop();
  });

  test('health check: exit code, output and timeout', async () => {
    const device = await newDevice('file', { commandTimeoutMs: 300 });
    const reboot = () => Promise.resolve();
    assert.deepEqual(await device.platform(reboot, { healthCheck: { command: ['sh', '-c', 'echo fine'] } }).healthCheck(), { healthy: true, detail: 'fine' });
    assert.deepEqual(await device.platform(reboot, { healthCheck: { command: ['sh', '-c', 'echo no network >&2; exit 3'] } }).healthCheck(), { healthy: false, detail: 'no network' });
    const slow = await device.platform(reboot, { healthCheck: { command: ['sleep', '5'] } }).healthCheck();
    assert.deepEqual(slow, { healthy: false, detail: 'The health check did not finish in time.' });
    const missing = await device.platform(reboot, { healthCheck: { command: [join(dir, 'no-such-check')] } }).healthCheck();
    assert.equal(missing.healthy, false);
  });

  test('conditions from sysfs-like files and commands, with safe defaults', async () => {
    const capacity = join(dir, 'capacity');
    const status = join(dir, 'status');
    await writeFile(capacity, '12\n');
    await writeFile(status, 'Discharging\n');
    const device = await newDevice('file', {
      conditions: { batteryPercent: { file: capacity }, charging: { file: status }, busy: { command: ['sh', '-c', 'echo 0'] }, signalDbm: { command: ['echo', '-67'] } },
    });
    const platform = device.platform(() => Promise.resolve());
    assert.deepEqual(await platform.conditions(), {
      powerSource: 'battery', batteryPercent: 12, charging: false, signalDbm: -67, busy: false, freeStorageBytes: 256 * 1024,
    });
    // The agent refuses the offer on its own view, and says why.
    const d = runDevice(device);
    await d.start();
    d.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    const ack = await d.transport.waitForEvent((e) => e.type === 'ack');
    assert.equal(ack.type === 'ack' && ack.accepted, false);
    assert.equal(ack.type === 'ack' ? ack.code : null, 'battery_low');
    await d.live.agent?.stop();

    // Unreadable sources: battery unknown on battery power, and busy when the busy check fails.
    const broken = await newDevice('file', { conditions: { batteryPercent: { file: join(dir, 'missing') }, busy: { command: ['false'] } } });
    const c = await broken.platform(() => Promise.resolve()).conditions();
    assert.equal(c.powerSource, 'battery');
    assert.equal(c.batteryPercent, null);
    assert.equal(c.busy, true);
    // Nothing configured: a mains device that is never busy.
    const plain = await (await newDevice('file')).platform(() => Promise.resolve()).conditions();
    assert.equal(plain.powerSource, 'mains');
    assert.equal(plain.busy, false);
  });

  test('the journal is replaced atomically and an unreadable one is reported, not trusted', async () => {
    const device = await newDevice('file');
    const platform = device.platform(() => Promise.resolve());
    assert.equal(await platform.loadJournal(), null);
    await platform.saveJournal({ v: 1, job: null, finished: [], cancelled: ['job-0'] });
    assert.deepEqual(parseJournal(await platform.loadJournal()).journal.cancelled, ['job-0']);
    await writeFile(device.journalPath, '{"v":1,"job":');
    const parsed = parseJournal(await platform.loadJournal());
    assert.notEqual(parsed.error, null);
    assert.equal(parsed.journal.job, null);
  });

  test('refuses to write the running or known-good slot', async () => {
    const device = await newDevice('file');
    const platform = device.platform(() => Promise.resolve());
    await assert.rejects(platform.openSlotWriter('a', { offset: 0 }), /must not be written/);
  });
});

describe('network faults on the file platform: verified install or clean failure', () => {
  async function update(device: FileDevice, url = server.url('/plug-1.1.0.bin')) {
    const d = runDevice(device);
    await d.start();
    d.transport.send(offerFor(NEW, url));
    // The retry pause runs on the manual clock: move it on until the download settles.
    const settled = Promise.race([
      d.transport.waitForEvent((e) => e.type === 'progress' && e.phase === 'downloaded'),
      d.transport.waitForEvent(isResult),
    ]);
    let done = false;
    void settled.then(() => { done = true; });
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await d.clock.advance(1_000);
    }
    const first = await settled;
    if (first.type === 'result') {
      await d.live.agent?.stop();
      return first;
    }
    d.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    const result = await d.transport.waitForEvent(isResult);
    await d.live.agent?.stop();
    return result;
  }

  async function assertNoUnverifiedBootable(device: FileDevice) {
    const s = await device.bootloaderState();
    for (const slot of ['a', 'b'] as const) {
      if (!s.good[slot]) continue;
      const hash = sha256(await device.slotBytes(slot, slot === 'a' ? image('1.0.0').byteLength : NEW.byteLength));
      assert.ok(hash === sha256(image('1.0.0')) || hash === sha256(NEW), `slot ${slot} is bootable and holds a verified image`);
    }
  }

  test('a connection dropped mid-download resumes with Range and installs', { timeout: 20_000 }, async () => {
    const device = await newDevice('file');
    server.behaviour.dropAfterBytes = 24 * 1024;
    const result = await update(device);
    assert.equal(result.outcome, 'installed');
    assert.ok(server.requests.length >= 2, 'the download was tried again after the drop');
    assert.equal(sha256(await device.slotBytes('b', NEW.byteLength)), sha256(NEW));
    await assertNoUnverifiedBootable(device);
  });

  test('a download resumes with Range from the journal after the agent restarts', { timeout: 20_000 }, async () => {
    const device = await newDevice('script');
    server.behaviour.holdAfterBytes = 32 * 1024;
    server.requests.length = 0;
    const d = runDevice(device);
    await d.start();
    d.transport.send(offerFor(NEW, server.url('/plug-1.1.0.bin')));
    const platform = device.platform(() => Promise.resolve());
    // Wait until some bytes are durable and journalled, then stop the agent (a restart).
    for (;;) {
      const job = parseJournal(await platform.loadJournal()).journal.job;
      if (job && job.bytesWritten >= 8 * 1024) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await d.live.agent?.stop();
    server.release();
    const durable = parseJournal(await platform.loadJournal()).journal.job?.bytesWritten ?? 0;
    assert.ok(durable > 0);
    await d.start();
    await d.transport.waitForEvent((e) => e.type === 'progress' && e.phase === 'downloaded');
    assert.ok(server.requests.some((r) => r.range === `bytes=${durable}-` && r.status === 206), JSON.stringify(server.requests));
    d.transport.send({ v: 1, type: 'install', jobId: 'job-1' });
    assert.equal((await d.transport.waitForEvent(isResult)).outcome, 'installed');
    await d.live.agent?.stop();
    await assertNoUnverifiedBootable(device);
  });

  test('a server that ignores Range: the resumed download starts over from byte 0 and installs', { timeout: 20_000 }, async () => {
    const device = await newDevice('script');
    server.behaviour.dropAfterBytes = 24 * 1024;
    server.behaviour.ignoreRange = true;
    const result = await update(device);
    assert.equal(result.outcome, 'installed');
    assert.equal(sha256(await device.slotBytes('b', NEW.byteLength)), sha256(NEW));
    await assertNoUnverifiedBootable(device);
  });

  test('a slow server (held mid-body, then released) installs', { timeout: 20_000 }, async () => {
    const device = await newDevice('file');
    server.behaviour.holdAfterBytes = 16 * 1024;
    void server.held().then(() => setTimeout(() => server.release(), 50));
    const result = await update(device);
    assert.equal(result.outcome, 'installed');
    await assertNoUnverifiedBootable(device);
  });

  test('a server sending more bytes than declared fails cleanly; nothing of it becomes bootable', { timeout: 20_000 }, async () => {
    for (const chunked of [false, true]) {
      const device = await newDevice('uboot');
      server.behaviour.extraBytes = 4096;
      server.behaviour.chunked = chunked;
      const result = await update(device);
      assert.equal(result.outcome, 'failed');
      assert.equal(result.code, 'image_length_mismatch');
      assert.equal(result.firmwareVersion, '1.0.0');
      assert.equal((await device.bootloaderState()).good.b, false);
      await assertNoUnverifiedBootable(device);
      await rm(dir, { recursive: true, force: true });
      dir = await mkdtemp(join(tmpdir(), 'firmward-linux-'));
    }
  });

  test('a corrupted byte fails the hash; the slot stays unbootable', { timeout: 20_000 }, async () => {
    const device = await newDevice('file');
    server.behaviour.flipByteAt = 40_000;
    const result = await update(device);
    assert.equal(result.outcome, 'failed');
    assert.equal(result.code, 'image_hash_mismatch');
    assert.equal((await device.bootloaderState()).good.b, false);
  });
});
