import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FirmwardError } from '@firmward/core';
import type { ErrorCode } from '@firmward/core';
import type { HistoryEvent } from '@firmward/ports';
import { createHttpApp, STATUS_OF_CODE } from '../src/http/index.ts';
import { seededFake } from './fake-hub-service.ts';
import type { FakeHubService } from './fake-hub-service.ts';

const TOKEN = 'owner-token-for-tests-0123456789';
const MAX_BODY = 1024;

function setup(imagePath?: (releaseId: string) => Promise<string | null>) {
  const fake = seededFake();
  const internal: unknown[] = [];
  const app = createHttpApp(fake, {
    ownerToken: TOKEN, maxBodyBytes: MAX_BODY, onInternalError: (e) => internal.push(e), ...(imagePath ? { imagePath } : {}),
  });
  const request = (method: string, path: string, init: { body?: string; headers?: Record<string, string>; token?: string | null } = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    const token = init.token === undefined ? TOKEN : init.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] ??= 'application/json';
    return app.request(path, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) });
  };
  return { fake, app, request, internal };
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = await res.json() as { error: { code: string; message: string } };
  assert.equal(typeof body.error.code, 'string');
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}

/** Every route behind the owner token, with a body that would be accepted. */
const PROTECTED: { method: string; path: string; body?: string; serviceMethod: keyof FakeHubService }[] = [
  { method: 'GET', path: '/api/v1/homes', serviceMethod: 'listHomes' },
  { method: 'GET', path: '/api/v1/homes/home-1', serviceMethod: 'getHome' },
  { method: 'PATCH', path: '/api/v1/homes/home-1/settings', body: '{"policy":"notify"}', serviceMethod: 'updateHomeSettings' },
  { method: 'POST', path: '/api/v1/homes/home-2/resume', serviceMethod: 'resume' },
  { method: 'POST', path: '/api/v1/homes/home-2/skip', body: '{}', serviceMethod: 'skip' },
  { method: 'GET', path: '/api/v1/devices', serviceMethod: 'listDevices' },
  { method: 'GET', path: '/api/v1/devices/plug', serviceMethod: 'getDevice' },
  { method: 'PATCH', path: '/api/v1/devices/plug/settings', body: '{"policy":null}', serviceMethod: 'updateDeviceSettings' },
  { method: 'POST', path: '/api/v1/devices/lock/update', serviceMethod: 'updateNow' },
  { method: 'POST', path: '/api/v1/devices/lock/force', body: '{"confirm":true}', serviceMethod: 'force' },
  { method: 'GET', path: '/api/v1/jobs', serviceMethod: 'listJobs' },
  { method: 'GET', path: '/api/v1/jobs/job-run', serviceMethod: 'getJob' },
  { method: 'POST', path: '/api/v1/jobs/job-wait/cancel', serviceMethod: 'cancel' },
  { method: 'GET', path: '/api/v1/events', serviceMethod: 'listEvents' },
  { method: 'GET', path: '/api/v1/events/stream', serviceMethod: 'subscribe' },
];

