/**
 * One hub's MQTT gateway in a process of its own, for test-services/mosquitto-shared.test.ts: it
 * joins a shared subscription group on a real Mosquitto and prints one JSON line for every
 * message the gateway hands on, so that the test can count, across processes, how often each was
 * handled — and can SIGKILL one member as a crash would.
 *
 *   node test-services/shared-gateway-process.ts <broker url> <client id> <group>
 *   (the hub's password in FIRMWARD_TEST_MQTT_PASSWORD)
 *
 * Lines: {"kind":"started"}, {"kind":"state","deviceId":…,"version":…},
 * {"kind":"availability","deviceId":…,"online":…}, {"kind":"event","deviceId":…,"jobId":…},
 * {"kind":"rejected",…}. SIGTERM stops the gateway cleanly.
 */
import { MqttDeviceGateway } from '@firmward/mqtt';
import { SystemClock, consoleLogger } from '@firmward/ports';
import type { GatewayHandler } from '@firmward/ports';

const [url, clientId, sharedGroup] = process.argv.slice(2);
const password = process.env['FIRMWARD_TEST_MQTT_PASSWORD'];
if (url === undefined || clientId === undefined || sharedGroup === undefined || password === undefined) {
  console.error('usage: shared-gateway-process.ts <broker url> <client id> <group>, with FIRMWARD_TEST_MQTT_PASSWORD');
  process.exit(2);
}

const say = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};
const handler: GatewayHandler = {
  onState: (deviceId, state) => Promise.resolve(say({ kind: 'state', deviceId, version: state.firmwareVersion })),
  onAvailability: (deviceId, online) => Promise.resolve(say({ kind: 'availability', deviceId, online })),
  onEvent: (deviceId, event) => Promise.resolve(say({ kind: 'event', deviceId, jobId: event.jobId })),
  onRejected: (info) => say({ kind: 'rejected', deviceId: info.deviceId, error: info.error }),
};
const gateway = new MqttDeviceGateway({
  url, username: 'hub', password, clientId, sharedGroup, clock: new SystemClock(), logger: consoleLogger('warn', `gateway ${clientId}`), reconnectPeriodMs: 100,
});
await gateway.start(handler);
say({ kind: 'started' });
process.once('SIGTERM', () => {
  gateway.stop().then(() => process.exit(0), (error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});
