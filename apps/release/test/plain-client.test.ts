/**
 * Any TUF client can read what the release tool publishes, not only ours: the plain tuf-js
 * `Updater` — its own fetcher, its default settings, nothing of Firmward's — refreshes a published
 * repository over HTTP, follows a root rotation and a new timestamp/snapshot, finds a vendor's
 * target through the delegation and downloads its image (`<hash>.<name>` with consistent snapshots).
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Updater } from 'tuf-js';
import { serveFolder } from '../src/index.ts';
import { buildRepository, customFor, makeImage } from './helpers.ts';

describe('a plain TUF client (tuf-js Updater, no Firmward code) reads a published repository', () => {
  test('refresh, a target found through its vendor\'s delegation, its image downloaded; then a rotated root and new timestamp followed', async () => {
    const built = await buildRepository();
    const imageFile = await makeImage(built.dir, 'fw.bin', 10_000, 5);
    const added = await built.repository.add({ image: imageFile, custom: customFor('acme', 'plug', '1.0.0') });
    const published = await built.repository.publish(built.outDir);
    const served = await serveFolder(built.outDir);
    after(() => served.close());

    const metadataDir = join(built.dir, 'client-metadata');
    const targetDir = join(built.dir, 'client-targets');
    await mkdir(metadataDir);
    await mkdir(targetDir);
    await writeFile(join(metadataDir, 'root.json'), await readFile(join(built.outDir, published.shipRootFile)));
    const updater = () => new Updater({ metadataDir, metadataBaseUrl: `${served.url}/metadata`, targetDir, targetBaseUrl: `${served.url}/targets` });

    const first = updater();
    await first.refresh();
    const info = await first.getTargetInfo(added.path);
    assert.ok(info, `${added.path} is found through the acme delegation`);
    assert.equal(info.length, 10_000);
    assert.equal(info.hashes['sha256'], added.sha256);
    assert.equal((await first.getTargetInfo('globex/plug/1.0.0/fw.bin')), undefined, 'nothing under another vendor');
    const downloaded = await first.downloadTarget(info);
    const bytes = await readFile(downloaded);
    assert.deepEqual(bytes, await readFile(imageFile));
    assert.equal(createHash('sha256').update(bytes).digest('hex'), added.sha256);
    assert.equal(await first.findCachedTarget(info), downloaded, 'the client finds its verified copy');
    assert.deepEqual((await readdir(metadataDir)).sort(), ['acme.json', 'globex.json', 'root.json', 'snapshot.json', 'targets.json', 'timestamp.json'], 'trusted metadata under unversioned names');

    // The maker rotates the timestamp key (a new root version) and refreshes: the plain client
    // walks 1.root.json → 2.root.json and accepts the new timestamp and snapshot.
    await built.repository.rotate('timestamp');
    await built.repository.refresh();
    await built.repository.publish(built.outDir);
    const second = updater();
    await second.refresh();
    const trustedRoot = JSON.parse(await readFile(join(metadataDir, 'root.json'), 'utf8')) as { signed: { version: number } };
    assert.equal(trustedRoot.signed.version, 2);
    const again = await second.getTargetInfo(added.path);
    assert.ok(again);
    assert.equal(await second.findCachedTarget(again), downloaded);
  });
});
