/**
 * The DNS rebinding guard (audit, issue 14 item 7): a request naming the hub by a host name that
 * is not one of its own is refused with 421 host_not_allowed before anything reads it; addresses
 * typed as numbers, localhost, this machine's name, publicUrl's host and http.allowedHosts pass.
 */
import { strict as assert } from 'node:assert';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { SystemClock, consoleLogger } from '@firmward/ports';
import { loadConfig } from '../src/config.ts';
import { startHub } from '../src/hub.ts';
import { createHttpApp } from '../src/http/index.ts';
import { hostAllowed, hubHostNames } from '../src/http/host-allow-list.ts';
import { seededFake } from './fake-hub-service.ts';

const TOKEN = 'host-allow-list-test-owner-token';

describe('which names pass', () => {
  const names = hubHostNames({ publicUrl: 'https://Firmward.Example/hub', allowedHosts: ['hub.lan', 'NAS.Home.'], machineName: 'pi' });
  const cases: [string, boolean][] = [
    ['localhost', true], ['LOCALHOST', true], ['localhost.', true],
    ['127.0.0.1', true], ['[::1]', true], ['192.168.1.10', true], ['[fe80::1]', true], ['10.0.0.7', true],
    ['pi', true], ['pi.local', true], ['firmward.example', true], ['hub.lan', true], ['nas.home', true],
    ['evil.example', false], ['localhost.evil.example', false], ['192.168.1.10.nip.io', false], ['hub.lan.evil.example', false], ['pi.evil', false],
  ];
  for (const [host, allowed] of cases) test(`${host} → ${allowed ? 'answered' : 'refused'}`, () => assert.equal(hostAllowed(host, names), allowed));

  test('"*" in http.allowedHosts lets any name in', () => {
    assert.equal(hostAllowed('evil.example', hubHostNames({ publicUrl: '', allowedHosts: ['*'] })), true);
  });

  test('a hub on 0.0.0.0 with no names configured: addresses and its own names pass, other DNS names do not', () => {
    const wildcard = hubHostNames({ publicUrl: '', allowedHosts: ['0.0.0.0'] });
    assert.equal(hostAllowed('192.168.1.10', wildcard), true);
    assert.equal(hostAllowed(hostname(), wildcard), true);
    assert.equal(hostAllowed('localhost', wildcard), true);
    assert.equal(hostAllowed('evil.example', wildcard), false);
  });
});

describe('the HTTP app', () => {
  const setup = () => {
    const fake = seededFake();
    const refused: string[] = [];
    const app = createHttpApp(fake, { ownerToken: TOKEN, maxBodyBytes: 1024, publicUrl: 'https://firmward.example', allowedHosts: ['hub.lan'], onHostRefused: (h) => refused.push(h) });
    const call = (url: string, method = 'GET', body?: string) => app.request(url, {
      method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, ...(body !== undefined && { body }),
    });
    return { fake, refused, call };
  };

  test('Host evil.example: 421 host_not_allowed with the setting to use, and nothing reaches the service', async () => {
    const { fake, refused, call } = setup();
    for (const [method, route, body] of [['POST', '/api/v1/homes/home-2/skip', '{}'], ['GET', '/api/v1/health'], ['GET', '/api/v1/homes'], ['GET', '/firmware/acme/plug/1.0.0'], ['GET', '/']] as const) {
      const res = await call(`http://evil.example:8080${route}`, method, body);
      assert.equal(res.status, 421, route);
      const { error } = await res.json() as { error: { code: string; message: string } };
      assert.equal(error.code, 'host_not_allowed');
      assert.match(error.message, /"evil\.example".*http\.allowedHosts \(FIRMWARD_ALLOWED_HOSTS/);
    }
    assert.deepEqual(fake.calls, [], 'nothing was read or changed');
    assert.deepEqual(refused, ['evil.example'], 'the log hears each refused name once');
  });

  test('its own names pass: localhost, addresses, publicUrl\'s host, http.allowedHosts, this machine\'s name', async () => {
    const { fake, call } = setup();
    for (const host of ['localhost', '127.0.0.1:8080', '[::1]:8080', '192.168.1.10', 'firmward.example', 'hub.lan:8080', hostname()]) {
      const res = await call(`http://${host}/api/v1/homes`);
      assert.equal(res.status, 200, host);
    }
    assert.equal(fake.calls.filter((c) => c.method === 'listHomes').length, 7);
  });
});

describe('a running hub', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-hosts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** node:http, because fetch does not let a caller choose the Host header. */
  const send = (port: number, host: string, method: string, route: string, body?: string) => new Promise<{ status: number; json: unknown }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path: route, headers: { host, authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk; }).on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? null : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });

  test('a rebinding page (Host evil.example) is refused and changes nothing; names from --allowed-hosts and the address pass', async () => {
    const lines: string[] = [];
    const config = loadConfig({ argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--allowed-hosts', 'hub.lan'], env: {}, readFile: () => { throw new Error('no config file'); } });
    const hub = await startHub(config, { clock: new SystemClock(), log: consoleLogger('debug', 'hub', { write: (l) => lines.push(l) }), ownerToken: TOKEN });
    try {
      const port = hub.httpPort;
      const refused = await send(port, `evil.example:${port}`, 'POST', '/api/v1/homes', JSON.stringify({ name: 'Planted' }));
      assert.equal(refused.status, 421);
      assert.equal((refused.json as { error: { code: string } }).error.code, 'host_not_allowed');
      assert.equal((await send(port, `evil.example:${port}`, 'GET', '/api/v1/health')).status, 421);
      assert.ok(lines.some((l) => l.includes('warn') && l.includes('"evil.example"') && l.includes('http.allowedHosts')), lines.join('\n'));

      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `hub.lan:${port}`]) {
        const homes = await send(port, host, 'GET', '/api/v1/homes');
        assert.equal(homes.status, 200, host);
        assert.deepEqual(homes.json, [], `${host}: no home was made by the refused request`);
      }
    } finally {
      await hub.stop();
    }
  });
});
