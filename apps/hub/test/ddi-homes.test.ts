/**
 * hawkBit (DDI) devices on the real hub (startHub, DDI on, a signed repository published with the
 * release tool), driven by a scripted client that makes SWUpdate's suricatta requests in its order:
 *
 * - each registered controller belongs to the home it was registered in: two homes update at the
 *   same time, two devices of one home one after the other (invariant 1);
 * - a revoked device is refused with its TargetToken and with the tenant's GatewayToken; a rotated
 *   token works at once and the old one stops;
 * - auto-registration turned off and on while the hub runs (PATCH /api/v1/ddi); a device that
 *   registers itself waits for a person's approval, is offered nothing meanwhile, and after the
 *   approval is asked for its attributes again and belongs to the home the person chose.
 *
 * The real SWUpdate runs the same paths in test-services/swupdate*.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import type { Job } from '@firmward/core';
import { SystemClock, silentLogger } from '@firmward/ports';
import { DdiClient } from '../../../adapters/hawkbit/test/helpers.ts';
import { loadConfig } from '../src/config.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import type { IssuedCredential } from '../src/onboarding/types.ts';
import { until } from './fixtures/until.ts';

const OWNER_TOKEN = 'ddi-homes-test-owner-token-0123456789';
const GATEWAY_TOKEN = 'ddi-homes-test-gateway-token-0123456789';
const ACTOR = 'person:owner';
const IMAGE = randomBytes(64 * 1024);
const ACTIVE = ['offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming'] as const;

/**
 * One hawkBit device as SWUpdate's suricatta drives it: poll; PUT its attributes when the
 * configData link is there; for a deployment, fetch it, say it started, download the artifact
 * (HEAD then GET), and end the install run with "All Chunks Installed." — success only comes
 * after the restart (`reboot()`, SWUpdate's `-c 2`).
 */
class ScriptedSwupdate {
  readonly controllerId: string;
  readonly client: DdiClient;
  version = '1.0.0';
  /** The action installed and waiting for the restart. */
  installed: number | null = null;
  readonly deployments: number[] = [];
  configDataSent = 0;
  lastPollStatus = 0;

  readonly #authorization: string;

  constructor(baseUrl: string, controllerId: string, authorization: string) {
    this.controllerId = controllerId;
    this.#authorization = authorization;
    this.client = new DdiClient(baseUrl, controllerId, authorization);
  }

