/**
 * A smoke test of a TUF conformance entry point (the hub's or the device's), run the way the public
 * suite runs one: the entry point spawned as a child process per command, a repository our release
 * tool published served over real HTTP on 127.0.0.1, every request counted at the server, and only
 * exit codes and the two folders looked at.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { INSECURE_FAST_KDF, ReleaseRepository, publishedImagePath } from '@firmward/release-tool';
import type { ReleaseCustomInput } from '../src/index.ts';

export interface EntryPoint {
  /** As in the docs, e.g. 'hub'. */
  name: string;
  /** The executable the suite's --entrypoint names (scripts/tuf-client-…). */
  executable: string;
}

const PASSPHRASE = 'conformance smoke test';

function release(version: string): ReleaseCustomInput {
  return {
    vendor: 'acme', model: 'SmartPlug', hardwareRevisions: ['rev2'], version,
    expectedInstallSeconds: 120, recovery: { steps: ['Switch it off at the wall for ten seconds.'] },
  };
}

interface Served {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

/** Static files of a published folder (links followed, as any web server does), every request path recorded. */
async function serve(root: string): Promise<Served> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    const pathname = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname);
    requests.push(pathname);
    const file = path.join(root, ...pathname.split('/').filter((s) => s !== '' && s !== '..'));
    void stat(file).then((info) => {
      if (!info.isFile()) throw new Error('not a file');
      response.writeHead(200, { 'content-length': info.size });
      createReadStream(file).pipe(response);
    }).catch(() => response.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Runs the entry point with these arguments; resolves with its exit code and output. */
function run(executable: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => { stderr += text; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stderr }));
  });
}

/** Every file under `dir`, relative, hidden state folders (`.firmward`) left out. */
async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dir, path.join(entry.parentPath, entry.name));
    if (entry.isFile() && !rel.split(path.sep).some((s) => s.startsWith('.firmward'))) out.push(rel);
  }
  return out.sort();
}

