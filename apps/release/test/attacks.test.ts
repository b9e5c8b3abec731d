/**
 * The low-level helpers let a test craft what no honest repository writes; the real client must
 * refuse each, and the refusal must come back as the right FirmwardError code (the one-place
 * mapping of tuf-js errors).
 */
import { strict as assert } from 'node:assert';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import {
  bumpVersion, fromClientError, generateSigningKey, publishedImagePath, readMetadata, setExpires, setTarget, signMetadata, targetEntry, validSigners,
  verifyRepository, writeMetadata,
} from '../src/index.ts';
import type { Envelope, RootSigned, TargetsSigned, TimestampSigned } from '../src/index.ts';
import { buildRepository, copyPublished, customFor, makeImage, resealVendor } from './helpers.ts';

async function published() {
  const built = await buildRepository();
  const image = await makeImage(built.dir, 'fw.bin', 6000, 3);
  const added = await built.repository.add({ image, custom: customFor('acme', 'plug', '1.0.0') });
  await built.repository.publish(built.outDir);
  const online = { snapshot: await built.repository.signingKeys('snapshot'), timestamp: await built.repository.signingKeys('timestamp') };
  const trustedRoot = join(built.outDir, 'metadata', '1.root.json');
  return { built, added, online, trustedRoot };
}

async function acmeRole(outDir: string): Promise<Envelope<TargetsSigned>> {
  const timestamp = await readMetadata(join(outDir, 'metadata', 'timestamp.json')) as Envelope<TimestampSigned>;
  const snapshot = await readMetadata(join(outDir, 'metadata', `${timestamp.signed.meta['snapshot.json'].version}.snapshot.json`));
  const version = (snapshot.signed as { meta: Record<string, { version: number }> }).meta['acme.json']?.version;
  return await readMetadata(join(outDir, 'metadata', `${version}.acme.json`)) as Envelope<TargetsSigned>;
}

describe('attacks on a published repository', () => {
  test('a replayed older timestamp is refused as a rollback by a client that saw the newer one', async () => {
    const { built, trustedRoot } = await published();
    const old = await readFile(join(built.outDir, 'metadata', 'timestamp.json'));
    await built.repository.refresh();
    await built.repository.publish(built.outDir);
    const device = await mkdtemp(join(tmpdir(), 'firmward-device-'));
    await cp(trustedRoot, join(device, 'root.json'));
    await verifyRepository(built.outDir, { metadataDir: device });
    const replayed = await copyPublished(built.outDir);
    await writeFile(join(replayed, 'metadata', 'timestamp.json'), old);
    await assert.rejects(verifyRepository(replayed, { metadataDir: device }), (e: unknown) => isFirmwardError(e, 'metadata_rollback'));
  });

  test('a vendor signing another vendor\'s path: the client never sees the target', async () => {
    const { built, online, trustedRoot } = await published();
    const acmeKeys = await built.repository.signingKeys('acme');
    const acme = await acmeRole(built.outDir);
    const image = await readFile(await makeImage(built.dir, 'evil.bin', 100, 7));
    const forged = signMetadata(bumpVersion(setTarget(acme, 'globex/cam/9.9.9/evil.bin', targetEntry(image, customFor('globex', 'cam', '9.9.9')))), acmeKeys, { append: false });
    const tampered = await copyPublished(built.outDir);
    await resealVendor(tampered, 'acme', forged, online);
    const report = await verifyRepository(tampered, { trustedRoot });
    assert.equal(report.ok, false);
    assert.deepEqual(report.problems.map((p) => [p.path, p.code]), [['globex/cam/9.9.9/evil.bin', 'outside_delegation']]);
    assert.equal(report.vendors[0]?.targets.find((t) => t.path === 'acme/plug/1.0.0/fw.bin')?.ok, true);
  });

  test('a target signed by an unknown key is refused', async () => {
    const { built, online, trustedRoot } = await published();
    const acme = await acmeRole(built.outDir);
    const image = await readFile(await makeImage(built.dir, 'evil.bin', 100, 8));
    const forged = signMetadata(bumpVersion(setTarget(acme, 'acme/plug/6.6.6/evil.bin', targetEntry(image, customFor('acme', 'plug', '6.6.6')))), [generateSigningKey()], { append: false });
    const tampered = await copyPublished(built.outDir);
    await resealVendor(tampered, 'acme', forged, online);
    await assert.rejects(verifyRepository(tampered, { trustedRoot }), (e: unknown) => isFirmwardError(e, 'signature_invalid'));
  });

  test('a root below its threshold is refused by the client', async () => {
    const { built, trustedRoot } = await published();
    const rootKeys = await built.repository.signingKeys('root');
    const root1 = await readMetadata(trustedRoot) as Envelope<RootSigned>;
    const root2 = signMetadata(setExpires(bumpVersion(root1), Date.now() + 86_400_000), rootKeys.slice(0, 1), { append: false });
    assert.equal(validSigners(root2.signed.keys, root2.signed.roles.root, root2).length, 1);
    const tampered = await copyPublished(built.outDir);
    await writeMetadata(join(tampered, 'metadata', '2.root.json'), root2);
    await assert.rejects(verifyRepository(tampered, { trustedRoot }), (e: unknown) => isFirmwardError(e, 'signature_invalid'));
  });

  test('a flipped byte or a longer image is refused per image, with its own code', async () => {
    const { built, added, trustedRoot } = await published();
    const file = join('targets', ...publishedImagePath(added.path, added.sha256).split('/'));
    const flipped = await copyPublished(built.outDir);
    const bytes = await readFile(join(flipped, file));
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    await writeFile(join(flipped, file), bytes);
    const hashReport = await verifyRepository(flipped, { trustedRoot });
    assert.deepEqual(hashReport.problems.map((p) => p.code), ['image_hash_mismatch']);

    const longer = await copyPublished(built.outDir);
    await writeFile(join(longer, file), Buffer.concat([await readFile(join(built.outDir, file)), Buffer.from('tail')]));
    const lengthReport = await verifyRepository(longer, { trustedRoot });
    assert.deepEqual(lengthReport.problems.map((p) => p.code), ['image_length_mismatch']);
  });
});