  /** One poll cycle; what it did, for failure messages. */
  async cycle(): Promise<string> {
    const poll = await this.client.poll();
    this.lastPollStatus = poll.status;
    if (poll.status !== 200) return `poll ${poll.status}`;
    const links = poll.json._links;
    const did: string[] = [];
    if (links.configData) {
      const put = await this.client.configData({ vendor: 'acme', model: 'gw', hardwareRevision: '1.0', firmwareVersion: this.version, name: `Gateway ${this.controllerId}` });
      assert.equal(put.status, 200, put.text);
      this.configDataSent++;
      did.push('configData');
    }
    if (links.deploymentBase && this.installed === null) {
      const deployment = await this.client.get(links.deploymentBase.href);
      assert.equal(deployment.status, 200, deployment.text);
      const actionId = Number(deployment.json.id);
      this.deployments.push(actionId);
      assert.equal((await this.client.feedback(actionId, 'proceeding', 'none', { cnt: 0, of: 1 }, ['Installing Update Chunk Artifacts.'])).status, 200);
      const artifact = deployment.json.deployment.chunks[0]!.artifacts[0]!;
      assert.equal((await this.client.request('HEAD', artifact._links.download.href)).status, 200);
      const res = await fetch(artifact._links.download.href, { headers: { authorization: this.#authorization } });
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200);
      assert.equal(createHash('sha1').update(bytes).digest('hex'), artifact.hashes.sha1);
      assert.equal((await this.client.feedback(actionId, 'proceeding', 'none', { cnt: 1, of: 1 }, ['All Chunks Installed.'])).status, 200);
      this.installed = actionId;
      did.push(`installed ${actionId}`);
    }
    return did.join(', ') || 'idle';
  }

  /** Back from its restart into the new image: SWUpdate (`-c 2`) reports the update installed. */
  async reboot(newVersion: string): Promise<void> {
    const actionId = this.installed;
    assert.ok(actionId !== null, `${this.controllerId} has nothing installed`);
    this.version = newVersion;
    const answer = await this.client.feedback(actionId, 'closed', 'success', { cnt: 0, of: 0 }, ['Update Installed.']);
    assert.equal(answer.status, 200, answer.text);
    this.installed = null;
  }

}

function device(baseUrl: string, controllerId: string, authorization: string): ScriptedSwupdate {
  return new ScriptedSwupdate(baseUrl, controllerId, authorization);
}

describe('hawkBit devices on the hub: homes, credentials, self-registration', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-ddi-homes-'));
  let hub: RunningHub;
  let baseUrl: string;
  const homes = { north: '', south: '' };
  const devices = new Map<string, ScriptedSwupdate>();
  const credentials = new Map<string, IssuedCredential>();

  const api = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${baseUrl}${route}`, {
      method, headers: { authorization: `Bearer ${OWNER_TOKEN}`, 'content-type': 'application/json' }, ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const activeIn = async (homeId: string): Promise<Job[]> => hub.store.listJobs({ homeId, states: [...ACTIVE] });

  before(async () => {
    const repository = await publishReleases(path.join(dir, 'repository'), 'acme', [{
      custom: { vendor: 'acme', model: 'gw', hardwareRevisions: ['1.0'], version: '1.1.0', expectedInstallSeconds: 30, recovery: { steps: ['Switch it off and on again.'] } },
      image: IMAGE, fileName: 'gw-1.1.0.swu',
    }]);
    const config = loadConfig({
      argv: ['--data-dir', path.join(dir, 'hub'), '--port', '0', '--mqtt-port', '0', '--tick-ms', '100'],
      env: {}, readFile: () => { throw new Error('no config file'); },
    });
    hub = await startHub({
      ...config, repositories: [repository.config],
      ddi: { ...config.ddi, enabled: true, gatewayToken: GATEWAY_TOKEN, autoRegister: {}, homeId: '', pollingSleep: '00:00:01' },
    }, { clock: new SystemClock(), log: silentLogger, ownerToken: OWNER_TOKEN });
    baseUrl = `http://127.0.0.1:${hub.httpPort}`;
    for (const key of ['north', 'south'] as const) {
      // Open all day, so the test is about homes and turns, not about waiting for the night.
      homes[key] = (await hub.setup.createHome({ name: `Flat ${key}`, timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, policy: 'automatic', soakSeconds: 1 }, ACTOR)).id;
    }
    // Each controller registered by a person, in its own home, with its own TargetToken.
    for (const [controllerId, home] of [['n1', homes.north], ['n2', homes.north], ['s1', homes.south]] as const) {
      const registered = await hub.setup.registerDevice(home, {
        protocol: 'hawkbit', id: controllerId, name: `Gateway ${controllerId}`, vendor: 'acme', model: 'gw', hardwareRevision: '1.0', firmwareVersion: '1.0.0',
      }, ACTOR);
      assert.equal(registered.credential.kind, 'hawkbit');
      assert.equal(registered.device.homeId, home);
      credentials.set(controllerId, registered.credential);
      if (registered.credential.kind === 'hawkbit') devices.set(controllerId, device(baseUrl, controllerId, `TargetToken ${registered.credential.targetToken}`));
    }
  });