export function conformanceSmoke(entry: EntryPoint): void {
  void describe(`the ${entry.name}'s TUF conformance entry point, spawned as the suite spawns it`, () => {
    let work: string;
    let maker: ReleaseRepository;
    let published: string;
    let served: Served;
    let metadataDir: string;
    let targetDir: string;
    let rootFile: string;
    const first = { path: '', sha256: '', bytes: Buffer.alloc(0) };

    before(async () => {
      work = await mkdtemp(path.join(tmpdir(), `firmward-conformance-${entry.name}-`));
      const init = await ReleaseRepository.init(path.join(work, 'maker'), { vendors: [{ name: 'acme' }] }, { passphrase: PASSPHRASE, keyFileKdf: INSECURE_FAST_KDF });
      maker = init.repository;
      first.bytes = Buffer.alloc(5000, 0x5a);
      await writeFile(path.join(work, 'fw-1.img'), first.bytes);
      const added = await maker.add({ image: path.join(work, 'fw-1.img'), custom: release('1.1.0'), fileName: 'fw.img' });
      first.path = added.path;
      first.sha256 = added.sha256;
      published = path.join(work, 'published');
      const result = await maker.publish(published);
      rootFile = path.join(published, result.shipRootFile);
      served = await serve(published);
      metadataDir = path.join(work, 'metadata');
      targetDir = path.join(work, 'targets');
      await Promise.all([mkdir(metadataDir), mkdir(targetDir)]);
    });
    after(async () => {
      await served.close();
      await rm(work, { recursive: true, force: true });
    });

    const metadataArgs = () => ['--metadata-url', `${served.url}/metadata/`, '--metadata-dir', metadataDir];
    const download = (...names: string[]) => run(entry.executable, [
      ...metadataArgs(), ...names.flatMap((n) => ['--target-name', n]), '--target-base-url', `${served.url}/targets/`, '--target-dir', targetDir, 'download',
    ]);
    const imageRequests = () => served.requests.filter((r) => r.startsWith('/targets/')).length;

    void test('init trusts the root without a request; refresh keeps the trusted metadata under unversioned names', async () => {
      const init = await run(entry.executable, ['--metadata-dir', metadataDir, 'init', rootFile]);
      assert.equal(init.code, 0, init.stderr);
      assert.equal(served.requests.length, 0, 'init makes no request');
      assert.deepEqual(await readFile(path.join(metadataDir, 'root.json')), await readFile(rootFile));

      const refresh = await run(entry.executable, [...metadataArgs(), 'refresh']);
      assert.equal(refresh.code, 0, refresh.stderr);
      const names = await files(metadataDir);
      for (const role of ['root.json', 'timestamp.json', 'snapshot.json', 'targets.json']) assert.ok(names.includes(role), `${role} in ${names.join(', ')}`);
      assert.deepEqual(names.filter((n) => /^\d+\./.test(n)), [], 'no versioned names');
      assert.ok(served.requests.includes('/metadata/2.root.json'), 'the root chain was walked (2.root.json asked for, not found)');
    });

    void test('download puts the verified image in the target folder; a second download fetches nothing', async () => {
      const got = await download(first.path);
      assert.equal(got.code, 0, got.stderr);
      const inTargets = await files(targetDir);
      assert.equal(inTargets.length, 1, inTargets.join(', '));
      assert.deepEqual(await readFile(path.join(targetDir, inTargets[0]!)), first.bytes);
      assert.equal(imageRequests(), 1);
      assert.ok(served.requests.includes(`/targets/${publishedImagePath(first.path, first.sha256)}`), 'fetched by its hash-prefixed name');

      const again = await download(first.path);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(imageRequests(), 1, 'the cached image is not fetched again');
      assert.deepEqual(await files(targetDir), inTargets);
    });

    void test('a tampered image is refused with exit 1 and nothing of it is left in the target folder', async () => {
      await writeFile(path.join(work, 'fw-2.img'), Buffer.alloc(6000, 0x33));
      const added = await maker.add({ image: path.join(work, 'fw-2.img'), custom: release('1.2.0'), fileName: 'fw.img' });
      await maker.publish(published);
      const image = path.join(published, 'targets', publishedImagePath(added.path, added.sha256));
      const bytes = await readFile(image);
      bytes[100] = bytes[100]! ^ 0x01;
      await writeFile(image, bytes);
      const before = await files(targetDir);

      const got = await download(added.path);
      assert.equal(got.code, 1, got.stderr);
      assert.match(got.stderr, /image_hash_mismatch/);
      assert.deepEqual(await files(targetDir), before, 'nothing new in the target folder');
      assert.deepEqual((await readdir(targetDir, { recursive: true })).filter((n) => n.includes('.tmp') || n.includes('.part')), []);
      // Several names in one command stop at the first failure (CLIENT-CLI.md).
      assert.equal((await download(added.path, first.path)).code, 1);
    });

    void test('a timestamp or snapshot changed after signing: refresh exits 1 and the trusted versions stay', async () => {
      const trusted = async (role: string) => (JSON.parse(await readFile(path.join(metadataDir, `${role}.json`), 'utf8')) as { signed: { version: number } }).signed.version;
      const timestampFile = path.join(published, 'metadata', 'timestamp.json');

      await maker.refresh();
      await maker.publish(published);
      const honest = await readFile(timestampFile, 'utf8');
      const forged = JSON.parse(honest) as { signed: { expires: string } };
      forged.signed.expires = '2099-01-01T00:00:00Z';
      await writeFile(timestampFile, JSON.stringify(forged));
      const trustedTimestamp = await trusted('timestamp');
      const refusedTimestamp = await run(entry.executable, [...metadataArgs(), 'refresh']);
      assert.equal(refusedTimestamp.code, 1, refusedTimestamp.stderr);
      assert.match(refusedTimestamp.stderr, /signature_invalid/);
      assert.equal(await trusted('timestamp'), trustedTimestamp);

      // The honest timestamp back; it names a new snapshot, which is altered after signing.
      await writeFile(timestampFile, honest);
      const snapshotVersion = (JSON.parse(honest) as { signed: { meta: Record<string, { version: number }> } }).signed.meta['snapshot.json']!.version;
      const snapshotFile = path.join(published, 'metadata', `${snapshotVersion}.snapshot.json`);
      const snapshot = JSON.parse(await readFile(snapshotFile, 'utf8')) as { signed: { expires: string } };
      snapshot.signed.expires = '2099-01-01T00:00:00Z';
      await writeFile(snapshotFile, JSON.stringify(snapshot));
      const trustedSnapshot = await trusted('snapshot');
      const refusedSnapshot = await run(entry.executable, [...metadataArgs(), 'refresh']);
      assert.equal(refusedSnapshot.code, 1, refusedSnapshot.stderr);
      assert.match(refusedSnapshot.stderr, /signature_invalid/);
      assert.equal(await trusted('snapshot'), trustedSnapshot);
    });
  });
}