describe('owner token', () => {
  test('health answers without a token', async () => {
    const { request } = setup();
    const res = await request('GET', '/api/v1/health', { token: null });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { status: string }).status, 'ok');
  });

  for (const route of PROTECTED) {
    test(`${route.method} ${route.path} needs the owner token`, async () => {
      const { request, fake } = setup();
      const cases: { name: string; token: string | null; headers?: Record<string, string> }[] = [
        { name: 'no header', token: null },
        { name: 'wrong token', token: 'not-the-owner-token-0123456789' },
        { name: 'token with one character changed', token: `${TOKEN.slice(0, -1)}x` },
        { name: 'wrong scheme', token: null, headers: { authorization: `Basic ${TOKEN}` } },
      ];
      for (const c of cases) {
        const res = await request(route.method, route.path, { token: c.token, ...(c.headers ? { headers: c.headers } : {}), ...(route.body === undefined ? {} : { body: route.body }) });
        assert.equal(res.status, 401, c.name);
        const error = await errorOf(res);
        assert.equal(error.code, 'unauthorized', c.name);
        assert.match(error.message, /owner token/, c.name);
      }
      assert.deepEqual(fake.calls, [], 'the service is never reached without the token');
      assert.equal(fake.listeners.size, 0);
    });

    if (route.serviceMethod !== 'subscribe') {
      test(`${route.method} ${route.path} with the token reaches ${route.serviceMethod}`, async () => {
        const { request, fake } = setup();
        const res = await request(route.method, route.path, route.body === undefined ? {} : { body: route.body });
        assert.equal(res.status, 200, await res.clone().text());
        assert.deepEqual(fake.calls.map((c) => c.method), [route.serviceMethod]);
        const args = fake.calls[0]!.args;
        if (['resume', 'skip', 'updateNow', 'force', 'cancel', 'updateHomeSettings', 'updateDeviceSettings'].includes(route.serviceMethod)) {
          assert.equal(args[args.length - 1], 'person:owner', 'actions are recorded as the owner\'s');
        }
      });
    }
  }
});

describe('bodies', () => {
  test('an oversized body is refused with 413 before the service is called', async () => {
    const { request, fake } = setup();
    const big = JSON.stringify({ policy: 'notify', timeZone: 'x'.repeat(MAX_BODY) });
    // Without Content-Length (streamed) and with it: both must be refused.
    for (const headers of [{}, { 'content-length': String(Buffer.byteLength(big)) }]) {
      const res = await request('PATCH', '/api/v1/homes/home-1/settings', { body: big, headers });
      assert.equal(res.status, 413);
      assert.equal((await errorOf(res)).code, 'payload_too_large');
    }
    assert.deepEqual(fake.calls, []);
  });

  test('a body just under the limit is read', async () => {
    const { request, fake } = setup();
    const body = JSON.stringify({ policy: 'notify' }).padEnd(MAX_BODY, ' ');
    const res = await request('PATCH', '/api/v1/homes/home-1/settings', { body });
    assert.equal(res.status, 200);
    assert.equal(fake.homes.get('home-1')!.settings.policy, 'notify');
  });

  test('malformed JSON is 400 invalid_input and the service is not called', async () => {
    const { request, fake } = setup();
    for (const [method, path] of [['PATCH', '/api/v1/homes/home-1/settings'], ['POST', '/api/v1/devices/lock/update'], ['POST', '/api/v1/devices/lock/force']] as const) {
      const res = await request(method, path, { body: '{"policy": "notify",' });
      assert.equal(res.status, 400);
      const error = await errorOf(res);
      assert.equal(error.code, 'invalid_input');
      assert.match(error.message, /not valid JSON/);
    }
    assert.deepEqual(fake.calls, []);
  });

  test('unknown fields are 400 and name the field', async () => {
    const { request, fake } = setup();
    const cases: [string, string, string, string][] = [
      ['PATCH', '/api/v1/homes/home-1/settings', '{"policy":"notify","polcy":"manual"}', 'polcy'],
      ['PATCH', '/api/v1/homes/home-1/settings', '{"thresholds":{"minBatteryPercnt":20}}', 'thresholds.minBatteryPercnt'],
      ['PATCH', '/api/v1/devices/plug/settings', '{"schedules":[{"weekdays":[1],"start":"07:00","end":"08:00","extra":1}]}', 'schedules.0.extra'],
      ['POST', '/api/v1/jobs/job-wait/cancel', '{"reason":"because"}', 'reason'],
      ['POST', '/api/v1/devices/lock/force', '{"confirm":true,"quietly":true}', 'quietly'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await request(method, path, { body });
      assert.equal(res.status, 400, path);
      const error = await errorOf(res);
      assert.equal(error.code, 'invalid_input');
      assert.ok(error.message.includes(`"${field}"`), error.message);
    }
    assert.deepEqual(fake.calls, []);
  });

  test('values out of range are 400 with the reason', async () => {
    const { request, fake } = setup();
    const cases: [string, RegExp][] = [
      ['{"policy":"sometimes"}', /policy/],
      ['{"window":{"start":"25:00","end":"05:00"}}', /HH:MM/],
      ['{"timeZone":"Mars/Olympus"}', /time zone/],
      ['{"thresholds":{"minBatteryPercent":150}}', /from 0 to 100/],
      ['{"soakSeconds":-1}', /soakSeconds/],
      ['[]', /request body/],
    ];
    for (const [body, why] of cases) {
      const res = await request('PATCH', '/api/v1/homes/home-1/settings', { body });
      assert.equal(res.status, 400, body);
      assert.match((await errorOf(res)).message, why);
    }
    assert.deepEqual(fake.calls, []);
  });

  test('the parsed patch reaches the service unchanged', async () => {
    const { request, fake } = setup();
    const patch = { timeZone: 'America/New_York', window: { start: '23:00', end: '04:00' }, thresholds: { minBatteryPercent: 30 } };
    const res = await request('PATCH', '/api/v1/homes/home-1/settings', { body: JSON.stringify(patch) });
    assert.equal(res.status, 200);
    assert.deepEqual(fake.calls[0]!.args, ['home-1', patch, 'person:owner']);
  });

  test('force without {"confirm": true} is 400 and says force skips the safety checks', async () => {
    const { request, fake } = setup();
    for (const body of [undefined, '{}', '{"confirm":false}', '{"confirm":"yes"}', 'true']) {
      const res = await request('POST', '/api/v1/devices/lock/force', body === undefined ? {} : { body });
      assert.equal(res.status, 400, String(body));
      const error = await errorOf(res);
      assert.equal(error.code, 'invalid_input');
      assert.match(error.message, /safety check/);
    }
    assert.deepEqual(fake.calls, []);
    const ok = await request('POST', '/api/v1/devices/lock/force', { body: '{"confirm":true}' });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json() as { forcedBy: string }).forcedBy, 'person:owner');
  });
});

