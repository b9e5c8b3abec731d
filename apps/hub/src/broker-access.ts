/**
 * Keeps the MQTT broker in step with the store's device credentials: when the hub issues, rotates
 * or revokes one, new logins AND the device's open session follow at once (docs/protocol.md,
 * "Credentials and ACLs"). The embedded broker checks every login against the store already, so
 * only the open session needs closing; an external Mosquitto knows only its files, so the hub
 * rewrites them and makes it reload, which also closes the session of a device whose password
 * is gone or changed (Mosquitto 2 checks every connected client again on reload).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { FirmwardError } from '@firmward/core';
import { hashDeviceSecret, mosquittoAclFile, mosquittoPasswordFile } from '@firmward/mqtt';
import type { EmbeddedBroker } from '@firmward/mqtt';
import type { Logger, Store } from '@firmward/ports';

const run = promisify(execFile);

/** Makes the broker agree with the store's device credentials at once (new logins and live sessions). */
export interface BrokerAccess {
  /** Called at hub start (the Mosquitto files are written from the store). */
  start(): Promise<void>;
  /** A device's credential was added, replaced or removed in the store. */
  credentialsChanged(deviceId: string): Promise<void>;
}

/**
 * The embedded broker looks each login up in the store (credentialCheck), so a rotated or revoked
 * secret no longer opens a new session by itself; what is left is the session the device already
 * has, which is closed here (the device then logs in again with whatever secret it holds).
 *
 * @example
 * const access = new EmbeddedBrokerAccess({ broker, log: log.child('broker-access') });
 * await store.deleteDeviceSecret('plug-1');
 * await access.credentialsChanged('plug-1');
 */
export class EmbeddedBrokerAccess implements BrokerAccess {
  readonly #broker: Pick<EmbeddedBroker, 'disconnect'>;
  readonly #log: Logger;

  constructor(o: { broker: Pick<EmbeddedBroker, 'disconnect'>; log: Logger }) {
    this.#broker = o.broker;
    this.#log = o.log;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  async credentialsChanged(deviceId: string): Promise<void> {
    // A device's client id is its device id (acl.ts, clientIdRefusal).
    if (await this.#broker.disconnect(deviceId)) {
      this.#log.info('Closed the device\'s MQTT session: its credential changed, so its next login is checked again.', { deviceId });
    }
  }
}

export interface MosquittoFilesAccessOptions {
  store: Pick<Store, 'listDeviceSecrets'>;
  /** Mosquitto's password_file and acl_file; the hub owns both and rewrites them whole. */
  passwordFile: string;
  aclFile: string;
  /** The hub's own login on the broker. */
  hubUser: string;
  hubPassword: string;
  /** Mosquitto's pid_file: it is sent SIGHUP to reload. */
  pidFile: string;
  /** Or a command that makes Mosquitto reload (e.g. ["systemctl", "reload", "mosquitto"]); used when not empty. */
  reloadCommand: string[];
  log: Logger;
}

/** A reload command that hangs must not hold every later credential change. */
const RELOAD_TIMEOUT_MS = 15_000;
/** What of a failed reload command's output is kept for the error's detail. */
const RELOAD_OUTPUT_CHARS = 2000;
/**
 * PBKDF2 iterations for the hub's own password. Unlike a device secret (32 random bytes, see
 * DEVICE_SECRET_ITERATIONS in adapters/mqtt/src/secrets.ts) it may be one a person chose, so it
 * gets the slow hash OWASP's Password Storage Cheat Sheet gives for PBKDF2-HMAC-SHA512; it costs
 * one hash at hub start and one per hub login and reload in Mosquitto.
 */
const HUB_PASSWORD_ITERATIONS = 210_000;

