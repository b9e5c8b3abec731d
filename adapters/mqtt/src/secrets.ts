/**
 * Per-device MQTT credentials (DESIGN.md, Scale-out: "per-device credentials and topic ACLs").
 * The hub stores only scrypt hashes, so a copied database does not let anyone speak as a device;
 * secrets are compared in constant time so a login attempt learns nothing from how long it took.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { FirmwardError } from '@firmward/core';
import type { CredentialCheck, Principal } from './acl.ts';

const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** scrypt cost: about 16 MiB and a few tens of milliseconds per login on a small hub. */
const DEFAULT_COST = { n: 16_384, r: 8, p: 1 } as const;
/** Bounds for parameters read back from storage, so a damaged record cannot exhaust memory. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

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
 * Whether `secret` matches `stored` (from hashSecret). A malformed stored value never matches.
 * Never throws for a wrong or malformed input: a refusal is just `false`.
 */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parsed = parseStored(stored);
  if (parsed === null) return false;
  const key = await derive(secret, parsed.salt, parsed.n, parsed.r, parsed.p);
  return timingSafeEqual(key, parsed.key);
}

/** What a credential lookup returns for a known user name. */
export interface StoredCredential {
  principal: Principal;
  /** From hashSecret. */
  secretHash: string;
}

let dummyHash: Promise<string> | null = null;

/**
 * A CredentialCheck over stored hashes. Unknown user names still cost one scrypt round, so a
 * login attempt cannot tell "no such device" from "wrong secret" by its timing.
 *
 * @example
 * const credentials = credentialCheck(async (username) =>
 *   username === 'hub' ? { principal: { role: 'hub' }, secretHash: hubHash } : null);
 */
export function credentialCheck(lookup: (username: string) => Promise<StoredCredential | null> | StoredCredential | null): CredentialCheck {
  return {
    async authenticate(username: string, password: string): Promise<Principal | null> {
      const found = await lookup(username);
      if (found === null) {
        dummyHash ??= hashSecret('firmward-no-such-user');
        await verifySecret(password, await dummyHash);
        return null;
      }
      return (await verifySecret(password, found.secretHash)) ? found.principal : null;
    },
  };
}
