/**
 * Joining a home (src/enrollment/): `firmward-agent enroll` and the daemon's `hub.enroll` against a
 * fake hub that keeps to the enrollment contract and checks what the agent sends; the daemon then
 * connects to a real embedded broker with the secret it was given.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { credentialCheck, EmbeddedBroker, hashSecret } from '@firmward/mqtt';
import type { StoredCredential } from '@firmward/mqtt';
import { enrollmentPayload } from '@firmward/protocol';
import { ScaledClock, silentLogger } from '@firmward/ports';
import { ReleaseRepository } from '@firmward/release-tool';
import { connectionPlan } from '../src/enrollment/connection.ts';
import { brokerUrlOf, parseCredentials } from '../src/enrollment/credentials.ts';
import { decideClaimReply, decideStatusReply, planEnrollment, retryAfterMs } from '../src/enrollment/enroll.ts';
import { runEnrollCommand } from '../src/enrollment/enroll-command.ts';
import { parseDaemonConfig } from '../src/linux/daemon-config.ts';
import { FakeEnrollmentHub } from './fake-enrollment-hub.ts';
import { FileDevice, FIXTURES } from './faults/file-device.ts';
import { IDENTITY, image } from './helpers.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const CODE = 'K7Q2MX9HT4';
const HOMES = { 'home-1': 'The Smiths' };

function baseConfig(dir: string): Record<string, unknown> {
  return {
    device: { id: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' },
    hub: { passwordFile: join(dir, 'credentials.json') },
    slots: { a: join(dir, 'slot-a.img'), b: join(dir, 'slot-b.img'), sizeBytes: 256 * 1024 },
    bootloader: { kind: 'custom', command: [join(FIXTURES, 'custom-bootloader.sh'), join(dir, 'bootloader.env')] },
    trust: { roots: { acme: join(dir, 'acme-root.json') } },
  };
}

interface Run {
  code: Promise<number>;
  out: string[];
  err: string[];
  stop: () => void;
}

/** `firmward-agent enroll …` in this process, on a clock 20 times faster (a 1 s poll takes 50 ms). */
function runEnroll(args: string[]): Run {
  const out: string[] = [];
  const err: string[] = [];
  const stop = new AbortController();
  const code = runEnrollCommand(args, { out: (l) => out.push(l), err: (l) => err.push(l), signal: stop.signal, clock: new ScaledClock(Date.now(), 20), env: {} });
  return { code, out, err, stop: () => stop.abort() };
}

/** Waits until `condition` holds, checking every 10 ms; fails after `timeoutMs` (a deadline, not a measurement). */
async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'firmward-enroll-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeConfig(dir: string, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, 'agent.json');
  await writeFile(path, JSON.stringify({ ...baseConfig(dir), ...extra }));
  return path;
}

async function newHub(codes: Record<string, string> = { [CODE]: 'home-1' }, brokerPort = 1883): Promise<FakeEnrollmentHub> {
  const hub = new FakeEnrollmentHub({ homes: { ...HOMES }, codes, broker: { url: null, port: brokerPort } });
  await hub.start();
  return hub;
}

test('approved after a few polls: the credentials file is 0600, written at once, and says where the broker is', { timeout: 30_000 }, () => withDir(async (dir) => {
  const hub = await newHub();
  try {
    const config = await writeConfig(dir);
    const file = join(dir, 'credentials.json');
    const run = runEnroll(['--config', config, '--hub', `${hub.url}/`, '--code', 'k7q2m-x9ht4', '--name', 'Kitchen plug', '--firmware-version', '1.0.0']);
    await until(() => hub.gets >= 3, 'the agent asked three times');
    const claim = hub.only();
    // Written as soon as the claim was answered, 0600, resumable.
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const waiting = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.equal(waiting['state'], 'waiting');
    assert.equal(waiting['claimId'], claim.claimId);
    assert.equal(waiting['secret'], claim.secret);
    await hub.approve(claim.claimId, 'Kitchen plug joined The Smiths.');
    assert.equal(await run.code, 0, run.err.join('\n'));

    assert.deepEqual(run.out, [
      'Waiting for approval in The Smiths: approve plug-1 on the hub\'s dashboard or with `firmward approve plug-1`.',
      'Kitchen plug joined The Smiths.',
      `Approved: the credentials of plug-1 are in ${file}; the agent connects to mqtt://127.0.0.1:1883.`,
    ]);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), {
      v: 1, state: 'approved', deviceId: 'plug-1', hubUrl: hub.url, homeId: 'home-1', homeName: 'The Smiths', claimId: claim.claimId,
      secret: claim.secret, broker: { url: null, port: 1883 },
    });
    assert.deepEqual(claim.claim, {
      code: CODE, device: { id: 'plug-1', name: 'Kitchen plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' },
    });
    assert.equal(hub.posts, 1);
    assert.deepEqual(hub.violations, []);

    // Running it again changes nothing and says so.
    const again = runEnroll(['--config', config, '--hub', hub.url, '--code', CODE, '--firmware-version', '1.0.0']);
    assert.equal(await again.code, 0);
    assert.match(again.out.join('\n'), /already belongs to the hub/);
    assert.equal(hub.posts, 1);
  } finally {
    await hub.stop();
  }
}));

