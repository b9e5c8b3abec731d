/**
 * The repository end to end against the real client: what `init → add → publish` writes is what
 * tuf-js accepts, retractions arrive signed, and refusals leave nothing behind.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { copyFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { ReleaseRepository, generateSigningKey, readMetadata, readPublicKey, signRootFile, verifyRepository, writeKeyFile } from '../src/index.ts';
import type { RootSigned, Envelope } from '../src/index.ts';
import { PASSPHRASE, buildRepository, customFor, makeImage, snapshotFolder, tempDir } from './helpers.ts';

const rootOf = (outDir: string): string => join(outDir, 'metadata', '1.root.json');

describe('release repository', () => {
  test('init → add → publish → verify: the tuf-js client trusts every image, per vendor role', async () => {
    const built = await buildRepository();
    const plug = await makeImage(built.dir, 'plug.bin', 5000, 1);
    const cam = await makeImage(built.dir, 'cam.img', 7000, 2);
    const a = await built.repository.add({ image: plug, custom: customFor('acme', 'plug', '1.2.0') });
    const b = await built.repository.add({ image: cam, custom: customFor('globex', 'cam', '2.0.0'), fileName: 'firmware.img' });
    assert.equal(a.path, 'acme/plug/1.2.0/plug.bin');
    assert.equal(b.path, 'globex/cam/2.0.0/firmware.img');
    assert.equal(a.sha256, createHash('sha256').update(await readFile(plug)).digest('hex'));

    const published = await built.repository.publish(built.outDir);
    assert.equal(published.shipRootFile, 'metadata/1.root.json');
    assert.equal(published.imagesWritten, 2);
    const report = await verifyRepository(built.outDir, { trustedRoot: rootOf(built.outDir) });
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.deepEqual(report.vendors.map((v) => [v.role, v.targets.map((t) => [t.path, t.lengthBytes, t.ok])]), [
      ['acme', [['acme/plug/1.2.0/plug.bin', 5000, true]]],
      ['globex', [['globex/cam/2.0.0/firmware.img', 7000, true]]],
    ]);
    assert.equal(report.vendors[0]?.targets[0]?.sha256, a.sha256);
    // One hash per target, so the consistent-snapshot image name is unambiguous.
    const acme = await readMetadata(join(built.outDir, 'metadata', `${report.vendors[0]?.version}.acme.json`));
    assert.deepEqual(Object.keys((acme.signed as { targets: Record<string, { hashes: object }> }).targets['acme/plug/1.2.0/plug.bin']?.hashes ?? {}), ['sha256']);
    await readFile(join(built.outDir, 'targets', 'acme', 'plug', '1.2.0', `${a.sha256}.plug.bin`));
  });

  test('expires is written as YYYY-MM-DDTHH:MM:SSZ from the injected clock, with the default periods', async () => {
    const at = Date.UTC(2030, 0, 15, 12, 30, 45, 678);
    const built = await buildRepository({}, { now: () => at });
    const status = built.repository.status();
    const expires = Object.fromEntries(status.roles.map((r) => [r.role, r.expires]));
    assert.deepEqual(expires, {
      root: '2031-01-15T12:30:45Z', targets: '2030-04-15T12:30:45Z', snapshot: '2030-01-22T12:30:45Z', timestamp: '2030-01-16T12:30:45Z',
    });
    assert.equal(status.vendors[0]?.expires, '2030-04-15T12:30:45Z');
    assert.deepEqual(status.roles.find((r) => r.role === 'root')?.signatures, { valid: 3, threshold: 2 });
  });

  test('retract sets retracted and its reason in the signed vendor role, and verify shows it', async () => {
    const built = await buildRepository();
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('acme', 'plug', '1.0.0') });
    await built.repository.publish(built.outDir);
    const before = await verifyRepository(built.outDir, { trustedRoot: rootOf(built.outDir), images: false });
    assert.equal(before.vendors[0]?.targets[0]?.retracted, false);

    await built.repository.retract('acme/plug/1.0.0', 'It bricks revision A boards.');
    await built.repository.publish(built.outDir);
    const after = await verifyRepository(built.outDir, { trustedRoot: rootOf(built.outDir) });
    assert.equal(after.ok, true);
    const target = after.vendors[0]?.targets[0];
    assert.equal(target?.path, 'acme/plug/1.0.0/fw.bin', 'a retracted target stays listed');
    assert.equal(target?.retracted, true);
    assert.equal(target?.retractedReason, 'It bricks revision A boards.');
    assert.ok((after.vendors[0]?.version ?? 0) > (before.vendors[0]?.version ?? 0));
    await assert.rejects(built.repository.retract('acme/plug/1.0.0', 'Again.'), (e: unknown) => isFirmwardError(e, 'conflict'));
    await assert.rejects(built.repository.retract('acme/plug/9.9.9', 'Nope.'), (e: unknown) => isFirmwardError(e, 'not_found'));
  });

  test('re-adding the same vendor/model/version is refused, even under another file name', async () => {
    const built = await buildRepository();
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('acme', 'plug', '1.0.0') });
    const other = await makeImage(built.dir, 'other.bin', 100, 9);
    const before = await snapshotFolder(built.repoDir);
    await assert.rejects(built.repository.add({ image: other, custom: customFor('acme', 'plug', '1.0.0') }), (e: unknown) => isFirmwardError(e, 'conflict'));
    assert.deepEqual(await snapshotFolder(built.repoDir), before);
  });

  test('bad custom metadata is refused before anything is written', async () => {
    const built = await buildRepository();
    const image = await makeImage(built.dir, 'fw.bin');
    const before = await snapshotFolder(built.repoDir);
    const bad: Record<string, unknown>[] = [
      { ...customFor('acme', 'plug', '1.0.0'), recovery: undefined },
      customFor('acme', 'plug', '1.0.0', { expectedInstallSeconds: 1.5 }),
      customFor('acme', 'plug/evil', '1.0.0'),
      customFor('acme', 'plug', '1.0.0', { unexpected: true }),
      customFor('acme', 'plug', '1.0.0', { severity: 'apocalyptic' }),
    ];
    for (const custom of bad) {
      await assert.rejects(built.repository.add({ image, custom }), (e: unknown) => isFirmwardError(e, 'invalid_input'), JSON.stringify(custom));
    }
    await assert.rejects(built.repository.add({ image, custom: customFor('acme', 'plug', '1.0.0'), fileName: '../x.bin' }), (e: unknown) => isFirmwardError(e, 'invalid_input'));
    await assert.rejects(built.repository.add({ image, custom: customFor('initech', 'plug', '1.0.0') }), (e: unknown) => isFirmwardError(e, 'not_found'));
    await assert.rejects(built.repository.add({ image: join(built.dir, 'missing.bin'), custom: customFor('acme', 'plug', '1.0.0') }), (e: unknown) => isFirmwardError(e, 'not_found'));
    assert.deepEqual(await snapshotFolder(built.repoDir), before);
  });

  test('vendor names that would collide with TUF\'s own roles or another vendor are refused', async () => {
    const built = await buildRepository();
    for (const name of ['root', 'Targets', 'snapshot', 'timestamp']) {
      await assert.rejects(built.repository.addVendor({ name }), (e: unknown) => isFirmwardError(e, 'invalid_input'), name);
    }
    await assert.rejects(built.repository.addVendor({ name: 'ACME' }), (e: unknown) => isFirmwardError(e, 'conflict'));
    await assert.rejects(built.repository.addVendor({ name: 'a/b' }), (e: unknown) => isFirmwardError(e, 'invalid_input'));
    const added = await built.repository.addVendor({ name: 'initech', keyCount: 2, threshold: 2 });
    assert.equal(added.keyIds.length, 2);
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('initech', 'router', '3.1.0') });
    await built.repository.publish(built.outDir);
    const report = await verifyRepository(built.outDir, { trustedRoot: rootOf(built.outDir) });
    assert.deepEqual(report.vendors.map((v) => v.role), ['acme', 'globex', 'initech']);
    assert.equal(report.vendors[2]?.targets[0]?.ok, true);
  });

  test('2-of-3 root: publish refuses a root signed by one key, and accepts it once a second key signs on another machine', async () => {
    const dir = await tempDir();
    const online = join(dir, 'online-keys');
    // Three root keys made on three machines; only the first one's folder is here.
    const rootKeyFiles: string[] = [];
    for (const machine of ['usb-1', 'usb-2', 'usb-3']) rootKeyFiles.push(await writeKeyFile(join(dir, machine), 'root', generateSigningKey(), PASSPHRASE));
    const { repository } = await ReleaseRepository.init(join(dir, 'repo'), {
      root: { keyFiles: rootKeyFiles, threshold: 2 }, vendors: [{ name: 'acme' }],
    }, { keyDirs: [online, join(dir, 'usb-1')], newKeysDir: online, passphrase: PASSPHRASE });
    assert.deepEqual(repository.status().roots[0]?.signatures, { valid: 1, threshold: 2 });
    await assert.rejects(repository.publish(join(dir, 'public')), (e: unknown) => {
      assert.ok(isFirmwardError(e, 'not_signed'));
      assert.match(e.message, /Root version 1 has 1 of the 2 root signatures/);
      return true;
    });
    // Carry the root to the machine holding usb-2, sign it there, bring it back.
    const carried = join(dir, 'carried-1.root.json');
    await copyFile(join(dir, 'repo', 'metadata', '1.root.json'), carried);
    const signed = await signRootFile(carried, [rootKeyFiles[1] as string], PASSPHRASE);
    assert.deepEqual(signed.signedBy.map((k) => k.listed), [true]);
    const imported = await repository.importRootSignatures(carried);
    assert.deepEqual(imported, { version: 1, signatures: { valid: 2, threshold: 2 }, complete: true });
    const published = await repository.publish(join(dir, 'public'));
    const report = await verifyRepository(join(dir, 'public'), { trustedRoot: join(dir, 'public', published.shipRootFile) });
    assert.equal(report.ok, true);
    // A signature by a key that is not a root key does not count on import.
    const stranger = await writeKeyFile(join(dir, 'stranger'), 'root', generateSigningKey(), PASSPHRASE);
    await signRootFile(carried, [stranger], PASSPHRASE);
    assert.deepEqual((await repository.importRootSignatures(carried)).signatures, { valid: 2, threshold: 2 });
    const root = await readMetadata(join(dir, 'repo', 'metadata', '1.root.json')) as Envelope<RootSigned>;
    assert.equal(root.signatures.length, 2);
  });

  test('offline root rotation: the new root needs a threshold of the old keys too; sign-root with the second stick completes it', async () => {
    const dir = await tempDir();
    const online = join(dir, 'online-keys');
    const sticks = ['usb-1', 'usb-2', 'usb-3'].map((s) => join(dir, s));
    const rootKeyFiles: string[] = [];
    for (const stick of sticks) rootKeyFiles.push(await writeKeyFile(stick, 'root', generateSigningKey(), PASSPHRASE));
    // Creating the repository with sticks 1 and 2 plugged in.
    const { repository } = await ReleaseRepository.init(join(dir, 'repo'), { root: { keyFiles: rootKeyFiles, threshold: 2 }, vendors: [{ name: 'acme' }] }, {
      keyDirs: [online, sticks[0] as string, sticks[1] as string], newKeysDir: online, passphrase: PASSPHRASE,
    });
    const out = join(dir, 'public');
    await repository.publish(out);
    const firstRoot = join(out, 'metadata', '1.root.json');

    // Stick 3 is lost: replace its key, with only stick 1 plugged in; the new key goes onto a new stick.
    const lost = rootKeyFiles[2] as string;
    const lostId = (await readPublicKey(lost)).keyId;
    const stick1Only = await ReleaseRepository.open(join(dir, 'repo'), { keyDirs: [online, sticks[0] as string], newKeysDir: join(dir, 'usb-4'), passphrase: PASSPHRASE });
    const rotated = await stick1Only.rotate('root', { remove: [lostId] });
    assert.equal(rotated.keyIds.length, 3);
    assert.ok(!rotated.keyIds.includes(lostId));
    assert.deepEqual(rotated.root, { version: 2, signatures: { valid: 2, threshold: 2 }, previousRootSignatures: { valid: 1, threshold: 2 }, complete: false });
    await assert.rejects(stick1Only.publish(out), (e: unknown) => isFirmwardError(e, 'not_signed') && /from the keys of root version 1/.test(e.message));
    assert.equal((await verifyRepository(out, { trustedRoot: firstRoot })).rootVersion, 1, 'nothing was published');

    const stick2 = await ReleaseRepository.open(join(dir, 'repo'), { keyDirs: [sticks[1] as string], passphrase: PASSPHRASE });
    assert.deepEqual(await stick2.signRoot(), { version: 2, signatures: { valid: 3, threshold: 2 }, previousRootSignatures: { valid: 2, threshold: 2 }, complete: true });
    await stick1Only.publish(out);
    const report = await verifyRepository(out, { trustedRoot: firstRoot });
    assert.equal(report.rootVersion, 2);
    assert.equal(report.ok, true);
  });
});
