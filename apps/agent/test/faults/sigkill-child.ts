/**
 * One boot of a file-slot device as a real process, for the SIGKILL trials: the agent on the Linux
 * platform with the custom-script bootloader backend, talking to the parent (the hub) over IPC.
 * Started by `sigkill.ts` with the device folder as argument; it never exits by itself: the parent
 * kills it (SIGKILL) at a random moment, or when it asks for a restart.
 */
import { join } from 'node:path';
import { SystemClock } from '@firmward/ports';
import { commandSchema } from '@firmward/protocol';
import type { Command, DeviceEvent, DeviceState } from '@firmward/protocol';
import { Agent } from '../../src/agent.ts';
import type { AgentTransport } from '../../src/transport.ts';
import { FileDevice } from './file-device.ts';
import { FAULT_IDENTITY } from './harness.ts';

class IpcTransport implements AgentTransport {
  readonly #handlers = new Set<(command: Command) => void>();

  start(): Promise<void> {
    process.on('message', (message) => {
      const parsed = commandSchema.safeParse(message);
      if (parsed.success) for (const h of this.#handlers) h(parsed.data);
    });
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }

  publishState(state: DeviceState): Promise<void> {
    return send({ kind: 'state', state });
  }

  publishEvent(event: DeviceEvent): Promise<void> {
    return send({ kind: 'event', event });
  }

  onCommand(handler: (command: Command) => void): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }
}

function send(message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    process.send?.(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

const dir = process.argv[2] ?? '';
const sizeBytes = Number(process.argv[3]);
const healthy = process.argv[4] === 'healthy';
const device = new FileDevice({
  dir, identity: FAULT_IDENTITY, factoryImage: new Uint8Array(), slotSizeBytes: 2 * sizeBytes, backend: 'script',
  // The new version (always written to slot b) fails its health check when the trial says so.
  healthCheck: healthy ? null : { command: ['sh', '-c', '! grep -q "^FW_CURRENT=b" "$0"', join(dir, 'bootloader.env')] },
});
const agent = new Agent({
  platform: device.platform(() => send({ kind: 'reboot' })),
  transport: new IpcTransport(),
  clock: new SystemClock(),
  config: { downloadChunkBytes: 256 * 1024, stateReportIntervalMs: 2_000, healthCheckTimeoutMs: 5_000, downloadRetryDelayMs: 100, downloadStallTimeoutMs: 5_000 },
});
await agent.start();
