/**
 * The maker's signing keys: ed25519, private halves encrypted at rest with a passphrase
 * (Node's own encrypted PKCS#8 PEM, so `openssl pkey` can open them too), files mode 0600, written
 * atomically. The public half sits in the clear beside it, so a repository can list a key (root
 * keys kept offline, say) without its passphrase.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, createHash } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import { writeFileAtomic } from './atomic.ts';
import type { BeforeWrite } from './atomic.ts';

/** How a key is written into TUF metadata (`keys` of root, `delegations.keys` of targets). */
export interface PublicKeyJson {
  keytype: 'ed25519';
  scheme: 'ed25519';
  keyval: { public: string };
}

/** A key that can sign: its id, public half and decrypted private half (kept in memory only). */
export interface SigningKey {
  keyId: string;
  publicKeyHex: string;
  privateKey: KeyObject;
}

/** A key known by its public half only (a key file read without its passphrase). */
export interface PublicKeyInfo {
  keyId: string;
  publicKeyHex: string;
  label: string;
  /** The key file, when the key came from one. */
  file?: string;
  /** Whether that file holds the (encrypted) private half too. */
  hasPrivateKey: boolean;
}

export const KEY_FILE_SUFFIX = '.key.json';
const MIN_PASSPHRASE_CHARS = 8;

const HEX64 = /^[0-9a-f]{64}$/;
const keyFileSchema = z.strictObject({
  firmwardKey: z.literal(1),
  label: z.string().max(100),
  keyid: z.string().regex(HEX64),
  keytype: z.literal('ed25519'),
  scheme: z.literal('ed25519'),
  keyval: z.strictObject({ public: z.string().regex(HEX64) }),
  createdAt: z.string().max(64),
  encryptedPrivateKey: z.string().startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----').max(4096).optional(),
});
type KeyFile = z.output<typeof keyFileSchema>;

export function publicKeyJson(publicKeyHex: string): PublicKeyJson {
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: publicKeyHex } };
}

/** TUF key id: sha256 (hex) of the canonical JSON of the public key entry. */
export function keyIdOf(publicKeyHex: string): string {
  return createHash('sha256').update(canonicalize(publicKeyJson(publicKeyHex))).digest('hex');
}

function rawPublicHex(key: KeyObject): string {
  const { x } = key.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new FirmwardError('internal', 'This key is not an ed25519 key.');
  return Buffer.from(x, 'base64url').toString('hex');
}

/** A new ed25519 key, in memory. */
export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyHex = rawPublicHex(publicKey);
  return { keyId: keyIdOf(publicKeyHex), publicKeyHex, privateKey };
}

/** An ed25519 signature (hex) over `bytes`. */
export function signBytes(key: SigningKey, bytes: Uint8Array): string {
  return cryptoSign(null, bytes, key.privateKey).toString('hex');
}

function checkPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_PASSPHRASE_CHARS) {
    throw new FirmwardError('invalid_input', `The passphrase for the key files must be at least ${MIN_PASSPHRASE_CHARS} characters long.`);
  }
}

/**
 * Writes `key` into `dir` as `<label>-<key id prefix>.key.json` (mode 0600, atomically), its
 * private half encrypted with `passphrase`. Returns the file's path.
 */
export async function writeKeyFile(dir: string, label: string, key: SigningKey, passphrase: string, beforeWrite?: BeforeWrite): Promise<string> {
  checkPassphrase(passphrase);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file: KeyFile = {
    firmwardKey: 1,
    label,
    keyid: key.keyId,
    ...publicKeyJson(key.publicKeyHex),
    createdAt: new Date().toISOString(),
    encryptedPrivateKey: key.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }).toString(),
  };
  const path = join(dir, `${label}-${key.keyId.slice(0, 16)}${KEY_FILE_SUFFIX}`);
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, ...(beforeWrite === undefined ? {} : { beforeWrite }) });
  return path;
}

/** Writes only the public half of `key` (for handing a key to the machine that builds a root). */
export async function writePublicKeyFile(path: string, label: string, key: Pick<SigningKey, 'keyId' | 'publicKeyHex'>): Promise<void> {
  const file: KeyFile = { firmwardKey: 1, label, keyid: key.keyId, ...publicKeyJson(key.publicKeyHex), createdAt: new Date().toISOString() };
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o644 });
}

