/**
 * Key rotation as a device sees it: a client that trusted the old root follows a proper rotation,
 * and a key rotated out signs nothing it will accept any more.
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { bumpVersion, readMetadata, setVersion, signMetadata, verifyRepository, writeMetadata } from '../src/index.ts';
import type { Envelope, RootSigned, TimestampSigned } from '../src/index.ts';
import { buildRepository, copyPublished, customFor, makeImage } from './helpers.ts';

/** A device's own metadata folder, kept between runs, starting from `root`. */
async function deviceCache(root: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'firmward-device-'));
  await cp(root, join(dir, 'root.json'));
  return dir;
}

describe('key rotation', () => {
  test('root rotation: a client that trusted root 1 accepts root 2; a root signed only by rotated-out keys is refused', async () => {
    const built = await buildRepository();
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('acme', 'plug', '1.0.0') });
    await built.repository.publish(built.outDir);
    const device = await deviceCache(join(built.outDir, 'metadata', '1.root.json'));
    assert.equal((await verifyRepository(built.outDir, { metadataDir: device })).rootVersion, 1);

    const oldRootKeys = await built.repository.signingKeys('root');
    const rotated = await built.repository.rotate('root');
    assert.equal(rotated.keyIds.length, 3);
    assert.ok(rotated.keyIds.every((id) => !oldRootKeys.some((k) => k.keyId === id)), 'every root key replaced');
    assert.deepEqual(rotated.root, { version: 2, signatures: { valid: 3, threshold: 2 }, previousRootSignatures: { valid: 3, threshold: 2 }, complete: true });
    const published = await built.repository.publish(built.outDir);
    assert.equal(published.shipRootFile, 'metadata/2.root.json');

    const followed = await verifyRepository(built.outDir, { metadataDir: device });
    assert.equal(followed.rootVersion, 2);
    assert.equal(followed.ok, true);
    const fresh = await verifyRepository(built.outDir, { trustedRoot: join(built.outDir, 'metadata', '1.root.json') });
    assert.equal(fresh.rootVersion, 2);

    // An attacker holding the old (rotated-out) root keys signs a root 3 that hands themselves the keys.
    const root2 = await readMetadata(join(built.outDir, 'metadata', '2.root.json')) as Envelope<RootSigned>;
    const forged = signMetadata(bumpVersion(root2), oldRootKeys, { append: false });
    const tampered = await copyPublished(built.outDir);
    await writeMetadata(join(tampered, 'metadata', '3.root.json'), forged);
    await assert.rejects(verifyRepository(tampered, { metadataDir: device }), (e: unknown) => isFirmwardError(e, 'signature_invalid'));
    await assert.rejects(verifyRepository(tampered, { trustedRoot: join(built.outDir, 'metadata', '1.root.json') }), (e: unknown) => isFirmwardError(e, 'signature_invalid'));
  });

  test('rotating the timestamp key: the new key is followed, the old key\'s timestamps are refused', async () => {
    const built = await buildRepository();
    await built.repository.publish(built.outDir);
    const device = await deviceCache(join(built.outDir, 'metadata', '1.root.json'));
    await verifyRepository(built.outDir, { metadataDir: device });
    const oldTimestampKeys = await built.repository.signingKeys('timestamp');

    const rotated = await built.repository.rotate('timestamp');
    assert.equal(rotated.root?.complete, true);
    assert.notDeepEqual(rotated.keyIds, oldTimestampKeys.map((k) => k.keyId));
    await built.repository.publish(built.outDir);
    const report = await verifyRepository(built.outDir, { metadataDir: device });
    assert.equal(report.rootVersion, 2);
    const current = await readMetadata(join(built.outDir, 'metadata', 'timestamp.json')) as Envelope<TimestampSigned>;
    assert.equal(report.timestampVersion, current.signed.version);

    const tampered = await copyPublished(built.outDir);
    const forged = signMetadata(setVersion(current, current.signed.version + 5), oldTimestampKeys, { append: false });
    await writeMetadata(join(tampered, 'metadata', 'timestamp.json'), forged);
    await assert.rejects(verifyRepository(tampered, { metadataDir: device }), (e: unknown) => isFirmwardError(e, 'signature_invalid'));
  });

  test('rotating a vendor key changes who signs that vendor\'s role, and keeps the threshold unless told', async () => {
    const built = await buildRepository({ vendors: [{ name: 'acme', keyCount: 2, threshold: 2 }] });
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('acme', 'plug', '1.0.0') });
    const before = built.repository.status().vendors[0];
    const removed = before?.keyIds[0] as string;
    const rotated = await built.repository.rotate('acme', { remove: [removed.slice(0, 10)] });
    assert.equal(rotated.keyIds.length, 2);
    assert.ok(!rotated.keyIds.includes(removed));
    assert.equal(rotated.keyIds[0], before?.keyIds[1], 'the key not removed stays');
    const after = built.repository.status().vendors[0];
    assert.equal(after?.threshold, 2);
    assert.deepEqual(after?.signatures, { valid: 2, threshold: 2 });
    await assert.rejects(built.repository.rotate('acme', { threshold: 3 }), (e: unknown) => isFirmwardError(e, 'invalid_input'));
    await built.repository.publish(built.outDir);
    const report = await verifyRepository(built.outDir, { trustedRoot: join(built.outDir, 'metadata', '1.root.json') });
    assert.equal(report.ok, true);
    assert.equal(report.rootVersion, 1, 'a vendor rotation needs no new root');
  });
});
