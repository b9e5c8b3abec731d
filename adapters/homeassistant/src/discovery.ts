/**
 * Home Assistant's MQTT discovery, as payloads: one `update` entity per device and one `sensor`
 * per home. Field names and types follow HA's MQTT update integration and discovery docs as
 * recorded in /work/shared/reference/ecosystems.md §2 (2.1 topics, 2.2 config keys, 2.3 the JSON
 * state). Pure functions; the publisher does the I/O.
 */
import type { HomeAssistantDevice, HomeAssistantHome } from './hub.ts';

/** §2.3: HA's docs cap the release summary at 255 characters. */
export const MAX_RELEASE_SUMMARY_CHARS = 255;
/** What HA publishes to the command topic when the person presses Install (§2.2 `payload_install`). */
export const PAYLOAD_INSTALL = 'install';
export const PAYLOAD_ONLINE = 'online';
export const PAYLOAD_OFFLINE = 'offline';

/**
 * An id as a discovery object id: only `[a-zA-Z0-9_-]` is allowed there (§2.1). Letters, digits
 * and "-" stay; every other character becomes "_" and its two hex digits ("." → "_2e", "_" →
 * "_5f"), so two different ids never share an object id.
 */
export function objectId(id: string): string {
  return id.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface TopicOptions {
  /** HA's discovery prefix, "homeassistant" by default. */
  discoveryPrefix: string;
  /** Groups our entities under `<prefix>/<component>/<nodeId>/…`; `[a-zA-Z0-9_-]` only. */
  nodeId: string;
  /** Where our own state, attribute and command topics live. */
  baseTopic: string;
}

export function topicsOf(o: TopicOptions) {
  return {
    /** Ours: "online" while the publisher runs, "offline" as its last will (retained). */
    status: `${o.baseTopic}/status`,
    /** HA's birth and last will (§2.1: re-publish on "online"). */
    haStatus: `${o.discoveryPrefix}/status`,
    updateConfigFilter: `${o.discoveryPrefix}/update/${o.nodeId}/+/config`,
    sensorConfigFilter: `${o.discoveryPrefix}/sensor/${o.nodeId}/+/config`,
    commandFilter: `${o.baseTopic}/devices/+/install`,
    device(deviceId: string) {
      const obj = objectId(deviceId);
      return {
        objectId: obj,
        config: `${o.discoveryPrefix}/update/${o.nodeId}/${obj}/config`,
        state: `${o.baseTopic}/devices/${obj}/state`,
        attributes: `${o.baseTopic}/devices/${obj}/attributes`,
        availability: `${o.baseTopic}/devices/${obj}/availability`,
        command: `${o.baseTopic}/devices/${obj}/install`,
      };
    },
    home(homeId: string) {
      const obj = `${objectId(homeId)}_vulnerable`;
      return {
        objectId: obj,
        config: `${o.discoveryPrefix}/sensor/${o.nodeId}/${obj}/config`,
        state: `${o.baseTopic}/homes/${objectId(homeId)}/vulnerable`,
        attributes: `${o.baseTopic}/homes/${objectId(homeId)}/vulnerable/attributes`,
      };
    },
  };
}
export type Topics = ReturnType<typeof topicsOf>;

export interface Origin {
  name: string;
  sw_version?: string;
  support_url?: string;
}

/** §2.2: the config of one device's `update` entity. */
export function updateConfig(device: HomeAssistantDevice, topics: Topics, origin: Origin, dashboardUrl: string | null): Record<string, unknown> {
  const t = topics.device(device.id);
  return {
    name: 'Firmware',
    unique_id: `firmward_${t.objectId}`,
    device_class: 'firmware',
    entity_category: 'config',
    state_topic: t.state,
    json_attributes_topic: t.attributes,
    command_topic: t.command,
    payload_install: PAYLOAD_INSTALL,
    qos: 1,
    // Unavailable in HA when Firmward is not running or the device is offline: Install would do nothing then.
    availability: [
      { topic: topics.status, payload_available: PAYLOAD_ONLINE, payload_not_available: PAYLOAD_OFFLINE },
      { topic: t.availability, payload_available: PAYLOAD_ONLINE, payload_not_available: PAYLOAD_OFFLINE },
    ],
    availability_mode: 'all',
    device: {
      identifiers: [`firmward_${t.objectId}`],
      name: device.name,
      manufacturer: device.vendor,
      model: device.model,
      sw_version: device.firmwareVersion,
      hw_version: device.hardwareRevision,
      ...(dashboardUrl !== null && { configuration_url: dashboardUrl }),
    },
    origin,
  };
}

/** The version HA compares with the installed one: the update the hub has in hand, else the newest that applies. */
export function latestVersionOf(device: HomeAssistantDevice): string {
  const pending = ['available', 'queued', 'waiting', 'updating', 'failed'].includes(device.update.status) ? device.update.targetVersion : null;
  return pending ?? device.availableVersion ?? device.firmwareVersion;
}

/**
 * §2.3: the JSON state. Every string field is a string (HA drops the whole message when one is
 * null), `in_progress` is said explicitly, and `update_percentage` is null outside an update.
 */
export function updateState(device: HomeAssistantDevice, dashboardUrl: string | null): Record<string, unknown> {
  const updating = device.update.status === 'updating';
  return {
    installed_version: device.firmwareVersion,
    latest_version: latestVersionOf(device),
    title: `${device.vendor} ${device.model} firmware`,
    release_summary: clip(device.update.summary, MAX_RELEASE_SUMMARY_CHARS),
    ...(dashboardUrl !== null && { release_url: dashboardUrl }),
    in_progress: updating,
    update_percentage: updating ? device.update.progressPercent : null,
  };
}

/** The answer to the last Install pressed in HA: what the hub said. */
export interface InstallRequestOutcome {
  at: string;
  outcome: 'accepted' | 'refused';
  code: string | null;
  message: string;
}

/** Everything else the person may want to see, as the entity's attributes. */
export function updateAttributes(device: HomeAssistantDevice, lastRequest: InstallRequestOutcome | null): Record<string, unknown> {
  return {
    firmward_device_id: device.id,
    status: device.update.status,
    summary: device.update.summary,
    job_state: device.update.jobState,
    target_version: device.update.targetVersion,
    vulnerabilities: device.update.vulnerabilities.map((v) => v.id),
    recovery_steps: device.update.recovery?.steps ?? [],
    last_install_request: lastRequest,
  };
}

/** One sensor per home: how many of its devices run firmware with known vulnerabilities. */
export function vulnerableSensorConfig(home: HomeAssistantHome, topics: Topics, origin: Origin, dashboardUrl: string | null): Record<string, unknown> {
  const t = topics.home(home.id);
  return {
    name: 'Devices with known vulnerabilities',
    unique_id: `firmward_${t.objectId}`,
    state_topic: t.state,
    json_attributes_topic: t.attributes,
    unit_of_measurement: 'devices',
    state_class: 'measurement',
    icon: 'mdi:shield-alert',
    qos: 1,
    availability: [{ topic: topics.status, payload_available: PAYLOAD_ONLINE, payload_not_available: PAYLOAD_OFFLINE }],
    device: {
      identifiers: [`firmward_home_${objectId(home.id)}`],
      name: `Firmward: ${home.name}`,
      manufacturer: 'Firmward',
      model: 'Home',
      ...(dashboardUrl !== null && { configuration_url: dashboardUrl }),
    },
    origin,
  };
}

export function vulnerableDevices(devices: HomeAssistantDevice[]): { id: string; name: string; vulnerabilities: string[] }[] {
  return devices
    .filter((d) => d.update.vulnerabilities.length > 0)
    .map((d) => ({ id: d.id, name: d.name, vulnerabilities: d.update.vulnerabilities.map((v) => v.id) }));
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