/**
 * Writes an external Mosquitto's password file (the hub user and every device credential in the
 * store that Mosquitto can check, i.e. `$7$`) and ACL file from the store, and makes Mosquitto
 * reload them: SIGHUP to the pid in `pidFile`, or `reloadCommand` when set. Mosquitto 2 then
 * refuses the old secret at the next login and closes the session of a device whose password is
 * gone or changed. Writes never interleave: a change that arrives while a write runs is folded
 * into the one write after it, which reads the store afresh.
 *
 * A reload that fails throws `gateway_failure`; the caller decides whether to retry or refuse.
 *
 * @example
 * const access = new MosquittoFilesAccess({ store, ...config.mqtt.mosquitto, hubUser: config.mqtt.username, hubPassword: config.mqtt.password, log });
 * await access.start();
 * await store.deleteDeviceSecret('plug-1');
 * await access.credentialsChanged('plug-1'); // plug-1 is off the broker and cannot log in again
 */
export class MosquittoFilesAccess implements BrokerAccess {
  readonly #o: MosquittoFilesAccessOptions;
  #hubHash: Promise<string> | null = null;
  /** The write under way, if any. */
  #running: Promise<void> | null = null;
  /** The write that will start once #running is done; every change until then joins it. */
  #queued: Promise<void> | null = null;
  /** The files as last written and reloaded: a write that would change neither does not reload. */
  #applied: { passwords: string; acl: string } | null = null;
  /** Names in the last "left out" warning, so a burst of changes does not repeat it. */
  #warned = '';

  constructor(o: MosquittoFilesAccessOptions) {
    this.#o = { ...o, reloadCommand: [...o.reloadCommand] };
  }

  async start(): Promise<void> {
    this.#hubHash ??= hashDeviceSecret(this.#o.hubPassword, HUB_PASSWORD_ITERATIONS);
    await this.#hubHash;
    this.#applied = null;
    await this.#sync();
  }

  async credentialsChanged(deviceId: string): Promise<void> {
    this.#o.log.debug('A device credential changed; rewriting the Mosquitto files.', { deviceId });
    await this.#sync();
  }

  /**
   * Reads the store again and rewrites the files when they differ from it: a credential another
   * hub instance changed in the shared store reaches the broker too (the hub calls this every few
   * seconds; an unchanged store writes nothing and reloads nothing).
   */
  resync(): Promise<void> {
    return this.#sync();
  }

