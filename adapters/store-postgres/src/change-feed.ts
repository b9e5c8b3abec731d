/**
 * The after-commit bus across hub instances that share one PostgreSQL database (the Notifier port):
 * what one instance commits, the others hear within milliseconds — a device added through one
 * instance's API is planned and its home looked at by whichever instance holds it, and every
 * instance's dashboard stream shows every line — instead of waiting for their safety net
 * (EngineConfig.lookAtLeastEverySeconds).
 *
 * LISTEN/NOTIFY on one connection of its own. Changes are sent in batches (one NOTIFY per 20 ms at
 * most, payloads under PostgreSQL's 8,000-byte limit) with the sender's instance id, so a sender
 * does not hear itself twice. Best effort, like the port: a lost connection loses what was said
 * meanwhile, so after a reconnect every local listener is told that anything may have changed
 * (a `fleet` change). A payload that is not ours is logged and ignored.
 */
import type { CommittedChange, JobRef, Logger, Notifier } from '@firmward/ports';
import { LocalNotifier } from '@firmward/ports';
import { Client, escapeIdentifier } from 'pg';

export interface PostgresChangeFeedOptions {
  /** The hub's database (PostgresStoreOptions.url). */
  url: string;
  /** The store's schema, when it has one of its own: instances on other schemas are other hubs. */
  schema?: string;
  /** This instance's id (EngineConfig.instanceId): its own changes are not delivered back to it. */
  instanceId: string;
  log: Logger;
  /** Waits between reconnection attempts; default 1 s, doubling up to 30 s. */
  reconnectMs?: number;
}

/** NOTIFY payloads must stay under 8,000 bytes; the envelope takes the rest. */
const MAX_PAYLOAD_BYTES = 7_500;
const FLUSH_MS = 20;
const MAX_RECONNECT_MS = 30_000;
const KINDS = new Set(['history', 'job', 'device', 'home', 'fleet']);

interface Envelope {
  from: string;
  changes: CommittedChange[];
}

export class PostgresChangeFeed implements Notifier {
  readonly #o: PostgresChangeFeedOptions;
  readonly #channel: string;
  readonly #local: LocalNotifier;
  #client: Client | null = null;
  #pending: string[] = [];
  #flushTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #reconnectMs: number;

  private constructor(o: PostgresChangeFeedOptions) {
    this.#o = o;
    this.#channel = o.schema === undefined ? 'firmward_changes' : `firmward_changes_${o.schema}`;
    this.#local = new LocalNotifier(o.log);
    this.#reconnectMs = o.reconnectMs ?? 1000;
  }

  /** Connects and listens; throws when the database cannot be reached (as the store would). */
  static async open(o: PostgresChangeFeedOptions): Promise<PostgresChangeFeed> {
    const feed = new PostgresChangeFeed(o);
    await feed.#connect();
    return feed;
  }

  get channel(): string {
    return this.#channel;
  }

