/**
 * A real home gets in, through the HTTP API only: homes made and removed, a device enrolled with a
 * one-time code and approved, its credential opening the embedded broker only from the approval on
 * and closing at once when it is removed or revoked; and every way in tried by someone who should
 * not get in is refused with a code, changing nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import mqtt from 'mqtt';
import { newJob } from '@firmward/core';
import { MqttAgentTransport } from '@firmward/agent';
import { SystemClock, silentLogger } from '@firmward/ports';
import { SeededRandom, createSimulatedDevice } from '@firmward/simulator';
import { DeviceTrust } from '@firmward/tuf';
import { deviceTopics } from '@firmward/protocol';
import type { EnrollmentClaimAnswer } from '@firmward/protocol';
import { loadConfig } from '../src/config.ts';
import { HUB_URL_FILE, startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import type { EnrollmentCreated, PendingDeviceView, RepositoryView } from '../src/onboarding/types.ts';
import type { DeviceView, HomeView } from '../src/service.ts';
import { FLEET_TARGET_VERSION, fleetDevices, publishFleetRelease } from './fixtures/fleet-fixture.ts';
import { until } from './fixtures/until.ts';

const TOKEN = 'onboarding-test-owner-token-1234';
const dirs: string[] = [];
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  for (const r of running.reverse()) await r.stop().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

interface Answer<T = unknown> {
  status: number;
  json: T;
  headers: Headers;
}

async function emptyHub(extra: { repositories?: { name: string; url: string; root: string }[] } = {}) {
  const dir = tempDir('firmward-onboarding-');
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--tick-ms', '100', '--offer-resend-seconds', '2'],
    env: {}, readFile: () => { throw new Error('no config file'); },
  });
  const hub = await startHub({ ...config, repositories: extra.repositories ?? [] }, { clock: new SystemClock(), log: silentLogger, ownerToken: TOKEN });
  running.push(hub);
  const call = async <T = unknown>(method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer<T>> => {
    const response = await fetch(`${hub.baseUrl}${route}`, {
      method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: (text === '' ? null : JSON.parse(text)) as T, headers: response.headers };
  };
  /** The device's side: no owner token. */
  const device = async <T = unknown>(method: string, route: string, body?: unknown, secret?: string): Promise<Answer<T>> => {
    const response = await fetch(`${hub.baseUrl}${route}`, {
      method, headers: { 'content-type': 'application/json', ...(secret !== undefined && { authorization: `Bearer ${secret}` }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: (text === '' ? null : JSON.parse(text)) as T, headers: response.headers };
  };
  return { hub, dir, call, device };
}

type Hub = Awaited<ReturnType<typeof emptyHub>>;

const PLUG = { id: 'h1-plug-1', name: 'Kitchen plug', vendor: 'Acme', model: 'QuickPlug', hardwareRevision: 'rev2', firmwareVersion: '1.0.0' };

async function homeAndCode(h: Hub, name = 'My flat'): Promise<{ home: HomeView; enrollment: EnrollmentCreated }> {
  const home = await h.call<HomeView>('POST', '/api/v1/homes', { name, timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, soakSeconds: 1 });
  assert.equal(home.status, 201, JSON.stringify(home.json));
  const enrollment = await h.call<EnrollmentCreated>('POST', `/api/v1/homes/${home.json.id}/enrollments`, {});
  assert.equal(enrollment.status, 201, JSON.stringify(enrollment.json));
  return { home: home.json, enrollment: enrollment.json };
}

/** Everything a refused attempt must leave as it was. */
async function snapshot(hub: RunningHub) {
  return JSON.stringify({
    devices: (await hub.store.listDevices()).map((d) => d.id),
    pending: (await hub.store.listPendingDevices({})).map((p) => [p.id, p.state]),
    enrollments: (await hub.store.listEnrollments({})).map((e) => [e.id, e.usedAt]),
    secrets: (await hub.store.listDeviceSecrets()).map((s) => s.deviceId),
  });
}

/** Connects to the hub's broker as `deviceId`; resolves true when the broker lets it in. */
function canLogIn(hub: RunningHub, deviceId: string, secret: string): Promise<boolean> {
  return new Promise((resolve) => {
    const client = mqtt.connect(hub.mqttUrl, { clientId: deviceId, username: deviceId, password: secret, reconnectPeriod: 0, connectTimeout: 5_000 });
    client.once('connect', () => {
      client.end(true);
      resolve(true);
    });
    client.once('error', () => {
      client.end(true);
      resolve(false);
    });
  });
}

describe('homes', () => {
  test('created with the home defaults, renamed, listed; an empty home says what to do', async () => {
    const h = await emptyHub();
    const made = await h.call<HomeView>('POST', '/api/v1/homes', { name: '  Flat   3B ', timeZone: 'Europe/Berlin' });
    assert.equal(made.status, 201);
    assert.equal(made.json.id, 'flat-3b');
    assert.equal(made.json.name, 'Flat 3B');
    assert.equal(made.json.settings.policy, 'automatic');
    assert.deepEqual(made.json.settings.window, { start: '01:00', end: '05:00' });
    assert.match(made.json.summary, /No devices yet/);
    const again = await h.call<HomeView>('POST', '/api/v1/homes', { name: 'Flat 3B', timeZone: 'Europe/Berlin' });
    assert.equal(again.json.id, 'flat-3b-2', 'a second home of the same name gets its own id');
    const renamed = await h.call<HomeView>('PATCH', '/api/v1/homes/flat-3b', { name: 'Grandma\'s flat' });
    assert.equal(renamed.json.name, 'Grandma\'s flat');
    assert.equal((await h.call<HomeView[]>('GET', '/api/v1/homes')).json.length, 2);
    const history = await h.hub.store.listEvents({ homeId: 'flat-3b', limit: 10 });
    assert.deepEqual(history.map((e) => e.code).sort(), ['home_created', 'home_renamed']);
    // Bad input changes nothing.
    for (const body of [{}, { name: '' }, { name: 'x', timeZone: 'Mars/Olympus' }, { name: 'x', extra: 1 }, '{not json']) {
      const refused = await h.call<{ error: { code: string } }>('POST', '/api/v1/homes', body);
      assert.equal(refused.status, 400, JSON.stringify(body));
      assert.equal(refused.json.error.code, 'invalid_input');
    }
    assert.equal((await h.call<HomeView[]>('GET', '/api/v1/homes')).json.length, 2);
  });
});

describe('enrollment: a device joins a home', () => {
  test('code → waiting for approval → approved: the secret opens the broker only from then on, for that device only', async () => {
    const h = await emptyHub();
    const { home, enrollment } = await homeAndCode(h);
    assert.match(enrollment.code, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    assert.match(enrollment.payload, /^firmward-enroll:\?hub=/);
    assert.ok(!JSON.stringify(await h.hub.store.listEnrollments({})).includes(enrollment.code.replace('-', '')), 'only a digest is stored');

    const claim = await h.device<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code: enrollment.code.toLowerCase(), homeId: home.id, device: PLUG });
    assert.equal(claim.status, 202, JSON.stringify(claim.json));
    assert.equal(claim.json.homeName, 'My flat');
    const { secret, claimId } = claim.json;
    const stored = await h.hub.store.getPendingDevice(claimId);
    assert.ok(stored?.secretHash && !stored.secretHash.includes(secret), 'only the secret\'s hash is stored');
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), false, 'not before the owner approves');

    const pending = await h.call<PendingDeviceView[]>('GET', `/api/v1/pending-devices?homeId=${home.id}`);
    assert.equal(pending.json.length, 1);
    assert.match(pending.json[0]!.summary, /Waiting for your approval: it says it is an Acme QuickPlug \(hardware revision rev2\) running 1\.0\.0/);
    assert.equal((await h.device<{ state: string }>('GET', `/enroll/v1/claims/${claimId}`, undefined, secret)).json.state, 'waiting');

    const approved = await h.call<DeviceView>('POST', `/api/v1/pending-devices/${PLUG.id}/approve`, { name: 'Plug by the kettle' });
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    assert.equal(approved.json.name, 'Plug by the kettle');
    assert.equal(approved.json.homeId, home.id);
    assert.deepEqual([approved.json.vendor, approved.json.model, approved.json.hardwareRevision], ['Acme', 'QuickPlug', 'rev2']);
    assert.equal((await h.device<{ state: string }>('GET', `/enroll/v1/claims/${claimId}`, undefined, secret)).json.state, 'approved');
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), true, 'the issued secret opens the broker now');
    assert.equal(await canLogIn(h.hub, 'someone-else', secret), false, 'for that device id only');
    assert.equal((await h.call('POST', `/api/v1/pending-devices/${claimId}/approve`, {})).status, 409, 'decided once');
  });

  test('attacks: a used code, an expired code, another home\'s code, another device\'s id, a wrong secret, guessing — each refused with its code, nothing changed', async () => {
    const h = await emptyHub();
    const { home, enrollment } = await homeAndCode(h);
    const other = await homeAndCode(h, 'Neighbours');
    const first = await h.device<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code: enrollment.code, device: PLUG });
    assert.equal(first.status, 202);
    await h.call('POST', `/api/v1/pending-devices/${first.json.claimId}/approve`, {});

    const before = await snapshot(h.hub);
    const refusals: [string, unknown, number, string][] = [
      ['the same code again', { code: enrollment.code, device: { ...PLUG, id: 'h1-plug-2' } }, 400, 'enrollment_invalid'],
      ['a code of another home', { code: other.enrollment.code, homeId: home.id, device: { ...PLUG, id: 'h1-plug-3' } }, 400, 'enrollment_wrong_home'],
      ['another device\'s id', { code: other.enrollment.code, device: PLUG }, 409, 'conflict'],
      ['a made-up code', { code: 'AAAAA-BBBBB', device: { ...PLUG, id: 'x' } }, 400, 'enrollment_invalid'],
      ['not a code at all', { code: '!!', device: { ...PLUG, id: 'x' } }, 400, 'enrollment_invalid'],
      ['a malformed device', { code: other.enrollment.code, device: { id: 'a/b', vendor: 'x' } }, 400, 'invalid_input'],
      ['the hub\'s own broker login as its id', { code: other.enrollment.code, device: { ...PLUG, id: 'hub' } }, 400, 'invalid_input'],
    ];
    for (const [what, body, status, code] of refusals) {
      const answer = await h.device<{ error: { code: string; message: string } }>('POST', '/enroll/v1/claims', body);
      assert.equal(answer.status, status, what);
      assert.equal(answer.json.error.code, code, what);
      assert.ok(answer.json.error.message.length > 10, `${what}: a sentence`);
    }
    assert.equal(await snapshot(h.hub), before, 'nothing changed');

    // An expired code: made, then its clock runs out.
    const expiring = await h.call<EnrollmentCreated>('POST', `/api/v1/homes/${home.id}/enrollments`, { expiresInMinutes: 1 });
    const row = (await h.hub.store.listEnrollments({ homeId: home.id })).find((e) => e.id === expiring.json.id)!;
    await h.hub.store.deleteEnrollment(row.id);
    await h.hub.store.insertEnrollment({ ...row, expiresAt: Date.now() - 1 });
    const expired = await h.device<{ error: { code: string; message: string } }>('POST', '/enroll/v1/claims', { code: expiring.json.code, device: { ...PLUG, id: 'late' } });
    assert.equal(expired.json.error.code, 'enrollment_invalid');
    assert.match(expired.json.error.message, /expired/);

    // The claim's status needs the device's own secret.
    const wrong = await h.device<{ error: { code: string } }>('GET', `/enroll/v1/claims/${first.json.claimId}`, undefined, 'not-the-secret-not-the-secret-not-the');
    assert.equal(wrong.status, 401);
    assert.equal((await h.device('GET', `/enroll/v1/claims/${first.json.claimId}`)).status, 401);

    // Guessing: wrong codes are counted per address, before they are checked (even sent all at once).
    const guesses = await Promise.all(Array.from({ length: 15 }, (_, i) =>
      h.device<{ error: { code: string } }>('POST', '/enroll/v1/claims', { code: `ZZZZZ-ZZZ${String(i).padStart(2, '0').replace(/[^0-9A-Z]/g, 'A')}`, device: { ...PLUG, id: `g${i}` } })));
    const limited = guesses.filter((g) => g.status === 429);
    assert.ok(limited.length >= 1, `some of 15 guesses at once are refused for too many attempts (${guesses.map((g) => g.status).join(',')})`);
    assert.equal(limited[0]!.json.error.code, 'too_many_attempts');
    assert.ok(Number(limited[0]!.headers.get('retry-after')) > 0, 'with Retry-After');
    // Even the right code waits now, from this address.
    const fresh = await h.call<EnrollmentCreated>('POST', `/api/v1/homes/${home.id}/enrollments`, {});
    assert.equal((await h.device('POST', '/enroll/v1/claims', { code: fresh.json.code, device: { ...PLUG, id: 'patient' } })).status, 429);
  });

  test('rejected: the device hears it, its secret never opens the broker', async () => {
    const h = await emptyHub();
    const { enrollment } = await homeAndCode(h);
    const claim = await h.device<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code: enrollment.code, device: PLUG });
    const rejected = await h.call<PendingDeviceView>('POST', `/api/v1/pending-devices/${claim.json.claimId}/reject`, {});
    assert.equal(rejected.json.state, 'rejected');
    assert.equal((await h.device<{ state: string }>('GET', `/enroll/v1/claims/${claim.json.claimId}`, undefined, claim.json.secret)).json.state, 'rejected');
    assert.equal(await canLogIn(h.hub, PLUG.id, claim.json.secret), false);
    assert.equal((await h.hub.store.listDevices()).length, 0);
  });
});

