/**
 * The README's "Your own home", followed as a person does, with commands only: an empty hub, a
 * home, the maker's repository (published with the release tool) added at run time, an enrollment
 * code, the real agent daemon on file slots presenting it, the owner's approval, an update, the
 * device restarting into the new version. Every step is a separate process (`firmward`,
 * `firmward-agent`, `firmward-hub`) talking over the network; the test reads no store.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildFirmwareImage } from '@firmward/agent';
import { FileDevice } from '../../agent/test/faults/file-device.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = {
  firmward: path.join(REPO, 'apps/cli/src/main.ts'),
  hub: path.join(REPO, 'apps/hub/src/main.ts'),
  agent: path.join(REPO, 'apps/agent/src/main.ts'),
};
const IDENTITY = { deviceId: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' };
const SLOT_BYTES = 4 * 1024 * 1024;

const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await sleep(100);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One command, as typed: its exit code and output (never throws on a refusal). */
async function sh(bin: keyof typeof BIN, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN[bin], ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A long-running command (the hub, the agent daemon), with its output kept. */
function background(bin: keyof typeof BIN, args: string[], cwd: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN[bin], ...args], { cwd, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { output += d; });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { output += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

/** What the test was waiting for when it gave up: the hub's and the agent's words. */
let explain: () => Promise<string> = () => Promise.resolve('');

async function until<T>(what: string, check: () => Promise<T | null | undefined> | T | null | undefined, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${await explain()}`);
    await sleep(100);
  }
}

test('README "Your own home": empty hub → home → repository → enrollment → approval → the device updated', { timeout: 240_000 }, async () => {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Your own home'), readme.indexOf('## How it keeps the rules'));
  // The steps this test runs are the ones the README gives.
  for (const command of [
    'npm run hub', 'npx firmward home add', 'npx firmward home set my-flat', 'npx firmward repo add', 'npx firmward enroll my-flat',
    'firmward-agent enroll --config /etc/firmward/agent.json --hub', 'npx firmward pending', 'npx firmward approve plug-1',
    'firmward-agent --config /etc/firmward/agent.json', 'npx firmward update plug-1', 'npx firmward status',
  ]) assert.ok(section.includes(command), `the README's steps say "${command}"`);

  const home = mkdtempSync(path.join(tmpdir(), 'firmward-own-home-'));
  dirs.push(home);
  const maker = path.join(home, 'maker');
  const device = path.join(home, 'device');
  await mkdir(maker);
  await mkdir(device);

  // 1. Start the hub without the demo (its data folder: ./data where it runs).
  const hub = background('hub', ['--port', '0', '--mqtt-port', '0'], home);
  const banner = await until('the hub to start', () => /Dashboard\s+(http:\/\/\S+)\//.exec(hub.output()));
  const hubUrl = banner[1]!;
  assert.match(hub.output(), /Owner token \S+\s+\(shown once/);
  assert.match(hub.output(), /create the owner account and your first home/);
  const status0 = await sh('firmward', ['status'], home);
  assert.equal(status0.code, 0, status0.stderr);

  // 2. Create your home.
  const made = await sh('firmward', ['home', 'add', 'My flat', '--time-zone', 'Europe/Berlin', '--quiet-hours', '01:00-05:00'], home);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /my-flat/);
  // No waiting for the soak time in a test: the new version is confirmed as soon as it reports healthy.
  const soak = await sh('firmward', ['home', 'set', 'my-flat', '--soak-minutes', '0'], home);
  assert.equal(soak.code, 0, soak.stderr);

  // 3. Trust the maker's repository. The maker signs and publishes with the release tool.
  const release = { FIRMWARD_RELEASE_PASSPHRASE: 'maker-passphrase-1', FIRMWARD_RELEASE_REPO: path.join(maker, 'work') };
  for (const args of [
    ['release', 'init', '--vendor', 'Acme', '--root-keys', '1', '--root-threshold', '1'],
  ]) {
    const r = await sh('firmward', args, maker, release);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  await writeFile(path.join(maker, 'plug-1.1.0.bin'), buildFirmwareImage({ vendor: 'Acme', model: 'Plug', version: '1.1.0' }, 64 * 1024));
  await writeFile(path.join(maker, 'release.json'), JSON.stringify({
    vendor: 'Acme', model: 'Plug', hardwareRevisions: ['rev2'], version: '1.1.0', expectedInstallSeconds: 30,
    recovery: { steps: ['Unplug it for ten seconds and plug it in again.'] },
  }));
  for (const args of [['release', 'add', 'plug-1.1.0.bin', '--custom', 'release.json'], ['release', 'publish', path.join(maker, 'public')]]) {
    const r = await sh('firmward', args, maker, release);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const root = path.join(maker, 'public', 'metadata', '1.root.json');
  const added = await sh('firmward', ['repo', 'add', 'acme', `file://${path.join(maker, 'public')}/`, '--root', root], home);
  assert.equal(added.code, 0, added.stderr);
  const listed = await sh('firmward', ['repo', 'list', '--json'], home);
  assert.deepEqual((JSON.parse(listed.stdout) as { name: string; trusted: boolean; releases: number }[]).map((r) => [r.name, r.trusted, r.releases]), [['acme', true, 1]]);

  // 4. A one-time code for the home.
  const enrolled = await sh('firmward', ['enroll', 'my-flat', '--json'], home);
  assert.equal(enrolled.code, 0, enrolled.stderr);
  const code = (JSON.parse(enrolled.stdout) as { code: string }).code;

  // 5. On the device: its agent.json (file slots, a custom bootloader script, the maker's root), then the code.
  const plug = new FileDevice({ dir: device, identity: IDENTITY, factoryImage: buildFirmwareImage({ vendor: 'Acme', model: 'Plug', version: '1.0.0' }, 64 * 1024), slotSizeBytes: SLOT_BYTES, backend: 'script' });
  await plug.install();
  await plug.boot();
  const rebooted = path.join(device, 'rebooted');
  const agentJson = path.join(device, 'agent.json');
  await writeFile(agentJson, JSON.stringify({
    device: { id: IDENTITY.deviceId, vendor: IDENTITY.vendor, model: IDENTITY.model, hardwareRevision: IDENTITY.hardwareRevision },
    hub: { passwordFile: path.join(device, 'credentials.json'), reconnectDelayMs: 200 },
    ...plug.daemonSettings(),
    trust: { roots: { acme: root }, dir: path.join(device, 'trust') },
    healthCheck: { command: ['true'], timeoutMs: 5_000 },
    rebootCommand: ['touch', rebooted],
    agent: { stateReportIntervalMs: 500, downloadRetryDelayMs: 500 },
  }));
  const enrolling = background('agent', ['enroll', '--config', agentJson, '--hub', hubUrl, '--code', code], device);
  await until('the device to wait for approval', () => /[Ww]aiting for approval/.exec(enrolling.output()));

  // 6. Approve it.
  const pending = await sh('firmward', ['pending'], home);
  assert.match(pending.stdout, /plug-1/);
  assert.match(pending.stdout, /Acme Plug/);
  const approved = await sh('firmward', ['approve', 'plug-1'], home);
  assert.equal(approved.code, 0, approved.stderr);
  assert.equal(await enrolling.exited, 0, enrolling.output());
  const credentials = path.join(device, 'credentials.json');
  assert.equal(statSync(credentials).mode & 0o777, 0o600, 'the agent keeps its secret 0600');

  // 7. The agent as a service; it reports, and "update now" runs it through every safety check.
  let daemon = background('agent', ['--config', agentJson], device);
  explain = async () => `status:\n${(await sh('firmward', ['status'], home)).stdout}\nhistory:\n${(await sh('firmward', ['history'], home)).stdout}\nagent:\n${daemon.output().slice(-3000)}\nhub:\n${hub.output().slice(-3000)}`;
  await until('the device to report', async () => {
    const d = await sh('firmward', ['devices', '--json'], home);
    const [view] = JSON.parse(d.stdout) as { report: unknown }[];
    return view?.report ? true : null;
  });
  const now = await sh('firmward', ['update', 'plug-1'], home);
  assert.equal(now.code, 0, now.stderr);
  await until('the device to restart into the new version', () => (existsSync(rebooted) ? true : null), 90_000);
  // The restart: the agent stops with the device, the bootloader starts the new slot on trial.
  daemon.child.kill('SIGKILL');
  await daemon.exited;
  await rm(rebooted);
  assert.equal((await plug.boot()).slot, 'b');
  daemon = background('agent', ['--config', agentJson], device);
  const done = await until('the update to be confirmed', async () => {
    const d = await sh('firmward', ['devices', '--json'], home);
    const [view] = JSON.parse(d.stdout) as { firmwareVersion: string; update: { jobState: string | null; summary: string } }[];
    return view && (view.update.jobState === 'succeeded' || view.update.jobState === 'failed') ? view : null;
  }, 90_000);
  assert.equal(done.update.jobState, 'succeeded', done.update.summary);
  assert.equal(done.firmwareVersion, '1.1.0');
  assert.equal((await plug.running()).version, '1.1.0');
  const status = await sh('firmward', ['status'], home);
  assert.match(status.stdout, /1\.1\.0/);

  daemon.child.kill('SIGTERM');
  await daemon.exited;
  hub.child.kill('SIGTERM');
  assert.equal(await hub.exited, 0, hub.output());
  assert.equal(existsSync(path.join(home, 'data', 'hub-url')), false, 'a clean stop removes the address file');
});
