/**
 * Issue 18: how long a hub restart takes when its devices all come back at once.
 *
 * The real hub (apps/hub/src/main.ts, default install: SQLite, embedded broker) runs with N
 * devices connected (real device clients in forked processes: own login, last will, command
 * subscription, retained state). It is SIGKILLed, its devices fall into their reconnect loop
 * (1 s between tries, as the agent's default), and the hub is started again on the same ports.
 * From that spawn (T0) it measures:
 *
 *   - broker up: the MQTT port accepts a connection;
 *   - running: the hub prints its banner, which it does only after its gateways and engine started;
 *   - devices back: every device logged in again and republished its state;
 *   - all heard: the hub's API shows a report from every device received after T0;
 *   - the hub's CPU time (user + system, from /proc) until then, to tell its work from the clients'.
 *
 * The baseline, in the same run, is the same restart with no devices (N = 0): what a restart costs
 * whatever the fleet. FIRMWARD_BENCH_RESTART_DEVICES lists the fleet sizes (default "0,200,2000").
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashDeviceSecret } from '@firmward/mqtt';
import { SqliteStore } from '@firmward/store-sqlite';
import { HubClient } from '../apps/cli/src/client.ts';
import { freePort } from '../packages/ports/testing/free-port.ts';
import { forkDevices } from './mqtt-fleet-process.ts';
import type { DeviceProcess } from './mqtt-fleet-process.ts';
import { FLEET_HARDWARE_REVISION, FLEET_VERSION, fleetDeviceId, fleetHomeId, fleetModel, fleetPassword } from './mqtt-fleet-shared.ts';
import { benchDevice, benchHome, ms, printMachine, printTable, tempDir } from './support.ts';

const HUB_MAIN = fileURLToPath(new URL('../apps/hub/src/main.ts', import.meta.url));
const OWNER_TOKEN = randomBytes(24).toString('base64url');
const SIZES = (process.env['FIRMWARD_BENCH_RESTART_DEVICES'] ?? '0,200,2000').split(',').map((x) => {
  const n = Number(x.trim());
  if (!Number.isInteger(n) || n < 0) throw new Error(`FIRMWARD_BENCH_RESTART_DEVICES must list whole numbers, got "${x}"`);
  return n;
});
/** Where the restarted hub writes a CPU profile (--cpu-prof), when set. */
const PROFILE_DIR = process.env['FIRMWARD_BENCH_PROFILE_DIR'] ?? '';
/** Device processes sharing the load (one Node process holding every socket would be the bottleneck). */
const DEVICE_PROCESSES = 2;

interface Restart {
  devices: number;
  brokerUpMs: number;
  runningMs: number;
  devicesBackMs: number | null;
  allHeardMs: number | null;
  hubCpuMs: number | null;
  /** CPU the device processes used from the kill until their last device was back. */
  clientsCpuMs: number | null;
}

async function seed(dataDir: string, devices: number, runKey: string): Promise<void> {
  const store = await SqliteStore.open(path.join(dataDir, 'firmward.db'));
  try {
    for (let from = 0; from < devices; from += 500) {
      const slice = Array.from({ length: Math.min(devices, from + 500) - from }, (_, k) => from + k);
      // Hashed outside the transaction: the hash is the slow part and needs no lock.
      const hashes = await Promise.all(slice.map((i) => hashDeviceSecret(fleetPassword(runKey, fleetDeviceId(i)))));
      await store.transaction(async (tx) => {
        for (const [k, i] of slice.entries()) {
          if (i % 5 === 0) await tx.putHome(benchHome(fleetHomeId(i), 60));
          await tx.putDevice(benchDevice(fleetDeviceId(i), fleetHomeId(i), fleetModel(i), FLEET_VERSION, FLEET_HARDWARE_REVISION));
          await tx.setDeviceSecret(fleetDeviceId(i), hashes[k]!);
        }
      });
    }
  } finally {
    await store.close();
  }
}

interface HubProcess {
  child: ChildProcess;
  /** Resolves with ms since spawn when the banner ("… is running.") is printed. */
  running: Promise<number>;
  output: () => string;
}

function startHub(dataDir: string, httpPort: number, mqttPort: number, profile = false): HubProcess {
  const t0 = performance.now();
  const child = spawn(process.execPath, [
    ...(profile && PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []),
    HUB_MAIN, '--data-dir', dataDir, '--port', String(httpPort), '--mqtt-port', String(mqttPort), '--log-level', 'warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FIRMWARD_OWNER_TOKEN: OWNER_TOKEN } });
  let output = '';
  const running = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (/Firmward hub .*is running\./.test(output)) resolve(performance.now() - t0);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', (code, signal) => reject(new Error(`the hub exited (${code ?? signal}) before it ran:\n${output.slice(-2000)}`)));
  });
  running.catch(() => undefined);
  return { child, running, output: () => output };
}

