/**
 * A child process of the MQTT fleet benchmarks as the benchmark sees it: forked without inherited
 * flags, asked over its IPC channel, answered by kind. The device processes (mqtt-fleet-devices.ts)
 * and the hub instances of the scale-out phase (mqtt-fleet-hub.ts) are both driven this way.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromDevices, FromHub, ToDevices, ToHub } from './mqtt-fleet-shared.ts';

/** What every child may answer instead of the reply asked for. */
interface Failed {
  kind: 'failed';
  error: string;
}

export interface BenchProcess<To extends { kind: string }, From extends { kind: string }> {
  /** Sends `message` and resolves with the process's answer of kind `reply`. One question at a time. */
  ask<K extends From['kind']>(message: To, reply: K): Promise<Extract<From, { kind: K }>>;
  /** Asks it to exit (a message of kind "exit") and waits until it has. */
  exit(): Promise<void>;
  kill(): void;
}

export type DeviceProcess = BenchProcess<ToDevices, FromDevices>;
export type HubProcess = BenchProcess<ToHub, FromHub>;

function forkBenchProcess<To extends { kind: string }, From extends { kind: string }>(file: string, what: string): BenchProcess<To, From> {
  // No inherited flags: a --cpu-prof of the benchmark should profile it, not its children.
  const child: ChildProcess = fork(fileURLToPath(new URL(file, import.meta.url)), [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: { kind: string; resolve: (m: From) => void; reject: (e: Error) => void } | null = null;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (message: From | Failed) => {
    const w = waiting;
    if (w === null) return;
    waiting = null;
    if (message.kind === 'failed') w.reject(new Error(`a ${what} failed: ${(message as Failed).error}`));
    else if (message.kind === w.kind) w.resolve(message as From);
    else w.reject(new Error(`a ${what} answered "${message.kind}" instead of "${w.kind}"`));
  });
  child.once('exit', (code) => waiting?.reject(new Error(`a ${what} exited with ${code}`)));
  return {
    ask<K extends From['kind']>(message: To, reply: K) {
      return new Promise<Extract<From, { kind: K }>>((resolve, reject) => {
        waiting = { kind: reply, resolve: (m) => resolve(m as Extract<From, { kind: K }>), reject };
        child.send(message);
      });
    },
    async exit() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send({ kind: 'exit' });
      await exited;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

export function forkDevices(): DeviceProcess {
  return forkBenchProcess<ToDevices, FromDevices>('./mqtt-fleet-devices.ts', 'device process');
}

export function forkHub(): HubProcess {
  return forkBenchProcess<ToHub, FromHub>('./mqtt-fleet-hub.ts', 'hub instance');
}
