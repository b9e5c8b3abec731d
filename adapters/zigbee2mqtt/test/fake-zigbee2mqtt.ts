/**
 * A device-side double of Zigbee2MQTT 2.x: an MQTT client that publishes what Zigbee2MQTT
 * publishes and answers OTA requests the way it does. Topics, payloads and their order follow
 * Zigbee2MQTT's own source as recorded in /work/shared/reference/ecosystems.md §1 (section cited at
 * each method). The test decides every step (no timers), so each scenario is deterministic.
 */
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';

export interface FakeDevice {
  ieee: string;
  name: string;
  type: 'Router' | 'EndDevice';
  vendor: string;
  model: string;
  powerSource: string;
  softwareBuildId?: string;
  supportsOta?: boolean;
}

export interface OtaRequestSeen {
  kind: 'check' | 'update' | 'schedule';
  id: string;
  transaction: string | undefined;
}

export class FakeZigbee2Mqtt {
  readonly base: string;
  readonly mqtt: MqttClient;
  readonly requests: OtaRequestSeen[] = [];
  #waiters: (() => void)[] = [];

  private constructor(base: string, mqtt: MqttClient) {
    this.base = base;
    this.mqtt = mqtt;
  }

  static async connect(url: string, base: string): Promise<FakeZigbee2Mqtt> {
    const mqtt = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: `fake-z2m-${base}` });
    const fake = new FakeZigbee2Mqtt(base, mqtt);
    // §1.1: the OTA extension listens on bridge/request/device/ota_update/(update|check|schedule|unschedule).
    await mqtt.subscribeAsync(`${base}/bridge/request/device/ota_update/#`, { qos: 1 });
    mqtt.on('message', (topic, payload) => fake.#onRequest(topic, payload));
    return fake;
  }

  #onRequest(topic: string, payload: Buffer): void {
    const kind = topic.slice(`${this.base}/bridge/request/device/ota_update/`.length);
    if (kind !== 'check' && kind !== 'update' && kind !== 'schedule') return;
    // §1.2: an object with `id` and the optional `transaction`, echoed in the response.
    const body = JSON.parse(payload.toString()) as { id: string; transaction?: string };
    this.requests.push({ kind, id: body.id, transaction: body.transaction });
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The `n`-th request (0-based) of this kind, once it has arrived. */
  async request(kind: OtaRequestSeen['kind'], n = 0): Promise<OtaRequestSeen> {
    for (;;) {
      const found = this.requests.filter((r) => r.kind === kind)[n];
      if (found) return found;
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  count(kind: OtaRequestSeen['kind']): number {
    return this.requests.filter((r) => r.kind === kind).length;
  }

  /**
   * §1.5 `bridge/devices`: retained JSON array of every device, the coordinator first. Field names
   * from `Zigbee2MQTTDevice` (bridge.ts publishDevices); `extra` entries go in as written.
   */
  async publishDevices(devices: FakeDevice[], extra: unknown[] = []): Promise<void> {
    const entries = [
      { ieee_address: '0x00124b0000000001', type: 'Coordinator', network_address: 0, supported: true, friendly_name: 'Coordinator', disabled: false, definition: null, interview_state: 'SUCCESSFUL', endpoints: {} },
      ...devices.map((d, i) => ({
        ieee_address: d.ieee, type: d.type, network_address: 1000 + i, supported: true, friendly_name: d.name, disabled: false,
        definition: { source: 'native', model: d.model, vendor: d.vendor, description: `${d.vendor} ${d.model}`, exposes: [], supports_ota: d.supportsOta ?? true, options: [], icon: '' },
        power_source: d.powerSource, ...(d.softwareBuildId !== undefined && { software_build_id: d.softwareBuildId }),
        date_code: '20240101', model_id: d.model, manufacturer: d.vendor, interview_state: 'SUCCESSFUL', endpoints: {},
      })),
      ...extra,
    ];
    await this.publishRaw('bridge/devices', JSON.stringify(entries), true);
  }

  /** §1.7: `bridge/state`, retained; JSON since 2.0, a bare string before. */
  async publishBridgeState(online: boolean, legacy = false): Promise<void> {
    const state = online ? 'online' : 'offline';
    await this.publishRaw('bridge/state', legacy ? state : JSON.stringify({ state }), true);
  }

  /** §1.4, §1.6: the device's state on `<base>/<friendly_name>` (not retained by default). */
  async publishState(name: string, state: Record<string, unknown>): Promise<void> {
    await this.publishRaw(name, JSON.stringify(state));
  }

  /** §1.7: `<base>/<friendly_name>/availability`, retained, `{"state":"online"}` (or the legacy bare string). */
  async publishAvailability(name: string, online: boolean, legacy = false): Promise<void> {
    const state = online ? 'online' : 'offline';
    await this.publishRaw(`${name}/availability`, legacy ? state : JSON.stringify({ state }), true);
  }

  /** §1.3: `{data, status: "ok", transaction}` on the fixed response topic of the request's kind. */
  async respondOk(request: OtaRequestSeen, data: Record<string, unknown>): Promise<void> {
    await this.publishRaw(`bridge/response/device/ota_update/${request.kind}`, JSON.stringify({
      data: { id: request.id, ...data }, status: 'ok', ...(request.transaction !== undefined && { transaction: request.transaction }),
    }));
  }

  /** §1.3: `{data: {}, status: "error", error, transaction}`. */
  async respondError(request: OtaRequestSeen, error: string): Promise<void> {
    await this.publishRaw(`bridge/response/device/ota_update/${request.kind}`, JSON.stringify({
      data: {}, status: 'error', error, ...(request.transaction !== undefined && { transaction: request.transaction }),
    }));
  }

  async publishRaw(suffix: string, payload: string, retain = false): Promise<void> {
    await this.mqtt.publishAsync(`${this.base}/${suffix}`, payload, { qos: 1, retain });
  }

  /**
   * The order otaUpdate.ts uses for a check: the device's `update` state first (publishEntityState),
   * then the response (§1.3, §1.4).
   */
  async answerCheck(request: OtaRequestSeen, device: { name: string; installed: number; latest: number; extra?: Record<string, unknown> }): Promise<void> {
    const available = device.latest > device.installed;
    await this.publishState(device.name, { ...device.extra, update: { state: available ? 'available' : 'idle', installed_version: device.installed, latest_version: device.latest } });
    await this.respondOk(request, { update_available: available });
  }

  /** While flashing: `update.state` "updating" with progress and remaining, about every 30 s (§1.4). */
  async reportProgress(name: string, installed: number, latest: number, progress: number, extra: Record<string, unknown> = {}): Promise<void> {
    await this.publishState(name, { ...extra, update: { state: 'updating', installed_version: installed, latest_version: latest, progress, remaining: 600 - progress * 6 } });
  }

  /**
   * A successful flash as otaUpdate.ts ends it: the new version in the device's state (idle,
   * installed = latest), then the response with from/to (§1.3).
   */
  async finishUpdate(request: OtaRequestSeen, name: string, from: number, to: number, extra: Record<string, unknown> = {}): Promise<void> {
    await this.publishState(name, { ...extra, update: { state: 'idle', installed_version: to, latest_version: to } });
    await this.respondOk(request, { from: { file_version: from, software_build_id: 'old' }, to: { file_version: to, software_build_id: 'new' } });
  }

  /** A failed flash: back to "available" (otaUpdate.ts catch block), then the error response. */
  async failUpdate(request: OtaRequestSeen, name: string, installed: number, latest: number, error: string, extra: Record<string, unknown> = {}): Promise<void> {
    await this.publishState(name, { ...extra, update: { state: 'available', installed_version: installed, latest_version: latest } });
    await this.respondError(request, error);
  }

  async close(): Promise<void> {
    await this.mqtt.endAsync(true);
  }
}