/** SIGKILL, as a power cut; SIGTERM (a clean stop, which writes a CPU profile) at the end of a measurement. */
async function stopHub(hub: HubProcess, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  if (hub.child.exitCode !== null || hub.child.signalCode !== null) return;
  const exited = new Promise((resolve) => hub.child.once('exit', resolve));
  hub.child.kill(signal);
  await exited;
}

/** Ms since `t0` at which `port` first accepts a TCP connection (tried every 10 ms). */
async function whenListening(port: number, t0: number, timeoutMs: number): Promise<number> {
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return performance.now() - t0;
    await sleep(10);
  }
  throw new Error(`port ${port} never opened`);
}

/** Ms since `t0` at which the hub's API shows a report received after `wallT0` from `count` devices (asked every 100 ms). */
async function whenAllHeard(client: HubClient, count: number, t0: number, wallT0: number, timeoutMs: number): Promise<number | null> {
  const deadline = t0 + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const views = await client.listDevices();
      if (views.filter((d) => d.lastSeenAt !== null && d.lastSeenAt >= wallT0).length >= count) return performance.now() - t0;
    } catch {
      // Not answering yet: asked again.
    }
    await sleep(100);
  }
  return null;
}

/** CPU time (user + system) a process used so far, from /proc/<pid>/stat; null off Linux. */
function cpuMs(pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name; in clock ticks of 10 ms.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

async function measure(devices: number): Promise<Restart> {
  const dir = tempDir('restart');
  const runKey = randomBytes(32).toString('hex');
  const [httpPort, mqttPort] = [await freePort(), await freePort()];
  const client = new HubClient({ baseUrl: `http://127.0.0.1:${httpPort}`, token: OWNER_TOKEN, timeoutMs: 10_000, notReadyRetries: 0 });
  const processes: DeviceProcess[] = [];
  let hub: HubProcess | null = null;
  try {
    await seed(dir.dir, devices, runKey);
    hub = startHub(dir.dir, httpPort, mqttPort);
    await hub.running;
    const url = `mqtt://127.0.0.1:${mqttPort}`;
    const per = Math.ceil(devices / DEVICE_PROCESSES);
    for (let p = 0; p < DEVICE_PROCESSES && p * per < devices; p++) processes.push(forkDevices());
    await Promise.all(processes.map((d, p) => d.ask({
      kind: 'start', url, runKey, from: p * per, to: Math.min(devices, (p + 1) * per), connectWindow: 50, publishWindow: 100,
    }, 'connected')));
    if (devices > 0 && (await whenAllHeard(client, devices, performance.now(), 0, 60_000)) === null) throw new Error('the first hub never heard every device');

    // Every device is watched for its return before the kill, so no early reconnect is missed.
    const back = Promise.all(processes.map((d) => d.ask({ kind: 'watch-reconnect' }, 'reconnected')));
    await stopHub(hub, 'SIGKILL');
    // The devices notice the broker is gone and retry every second; by now all of them are retrying.
    await sleep(1500);

    const wallT0 = Date.now();
    const t0 = performance.now();
    hub = startHub(dir.dir, httpPort, mqttPort, true);
    const brokerUpMs = await whenListening(mqttPort, t0, 60_000);
    const runningMs = await hub.running;
    // Asked only once the devices are back: listing 2,000 devices costs the hub two queries per
    // device, and asking during the storm would measure the asking.
    const returns = devices > 0 ? await back : [];
    const allHeardMs = devices > 0 ? await whenAllHeard(client, devices, t0, wallT0, 120_000) : null;
    const hubCpuMs = cpuMs(hub.child.pid);
    const devicesBackMs = devices > 0 ? Math.max(...returns.map((r) => r.lastAt - wallT0)) : null;
    const clientsCpuMs = devices > 0 ? returns.reduce((sum, r) => sum + r.cpuMs, 0) : null;
    return { devices, brokerUpMs, runningMs, devicesBackMs, allHeardMs, hubCpuMs, clientsCpuMs };
  } finally {
    await Promise.all(processes.map((d) => d.exit()));
    if (hub) await stopHub(hub, 'SIGTERM');
    dir.remove();
  }
}

async function main(): Promise<void> {
  printMachine();
  console.log('hub restarted (SIGKILL, then a new process on the same ports) with its devices reconnecting at once');
  const results: Restart[] = [];
  for (const devices of SIZES) {
    const r = await measure(devices);
    results.push(r);
    console.log(`${devices} devices: running after ${ms(r.runningMs)}`);
  }
  const cell = (x: number | null) => (x === null ? '—' : ms(x));
  printTable('from the new process spawned (T0) to…', [
    ['devices', 'broker up', 'hub running (engine started)', 'every device back', 'every device heard by the hub', 'hub CPU until then', 'device clients CPU'],
    ...results.map((r) => [String(r.devices), ms(r.brokerUpMs), ms(r.runningMs), cell(r.devicesBackMs), cell(r.allHeardMs), cell(r.hubCpuMs), cell(r.clientsCpuMs)]),
  ]);
}

await main();
