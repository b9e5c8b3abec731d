/**
 * A real Mosquitto for the MQTT fleet benchmark: the production rules (mosquittoConfig and
 * mosquittoAclFile, adapters/mqtt/src/mosquitto-config.ts: no anonymous login, one password per
 * device, per-device topic ACL) on a free loopback port, sized for a fleet.
 *
 * test-services/mosquitto-broker.ts runs `mosquitto_passwd -b` once per user, which takes minutes
 * for 10,000 devices; here the password file is written in plain text and hashed in place by
 * `mosquitto_passwd -U` (Mosquitto's own PBKDF2-SHA512), under a second for 10,000 users.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { mosquittoAclFile, mosquittoConfig } from '@firmward/mqtt';
import { freePort } from '../packages/ports/testing/free-port.ts';

const run = promisify(execFile);

export interface FleetBroker {
  url: string;
  /** The fd limit the broker runs with (`ulimit -n` inside its shell). */
  fileLimit: number;
  /** What the broker logged (errors and warnings only, e.g. dropped messages). */
  log(): string;
  /** CPU time the broker has used so far (user + system), or null where /proc cannot tell. */
  cpuMs(): number | null;
  stop(): Promise<void>;
}

let ticksPerSecond: number | null = null;

/** Clock ticks per second of /proc's CPU times. */
function clockTicks(): number {
  if (ticksPerSecond !== null) return ticksPerSecond;
  try {
    ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** utime + stime of a process, from /proc/<pid>/stat (fields 14 and 15, counted after the command name), or null where /proc cannot tell. */
export function processCpuMs(pid: number | undefined, ticks = clockTicks()): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / ticks) * 1000;
  } catch {
    return null;
  }
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
 * Starts Mosquitto with the hub user and `devices` device users.
 *
 * @example
 * const broker = await startFleetBroker({ hub: { username: 'hub', password }, devices: [{ username: 'dev-000000', password: secret }] });
 */
export async function startFleetBroker(o: {
  hub: { username: string; password: string };
  devices: readonly { username: string; password: string }[];
}): Promise<FleetBroker> {
  const mosquitto = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto'].find((p) => existsSync(p)) ?? 'mosquitto';
  const passwd = ['/usr/bin/mosquitto_passwd', '/usr/local/bin/mosquitto_passwd'].find((p) => existsSync(p)) ?? 'mosquitto_passwd';
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-bench-mosquitto-'));
  const files = { config: path.join(dir, 'mosquitto.conf'), passwords: path.join(dir, 'passwords'), acl: path.join(dir, 'acl'), limit: path.join(dir, 'fd-limit') };
  try {
    // The secrets exist only for this run, in a folder only we can read (mkdtemp makes it 0700).
    await writeFile(files.passwords, [o.hub, ...o.devices].map((u) => `${u.username}:${u.password}\n`).join(''), { mode: 0o600 });
    await run(passwd, ['-U', files.passwords]);
    await writeFile(files.acl, mosquittoAclFile(o.devices.map((d) => d.username), { hubUser: o.hub.username }));
    const port = await freePort();
    const base = mosquittoConfig({ host: '127.0.0.1', port, passwordFile: files.passwords, aclFile: files.acl, user: userInfo().username });
    await writeFile(files.config, base + [
      // Listener options: they follow the listener line of the base config.
      `max_connections ${o.devices.length + 100}`,
      // A subscriber slower than the burst (the hub while it writes) keeps its backlog in the
      // broker instead of losing it: Mosquitto's default, 1000, drops QoS 1 messages beyond it.
      'max_queued_messages 0',
      // 10,000 connects would otherwise be 10,000 log lines; dropped messages are warnings and still show.
      'connection_messages false',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'));

    // Node cannot raise its own fd limit, so the shell does it before it becomes Mosquitto:
    // 65,536 where allowed (root), else the hard limit.
    const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; ulimit -n > "$2"; exec "$0" -c "$1"';
    let output = '';
    const child = spawn('sh', ['-c', script, mosquitto, files.config, files.limit], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('error', (error) => (output += `\ncould not run mosquitto: ${error.message}`));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

    const deadline = Date.now() + 15_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`Mosquitto did not start on 127.0.0.1:${port}:\n${output}`);
      }
      await sleep(50);
    }
    const fileLimit = Number((await readFile(files.limit, 'utf8')).trim());
    const ticks = clockTicks();
    return {
      url: `mqtt://127.0.0.1:${port}`,
      fileLimit,
      log: () => output,
      // The shell exec'd into Mosquitto, so the child's pid is the broker's.
      cpuMs: () => processCpuMs(child.pid, ticks),
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