test('rejected: exit 3 with the hub\'s words, and the same code is not presented again', { timeout: 30_000 }, () => withDir(async (dir) => {
  const hub = await newHub();
  try {
    const config = await writeConfig(dir);
    const payload = enrollmentPayload({ hubUrl: hub.url, homeId: 'home-1', code: CODE });
    const run = runEnroll(['--config', config, '--payload', payload, '--firmware-version', '1.0.0']);
    await until(() => hub.gets >= 1, 'the agent asked once');
    assert.equal(hub.only().claim.homeId, 'home-1');
    hub.reject(hub.only().claimId, 'The owner does not know this plug.');
    assert.equal(await run.code, 3);
    assert.ok(run.err.some((l) => l.includes('The owner does not know this plug.')), run.err.join('\n'));
    const kept = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(kept['state'], 'rejected');
    assert.equal(kept['secret'], undefined, 'a turned-down secret is not kept');

    const again = runEnroll(['--config', config, '--payload', payload, '--firmware-version', '1.0.0']);
    assert.equal(await again.code, 3);
    assert.match(again.err.join('\n'), /turned this request down earlier/);
    assert.equal(hub.posts, 1);
    assert.deepEqual(hub.violations, []);
  } finally {
    await hub.stop();
  }
}));

test('a wrong code, a code of another home or no code at all: exit 4 and no file', { timeout: 30_000 }, () => withDir(async (dir) => {
  const hub = await newHub({ [CODE]: 'home-1' });
  try {
    const config = await writeConfig(dir);
    const file = join(dir, 'credentials.json');
    const wrong = runEnroll(['--config', config, '--hub', hub.url, '--code', 'AAAAA-BBBBB', '--firmware-version', '1.0.0']);
    assert.equal(await wrong.code, 4);
    assert.ok(wrong.err.some((l) => l.includes('This code is wrong, expired or already used; ask for a new one on the hub.')), wrong.err.join('\n'));
    const otherHome = runEnroll(['--config', config, '--hub', hub.url, '--code', CODE, '--home', 'home-2', '--firmware-version', '1.0.0']);
    assert.equal(await otherHome.code, 4);
    assert.ok(otherHome.err.some((l) => l.includes('This code is for another home than home-2.')));
    const typo = runEnroll(['--config', config, '--hub', hub.url, '--code', 'K7Q2M-X9H', '--firmware-version', '1.0.0']);
    assert.equal(await typo.code, 4);
    assert.equal(hub.posts, 2, 'a text that cannot be a code is not sent');
    assert.equal(existsSync(file), false);
    assert.deepEqual(hub.violations, []);

    const usage = runEnroll(['--config', config, '--hub', hub.url]);
    assert.equal(await usage.code, 2);
    assert.match(usage.err.join('\n'), /--code is needed/);
  } finally {
    await hub.stop();
  }
}));

test('a hub that is down at first, then starting (503), then up: the agent keeps trying', { timeout: 30_000 }, () => withDir(async (dir) => {
  const hub = new FakeEnrollmentHub({ homes: { ...HOMES }, codes: { [CODE]: 'home-1' }, broker: { url: 'mqtts://broker.example:8883', port: 8883 } });
  const port = await hub.start();
  await hub.stop();
  try {
    const config = await writeConfig(dir);
    const run = runEnroll(['--config', config, '--hub', `http://127.0.0.1:${port}`, '--code', CODE, '--firmware-version', '1.0.0']);
    await until(() => run.err.some((l) => l.includes('Cannot reach the hub')), 'the agent found the hub down');
    hub.failNext.push({ status: 503, code: 'unavailable', message: 'The hub is starting; try again in a moment.', retryAfter: '1' });
    await hub.start(port);
    await until(() => hub.gets >= 1, 'the agent claimed and asked');
    await hub.approve(hub.only().claimId);
    assert.equal(await run.code, 0, run.err.join('\n'));
    assert.ok(run.err.some((l) => l.startsWith('The hub is starting; try again in a moment.')), run.err.join('\n'));
    assert.deepEqual(hub.requests.map((r) => `${r.method} ${r.status}`).slice(0, 2), ['POST 503', 'POST 202']);
    assert.match(run.out.at(-1) ?? '', /connects to mqtts:\/\/broker\.example:8883/);
    assert.deepEqual(hub.violations, []);
  } finally {
    await hub.stop();
  }
}));

