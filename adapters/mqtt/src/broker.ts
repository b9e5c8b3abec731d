/**
 * The embedded MQTT broker of the default install (DESIGN.md, Runtime and stack: aedes), with
 * per-device credentials and topic ACLs, the same rules an external Mosquitto gets when scaled out.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Duplex, pipeline } from 'node:stream';
import { Aedes } from 'aedes';
import type { AuthenticateError, Client, ConnectPacket, PublishPacket } from 'aedes';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { MAX_PAYLOAD_BYTES } from '@firmward/protocol';
import { clientIdRefusal, publishRefusal, subscribeRefusal, willRefusal } from './acl.ts';
import { SHARED_SUBSCRIPTION_PREFIX } from './hub-subscriptions.ts';
import type { CredentialCheck, Principal } from './acl.ts';
import { consoleLogger, LogThrottle, clip } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { PacketSizeGuard } from './packet-size-guard.ts';
import { IndexedRetainedPersistence } from './retained-index.ts';

/**
 * Room for everything around a payload in one MQTT packet: topic, packet id, and a CONNECT's
 * client id, user name and password next to its (availability-sized) will.
 */
const PACKET_OVERHEAD_BYTES = 1024;

/** CONNACK return code 5 (MQTT 3.1.1 §3.2.2.3): not authorized. */
const NOT_AUTHORIZED = 5;

export interface EmbeddedBrokerOptions {
  /** Interface to listen on; 127.0.0.1 by default. */
  host?: string;
  /** 1883 by default. When taken, the broker listens on a free port instead (see start()). */
  port?: number;
  credentials: CredentialCheck;
  logger?: Logger;
}

export interface BrokerAddress {
  host: string;
  port: number;
}

type PublishDone = (error?: Error | null) => void;
type PublishFn = (packet: PublishPacket, client: Client | null | PublishDone, done?: PublishDone) => void;

/**
 * @example
 * const broker = new EmbeddedBroker({ host: '127.0.0.1', port: 1883, credentials });
 * const { host, port } = await broker.start(); // port may differ from 1883 when that was taken
 * // ...
 * await broker.stop();
 */
export class EmbeddedBroker {
  readonly #host: string;
  readonly #port: number;
  readonly #credentials: CredentialCheck;
  readonly #log: Logger;
  #running = false;
  #aedes: Aedes | null = null;
  #server: Server | null = null;
  #address: BrokerAddress | null = null;
  readonly #sockets = new Set<Socket>();
  readonly #principals = new WeakMap<Client, Principal>();
  readonly #wills = new WeakMap<Client, ConnectPacket['will'] | null>();
  /** Publishes refused by the ACL: acknowledged as usual, then dropped (MQTT 3.1.1 §3.3.5). */
  readonly #refused = new WeakSet<object>();
  /**
   * Logged-in clients by client id, from the moment their login is accepted: aedes registers a
   * client only a few steps later, and disconnect() must reach it in between too.
   */
  readonly #sessions = new Map<string, Set<Client>>();
  /** Logins whose credential check is under way; disconnect() marks those of its client id. */
  readonly #loginsInFlight = new Set<{ clientId: string; revoked: boolean }>();
  /** Each connection's peer, by the stream aedes was handed (aedes calls it client.conn). */
  readonly #peers = new WeakMap<object, { address: string; signal: AbortSignal }>();
  /** Refusals a peer can repeat at will: a few lines per source and minute, then a summary (log-limits.ts). */
  readonly #refusals: LogThrottle;

  constructor(options: EmbeddedBrokerOptions) {
    this.#host = options.host ?? '127.0.0.1';
    this.#port = options.port ?? 1883;
    this.#credentials = options.credentials;
    this.#log = options.logger ?? consoleLogger('info', 'mqtt-broker');
    this.#refusals = new LogThrottle({ log: this.#log });
  }

  /** Where it listens, once started. */
  get address(): BrokerAddress | null {
    return this.#address;
  }

