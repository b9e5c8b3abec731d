/**
 * A Tasmota device on MQTT, for tests: the topics and payloads Tasmota itself uses, as recorded
 * with their sources in /work/shared/reference/ecosystems.md, section 3 —
 * 3.1 `cmnd/<topic>/<Command>` with the parameter as payload, replies on `stat/<topic>/RESULT`;
 * 3.2 the retained LWT `tele/<topic>/LWT` "Online" / "Offline" (the broker publishes "Offline" as the will);
 * 3.3 `OtaUrl <url>`, `Upgrade 1` → `{"Upgrade":"Version <running> from <OtaUrl>"}` on RESULT, and the
 *     final `{"Upgrade":"Successful. Restarting"}` / `{"Upgrade":"Failed <error>"}` on `stat/<topic>/UPGRADE`;
 * 3.4 `tele/<topic>/STATE` with `Wifi.RSSI` (percent) and `Wifi.Signal` (dBm);
 * 3.5 `Status 2` → `stat/<topic>/STATUS2` `{"StatusFWR":{"Version":"14.2.0(release-tasmota)","Hardware":…}}`;
 * 3.6 the retained `tasmota/discovery/<MAC>/config`.
 * The firmware itself is not simulated: the test says when the device restarts and what it then runs.
 */
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';

export interface TasmotaDeviceOptions {
  url: string;
  /** Tasmota's `%topic%`, e.g. "tasmota_1A2B3C". */
  topic: string;
  mac: string;
  /** As Tasmota writes it: "14.2.0(release-tasmota)". */
  version: string;
  hardware?: string;
  deviceName?: string;
  module?: string;
  /** Publish the retained discovery config (SetOption19 0, the default). */
  discovery?: boolean;
  /** `bat` in the discovery config. */
  battery?: boolean;
  /** Answer `Status 0` with one STATUS0 message (newer builds) instead of one message per part. */
  combinedStatus?: boolean;
  wifi?: { RSSI?: number; Signal?: number };
}

export class FakeTasmota {
  readonly options: TasmotaDeviceOptions;
  /** Every command received, as "<Command> <payload>", in order. */
  readonly commands: string[] = [];
  /** The commands received since the last powerOn, each added once it has been answered. */
  answered: string[] = [];
  version: string;
  otaUrl = 'http://ota.tasmota.com/tasmota/release/tasmota.bin.gz';
  /** What `Upgrade 1` answers; a test sets "refuse" to see Tasmota's "1 or >…" reply. */
  upgradeAnswer: 'start' | 'refuse' = 'start';
  #client: MqttClient | null = null;
  #waiters: { until: () => boolean; resolve: () => void }[] = [];

  constructor(options: TasmotaDeviceOptions) {
    this.options = options;
    this.version = options.version;
  }

  get topic(): string {
    return this.options.topic;
  }

