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
  /** How long start() waits for the broker. 30 s by default. */
  startTimeoutMs?: number;
  /** Pause between reconnect attempts. 1 s by default. */
  reconnectPeriodMs?: number;
}

/** What differs between the bridges: who connects, and the sentences a householder reads when the first connection fails. */
export interface BrokerSession {
  clientId: string;
  /** Said when the broker refuses the login (bad user name or password, not authorized). */
  refusedMessage: string;
  /** Said when the broker does not answer within `startTimeoutMs`. */
  unreachableMessage: string;
  will?: IClientOptions['will'];
}

export interface BrokerConnection {
  client: MqttClient;
  /**
   * Resolves on the first successful connection; rejects with `unauthorized` when the broker
   * refuses the login, or `gateway_failure` when it never answers. Await it right after attaching
   * the client's listeners; the client keeps reconnecting by itself after that.
   */
  connected: Promise<void>;
}

/**
 * Connects with the settings every bridge uses: MQTT 3.1.1, a clean session, and subscriptions made
 * again on every reconnect (retained messages then arrive again, so a bridge catches up by itself).
 *
 * @example
 * const { client, connected } = connectBroker(options, { clientId: `firmward-tasmota-${randomUUID()}`, refusedMessage, unreachableMessage });
 * client.on('message', (topic, payload) => receive(topic, payload));
 * await connected;
 */
export function connectBroker(options: BrokerOptions, session: BrokerSession): BrokerConnection {
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
  return { client, connected: firstConnect(client, options.startTimeoutMs ?? 30_000, session) };
}

/** Resolves on the first successful connection; rejects when the broker refuses the login or never answers. */
function firstConnect(client: MqttClient, timeoutMs: number, session: BrokerSession): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
    };
    const onConnect = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error & { code?: unknown }) => {
      // A numeric code is a CONNACK refusal (bad user name or password, not authorized): retrying will not help.
      if (typeof error.code !== 'number') return;
      cleanup();
      reject(new FirmwardError('unauthorized', session.refusedMessage, { cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new FirmwardError('gateway_failure', session.unreachableMessage));
    }, timeoutMs);
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}
