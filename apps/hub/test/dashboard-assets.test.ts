/**
 * The dashboard's files over HTTP: every module the page loads (app.js and what it imports, to
 * the last leaf) is served with its type and the security headers, nothing is missing, every file
 * in the web folder is reachable from the page, and a path that tries to climb out of the folder
 * (plain or encoded, in-process or as raw bytes on a socket) is a 404.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { DashboardAuth } from '../src/dashboard-auth.ts';
import { createHttpApp, serveHttp } from '../src/http/index.ts';
import type { RunningHttpServer } from '../src/http/index.ts';
import { listWebAssets } from '../src/http/web-assets.ts';
import { seededFake } from './fake-hub-service.ts';

const ORIGIN = 'http://localhost';
const WEB_DIR = fileURLToPath(new URL('../src/web/', import.meta.url));
const JS = 'text/javascript; charset=utf-8';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'firmward-dashboard-assets-'));
  dirs.push(d);
  return d;
}

function dashboardApp() {
  return createHttpApp(seededFake(), { ownerToken: 'owner-token-for-asset-tests-0123', maxBodyBytes: 4096, dashboard: new DashboardAuth({ dataDir: tempDir() }) });
}

function assertSecurityHeaders(res: Response, route: string): void {
  assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, `${route}: CSP`);
  assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, `${route}: CSP`);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', `${route}: nosniff`);
  assert.equal(res.headers.get('x-frame-options'), 'DENY', `${route}: X-Frame-Options`);
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer', `${route}: Referrer-Policy`);
  assert.equal(res.headers.get('cache-control'), 'no-cache', `${route}: Cache-Control`);
}

/** Every module specifier of a module: static imports, re-exports, side-effect and dynamic imports. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  for (const pattern of [
    /^\s*import\s+(?:[\w$*{}\s,]+?\s+from\s+)?['"]([^'"]+)['"]/gm,
    /^\s*export\s+(?:\*|\{[^}]*\})(?:\s+as\s+[\w$]+)?\s+from\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]) {
    for (const match of code.matchAll(pattern)) found.push(match[1]!);
  }
  return found;
}

/** The .js, .css and .html files in the web folder, as URL paths. */
function filesOnDisk(): string[] {
  return readdirSync(WEB_DIR, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(js|css|html)$/.test(e.name))
    .map((e) => relative(WEB_DIR, join(e.parentPath, e.name)).split(sep).join('/'))
    .map((file) => (file === 'index.html' ? '/' : `/${file}`))
    .sort();
}

