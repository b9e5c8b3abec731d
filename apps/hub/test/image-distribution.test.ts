/**
 * Images from an S3-compatible store: the hub mirrors and verifies the maker's image as always,
 * puts it in the store under its content address, and answers a device's download with a redirect
 * to a signed URL that expires — with Range, as a resuming device asks. The store is a real S3 REST
 * server on loopback (@20minutes/s3rver), which checks the URL's signature.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SystemClock, silentLogger } from '@firmward/ports';
import { S3RVER_KEY, startS3Server } from '../../../adapters/blob-s3/test/s3-server.ts';
import { loadConfig } from '../src/config.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { startHub } from '../src/hub.ts';

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const s of stops.reverse()) await s();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('a device\'s download is redirected to a signed, expiring URL of the image store, which serves the verified bytes with Range', async () => {
  const s3 = await startS3Server();
  stops.push(() => s3.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-images-'));
  dirs.push(dir);
  const image = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) % 251);
  const maker = await publishReleases(path.join(dir, 'maker'), 'acme', [{
    custom: { vendor: 'acme', model: 'plug', hardwareRevisions: ['A'], version: '1.1.0', expectedInstallSeconds: 60, recovery: { steps: ['x'] } },
    image, fileName: 'plug.bin',
  }]);
  const config = loadConfig({ argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0'], env: { FIRMWARD_IMAGES_SECRET: S3RVER_KEY.secretAccessKey }, readFile: () => { throw new Error('none'); } });
  const hub = await startHub({
    ...config, repositories: [maker.config],
    images: { ...config.images, kind: 's3', endpoint: s3.endpoint, bucket: s3.bucket, prefix: 'firmward/', accessKeyId: S3RVER_KEY.accessKeyId, urlExpirySeconds: 300 },
  }, { clock: new SystemClock(), log: silentLogger, ownerToken: 'image-distribution-test-token-01' });
  stops.push(() => hub.stop());

  const url = `${hub.baseUrl}/firmware/${encodeURIComponent('acme/plug/1.1.0')}`;
  const redirect = await fetch(url, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  const location = new URL(redirect.headers.get('location') ?? '');
  assert.equal(location.origin, s3.endpoint, 'the store, not the hub');
  assert.match(location.pathname, /\/firmward\/sha256\/[0-9a-f]{64}$/);
  assert.equal(location.searchParams.get('X-Amz-Expires'), '300');
  assert.ok(location.searchParams.get('X-Amz-Signature'));

  // A device follows the redirect; a resuming one keeps its Range.
  const whole = await fetch(url);
  assert.equal(whole.status, 200);
  assert.deepEqual(new Uint8Array(await whole.arrayBuffer()), image);
  const tail = await fetch(url, { headers: { range: 'bytes=150000-' } });
  assert.equal(tail.status, 206);
  assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), image.subarray(150_000));
  // The URL is signed: changing what it asks for is refused by the store.
  location.searchParams.set('X-Amz-Expires', '3600');
  assert.equal((await fetch(location)).status, 403);
});
