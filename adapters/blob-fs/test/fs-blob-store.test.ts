import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FsBlobStore } from '../src/index.ts';
import { makeImage, readAll, runBlobStoreContract } from '../../../packages/ports/testing/blob-store-contract.ts';

/** Every file under `dir`, relative, temp files included. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

async function tempStore() {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-blob-fs-'));
  return { dir, store: new FsBlobStore({ dir }), listEverything: () => walk(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

runBlobStoreContract('FsBlobStore', tempStore);

test('images live under sha256/<hex>, and nothing is left in .incoming after a put', async () => {
  const { dir, store, cleanup } = await tempStore();
  try {
    const image = makeImage(1234);
    const source = path.join(dir, '..', `${path.basename(dir)}-source.bin`);
    await writeFile(source, image.bytes);
    await store.put(image.key, source, image.expected);
    await rm(source);
    assert.deepEqual(await walk(dir), [path.join('sha256', image.expected.sha256)]);
    assert.deepEqual(await readdir(path.join(dir, '.incoming')), []);
  } finally {
    await cleanup();
  }
});

test('a folder store cannot sign URLs: downloadUrl is null, so the hub serves the bytes itself', async () => {
  const { store, cleanup } = await tempStore();
  try {
    const image = makeImage(10);
    assert.equal(await store.downloadUrl(image.key, { expiresInSeconds: 600 }), null);
  } finally {
    await cleanup();
  }
});

test('an open read keeps its bytes whole even when the image is deleted meanwhile', async () => {
  const { dir, store, cleanup } = await tempStore();
  try {
    const image = makeImage(300_000);
    const source = path.join(dir, 'source.bin');
    await writeFile(source, image.bytes);
    await store.put(image.key, source, image.expected);
    const reading = await store.open(image.key);
    await store.delete(image.key);
    assert.ok((await readAll(reading)).equals(image.bytes));
    assert.equal(await store.has(image.key), false);
  } finally {
    await cleanup();
  }
});
