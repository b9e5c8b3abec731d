/**
 * The dashboard's sign-in: one owner account, password hashed with scrypt, sessions with their own
 * CSRF token. Both live in small files in the data folder (mode 0600, written atomically) so a
 * restart keeps the owner signed in; a session file holds only SHA-256 digests of session ids, so
 * reading it does not let anybody sign in. The device protocols have their own credentials; this
 * only guards what a person sees and does (DESIGN: only the owner acts on the devices).
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { LimitFunction } from 'p-limit';
import { FirmwardError } from '@firmward/core';
import { AttemptLimiter } from './attempt-limiter.ts';
import { writeSecretFile } from './secret-file.ts';

export const OWNER_ACCOUNT_FILE = 'dashboard-owner.json';
export const SESSIONS_FILE = 'dashboard-sessions.json';

/** scrypt cost: N=2^15 takes ~50 ms here, slow for guessing, quick for one person signing in. */
const SCRYPT = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const KEY_LENGTH = 64;
/**
 * Password hashes computed at once, and sign-ins that may wait for one. Each takes 32 MiB and a
 * thread of libuv's pool for ~50 ms: without a bound, wrong passwords from forty addresses at once
 * would want 1.3 GiB and every thread (per address the attempt limit already holds them to a few).
 */
const MAX_CONCURRENT_HASHES = 2;
const MAX_WAITING_HASHES = 16;
const MIN_PASSWORD_LENGTH = 10;
const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;

export interface DashboardSession {
  username: string;
  /** Sent back by the page in X-CSRF-Token on every write (double submit, bound to the session). */
  csrfToken: string;
  expiresAt: number;
}

interface StoredAccount {
  username: string;
  salt: string;
  hash: string;
  createdAt: number;
}

interface StoredSession extends DashboardSession {
  /** SHA-256 of the session id, hex. */
  digest: string;
}

export interface DashboardAuthOptions {
  dataDir: string;
  /** Real time, not the demo clock: sessions expire in the person's world. */
  now?: () => number;
  sessionTtlMs?: number;
  /** Wrong passwords allowed per address within `attemptWindowMs` before sign-in waits. */
  maxFailedAttempts?: number;
  attemptWindowMs?: number;
  /** The slow hash (scrypt); tests count the calls through it. */
  hash?: (password: string, salt: Buffer) => Promise<Buffer>;
}

