/**
 * A Shelly Gen2+ device on MQTT, for tests: the RPC channel and payloads as recorded with their
 * sources in /work/shared/reference/ecosystems.md, section 4 —
 * 4.1 request `{id, src, method, params}` → reply `{id, src, dst, result}` or `{…, error: {code, message}}`;
 * 4.2 requests on `<prefix>/rpc`, replies on `<src>/rpc`, notifications on `<prefix>/events/rpc`,
 *     `<prefix>/online` "true" on connect and "false" as the last will;
 * 4.3 `Shelly.GetDeviceInfo` (id, model, gen, fw_id, ver, app), `Shelly.GetStatus` with `sys.available_updates`
 *     and `wifi.rssi` (dBm), `Shelly.Update` with `{stage}` or `{url}` answering `null`;
 * 4.4 NotifyStatus and NotifyEvent with the `sys` OTA events ota_begin / ota_progress (progress_percent) /
 *     ota_success / ota_error.
 * Payload examples follow the aioshelly fixture for the Shelly 1 Mini Gen4 quoted there. The firmware
 * itself is not simulated: the test says when the device restarts and what it then runs.
 */
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';

export interface ShellyDeviceOptions {
  url: string;
  /** The device id, e.g. "shelly1minig4-aabbccddeeff"; also its MQTT topic_prefix unless `prefix` says otherwise. */
  id: string;
  prefix?: string;
  model: string;
  gen: number;
  ver: string;
  app?: string;
  name?: string | null;
  rssi?: number;
  /** `sys.available_updates.stable.version`; none when null. */
  stable?: string | null;
  /** A battery device (DevicePower component). */
  battery?: { percent: number; external: boolean };
}

export interface ReceivedRequest {
  id: number | string;
  src: string;
  method: string;
  params?: Record<string, unknown>;
}

export class FakeShelly {
  readonly options: ShellyDeviceOptions;
  /** Every request received, in order. */
  readonly requests: ReceivedRequest[] = [];
  ver: string;
  stable: string | null;
  /** How `Shelly.Update` answers: `null` (started), or an RPC error. */
  updateAnswer: { error: { code: number; message: string } } | 'ok' = 'ok';
  #client: MqttClient | null = null;
  #waiters: { until: () => boolean; resolve: () => void }[] = [];

  constructor(options: ShellyDeviceOptions) {
    this.options = options;
    this.ver = options.ver;
    this.stable = options.stable ?? null;
  }

  get prefix(): string {
    return this.options.prefix ?? this.options.id;
  }

  /** Boots: connects with `<prefix>/online` "false" as will, says "true" (retained), listens for requests. */
  async powerOn(ver?: string): Promise<void> {
    if (ver !== undefined) this.ver = ver;
    const client = await connectAsync(this.options.url, {
      clientId: this.options.id,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      will: { topic: `${this.prefix}/online`, payload: Buffer.from('false'), qos: 1, retain: true },
    });
    this.#client = client;
    client.on('message', (_topic, payload) => this.#request(payload.toString('utf8')));
    await client.subscribeAsync(`${this.prefix}/rpc`, { qos: 1 });
    await client.publishAsync(`${this.prefix}/online`, 'true', { qos: 1, retain: true });
  }

  /** Power cut or restart: the connection drops without a goodbye, so the broker publishes the will ("false"). */
  async powerOff(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.endAsync(true);
  }

  /** NotifyEvent with `sys` events (section 4.4), e.g. `{ event: 'ota_progress', progress_percent: 42 }`. */
  async notifyEvent(...events: Record<string, unknown>[]): Promise<void> {
    const ts = 1_773_540_000.12;
    await this.notify('NotifyEvent', { ts, events: events.map((e) => ({ component: 'sys', id: null, ts, ...e })) });
  }

  async notify(method: string, params: Record<string, unknown>): Promise<void> {
    await this.publishRaw(`${this.prefix}/events/rpc`, JSON.stringify({ src: this.options.id, dst: `${this.prefix}/events`, method, params }));
  }

  async publishRaw(topic: string, payload: string): Promise<void> {
    if (this.#client === null) throw new Error('the fake Shelly is powered off');
    await this.#client.publishAsync(topic, payload, { qos: 1, retain: false });
  }

  /** Resolves once a request for `method` has arrived and been answered. */
  waitForRequest(method: string, count = 1): Promise<void> {
    const until = () => this.requests.filter((r) => r.method === method).length >= count;
    if (until()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  status(): Record<string, unknown> {
    const o = this.options;
    return {
      sys: {
        mac: o.id.slice(-12).toUpperCase(), restart_required: false, time: '02:10', unixtime: 1_773_540_000, uptime: 600, ram_size: 260_000, ram_free: 110_000,
        fs_size: 1_048_576, fs_free: 600_000, cfg_rev: 12, kvs_rev: 0, schedule_rev: 0, webhook_rev: 0, reset_reason: 3,
        available_updates: this.stable === null ? {} : { stable: { version: this.stable } },
      },
      wifi: { sta_ip: '192.168.1.50', status: 'got ip', ssid: 'home', rssi: o.rssi ?? -61 },
      ...(o.battery !== undefined && { 'devicepower:0': { id: 0, battery: { V: 3.9, percent: o.battery.percent }, external: { present: o.battery.external } } }),
    };
  }

  #request(text: string): void {
    let request: ReceivedRequest;
    try {
      request = JSON.parse(text) as ReceivedRequest;
    } catch {
      return;
    }
    void this.#answer(request).catch(() => undefined).finally(() => {
      this.requests.push(request);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.until()) return true;
        w.resolve();
        return false;
      });
    });
  }

  async #answer(request: ReceivedRequest): Promise<void> {
    const o = this.options;
    const reply = (body: Record<string, unknown>) =>
      this.publishRaw(`${request.src}/rpc`, JSON.stringify({ id: request.id, src: o.id, dst: request.src, ...body }));
    switch (request.method) {
      case 'Shelly.GetDeviceInfo':
        return reply({ result: {
          name: o.name ?? null, id: o.id, mac: o.id.slice(-12).toUpperCase(), slot: 1, model: o.model, gen: o.gen,
          fw_id: `20250214-121701/${this.ver}-gc32c24b`, ver: this.ver, app: o.app ?? 'Plus1', auth_en: false, auth_domain: null,
        } });
      case 'Shelly.GetStatus':
        return reply({ result: this.status() });
      case 'Shelly.Update':
        if (this.updateAnswer === 'ok') return reply({ result: null });
        return reply(this.updateAnswer);
      default:
        return reply({ error: { code: 404, message: `No handler for ${request.method}` } });
    }
  }
}
