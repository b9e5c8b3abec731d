/**
 * The broker rules of acl.ts, written out for an external Mosquitto 2 (DESIGN, scale-out: "an
 * external MQTT broker with per-device credentials and topic ACLs"). Pure text generation, no I/O:
 * the caller writes the files and makes the password file with `mosquitto_passwd`.
 *
 * What Mosquitto enforces from these files: no anonymous login, one password per device and one for
 * the hub, each device publishing only its own state, availability and events and reading only its
 * own commands, the hub reading every device and writing only commands, and the packet size limit.
 * What it cannot enforce (the client-id rule, the will payload, "never retained") the gateway and
 * the agent keep themselves (docs/protocol.md, "Credentials and ACLs").
 */
import { FirmwardError } from '@firmward/core';
import { MAX_PAYLOAD_BYTES, TOPIC_ROOT, deviceTopics, parseTopic } from '@firmward/protocol';

/** The same allowance for topic and headers as the embedded broker (broker.ts). */
export const MOSQUITTO_MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024;

export interface MosquittoAclOptions {
  /** The hub's user name on the broker; "hub" by default. */
  hubUser?: string;
}

export interface MosquittoConfigOptions {
  /** Address to listen on, e.g. 127.0.0.1 or 0.0.0.0. */
  host: string;
  port: number;
  /** Absolute path of the file `mosquitto_passwd` made. */
  passwordFile: string;
  /** Absolute path of the file mosquittoAclFile() made. */
  aclFile: string;
  /**
   * Started as root, Mosquitto drops to this user before it reads the password and ACL files
   * ("mosquitto" when unset), so it must be able to read them. Ignored when not started as root.
   */
  user?: string;
}

function refuseLineBreaks(what: string, value: string): void {
  // One value per line: a line break would add a directive of its own.
  if (/[\r\n]/.test(value)) throw new FirmwardError('invalid_input', `The Mosquitto ${what} cannot contain a line break.`);
}

/**
 * The ACL file for the hub user and the given devices. Devices get pattern rules (`%u` is the user
 * name, which is the device id), so the file need not change when a device is added; the ids are
 * checked so that none would slip through the patterns: each must be a valid device id, and none
 * may be the hub's user name (the patterns apply to the hub too, and the hub must not speak for a
 * device).
 *
 * @example
 * await writeFile(aclPath, mosquittoAclFile(['plug-1', 'plug-2']));
 */
export function mosquittoAclFile(deviceIds: readonly string[], options: MosquittoAclOptions = {}): string {
  const hubUser = options.hubUser ?? 'hub';
  refuseLineBreaks('hub user name', hubUser);
  if (hubUser === '' || /\s/.test(hubUser)) throw new FirmwardError('invalid_input', 'The hub\'s Mosquitto user name must be one word.');
  for (const deviceId of deviceIds) {
    if (parseTopic(deviceTopics(deviceId).state)?.deviceId !== deviceId) {
      throw new FirmwardError('invalid_input', `"${deviceId}" is not a valid device id, so no Mosquitto rule can be written for it.`, { detail: { deviceId } });
    }
    if (deviceId === hubUser) {
      throw new FirmwardError('invalid_input', `A device cannot be called "${hubUser}": that is the hub's user name on the broker.`, { detail: { deviceId } });
    }
  }
  const device = deviceTopics('%u');
  return [
    '# Firmward topic ACL for Mosquitto 2, written by mosquittoAclFile() (adapters/mqtt/src/mosquitto-config.ts).',
    '# The rules of the embedded broker (adapters/mqtt/src/acl.ts): a device speaks only for itself;',
    '# the hub reads every device and writes only commands. Anything not listed is denied.',
    '',
    '# Devices: the user name is the device id.',
    `pattern write ${device.state}`,
    `pattern write ${device.availability}`,
    `pattern write ${device.event}`,
    `pattern read ${device.command}`,
    '',
    `user ${hubUser}`,
    `topic read ${TOPIC_ROOT}/d/+/state`,
    `topic read ${TOPIC_ROOT}/d/+/availability`,
    `topic read ${TOPIC_ROOT}/d/+/evt`,
    `topic write ${TOPIC_ROOT}/d/+/cmd`,
    '',
  ].join('\n');
}

/**
 * A mosquitto.conf for one listener with the Firmward rules: no anonymous clients, the password
 * and ACL files, the packet size limit, and no persistence (clean sessions; the hub re-sends
 * commands and devices re-publish their retained state, docs/protocol.md "Connection behaviour").
 *
 * @example
 * await writeFile(confPath, mosquittoConfig({ host: '127.0.0.1', port: 1883, passwordFile, aclFile }));
 * spawn('mosquitto', ['-c', confPath]);
 */
export function mosquittoConfig(options: MosquittoConfigOptions): string {
  const { host, port, passwordFile, aclFile, user } = options;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FirmwardError('invalid_input', 'The Mosquitto port must be a whole number from 1 to 65535.');
  for (const [what, value] of [['address', host], ['password file path', passwordFile], ['ACL file path', aclFile], ['user', user ?? '']] as const) refuseLineBreaks(what, value);
  return [
    '# Firmward broker settings for Mosquitto 2, written by mosquittoConfig() (adapters/mqtt/src/mosquitto-config.ts).',
    'per_listener_settings false',
    `listener ${port} ${host}`,
    'allow_anonymous false',
    `password_file ${passwordFile}`,
    `acl_file ${aclFile}`,
    `max_packet_size ${MOSQUITTO_MAX_PACKET_BYTES}`,
    'persistence false',
    ...(user !== undefined ? [`user ${user}`] : []),
    '',
  ].join('\n');
}
