/**
 * The broker rules of acl.ts, written out for an external Mosquitto 2 (DESIGN, scale-out: "an
 * external MQTT broker with per-device credentials and topic ACLs"). Pure text generation, no I/O:
 * the caller writes the files (the password file from the stored hashes with
 * mosquittoPasswordFile(), or by hand with `mosquitto_passwd`).
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

export interface MosquittoPasswordEntry {
  username: string;
  /** A Mosquitto 2 hash: `$7$…` (PBKDF2-SHA512, from hashDeviceSecret or mosquitto_passwd) or `$6$…` (its older SHA-512). */
  hash: string;
}

/** The two hash forms Mosquitto 2 reads: `$7$<iterations>$<salt>$<key>` and `$6$<salt>$<key>`. */
const MOSQUITTO_HASH = /^(?:\$7\$[1-9][0-9]*|\$6)\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/**
 * Mosquitto's password file: one `user:hash` line per entry, sorted by user name, so the same
 * credentials always give the same text (a rewrite that changes nothing changes no byte). Refuses
 * (`invalid_input`) a user name that would not stay one user on one line (empty, with ":", white
 * space or a control character, or starting with "#", which Mosquitto reads as a comment), a
 * name given twice, and a hash Mosquitto cannot check: an old `scrypt$…` credential cannot go
 * into this file, so the caller leaves it out (and has its secret rotated).
 *
 * @example
 * await writeFile(passwordPath, mosquittoPasswordFile([{ username: 'plug-1', hash: await hashDeviceSecret(secret) }]));
 */
export function mosquittoPasswordFile(entries: readonly MosquittoPasswordEntry[]): string {
  const seen = new Set<string>();
  for (const { username, hash } of entries) {
    if (username === '' || /[:\s\p{Cc}]/u.test(username) || username.startsWith('#')) {
      throw new FirmwardError('invalid_input', 'A Mosquitto user name must be one word without ":" or control characters, not starting with "#".', { detail: { username } });
    }
    if (seen.has(username)) throw new FirmwardError('invalid_input', `The Mosquitto user "${username}" is listed twice.`, { detail: { username } });
    seen.add(username);
    if (!MOSQUITTO_HASH.test(hash)) {
      throw new FirmwardError('invalid_input', `The credential of "${username}" is not a Mosquitto hash ($7$ or $6$); issue a new secret for it.`, { detail: { username } });
    }
  }
  const sorted = [...entries].sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
  return sorted.map(({ username, hash }) => `${username}:${hash}\n`).join('');
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