  /** Serialized and coalesced: at most one write runs, and at most one waits behind it. */
  #sync(): Promise<void> {
    if (this.#queued !== null) return this.#queued;
    const before = this.#running ?? Promise.resolve();
    const next: Promise<void> = before.catch(() => undefined).then(async () => {
      // From here on a change must wait for the next write: this one may already have read the store.
      this.#queued = null;
      this.#running = next;
      try {
        await this.#write();
      } finally {
        if (this.#running === next) this.#running = null;
      }
    });
    this.#queued = next;
    return next;
  }

  async #write(): Promise<void> {
    const { log, hubUser } = this.#o;
    this.#hubHash ??= hashDeviceSecret(this.#o.hubPassword, HUB_PASSWORD_ITERATIONS);
    const hubHash = await this.#hubHash;
    const devices: { username: string; hash: string }[] = [];
    const oldForm: string[] = [];
    const unfit: string[] = [];
    for (const { deviceId, secretHash } of await this.#o.store.listDeviceSecrets()) {
      if (!secretHash.startsWith('$7$')) {
        // Other `$…` and `scrypt$…` values are MQTT secrets Mosquitto cannot check; anything else
        // (a DDI token digest, adapters/hawkbit) is not an MQTT credential at all.
        if (secretHash.startsWith('$') || secretHash.startsWith('scrypt$')) oldForm.push(deviceId);
        continue;
      }
      const entry = { username: deviceId, hash: secretHash };
      try {
        // One bad record must not lock every device out: it alone is left out.
        mosquittoPasswordFile([entry]);
        mosquittoAclFile([deviceId], { hubUser });
        devices.push(entry);
      } catch {
        unfit.push(deviceId);
      }
    }
    this.#warnLeftOut(oldForm, unfit);

    const passwords = mosquittoPasswordFile([{ username: hubUser, hash: hubHash }, ...devices]);
    const acl = mosquittoAclFile(devices.map((d) => d.username), { hubUser });
    if (this.#applied?.passwords === passwords && this.#applied.acl === acl) return;
    this.#applied = null;
    await writeBrokerFile(this.#o.passwordFile, passwords);
    await writeBrokerFile(this.#o.aclFile, acl);
    await this.#reload();
    this.#applied = { passwords, acl };
    log.info('Wrote the Mosquitto password and ACL files and made Mosquitto reload them.', { devices: devices.length });
  }

  #warnLeftOut(oldForm: string[], unfit: string[]): void {
    const key = JSON.stringify([oldForm, unfit]);
    if (key === this.#warned) return;
    this.#warned = key;
    if (oldForm.length > 0) {
      this.#o.log.warn('Left devices out of the Mosquitto password file: their credential is in a form Mosquitto cannot check; rotate its secret.', { deviceIds: oldForm });
    }
    if (unfit.length > 0) {
      this.#o.log.warn('Left devices out of the Mosquitto files: their id cannot be a Mosquitto user name (or is the hub\'s).', { deviceIds: unfit });
    }
  }

  async #reload(): Promise<void> {
    const { reloadCommand, pidFile } = this.#o;
    const [command, ...args] = reloadCommand;
    if (command !== undefined) {
      try {
        await run(command, args, { timeout: RELOAD_TIMEOUT_MS, maxBuffer: 64 * 1024, windowsHide: true });
      } catch (cause) {
        const { stderr, stdout } = cause as { stderr?: unknown; stdout?: unknown };
        const output = `${typeof stderr === 'string' ? stderr : ''}${typeof stdout === 'string' ? stdout : ''}`.slice(0, RELOAD_OUTPUT_CHARS);
        throw new FirmwardError('gateway_failure', `Mosquitto did not reload its files: check that the reload command (${reloadCommand.join(' ')}) works for the hub's user.`, { cause, detail: { reloadCommand, output } });
      }
      return;
    }
    const pid = await readPid(pidFile);
    await refuseStrangerPid(pid, pidFile);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (cause) {
      throw new FirmwardError('gateway_failure', `Mosquitto could not be told to reload: check that it runs as process ${pid} (from ${pidFile}) and that the hub may signal it.`, { cause, detail: { pid, pidFile } });
    }
  }
}

async function readPid(pidFile: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (cause) {
    throw new FirmwardError('gateway_failure', `Mosquitto's pid file could not be read: check that Mosquitto runs with "pid_file ${pidFile}" and that the hub may read it.`, { cause, detail: { pidFile } });
  }
  const trimmed = text.trim();
  // Digits only: kill() with 0 or a negative number would signal a whole process group.
  const pid = /^[0-9]{1,10}$/.test(trimmed) ? Number(trimmed) : 0;
  if (pid < 1 || pid > 0x7fffffff) {
    throw new FirmwardError('gateway_failure', `Mosquitto's pid file does not hold a process id: check "${pidFile}".`, { detail: { pidFile } });
  }
  return pid;
}

/**
 * A pid file left behind by a Mosquitto that stopped may name some other process by now, and
 * SIGHUP ends most programs. Where /proc tells the program's name, it must be Mosquitto.
 */
async function refuseStrangerPid(pid: number, pidFile: string): Promise<void> {
  let name: string;
  try {
    name = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return; // No /proc (not Linux), or no such process: kill() will say so.
  }
  if (!name.startsWith('mosquitto')) {
    throw new FirmwardError('gateway_failure', `Process ${pid} from ${pidFile} is "${name}", not Mosquitto: check that the pid file is Mosquitto's and current, or set a reload command.`, { detail: { pid, pidFile, name } });
  }
}

/**
 * Temp file in the same folder, fsync, rename over the old one (as secret-file.ts does): Mosquitto
 * reloading at any moment reads the old file or the new one, never half of either. Mode 0640:
 * Mosquitto, in the hub's group, must read it; nobody else may.
 */
async function writeBrokerFile(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temp, 'wx', 0o640);
    try {
      await handle.chmod(0o640); // the umask may have taken bits away
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (cause) {
    await rm(temp, { force: true });
    throw new FirmwardError('gateway_failure', `A Mosquitto file could not be written: check that the hub may write to ${dirname(file)}.`, { cause, detail: { file } });
  }
}