describe('a device leaves, moves, is set aside', () => {
  async function enrolled(h: Hub) {
    const { home, enrollment } = await homeAndCode(h);
    const claim = await h.device<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code: enrollment.code, device: PLUG });
    await h.call('POST', `/api/v1/pending-devices/${claim.json.claimId}/approve`, {});
    return { home, secret: claim.json.secret };
  }

  /** An update of the device in `state`, written as the engine would have left it. */
  async function updateIn(h: Hub, homeId: string, state: 'queued' | 'downloading' | 'installing') {
    const job = { ...newJob({ id: `job-${state}`, homeId, deviceId: PLUG.id, releaseId: 'Acme/QuickPlug/1.1.0', fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 2, requestedBy: null }, Date.now()), state };
    await h.hub.store.insertJob(job);
    return job;
  }

  test('removing revokes its access at once: the open session is closed, the old secret opens nothing', async () => {
    const h = await emptyHub();
    const { secret } = await enrolled(h);
    const client = mqtt.connect(h.hub.mqttUrl, { clientId: PLUG.id, username: PLUG.id, password: secret, reconnectPeriod: 0 });
    await new Promise((resolve) => client.once('connect', resolve));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const removed = await h.call<{ deviceId: string }>('DELETE', `/api/v1/devices/${PLUG.id}`);
    assert.equal(removed.status, 200);
    await closed;
    client.end(true);
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), false, 'a removed device reconnecting with its old secret is refused');
    assert.equal((await h.call('GET', `/api/v1/devices/${PLUG.id}`)).status, 404);
    assert.equal(await h.hub.store.getDeviceSecret(PLUG.id), null);
  });

  test('removing, moving, setting aside or revoking a device that installs is refused; before the install step its update is cancelled with the reason', async () => {
    const h = await emptyHub();
    const { home, secret } = await enrolled(h);
    const other = (await h.call<HomeView>('POST', '/api/v1/homes', { name: 'Holiday flat', timeZone: 'UTC' })).json;
    await updateIn(h, home.id, 'installing');
    const before = await snapshot(h.hub);
    for (const [method, route, body] of [
      ['DELETE', `/api/v1/devices/${PLUG.id}`, undefined], ['PATCH', `/api/v1/devices/${PLUG.id}`, { homeId: other.id }],
      ['PATCH', `/api/v1/devices/${PLUG.id}`, { ignored: true }], ['DELETE', `/api/v1/devices/${PLUG.id}/credentials`, undefined],
      ['DELETE', `/api/v1/homes/${home.id}`, undefined],
    ] as const) {
      const refused = await h.call<{ error: { code: string; message: string } }>(method, route, body);
      assert.equal(refused.status, 409, `${method} ${route}`);
      assert.equal(refused.json.error.code, 'update_in_progress');
      assert.match(refused.json.error.message, /Kitchen plug is installing 1\.1\.0 right now/);
    }
    assert.equal(await snapshot(h.hub), before);
    assert.equal((await h.hub.store.getJob('job-installing'))?.state, 'installing', 'the install goes on');
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), true, 'and the device keeps its access');

    // Before the install step the move goes ahead and the update ends as cancelled, saying why.
    const job = await h.hub.store.getJob('job-installing');
    await h.hub.store.saveJob({ ...job!, state: 'downloading' }, 'installing', null);
    const moved = await h.call<DeviceView>('PATCH', `/api/v1/devices/${PLUG.id}`, { homeId: other.id });
    assert.equal(moved.status, 200, JSON.stringify(moved.json));
    assert.equal(moved.json.homeId, other.id);
    const cancelled = await h.hub.store.getJob('job-installing');
    assert.equal(cancelled?.state, 'cancelled');
    assert.match(cancelled?.reasons[0]?.message ?? '', /moved Kitchen plug to another home/);
    assert.deepEqual((await h.call<DeviceView[]>('GET', `/api/v1/devices?homeId=${home.id}`)).json, [], 'the old home lists it no more');
    assert.ok((await h.hub.store.listEvents({ homeId: other.id, limit: 5 })).some((e) => e.code === 'device_moved'));

    // Topics and ACLs are the device's own, not its home's: nothing to go stale. What it says now
    // lands in its new home, and its old home hears nothing more of it.
    const oldHomeBefore = (await h.hub.store.listEvents({ homeId: home.id, limit: 500 })).length;
    const client = mqtt.connect(h.hub.mqttUrl, { clientId: PLUG.id, username: PLUG.id, password: secret, reconnectPeriod: 0, protocolVersion: 4 });
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const state = {
      v: 1, vendor: PLUG.vendor, model: PLUG.model, hardwareRevision: PLUG.hardwareRevision, firmwareVersion: '1.0.0', activeSlot: 'a', powerSource: 'mains',
      batteryPercent: null, charging: false, signalDbm: -50, busy: false, freeStorageBytes: 100_000_000, healthy: true, job: null,
    };
    await client.publishAsync(deviceTopics(PLUG.id).state, JSON.stringify(state), { qos: 1, retain: true });
    const reported = await until('its report in its new home', async () => {
      const [view] = (await h.call<DeviceView[]>('GET', `/api/v1/devices?homeId=${other.id}`)).json;
      return view?.report ? view : null;
    });
    assert.equal(reported.homeId, other.id);
    await client.endAsync(true);
    assert.equal((await h.hub.store.listEvents({ homeId: home.id, limit: 500 })).length, oldHomeBefore, 'the old home hears nothing more of it');
  });

  test('set aside: never planned, "update now" refused, listed with its sentence; looked after again on request', async () => {
    const maker = await publishFleetRelease(tempDir('firmward-maker-'));
    const h = await emptyHub({ repositories: [maker.config] });
    await enrolled(h);
    const ignored = await h.call<DeviceView>('PATCH', `/api/v1/devices/${PLUG.id}`, { ignored: true });
    assert.equal(ignored.json.ignored, true);
    assert.equal(ignored.json.update.status, 'ignored');
    assert.match(ignored.json.update.summary, /leaves this device alone/);
    const now = await h.call<{ error: { code: string } }>('POST', `/api/v1/devices/${PLUG.id}/update`, {});
    assert.equal(now.status, 422);
    assert.equal(now.json.error.code, 'device_ignored');
    await h.hub.engine.plan(Date.now());
    assert.deepEqual(await h.hub.store.listJobs({ deviceId: PLUG.id, open: true }), [], 'nothing planned');
    // An update planned before it was set aside ended as cancelled, saying why.
    for (const job of await h.hub.store.listJobs({ deviceId: PLUG.id })) {
      assert.equal(job.state, 'cancelled');
      assert.match(job.reasons[0]?.message ?? '', /leave Kitchen plug alone/);
    }
    await h.call('PATCH', `/api/v1/devices/${PLUG.id}`, { ignored: false });
    await h.hub.engine.plan(Date.now());
    assert.equal((await h.hub.store.listJobs({ deviceId: PLUG.id, open: true })).length, 1, 'planned again');
  });

  test('rotating the secret: the old one stops at once, the new one works; revoking keeps the device listed', async () => {
    const h = await emptyHub();
    const { secret } = await enrolled(h);
    const rotated = await h.call<{ kind: string; secret: string; username: string }>('POST', `/api/v1/devices/${PLUG.id}/credentials`, {});
    assert.equal(rotated.status, 201);
    assert.equal(rotated.json.kind, 'mqtt');
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), false);
    assert.equal(await canLogIn(h.hub, PLUG.id, rotated.json.secret), true);
    const revoked = await h.call<DeviceView>('DELETE', `/api/v1/devices/${PLUG.id}/credentials`);
    assert.equal(revoked.status, 200);
    assert.equal(revoked.json.id, PLUG.id);
    assert.equal(await canLogIn(h.hub, PLUG.id, rotated.json.secret), false);
  });

  test('deleting a home: its open updates end as cancelled, its devices and their access go, the history stays', async () => {
    const h = await emptyHub();
    const { home, secret } = await enrolled(h);
    await updateIn(h, home.id, 'queued');
    const deleted = await h.call<{ devicesRemoved: string[]; updatesCancelled: number }>('DELETE', `/api/v1/homes/${home.id}`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    assert.deepEqual(deleted.json.devicesRemoved, [PLUG.id]);
    assert.equal(deleted.json.updatesCancelled, 1);
    assert.equal((await h.call('GET', `/api/v1/homes/${home.id}`)).status, 404);
    assert.equal(await canLogIn(h.hub, PLUG.id, secret), false);
    const history = await h.hub.store.listEvents({ homeId: home.id, limit: 50 });
    assert.ok(history.some((e) => e.code === 'home_deleted' && /Kitchen plug/.test(e.message)));
    assert.ok(history.some((e) => e.to === 'cancelled' && /deleted the home/.test(e.message)));
  });
});

