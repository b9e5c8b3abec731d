/**
 * The client's own rules, in-process against the hub's real HTTP edge over the fake service: a
 * hub that says it is starting is asked again and then given up on (exit 3), answers without a
 * body, the hub address resolution, and times in a home's zone.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, test } from 'node:test';
import { FirmwardError } from '@firmward/core';
import { createHttpApp, serveHttp } from '../../hub/src/http/index.ts';
import type { RunningHttpServer } from '../../hub/src/http/index.ts';
import { seededFake } from '../../hub/test/fake-hub-service.ts';
import { HubClient } from '../src/client.ts';
import { EXIT, exitCodeOf, usageError } from '../src/exit-codes.ts';
import { resolveHub } from '../src/hub-address.ts';
import { zonedTime } from '../src/setup-format.ts';

const TOKEN = 'cli-client-test-owner-token-0123456789';

describe('a hub that is still starting', () => {
  let server: RunningHttpServer;
  let readyAfter = Number.POSITIVE_INFINITY;
  let asked = 0;
  before(async () => {
    // Never ready by itself; each request is held 1 ms and then told 503 not_ready (http/app.ts).
    const app = createHttpApp(seededFake(), {
      ownerToken: TOKEN, maxBodyBytes: 65536,
      readiness: { ready: () => ++asked > readyAfter, whenReady: new Promise<void>(() => undefined), holdMs: 1 },
    });
    server = await serveHttp(app, { host: '127.0.0.1', port: 0 });
  });
  after(() => server.close());

  const client = (retries: number) => new HubClient({
    baseUrl: `http://127.0.0.1:${server.port}`, origin: 'from a test', token: TOKEN, notReadyRetries: retries, maxRetryWaitMs: 0,
  });

  test('is asked again, and once it is up the answer comes through', async () => {
    asked = 0;
    readyAfter = 2;
    const homes = await client(3).listHomes();
    assert.ok(homes.length > 0);
    assert.equal(asked, 3, 'two "starting" answers, then the real one');
  });

  test('is given up on after the retries: not_ready, which the CLI exits 3 for', async () => {
    asked = 0;
    readyAfter = Number.POSITIVE_INFINITY;
    await assert.rejects(client(2).listHomes(), (error: unknown) => {
      assert.ok(error instanceof FirmwardError);
      assert.equal(error.code, 'not_ready');
      assert.match(error.message, /is still starting after 3 tries/);
      assert.match(error.message, /\(from a test\)/);
      assert.equal(exitCodeOf(error), EXIT.unreachable);
      return true;
    });
    assert.equal(asked, 3);
  });
});

describe('exit codes by the hub\'s error code', () => {
  test('each kind has its number; anything else is 1', () => {
    const cases: [FirmwardError, number][] = [
      [new FirmwardError('hub_unreachable', 'x'), 3], [new FirmwardError('not_ready', 'x'), 3],
      [new FirmwardError('unauthorized', 'x'), 4], [new FirmwardError('forbidden', 'x'), 4], [new FirmwardError('too_many_attempts', 'x'), 4],
      [new FirmwardError('not_found', 'x'), 5],
      ...(['conflict', 'home_busy', 'update_in_progress', 'cancel_too_late', 'queue_halted', 'queue_not_halted', 'illegal_transition'] as const)
        .map((code): [FirmwardError, number] => [new FirmwardError(code, 'x'), 6]),
      [new FirmwardError('invalid_input', 'x'), 1], [new FirmwardError('incompatible', 'x'), 1], [new FirmwardError('internal', 'x'), 1],
      [usageError('x'), 2],
    ];
    for (const [error, code] of cases) assert.equal(exitCodeOf(error), code, error.code);
  });
});

describe('resolveHub', () => {
  const none = () => {
    throw new Error('no such file');
  };
  test('--hub > FIRMWARD_HUB > <data dir>/hub-url > FIRMWARD_PORT > the default, each named', () => {
    const file = (text: string) => (p: string) => {
      assert.equal(p, 'hubdata/hub-url');
      return text;
    };
    const env = { FIRMWARD_HUB: 'http://env:1', FIRMWARD_DATA_DIR: 'hubdata', FIRMWARD_PORT: '9000' };
    assert.deepEqual(resolveHub('http://flag:1', { env, readFile: file('http://file:1\n') }), { url: 'http://flag:1', origin: 'from --hub' });
    assert.deepEqual(resolveHub(undefined, { env, readFile: file('http://file:1\n') }), { url: 'http://env:1', origin: 'from FIRMWARD_HUB' });
    assert.deepEqual(resolveHub(undefined, { env: { ...env, FIRMWARD_HUB: '' }, readFile: file('http://file:1\n') }), { url: 'http://file:1', origin: 'from hubdata/hub-url' });
    assert.deepEqual(resolveHub(undefined, { env: { ...env, FIRMWARD_HUB: '' }, readFile: none }), { url: 'http://127.0.0.1:9000', origin: 'from FIRMWARD_PORT' });
    const fallback = resolveHub(undefined, { env: {}, readFile: none });
    assert.equal(fallback.url, 'http://127.0.0.1:8080');
    assert.match(fallback.origin, /^the default: no --hub, FIRMWARD_HUB, data\/hub-url or FIRMWARD_PORT$/);
  });

  test('a hub-url that holds no address is reported, not guessed past', () => {
    assert.throws(() => resolveHub(undefined, { env: {}, readFile: () => 'garbage\n' }), /data\/hub-url does not hold the hub's address/);
  });
});

describe('zonedTime', () => {
  test('the time in the named zone; the date too when it is not today there', () => {
    const now = Date.UTC(2026, 4, 1, 9, 0);
    assert.equal(zonedTime(Date.UTC(2026, 4, 1, 12, 5), 'Europe/Berlin', now), '14:05 (Europe/Berlin)');
    assert.equal(zonedTime(Date.UTC(2026, 4, 1, 23, 30), 'Europe/Berlin', now), '2026-05-02 01:30 (Europe/Berlin)');
    assert.equal(zonedTime(Date.UTC(2026, 4, 1, 12, 5), 'No/Such_Zone', now), '12:05 (UTC)');
  });
});