  /**
   * Starts listening. When the port is taken (EADDRINUSE, e.g. a system Mosquitto on 1883) it
   * listens on a free port instead and says so: the hub must start even when the usual MQTT port
   * is taken (DESIGN.md). Returns the address actually used.
   */
  async start(): Promise<BrokerAddress> {
    if (this.#running) throw new FirmwardError('conflict', 'The MQTT broker is already running.');
    this.#running = true;
    try {
      return await this.#start();
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  async #start(): Promise<BrokerAddress> {
    const aedes = await Aedes.createBroker({
      persistence: new IndexedRetainedPersistence(),
      preConnect: (client, packet, callback) => {
        // The will is checked together with the login, once we know who is connecting.
        this.#wills.set(client, packet.will ?? null);
        callback(null, true);
      },
      authenticate: (client, username, password, callback) => {
        this.#authenticate(client, username, password).then(
          (refusal) => callback(refusal, refusal === null),
          (cause: unknown) => {
            this.#log.error('A login could not be checked.', { clientId: clip(client.id), error: clip(String(cause)) });
            callback(notAuthorized('login check failed'), false);
          },
        );
      },
      authorizePublish: (client, packet, callback) => {
        // client is null only for a will the broker kept from an earlier run; wills are vetted at connect.
        if (client === null) return callback(null);
        const refusal = this.#publishRefusal(client, packet);
        if (refusal !== null) {
          this.#refusals.warn(`publish ${client.id}`, { what: 'refused publishes', from: clip(client.id), field: 'clientId' },
            'Refused a publish; it was dropped.', { clientId: clip(client.id), topic: clip(packet.topic), reason: clip(refusal) });
          this.#refused.add(packet);
        }
        callback(null);
      },
      authorizeSubscribe: (client, subscription, callback) => {
        const principal = this.#principals.get(client);
        // aedes has no shared subscriptions: it would take "$share/…" as a plain filter that no
        // topic matches, and the subscriber would hear nothing without knowing. Refused instead,
        // so the hub's gateway fails to start with a sentence (one hub per embedded broker anyway).
        const refusal = subscription.topic.startsWith(SHARED_SUBSCRIPTION_PREFIX)
          ? 'this broker has no shared subscriptions ($share/…)'
          : principal ? subscribeRefusal(principal, subscription.topic) : 'not logged in';
        if (refusal !== null) {
          this.#refusals.warn(`subscribe ${client.id}`, { what: 'refused subscriptions', from: clip(client.id), field: 'clientId' },
            'Refused a subscription.', { clientId: clip(client.id), topic: clip(subscription.topic), reason: clip(refusal) });
          // A null subscription is answered with SUBACK 0x80 (failure) and the client stays connected.
          return callback(null, null);
        }
        callback(null, subscription);
      },
    });
    this.#dropRefusedPublishes(aedes);
    aedes.on('clientError', (client, error) => {
      // A refused login comes back here as the error we refused it with; it is logged already (#refuseLogin).
      if (loginRefusals.has(error)) return;
      this.#log.debug('Client error.', { clientId: clip(client.id), error: clip(error.message) });
    });
    aedes.on('connectionError', (client, error) => this.#log.debug('Connection error.', { clientId: clip(client.id), error: clip(error.message) }));
    aedes.on('clientDisconnect', (client) => this.#forgetSession(client));

    const server = createServer((socket) => this.#accept(aedes, socket));
    this.#aedes = aedes;
    this.#server = server;
    let port: number;
    try {
      port = await listen(server, this.#host, this.#port);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EADDRINUSE' || this.#port === 0) {
        throw new FirmwardError('gateway_failure', `The MQTT broker could not listen on ${this.#host}:${this.#port}.`, { cause });
      }
      port = await listen(server, this.#host, 0);
      this.#log.warn(`Port ${this.#port} is taken (another MQTT broker?); the hub's broker listens on port ${port} instead.`, {
        host: this.#host, wantedPort: this.#port, port,
      });
    }
    this.#address = { host: this.#host, port };
    this.#log.info(`MQTT broker listening on ${this.#host}:${port}.`);
    return this.#address;
  }

  /**
   * Closes the live connection of `clientId` (a device's client id is its device id), as after a
   * dropped connection: its last will is published. Call it when the client's credential was
   * rotated or revoked: its next login is checked against the store again (credentialCheck), so
   * the old secret no longer opens a session. A login of that client id whose check is under way
   * is refused too, since its lookup may have read the old credential. Resolves true when a
   * session was open.
   *
   * @example
   * await store.deleteDeviceSecret('plug-1');
   * await broker.disconnect('plug-1');
   */
  async disconnect(clientId: string): Promise<boolean> {
    for (const login of this.#loginsInFlight) if (login.clientId === clientId) login.revoked = true;
    const open = [...(this.#sessions.get(clientId) ?? [])].filter((client) => !client.closed);
    this.#sessions.delete(clientId);
    await Promise.all(open.map((client) => new Promise<void>((resolve) => client.close(() => resolve()))));
    if (open.length > 0) this.#log.info('Closed a client\'s session on request.', { clientId });
    return open.length > 0;
  }

  /** Closes every connection and stops listening. Safe to call twice. */
  async stop(): Promise<void> {
    const aedes = this.#aedes;
    const server = this.#server;
    this.#running = false;
    this.#aedes = null;
    this.#server = null;
    this.#address = null;
    this.#sessions.clear();
    this.#refusals.close();
    if (aedes !== null) await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(aedes: Aedes, socket: Socket): void {
    this.#sockets.add(socket);
    const address = peerAddress(socket.remoteAddress);
    const closed = new AbortController();
    socket.once('close', () => {
      this.#sockets.delete(socket);
      closed.abort();
    });
    const guard = new PacketSizeGuard(MAX_PAYLOAD_BYTES + PACKET_OVERHEAD_BYTES);
    pipeline(socket, guard, (error) => {
      if (isFirmwardError(error, 'payload_too_large') || isFirmwardError(error, 'invalid_input')) {
        this.#refusals.warn(`packet ${address}`, { what: 'refused packets', from: address, field: 'remoteAddress' },
          error.message, { remoteAddress: address, ...error.detail });
      }
    });
    const conn = Duplex.from({ readable: guard, writable: socket });
    this.#peers.set(conn, { address, signal: closed.signal });
    aedes.handle(conn);
  }

  async #authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<AuthenticateError | null> {
    if (username === undefined || password === undefined) return this.#refuseLogin(client, username ?? null, 'no user name or password');
    const login = { clientId: client.id, revoked: false };
    this.#loginsInFlight.add(login);
    const peer = this.#peers.get(client.conn) ?? { address: 'unknown' };
    let principal: Principal | null;
    try {
      principal = await this.#credentials.authenticate(username, password.toString('utf8'), peer);
    } finally {
      this.#loginsInFlight.delete(login);
    }
    if (principal === null) return this.#refuseLogin(client, username, 'wrong user name or password');
    if (login.revoked) return this.#refuseLogin(client, username, 'its credential changed while the login was checked');
    const will = this.#wills.get(client) ?? null;
    const refusal = clientIdRefusal(principal, client.id)
      ?? willRefusal(principal, will === null ? null : { topic: will.topic, retain: will.retain ?? false, payload: will.payload });
    this.#wills.delete(client);
    if (refusal !== null) return this.#refuseLogin(client, username, refusal);
    this.#principals.set(client, principal);
    this.#rememberSession(client);
    this.#log.debug('Logged in.', { clientId: client.id, role: principal.role });
    return null;
  }

  #rememberSession(client: Client): void {
    const open = [...(this.#sessions.get(client.id) ?? [])].filter((c) => !c.closed);
    this.#sessions.set(client.id, new Set([...open, client]));
  }

  #forgetSession(client: Client): void {
    const clients = this.#sessions.get(client.id);
    clients?.delete(client);
    if (clients?.size === 0) this.#sessions.delete(client.id);
  }

  #refuseLogin(client: Client, username: string | null, reason: string): AuthenticateError {
    const address = this.#peers.get(client.conn)?.address ?? 'unknown';
    this.#refusals.warn(`login ${address}`, { what: 'refused logins', from: address, field: 'remoteAddress' }, 'Refused a login.', {
      clientId: clip(client.id), username: username === null ? null : clip(username), remoteAddress: address, reason: clip(reason),
    });
    return notAuthorized(reason);
  }