describe('the makers\' repositories, added while the hub runs', () => {
  test('added with the root pasted, read at once, refreshed on request, removed; bad roots and config repositories refused', async () => {
    const maker = await publishFleetRelease(tempDir('firmward-maker-'));
    const h = await emptyHub();
    const root = readFileSync(maker.config.root, 'utf8');
    for (const [body, code] of [
      [{ name: 'acme', url: maker.config.url, root: '{"signed": {}}' }, 'invalid_input'],
      [{ name: 'acme', url: 'ftp://x', root }, 'invalid_input'],
      [{ name: '../acme', url: maker.config.url, root }, 'invalid_input'],
    ] as const) {
      const refused = await h.call<{ error: { code: string } }>('POST', '/api/v1/repositories', body);
      assert.equal(refused.json.error.code, code, JSON.stringify(body).slice(0, 80));
    }
    assert.deepEqual((await h.call<RepositoryView[]>('GET', '/api/v1/repositories')).json, []);
    const added = await h.call<RepositoryView>('POST', '/api/v1/repositories', { name: 'acme', url: maker.config.url, root: JSON.parse(root) as unknown });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    assert.equal(added.json.trusted, true, JSON.stringify(added.json));
    assert.equal(added.json.releases, 1);
    assert.equal((await h.call('POST', '/api/v1/repositories', { name: 'acme', url: maker.config.url, root })).status, 409);
    const refreshed = await h.call<RepositoryView>('POST', '/api/v1/repositories/acme/refresh', {});
    assert.equal(refreshed.json.trusted, true);
    assert.ok(h.hub.engine.releases.has(`Acme/QuickPlug/${FLEET_TARGET_VERSION}`));
    assert.equal((await h.call('POST', '/api/v1/repositories/nope/refresh', {})).status, 404);
    assert.equal((await h.call('DELETE', '/api/v1/repositories/acme')).status, 204);
    assert.equal(h.hub.engine.releases.size, 0, 'its releases are gone');
    assert.deepEqual((await h.call<RepositoryView[]>('GET', '/api/v1/repositories')).json, []);

    const configured = await emptyHub({ repositories: [maker.config] });
    const listed = await configured.call<RepositoryView[]>('GET', '/api/v1/repositories');
    assert.deepEqual(listed.json.map((r) => [r.name, r.origin, r.trusted]), [['acme', 'config', true]]);
    assert.equal((await configured.call<{ error: { code: string } }>('DELETE', '/api/v1/repositories/acme')).json.error.code, 'conflict');
  });
});

