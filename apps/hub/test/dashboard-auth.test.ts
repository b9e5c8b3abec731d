/**
 * The dashboard's sign-in without a browser: the owner account (scrypt, first run only, needs the
 * owner token), sessions in the data folder, the CSRF rule for cookie-authenticated writes, the
 * rate limit on passwords and owner tokens (also against a running hub over real HTTP, from two
 * loopback addresses), the bound on password hashes at once, and the bearer token still working
 * beside it.
 */
import { strict as assert } from 'node:assert';
import { scrypt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import { HubClient } from '../../cli/src/client.ts';
import { loadConfig } from '../src/config.ts';
import { DashboardAuth, OWNER_ACCOUNT_FILE, SESSIONS_FILE } from '../src/dashboard-auth.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';
import { createHttpApp } from '../src/http/index.ts';
import { seededFake } from './fake-hub-service.ts';

const TOKEN = 'owner-token-for-dashboard-tests-0123';
const PASSWORD = 'a long enough passphrase';
const ORIGIN = 'http://localhost';
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'firmward-dashboard-auth-'));
  dirs.push(d);
  return d;
}

describe('DashboardAuth', () => {
  test('stores a scrypt hash, never the password, in a 0600 file; a second owner is refused', async () => {
    const dir = tempDir();
    const auth = new DashboardAuth({ dataDir: dir });
    assert.equal(auth.hasAccount(), false);
    await auth.createOwner('alex', PASSWORD);
    const file = join(dir, OWNER_ACCOUNT_FILE);
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /passphrase/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(await auth.verify('alex', PASSWORD, 'a'), true);
    assert.equal(await auth.verify('alex', `${PASSWORD}!`, 'a'), false);
    assert.equal(await auth.verify('sam', PASSWORD, 'a'), false);
    await assert.rejects(auth.createOwner('mallory', 'another long passphrase'), (e) => isFirmwardError(e, 'conflict'));
  });

  test('refuses short passwords and odd user names', async () => {
    const auth = new DashboardAuth({ dataDir: tempDir() });
    await assert.rejects(auth.createOwner('alex', 'short'), (e) => isFirmwardError(e, 'invalid_input'));
    await assert.rejects(auth.createOwner('<script>', PASSWORD), (e) => isFirmwardError(e, 'invalid_input'));
    assert.equal(auth.hasAccount(), false);
  });

  test('sessions survive a restart, keep only digests on disk, and end on sign-out or expiry', async () => {
    const dir = tempDir();
    let now = 1_000_000;
    const auth = new DashboardAuth({ dataDir: dir, now: () => now, sessionTtlMs: 60_000 });
    await auth.createOwner('alex', PASSWORD);
    const { sessionId, session } = auth.startSession('alex');
    assert.doesNotMatch(readFileSync(join(dir, SESSIONS_FILE), 'utf8'), new RegExp(sessionId));
    const restarted = new DashboardAuth({ dataDir: dir, now: () => now, sessionTtlMs: 60_000 });
    assert.equal(restarted.session(sessionId)?.csrfToken, session.csrfToken);
    restarted.endSession(sessionId);
    assert.equal(restarted.session(sessionId), null);
    const second = restarted.startSession('alex');
    now += 60_001;
    assert.equal(restarted.session(second.sessionId), null, 'expired');
  });

  test('after five wrong passwords from one address, even the right one waits', async () => {
    const auth = new DashboardAuth({ dataDir: tempDir(), maxFailedAttempts: 5 });
    await auth.createOwner('alex', PASSWORD);
    for (let i = 0; i < 5; i++) assert.equal(await auth.verify('alex', 'wrong password', '10.0.0.9'), false);
    await assert.rejects(auth.verify('alex', PASSWORD, '10.0.0.9'), (e) => isFirmwardError(e, 'too_many_attempts'));
    assert.equal(await auth.verify('alex', PASSWORD, '10.0.0.10'), true, 'another address is not locked out');
  });

  test('forty wrong passwords sent at once count as forty: at most five are checked, the rest wait', async () => {
    const auth = new DashboardAuth({ dataDir: tempDir(), maxFailedAttempts: 5 });
    await auth.createOwner('alex', PASSWORD);
    const answers = await Promise.allSettled(Array.from({ length: 40 }, () => auth.verify('alex', 'wrong password', '10.0.0.7')));
    const checked = answers.filter((a) => a.status === 'fulfilled');
    assert.equal(checked.length, 5);
    assert.ok(answers.filter((a) => a.status === 'rejected').every((a) => isFirmwardError(a.reason, 'too_many_attempts')));
    await assert.rejects(auth.verify('alex', PASSWORD, '10.0.0.7'), (e) => isFirmwardError(e, 'too_many_attempts'));
  });

  test('at most two password hashes run at once whatever the number of addresses; past 16 waiting, a sign-in is told to retry and not counted', async () => {
    const running = { now: 0, max: 0, calls: 0 };
    // A cheap scrypt, counted: the real cost is not what this test is about.
    const hash = async (password: string, salt: Buffer) => {
      running.calls += 1;
      running.max = Math.max(running.max, (running.now += 1));
      try {
        return await new Promise<Buffer>((resolve, reject) => scrypt(password, salt, 64, { N: 1024 }, (e, key) => (e ? reject(e) : resolve(key))));
      } finally {
        running.now -= 1;
      }
    };
    const auth = new DashboardAuth({ dataDir: tempDir(), maxFailedAttempts: 5, hash });
    await auth.createOwner('alex', PASSWORD);
    running.calls = 0;
    const answers = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => auth.verify('alex', 'wrong password', `10.0.1.${i}`)));
    assert.equal(running.max, 2);
    assert.equal(running.calls, 18, 'two hashed at once and sixteen waited');
    const busy = answers.flatMap((a, i) => (a.status === 'rejected' ? [i] : []));
    assert.equal(busy.length, 22);
    for (const i of busy) {
      const reason = (answers[i] as PromiseRejectedResult).reason as unknown;
      assert.ok(isFirmwardError(reason, 'too_many_attempts') && reason.detail?.['retryAfterSeconds'] === 5 && /busy/.test(reason.message));
    }
    // A busy answer checked nothing and counts nothing: that address still has all five tries.
    const from = `10.0.1.${busy[0]!}`;
    for (let i = 0; i < 4; i++) assert.equal(await auth.verify('alex', 'wrong password', from), false);
    assert.equal(await auth.verify('alex', PASSWORD, from), true);
  });
});

