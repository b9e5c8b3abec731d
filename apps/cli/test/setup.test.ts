/**
 * Setting a home up from the command line against the real hub (started in-process in a temp
 * data folder, embedded broker, hawkBit device API on): homes, enrollment codes, a device that
 * claims a code and is approved, devices changed and removed, credentials, repositories, hawkBit
 * registration, bridges — and how the CLI finds the hub and what it exits with.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SystemClock, silentLogger } from '@firmward/ports';
import { loadConfig } from '../../hub/src/config.ts';
import { startHub } from '../../hub/src/hub.ts';
import type { RunningHub } from '../../hub/src/hub.ts';
import { ensureOwnerToken } from '../../hub/src/owner-token.ts';
import { publishFleetRelease } from '../../hub/test/fixtures/fleet-fixture.ts';
import type {
  BridgeView, DdiSettingsView, DeviceView, EnrollmentView, HomeDeletion, HomeView, IssuedCredential, PendingDeviceView, RegisteredDevice,
  RepositoryView,
} from '../src/client.ts';
import { runCli } from './run-cli.ts';
import type { CliRun } from './run-cli.ts';

const TOKEN = 'cli-setup-test-owner-token-0123456789';
const GATEWAY_TOKEN = 'cli-setup-test-gateway-token-0123456789';

const dirs: string[] = [];
let work: string;
let hub: RunningHub;
let url: string;

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

before(async () => {
  // The hub keeps its data in <work>/data, the folder a CLI run in <work> looks in by default.
  work = tempDir('firmward-cli-setup-');
  const dataDir = path.join(work, 'data');
  mkdirSync(dataDir);
  ensureOwnerToken(dataDir, TOKEN);
  const config = loadConfig({
    argv: ['--data-dir', dataDir, '--port', '0', '--mqtt-port', '0', '--ddi'],
    env: { FIRMWARD_DDI_GATEWAY_TOKEN: GATEWAY_TOKEN }, readFile: () => { throw new Error('no config file'); },
  });
  hub = await startHub(config, { clock: new SystemClock(), log: silentLogger, ownerToken: TOKEN });
  url = `http://127.0.0.1:${hub.httpPort}`;
});
after(async () => {
  await hub.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `firmward --hub <the hub> --token <owner> …`. */
function firmward(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['--hub', url, '--token', TOKEN, ...args], { env });
}

async function json<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await firmward([...args, '--json'], env);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** What a Firmward agent sends with an enrollment code (packages/protocol/src/enrollment.ts). */
async function claim(code: string, homeId: string, deviceId: string): Promise<Response> {
  return fetch(`${url}/enroll/v1/claims`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code, homeId, device: { id: deviceId, name: deviceId, vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' } }),
  });
}