describe('tuf-js refusals as FirmwardErrors', () => {
  // The client re-wraps some errors with the original only in the message (tuf-notes): stand-ins
  // with the client's class names and messages.
  const named = (name: string, message: string): Error => {
    const holder = { [name]: class extends Error {} };
    return new (holder[name] as new (m: string) => Error)(message);
  };
  const cases: [Error, 'metadata' | 'image', string][] = [
    [named('ExpiredMetadataError', 'Final timestamp.json is expired'), 'metadata', 'metadata_expired'],
    [named('RuntimeError', 'Unable to load snapshot metadata error Error: snapshot.json is expired'), 'metadata', 'metadata_expired'],
    [named('BadVersionError', 'New timestamp version 2 is less than current version 3'), 'metadata', 'metadata_rollback'],
    [named('RuntimeError', 'Unable to load targets error Error: Version 1 of acme does not match snapshot version 2'), 'metadata', 'metadata_rollback'],
    [named('UnsignedMetadataError', 'root was signed by 1/2 keys'), 'metadata', 'signature_invalid'],
    [named('RuntimeError', 'Unable to load targets error Error: acme was signed by 0/1 keys'), 'metadata', 'signature_invalid'],
    [named('LengthOrHashMismatchError', 'sha256 hash mismatch'), 'image', 'image_hash_mismatch'],
    [named('DownloadLengthMismatchError', 'Max length reached'), 'image', 'image_length_mismatch'],
    [named('DownloadLengthMismatchError', 'Max length reached'), 'metadata', 'metadata_too_large'],
    [Object.assign(named('DownloadHTTPError', 'Failed to download'), { statusCode: 404 }), 'image', 'image_unavailable'],
    [new TypeError('fetch failed'), 'metadata', 'not_found'],
  ];
  for (const [error, step, code] of cases) {
    test(`${error.constructor.name}: "${error.message}" (${step}) → ${code}`, () => {
      const mapped = fromClientError(error, step, 'The repository');
      assert.ok(mapped instanceof FirmwardError);
      assert.equal(mapped.code, code);
      assert.equal(mapped.cause, error);
      assert.match(mapped.message, /^The repository: /);
    });
  }
});
