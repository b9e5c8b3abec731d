/** The bridge's MQTT session with the ecosystem's broker: first connection with a deadline and a clear refusal. */
import { FirmwardError } from '@firmward/core';
import type { MqttClient } from 'mqtt';

/** Resolves on the first successful connection; rejects when the broker refuses the login or never answers. */
export function firstConnect(client: MqttClient, url: string, timeoutMs: number, ecosystem: string): Promise<void> {
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
      reject(new FirmwardError('unauthorized', `The ${ecosystem} MQTT broker refused the bridge's login; check its user name and password.`, { cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new FirmwardError('gateway_failure', `The ${ecosystem} bridge could not reach its MQTT broker at ${url}.`));
    }, timeoutMs);
    client.on('connect', onConnect);
    client.on('error', onError);
  });
}