describe('the dashboard over HTTP', () => {
  function setup() {
    const fake = seededFake();
    const app = createHttpApp(fake, { ownerToken: TOKEN, maxBodyBytes: 4096, dashboard: new DashboardAuth({ dataDir: tempDir() }) });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      app.request(`${ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers }, body: JSON.stringify(body) });
    return { fake, app, post };
  }
  async function signedIn(s: ReturnType<typeof setup>) {
    const res = await s.post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: TOKEN });
    assert.equal(res.status, 200);
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0]!;
    const { csrfToken } = await res.json() as { csrfToken: string };
    return { cookie, csrfToken, setCookie };
  }

  test('the page is served; the data is not without signing in', async () => {
    const { app } = setup();
    const page = await app.request(`${ORIGIN}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.match(await page.text(), /<script type="module" src="\/app.js">/);
    assert.equal((await app.request(`${ORIGIN}/api/v1/homes`)).status, 401);
    assert.equal((await app.request(`${ORIGIN}/api/v1/homes`, { headers: { cookie: 'firmward_session=made-up' } })).status, 401);
    const state = await (await app.request(`${ORIGIN}/auth/session`)).json() as { account: boolean; signedIn: boolean };
    assert.deepEqual(state, { account: false, signedIn: false });
  });

  test('the owner account needs the owner token; the cookie is HttpOnly and SameSite=Strict', async () => {
    const s = setup();
    assert.equal((await s.post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: 'wrong-token' })).status, 401);
    assert.equal((await s.post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: TOKEN }, { origin: 'http://evil.example' })).status, 403);
    const { setCookie } = await signedIn(s);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.doesNotMatch(setCookie, /Secure/, 'plain http: a Secure cookie would never come back');
  });

  test('over https the session cookie is Secure', async () => {
    const s = setup();
    const res = await s.app.request('https://localhost/auth/setup', {
      method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://localhost' },
      body: JSON.stringify({ username: 'alex', password: PASSWORD, ownerToken: TOKEN }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('set-cookie') ?? '', /Secure/);
  });

  test('cookie reads work; cookie writes need the CSRF token and the same origin', async () => {
    const s = setup();
    const { cookie, csrfToken } = await signedIn(s);
    assert.equal((await s.app.request(`${ORIGIN}/api/v1/homes`, { headers: { cookie } })).status, 200);
    assert.equal((await s.post('/api/v1/homes/home-2/resume', {}, { cookie })).status, 403);
    assert.equal((await s.post('/api/v1/homes/home-2/resume', {}, { cookie, 'x-csrf-token': 'guess' })).status, 403);
    assert.equal((await s.post('/api/v1/homes/home-2/resume', {}, { cookie, 'x-csrf-token': csrfToken, origin: 'http://evil.example' })).status, 403);
    assert.equal(s.fake.calls.filter((c) => c.method === 'resume').length, 0, 'no refused write reached the service');
    assert.equal((await s.post('/api/v1/homes/home-2/resume', {}, { cookie, 'x-csrf-token': csrfToken })).status, 200);
    assert.equal(s.fake.calls.filter((c) => c.method === 'resume').length, 1);
  });

  test('sign-in: wrong password 401, right one a new session; sign-out ends it; the bearer token still works', async () => {
    const s = setup();
    const first = await signedIn(s);
    assert.equal((await s.post('/auth/login', { username: 'alex', password: 'not the password' })).status, 401);
    const login = await s.post('/auth/login', { username: 'alex', password: PASSWORD });
    assert.equal(login.status, 200);
    assert.equal((await s.post('/auth/logout', {}, { cookie: first.cookie })).status, 403, 'sign-out needs the CSRF token too');
    assert.equal((await s.post('/auth/logout', {}, { cookie: first.cookie, 'x-csrf-token': first.csrfToken })).status, 200);
    assert.equal((await s.app.request(`${ORIGIN}/api/v1/homes`, { headers: { cookie: first.cookie } })).status, 401);
    assert.equal((await s.app.request(`${ORIGIN}/api/v1/homes`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });
});

describe('sign-in against a running hub (startHub, real HTTP)', { timeout: 60_000 }, () => {
  const HUB_TOKEN = 'owner-token-for-the-running-hub-0123456789';
  /** The guesser and the owner's own machine: Linux answers all of 127/8 on loopback. */
  const GUESSER = '127.0.0.1';
  const OWNER = '127.0.0.2';
  let hub: RunningHub;
  let base: string;

  before(async () => {
    const config = loadConfig({
      argv: ['--data-dir', tempDir(), '--port', '0', '--mqtt-port', '0'],
      env: {},
      readFile: () => {
        throw new Error('no config file in this test');
      },
    });
    hub = await startHub(config, { clock: new ManualClock(Date.UTC(2026, 0, 5, 10)), log: silentLogger, ownerToken: HUB_TOKEN });
    base = `http://127.0.0.1:${hub.httpPort}`;
  });
  after(() => hub.stop());

  interface Answer {
    status: number;
    retryAfter: string | undefined;
    code: string | undefined;
  }

  /** A POST from `localAddress`, as the page sends it (JSON, same Origin). */
  function post(path: string, body: unknown, localAddress: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(`${base}${path}`, {
        method: 'POST', localAddress, agent: false,
        headers: { 'content-type': 'application/json', origin: base },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => {
          const parsed = JSON.parse(text) as { error?: { code?: string } };
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], code: parsed.error?.code });
        });
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  /** Forty at once: five are checked and refused (401), the other 35 are not checked (429, too_many_attempts, Retry-After). */
  function assertFiveChecked(answers: Answer[]): void {
    const statuses = answers.map((a) => a.status);
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(' '));
    const waited = answers.filter((a) => a.status === 429);
    assert.equal(waited.length, 35, statuses.join(' '));
    for (const a of waited) {
      assert.equal(a.code, 'too_many_attempts');
      const seconds = Number(a.retryAfter);
      assert.ok(Number.isInteger(seconds) && seconds > 0 && seconds <= 15 * 60, `Retry-After: ${a.retryAfter}`);
    }
  }

  test('the first-run form: forty wrong owner tokens at once from one address, five compared; the right token from there waits, from another address it works', async () => {
    const guesses = await Promise.all(Array.from({ length: 40 }, (_, i) => post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: `guess-${i}` }, GUESSER)));
    assertFiveChecked(guesses);
    assert.equal((await post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: HUB_TOKEN }, GUESSER)).status, 429);
    assert.equal((await post('/auth/setup', { username: 'alex', password: PASSWORD, ownerToken: HUB_TOKEN }, OWNER)).status, 200);
  });

  test('once the hub has its owner, the first-run form compares no token at all', async () => {
    const answer = await post('/auth/setup', { username: 'sam', password: PASSWORD, ownerToken: 'another-guess' }, '127.0.0.3');
    assert.deepEqual([answer.status, answer.code], [409, 'conflict']);
  });

  test('sign-in: forty wrong passwords at once from one address, five checked; the right one from there waits, from another address it signs in', async () => {
    const guesses = await Promise.all(Array.from({ length: 40 }, () => post('/auth/login', { username: 'alex', password: 'not the password' }, GUESSER)));
    assertFiveChecked(guesses);
    const locked = await post('/auth/login', { username: 'alex', password: PASSWORD }, GUESSER);
    assert.deepEqual([locked.status, locked.code], [429, 'too_many_attempts']);
    assert.equal((await post('/auth/login', { username: 'alex', password: PASSWORD }, OWNER)).status, 200);
  });

  test('the locked-out address still reaches the API with the owner token, as the CLI does', async () => {
    // fetch connects from 127.0.0.1: the address locked out of both forms above.
    const client = new HubClient({ baseUrl: base, token: HUB_TOKEN });
    assert.deepEqual(await client.listHomes(), []);
    const res = await fetch(`${base}/api/v1/homes`, { headers: { authorization: `Bearer ${HUB_TOKEN}` } });
    assert.equal(res.status, 200);
    assert.equal((await fetch(`${base}/api/v1/homes`, { headers: { authorization: 'Bearer a-wrong-token' } })).status, 401);
  });
});
