/**
 * One device process of the MQTT fleet benchmark (forked by mqtt-fleet.bench.ts): a slice of the
 * fleet, each device a real device client (connectDevice: its own login, last will, command
 * subscription, retained "online"), publishing retained QoS 1 state reports when told to.
 *
 * Several of these share the load because one Node process holding all 10,000 sockets would be
 * the bottleneck, not the broker or the hub.
 */
import { connectDevice } from '@firmward/mqtt';
import type { DeviceConnection } from '@firmward/mqtt';
import { consoleLogger } from '@firmward/ports';
import { fleetDeviceId, fleetPassword, fleetState } from './mqtt-fleet-shared.ts';
import type { DevicesPublish, DevicesStart, FromDevices, ToDevices } from './mqtt-fleet-shared.ts';

const log = consoleLogger('warn', 'bench-device');
const devices: { index: number; connection: DeviceConnection }[] = [];
let start: DevicesStart | null = null;

function tell(message: FromDevices): void {
  process.send?.(message);
}

/** Runs `work(0 … count-1)` with at most `window` of them pending at once. */
async function pooled(count: number, window: number, work: (n: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}

async function connectAll(s: DevicesStart): Promise<void> {
  const t = performance.now();
  await pooled(s.to - s.from, s.connectWindow, async (n) => {
    const index = s.from + n;
    const deviceId = fleetDeviceId(index);
    const connection = await connectDevice({ url: s.url, deviceId, password: fleetPassword(s.runKey, deviceId), logger: log });
    // An agent publishes its state as soon as it is connected: the hub catches up from it.
    await connection.publishState(fleetState(index, 0));
    devices.push({ index, connection });
    // …and again on every reconnect: an embedded broker that restarted has lost the retained one.
    connection.mqtt.on('connect', () => {
      connection.publishState(fleetState(index, 0)).then(() => reconnected(index), (error: unknown) => log.warn('state after reconnect not sent', { error: String(error) }));
    });
  });
  tell({ kind: 'connected', devices: devices.length, ms: performance.now() - t });
}

let watching: Set<number> | null = null;
let watchCpu: NodeJS.CpuUsage | null = null;

function reconnected(index: number): void {
  if (watching === null) return;
  watching.delete(index);
  if (watching.size > 0) return;
  watching = null;
  const cpu = process.cpuUsage(watchCpu ?? undefined);
  tell({ kind: 'reconnected', devices: devices.length, lastAt: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 });
}

/** Round-major: a device's next report comes only after every other device of the slice had its turn. */
async function publish(p: DevicesPublish, window: number): Promise<void> {
  const t = performance.now();
  const total = devices.length * p.rounds;
  await pooled(total, window, async (n) => {
    const device = devices[n % devices.length]!;
    await device.connection.publishState(fleetState(device.index, p.firstRound + Math.floor(n / devices.length)));
  });
  tell({ kind: 'published', reports: total, ms: performance.now() - t });
}

process.on('message', (message: ToDevices) => {
  const work = (() => {
    switch (message.kind) {
      case 'start':
        start = message;
        return connectAll(message);
      case 'publish':
        return publish(message, start?.publishWindow ?? 1);
      case 'watch-reconnect':
        watching = new Set(devices.map((d) => d.index));
        watchCpu = process.cpuUsage();
        return Promise.resolve();
      case 'exit':
        // The sockets close with the process; the broker publishes the wills to no one.
        process.exit(0);
    }
  })();
  work.catch((error: unknown) => {
    tell({ kind: 'failed', error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
});