describe('the hub at start', () => {
  test('writes its address for the CLI into its data folder', async () => {
    const h = await emptyHub();
    assert.equal(readFileSync(path.join(h.dir, HUB_URL_FILE), 'utf8').trim(), h.hub.baseUrl);
  });
});

describe('from enrollment to an updated device, with the real agent', () => {
  test('the approved agent connects with its issued secret and is updated from a repository added at run time', async () => {
    const maker = await publishFleetRelease(tempDir('firmward-maker-'));
    const h = await emptyHub();
    const { home, enrollment } = await homeAndCode(h);
    const claim = await h.device<EnrollmentClaimAnswer>('POST', '/enroll/v1/claims', { code: enrollment.code, homeId: home.id, device: PLUG });
    await h.call('POST', `/api/v1/pending-devices/${claim.json.claimId}/approve`, {});
    const profile = fleetDevices({ homes: 1, devicesPerHome: 1 })[0]!.profile;
    const clock = new SystemClock();
    const simulated = createSimulatedDevice(profile, {
      clock, random: new SeededRandom(1), agentConfig: { stateReportIntervalMs: 500, downloadRetryDelayMs: 500 },
      verifier: new DeviceTrust({ dir: tempDir('firmward-device-trust-'), roots: { acme: maker.root } }),
      connect: (identity) => new MqttAgentTransport({ url: h.hub.mqttUrl, deviceId: identity.deviceId, password: claim.json.secret, clock, logger: silentLogger }),
    });
    await simulated.start();
    running.push(simulated);
    await until('the device to report', async () => ((await h.call<DeviceView>('GET', `/api/v1/devices/${PLUG.id}`)).json.report ? true : null));
    const added = await h.call<RepositoryView>('POST', '/api/v1/repositories', { name: 'acme', url: maker.config.url, root: readFileSync(maker.config.root, 'utf8') });
    assert.equal(added.json.trusted, true);
    const done = await until('the update to end', async () => {
      const view = (await h.call<DeviceView>('GET', `/api/v1/devices/${PLUG.id}`)).json;
      return view.update.jobState === 'succeeded' || view.update.jobState === 'failed' ? view : null;
    }, 60_000);
    assert.equal(done.update.jobState, 'succeeded', done.update.summary);
    assert.equal(done.firmwareVersion, FLEET_TARGET_VERSION);
  });
});
