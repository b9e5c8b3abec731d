/**
 * The embedded broker's login check over stored hashes, built so that strangers' wrong logins
 * cannot take a real device's login hostage (security audit, issue 14, finding 5: 80 concurrent
 * wrong logins made a device's login take 5 s):
 *  - an unknown user name is refused without any hashing;
 *  - the slow hash runs at most `maxPerSource` at once per source address and `maxConcurrent` at
 *    once in all; the rest wait their turn in line, so one source's flood waits behind itself;
 *  - a login whose connection closed while it waited is not hashed at all;
 *  - a successful check is remembered for the stored credential it matched, so a device that
 *    reconnects does not pay the slow hash again.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import pLimit from 'p-limit';
import type { LimitFunction } from 'p-limit';
import type { CredentialCheck, LoginSource, Principal } from './acl.ts';
import { verifySecret } from './secrets.ts';

/** What a credential lookup returns for a known user name. */
export interface StoredCredential {
  principal: Principal;
  /** From hashSecret or hashDeviceSecret. */
  secretHash: string;
}

export interface CredentialCheckOptions {
  /** Slow checks under way at once for one source address (2); its other logins wait in line. */
  maxPerSource?: number;
  /**
   * Slow checks under way at once in all (3): one more than a source's share, so one flooding
   * source never fills it and a device elsewhere finds a slot at once. They run on libuv's thread
   * pool (4 threads unless UV_THREADPOOL_SIZE says otherwise), which file I/O (images, the data
   * folder) and the dashboard's password hash share: one thread stays free for them whatever
   * arrives.
   */
  maxConcurrent?: number;
  /** Successful checks remembered, one per user name (10,000); the oldest are forgotten first. */
  maxRemembered?: number;
  /** The slow check; verifySecret unless a test counts the calls. */
  verify?: (secret: string, stored: string) => Promise<boolean>;
}

/**
 * At most `perSource` checks at once per source and `all` in all. Each line is first come, first
 * served, and a source puts at most `perSource` logins into the shared line at a time, so a real
 * device waits behind at most that many of a flooding source's checks, not behind its whole flood.
 */
class VerificationGate {
  readonly #all: LimitFunction;
  readonly #perSource: number;
  /** Per source: its line, and how many of its logins are in it or under way (forgotten at 0). */
  readonly #sources = new Map<string, { limit: LimitFunction; users: number }>();

  constructor(perSource: number, all: number) {
    this.#perSource = perSource;
    this.#all = pLimit(all);
  }

  run(address: string, signal: AbortSignal | undefined, check: () => Promise<boolean>): Promise<boolean> {
    let source = this.#sources.get(address);
    if (source === undefined) {
      source = { limit: pLimit(this.#perSource), users: 0 };
      this.#sources.set(address, source);
    }
    const s = source;
    s.users += 1;
    // A peer that hung up while it waited gets no answer anyway: its turn costs nothing.
    const gone = () => signal?.aborted === true;
    return s.limit(() => (gone() ? false : this.#all(() => (gone() ? false : check())))).finally(() => {
      s.users -= 1;
      if (s.users === 0) this.#sources.delete(address);
    });
  }
}

/**
 * Successful checks, as an HMAC (keyed by a random key of this process) over the stored hash the
 * secret matched and the secret. A device presenting the same secret against the same stored
 * credential is let in without the slow hash. Why this is safe:
 *  - every login still looks its credential up in the store first: a revoked device has none
 *    and is refused before this is consulted;
 *  - a rotated credential has a new stored hash (new salt), so the old entry no longer matches
 *    anything and the next login pays the slow hash once;
 *  - only a check that succeeded is remembered, so strangers cannot fill it, and a wrong secret
 *    neither matches nor removes the real device's entry;
 *  - the key never leaves this process's memory; whoever can read that memory sees the secrets
 *    of logins in flight anyway, and device secrets are 32 random bytes, out of reach of
 *    guessing against the HMAC as against the stored hash;
 *  - a hit answers faster than the slow hash, which tells the peer only that its secret was
 *    right: the CONNACK says so too.
 */
class RememberedLogins {
  readonly #key = randomBytes(32);
  readonly #max: number;
  readonly #macs = new Map<string, Buffer>();

  constructor(max: number) {
    this.#max = max;
  }

  has(username: string, secretHash: string, secret: string): boolean {
    const known = this.#macs.get(username);
    return known !== undefined && timingSafeEqual(known, this.#mac(secretHash, secret));
  }

  remember(username: string, secretHash: string, secret: string): void {
    this.#macs.delete(username);
    this.#macs.set(username, this.#mac(secretHash, secret));
    while (this.#macs.size > this.#max) {
      const oldest = this.#macs.keys().next().value;
      if (oldest === undefined) break;
      this.#macs.delete(oldest);
    }
  }

  #mac(secretHash: string, secret: string): Buffer {
    // A stored hash is base64, digits and "$", never a NUL: "hash NUL secret" is unambiguous.
    return createHmac('sha256', this.#key).update(secretHash).update('\u0000').update(secret).digest();
  }
}

/**
 * A CredentialCheck over stored hashes.
 *
 * @example
 * const credentials = credentialCheck(async (username) =>
 *   username === 'hub' ? { principal: { role: 'hub' }, secretHash: hubHash } : null);
 * await credentials.authenticate('plug-1', secret, { address: '10.0.0.5' }); // { role: 'device', … } or null
 */
export function credentialCheck(
  lookup: (username: string) => Promise<StoredCredential | null> | StoredCredential | null,
  o: CredentialCheckOptions = {},
): CredentialCheck {
  const verify = o.verify ?? verifySecret;
  const gate = new VerificationGate(o.maxPerSource ?? 2, o.maxConcurrent ?? 3);
  const remembered = new RememberedLogins(o.maxRemembered ?? 10_000);
  return {
    async authenticate(username: string, password: string, source?: LoginSource): Promise<Principal | null> {
      const found = await lookup(username);
      // An unknown user name is refused without hashing. Hashing anyway would hide, by timing
      // alone (the answer is the same CONNACK 5 either way), whether a device id has a
      // credential on this hub. That is not worth the CPU: device ids are names, not secrets —
      // a device's client id and every topic it uses carry it, the CLI and the dashboard show
      // it — and knowing a real one gets a guesser nowhere, since the secret beside it is 32
      // random bytes (generateDeviceSecret). The slow hash per unknown name was exactly what a
      // flood of made-up names bought for free; now every slow hash needs a real device id and
      // waits its turn in the gate.
      if (found === null) return null;
      if (remembered.has(username, found.secretHash, password)) return found.principal;
      const ok = await gate.run(source?.address ?? 'unknown', source?.signal, () => verify(password, found.secretHash));
      if (!ok) return null;
      remembered.remember(username, found.secretHash, password);
      return found.principal;
    },
  };
}
