/**
 * Keys at rest: encrypted with the passphrase, mode 0600, key ids as TUF computes them, and a
 * wrong passphrase refused with a sentence and nothing written.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import {
  KEY_FILE_KDF, Keyring, ReleaseRepository, generateSigningKey, keyFileEncryption, keyIdOf, loadSigningKey, writeKeyFile,
} from '../src/index.ts';
import { signBytes } from '../src/keys.ts';
import type { SigningKey } from '../src/index.ts';
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

  test('a new key file is PKCS#8 encrypted with scrypt at the production cost, and `openssl pkey` opens it', async () => {
    const dir = await tempDir();
    const key = generateSigningKey();
    const file = await writeKeyFile(dir, 'root', key, PASSPHRASE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const pem = (JSON.parse(await readFile(file, 'utf8')) as { encryptedPrivateKey: string }).encryptedPrivateKey;
    assert.deepEqual(keyFileEncryption(pem), { kdf: 'scrypt', ...KEY_FILE_KDF });
    assert.ok(KEY_FILE_KDF.N * KEY_FILE_KDF.r * KEY_FILE_KDF.p >= 2 ** 20, 'at least 2^20 scrypt block operations a guess');
    const openssl = spawnSync('openssl', ['asn1parse'], { input: pem, encoding: 'utf8' });
    if (openssl.error === undefined) {
      assert.match(openssl.stdout, /:PBES2/);
      assert.match(openssl.stdout, /:scrypt/);
      assert.match(openssl.stdout, /:aes-256-cbc/);
      assert.doesNotMatch(openssl.stdout, /PBKDF2/);
      const opened = spawnSync('openssl', ['pkey', '-passin', 'env:KEY_PASSPHRASE', '-pubout'], { input: pem, encoding: 'utf8', env: { ...process.env, KEY_PASSPHRASE: PASSPHRASE } });
      assert.equal(opened.status, 0, opened.stderr);
      assert.match(opened.stdout, /BEGIN PUBLIC KEY/);
    }
    const text = await readFile(file, 'utf8');
    assert.equal((await loadSigningKey(file, PASSPHRASE)).publicKeyHex, key.publicKeyHex);
    assert.equal(await readFile(file, 'utf8'), text, 'a current file is not rewritten when opened');
  });

  test('a key file written the old way (PBKDF2, 2,048 iterations) opens, and is re-encrypted with scrypt in place: same key, mode 0600', async () => {
    const dir = await tempDir();
    const key = generateSigningKey();
    const file = await writeOldKeyFile(dir, key);
    const before = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(keyFileEncryption(before['encryptedPrivateKey'] as string), { kdf: 'pbkdf2', iterations: 2048 });

    const opened = await loadSigningKey(file, PASSPHRASE);
    assert.equal(opened.keyId, key.keyId);
    const message = Buffer.from('signed after the upgrade');
    assert.ok(verify(null, message, key.privateKey, Buffer.from(signBytes(opened, message), 'hex')), 'the same private key');

    const after = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(keyFileEncryption(after['encryptedPrivateKey'] as string), { kdf: 'scrypt', ...KEY_FILE_KDF });
    assert.deepEqual({ ...after, encryptedPrivateKey: null }, { ...before, encryptedPrivateKey: null }, 'everything but the encryption kept');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), [file.slice(dir.length + 1)], 'no temporary file left');
    assert.equal((await loadSigningKey(file, PASSPHRASE)).publicKeyHex, key.publicKeyHex, 'the upgraded file opens');
  });

  test('a keyring signing with an old key file upgrades it too', async () => {
    const dir = await tempDir();
    const key = generateSigningKey();
    const file = await writeOldKeyFile(dir, key);
    const signer = await new Keyring([dir], PASSPHRASE).signer(key.keyId);
    assert.equal(signer?.keyId, key.keyId);
    const pem = (JSON.parse(await readFile(file, 'utf8')) as { encryptedPrivateKey: string }).encryptedPrivateKey;
    assert.equal(keyFileEncryption(pem).kdf, 'scrypt');
  });

  test('a wrong passphrase on an old key file is refused with its code, and the file is left untouched', async () => {
    const dir = await tempDir();
    const file = await writeOldKeyFile(dir, generateSigningKey());
    const before = await readFile(file);
    const mode = (await stat(file)).mode;
    await assert.rejects(loadSigningKey(file, 'not the passphrase'), (e: unknown) => isFirmwardError(e, 'unauthorized') && e.message.includes(file));
    assert.deepEqual(await readFile(file), before);
    assert.equal((await stat(file)).mode, mode);
    assert.deepEqual(await readdir(dir), [file.slice(dir.length + 1)]);
  });
});

/** A key file as this tool wrote them before scrypt: Node's own PKCS#8 export (PBKDF2 at 2,048 iterations). */
async function writeOldKeyFile(dir: string, key: SigningKey): Promise<string> {
  const file = join(dir, `root-${key.keyId.slice(0, 16)}.key.json`);
  const json = {
    firmwardKey: 1, label: 'root', keyid: key.keyId, keytype: 'ed25519', scheme: 'ed25519', keyval: { public: key.publicKeyHex },
    createdAt: '2025-01-02T03:04:05.000Z',
    encryptedPrivateKey: key.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }).toString(),
  };
  await writeFile(file, `${JSON.stringify(json, null, 2)}\n`, { mode: 0o600 });
  return file;
}