test('stopped while waiting (SIGTERM), then started again: it asks about the same claim, no second POST', { timeout: 30_000 }, () => withDir(async (dir) => {
  const hub = await newHub();
  try {
    const config = await writeConfig(dir);
    const args = ['enroll', '--config', config, '--hub', hub.url, '--code', CODE, '--firmware-version', '1.0.0'];
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('Waiting for approval in The Smiths') && hub.gets >= 1, 'the agent waits');
      child.kill('SIGTERM');
      assert.equal(await exited, 6, err);
    } finally {
      child.kill('SIGKILL');
    }
    assert.match(err, /request already made stays open/);
    const claim = hub.only();
    const gets = hub.gets;

    // A new code is not needed (and one given is not presented while the old request waits).
    const run = runEnroll(args.slice(1));
    await until(() => hub.gets > gets, 'the restarted agent asked again');
    await hub.approve(claim.claimId);
    assert.equal(await run.code, 0, run.err.join('\n'));
    assert.equal(hub.posts, 1);
    assert.ok(hub.requests.filter((r) => r.method === 'GET').every((r) => r.path === `/enroll/v1/claims/${claim.claimId}` && r.status === 200));
    assert.deepEqual(hub.violations, []);
  } finally {
    await hub.stop();
  }
}));

/** A maker's real root (made with the release tool) for the daemon to ship with. */
async function trustIn(dir: string): Promise<{ roots: Record<string, string>; dir: string }> {
  const { repository } = await ReleaseRepository.init(join(dir, 'maker'), { vendors: [{ name: 'Acme' }] }, { passphrase: 'enroll-test' });
  await repository.publish(join(dir, 'published'));
  return { roots: { acme: join(dir, 'published', 'metadata', '1.root.json') }, dir: join(dir, 'trust') };
}

test('the daemon with hub.enroll and no hub.url enrolls, then connects to the broker with its new secret', { timeout: 60_000 }, () => withDir(async (dir) => {
  const users = new Map<string, StoredCredential>();
  const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 0, credentials: credentialCheck((u) => users.get(u) ?? null), logger: silentLogger });
  const { port: brokerPort } = await broker.start();
  const hub = new FakeEnrollmentHub({
    homes: { ...HOMES }, codes: { [CODE]: 'home-1' }, broker: { url: null, port: brokerPort },
    onApproved: async (claim) => {
      users.set(claim.claim.device.id, { principal: { role: 'device', deviceId: claim.claim.device.id }, secretHash: await hashSecret(claim.secret, { n: 1024, r: 8, p: 1 }) });
    },
  });
  await hub.start();
  const device = new FileDevice({ dir, identity: IDENTITY, factoryImage: image('1.0.0'), slotSizeBytes: 256 * 1024, backend: 'script' });
  await device.install();
  await device.boot();
  const configPath = await writeConfig(dir, {
    hub: { passwordFile: join(dir, 'credentials.json'), reconnectDelayMs: 200, enroll: { hubUrl: hub.url, code: 'k7q2m x9ht4', homeId: 'home-1', name: 'Kitchen plug' } },
    ...device.daemonSettings(),
    trust: await trustIn(dir),
    healthCheck: { command: ['true'], timeoutMs: 5_000 },
    rebootCommand: ['true'],
  });
  const daemon = () => {
    const child = spawn(process.execPath, [MAIN, '--config', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    const run = { child, log: '', exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))) };
    child.stderr.setEncoding('utf8').on('data', (d: string) => { run.log += d; });
    return run;
  };
  try {
    const first = daemon();
    try {
      await until(() => first.log.includes('Waiting for approval in The Smiths: approve plug-1') && hub.gets >= 1, 'the daemon waits for approval');
      assert.ok(!first.log.includes('Connected to the hub.'));
      await hub.approve(hub.only().claimId);
      await until(() => first.log.includes('Connected to the hub.'), 'the daemon connected', 20_000);
      assert.ok(first.log.includes(`"url":"mqtt://127.0.0.1:${brokerPort}"`), first.log);
      first.child.kill('SIGTERM');
      assert.equal(await first.exited, 0, first.log);
    } finally {
      first.child.kill('SIGKILL');
    }
    // The version it runs came from the active slot, as the agent reports it.
    assert.equal(hub.only().claim.device.firmwareVersion, '1.0.0');
    assert.equal(hub.only().claim.device.name, 'Kitchen plug');
    const credentials = JSON.parse(await readFile(join(dir, 'credentials.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(credentials['state'], 'approved');
    assert.equal(credentials['secret'], hub.only().secret);
    assert.deepEqual(hub.violations, []);

    // Started again with the hub gone: the credentials file is all it needs.
    await hub.stop();
    const second = daemon();
    try {
      await until(() => second.log.includes('Connected to the hub.'), 'the daemon connected again', 20_000);
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.log);
    } finally {
      second.child.kill('SIGKILL');
    }
    assert.equal(hub.posts, 1);
  } finally {
    await hub.stop();
    await broker.stop();
  }
}));

