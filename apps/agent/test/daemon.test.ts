/**
 * `firmward-agent` (src/main.ts): its settings file is checked with every problem reported at
 * once, and the daemon waits for a broker that is down, connects when it comes up, and stops
 * cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { credentialCheck, EmbeddedBroker, hashSecret } from '@firmward/mqtt';
import { silentLogger } from '@firmward/ports';
import type { StoredCredential } from '@firmward/mqtt';
import { ReleaseRepository } from '@firmward/release-tool';
import { parseDaemonConfig } from '../src/linux/daemon-config.ts';
import { FileDevice } from './faults/file-device.ts';
import { IDENTITY, image } from './helpers.ts';

const MINIMAL = {
  device: { id: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' },
  hub: { url: 'mqtt://127.0.0.1:1883', passwordFile: '/etc/firmward/secret' },
  slots: { a: '/dev/mmcblk0p2', b: '/dev/mmcblk0p3', sizeBytes: 268435456 },
  bootloader: { kind: 'uboot' },
  trust: { roots: { acme: '/etc/firmward/acme-root.json' } },
};

/** A maker's real root (made with the release tool) for the daemon to ship with. */
async function trustIn(dir: string): Promise<{ roots: Record<string, string>; dir: string }> {
  const { repository } = await ReleaseRepository.init(join(dir, 'maker'), { vendors: [{ name: 'Acme' }] }, { passphrase: 'daemon-test' });
  await repository.publish(join(dir, 'published'));
  return { roots: { acme: join(dir, 'published', 'metadata', '1.root.json') }, dir: join(dir, 'trust') };
}

test('settings: defaults fill in, and every problem is reported at once', () => {
  const config = parseDaemonConfig(JSON.stringify(MINIMAL), 'agent.json');
  assert.equal(config.bootloader.kind, 'uboot');
  assert.deepEqual(config.bootloader.kind === 'uboot' && config.bootloader.printenv, ['fw_printenv']);
  assert.equal(config.journalPath, '/var/lib/firmward/journal.json');
  assert.deepEqual(config.rebootCommand, ['systemctl', 'reboot']);
  assert.equal(config.conditions.busy, null);

  const bad = { ...MINIMAL, device: { vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' }, hub: { url: 'http://x', passwordFile: 'p' },
    slots: { a: '/dev/x', b: '/dev/x', sizeBytes: -1 }, bootloader: { kind: 'grub' }, trust: { roots: {} }, extra: 1 };
  assert.throws(() => parseDaemonConfig(JSON.stringify(bad), 'agent.json'), (error: unknown) => {
    assert.ok(isFirmwardError(error, 'config_invalid'));
    const problems = error.detail?.['problems'] as string[];
    for (const key of ['device.id', 'hub.url', 'slots.sizeBytes', 'bootloader.kind', 'trust.roots', '(top level)']) {
      assert.ok(problems.some((p) => p.startsWith(key)), `${key} is named in ${problems.join(' | ')}`);
    }
    return true;
  });
  assert.throws(() => parseDaemonConfig('{ not json', 'agent.json'), /not valid JSON/);
});

test('the daemon waits for the broker, connects, and stops cleanly on SIGTERM', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'firmward-daemon-'));
  const secret = 'secret-of-plug-1';
  const users = new Map<string, StoredCredential>([
    ['plug-1', { principal: { role: 'device', deviceId: 'plug-1' }, secretHash: await hashSecret(secret, { n: 1024, r: 8, p: 1 }) }],
  ]);
  const credentials = credentialCheck((u) => users.get(u) ?? null);
  // Find a free port, then leave it closed: the broker is "down" when the daemon starts.
  const probe = new EmbeddedBroker({ host: '127.0.0.1', port: 0, credentials, logger: silentLogger });
  const { port } = await probe.start();
  await probe.stop();

  const device = new FileDevice({ dir, identity: IDENTITY, factoryImage: image('1.0.0'), slotSizeBytes: 256 * 1024, backend: 'script' });
  await device.install();
  await device.boot();
  await writeFile(join(dir, 'secret'), `${secret}\n`);
  const configPath = join(dir, 'agent.json');
  await writeFile(configPath, JSON.stringify({
    ...MINIMAL,
    hub: { url: `mqtt://127.0.0.1:${port}`, passwordFile: join(dir, 'secret'), reconnectDelayMs: 200 },
    ...device.daemonSettings(),
    trust: await trustIn(dir),
    healthCheck: { command: ['true'], timeoutMs: 5_000 },
    rebootCommand: ['true'],
  }));
  const child = spawn(process.execPath, [new URL('../src/main.ts', import.meta.url).pathname, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const seen = (text: string) => new Promise<void>((resolve) => {
    const check = () => {
      if (log.includes(text)) {
        child.stderr.off('data', check);
        resolve();
      }
    };
    child.stderr.setEncoding('utf8').on('data', (d: string) => { log += d; check(); });
    check();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port, credentials, logger: silentLogger });
  try {
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(!log.includes('Connected to the hub.'), 'not connected while the broker is down');
    await broker.start();
    await seen('Connected to the hub.');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, log);
    assert.match(log, /Stopped\./);
  } finally {
    child.kill('SIGKILL');
    await broker.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a new version on trial that cannot reach the hub in time is rejected and the device restarts', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'firmward-daemon-'));
  try {
    const device = new FileDevice({ dir, identity: IDENTITY, factoryImage: image('1.0.0'), slotSizeBytes: 256 * 1024, backend: 'file' });
    await device.install();
    await writeFile(device.slots.b, image('1.1.0'));
    await device.bootloader.setPrimary('b');
    await device.boot();
    assert.equal((await device.bootloaderState()).current, 'b');
    await writeFile(join(dir, 'secret'), 'whatever');
    const marker = join(dir, 'rebooted');
    const configPath = join(dir, 'agent.json');
    // Port 9 on loopback: nothing listens, so the hub is never reached.
    await writeFile(configPath, JSON.stringify({
      ...MINIMAL,
      hub: { url: 'mqtt://127.0.0.1:9', passwordFile: join(dir, 'secret'), reconnectDelayMs: 100 },
      ...device.daemonSettings(),
      trust: await trustIn(dir),
      rebootCommand: ['touch', marker],
      trialConnectDeadlineMs: 300,
    }));
    const child = spawn(process.execPath, [new URL('../src/main.ts', import.meta.url).pathname, '--config', configPath], { stdio: ['ignore', 'ignore', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      while (!existsSync(marker)) await new Promise((resolve) => setTimeout(resolve, 20));
      const state = await device.bootloaderState();
      assert.equal(state.good.b, false, 'the trial slot is marked bad');
      assert.deepEqual(state.trial, { slot: 'b', attemptsLeft: 0 });
      // The "restart": the bootloader goes back to the known-good slot.
      assert.equal((await device.boot()).slot, 'a');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