function hashPassword(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_LENGTH, SCRYPT, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

const digestOf = (sessionId: string): string => createHash('sha256').update(sessionId).digest('hex');

/**
 * @example
 * const auth = new DashboardAuth({ dataDir: config.dataDir });
 * if (!auth.hasAccount()) await auth.createOwner('alex', 'a long passphrase');
 * const { sessionId, session } = auth.startSession('alex');
 */
export class DashboardAuth {
  readonly #dir: string;
  readonly #now: () => number;
  readonly #ttl: number;
  /** Wrong passwords per address, counted before the slow hash so parallel guesses count one by one. */
  readonly #attempts: AttemptLimiter;
  /** Wrong owner tokens per address on the first-run form, counted before the compare. */
  readonly #ownerTokenAttempts: AttemptLimiter;
  /** At most MAX_CONCURRENT_HASHES password hashes at once, whatever the number of addresses. */
  readonly #hashing: LimitFunction = pLimit(MAX_CONCURRENT_HASHES);
  readonly #hash: (password: string, salt: Buffer) => Promise<Buffer>;
  #sessions: StoredSession[];

  constructor(o: DashboardAuthOptions) {
    this.#dir = o.dataDir;
    this.#now = o.now ?? Date.now;
    this.#ttl = o.sessionTtlMs ?? 30 * 24 * 3600_000;
    this.#attempts = new AttemptLimiter({
      maxFailures: o.maxFailedAttempts ?? 5, windowMs: o.attemptWindowMs ?? 15 * 60_000, now: this.#now,
      message: 'Too many wrong passwords; wait a quarter of an hour and try again.',
    });
    this.#ownerTokenAttempts = new AttemptLimiter({
      maxFailures: o.maxFailedAttempts ?? 5, windowMs: o.attemptWindowMs ?? 15 * 60_000, now: this.#now,
      message: 'Too many wrong owner tokens; wait a quarter of an hour and try again.',
    });
    this.#hash = o.hash ?? hashPassword;
    const stored = this.#read<StoredSession[]>(SESSIONS_FILE);
    this.#sessions = Array.isArray(stored) ? stored.filter((s) => s.expiresAt > this.#now()) : [];
  }

  hasAccount(): boolean {
    return this.#account() !== null;
  }

  /** First run only: a second owner account is refused, so nobody can take over a claimed hub. */
  async createOwner(username: string, password: string): Promise<void> {
    if (this.hasAccount()) throw new FirmwardError('conflict', 'This hub already has an owner account; sign in with it.');
    if (!USERNAME.test(username)) {
      throw new FirmwardError('invalid_input', 'The user name may use letters, digits and . _ @ - (up to 64 characters).');
    }
    if (password.length < MIN_PASSWORD_LENGTH || password.length > 1024) {
      throw new FirmwardError('invalid_input', `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
    }
    const salt = randomBytes(16);
    const hash = await this.#hashing(() => this.#hash(password, salt));
    this.#write(OWNER_ACCOUNT_FILE, { username, salt: salt.toString('base64'), hash: hash.toString('base64'), createdAt: this.#now() } satisfies StoredAccount);
  }

  /**
   * Checks a password; after too many wrong ones from `from` the check itself is refused for a
   * while (minimal rate limit: an online guesser gets a handful of tries per quarter hour).
   */
  async verify(username: string, password: string, from: string): Promise<boolean> {
    // Counted now, before the hash is awaited: forty guesses sent at once are forty attempts.
    const attempt = this.#attempts.begin(from);
    if (this.#hashing.pendingCount >= MAX_WAITING_HASHES) {
      // Nothing was checked, so this try does not count against the address.
      attempt.succeeded();
      throw new FirmwardError('too_many_attempts', 'The hub is busy checking other sign-ins; try again in a few seconds.', { detail: { retryAfterSeconds: 5 } });
    }
    const account = this.#account();
    // Hash even without an account or with the wrong name, so timing does not tell which part was wrong.
    const salt = account ? Buffer.from(account.salt, 'base64') : randomBytes(16);
    const key = await this.#hashing(() => this.#hash(password.slice(0, 1024), salt));
    const ok = account !== null && account.username === username && timingSafeEqual(key, Buffer.from(account.hash, 'base64'));
    if (ok) this.#attempts.clear(from);
    return ok;
  }

  /**
   * Counts one try at the owner token on the first-run form from `from`, before the token is
   * compared (the token is also the API's bearer token: a wrong one is a guess at it). Throws
   * too_many_attempts when the address has had its tries; call `succeeded()` when it was right.
   * The bearer check on /api counts nothing, so a locked-out address does not lock out the CLI.
   *
   * @example
   * const attempt = auth.ownerTokenAttempt(remoteAddress(c));
   * if (equalSecrets(presented, ownerToken)) attempt.succeeded();
   */
  ownerTokenAttempt(from: string): { succeeded(): void } {
    return this.#ownerTokenAttempts.begin(from);
  }

  startSession(username: string): { sessionId: string; session: DashboardSession } {
    const sessionId = randomBytes(32).toString('base64url');
    const session: DashboardSession = { username, csrfToken: randomBytes(32).toString('base64url'), expiresAt: this.#now() + this.#ttl };
    this.#sessions = [...this.#live(), { ...session, digest: digestOf(sessionId) }];
    this.#write(SESSIONS_FILE, this.#sessions);
    return { sessionId, session };
  }

  session(sessionId: string): DashboardSession | null {
    const digest = digestOf(sessionId);
    const found = this.#live().find((s) => s.digest === digest);
    return found ? { username: found.username, csrfToken: found.csrfToken, expiresAt: found.expiresAt } : null;
  }

  endSession(sessionId: string): void {
    const digest = digestOf(sessionId);
    this.#sessions = this.#live().filter((s) => s.digest !== digest);
    this.#write(SESSIONS_FILE, this.#sessions);
  }

  #live(): StoredSession[] {
    const now = this.#now();
    return this.#sessions.filter((s) => s.expiresAt > now);
  }

  #account(): StoredAccount | null {
    const a = this.#read<StoredAccount>(OWNER_ACCOUNT_FILE);
    return a !== null && typeof a.username === 'string' && typeof a.hash === 'string' && typeof a.salt === 'string' ? a : null;
  }

  #read<T>(name: string): T | null {
    const file = join(this.#dir, name);
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as T;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new FirmwardError('config_invalid', `The hub cannot read ${file}; check the data folder's permissions or remove the file.`, { cause: error });
    }
  }

  /** Atomic and private (secret-file.ts): a crash leaves the old file or the new one, never half. */
  #write(name: string, value: unknown): void {
    const file = join(this.#dir, name);
    try {
      writeSecretFile(file, JSON.stringify(value));
    } catch (error) {
      throw new FirmwardError('config_invalid', `The hub cannot write ${file}; check that the data folder is writable.`, { cause: error });
    }
  }
}
