/**
 * How the daemon reaches its broker, from its settings and what `hub.passwordFile` holds: connect
 * now (with which address and secret), or enroll first. `hub.url`, when set, always wins over the
 * address enrollment recorded (the operator's override).
 */
import { FirmwardError } from '@firmward/core';
import type { DaemonConfig } from '../linux/daemon-config.ts';
import { brokerUrlOf } from './credentials.ts';
import type { ApprovedCredentials, StoredCredentials } from './credentials.ts';
import type { EnrollTarget } from './enroll-target.ts';

export type ConnectionPlan =
  | { kind: 'connect'; url: string; password: string }
  /** `target` null: resume the claim the credentials file names (or report how it ended). */
  | { kind: 'enroll'; target: EnrollTarget | null };

/**
 * Throws `config_invalid` with what to do when the device has no way to the hub at all.
 *
 * @example
 * const plan = connectionPlan(config, await readCredentials(config.hub.passwordFile), '/etc/firmward/agent.json');
 */
export function connectionPlan(config: DaemonConfig, stored: StoredCredentials, configPath: string): ConnectionPlan {
  const file = config.hub.passwordFile;
  const target = config.hub.enroll ?? null;
  switch (stored.kind) {
    case 'secret':
      if (config.hub.url === undefined) {
        throw new FirmwardError('config_invalid', `${file} holds only a secret, which says nothing about where the broker is: set hub.url in ${configPath}, or enroll the device (${enrollHint(configPath)}).`);
      }
      return { kind: 'connect', url: config.hub.url, password: stored.secret };
    case 'file':
      if (stored.file.state === 'approved') {
        if (stored.file.deviceId !== config.device.id) {
          throw new FirmwardError('config_invalid', `${file} holds the credentials of device ${stored.file.deviceId}, but ${configPath} says this device is ${config.device.id}; fix device.id or enroll the device again.`);
        }
        return { kind: 'connect', url: brokerUrlFor(config, stored.file), password: stored.file.secret };
      }
      return { kind: 'enroll', target };
    case 'none':
      if (target !== null) return { kind: 'enroll', target };
      throw new FirmwardError('config_invalid', `The device has no credentials yet: ${file} is missing or empty and hub.enroll is not set in ${configPath}. `
        + `Enroll it once with \`${enrollHint(configPath)}\` (or --payload with the text of the hub's QR code), `
        + `or set hub.enroll to { "hubUrl": "…", "code": "…" } to enroll at the next start, `
        + `or write the device's secret into ${file} and set hub.url.`);
  }
}

/** `hub.url` if set, else the address enrollment recorded. */
export function brokerUrlFor(config: DaemonConfig, credentials: ApprovedCredentials): string {
  return config.hub.url ?? brokerUrlOf(credentials.broker, credentials.hubUrl);
}

function enrollHint(configPath: string): string {
  return `firmward-agent enroll --config ${configPath} --hub http://<hub>:8080 --code <code>`;
}