describe('queries', () => {
  test('events: limit defaults to 100 and is capped at 500', async () => {
    const { request, fake } = setup();
    assert.equal((await request('GET', '/api/v1/events')).status, 200);
    assert.deepEqual(fake.calls[0]!.args[0], { limit: 100 });
    const res = await request('GET', '/api/v1/events?deviceId=thermo&to=failed&beforeId=10&limit=500');
    assert.equal(res.status, 200);
    assert.deepEqual(fake.calls[1]!.args[0], { deviceId: 'thermo', to: 'failed', beforeId: 10, limit: 500 });
    const events = await res.json() as HistoryEvent[];
    assert.deepEqual(events.map((e) => e.code), ['rolled_back']);
    for (const bad of ['limit=501', 'limit=0', 'limit=ten', 'to=broken', 'beforeId=-1', 'colour=blue']) {
      const r = await request('GET', `/api/v1/events?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal((await errorOf(r)).code, 'invalid_input');
    }
    assert.equal(fake.calls.length, 2);
  });

  test('jobs: open is parsed as a boolean', async () => {
    const { request, fake } = setup();
    const res = await request('GET', '/api/v1/jobs?homeId=home-1&open=true');
    assert.deepEqual((await res.json() as { id: string }[]).map((j) => j.id).sort(), ['job-run', 'job-wait']);
    assert.deepEqual(fake.calls[0]!.args[0], { homeId: 'home-1', open: true });
    assert.equal((await request('GET', '/api/v1/jobs?open=maybe')).status, 400);
  });

  test('an unknown address is a JSON 404', async () => {
    const { request } = setup();
    const res = await request('GET', '/api/v1/nothing-here');
    assert.equal(res.status, 404);
    assert.equal((await errorOf(res)).code, 'not_found');
  });
});

describe('error codes map to statuses only at the edge', () => {
  const expected: [ErrorCode, number][] = [
    ['invalid_input', 400], ['unauthorized', 401], ['forbidden', 403], ['not_found', 404],
    ['conflict', 409], ['home_busy', 409], ['queue_not_halted', 409], ['queue_halted', 409], ['cancel_too_late', 409], ['illegal_transition', 409],
    ['payload_too_large', 413],
    ['preflight_failed', 422], ['policy_blocks', 422], ['incompatible', 422], ['downgrade', 422], ['retracted', 422], ['already_up_to_date', 422],
    // A gateway the hub depends on (a bridge's broker, the maker's repository) failed: its sentence reaches the caller.
    ['gateway_failure', 502], ['image_unavailable', 502], ['repository_unreachable', 502], ['not_signed', 502],
    ['store_failure', 500], ['internal', 500], ['config_invalid', 500],
  ];
  for (const [code, status] of expected) {
    test(`${code} → ${status}`, async () => {
      const { request, fake, internal } = setup();
      const sentence = `A sentence about ${code}.`;
      fake.failWith = new FirmwardError(code, sentence);
      const res = await request('POST', '/api/v1/devices/lock/update');
      assert.equal(res.status, status);
      assert.deepEqual(await res.json(), { error: { code, message: sentence } });
      assert.equal(internal.length, status === 500 ? 1 : 0, 'only 500s are reported to the hub\'s log');
    });
  }

  test('the table holds no 500s (500 is the fallback)', () => {
    assert.ok(Object.values(STATUS_OF_CODE).every((s) => s !== 500));
  });

  test('a plain exception becomes 500 without leaking its text', async () => {
    const { request, fake, internal } = setup();
    fake.failWith = new TypeError('cannot read properties of undefined (reading "secret/path")');
    const res = await request('GET', '/api/v1/homes');
    assert.equal(res.status, 500);
    const error = await errorOf(res);
    assert.equal(error.code, 'internal');
    assert.doesNotMatch(error.message, /secret/);
    assert.equal(internal.length, 1);
  });
});

describe('event stream', () => {
  test('streams history events matching the filter, then unsubscribes when the client leaves', async () => {
    const { request, fake } = setup();
    const res = await request('GET', '/api/v1/events/stream?deviceId=plug');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`stream ended before ${needle}`);
        text += value;
      }
    };
    await readUntil('event: ready');
    assert.equal(fake.listeners.size, 1);
    fake.emit({ homeId: 'home-2', deviceId: 'thermo', jobId: null, kind: 'device', from: null, to: null, code: 'other', message: 'not for this watcher', actor: 'device' });
    const sent = fake.emit({ homeId: 'home-1', deviceId: 'plug', jobId: 'job-run', kind: 'transition', from: 'installing', to: 'rebooting', code: 'rebooting', message: 'Restarting into the new version.', actor: 'device' });
    await readUntil('Restarting');
    assert.doesNotMatch(text, /not for this watcher/);
    const block = text.split('\n\n').find((b) => b.includes('event: history'))!.split('\n');
    assert.ok(block.includes(`id: ${sent.id}`));
    const dataLine = block.find((l) => l.startsWith('data: '))!;
    assert.deepEqual(JSON.parse(dataLine.slice('data: '.length)), sent);
    await reader.cancel();
    for (let i = 0; i < 50 && fake.listeners.size > 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(fake.listeners.size, 0, 'the subscription ends with the stream');
  });
});

describe('/firmware/:releaseId', () => {
  let dir: string;
  let imageFile: string;
  const image = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'firmward-http-'));
    imageFile = join(dir, 'plug-1.3.0.bin');
    writeFileSync(imageFile, image);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const known = (id: string) => Promise.resolve(id === 'acme/plug-2/1.3.0' ? imageFile : id === 'acme/plug-2/9.9.9' ? join(dir, 'missing.bin') : null);

  test('serves the whole image without a token', async () => {
    const { request } = setup(known);
    const res = await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), image);
  });

  test('the release id may also arrive with encoded slashes', async () => {
    const { request } = setup(known);
    const res = await request('GET', '/firmware/acme%2Fplug-2%2F1.3.0', { token: null });
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, 1000);
  });

  const ranges: [string, number, number][] = [['bytes=100-199', 100, 199], ['bytes=900-', 900, 999], ['bytes=-10', 990, 999], ['bytes=990-5000', 990, 999], ['bytes=0-0', 0, 0]];
  for (const [range, start, end] of ranges) {
    test(`Range ${range} → 206 bytes ${start}-${end}/1000`, async () => {
      const { request } = setup(known);
      const res = await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null, headers: { range } });
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/1000`);
      assert.equal(res.headers.get('content-length'), String(end - start + 1));
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image.subarray(start, end + 1));
    });
  }

  for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
    test(`Range ${range} → 416`, async () => {
      const { request } = setup(known);
      const res = await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null, headers: { range } });
      assert.equal(res.status, 416);
      assert.equal(res.headers.get('content-range'), 'bytes */1000');
    });
  }

  test('several ranges (bytes=0-0,2-2) → 206 multipart/byteranges with exactly those bytes, not the whole image', async () => {
    const { request } = setup(known);
    const res = await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null, headers: { range: 'bytes=0-0,2-2,500-509' } });
    assert.equal(res.status, 206);
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(res.headers.get('content-type') ?? '')?.[1];
    assert.ok(boundary, `multipart: ${res.headers.get('content-type')}`);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.headers.get('content-length'), String(body.length));
    const part = (start: number, end: number) => Buffer.concat([
      Buffer.from(`\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes ${start}-${end}/1000\r\n\r\n`), image.subarray(start, end + 1),
    ]);
    assert.deepEqual(body, Buffer.concat([part(0, 0), part(2, 2), part(500, 509), Buffer.from(`\r\n--${boundary}--\r\n`)]));
  });

  for (const range of ['bytes=abc', 'bytes=9-2', 'bytes=0-,0-']) {
    test(`Range ${range} (malformed or overlapping) → 200 with the whole image`, async () => {
      const { request } = setup(known);
      const res = await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null, headers: { range } });
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), image);
    });
  }

  test('an unknown release is 404, and so is a path-like id', async () => {
    const { request } = setup(known);
    for (const path of ['/firmware/acme/plug-2/2.0.0', '/firmware/../../etc/passwd', '/firmware/%2E%2E%2Fsecret']) {
      const res = await request('GET', path, { token: null });
      assert.equal(res.status, 404, path);
      assert.equal((await errorOf(res)).code, 'not_found');
    }
  });

  test('a known release whose file is gone is 404, not a crash', async () => {
    const { request } = setup(known);
    const res = await request('GET', '/firmware/acme/plug-2/9.9.9', { token: null });
    assert.equal(res.status, 404);
  });

  test('without an image source every release is 404', async () => {
    const { request } = setup();
    assert.equal((await request('GET', '/firmware/acme/plug-2/1.3.0', { token: null })).status, 404);
  });
});