test('credentials file: a plain secret as before, the JSON record, and the broker address it implies', () => {
  assert.deepEqual(parseCredentials('  s3cret-of-plug\n', 'f'), { kind: 'secret', secret: 's3cret-of-plug' });
  assert.deepEqual(parseCredentials('', 'f'), { kind: 'none' });
  assert.deepEqual(parseCredentials('["not", "a", "record"]', 'f'), { kind: 'secret', secret: '["not", "a", "record"]' });
  const handWritten = parseCredentials(JSON.stringify({ v: 1, deviceId: 'plug-1', secret: 'x'.repeat(43), broker: { url: null, port: 1883 }, hubUrl: 'http://hub.local:8080' }), 'f');
  assert.equal(handWritten.kind === 'file' && handWritten.file.state, 'approved');
  assert.throws(() => parseCredentials(JSON.stringify({ v: 1, deviceId: 'plug-1', secret: 'x', broker: { url: 'http://nope', port: 1883 }, hubUrl: 'http://hub.local:8080' }), 'f'),
    (error: unknown) => isFirmwardError(error, 'config_invalid') && /broker/.test(error.message));
  assert.equal(brokerUrlOf({ url: null, port: 1883 }, 'http://hub.local:8080/base'), 'mqtt://hub.local:1883');
  assert.equal(brokerUrlOf({ url: null, port: 1884 }, 'http://[fd00::1]:8080'), 'mqtt://[fd00::1]:1884');
  assert.equal(brokerUrlOf({ url: 'mqtts://broker.example:8883', port: 1883 }, 'http://hub.local:8080'), 'mqtts://broker.example:8883');
});

test('settings: hub.url is optional, hub.enroll is checked and made canonical, and with no way to the hub the daemon says what to do', () => {
  const base = { ...baseConfig('/x'), hub: { passwordFile: '/x/credentials.json', enroll: { hubUrl: 'http://Hub.local:8080/', code: 'k7q2m-x9ht4' } } };
  const config = parseDaemonConfig(JSON.stringify(base), 'agent.json');
  assert.equal(config.hub.url, undefined);
  assert.deepEqual(config.hub.enroll, { hubUrl: 'http://hub.local:8080', code: CODE });
  const fromPayload = parseDaemonConfig(JSON.stringify({ ...base, hub: { passwordFile: 'p', enroll: { payload: enrollmentPayload({ hubUrl: 'http://hub.local:8080', homeId: 'home-1', code: CODE }) } } }), 'agent.json');
  assert.deepEqual(fromPayload.hub.enroll, { hubUrl: 'http://hub.local:8080', code: CODE, homeId: 'home-1' });
  assert.throws(() => parseDaemonConfig(JSON.stringify({ ...base, hub: { passwordFile: 'p', enroll: { hubUrl: 'mqtt://hub', code: 'short' } } }), 'agent.json'), (error: unknown) => {
    assert.ok(isFirmwardError(error, 'config_invalid'));
    const problems = error.detail?.['problems'] as string[];
    assert.ok(problems.some((p) => p.startsWith('hub.enroll.hubUrl')), problems.join(' | '));
    assert.ok(problems.some((p) => p.startsWith('hub.enroll.code')), problems.join(' | '));
    return true;
  });

  const bare = parseDaemonConfig(JSON.stringify({ ...base, hub: { passwordFile: '/x/credentials.json' } }), 'agent.json');
  assert.throws(() => connectionPlan(bare, { kind: 'none' }, 'agent.json'),
    (error: unknown) => isFirmwardError(error, 'config_invalid') && error.message.includes('firmward-agent enroll --config agent.json') && error.message.includes('hub.enroll'));
  assert.throws(() => connectionPlan(bare, { kind: 'secret', secret: 's' }, 'agent.json'), /set hub\.url/);
  const approved = { v: 1, state: 'approved', deviceId: 'plug-1', hubUrl: 'http://hub.local:8080', secret: 's'.repeat(43), broker: { url: null, port: 1883 } } as const;
  assert.deepEqual(connectionPlan(bare, { kind: 'file', file: approved }, 'agent.json'), { kind: 'connect', url: 'mqtt://hub.local:1883', password: approved.secret });
  const overridden = parseDaemonConfig(JSON.stringify({ ...base, hub: { url: 'mqtts://other:8883', passwordFile: 'p' } }), 'agent.json');
  assert.deepEqual(connectionPlan(overridden, { kind: 'file', file: approved }, 'agent.json'), { kind: 'connect', url: 'mqtts://other:8883', password: approved.secret });
  assert.deepEqual(connectionPlan(overridden, { kind: 'secret', secret: 's' }, 'agent.json'), { kind: 'connect', url: 'mqtts://other:8883', password: 's' });
});

