/**
 * A real Mosquitto 2 for the bridges' service tests (test-services/): one loopback listener,
 * anonymous, no persistence, from a temp config. The process handling is that of
 * test-services/mosquitto-broker.ts, which starts Firmward's own locked-down broker.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../../packages/ports/testing/free-port.ts';

export interface PlainMosquitto {
  url: string;
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
 * Mosquitto on a free loopback port, anonymous: a home's ecosystem broker as Tasmota, Shelly,
 * Zigbee2MQTT and Home Assistant's add-on brokers often run it, not Firmward's locked-down one.
 * Resolves once it accepts connections; rejects with its own output when it does not start.
 *
 * @example
 * const broker = await startPlainMosquitto();
 * const bridge = new TasmotaBridge({ url: broker.url, clock });
 * await broker.stop();
 */
export async function startPlainMosquitto(): Promise<PlainMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-plain-mosquitto-'));
  const port = await freePort();
  const config = path.join(dir, 'mosquitto.conf');
  // Started as root, Mosquitto would drop to the "mosquitto" user, who cannot read our temp folder.
  await writeFile(config, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', `user ${userInfo().username}`, 'log_type all', ''].join('\n'));
  // Debian installs the broker in /usr/sbin, which a non-root PATH often lacks.
  const binary = existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : 'mosquitto';
  let output = '';
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.once('error', (error) => (output += `\ncould not run mosquitto: ${error.message}`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`Mosquitto did not start on 127.0.0.1:${port}:\n${output}`);
    }
    await sleep(50);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    log: () => output,
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
}