describe('the dashboard\'s modules', () => {
  test('the page, its style sheet and every module it imports (transitively) are served with their type and headers', async () => {
    const app = dashboardApp();
    const page = await app.request(`${ORIGIN}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assertSecurityHeaders(page, '/');
    const html = await page.text();
    const scripts = [...html.matchAll(/<script\b[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]!);
    const sheets = [...html.matchAll(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"/g)].map((m) => m[1]!);
    assert.deepEqual(scripts, ['/app.js']);
    assert.match(html, /<script type="module" src="\/app.js">/);
    assert.deepEqual(sheets, ['/style.css']);

    const css = await app.request(`${ORIGIN}/style.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assertSecurityHeaders(css, '/style.css');

    // Follow every import from app.js, as the browser does, asking for each module once.
    const served = new Map<string, string>();
    const queue: { route: string; from: string }[] = scripts.map((route) => ({ route, from: '/' }));
    while (queue.length > 0) {
      const { route, from } = queue.shift()!;
      if (served.has(route)) continue;
      const res = await app.request(`${ORIGIN}${route}`);
      assert.equal(res.status, 200, `${route} (imported by ${from}) is served`);
      assert.equal(res.headers.get('content-type'), JS, `${route} is served as JavaScript`);
      assertSecurityHeaders(res, route);
      const source = await res.text();
      served.set(route, source);
      for (const specifier of specifiers(source)) {
        // No import map and no build step: the browser resolves only relative paths, and a
        // module path is exact (no extension added).
        assert.match(specifier, /^\.\.?\//, `${route} imports ${specifier}: a relative path`);
        assert.match(specifier, /\.js$/, `${route} imports ${specifier}: with its .js extension`);
        const target = new URL(specifier, `${ORIGIN}${route}`);
        assert.equal(target.origin, ORIGIN);
        queue.push({ route: target.pathname, from: route });
      }
    }
    assert.ok(served.size > 1, 'app.js imports the modules it is made of');

    // Nothing in the folder is left unreachable, and nothing reachable is missing from it.
    const reachable = ['/', '/style.css', ...served.keys()].sort();
    assert.deepEqual(reachable, filesOnDisk());
  });

  test('the modules are served exactly as they are on disk', () => {
    const routes = listWebAssets(WEB_DIR).map((a) => a.route);
    assert.deepEqual(routes, filesOnDisk());
    for (const asset of listWebAssets(WEB_DIR)) {
      if (asset.route.endsWith('.js')) assert.equal(asset.type, JS);
    }
  });

  const CLIMBING = [
    '/js/../../hub.ts',
    '/js/../../http/dashboard.ts',
    '/js/views/../../../hub.ts',
    '/js/%2e%2e/%2e%2e/hub.ts',
    '/js/%2E%2E/%2E%2E/hub.ts',
    '/js/..%2f..%2fhub.ts',
    '/js/..%2F..%2Fhub.ts',
    '/js%2f..%2f..%2fhub.ts',
    '/%2e%2e/hub.ts',
    '/%2e%2e%2fhub.ts',
    '/js/..%5c..%5chub.ts',
    '/js/%252e%252e/%252e%252e/hub.ts',
    '/..%2f..%2f..%2fpackage.json',
    '/hub.ts',
    '/web/app.js',
    '/src/web/app.js',
    '/js/',
    '/js',
    '/index.html',
    '/app.js%00.ts',
  ];

  test('a path that climbs out of the web folder, plain or encoded, is 404', async () => {
    const app = dashboardApp();
    for (const path of CLIMBING) {
      const res = await app.request(`${ORIGIN}${path}`);
      assert.equal(res.status, 404, `${path} → 404`);
      assert.doesNotMatch(await res.text(), /import |export |FirmwardError/, `${path} shows no source`);
    }
  });

  describe('as raw bytes on a socket (no URL normalisation by a client)', () => {
    let server: RunningHttpServer;
    before(async () => {
      server = await serveHttp(dashboardApp(), { host: '127.0.0.1', port: 0 });
    });
    after(async () => {
      await server?.close();
    });

    function rawGet(path: string): Promise<{ status: number; type: string; body: string }> {
      return new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port: server.port, method: 'GET', path }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => { body += chunk; });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
        });
        req.on('error', reject);
        req.end();
      });
    }

    test('each climbing path is 404', async () => {
      for (const path of CLIMBING) {
        const res = await rawGet(path);
        assert.equal(res.status, 404, `${path} → 404`);
        assert.doesNotMatch(res.body, /import |export |FirmwardError/, `${path} shows no source`);
      }
    });

    test('a module is served over the socket too', async () => {
      const res = await rawGet('/app.js');
      assert.equal(res.status, 200);
      assert.equal(res.type, JS);
    });
  });
});

describe('listWebAssets', () => {
  test('lists only .html, .css and .js files under fixed routes; hidden, oddly named and linked files are left out', () => {
    const dir = tempDir();
    const outside = tempDir();
    writeFileSync(join(outside, 'secret.js'), 'export const secret = 1;\n');
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'app.js'), 'import "./js/a.js";');
    writeFileSync(join(dir, 'style.css'), 'body {}');
    writeFileSync(join(dir, 'notes.md'), '# not served');
    writeFileSync(join(dir, 'server.ts'), 'export {};');
    writeFileSync(join(dir, '.hidden.js'), '');
    writeFileSync(join(dir, ':id.js'), '');
    writeFileSync(join(dir, '*.js'), '');
    mkdirSync(join(dir, 'js', 'views'), { recursive: true });
    writeFileSync(join(dir, 'js', 'a.js'), 'export const a = 1;');
    writeFileSync(join(dir, 'js', 'views', 'b.js'), 'export const b = 1;');
    mkdirSync(join(dir, '.git'));
    writeFileSync(join(dir, '.git', 'x.js'), '');
    symlinkSync(join(outside, 'secret.js'), join(dir, 'js', 'linked.js'));
    symlinkSync(outside, join(dir, 'elsewhere'));

    const assets = listWebAssets(dir);
    assert.deepEqual(assets.map((a) => [a.route, a.type]), [
      ['/', 'text/html; charset=utf-8'],
      ['/app.js', JS],
      ['/js/a.js', JS],
      ['/js/views/b.js', JS],
      ['/style.css', 'text/css; charset=utf-8'],
    ]);
    assert.equal(assets.find((a) => a.route === '/js/a.js')?.body, 'export const a = 1;');
  });
});
