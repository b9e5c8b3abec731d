/**
 * A real Mosquitto for the service tests: a free loopback port, a temp folder with the config and
 * ACL file written by mosquittoConfig / mosquittoAclFile (adapters/mqtt/src/mosquitto-config.ts)
 * and a password file made by `mosquitto_passwd`, the Debian package's own tool. .ci/run installs
 * the package on a fresh machine.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { mosquittoAclFile, mosquittoConfig } from '@firmward/mqtt';
import { freePort } from '../packages/ports/testing/free-port.ts';

const run = promisify(execFile);

/** Debian installs the broker in /usr/sbin, which a non-root PATH often lacks. */
function binary(name: string, sbin: boolean): string {
  const candidate = path.join(sbin ? '/usr/sbin' : '/usr/bin', name);
  return existsSync(candidate) ? candidate : name;
}

export interface MosquittoUser {
  username: string;
  password: string;
}

export interface RunningMosquitto {
  url: string;
  port: number;
  /** Where the generated files are (config, password file, ACL file, pid file). */
  dir: string;
  /** `pid`: Mosquitto's pid_file, what the hub sends SIGHUP to make it reload the other two. */
  files: { config: string; passwords: string; acl: string; pid: string };
  /** What the broker logged so far. */
  log(): string;
  stop(): Promise<void>;
}


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts Mosquitto with the hub user and the given devices. Resolves once it accepts connections;
 * rejects with its own output when it does not start within `startTimeoutMs`.
 *
 * @example
 * const broker = await startMosquitto({ hub: { username: 'hub', password }, devices: [{ username: 'plug-1', password: secret }] });
 */
export async function startMosquitto(o: { hub: MosquittoUser; devices: MosquittoUser[]; startTimeoutMs?: number }): Promise<RunningMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-mosquitto-'));
  const files = { config: path.join(dir, 'mosquitto.conf'), passwords: path.join(dir, 'passwords'), acl: path.join(dir, 'acl'), pid: path.join(dir, 'mosquitto.pid') };
  let child: ChildProcess | null = null;
  try {
    // -c creates the file with the first user; -b takes the password from the command line
    // (fine for test secrets, which exist only in this run).
    const passwd = binary('mosquitto_passwd', false);
    const users = [o.hub, ...o.devices];
    for (const [i, user] of users.entries()) {
      await run(passwd, [...(i === 0 ? ['-c'] : []), '-b', files.passwords, user.username, user.password]);
    }
    await writeFile(files.acl, mosquittoAclFile(o.devices.map((d) => d.username), { hubUser: o.hub.username }));
    const port = await freePort();
    // Started as root, Mosquitto would drop to the "mosquitto" user, who cannot read our temp folder.
    await writeFile(files.config, `${mosquittoConfig({ host: '127.0.0.1', port, passwordFile: files.passwords, aclFile: files.acl, user: userInfo().username })}pid_file ${files.pid}\nlog_type all\n`);

    let output = '';
    const started = spawn(binary('mosquitto', true), ['-c', files.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    started.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    started.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = new Promise<void>((resolve) => started.once('exit', () => resolve()));
    started.once('error', (error) => (output += `\ncould not run mosquitto: ${error.message}`));

    const deadline = Date.now() + (o.startTimeoutMs ?? 15_000);
    while (!(await accepts(port))) {
      if (started.exitCode !== null || started.signalCode !== null || Date.now() > deadline) {
        throw new Error(`Mosquitto did not start on 127.0.0.1:${port}:\n${output}`);
      }
      await sleep(50);
    }
    return {
      url: `mqtt://127.0.0.1:${port}`, port, dir, files,
      log: () => output,
      async stop() {
        if (started.exitCode === null && started.signalCode === null) {
          started.kill('SIGTERM');
          const timer = setTimeout(() => started.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
