/**
 * The dashboard's sign-in without a browser: the owner account (scrypt, first run only, needs the
 * owner token), sessions in the data folder, the CSRF rule for cookie-authenticated writes, the
 * rate limit on passwords, and the bearer token still working beside it.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { DashboardAuth, OWNER_ACCOUNT_FILE, SESSIONS_FILE } from '../src/dashboard-auth.ts';
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