  #publishRefusal(client: Client, packet: PublishPacket): string | null {
    const principal = this.#principals.get(client);
    if (!principal) return 'not logged in';
    const payloadBytes = typeof packet.payload === 'string' ? Buffer.byteLength(packet.payload) : packet.payload.length;
    return publishRefusal(principal, { topic: packet.topic, retain: packet.retain, payloadBytes });
  }

  /**
   * aedes closes the connection when authorizePublish fails. MQTT 3.1.1 §3.3.5 also allows
   * acknowledging and dropping, which we prefer: a device with one wrong topic keeps its session
   * (and its other, valid messages) instead of reconnecting in a loop. The publish handler and
   * the will both hand the very packet they authorized to broker.publish, so it is recognised here.
   */
  #dropRefusedPublishes(aedes: Aedes): void {
    const target = aedes as unknown as { publish: PublishFn };
    const original = target.publish.bind(aedes);
    target.publish = (packet, client, done) => {
      if (this.#refused.has(packet)) {
        this.#refused.delete(packet);
        const callback = typeof client === 'function' ? client : done;
        callback?.(null);
        return;
      }
      original(packet, client, done);
    };
  }
}

/** A peer's address as logins are counted by: an IPv4 peer on a dual-stack socket as its IPv4 address. */
function peerAddress(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

/** The errors logins were refused with (notAuthorized): aedes hands each back as a client error. */
const loginRefusals = new WeakSet<Error>();

function notAuthorized(reason: string): AuthenticateError {
  const error = Object.assign(new Error(reason), { returnCode: NOT_AUTHORIZED });
  loginRefusals.add(error);
  return error;
}

/** Connections the kernel holds for us before we accept them (see listen). */
const LISTEN_BACKLOG = 4096;

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    // A hub restart brings every device back within a second or two; with Node's default backlog
    // (511) the kernel drops the SYNs beyond it and those devices wait out TCP's retransmit backoff
    // (1, 3, 7 s…). The kernel caps this at net.core.somaxconn (4096 on current Linux).
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', onError);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new FirmwardError('internal', 'The MQTT broker did not report its port.'));
      else resolve(address.port);
    });
  });
}
