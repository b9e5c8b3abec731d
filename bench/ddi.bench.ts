/**
 * The DDI gateway's two hot paths, each against a baseline in the same run:
 *
 * 1. Polls: `GET /{tenant}/controller/v1/{id}` with `TargetToken`, round-robin over 100,000
 *    registered devices whose token digests live in the SQLite store (one store lookup per poll,
 *    as in production), against a bare node:http handler answering the same JSON.
 * 2. Artifact downloads with Range, against nginx serving the same file (sendfile, one process):
 *    a resumed download (the second half of a 64 MiB image, fetched by curl as SWUpdate's libcurl
 *    does, rounds alternated, median), and 4 KiB pieces at random offsets (the cost per request).
 *
 *   npm run bench:ddi
 *   FIRMWARD_BENCH_DEVICES=20000 FIRMWARD_BENCH_SECONDS=5 npm run bench:ddi
 *
 * The load generator (autocannon) runs in its own process (this file with `--load`), so server and
 * client do not share an event loop; on 2 cores they still share the machine, as do the baselines.
 * Numbers only: nothing here asserts on time.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import { SystemClock, silentLogger } from '@firmward/ports';
import type { BridgeHandler } from '@firmward/ports';
import { actionIdOf, artifactName, createDdiGateway, credentialsInStore, targetTokenCredential } from '@firmward/hawkbit';
import { SqliteStore } from '@firmward/store-sqlite';
import type { OfferCommand } from '@firmward/protocol';
import { envInt, machineInfo, printMachine, printTable, tempDir } from './support.ts';

interface LoadPlan {
  url: string;
  connections: number;
  seconds: number;
  /** Poll devices dev-0 … dev-(devices-1) in turn, with their TargetToken. */
  devices?: number;
  path?: string;
  headers?: Record<string, string>;
  /** Ask for `rangeBytes` at a random offset of a `fileBytes` file. */
  randomRange?: { fileBytes: number; rangeBytes: number };
}

interface LoadResult {
  requestsPerSecond: number;
  bytesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

// ── the load generator's process ────────────────────────────────────────────────────────────

if (process.argv[2] === '--load') {
  const plan = JSON.parse(process.argv[3] ?? '{}') as LoadPlan;
  let next = 0;
  const result = await autocannon({
    url: plan.url,
    connections: plan.connections,
    duration: plan.seconds,
    requests: [{
      setupRequest: (request) => {
        if (plan.devices !== undefined) {
          const i = next++ % plan.devices;
          return { ...request, path: `/DEFAULT/controller/v1/dev-${i}`, headers: { authorization: `TargetToken ${tokenOf(i)}` } };
        }
        const headers: Record<string, string> = { ...plan.headers };
        if (plan.randomRange) {
          const start = Math.floor(Math.random() * (plan.randomRange.fileBytes - plan.randomRange.rangeBytes));
          headers['range'] = `bytes=${start}-${start + plan.randomRange.rangeBytes - 1}`;
        }
        return { ...request, path: plan.path ?? '/', headers };
      },
    }],
  });
  const out: LoadResult = {
    requestsPerSecond: result.requests.average, bytesPerSecond: result.throughput.average,
    p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx, errors: result.errors,
  };
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

/** Deterministic per-device tokens: what matters here is the lookup and the constant-time compare, not secrecy. */
function tokenOf(i: number): string {
  return createHash('sha256').update(`bench-device-${i}`).digest('base64url');
}

function load(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--load', JSON.stringify(plan)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`load generator exited with ${code}`))));
  });
}

// ── servers ─────────────────────────────────────────────────────────────────────────────────

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await close(s);
  return port;
}