test('decisions: which claim to ask about, and what each answer of the hub leads to', () => {
  const target = { hubUrl: 'http://hub.local:8080', code: CODE };
  const waiting = {
    v: 1, state: 'waiting', deviceId: 'plug-1', hubUrl: 'http://hub.local:8080', homeId: 'home-1', homeName: 'The Smiths', claimId: 'c-1',
    codeDigest: '0'.repeat(64), secret: 's'.repeat(43), broker: { url: null, port: 1883 },
  } as const;
  assert.equal(planEnrollment({ kind: 'none' }, target, 'plug-1', 'f').step, 'claim');
  assert.equal(planEnrollment({ kind: 'file', file: waiting }, target, 'plug-1', 'f').step, 'poll');
  assert.equal(planEnrollment({ kind: 'file', file: waiting }, null, 'plug-1', 'f').step, 'poll');
  assert.equal(planEnrollment({ kind: 'file', file: waiting }, { ...target, hubUrl: 'http://other:8080' }, 'plug-1', 'f').step, 'claim');
  const secret = planEnrollment({ kind: 'secret', secret: 's' }, target, 'plug-1', 'f');
  assert.equal(secret.step === 'stop' && secret.outcome.kind, 'invalid_request', 'a working secret is never overwritten');

  const context = { failures: 0, now: 0 };
  const error = (status: number, code: string, retryAfter: string | null = null) => ({ kind: 'error' as const, status, code, message: `${code}.`, retryAfter });
  const claimOutcome = (status: number, code: string) => {
    const d = decideClaimReply(error(status, code), 'plug-1', context);
    return d.do === 'stop' ? d.outcome.kind : d.do;
  };
  assert.equal(claimOutcome(400, 'enrollment_invalid'), 'code_invalid');
  assert.equal(claimOutcome(400, 'enrollment_wrong_home'), 'code_invalid');
  assert.equal(claimOutcome(409, 'conflict'), 'refused');
  assert.equal(claimOutcome(429, 'too_many_attempts'), 'retry');
  assert.equal(claimOutcome(503, 'unavailable'), 'retry');
  assert.equal(claimOutcome(404, 'http_404'), 'unreachable');
  assert.equal(decideStatusReply(error(404, 'not_found'), 'plug-1', context).do, 'gone');
  assert.equal(decideStatusReply({ kind: 'unreachable', message: 'down' }, 'plug-1', context).do, 'retry');
  const approvedAsOther = decideStatusReply({ kind: 'ok', value: { state: 'approved', message: '', deviceId: 'plug-2', homeId: 'h', broker: { url: null, port: 1 } } }, 'plug-1', context);
  assert.equal(approvedAsOther.do === 'stop' && approvedAsOther.outcome.kind, 'refused');

  assert.equal(retryAfterMs('7', context), 7000);
  assert.equal(retryAfterMs('999999', context), 3_600_000);
  assert.equal(retryAfterMs(new Date(60_000).toUTCString(), context), 60_000);
  assert.equal(retryAfterMs(null, { failures: 3, now: 0 }), 8000);
  assert.equal(retryAfterMs(null, { failures: 30, now: 0 }), 30_000);
});