  after(async () => {
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs every device's poll cycle until `done` says so (bounded), checking invariant 1 after every round. */
  async function cycleUntil<T>(what: string, which: ScriptedSwupdate[], done: () => Promise<T | null | undefined | false>, rounds = 200): Promise<T> {
    const said: string[] = [];
    for (let i = 0; i < rounds; i++) {
      for (const d of which) said.push(`${d.controllerId}: ${await d.cycle()}`);
      for (const homeId of Object.values(homes)) {
        const active = await activeIn(homeId);
        assert.ok(active.length <= 1, `invariant 1: one update at a time in ${homeId}, found ${active.map((j) => `${j.deviceId} ${j.state}`).join(', ')}`);
      }
      const value = await done();
      if (value !== null && value !== undefined && value !== false) return value;
      await sleep(100);
    }
    assert.fail(`gave up waiting for ${what}:\n${said.slice(-20).join('\n')}`);
  }

  test('devices of two homes update at the same time; two of one home one after the other', async () => {
    const [n1, n2, s1] = ['n1', 'n2', 's1'].map((id) => devices.get(id)!) as [ScriptedSwupdate, ScriptedSwupdate, ScriptedSwupdate];
    // Both homes' first updates are installed and waiting for their restarts at the same moment.
    const firstOfNorth = await cycleUntil('one device of each home to be installed', [n1, n2, s1], () =>
      Promise.resolve(s1.installed !== null && (n1.installed !== null || n2.installed !== null) ? (n1.installed !== null ? n1 : n2) : null));
    const secondOfNorth = firstOfNorth === n1 ? n2 : n1;
    const north = await activeIn(homes.north);
    const south = await activeIn(homes.south);
    assert.deepEqual(north.map((j) => [j.deviceId, j.state]), [[`ddi-${firstOfNorth.controllerId}`, 'rebooting']]);
    assert.deepEqual(south.map((j) => [j.deviceId, j.state]), [['ddi-s1', 'rebooting']], 'the other home did not queue behind this one');
    assert.deepEqual(secondOfNorth.deployments, [], 'the second device of the home is not shown the update meanwhile');

    // The second of the home still waits while the first restarts; then it takes its turn.
    for (let i = 0; i < 5; i++) await secondOfNorth.cycle();
    assert.deepEqual(secondOfNorth.deployments, []);
    await firstOfNorth.reboot('1.1.0');
    await s1.reboot('1.1.0');
    await cycleUntil('the first two to be confirmed', [firstOfNorth, s1], async () => {
      const states = await Promise.all([north[0]!, south[0]!].map(async (j) => (await hub.store.getJob(j.id))?.state));
      return states.every((s) => s === 'succeeded');
    });
    await cycleUntil('the second device of the home to be installed', [firstOfNorth, secondOfNorth, s1], () => Promise.resolve(secondOfNorth.installed !== null));
    const second = (await activeIn(homes.north))[0]!;
    assert.equal(second.deviceId, `ddi-${secondOfNorth.controllerId}`);
    await secondOfNorth.reboot('1.1.0');
    await cycleUntil('the second device of the home to be confirmed', [secondOfNorth], async () => (await hub.store.getJob(second.id))?.state === 'succeeded');

    // The history agrees: the second of the home was offered only after the first succeeded.
    const history = (await hub.store.listEvents({ homeId: homes.north, limit: 1000 })).reverse().filter((e) => e.kind === 'transition');
    const firstSucceeded = history.find((e) => e.deviceId === `ddi-${firstOfNorth.controllerId}` && e.to === 'succeeded')!;
    const secondOffered = history.find((e) => e.deviceId === `ddi-${secondOfNorth.controllerId}` && e.to === 'offered')!;
    assert.ok(secondOffered.id > firstSucceeded.id, 'offered only after the first was confirmed');
    // And the homes overlapped: the south's device was offered before the north's first succeeded.
    const southHistory = (await hub.store.listEvents({ homeId: homes.south, limit: 1000 })).filter((e) => e.kind === 'transition');
    const southOfferedAt = southHistory.find((e) => e.deviceId === 'ddi-s1' && e.to === 'offered')!.at;
    assert.ok(southOfferedAt <= firstSucceeded.at);
    for (const id of ['ddi-n1', 'ddi-n2', 'ddi-s1']) assert.equal((await hub.store.getDevice(id))?.firmwareVersion, '1.1.0', id);
    assert.equal((await hub.store.getDevice('ddi-s1'))?.homeId, homes.south);
  });

  test('a revoked device is refused with its TargetToken and with the GatewayToken', async () => {
    const s1 = devices.get('s1')!;
    assert.equal((await s1.client.poll()).status, 200);
    await hub.setup.revokeCredential('ddi-s1', ACTOR);
    const withTarget = await s1.client.poll();
    assert.equal(withTarget.status, 401, withTarget.text);
    assert.match(withTarget.json.error.message, /revoked/);
    const withGateway = await new DdiClient(baseUrl, 's1', `GatewayToken ${GATEWAY_TOKEN}`).poll();
    assert.equal(withGateway.status, 401, 'the tenant token does not let a revoked device back in');
    assert.equal((await hub.store.getDevice('ddi-s1'))?.homeId, homes.south, 'it stays listed');
  });

  test('a rotated TargetToken works at once, and the old one stops', async () => {
    const n2 = devices.get('n2')!;
    const old = credentials.get('n2')!;
    assert.equal(old.kind, 'hawkbit');
    const issued = await hub.setup.rotateCredential('ddi-n2', ACTOR);
    assert.equal(issued.kind, 'hawkbit');
    if (issued.kind !== 'hawkbit' || old.kind !== 'hawkbit') return;
    assert.notEqual(issued.targetToken, old.targetToken);
    assert.equal((await n2.client.poll()).status, 401, 'the old token');
    assert.equal((await new DdiClient(baseUrl, 'n2', `TargetToken ${issued.targetToken}`).poll()).status, 200, 'the new token');
  });

  test('auto-registration turned off and on while the hub runs; a device that registers itself waits for approval, then joins the home chosen', async () => {
    const walkIn = device(baseUrl, 'walk-in', `GatewayToken ${GATEWAY_TOKEN}`);
    const off = await api('PATCH', '/api/v1/ddi', { autoRegister: false });
    assert.equal(off.status, 200, JSON.stringify(off.json));
    assert.equal(off.json['autoRegister'], false);
    assert.equal((await walkIn.client.poll()).status, 404, 'nobody registers themselves while it is off');
    assert.deepEqual(await hub.setup.listPendingDevices({}), []);

    const on = await api('PATCH', '/api/v1/ddi', { autoRegister: true, homeId: '' });
    assert.equal(on.status, 200, JSON.stringify(on.json));
    assert.equal(on.json['autoRegister'], true);
    assert.equal(await walkIn.cycle(), 'configData');
    const pending = await until('the device to wait for approval', async () => (await hub.setup.listPendingDevices({})).find((p) => p.deviceId === 'ddi-walk-in'));
    assert.equal(pending.protocol, 'hawkbit');
    assert.equal(pending.homeId, null, 'it asked for no home: the person picks one');
    // While it waits it is polled like any device, and offered nothing.
    for (let i = 0; i < 10; i++) {
      assert.equal(await walkIn.cycle(), 'idle');
      await sleep(100);
    }
    assert.equal(await hub.store.getDevice('ddi-walk-in'), null, 'not in any home before the approval');
    assert.deepEqual(await hub.store.listJobs({ deviceId: 'ddi-walk-in' }), []);
    assert.equal(walkIn.configDataSent, 1);

    // Turned off again: a device still waiting is kept out, and so is a new one.
    assert.equal((await api('PATCH', '/api/v1/ddi', { autoRegister: false })).status, 200);
    assert.equal((await walkIn.client.poll()).status, 404, 'not let in while registration is off and nobody approved it');
    assert.equal((await new DdiClient(baseUrl, 'another', `GatewayToken ${GATEWAY_TOKEN}`).poll()).status, 404);

    const approved = await api('POST', `/api/v1/pending-devices/${pending.id}/approve`, { homeId: homes.south });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    assert.equal(approved.json['homeId'], homes.south);
    // Approved devices get in with the tenant's token even while self-registration is off; the hub asks for their attributes again.
    await cycleUntil('the approved device to report', [walkIn], async () => walkIn.configDataSent >= 2 && (await hub.service.getDevice('ddi-walk-in')).report !== null);
    const view = await hub.service.getDevice('ddi-walk-in');
    assert.equal(view.homeId, homes.south);
    assert.equal(view.online, true);
    assert.equal(view.protocol, 'ddi');
    await cycleUntil('the approved device to be offered the update in its home', [walkIn], () => Promise.resolve(walkIn.installed !== null));
    const [job] = await activeIn(homes.south);
    assert.equal(job?.deviceId, 'ddi-walk-in');
    assert.equal(job.homeId, homes.south);
  });

  test('an agent cannot take an id of the hawkBit devices: its commands would go to the DDI gateway', async () => {
    const enrollment = await hub.setup.createEnrollment(homes.north, { hubUrl: baseUrl }, ACTOR);
    await assert.rejects(
      hub.setup.claim({ code: enrollment.code, device: { id: 'ddi-sneaky', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' } }, '127.0.0.1'),
      (error: unknown) => isFirmwardError(error, 'invalid_input') && /ddi devices/.test(error.message),
    );
    assert.equal((await hub.store.listEnrollments({ homeId: homes.north })).find((e) => e.id === enrollment.id)?.usedAt, null, 'the code is not used up');
  });
});
