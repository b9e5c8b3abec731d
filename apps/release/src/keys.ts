/**
 * The maker's signing keys: ed25519, private halves encrypted at rest with a passphrase
 * (standard encrypted PKCS#8 PEM, PBES2 with scrypt, so `openssl pkey` can open them too), files
 * mode 0600, written atomically. The public half sits in the clear beside it, so a repository can
 * list a key (root keys kept offline, say) without its passphrase.
 *
 * Key files written before scrypt (Node's own PKCS#8 export: PBES2 with PBKDF2 at OpenSSL's
 * default 2,048 iterations) are still read, and re-encrypted with scrypt as soon as their
 * passphrase is given (same key, same file name, written atomically, mode 0600).
 */
import { createCipheriv, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, sign as cryptoSign, createHash } from 'node:crypto';
import type { KeyObject, ScryptOptions } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalize } from '@tufjs/canonical-json';
import * as asn1js from 'asn1js';
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

/** scrypt's cost (N), block size (r) and parallelisation (p) for a key file's encryption. */
export interface KeyFileKdf {
  N: number;
  r: number;
  p: number;
}

/**
 * What every key file is encrypted with: scrypt, memory-hard, so a stolen key file costs an
 * attacker memory as well as time per guessed passphrase (PBKDF2 at 2,048 iterations cost
 * 0.3 ms a guess on one core, far less on a GPU).
 *
 * Why N=2^14, r=8, p=8 and not N=2^17: OpenSSL 3 (and so Node's createPrivateKey, which decodes
 * through it) refuses to decode PBES2-scrypt needing more than 32 MiB (128·N·r bytes), so
 * N=2^14, r=8 (16 MiB) is the most memory a key file may take and stay openable by `openssl pkey`
 * and by Node without our own decryption code (measured: N=2^15 is refused by both). The work is
 * raised with p instead: eight 16 MiB passes, 0.29 s in Node and 0.36 s in `openssl pkey` on a
 * 2-core build machine — eight times OpenSSL's own `pkcs8 -scrypt` default. N=2^17 in our own
 * envelope would cost an attacker about eight times more memory·time per guess, but no standard
 * tool could open the keys; a long passphrase matters more than that factor.
 */
export const KEY_FILE_KDF: Readonly<KeyFileKdf> = Object.freeze({ N: 2 ** 14, r: 8, p: 8 });

/**
 * For tests and the demo only (keys that protect nothing): the same format at a cost of a few
 * milliseconds, so that suites building hundreds of keys stay fast. Never for a maker's keys.
 */
export const INSECURE_FAST_KDF: Readonly<KeyFileKdf> = Object.freeze({ N: 2 ** 10, r: 8, p: 1 });

/** How a key file's private half is encrypted, read from its PKCS#8 structure. */
export type KeyFileEncryption =
  | { kdf: 'scrypt'; N: number; r: number; p: number }
  | { kdf: 'pbkdf2'; iterations: number }
  | { kdf: 'unknown' };

const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_PBKDF2 = '1.2.840.113549.1.5.12';
const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
const PEM_LABEL = 'ENCRYPTED PRIVATE KEY';

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

export interface WriteKeyFileOptions {
  beforeWrite?: BeforeWrite;
  /** Default KEY_FILE_KDF; INSECURE_FAST_KDF in tests. Also what an old (PBKDF2) file is re-encrypted with when it is opened. */
  kdf?: Readonly<KeyFileKdf>;
}

/**
 * Writes `key` into `dir` as `<label>-<key id prefix>.key.json` (mode 0600, atomically), its
 * private half encrypted with `passphrase`. Returns the file's path.
 *
 * @example
 * const file = await writeKeyFile('/media/usb-1', 'root', generateSigningKey(), passphrase);
 */
