/** A plain aedes broker on a free loopback port, for the bridges' tests. */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { Aedes } from 'aedes';
import type { AedesOptions } from 'aedes';

export interface PlainBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A broker with no users and no ACLs, as a home's Tasmota, Shelly, Zigbee2MQTT or Home Assistant
 * setup often has (not our EmbeddedBroker, whose ACLs allow Firmward's topics only). `options`
 * add what one test needs, e.g. an `authenticate` that refuses a login; `at.port` starts it where
 * a bridge already looks for a broker that was down (a free port by default).
 *
 * @example
 * const broker = await startPlainBroker();
 * const bridge = new TasmotaBridge({ url: broker.url, clock });
 * await broker.stop();
 */
export async function startPlainBroker(options: AedesOptions = {}, at: { port?: number } = {}): Promise<PlainBroker> {
  const aedes = await Aedes.createBroker(options);
  const server: Server = createServer(aedes.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port ?? 0, '127.0.0.1', resolve);
    });
  } catch (error) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw error;
  }
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