  /** Boots: connects with its LWT as will, says "Online" (retained), publishes discovery, listens to its commands. */
  async powerOn(version?: string): Promise<void> {
    if (version !== undefined) this.version = version;
    this.answered = [];
    const { topic } = this.options;
    const client = await connectAsync(this.options.url, {
      clientId: `DVES_${this.options.mac.slice(-6)}`,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      will: { topic: `tele/${topic}/LWT`, payload: Buffer.from('Offline'), qos: 1, retain: true },
    });
    this.#client = client;
    client.on('message', (t, payload) => this.#command(t, payload.toString('utf8')));
    await client.subscribeAsync(`cmnd/${topic}/#`, { qos: 1 });
    await client.publishAsync(`tele/${topic}/LWT`, 'Online', { qos: 1, retain: true });
    if (this.options.discovery === true) {
      await client.publishAsync(`tasmota/discovery/${this.options.mac}/config`, JSON.stringify(this.#discoveryConfig()), { qos: 1, retain: true });
    }
  }

  /** Power cut or restart: the connection drops without a goodbye, so the broker publishes the will ("Offline"). */
  async powerOff(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.endAsync(true);
  }

  /** Telemetry as `tele/<topic>/STATE` (section 3.4). */
  async publishState(extra: Record<string, unknown> = {}): Promise<void> {
    await this.publishRaw(`tele/${this.topic}/STATE`, JSON.stringify({
      Time: '2026-03-15T02:10:00', Uptime: '0T00:10:00', UptimeSec: 600, Heap: 25, SleepMode: 'Dynamic', Sleep: 50, LoadAvg: 19, MqttCount: 1,
      POWER: 'ON', Wifi: { AP: 1, SSId: 'home', BSSId: '11:22:33:44:55:66', Channel: 6, Mode: '11n', LinkCount: 1, Downtime: '0T00:00:03', ...this.options.wifi },
      ...extra,
    }));
  }

  /** The final upgrade message on `stat/<topic>/UPGRADE` (section 3.3). */
  async publishUpgradeResult(text: string): Promise<void> {
    await this.publishRaw(`stat/${this.topic}/UPGRADE`, JSON.stringify({ Upgrade: text }));
  }

  async publishRaw(topic: string, payload: string | Buffer, retain = false): Promise<void> {
    if (this.#client === null) throw new Error('the fake Tasmota is powered off');
    await this.#client.publishAsync(topic, payload, { qos: 1, retain });
  }

  /** Resolves once a command starting with `prefix` (e.g. "Upgrade 1") has arrived since the last powerOn and been answered. */
  waitForCommand(prefix: string): Promise<void> {
    const until = () => this.answered.some((c) => c.startsWith(prefix));
    if (until()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ until, resolve }));
  }

  #discoveryConfig(): Record<string, unknown> {
    const o = this.options;
    return {
      ip: '192.168.1.40', dn: o.deviceName ?? 'Tasmota', fn: [o.deviceName ?? 'Tasmota', null, null, null], hn: `${o.topic}-1234`, mac: o.mac,
      md: o.module ?? 'Sonoff Basic', ty: 0, if: 0, ofln: 'Offline', onln: 'Online', state: ['OFF', 'ON', 'TOGGLE', 'HOLD'],
      sw: this.version.replace(/\(.*$/, ''), t: o.topic, ft: '%prefix%/%topic%/', tp: ['cmnd', 'stat', 'tele'], rl: [1, 0, 0, 0, 0, 0, 0, 0],
      swc: [-1, -1, -1, -1, -1, -1, -1, -1], swn: [null, null, null, null, null, null, null, null], btn: [0, 0, 0, 0, 0, 0, 0, 0],
      so: { '4': 0, '11': 0, '13': 0, '17': 0, '20': 0, '30': 0, '68': 0, '73': 0, '82': 0, '114': 0, '117': 0 }, lk: 0, lt_st: 0,
      bat: o.battery === true ? 1 : 0, dslp: 0, sho: [], sht: [], ver: 1,
    };
  }

  #command(topic: string, payload: string): void {
    const command = topic.split('/')[2] ?? '';
    const line = `${command} ${payload}`;
    this.commands.push(line);
    const answered = this.answered;
    void this.#answer(command.toUpperCase(), payload).catch(() => undefined).finally(() => {
      answered.push(line);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.until()) return true;
        w.resolve();
        return false;
      });
    });
  }

  async #answer(command: string, payload: string): Promise<void> {
    const stat = `stat/${this.topic}`;
    switch (command) {
      case 'STATUS': {
        const status = { Module: 1, DeviceName: this.options.deviceName ?? 'Tasmota', FriendlyName: [this.options.deviceName ?? 'Tasmota'], Topic: this.topic, ButtonTopic: '0', Power: 1 };
        const fwr = { Version: this.version, BuildDateTime: '2026-02-01T10:00:00', Boot: 31, Core: '2_7_8', SDK: '2.2.2-dev(38a443e)', CpuFrequency: 80, ...(this.options.hardware !== undefined && { Hardware: this.options.hardware }), CR: '402/699' };
        const sts = { Time: '2026-03-15T02:10:00', Uptime: '0T00:00:13', UptimeSec: 13, POWER: 'ON', Wifi: { AP: 1, SSId: 'home', Channel: 6, ...this.options.wifi } };
        if (payload === '2') return this.publishRaw(`${stat}/STATUS2`, JSON.stringify({ StatusFWR: fwr }));
        if (this.options.combinedStatus === true) return this.publishRaw(`${stat}/STATUS0`, JSON.stringify({ Status: status, StatusFWR: fwr, StatusSTS: sts }));
        await this.publishRaw(`${stat}/STATUS`, JSON.stringify({ Status: status }));
        await this.publishRaw(`${stat}/STATUS2`, JSON.stringify({ StatusFWR: fwr }));
        return this.publishRaw(`${stat}/STATUS11`, JSON.stringify({ StatusSTS: sts }));
      }
      case 'OTAURL':
        if (payload !== '') this.otaUrl = payload;
        return this.publishRaw(`${stat}/RESULT`, JSON.stringify({ OtaUrl: this.otaUrl }));
      case 'UPGRADE':
        if (this.upgradeAnswer === 'refuse') return this.publishRaw(`${stat}/RESULT`, JSON.stringify({ Upgrade: `1 or >${this.version} to upgrade` }));
        return this.publishRaw(`${stat}/RESULT`, JSON.stringify({ Upgrade: `Version ${this.version} from ${this.otaUrl}` }));
    }
  }
}