async function readKeyFile(path: string): Promise<KeyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new FirmwardError('not_found', `The key file ${path} cannot be read.`, { cause: error });
  }
  let parsed;
  try {
    parsed = keyFileSchema.safeParse(JSON.parse(text));
  } catch (error) {
    throw new FirmwardError('invalid_input', `${path} is not a Firmward key file.`, { cause: error });
  }
  if (!parsed.success) throw new FirmwardError('invalid_input', `${path} is not a Firmward key file.`, { cause: parsed.error });
  // Nothing downstream checks that a key id matches its key (tuf-notes): check it here.
  if (keyIdOf(parsed.data.keyval.public) !== parsed.data.keyid) {
    throw new FirmwardError('metadata_invalid', `The key file ${path} is damaged: its key id does not match its key.`);
  }
  return parsed.data;
}

/** The public half of a key file (no passphrase needed). */
export async function readPublicKey(path: string): Promise<PublicKeyInfo> {
  const file = await readKeyFile(path);
  return { keyId: file.keyid, publicKeyHex: file.keyval.public, label: file.label, file: path, hasPrivateKey: file.encryptedPrivateKey !== undefined };
}

/** Opens a key file with its passphrase. A wrong passphrase is a FirmwardError `unauthorized`. */
export async function loadSigningKey(path: string, passphrase: string): Promise<SigningKey> {
  const file = await readKeyFile(path);
  if (file.encryptedPrivateKey === undefined) {
    throw new FirmwardError('not_found', `The key file ${path} holds only a public key; sign on the machine that holds its private key.`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: file.encryptedPrivateKey, format: 'pem', passphrase });
  } catch (error) {
    throw new FirmwardError('unauthorized', `The passphrase does not open the key file ${path}.`, { cause: error });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519' || rawPublicHex(createPublicKey(privateKey)) !== file.keyval.public) {
    throw new FirmwardError('metadata_invalid', `The key file ${path} is damaged: its private key does not match its public key.`);
  }
  return { keyId: file.keyid, publicKeyHex: file.keyval.public, privateKey };
}

/**
 * Every key file in a set of folders (repeatable `--keys`), found by key id. Private halves are
 * decrypted only when a key is asked for, so a folder of offline root keys costs nothing until used.
 */
export class Keyring {
  readonly dirs: readonly string[];
  readonly #passphrase: (() => string) | undefined;
  #index: Map<string, PublicKeyInfo> | undefined;
  readonly #opened = new Map<string, SigningKey>();

  constructor(dirs: readonly string[], passphrase?: string | (() => string)) {
    this.dirs = dirs;
    this.#passphrase = typeof passphrase === 'string' ? () => passphrase : passphrase;
  }

  passphrase(): string {
    if (this.#passphrase === undefined) {
      throw new FirmwardError('unauthorized', 'A signing key is needed: set FIRMWARD_RELEASE_PASSPHRASE or pass --passphrase-file.');
    }
    return this.#passphrase();
  }

  /** Key files found in the folders, by key id (the first folder wins for a key found twice). */
  async index(): Promise<ReadonlyMap<string, PublicKeyInfo>> {
    if (this.#index !== undefined) return this.#index;
    const index = new Map<string, PublicKeyInfo>();
    for (const dir of this.dirs) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      for (const name of names.filter((n) => n.endsWith(KEY_FILE_SUFFIX)).sort()) {
        const info = await readPublicKey(join(dir, name));
        const known = index.get(info.keyId);
        if (known === undefined || (!known.hasPrivateKey && info.hasPrivateKey)) index.set(info.keyId, info);
      }
    }
    this.#index = index;
    return index;
  }

  /** Adds a key this process just created (and wrote) without re-reading the folders. */
  remember(key: SigningKey, info: PublicKeyInfo): void {
    this.#opened.set(key.keyId, key);
    this.#index?.set(key.keyId, info);
  }

  /** The signing key for `keyId`, or undefined when no folder holds its private half. */
  async signer(keyId: string): Promise<SigningKey | undefined> {
    const opened = this.#opened.get(keyId);
    if (opened !== undefined) return opened;
    const info = (await this.index()).get(keyId);
    if (info?.file === undefined || !info.hasPrivateKey) return undefined;
    const key = await loadSigningKey(info.file, this.passphrase());
    this.#opened.set(keyId, key);
    return key;
  }

  /** The signing keys present for these key ids, in the given order. */
  async signers(keyIds: readonly string[]): Promise<SigningKey[]> {
    const keys: SigningKey[] = [];
    for (const keyId of keyIds) {
      const key = await this.signer(keyId);
      if (key !== undefined) keys.push(key);
    }
    return keys;
  }
}