/** A port nothing listens on: bound by us, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function hourMinuteIn(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(ms));
}

describe('firmward sets a home up', () => {
  let smiths: HomeView;
  let flat: HomeView;

  test('home add: a home in the time zone given, with its quiet hours and policy; without one, in this machine\'s', async () => {
    smiths = await json<HomeView>(['home', 'add', 'The Smiths', '--time-zone', 'Europe/Berlin', '--quiet-hours', '02:00-04:30', '--policy', 'notify']);
    assert.equal(smiths.name, 'The Smiths');
    assert.equal(smiths.settings.timeZone, 'Europe/Berlin');
    assert.deepEqual(smiths.settings.window, { start: '02:00', end: '04:30' });
    assert.equal(smiths.settings.policy, 'notify');

    const human = await firmward(['home', 'add', 'Flat'], { TZ: 'Asia/Tokyo' });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^Flat \((\S+)\): .+\nUpdates start between \d\d:\d\d and \d\d:\d\d \(Asia\/Tokyo\), policy \S+\.\n$/);
    const homes = await json<HomeView[]>(['home', 'list']);
    flat = homes.find((h) => h.name === 'Flat')!;
    assert.equal(flat.settings.timeZone, 'Asia/Tokyo');

    const list = await firmward(['home', 'list']);
    assert.match(list.stdout, new RegExp(`${smiths.id}\\s+The Smiths\\s+0\\s+Europe/Berlin\\s+02:00-04:30\\s+${escape(smiths.summary)}`));
  });

  test('home rename keeps the id', async () => {
    const renamed = await json<HomeView>(['home', 'rename', smiths.id, 'The Smiths family']);
    assert.equal(renamed.id, smiths.id);
    assert.equal(renamed.name, 'The Smiths family');
  });

  test('enroll → the device claims the code → pending shows it → approve by device id → devices lists it; approving again is a conflict (6)', async () => {
    const enrolled = await firmward(['enroll', smiths.id, '--expires', '30']);
    assert.equal(enrolled.code, 0, enrolled.stderr);
    const code = /^Enrollment code for The Smiths family: ([0-9A-Z]{5}-[0-9A-Z]{5})$/m.exec(enrolled.stdout)?.[1];
    assert.ok(code !== undefined, enrolled.stdout);
    assert.match(enrolled.stdout, /shown only now/);
    assert.match(enrolled.stdout, /^ {2}firmward-agent enroll --config \/etc\/firmward\/agent\.json --payload 'firmward-enroll:\?hub=.+&code=/m);
    // The expiry in the home's time zone, named.
    const [open] = await json<EnrollmentView[]>(['enrollments', '--home', smiths.id]);
    assert.ok(open !== undefined && open.state === 'open');
    assert.match(enrolled.stdout, new RegExp(`expires (\\d{4}-\\d\\d-\\d\\d )?${hourMinuteIn(open.expiresAt, 'Europe/Berlin')} \\(Europe/Berlin\\)`));
    const enrollments = await firmward(['enrollments']);
    assert.match(enrollments.stdout, new RegExp(`${open.id}\\s+${smiths.id}\\s+open\\s+.*\\(Europe/Berlin\\)\\s+person:owner`));

    const claimed = await claim(code, smiths.id, 'plug-1');
    assert.equal(claimed.status, 202, await claimed.clone().text());

    const pending = await firmward(['pending']);
    assert.equal(pending.code, 0, pending.stderr);
    assert.match(pending.stdout, /plug-1\s+plug-1\s+\S+\s+agent\s+waiting\s+Waiting for your approval: it says it is an Acme Plug \(hardware revision rev2\) running 1\.0\.0/);
    assert.match(pending.stdout, /firmward approve <device id>/);
    const [waiting] = await json<PendingDeviceView[]>(['pending', '--home', smiths.id]);
    assert.equal(waiting?.deviceId, 'plug-1');

    const approved = await firmward(['approve', 'plug-1', '--name', 'Kitchen plug']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, new RegExp(`^Approved: Kitchen plug \\(plug-1\\) in ${smiths.id}: `));
    const devices = await json<DeviceView[]>(['devices']);
    assert.deepEqual(devices.map((d) => [d.id, d.name, d.homeId]), [['plug-1', 'Kitchen plug', smiths.id]]);

    const again = await firmward(['approve', waiting.id]);
    assert.equal(again.code, 6, again.stderr);
    assert.match(again.stderr, /approved already/);
    assert.equal((await json<PendingDeviceView[]>(['pending'])).length, 0);
    assert.match((await firmward(['pending'])).stdout, /^No device is waiting for approval\.\n$/);
  });

  test('device rename, move, ignore and manage', async () => {
    const renamed = await firmward(['device', 'rename', 'plug-1', 'Hall plug']);
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.match(renamed.stdout, new RegExp(`^Hall plug \\(plug-1\\) in ${smiths.id}: `));
    const moved = await json<DeviceView>(['device', 'move', 'plug-1', flat.id]);
    assert.equal(moved.homeId, flat.id);
    const ignored = await firmward(['device', 'ignore', 'plug-1']);
    assert.match(ignored.stdout, new RegExp(`^Hall plug \\(plug-1\\) in ${flat.id}, left alone by Firmward: `));
    assert.equal((await json<DeviceView>(['device', 'ignore', 'plug-1'])).ignored, true);
    assert.equal((await json<DeviceView>(['device', 'manage', 'plug-1'])).ignored, false);
  });

  test('device rotate-secret prints the new secret once, with the warning', async () => {
    const rotated = await firmward(['device', 'rotate-secret', 'plug-1']);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /shown only this once/);
    assert.match(rotated.stdout, /^ {2}user name: plug-1$/m);
    assert.match(rotated.stdout, /^ {2}broker: {4}mqtt:\/\/127\.0\.0\.1:\d+$/m);
    const secret = /^ {2}secret: {4}(\S+)$/m.exec(rotated.stdout)?.[1];
    assert.ok(secret !== undefined && secret.length >= 32, rotated.stdout);
    assert.equal(rotated.stdout.split(secret).length - 1, 1, 'the secret is printed exactly once');
    const again = await json<IssuedCredential>(['device', 'rotate-secret', 'plug-1']);
    assert.equal(again.kind, 'mqtt');
    assert.ok(again.kind === 'mqtt' && again.secret !== secret, 'every rotation gives a new secret');
  });

  test('device add: an agent gets its user name, secret and broker; a hawkBit device its TargetToken and how SWUpdate sends it', async () => {
    const agent = await firmward(['device', 'add', smiths.id, '--protocol', 'agent', '--id', 'factory-1', '--name', 'Boiler', '--vendor', 'Acme', '--model', 'Boiler', '--hardware-revision', 'r1', '--firmware-version', '2.0.0']);
    assert.equal(agent.code, 0, agent.stderr);
    assert.match(agent.stdout, new RegExp(`^Added Boiler \\(factory-1\\) in ${smiths.id}: `));
    assert.match(agent.stdout, /shown only this once/);
    assert.match(agent.stdout, /^ {2}user name: factory-1\n {2}secret: {4}\S{32,}\n {2}broker: {4}mqtt:\/\//m);

    const hawkbit = await json<RegisteredDevice>(['device', 'add', smiths.id, '--protocol', 'hawkbit', '--id', 'attic-gw', '--name', 'Attic gateway', '--vendor', 'Acme', '--model', 'Gateway', '--hardware-revision', 'r1', '--firmware-version', '1.0.0']);
    assert.equal(hawkbit.device.id, 'ddi-attic-gw');
    assert.equal(hawkbit.credential.kind, 'hawkbit');
    const human = await firmward(['device', 'rotate-secret', 'ddi-attic-gw']);
    assert.equal(human.code, 0, human.stderr);
    const token = /^ {2}TargetToken: {3}(\S+)$/m.exec(human.stdout)?.[1];
    assert.ok(token !== undefined, human.stdout);
    assert.match(human.stdout, new RegExp(`swupdate … -u '-t DEFAULT -u ${escape(url)} -i attic-gw -k ${escape(token)}'`));

    const missing = await firmward(['device', 'add', smiths.id, '--protocol', 'agent', '--id', 'x']);
    assert.equal(missing.code, 2, 'a missing required option is a usage error');
    const badProtocol = await firmward(['device', 'add', smiths.id, '--protocol', 'zigbee', '--id', 'x', '--name', 'x', '--vendor', 'x', '--model', 'x', '--hardware-revision', 'x', '--firmware-version', 'x']);
    assert.equal(badProtocol.code, 2);
  });

  test('device revoke and remove need --yes (2, saying what would go); then the device loses its access or goes', async () => {
    const unconfirmed = await firmward(['device', 'revoke', 'factory-1']);
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.stderr, /Revoking Boiler's \(factory-1\) access .* --yes/);
    const revoked = await json<DeviceView>(['device', 'revoke', 'factory-1', '--yes']);
    assert.equal(revoked.id, 'factory-1');

    const notYet = await firmward(['device', 'remove', 'plug-1']);
    assert.equal(notYet.code, 2);
    assert.match(notYet.stderr, new RegExp(`Removing Hall plug \\(plug-1\\) from ${flat.id} ends its access .* --yes`));
    assert.ok((await json<DeviceView[]>(['devices'])).some((d) => d.id === 'plug-1'), 'still there without --yes');
    const removed = await firmward(['device', 'remove', 'plug-1', '--yes']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^Removed Hall plug \(plug-1\); its access to the hub has ended\.\n$/);
    assert.ok(!(await json<DeviceView[]>(['devices'])).some((d) => d.id === 'plug-1'));
    const gone = await firmward(['device', 'remove', 'plug-1', '--yes']);
    assert.equal(gone.code, 5, 'not found (5)');
  });

  test('reject turns a waiting device away; pending --all still shows it', async () => {
    const { code } = await json<{ code: string }>(['enroll', smiths.id]);
    assert.equal((await claim(code, smiths.id, 'stranger')).status, 202);
    const rejected = await firmward(['reject', 'stranger']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /^stranger \(stranger\): Rejected by /);
    const all = await json<PendingDeviceView[]>(['pending', '--all']);
    assert.deepEqual(all.filter((p) => p.deviceId === 'stranger').map((p) => p.state), ['rejected']);
  });

  test('enrollment revoke withdraws an open code; a second time it is not found (5)', async () => {
    const made = await json<{ id: string }>(['enroll', smiths.id]);
    const revoked = await firmward(['enrollment', 'revoke', made.id]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /withdrawn/);
    assert.ok(!(await json<EnrollmentView[]>(['enrollments'])).some((e) => e.id === made.id));
    const again = await firmward(['enrollment', 'revoke', made.id, '--json']);
    assert.equal(again.code, 5);
  });

  test('home delete says what would go without --yes (asking the hub for the devices), then deletes', async () => {
    const notYet = await firmward(['home', 'delete', smiths.id]);
    assert.equal(notYet.code, 2);
    assert.match(notYet.stderr, /Deleting The Smiths family .* its 2 devices \((Boiler, Attic gateway|Attic gateway, Boiler)\)/);
    const deleted = await json<HomeDeletion>(['home', 'delete', smiths.id, '--yes']);
    assert.deepEqual([...deleted.devicesRemoved].sort(), ['ddi-attic-gw', 'factory-1']);
    const human = await firmward(['home', 'delete', flat.id, '--yes']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^Deleted Flat \\(${flat.id}\\): it had no devices\\.\\n$`));
    assert.equal((await firmward(['home', 'rename', flat.id, 'Again'])).code, 5);
  });

  test('repo add (from the maker\'s root.json file), list, refresh, remove', async () => {
    const maker = await publishFleetRelease(tempDir('firmward-cli-maker-'));
    const added = await firmward(['repo', 'add', 'acme', maker.config.url, '--root', maker.config.root]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^acme \(file:.+\): trusted, 1 release\.\n$/);
    const [listed] = await json<RepositoryView[]>(['repo', 'list']);
    assert.deepEqual([listed?.name, listed?.origin, listed?.trusted], ['acme', 'added', true]);
    assert.match((await firmward(['repo', 'list'])).stdout, /acme\s+added\s+yes\s+1\s+file:/);
    const refreshed = await firmward(['repo', 'refresh', 'acme']);
    assert.match(refreshed.stdout, /trusted, 1 release/);
    const removed = await firmward(['repo', 'remove', 'acme', '--json']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout), {});
    assert.equal((await firmward(['repo', 'refresh', 'acme'])).code, 5);
    const noFile = await firmward(['repo', 'add', 'globex', 'https://globex.example/tuf/', '--root', path.join(work, 'missing-root.json')]);
    assert.equal(noFile.code, 2);
    assert.match(noFile.stderr, /Cannot read the root file/);
  });

  test('ddi shows and changes who may register as a hawkBit device', async () => {
    const shown = await json<DdiSettingsView>(['ddi']);
    assert.equal(shown.enabled, true);
    assert.equal(shown.gatewayTokenSet, true);
    const home = await json<HomeView>(['home', 'add', 'Attic', '--time-zone', 'UTC']);
    const set = await json<DdiSettingsView>(['ddi', 'set', '--auto-register', 'on', '--allow', 'attic-gw, garage-gw', '--home', home.id]);
    assert.deepEqual([set.autoRegister, set.allowedControllerIds, set.homeId, set.changedHere], [true, ['attic-gw', 'garage-gw'], home.id, true]);
    const any = await json<DdiSettingsView>(['ddi', 'set', '--allow-any', '--no-home']);
    assert.deepEqual([any.allowedControllerIds, any.homeId], [null, '']);
    assert.match((await firmward(['ddi'])).stdout, /Self-registration with the GatewayToken is on, for any controller id; each such device waits for your approval\./);
    assert.equal((await firmward(['ddi', 'set'])).code, 2, 'nothing to change');
    assert.equal((await firmward(['ddi', 'set', '--allow', 'a', '--allow-any'])).code, 2, 'one or the other');
  });

  test('bridges lists each with its status; bridge set changes one and can make a home for its devices', async () => {
    const bridges = await json<BridgeView[]>(['bridges']);
    assert.deepEqual(bridges.map((b) => b.name).sort(), ['homeAssistant', 'shelly', 'tasmota', 'zigbee2mqtt']);
    assert.match((await firmward(['bridges'])).stdout, /^zigbee2mqtt\s+.*\s+off$/m);
    const changed = await json<BridgeView>(['bridge', 'set', 'zigbee2mqtt', '--off', '--username', 'firmward', '--new-home', 'Zigbee devices']);
    assert.equal(changed.username, 'firmward');
    const homes = await json<HomeView[]>(['home', 'list']);
    assert.equal(homes.find((h) => h.id === changed.homeId)?.name, 'Zigbee devices');
    const human = await firmward(['bridge', 'set', 'zigbee2mqtt', '--off']);
    assert.match(human.stdout, new RegExp(`^zigbee2mqtt: off; its devices join ${changed.homeId}\\.\\n$`));
    assert.equal((await firmward(['bridge', 'set', 'nope', '--off'])).code, 5);
    assert.equal((await firmward(['bridge', 'set', 'zigbee2mqtt', '--home', 'x', '--new-home', 'y'])).code, 2);
    assert.equal((await firmward(['bridge', 'set', 'zigbee2mqtt'])).code, 2, 'nothing to change');
  });
});

describe('firmward finds the hub and says which one it could not reach', () => {
  test('from the data folder\'s hub-url (./data), with no --hub and no environment', async () => {
    const r = await runCli(['home', 'list', '--json'], { cwd: work, noDataDir: true });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
  });

  test('a stale hub-url: exit 3, naming the address and the file it came from', async () => {
    const stale = tempDir('firmward-cli-stale-');
    const port = await closedPort();
    writeFileSync(path.join(stale, 'hub-url'), `http://127.0.0.1:${port}\n`);
    const r = await runCli(['home', 'list'], { env: { FIRMWARD_DATA_DIR: stale, FIRMWARD_OWNER_TOKEN: TOKEN } });
    assert.equal(r.code, 3);
    assert.equal(r.stderr, `Cannot reach the hub at http://127.0.0.1:${port} (from ${path.join(stale, 'hub-url')}); is it running?\n`);
  });

  test('FIRMWARD_PORT when there is no hub-url; FIRMWARD_HUB before both', async () => {
    const empty = tempDir('firmward-cli-empty-');
    const byPort = await runCli(['home', 'list', '--json'], { env: { FIRMWARD_DATA_DIR: empty, FIRMWARD_OWNER_TOKEN: TOKEN, FIRMWARD_PORT: String(hub.httpPort) } });
    assert.equal(byPort.code, 0, byPort.stderr);
    const port = await closedPort();
    const byEnv = await runCli(['home', 'list'], { env: { FIRMWARD_DATA_DIR: path.join(work, 'data'), FIRMWARD_HUB: `http://127.0.0.1:${port}`, FIRMWARD_PORT: String(hub.httpPort) } });
    assert.equal(byEnv.code, 3);
    assert.match(byEnv.stderr, new RegExp(`^Cannot reach the hub at http://127\\.0\\.0\\.1:${port} \\(from FIRMWARD_HUB\\)`));
    const byDefault = await runCli(['home', 'list'], { env: { FIRMWARD_DATA_DIR: empty, FIRMWARD_OWNER_TOKEN: TOKEN, FIRMWARD_PORT: String(port) } });
    assert.match(byDefault.stderr, /\(from FIRMWARD_PORT\)/);
    const badPort = await runCli(['home', 'list'], { env: { FIRMWARD_DATA_DIR: empty, FIRMWARD_OWNER_TOKEN: TOKEN, FIRMWARD_PORT: 'eighty' } });
    assert.equal(badPort.code, 2);
  });
});

describe('firmward exit codes', () => {
  test('2: usage — unknown command or option, a bad argument, nothing given', async () => {
    assert.equal((await firmward(['explode'])).code, 2);
    assert.equal((await firmward(['home', 'list', '--colour'])).code, 2);
    assert.equal((await firmward(['home', 'add', 'X', '--time-zone', 'Mars/Olympus'])).code, 2);
    assert.equal((await firmward(['home', 'add', 'X', '--quiet-hours', '1-5'])).code, 2);
    assert.equal((await firmward(['enroll', 'h', '--expires', '0'])).code, 2);
    assert.equal((await runCli(['--hub', 'hub.local', 'home', 'list'])).code, 2);
    assert.equal((await runCli([])).code, 2);
    assert.equal((await runCli(['--help'])).code, 0);
  });

  test('3: the hub cannot be reached (a closed port)', async () => {
    const port = await closedPort();
    const r = await runCli(['--hub', `http://127.0.0.1:${port}`, '--token', TOKEN, 'pending']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`^Cannot reach the hub at http://127\\.0\\.0\\.1:${port} \\(from --hub\\); is it running\\?`));
  });

  test('4: a wrong owner token, naming the hub and where the token came from', async () => {
    const r = await runCli(['--hub', url, 'home', 'list'], { env: { FIRMWARD_OWNER_TOKEN: 'wrong-token-0123456789abcdef' } });
    assert.equal(r.code, 4);
    assert.match(r.stderr, /owner token is wrong/);
    assert.match(r.stderr, new RegExp(`\\(asked the hub at ${escape(url)}, from --hub, with the owner token from FIRMWARD_OWNER_TOKEN\\)`));
  });

  test('5: an unknown device or home', async () => {
    const device = await firmward(['device', 'rename', 'no-such-device', 'X']);
    assert.equal(device.code, 5);
    assert.match(device.stderr, /no-such-device/);
    assert.equal((await firmward(['enroll', 'no-such-home'])).code, 5);
    assert.equal((await firmward(['approve', 'no-such-device'])).code, 5);
  });

  test('1: the hub refused for another reason (invalid input)', async () => {
    const r = await firmward(['device', 'add', 'attic', '--protocol', 'agent', '--id', 'bad id with spaces', '--name', 'x', '--vendor', 'x', '--model', 'x', '--hardware-revision', 'x', '--firmware-version', 'x']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /"id"/);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
