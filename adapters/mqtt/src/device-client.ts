/**
 * The device's side of the native protocol, for the device agent and for tests: one MQTT session
 * with the last will set, typed publishing, and commands parsed with the protocol schema before
 * anyone sees them (STYLE principle 9).
 */
import { connect } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { FirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import { SystemClock } from '@firmward/ports';
import type { Clock } from '@firmward/ports';
import {
  PROTOCOL_VERSION, commandSchema, deviceEventSchema, deviceStateSchema, deviceTopics, encode, parsePayload, parseTopic,
} from '@firmward/protocol';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import { consoleLogger } from '@firmward/ports';
import type { Logger } from '@firmward/ports';

export interface ConnectDeviceOptions {
  /** e.g. mqtt://127.0.0.1:1883 */
  url: string;
  /** Also the MQTT user name and client id. */
  deviceId: string;
  /** The device's own secret (generateDeviceSecret on the hub). */
  password: string;
  /** Stamps the `at` of commands and rejections. The system clock by default. */
  clock?: Clock;
  /** Pause between reconnect attempts. 1 s by default. */
  reconnectPeriodMs?: number;
  logger?: Logger;
}

export interface CommandRejection {
  topic: string;
  error: string;
  at: EpochMs;
}

export interface DeviceConnection {
  readonly deviceId: string;
  /** The underlying client, for diagnostics and tests (e.g. to cut the socket and see the will fire). */
  readonly mqtt: MqttClient;
  /** Retained at QoS 1, so the hub sees the latest state even when it connects later. */
  publishState(state: DeviceState): Promise<void>;
  /** QoS 1, not retained. */
  publishEvent(event: DeviceEvent): Promise<void>;
  /** Every well-formed command for this device, in order. Returns a function that unsubscribes. */
  onCommand(listener: (command: Command, at: EpochMs) => void): () => void;
  /** Every malformed command (nothing else happens with it). Returns a function that unsubscribes. */
  onRejected(listener: (rejection: CommandRejection) => void): () => void;
  /** Says it goes offline (retained), then disconnects cleanly; the will is then not needed. */
  close(): Promise<void>;
}

/**
 * Connects as one device. The broker publishes the last will — retained `{"v":1,"online":false}` on
 * the availability topic — when the connection drops; on every (re)connect the device says
 * `{"v":1,"online":true}`, retained, and listens to its own command topic. Resolves once both are done.
 *
 * @example
 * const device = await connectDevice({ url: 'mqtt://127.0.0.1:1883', deviceId: 'plug-1', password });
 * device.onCommand((command) => { if (command.type === 'offer') void device.publishEvent({ v: 1, type: 'ack', jobId: command.jobId, accepted: true, code: null, message: null }); });
 * await device.publishState(state);
 */
export async function connectDevice(options: ConnectDeviceOptions): Promise<DeviceConnection> {
  const { url, deviceId, password } = options;
  const topics = deviceTopics(deviceId);
  if (parseTopic(topics.state)?.deviceId !== deviceId) {
    throw new FirmwardError('invalid_input', `"${deviceId}" is not a valid device id.`, { detail: { deviceId } });
  }
  const clock = options.clock ?? new SystemClock();
  const log = options.logger ?? consoleLogger('info', 'mqtt-device');
  const commandListeners = new Set<(command: Command, at: EpochMs) => void>();
  const rejectionListeners = new Set<(rejection: CommandRejection) => void>();

  const client = connect(url, {
    clientId: deviceId,
    username: deviceId,
    password,
    protocolVersion: 4,
    clean: true,
    resubscribe: true,
    reconnectPeriod: options.reconnectPeriodMs ?? 1000,
    will: { topic: topics.availability, payload: Buffer.from(encode({ v: PROTOCOL_VERSION, online: false })), qos: 1, retain: true },
  });

  const announce = async () => {
    await client.subscribeAsync(topics.command, { qos: 1 });
    await client.publishAsync(topics.availability, encode({ v: PROTOCOL_VERSION, online: true }), { qos: 1, retain: true });
  };

  // Always listened to: an 'error' nobody listens to would end the whole process.
  client.on('error', (error) => log.warn('MQTT connection error.', { deviceId, error: error.message }));

  client.on('message', (topic, payload) => {
    const at = clock.now();
    const parsed = topic === topics.command
      ? parsePayload(commandSchema, payload)
      : { ok: false as const, error: `"${topic}" is not this device's command topic` };
    if (parsed.ok) for (const listener of commandListeners) listener(parsed.value, at);
    else for (const listener of rejectionListeners) listener({ topic, error: parsed.error, at });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error & { code?: unknown }) => {
      if (typeof error.code !== 'number') return;
      client.off('connect', onConnect);
      client.off('error', onError);
      reject(new FirmwardError('unauthorized', `The hub's MQTT broker refused the login of ${deviceId}; check its device id and secret.`, { cause: error }));
    };
    const onConnect = () => {
      client.off('connect', onConnect);
      client.off('error', onError);
      resolve();
    };
    client.on('connect', onConnect);
    client.on('error', onError);
  }).catch(async (error: unknown) => {
    await client.endAsync(true);
    throw error;
  });
  await announce();
  // After a drop the broker published the will; say "online" again on every later connect.
  client.on('connect', () => {
    announce().catch((error: unknown) => log.warn('Could not announce being online after a reconnect.', { deviceId, error: String(error) }));
  });

  const publishChecked = async <T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, value: T, topic: string, retain: boolean, what: string) => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new FirmwardError('invalid_input', `The ${what} of ${deviceId} is malformed, so it was not sent.`);
    await client.publishAsync(topic, encode(parsed.data as DeviceState | DeviceEvent), { qos: 1, retain });
  };

  return {
    deviceId,
    mqtt: client,
    publishState: (state) => publishChecked(deviceStateSchema, state, topics.state, true, 'state'),
    publishEvent: (event) => publishChecked(deviceEventSchema, event, topics.event, false, 'event'),
    onCommand(listener) {
      commandListeners.add(listener);
      return () => commandListeners.delete(listener);
    },
    onRejected(listener) {
      rejectionListeners.add(listener);
      return () => rejectionListeners.delete(listener);
    },
    async close() {
      if (client.connected) {
        await client.publishAsync(topics.availability, encode({ v: PROTOCOL_VERSION, online: false }), { qos: 1, retain: true });
      }
      await client.endAsync();
    },
  };
}
