/**
 * The CLI as a person runs it: a child process against a real HTTP server (the hub's own edge
 * over a fake HubService), so argument parsing, the HTTP client, auth and exit codes are all real.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { createHttpApp, serveHttp } from '../../hub/src/http/index.ts';
import type { RunningHttpServer } from '../../hub/src/http/index.ts';
import { seededFake } from '../../hub/test/fake-hub-service.ts';
import type { FakeHubService } from '../../hub/test/fake-hub-service.ts';
import type { DeviceView, HomeView } from '../src/client.ts';
import { MAIN, runCli } from './run-cli.ts';
import type { CliRun } from './run-cli.ts';

const TOKEN = 'cli-test-owner-token-0123456789';

let fake: FakeHubService;
let server: RunningHttpServer;
let hub: string;

before(async () => {
  fake = seededFake();
  server = await serveHttp(createHttpApp(fake, { ownerToken: TOKEN, maxBodyBytes: 65536 }), { host: '127.0.0.1', port: 0 });
  hub = `http://127.0.0.1:${server.port}`;
});
after(() => server.close());

/** Runs `firmward --hub <the fake's> …`; never throws on a non-zero exit (the test asserts on the code). */
function firmward(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['--hub', hub, ...args], { env });
}

describe('firmward CLI', () => {
  test('status --json prints the homes and devices the hub returns', async () => {
    const { code, stdout } = await firmward(['--token', TOKEN, 'status', '--json']);
    assert.equal(code, 0);
    const parsed = JSON.parse(stdout) as { homes: HomeView[]; devices: DeviceView[] };
    assert.deepEqual(parsed.homes, [...fake.homes.values()]);
    assert.deepEqual(parsed.devices, [...fake.devices.values()]);
  });

  test('status prints each device with its summary sentence, halts and recovery steps', async () => {
    const { code, stdout } = await firmward(['status'], { FIRMWARD_OWNER_TOKEN: TOKEN });
    assert.equal(code, 0);
    for (const device of fake.devices.values()) {
      const line = stdout.split('\n').find((l) => l.includes(`(${device.id})`));
      assert.ok(line !== undefined, `a line for ${device.id}`);
      assert.ok(line.includes(device.update.summary), `${device.id}: ${line}`);
    }
    for (const home of fake.homes.values()) assert.ok(stdout.includes(home.summary));
    assert.match(stdout, /Halted: The thermostat came back on 2\.0\.0/);
    assert.match(stdout, /firmward resume home-2/);
    assert.match(stdout, /1\. Leave it powered for ten minutes\./);
    assert.match(stdout, /CVE-2026-1234/);
  });

  test('status names a maker\'s repository the hub refuses, with its code and sentence, before the homes', async () => {
    fake.repositories = [
      { name: 'acme', trusted: false, code: 'metadata_expired', message: 'The signed release list of acme has expired, so no update from it is trusted until the maker refreshes it.', refusedImages: [] },
      { name: 'globex', trusted: true, code: null, message: null, refusedImages: [] },
    ];
    try {
      const { code, stdout } = await firmward(['--token', TOKEN, 'status']);
      assert.equal(code, 0);
      assert.match(stdout.split('\n')[0]!, /^Release repository acme refused \(metadata_expired\): The signed release list of acme has expired/);
      assert.doesNotMatch(stdout, /globex/);
    } finally {
      fake.repositories = [];
    }
  });

  test('rollout start, rollouts, pause: the hub\'s rollout and its sentence; bad waves refused before asking the hub', async () => {
    const started = await firmward(['--token', TOKEN, 'rollout', 'start', 'acme/plug/1.1.0', '--waves', '10,50,100', '--max-failure-rate', '0.1', '--json']);
    assert.equal(started.code, 0, started.stdout);
    const view = JSON.parse(started.stdout) as { id: string; rules: { waves: number[]; maxFailureRate: number } };
    assert.deepEqual(view.rules.waves, [10, 50, 100]);
    assert.equal(view.rules.maxFailureRate, 0.1);
    const listed = await firmward(['--token', TOKEN, 'rollouts']);
    assert.match(listed.stdout, /acme\/plug\/1\.1\.0\s+running\s+\[10 %\] → 50 % → 100 %/);
    const paused = await firmward(['--token', TOKEN, 'rollout', 'pause', view.id]);
    assert.match(paused.stdout, /paused\s/);
    const calls = fake.calls.length;
    const bad = await firmward(['--token', TOKEN, 'rollout', 'start', 'acme/plug/1.1.0', '--waves', '10,abc']);
    assert.equal(bad.code, 2, 'a bad argument is a usage error (2)');
    assert.match(bad.stderr, /percentages/);
    assert.equal(fake.calls.length, calls, 'refused before the hub was asked');
  });

  test('status --home shows only that home', async () => {
    const { code, stdout } = await firmward(['--token', TOKEN, 'status', '--home', 'home-2', '--json']);
    assert.equal(code, 0);
    const parsed = JSON.parse(stdout) as { homes: HomeView[]; devices: DeviceView[] };
    assert.deepEqual(parsed.homes.map((h) => h.id), ['home-2']);
    assert.deepEqual(parsed.devices.map((d) => d.id), ['thermo']);
  });

  test('history --outcome failed --json asks the hub for failures only', async () => {
    const { code, stdout } = await firmward(['--token', TOKEN, 'history', '--outcome', 'failed', '--limit', '5', '--json']);
    assert.equal(code, 0);
    const events = JSON.parse(stdout) as { code: string; to: string }[];
    assert.deepEqual(events.map((e) => e.code), ['rolled_back']);
    const readable = await firmward(['--token', TOKEN, 'history', '--device', 'plug']);
    assert.match(readable.stdout, /Kitchen plug\s+downloaded → installing\s+hub\s+Checks passed again/);
  });

  test('a refusal from the hub exits with its kind (6: conflict) and the hub\'s sentence', async () => {
    const { code, stdout, stderr } = await firmward(['--token', TOKEN, 'cancel', 'job-run']);
    assert.equal(code, 6, 'cancel_too_late is a conflict (6)');
    assert.equal(stdout, '');
    assert.equal(stderr.trim(), 'The device is already installing; stopping now could break it, so the update goes on.');
    const missing = await firmward(['--token', TOKEN, 'resume', 'home-1']);
    assert.equal(missing.code, 6, 'queue_not_halted is a conflict (6)');
    assert.match(missing.stderr, /not halted/);
  });

  test('a wrong token exits 4 and says so', async () => {
    const { code, stderr } = await firmward(['--token', 'wrong-token-0123456789abcdef', 'devices']);
    assert.equal(code, 4, 'a wrong token is not allowed (4)');
    assert.match(stderr, /owner token is wrong/);
  });

  test('no token anywhere: exit 4, a clear sentence, and no request is made', async () => {
    const before = fake.calls.length;
    const { code, stderr } = await firmward(['devices']);
    assert.equal(code, 4, 'no token is not allowed (4)');
    assert.match(stderr, /No owner token found/);
    assert.equal(fake.calls.length, before);
  });

  test('an unreachable hub exits 3 and is named', async () => {
    const { code, stderr } = await firmward(['--token', TOKEN, '--hub', 'http://127.0.0.1:1', 'devices']);
    assert.equal(code, 3, 'unreachable (3)');
    assert.match(stderr, /Cannot reach the hub at http:\/\/127\.0\.0\.1:1/);
  });

  test('force needs --yes (else exit 2), and then reaches the hub as a forced start', async () => {
    const refused = await firmward(['--token', TOKEN, 'force', 'lock']);
    assert.equal(refused.code, 2, 'a missing --yes is a usage error (2)');
    assert.match(refused.stderr, /skips the safety checks/);
    assert.ok(!fake.calls.some((c) => c.method === 'force'));
    const forced = await firmward(['--token', TOKEN, 'force', 'lock', '--yes', '--json']);
    assert.equal(forced.code, 0);
    assert.equal((JSON.parse(forced.stdout) as { forcedBy: string }).forcedBy, 'person:owner');
  });

  test('update prints the queued job', async () => {
    const { code, stdout } = await firmward(['--token', TOKEN, 'update', 'lock']);
    assert.equal(code, 0);
    assert.match(stdout, /Update of lock from 3\.0\.0 to 3\.1\.0 \(job job-wait\): waiting\./);
    assert.deepEqual(fake.calls.at(-1), { method: 'updateNow', args: ['lock', 'person:owner'] });
  });

  test('an unknown command is a usage error (2)', async () => {
    const { code, stderr } = await firmward(['--token', TOKEN, 'explode']);
    assert.equal(code, 2, 'an unknown command is a usage error (2)');
    assert.match(stderr, /unknown command/);
  });

  test('watch follows a running update and exits 0 when it succeeds', async () => {
    const child = spawn(process.execPath, [MAIN, '--hub', hub, '--token', TOKEN, 'watch', '--device', 'plug'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // A watcher that never ends must fail this test, not hang the suite.
    const guard = setTimeout(() => child.kill(), 20_000);
    // Wait until the watcher is subscribed to the live stream, then finish the update.
    while (fake.listeners.size === 0 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    fake.jobs.set('job-run', { ...fake.jobs.get('job-run')!, state: 'succeeded', progressPercent: 100 });
    fake.emit({ homeId: 'home-1', deviceId: 'plug', jobId: 'job-run', kind: 'transition', from: 'confirming', to: 'succeeded', code: 'confirmed', message: 'Updated to 1.3.0; it stayed healthy.', actor: 'hub' });
    const code = await exited;
    clearTimeout(guard);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Kitchen plug: Updated to 1\.3\.0; it stayed healthy\./);
    assert.match(stdout, /Kitchen plug: updated to 1\.3\.0\./);
  });

  test('watch with nothing running says so and exits 0', async () => {
    const { code, stdout } = await firmward(['--token', TOKEN, 'watch', '--device', 'thermo']);
    assert.equal(code, 0);
    assert.match(stdout, /Nothing to watch: Thermostat: The update to 2\.1\.0 failed/);
  });
});
