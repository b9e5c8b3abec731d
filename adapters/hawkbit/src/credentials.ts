/**
 * Who may speak for a controller (hawkBit's DDI security: `TargetToken` per device, `GatewayToken`
 * per tenant). Tokens are compared in constant time, and a device's own token is kept only as its
 * SHA-256 digest: the tokens are 32 random bytes, so a plain digest is as strong as a slow hash
 * and costs a poll nothing (a device polls every few minutes, all day).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '@firmward/ports';

/**
 * The narrow port the gateway keeps credentials through. The hub implements it with its store's
 * device secrets (`credentialsInStore`); tests use `MemoryDdiCredentials`. A device with a stored
 * credential is registered; one without is unknown to the hub.
 */
export interface DdiCredentialStore {
  get(deviceId: string): Promise<string | null>;
  set(deviceId: string, credential: string): Promise<void>;
}

/**
 * A stored credential: `ddi-target$<sha256 hex>` for a device with its own TargetToken, or
 * `ddi-gateway` for one registered on first contact through the tenant's GatewayToken. Neither
 * has the `scrypt$…` shape of an MQTT secret, so the MQTT broker never accepts one as a password.
 */
const TARGET_PREFIX = 'ddi-target$';
export const GATEWAY_REGISTERED = 'ddi-gateway';
/** A person revoked the device's access: no TargetToken matches it, and the GatewayToken does not let it in either. */
export const DDI_REVOKED = 'ddi-revoked';

const TOKEN_BYTES = 32;

/** A new random TargetToken (32 bytes, base64url): given to the device once, stored only as a digest. */
export function generateTargetToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export function targetTokenCredential(token: string): string {
  return TARGET_PREFIX + sha256(token).toString('hex');
}

/** Whether `token` is the TargetToken behind `stored`, in constant time. A malformed stored value never matches. */
export function matchesTargetToken(stored: string | null, token: string): boolean {
  const expected = stored?.startsWith(TARGET_PREFIX) === true ? Buffer.from(stored.slice(TARGET_PREFIX.length), 'hex') : null;
  // Hash even without a stored digest, so "no such token" costs as much as "wrong token".
  const given = sha256(token);
  return expected !== null && expected.length === given.length && timingSafeEqual(expected, given);
}

/** Whether `token` is the tenant's GatewayToken, in constant time (digests make the lengths equal). */
export function matchesGatewayToken(configured: string | null, token: string): boolean {
  const given = sha256(token);
  return configured !== null && configured !== '' && timingSafeEqual(sha256(configured), given);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * The hub's implementation of the port: the store's per-device secret, which for an MQTT device
 * holds its scrypt hash and for a DDI device one of the values above.
 *
 * @example
 * const credentials = credentialsInStore(store);
 */
export function credentialsInStore(store: Pick<Store, 'getDeviceSecret' | 'setDeviceSecret'>): DdiCredentialStore {
  return {
    get: (deviceId) => store.getDeviceSecret(deviceId),
    set: (deviceId, credential) => store.setDeviceSecret(deviceId, credential),
  };
}

/** The fake beside the port (STYLE principle 14). */
export class MemoryDdiCredentials implements DdiCredentialStore {
  readonly #values = new Map<string, string>();

  get(deviceId: string): Promise<string | null> {
    return Promise.resolve(this.#values.get(deviceId) ?? null);
  }

  set(deviceId: string, credential: string): Promise<void> {
    this.#values.set(deviceId, credential);
    return Promise.resolve();
  }

  /** Every stored value, for assertions (only digests and markers are ever stored). */
  entries(): [string, string][] {
    return [...this.#values.entries()];
  }
}