/** nginx on a free loopback port with a temp config: one process (no master), sendfile, no access log. */
async function startNginx(dir: string, root: string): Promise<{ port: number; stop(): Promise<void> } | null> {
  let nginx = ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p));
  if (!nginx && process.getuid?.() === 0) {
    console.log('nginx is missing; installing it with apt-get (Debian) …');
    try {
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'nginx'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      nginx = '/usr/sbin/nginx';
    } catch {
      nginx = undefined;
    }
  }
  if (!nginx) return null;
  const port = await freePort();
  const conf = `${dir}/nginx.conf`;
  const temp = (name: string) => `${name}_temp_path ${dir}/${name};`;
  await writeFile(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}
  server { listen 127.0.0.1:${port}; root ${root}; location / { } }
}
`);
  const child = spawn(nginx, ['-p', dir, '-c', conf, '-e', `${dir}/nginx-error.log`], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' }).then(() => true, () => false);
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

// ── the run ─────────────────────────────────────────────────────────────────────────────────

const DEVICES = envInt('FIRMWARD_BENCH_DEVICES', 100_000);
const SECONDS = envInt('FIRMWARD_BENCH_SECONDS', 10);
const IMAGE_BYTES = 64 * 2 ** 20;
const DOWNLOAD_ROUNDS = 7;
const POLL_CONNECTIONS = 32;

printMachine();
// The store on tmpfs when there is one: the lookup is measured, not the disk.
const dir = existsSync('/dev/shm') ? tempDirIn('/dev/shm') : tempDir('ddi');

const store = await SqliteStore.open(dir.file('firmward.db'));
const seedStart = performance.now();
await store.putHome({
  id: 'home', name: 'home', halt: null,
  settings: { timeZone: 'UTC', window: { start: '00:00', end: '00:00' }, learnQuietHours: false, policy: 'automatic', thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 900 },
});
for (let from = 0; from < DEVICES; from += 1000) {
  await store.transaction(async (tx) => {
    for (let i = from; i < Math.min(DEVICES, from + 1000); i++) {
      await tx.putDevice({ id: `ddi-dev-${i}`, homeId: 'home', name: `dev-${i}`, vendor: 'acme', model: 'gw', hardwareRevision: '1.0', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [] });
      await tx.setDeviceSecret(`ddi-dev-${i}`, targetTokenCredential(tokenOf(i)));
    }
  });
}
console.log(`seeded ${DEVICES.toLocaleString('en')} devices with token digests in ${((performance.now() - seedStart) / 1000).toFixed(1)} s (${dir.dir})`);

const image = randomBytes(IMAGE_BYTES);
const imageFile = dir.file('image.swu');
await writeFile(imageFile, image);
const sha256 = createHash('sha256').update(image).digest('hex');

const quiet: BridgeHandler = {
  onDiscovered: () => Promise.resolve(), onState: () => Promise.resolve(), onAvailability: () => Promise.resolve(),
  onEvent: () => Promise.resolve(), onRejected: () => {},
};
const ddi = createDdiGateway({
  tenant: 'DEFAULT', gatewayToken: null, autoRegister: false, credentials: credentialsInStore(store), clock: new SystemClock(), logger: silentLogger,
  imagePath: (releaseId) => Promise.resolve(releaseId === 'acme/gw/1.1.0' ? imageFile : null),
});
await ddi.gateway.start(quiet);
const app = new Hono();
app.route('/', ddi.routes);
const ddiServer = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
await new Promise<void>((resolve) => ddiServer.once('listening', () => resolve()));
const ddiUrl = `http://127.0.0.1:${(ddiServer.address() as AddressInfo).port}`;

const pollAnswer = JSON.stringify({ config: { polling: { sleep: '00:05:00' } }, _links: {} });
const bare = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(pollAnswer) });
  res.end(pollAnswer);
});
const bareUrl = `http://127.0.0.1:${await listen(bare)}`;

// Warm both up (JIT, SQLite page cache, the gateway's per-device state for every device).
const rssBefore = process.memoryUsage().rss;
await load({ url: ddiUrl, connections: POLL_CONNECTIONS, seconds: 3, devices: DEVICES });
await load({ url: bareUrl, connections: POLL_CONNECTIONS, seconds: 2 });
const polls = await load({ url: ddiUrl, connections: POLL_CONNECTIONS, seconds: SECONDS, devices: DEVICES });
const bareLoad = await load({ url: bareUrl, connections: POLL_CONNECTIONS, seconds: SECONDS });
const rssAfter = process.memoryUsage().rss;

// One device with an update on offer: its artifact link is what SWUpdate downloads.
const offer: OfferCommand = {
  v: 1, type: 'offer', jobId: 'bench-job', releaseId: 'acme/gw/1.1.0', vendor: 'acme', model: 'gw', hardwareRevisions: ['1.0'], version: '1.1.0',
  applicableFrom: null, applicableTo: null, image: { url: 'unused', lengthBytes: IMAGE_BYTES, sha256 }, expectedInstallSeconds: 60,
};
await ddi.gateway.send('ddi-dev-0', offer);
const artifactPath = `/DEFAULT/controller/v1/dev-0/softwaremodules/${actionIdOf(offer.jobId)}/artifacts/${artifactName(offer)}`;
const auth = { authorization: `TargetToken ${tokenOf(0)}` };
const half = { range: `bytes=${IMAGE_BYTES / 2}-` };
const piece = { fileBytes: IMAGE_BYTES, rangeBytes: 4 * 1024 };
const nginx = await startNginx(dir.dir, dir.dir);
const nginxUrl = nginx ? `http://127.0.0.1:${nginx.port}` : null;

