/**
 * A device process of the MQTT fleet benchmarks (mqtt-fleet-devices.ts) as the benchmark sees it:
 * forked without inherited flags, asked over its IPC channel, answered by kind.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromDevices, ToDevices } from './mqtt-fleet-shared.ts';

export interface DeviceProcess {
  /** Sends `message` and resolves with the process's answer of kind `reply`. */
  ask<K extends FromDevices['kind']>(message: ToDevices, reply: K): Promise<Extract<FromDevices, { kind: K }>>;
  exit(): Promise<void>;
  kill(): void;
}

export function forkDevices(): DeviceProcess {
  // No inherited flags: a --cpu-prof of the hub should profile the hub, not the load.
  const child: ChildProcess = fork(fileURLToPath(new URL('./mqtt-fleet-devices.ts', import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: { kind: FromDevices['kind']; resolve: (m: FromDevices) => void; reject: (e: Error) => void } | null = null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (message: FromDevices) => {
    const w = waiting;
    if (w === null) return;
    waiting = null;
    if (message.kind === 'failed') w.reject(new Error(`a device process failed: ${message.error}`));
    else if (message.kind === w.kind) w.resolve(message);
    else w.reject(new Error(`a device process answered "${message.kind}" instead of "${w.kind}"`));
  });
  child.once('exit', (code) => waiting?.reject(new Error(`a device process exited with ${code}`)));
  return {
    ask<K extends FromDevices['kind']>(message: ToDevices, reply: K) {
      return new Promise<Extract<FromDevices, { kind: K }>>((resolve, reject) => {
        waiting = { kind: reply, resolve: (m) => resolve(m as Extract<FromDevices, { kind: K }>), reject };
        child.send(message);
      });
    },
    async exit() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ kind: 'exit' } satisfies ToDevices);
      await exited;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
