/**
 * S3BlobStore against a real S3 REST server on loopback (@20minutes/s3rver, see s3-server.ts):
 * the shared BlobStore contract, then what only a store that signs URLs has — SigV4 presigned
 * download URLs that the server itself refuses once tampered with or expired.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { parse as parseContentDisposition } from 'content-disposition';
import { isFirmwardError } from '@firmward/core';
import { ManualClock } from '@firmward/ports';
import { makeImage, refusedWith, runBlobStoreContract } from '../../../packages/ports/testing/blob-store-contract.ts';
import type { Image } from '../../../packages/ports/testing/blob-store-contract.ts';
import { freePort } from '../../../packages/ports/testing/free-port.ts';
import { S3BlobStore } from '../src/index.ts';
import type { S3BlobStoreOptions } from '../src/index.ts';
import { S3RVER_KEY, startS3Server } from './s3-server.ts';

const server = await startS3Server();
const raw = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_KEY });
// The SDK addresses a bucket as `/<bucket>/`, s3rver signs it as `/<bucket>` and refuses the
// listing; the adapter never lists, only the test's look into the bucket needs this.
raw.middlewareStack.add((next) => (args) => {
  const request = args.request as { path?: string };
  if (request.path === `/${server.bucket}/`) request.path = `/${server.bucket}`;
  return next(args);
}, { step: 'build', name: 'bucketPathForS3rver' });
const stores: S3BlobStore[] = [];
after(async () => {
  for (const store of stores) store.stop();
  raw.destroy();
  await server.stop();
});

let prefixes = 0;

function newStore(patch: Partial<S3BlobStoreOptions> = {}): { store: S3BlobStore; prefix: string } {
  // A prefix per test: each test sees an empty store, and the bucket is shared like a real one.
  const prefix = `test-${prefixes++}/`;
  const store = new S3BlobStore({ endpoint: server.endpoint, region: 'us-east-1', bucket: server.bucket, prefix, forcePathStyle: true, ...S3RVER_KEY, ...patch });
  stores.push(store);
  return { store, prefix };
}

/** Every object under the prefix, temporary uploads included. */
async function listEverything(prefix: string): Promise<string[]> {
  const listed = await raw.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

runBlobStoreContract('S3BlobStore on s3rver', () => {
  const { store, prefix } = newStore();
  return Promise.resolve({
    store,
    listEverything: () => listEverything(prefix),
    cleanup: async () => {
      for (const key of await listEverything(prefix)) await raw.send(new DeleteObjectCommand({ Bucket: server.bucket, Key: prefix + key }));
    },
  });
// s3rver streams a server-side copy into its final file, so a reader of s3rver can see part of an
// object (seen once in CI); the adapter publishes only by copy, which real S3 makes visible whole.
}, { serverWritesInPlace: true });

describe('S3BlobStore: signed download URLs', () => {
  let sources: string;
  let n = 0;

  async function kept(store: S3BlobStore, lengthBytes = 4096): Promise<Image> {
    sources ??= await mkdtemp(path.join(tmpdir(), 'firmward-s3-src-'));
    const image = makeImage(lengthBytes);
    const file = path.join(sources, `image-${n++}.bin`);
    await writeFile(file, image.bytes);
    await store.put(image.key, file, image.expected);
    return image;
  }
  after(() => rm(sources, { recursive: true, force: true }));

  test('images live under <prefix>sha256/<hex>; the temporary upload is gone', async () => {
    const { store, prefix } = newStore();
    const image = await kept(store);
    assert.deepEqual(await listEverything(prefix), [`sha256/${image.expected.sha256}`]);
  });

  test('downloadUrl is a SigV4 presigned GET of that object, signed now, for expiresInSeconds', async () => {
    const signedAt = Date.UTC(2026, 2, 1, 1, 2, 3);
    const { store, prefix } = newStore({ clock: new ManualClock(signedAt) });
    const image = makeImage(10);
    const url = new URL(await store.downloadUrl(image.key, { expiresInSeconds: 900 }));
    assert.equal(url.origin, server.endpoint);
    assert.equal(url.pathname, `/${server.bucket}/${prefix}sha256/${image.expected.sha256}`);
    const q = url.searchParams;
    assert.equal(q.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
    assert.equal(q.get('X-Amz-Credential'), 'S3RVER/20260301/us-east-1/s3/aws4_request');
    assert.equal(q.get('X-Amz-Date'), '20260301T010203Z');
    assert.equal(q.get('X-Amz-Expires'), '900');
    assert.equal(q.get('X-Amz-SignedHeaders'), 'host');
    assert.match(q.get('X-Amz-Signature') ?? '', /^[0-9a-f]{64}$/);
    assert.equal(url.href.includes(S3RVER_KEY.secretAccessKey.toLowerCase()), false, 'the secret never appears in a URL');
  });

  test('the URL downloads the image, answers Range, and carries the file name signed into it', async () => {
    const { store } = newStore();
    const image = await kept(store);
    const url = await store.downloadUrl(image.key, { expiresInSeconds: 600, fileName: 'plug-2 1.1.0.bin' });

    const whole = await fetch(url);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(image.bytes));
    const disposition = parseContentDisposition(whole.headers.get('content-disposition') ?? '');
    assert.equal(disposition.type, 'attachment');
    assert.equal(disposition.parameters.filename, 'plug-2 1.1.0.bin');

    const part = await fetch(url, { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.ok(Buffer.from(await part.arrayBuffer()).equals(image.bytes.subarray(100, 200)));
  });

  test('a file name beyond ASCII is signed into the URL as RFC 6266 filename*', async () => {
    // Not fetched: s3rver leaves `'` unescaped when it recomputes the signature (SigV4 escapes
    // it), so it refuses such a URL that S3 accepts; the signed parameter is checked instead.
    const { store } = newStore();
    const url = new URL(await store.downloadUrl(makeImage(1).key, { expiresInSeconds: 60, fileName: 'Lampe – Küche 1.1.0.bin' }));
    const disposition = parseContentDisposition(url.searchParams.get('response-content-disposition') ?? '');
    assert.equal(disposition.type, 'attachment');
    assert.equal(disposition.parameters.filename, 'Lampe – Küche 1.1.0.bin');
  });

  test('a tampered URL is refused by the store: longer life, another object, another file name, another signature', async () => {
    const { store } = newStore();
    const image = await kept(store);
    const other = await kept(store);
    const url = await store.downloadUrl(image.key, { expiresInSeconds: 60, fileName: 'a.bin' });
    const tampered = (change: (u: URL) => void) => {
      const u = new URL(url);
      change(u);
      return u.href;
    };
    const attempts = {
      'longer life': tampered((u) => u.searchParams.set('X-Amz-Expires', '604800')),
      'another object': tampered((u) => { u.pathname = u.pathname.replace(image.expected.sha256, other.expected.sha256); }),
      'another file name': tampered((u) => u.searchParams.set('response-content-disposition', 'attachment; filename="evil.exe"')),
      'another signature': tampered((u) => u.searchParams.set('X-Amz-Signature', '0'.repeat(64))),
      'another key id': tampered((u) => u.searchParams.set('X-Amz-Credential', u.searchParams.get('X-Amz-Credential')!.replace('S3RVER', 'INTRUDER'))),
    };
    // The untouched URL works: the refusals below are for the change, not for the server's mood.
    assert.equal((await fetch(url)).status, 200);
    for (const [what, href] of Object.entries(attempts)) {
      const response = await fetch(href);
      assert.equal(response.status, 403, what);
      await response.arrayBuffer();
    }
  });

  test('an expired URL is refused by the store; one still in its time works', async () => {
    // Signed two hours ago on a clock of its own: no waiting, no timed assertion.
    const twoHoursAgo = Date.now() - 2 * 3600_000;
    const { store: signer } = newStore({ clock: new ManualClock(twoHoursAgo) });
    const image = await kept(signer);
    const expired = await fetch(await signer.downloadUrl(image.key, { expiresInSeconds: 3600 }));
    assert.equal(expired.status, 403);
    assert.match(await expired.text(), /expired/i);
    const valid = await fetch(await signer.downloadUrl(image.key, { expiresInSeconds: 3 * 3600 }));
    assert.equal(valid.status, 200);
    assert.ok(Buffer.from(await valid.arrayBuffer()).equals(image.bytes));
  });

  test('a URL must expire after 1 second to 7 days', async () => {
    const { store } = newStore();
    const image = makeImage(1);
    for (const expiresInSeconds of [0, -5, 1.5, 7 * 24 * 3600 + 1, Number.NaN]) {
      await refusedWith(store.downloadUrl(image.key, { expiresInSeconds }), 'invalid_input');
    }
    assert.ok(URL.canParse(await store.downloadUrl(image.key, { expiresInSeconds: 7 * 24 * 3600 })));
  });
});

describe('S3BlobStore: failures say what to do, and never show the secret', () => {
  test('a wrong secret is store_failure about the access key', async () => {
    const { store } = newStore({ secretAccessKey: 'not-the-secret-42' });
    const image = makeImage(5);
    await assert.rejects(store.stat(image.key), (error: unknown) => {
      assert.ok(isFirmwardError(error, 'store_failure'));
      assert.match(error.message, /access key/);
      assert.equal(JSON.stringify({ message: error.message, detail: error.detail }).includes('not-the-secret-42'), false);
      return true;
    });
  });

  test('a bucket that does not exist is store_failure naming it', async () => {
    const { store } = newStore({ bucket: 'no-such-bucket' });
    await assert.rejects(store.open(makeImage(5).key), (error: unknown) => {
      assert.ok(isFirmwardError(error, 'store_failure'));
      assert.match(error.message, /no-such-bucket/);
      return true;
    });
  });

  test('a store nobody answers at is store_failure naming where', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const { store } = newStore({ endpoint });
    await assert.rejects(store.has(makeImage(5).key), (error: unknown) => {
      assert.ok(isFirmwardError(error, 'store_failure'));
      assert.ok(error.message.includes(endpoint));
      return true;
    });
  });
});