  committed(change: CommittedChange): void {
    this.#local.committed(change);
    if (this.#closed) return;
    this.#pending.push(JSON.stringify(wireForm(change)));
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = null;
      this.#flushing = this.#flushing.then(() => this.#flush());
    }, FLUSH_MS);
  }

  subscribe(listener: (change: CommittedChange) => void): () => void {
    return this.#local.subscribe(listener);
  }

  /** Sends what is still pending, then stops listening. */
  async close(): Promise<void> {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
      this.#flushing = this.#flushing.then(() => this.#flush());
    }
    await this.#flushing;
    this.#closed = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new Client({ connectionString: this.#o.url, application_name: 'firmward-hub-changes' });
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#heard(message.payload ?? '');
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, null));
    await client.connect();
    await client.query(`LISTEN ${escapeIdentifier(this.#channel)}`);
    this.#client = client;
  }

  #lost(client: Client, error: Error | null): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = null;
    this.#o.log.warn('the change feed lost its database connection; reconnecting', { error: error?.message ?? 'connection ended' });
    client.end().catch(() => undefined);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#reconnectTimer !== null) return;
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#connect().then(() => {
        this.#reconnectMs = this.#o.reconnectMs ?? 1000;
        this.#o.log.info('the change feed is back');
        // What other instances said meanwhile is lost: anything may have changed.
        this.#local.committed({ kind: 'fleet', why: 'the change feed reconnected' });
      }, (error: unknown) => {
        this.#o.log.warn('the change feed could not reconnect yet', { error: error instanceof Error ? error.message : String(error) });
        this.#reconnectMs = Math.min(MAX_RECONNECT_MS, this.#reconnectMs * 2);
        this.#scheduleReconnect();
      });
    }, this.#reconnectMs);
    this.#reconnectTimer.unref();
  }

  /** One NOTIFY per envelope of at most MAX_PAYLOAD_BYTES; a single change larger than that is not sent. */
  async #flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    const client = this.#client;
    if (client === null || pending.length === 0) return;
    const head = `{"from":${JSON.stringify(this.#o.instanceId)},"changes":[`;
    let batch: string[] = [];
    let size = head.length + 2;
    const send = async () => {
      if (batch.length === 0) return;
      const payload = `${head}${batch.join(',')}]}`;
      batch = [];
      size = head.length + 2;
      await client.query('SELECT pg_notify($1, $2)', [this.#channel, payload]).catch((error: unknown) => {
        this.#o.log.warn('could not tell the other hub instances what changed', { error: error instanceof Error ? error.message : String(error) });
      });
    };
    for (const change of pending) {
      const bytes = Buffer.byteLength(change) + 1;
      if (bytes + head.length + 2 > MAX_PAYLOAD_BYTES) {
        this.#o.log.warn('a change too large for the change feed was not sent to the other instances', { bytes });
        continue;
      }
      if (size + bytes > MAX_PAYLOAD_BYTES) await send();
      batch.push(change);
      size += bytes;
    }
    await send();
  }

  #heard(payload: string): void {
    const envelope = parseEnvelope(payload);
    if (envelope === null) {
      this.#o.log.warn('ignored a change feed message that is not a hub\'s', { bytes: Buffer.byteLength(payload) });
      return;
    }
    if (envelope.from === this.#o.instanceId) return;
    for (const change of envelope.changes) this.#local.committed({ ...change, from: envelope.from });
  }
}

/** What crosses to the other instances: a job by its reference only (the rest is in the store). */
function wireForm(change: CommittedChange): CommittedChange {
  if (change.kind !== 'job') return change;
  const { id, homeId, deviceId, releaseId, state } = change.job;
  const job: JobRef = { id, homeId, deviceId, releaseId, state };
  return { kind: 'job', job, ended: change.ended };
}

/** An envelope as this class sends it, or null; each change is checked for the fields its listeners read. */
function parseEnvelope(payload: string): Envelope | null {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isObject(value) || typeof value['from'] !== 'string' || !Array.isArray(value['changes'])) return null;
  const changes: CommittedChange[] = [];
  for (const c of value['changes'] as unknown[]) {
    if (!isChange(c)) return null;
    changes.push(c);
  }
  return { from: value['from'], changes };
}

function isChange(c: unknown): c is CommittedChange {
  if (!isObject(c) || typeof c['kind'] !== 'string' || !KINDS.has(c['kind'])) return false;
  switch (c['kind']) {
    case 'job': {
      const job = c['job'];
      return isObject(job) && typeof c['ended'] === 'boolean' && ['id', 'homeId', 'deviceId', 'releaseId', 'state'].every((k) => typeof job[k] === 'string');
    }
    case 'device':
      return typeof c['deviceId'] === 'string' && typeof c['homeId'] === 'string';
    case 'home':
      return typeof c['homeId'] === 'string';
    case 'fleet':
      return typeof c['why'] === 'string';
    case 'history': {
      const e = c['event'];
      return isObject(e) && typeof e['at'] === 'number' && typeof e['kind'] === 'string' && typeof e['message'] === 'string' && typeof e['code'] === 'string';
    }
    default:
      return false;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