export async function writeKeyFile(dir: string, label: string, key: SigningKey, passphrase: string, options: WriteKeyFileOptions = {}): Promise<string> {
  checkPassphrase(passphrase);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file: KeyFile = {
    firmwardKey: 1,
    label,
    keyid: key.keyId,
    ...publicKeyJson(key.publicKeyHex),
    createdAt: new Date().toISOString(),
    encryptedPrivateKey: await encryptPrivateKey(key, passphrase, options.kdf ?? KEY_FILE_KDF),
  };
  const path = join(dir, `${label}-${key.keyId.slice(0, 16)}${KEY_FILE_SUFFIX}`);
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, ...(options.beforeWrite === undefined ? {} : { beforeWrite: options.beforeWrite }) });
  return path;
}

/**
 * The private half as encrypted PKCS#8 PEM, PBES2 with scrypt and AES-256-CBC (RFC 8018, RFC
 * 7914 §7) — what `openssl pkcs8 -topk8 -scrypt` writes. Node can read this form but not write
 * it (its export always uses PBKDF2 at 2,048 iterations), so the structure is built here; the
 * result is then opened again with Node's own decoder before it is returned, so a file that
 * could not be opened is never written (a maker's key is not lost to an encoding slip).
 */
async function encryptPrivateKey(key: SigningKey, passphrase: string, kdf: Readonly<KeyFileKdf>): Promise<string> {
  const salt = randomBytes(16);
  const iv = randomBytes(16);
  const derived = await scryptKey(passphrase, salt, kdf);
  const cipher = createCipheriv('aes-256-cbc', derived, iv);
  const plain = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  derived.fill(0);
  const der = new asn1js.Sequence({
    value: [
      new asn1js.Sequence({
        value: [
          new asn1js.ObjectIdentifier({ value: OID_PBES2 }),
          new asn1js.Sequence({
            value: [
              new asn1js.Sequence({
                value: [
                  new asn1js.ObjectIdentifier({ value: OID_SCRYPT }),
                  new asn1js.Sequence({
                    value: [
                      new asn1js.OctetString({ valueHex: salt }),
                      new asn1js.Integer({ value: kdf.N }),
                      new asn1js.Integer({ value: kdf.r }),
                      new asn1js.Integer({ value: kdf.p }),
                      new asn1js.Integer({ value: 32 }),
                    ],
                  }),
                ],
              }),
              new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: OID_AES256_CBC }), new asn1js.OctetString({ valueHex: iv })] }),
            ],
          }),
        ],
      }),
      new asn1js.OctetString({ valueHex: encrypted }),
    ],
  }).toBER();
  const base64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  const pem = `-----BEGIN ${PEM_LABEL}-----\n${base64}-----END ${PEM_LABEL}-----\n`;
  const back = createPrivateKey({ key: pem, format: 'pem', passphrase });
  if (rawPublicHex(createPublicKey(back)) !== key.publicKeyHex) {
    throw new FirmwardError('internal', 'The key could not be encrypted so that it opens again; nothing was written.');
  }
  return pem;
}

function scryptKey(passphrase: string, salt: Buffer, kdf: Readonly<KeyFileKdf>): Promise<Buffer> {
  // Node's scrypt refuses more than 32 MiB by default; allow what these parameters need.
  const options: ScryptOptions = { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 128 * kdf.N * kdf.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(passphrase, salt, 32, options, (error, derived) => (error ? reject(error) : resolve(derived)));
  });
}

/**
 * How the private half of an encrypted PKCS#8 PEM is protected (which KDF, at what cost):
 * decides whether a key file is re-encrypted, and lets tests inspect what was written.
 *
 * @example
 * keyFileEncryption(file.encryptedPrivateKey); // { kdf: 'scrypt', N: 16384, r: 8, p: 8 }
 */
