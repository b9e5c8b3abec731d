/**
 * Keys at rest: encrypted with the passphrase, mode 0600, key ids as TUF computes them, and a
 * wrong passphrase refused with a sentence and nothing written.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { ReleaseRepository, generateSigningKey, keyIdOf, loadSigningKey, writeKeyFile } from '../src/index.ts';
import { PASSPHRASE, buildRepository, customFor, makeImage, snapshotFolder, tempDir } from './helpers.ts';

describe('key files', () => {
  test('key files are mode 0600 and hold the private key only encrypted', async () => {
    const built = await buildRepository();
    const names = await readdir(built.keysDir);
    assert.equal(names.length, 3 + 1 + 1 + 1 + 2, 'root ×3, targets, snapshot, timestamp, two vendors');
    for (const name of names) {
      const file = join(built.keysDir, name);
      assert.equal((await stat(file)).mode & 0o777, 0o600, name);
      const text = await readFile(file, 'utf8');
      const key = await loadSigningKey(file, PASSPHRASE);
      const seed = Buffer.from(key.privateKey.export({ format: 'jwk' }).d as string, 'base64url');
      assert.equal(seed.length, 32);
      const plainPkcs8 = key.privateKey.export({ format: 'der', type: 'pkcs8' });
      for (const form of [seed.toString('hex'), seed.toString('base64'), seed.toString('base64url'), plainPkcs8.toString('base64').slice(0, 40)]) {
        assert.ok(!text.includes(form), `${name} must not hold the raw private key (${form.slice(0, 8)}…)`);
      }
      assert.ok(!text.includes('BEGIN PRIVATE KEY'));
      assert.ok(text.includes('BEGIN ENCRYPTED PRIVATE KEY'));
    }
  });

  test('the key id is the sha256 of the canonical JSON of the public key entry', () => {
    const key = generateSigningKey();
    const canonical = `{"keytype":"ed25519","keyval":{"public":"${key.publicKeyHex}"},"scheme":"ed25519"}`;
    assert.equal(key.keyId, createHash('sha256').update(canonical).digest('hex'));
    assert.equal(keyIdOf(key.publicKeyHex), key.keyId);
    assert.match(key.publicKeyHex, /^[0-9a-f]{64}$/);
  });

  test('a wrong passphrase is refused with a clear error, and nothing is written', async () => {
    const built = await buildRepository();
    const [first] = await readdir(built.keysDir);
    await assert.rejects(loadSigningKey(join(built.keysDir, first as string), 'not the passphrase'), (e: unknown) => {
      assert.ok(isFirmwardError(e, 'unauthorized'));
      assert.match(e.message, /passphrase does not open the key file/);
      return true;
    });
    const image = await makeImage(built.dir, 'fw.bin');
    const before = await snapshotFolder(built.repoDir);
    const wrong = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: 'not the passphrase' });
    await assert.rejects(wrong.add({ image, custom: customFor('acme', 'plug', '1.0.0') }), (e: unknown) => isFirmwardError(e, 'unauthorized'));
    await assert.rejects(wrong.refresh(), (e: unknown) => isFirmwardError(e, 'unauthorized'));
    const none = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir] });
    await assert.rejects(none.refresh(), (e: unknown) => isFirmwardError(e, 'unauthorized') && /FIRMWARD_RELEASE_PASSPHRASE/.test(e.message));
    assert.deepEqual(await snapshotFolder(built.repoDir), before);
  });

  test('new keys need a passphrase of at least 8 characters; a damaged key file is named', async () => {
    const dir = await tempDir();
    await assert.rejects(writeKeyFile(dir, 'root', generateSigningKey(), 'short'), (e: unknown) => isFirmwardError(e, 'invalid_input'));
    const file = await writeKeyFile(dir, 'root', generateSigningKey(), PASSPHRASE);
    const other = generateSigningKey();
    const text = (await readFile(file, 'utf8')).replace(/"public": "[0-9a-f]+"/, `"public": "${other.publicKeyHex}"`);
    await writeFile(file, text);
    await assert.rejects(loadSigningKey(file, PASSPHRASE), (e: unknown) => isFirmwardError(e, 'metadata_invalid') && e.message.includes(file));
  });
});
