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
 * add what one test needs, e.g. an `authenticate` that refuses a login.
 *
 * @example
 * const broker = await startPlainBroker();
 * const bridge = new TasmotaBridge({ url: broker.url, clock });
 * await broker.stop();
 */
export async function startPlainBroker(options: AedesOptions = {}): Promise<PlainBroker> {
  const aedes = await Aedes.createBroker(options);
  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