export function keyFileEncryption(pem: string): KeyFileEncryption {
  const body = /-----BEGIN ENCRYPTED PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END ENCRYPTED PRIVATE KEY-----/.exec(pem)?.[1];
  if (body === undefined) return { kdf: 'unknown' };
  const parsed = asn1js.fromBER(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  if (parsed.offset === -1) return { kdf: 'unknown' };
  const algorithm = children(children(parsed.result)[0]);
  if (oid(algorithm[0]) !== OID_PBES2) return { kdf: 'unknown' };
  const func = children(children(algorithm[1])[0]);
  const params = children(func[1]);
  if (oid(func[0]) === OID_SCRYPT) {
    const [N, r, p] = [integer(params[1]), integer(params[2]), integer(params[3])];
    if (N === null || r === null || p === null) return { kdf: 'unknown' };
    return { kdf: 'scrypt', N, r, p };
  }
  if (oid(func[0]) === OID_PBKDF2) {
    const iterations = integer(params[1]);
    return iterations === null ? { kdf: 'unknown' } : { kdf: 'pbkdf2', iterations };
  }
  return { kdf: 'unknown' };
}

function children(node: asn1js.AsnType | undefined): asn1js.AsnType[] {
  return node instanceof asn1js.Sequence ? node.valueBlock.value : [];
}

function oid(node: asn1js.AsnType | undefined): string | null {
  return node instanceof asn1js.ObjectIdentifier ? node.getValue() : null;
}

function integer(node: asn1js.AsnType | undefined): number | null {
  if (!(node instanceof asn1js.Integer)) return null;
  const value = node.toBigInt();
  return value > 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null;
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

/**
 * Opens a key file with its passphrase. A wrong passphrase is a FirmwardError `unauthorized`, and
 * the file is left as it was. A file from before scrypt (PBKDF2) is re-encrypted with scrypt in
 * place once it has opened: same key, same name, atomically, mode 0600. When that cannot be
 * written (a write-protected stick) the key still signs, with a warning.
 *
 * @example
 * const key = await loadSigningKey('/media/usb-2/root-1a2b3c4d5e6f7a8b.key.json', passphrase);
 */
export async function loadSigningKey(path: string, passphrase: string, options: WriteKeyFileOptions = {}): Promise<SigningKey> {
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
  const key = { keyId: file.keyid, publicKeyHex: file.keyval.public, privateKey };
  if (keyFileEncryption(file.encryptedPrivateKey).kdf !== 'scrypt') await upgradeKeyFile(path, file, key, passphrase, options);
  return key;
}

async function upgradeKeyFile(path: string, file: KeyFile, key: SigningKey, passphrase: string, options: WriteKeyFileOptions): Promise<void> {
  try {
    const upgraded: KeyFile = { ...file, encryptedPrivateKey: await encryptPrivateKey(key, passphrase, options.kdf ?? KEY_FILE_KDF) };
    await writeFileAtomic(path, `${JSON.stringify(upgraded, null, 2)}\n`, { mode: 0o600, ...(options.beforeWrite === undefined ? {} : { beforeWrite: options.beforeWrite }) });
  } catch (error) {
    process.emitWarning(`The key file ${path} is still encrypted the old, weaker way (PBKDF2, 2,048 iterations) and could not be re-encrypted with scrypt: ${error instanceof Error ? error.message : String(error)}. Open it once where it can be written.`, { code: 'FIRMWARD_KEY_FILE_NOT_UPGRADED' });
  }
}

/**
 * Every key file in a set of folders (repeatable `--keys`), found by key id. Private halves are
 * decrypted only when a key is asked for, so a folder of offline root keys costs nothing until used.
 */
export class Keyring {
  readonly dirs: readonly string[];
  /** How key files are written and upgraded (KDF, fault injection). */
  readonly keyFileOptions: WriteKeyFileOptions;
  readonly #passphrase: (() => string) | undefined;
  #index: Map<string, PublicKeyInfo> | undefined;
  readonly #opened = new Map<string, SigningKey>();

  constructor(dirs: readonly string[], passphrase?: string | (() => string), keyFileOptions: WriteKeyFileOptions = {}) {
    this.dirs = dirs;
    this.keyFileOptions = keyFileOptions;
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
    const key = await loadSigningKey(info.file, this.passphrase(), this.keyFileOptions);
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