describe('while the hub starts (gateways and engine not up yet)', () => {
  test('health answers at once and says so; other requests wait for the hub, then are answered', async () => {
    let ready = false;
    let markReady!: () => void;
    const whenReady = new Promise<void>((resolve) => {
      markReady = () => {
        ready = true;
        resolve();
      };
    });
    const fake = seededFake();
    const app = createHttpApp(fake, { ownerToken: TOKEN, maxBodyBytes: MAX_BODY, readiness: { ready: () => ready, whenReady, holdMs: 10_000 } });
    assert.equal((await app.request('/api/v1/health')).status, 200);
    let answered = false;
    const held = Promise.resolve(app.request('/api/v1/homes', { headers: { authorization: `Bearer ${TOKEN}` } })).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(answered, false, 'held while the hub starts');
    markReady();
    assert.equal((await held).status, 200);
  });

  test('a request held too long is told to come back: 503 not_ready with Retry-After', async () => {
    const fake = seededFake();
    const app = createHttpApp(fake, { ownerToken: TOKEN, maxBodyBytes: MAX_BODY, readiness: { ready: () => false, whenReady: new Promise(() => {}), holdMs: 20 } });
    const res = await app.request('/DEFAULT/controller/v1/dev1', { headers: { authorization: 'GatewayToken x' } });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '5');
    assert.equal((await errorOf(res)).code, 'not_ready');
  });
});