const resumedDdi: number[] = [];
const resumedNginx: number[] = [];
for (let round = 0; round < DOWNLOAD_ROUNDS; round++) {
  resumedDdi.push(await curlSpeed(`${ddiUrl}${artifactPath}`, { ...auth, ...half }));
  if (nginxUrl) resumedNginx.push(await curlSpeed(`${nginxUrl}/image.swu`, half));
}
const piecesDdi = await load({ url: ddiUrl, connections: POLL_CONNECTIONS, seconds: SECONDS, path: artifactPath, headers: auth, randomRange: piece });
const piecesNginx = nginxUrl ? await load({ url: nginxUrl, connections: POLL_CONNECTIONS, seconds: SECONDS, path: '/image.swu', randomRange: piece }) : null;

await nginx?.stop();
await ddi.gateway.stop();
await close(ddiServer);
await close(bare);
await store.close();
dir.remove();

// ── report ──────────────────────────────────────────────────────────────────────────────────

const n = (x: number) => Math.round(x).toLocaleString('en');
// autocannon records whole milliseconds: 0 means under one.
const msText = (x: number) => (x < 1 ? '<1 ms' : `${x.toFixed(0)} ms`);
const mibs = (x: number) => `${(x / 2 ** 20).toFixed(0)} MiB/s`;
const ratio = (a: number, b: number | undefined) => (b === undefined || b === 0 ? '—' : `${((a / b) * 100).toFixed(0)} %`);
const bad = (r: LoadResult | null) => (r && r.non2xx + r.errors > 0 ? ` (${r.non2xx} non-2xx, ${r.errors} errors)` : '');
printTable(`DDI gateway, ${SECONDS} s per run, loopback, autocannon in its own process`, [
  ['what', 'Firmward DDI', 'baseline', 'baseline is', 'DDI / baseline'],
  [`polls/s, ${n(DEVICES)} devices, SQLite lookup, ${POLL_CONNECTIONS} conns`, n(polls.requestsPerSecond) + bad(polls), n(bareLoad.requestsPerSecond) + bad(bareLoad), 'bare node:http JSON', ratio(polls.requestsPerSecond, bareLoad.requestsPerSecond)],
  ['  poll latency p50 / p99', `${msText(polls.p50Ms)} / ${msText(polls.p99Ms)}`, `${msText(bareLoad.p50Ms)} / ${msText(bareLoad.p99Ms)}`, '', ''],
  [`resumed download (Range: last 32 MiB), curl, median of ${DOWNLOAD_ROUNDS}`, mibs(median(resumedDdi)), nginxUrl ? mibs(median(resumedNginx)) : 'no nginx', 'nginx 1 process', ratio(median(resumedDdi), nginxUrl ? median(resumedNginx) : undefined)],
  [`4 KiB Range pieces/s, ${POLL_CONNECTIONS} conns`, n(piecesDdi.requestsPerSecond) + bad(piecesDdi), piecesNginx ? n(piecesNginx.requestsPerSecond) + bad(piecesNginx) : 'no nginx', 'nginx 1 process', ratio(piecesDdi.requestsPerSecond, piecesNginx?.requestsPerSecond)],
  ['  piece latency p50 / p99', `${msText(piecesDdi.p50Ms)} / ${msText(piecesDdi.p99Ms)}`, piecesNginx ? `${msText(piecesNginx.p50Ms)} / ${msText(piecesNginx.p99Ms)}` : '', '', ''],
]);
const m = machineInfo();
console.log(`\n${m.cores} cores (${m.cpu}), Node ${m.node}; at 1 poll per device every 5 min, ${n(DEVICES)} devices make ${n(DEVICES / 300)} polls/s.`);
console.log(`the hub process grew by ${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MiB while every device polled (the gateway keeps a small record per device it has heard from).`);

/** One download as a device's libcurl makes it; bytes per second as curl measured them. */
function curlSpeed(url: string, headers: Record<string, string>): Promise<number> {
  const args = ['-s', '-f', '-o', '/dev/null', '-w', '%{speed_download}', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  return new Promise((resolve, reject) => execFile('curl', args, (error, stdout) => (error ? reject(new Error(`curl: ${error.message}`)) : resolve(Number(stdout)))));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function tempDirIn(base: string) {
  const made = mkdtempSync(path.join(base, 'firmward-bench-ddi-'));
  return { dir: made, file: (name: string) => path.join(made, name), remove: () => rmSync(made, { recursive: true, force: true }) };
}
