/**
 * Per-device MQTT credentials (DESIGN.md, Scale-out: "per-device credentials and topic ACLs").
 * The hub stores only hashes (scrypt, or Mosquitto 2's PBKDF2 form so that one stored credential
 * works for the embedded broker and an external Mosquitto alike), so a copied database does not
 * let anyone speak as a device; secrets are compared in constant time so a login attempt learns
 * nothing from how long it took. The broker's login check over these hashes is credential-check.ts.
 */
import { pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { FirmwardError } from '@firmward/core';

const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** scrypt cost: about 16 MiB and a few tens of milliseconds per login on a small hub. */
const DEFAULT_COST = { n: 16_384, r: 8, p: 1 } as const;
/** Bounds for parameters read back from storage, so a damaged record cannot exhaust memory. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

/**
 * Mosquitto 2's password hash (`mosquitto_passwd -H sha512-pbkdf2`, its default):
 * `$7$<iterations>$<salt>$<key>`, PBKDF2-HMAC-SHA512, 12 salt bytes, 64 key bytes, both standard
 * base64 with padding.
 */
const MOSQUITTO_PBKDF2 = { prefix: '$7$', saltBytes: 12, keyBytes: 64, digest: 'sha512' } as const;
/**
 * 1000 PBKDF2 iterations are enough for a device secret: it is 32 random bytes
 * (generateDeviceSecret), so guessing it is out of reach whatever each guess costs, and a slow hash
 * would only slow down the broker, which hashes at every CONNECT (and Mosquitto again for every
 * connected client when it reloads its password file; see the same reasoning for DDI tokens in
 * adapters/hawkbit/src/credentials.ts). A secret a person chose needs far more.
 */
export const DEVICE_SECRET_ITERATIONS = 1000;
/** Bound for iterations read back from storage, so a damaged record cannot stall a login. */
const MAX_PBKDF2_ITERATIONS = 1_000_000;
/** Strict standard base64 with padding, as mosquitto_passwd writes it. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function derive(secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, KEY_BYTES, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => {
      if (err) reject(new FirmwardError('internal', 'A device secret could not be checked.', { cause: err }));
      else resolve(key);
    });
  });
}

/**
 * A new random secret for one device: 32 random bytes, base64url (43 characters).
 *
 * @example
 * const secret = generateDeviceSecret(); // give it to the device once; store hashSecret(secret)
 */
export function generateDeviceSecret(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The stored form of a secret: `scrypt$N$r$p$salt$hash` (salt and hash base64url).
 *
 * @example
 * const stored = await hashSecret(secret);
 * await verifySecret(secret, stored); // true
 */
export async function hashSecret(secret: string, cost: { n: number; r: number; p: number } = DEFAULT_COST): Promise<string> {
  if (secret.length === 0) throw new FirmwardError('invalid_input', 'A device secret cannot be empty.');
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(secret, salt, cost.n, cost.r, cost.p);
  return ['scrypt', cost.n, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

function derivePbkdf2(secret: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(secret, salt, iterations, MOSQUITTO_PBKDF2.keyBytes, MOSQUITTO_PBKDF2.digest, (err, key) => {
      if (err) reject(new FirmwardError('internal', 'A device secret could not be hashed.', { cause: err }));
      else resolve(key);
    });
  });
}

/**
 * The stored form of a secret that Mosquitto 2 reads too: `$7$<iterations>$<salt>$<key>`, the line
 * `mosquitto_passwd` writes after `user:`. verifySecret accepts it, so the embedded broker and an
 * external Mosquitto check the same stored credential.
 *
 * @example
 * const stored = await hashDeviceSecret(generateDeviceSecret()); // '$7$1000$…$…'
 * await store.setDeviceSecret(deviceId, stored);
 */
export async function hashDeviceSecret(secret: string, iterations: number = DEVICE_SECRET_ITERATIONS): Promise<string> {
  if (secret.length === 0) throw new FirmwardError('invalid_input', 'A device secret cannot be empty.');
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new FirmwardError('invalid_input', `The PBKDF2 iterations must be a whole number from 1 to ${MAX_PBKDF2_ITERATIONS}.`);
  }
  const salt = randomBytes(MOSQUITTO_PBKDF2.saltBytes);
  const key = await derivePbkdf2(secret, salt, iterations);
  return `${MOSQUITTO_PBKDF2.prefix}${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

function parsePbkdf2(stored: string): { iterations: number; salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== '7') return null;
  const [iterationsText, saltText, keyText] = [parts[2]!, parts[3]!, parts[4]!];
  if (!/^[1-9][0-9]{0,6}$/.test(iterationsText)) return null;
  const iterations = Number(iterationsText);
  if (iterations > MAX_PBKDF2_ITERATIONS) return null;
  if (saltText === '' || !BASE64.test(saltText) || !BASE64.test(keyText)) return null;
  const salt = Buffer.from(saltText, 'base64');
  const key = Buffer.from(keyText, 'base64');
  if (key.length !== MOSQUITTO_PBKDF2.keyBytes) return null;
  return { iterations, salt, key };
}

function parseStored(stored: string): { n: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [n, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const isPowerOfTwo = Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0;
  if (!isPowerOfTwo || n > MAX_N || !Number.isInteger(r) || r < 1 || r > MAX_R || !Number.isInteger(p) || p < 1 || p > MAX_P) return null;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const key = Buffer.from(parts[5]!, 'base64url');
  if (salt.length === 0 || key.length !== KEY_BYTES) return null;
  return { n, r, p, salt, key };
}

/**
 * Whether `secret` matches `stored` (from hashSecret or hashDeviceSecret, or a `$7$` line from
 * mosquitto_passwd). A malformed stored value never matches. Never throws: a refusal, and a hash
 * that could not be computed, are just `false` (a login check fails closed).
 *
 * @example
 * await verifySecret(secret, await hashDeviceSecret(secret)); // true
 */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  try {
    if (stored.startsWith(MOSQUITTO_PBKDF2.prefix)) {
      const pbkdf2Parsed = parsePbkdf2(stored);
      if (pbkdf2Parsed === null) return false;
      return timingSafeEqual(await derivePbkdf2(secret, pbkdf2Parsed.salt, pbkdf2Parsed.iterations), pbkdf2Parsed.key);
    }
    const parsed = parseStored(stored);
    if (parsed === null) return false;
    const key = await derive(secret, parsed.salt, parsed.n, parsed.r, parsed.p);
    return timingSafeEqual(key, parsed.key);
  } catch {
    return false;
  }
}
