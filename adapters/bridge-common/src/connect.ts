/** A bridge's MQTT session with an ecosystem's broker: the same client settings for every bridge, and a first connection with a deadline and a clear refusal. */
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { FirmwardError } from '@firmward/core';

/** Where the ecosystem's broker is and how long to wait for it: the fields every bridge's options share. */
export interface BrokerOptions {
  /** The ecosystem's broker, e.g. mqtt://192.168.1.2:1883. */
  url: string;
  username?: string;
  password?: string;
  /** How long start() waits for a broker that takes the connection but does not answer. 30 s by default. */
  startTimeoutMs?: number;
  /** Pause between reconnect attempts. 1 s by default. */
  reconnectPeriodMs?: number;
}

/** What differs between the bridges: who connects, and the sentences a householder reads when the first connection fails. */
export interface BrokerSession {
  clientId: string;
  /** Said when the broker refuses the login (bad user name or password, not authorized). */
  refusedMessage: string;
  /**
   * Said when the broker cannot be reached, or does not answer within `startTimeoutMs`. When the
   * network says why, the reason is added: "… at mqtt://192.168.1.2:1883: connection refused."
   */
  unreachableMessage: string;
  will?: IClientOptions['will'];
}

export interface BrokerConnection {
  client: MqttClient;
  /**
   * Resolves on the first successful connection; rejects with `unauthorized` when the broker
   * refuses the login, or `gateway_failure` when it cannot be reached (at once, with the network's
   * reason), never answers, or `signal` gives up. Await it right after attaching the client's
   * listeners; the client keeps reconnecting by itself after that.
   */
  connected: Promise<void>;
}

/**
 * Connects with the settings every bridge uses: MQTT 3.1.1, a clean session, and subscriptions made
 * again on every reconnect (retained messages then arrive again, so a bridge catches up by itself).
 * The first connection is one attempt: whoever starts the bridge decides when to try again (the
 * hub backs off, bridge-runner.ts), so a broker that is down answers in milliseconds, not 30 s.
 *
 * @example
 * const { client, connected } = connectBroker(options, { clientId: `firmward-tasmota-${randomUUID()}`, refusedMessage, unreachableMessage }, signal);
 * client.on('message', (topic, payload) => receive(topic, payload));
 * await connected;
 */
export function connectBroker(options: BrokerOptions, session: BrokerSession, signal?: AbortSignal): BrokerConnection {
  const client = connect(options.url, {
    clientId: session.clientId,
    ...(options.username !== undefined && { username: options.username }),
    ...(options.password !== undefined && { password: options.password }),
    protocolVersion: 4,
    clean: true,
    resubscribe: true,
    reconnectPeriod: options.reconnectPeriodMs ?? 1000,
    ...(session.will !== undefined && { will: session.will }),
  });
  return { client, connected: firstConnect(client, options.startTimeoutMs ?? 30_000, session, signal) };
}

/** Resolves on the first successful connection; rejects when the broker refuses the login, cannot be reached, never answers, or the caller gives up. */
function firstConnect(client: MqttClient, timeoutMs: number, session: BrokerSession, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: FirmwardError) => {
      cleanup();
      reject(error);
    };
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error & { code?: unknown }) => {
      // A numeric code is a CONNACK refusal (bad user name or password, not authorized).
      if (typeof error.code === 'number') return fail(new FirmwardError('unauthorized', session.refusedMessage, { cause: error }));
      // A string code is the network's (refused, no such host, TLS): this attempt is over.
      if (typeof error.code === 'string') fail(new FirmwardError('gateway_failure', withReason(session.unreachableMessage, networkReason(error)), { cause: error }));
    };
    const onAbort = () => fail(new FirmwardError('gateway_failure', 'The connection to the broker was given up before it was made.', { cause: signal?.reason }));
    const timer = setTimeout(() => fail(new FirmwardError('gateway_failure', session.unreachableMessage)), timeoutMs);
    if (signal?.aborted) return onAbort();
    client.on('connect', onConnect);
    client.on('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The network's words for the errors a householder meets most ("connection refused"); Node's own message for the rest. */
function networkReason(error: Error & { code?: unknown }): string {
  switch (error.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ENOTFOUND': return 'no such host';
    case 'EAI_AGAIN': return 'its name could not be looked up';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH': return 'no route to it';
    case 'ETIMEDOUT': return 'the connection timed out';
    case 'ECONNRESET': return 'the connection was reset';
    default: return error.message;
  }
}

/** "… at mqtt://x:1883." + "connection refused" → "… at mqtt://x:1883: connection refused." */
function withReason(sentence: string, reason: string): string {
  return `${sentence.replace(/\.$/, '')}: ${reason}.`;
}
