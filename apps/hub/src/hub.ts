/**
 * The composition root: the one place that picks adapters and wires them to the engine
 * (STYLE principle 5). main.ts calls it with the loaded config; tests call it with a temp folder,
 * a ManualClock and port 0, and get the same hub a user runs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CatalogFolderSource } from '@firmward/catalog-folder';
import { EmbeddedBroker, MqttDeviceGateway, credentialCheck, generateDeviceSecret, hashSecret } from '@firmward/mqtt';
import type { Clock, Logger, ReleaseSource, Store } from '@firmward/ports';
import { PostgresStore } from '@firmward/store-postgres';
import { SqliteStore } from '@firmward/store-sqlite';
import type { HubConfig } from './config.ts';
import { DashboardAuth } from './dashboard-auth.ts';
import { RolloutEngine } from './engine.ts';
import { GatewayRouter } from './gateway-router.ts';
import type { RoutedBridge } from './gateway-router.ts';
import { ReleaseSources } from './release-sources.ts';
import { createHttpApp, serveHttp } from './http/index.ts';
import { DefaultHubService } from './hub-service.ts';

export const HUB_VERSION = '0.1.0';

export interface HubOverrides {
  clock: Clock;
  log: Logger;
  ownerToken: string;
  /** Defaults to the catalog folder of the config. */
  source?: ReleaseSource;
  /** Ecosystem bridges beside the hub's own MQTT protocol (tests; the config's bridges are added too). */
  bridges?: RoutedBridge[];
  /** Called once the store is open and before the engine starts (the demo seeds its home here). */
  seed?: (store: Store, catalogDir: string) => Promise<void>;
}

export interface RunningHub {
  store: Store;
  engine: RolloutEngine;
  service: DefaultHubService;
  httpPort: number;
  mqttUrl: string;
  /** Where simulated devices download images. */
  baseUrl: string;
  stop(): Promise<void>;
}

/**
 * The store the config names: the SQLite file by default, or the PostgreSQL database that several
 * hub instances share (DESIGN, scale-out; invariant 1 is then held by that database's index).
 */
async function openStore(config: HubConfig, log: Logger): Promise<Store> {
  switch (config.store.kind) {
    case 'sqlite': {
      const storePath = config.store.path;
      mkdirSync(path.dirname(storePath), { recursive: true });
      return SqliteStore.open(storePath);
    }
    case 'postgres': {
      const store = await PostgresStore.open({ url: config.store.url, logger: log.child('store') });
      log.info('store: PostgreSQL', { url: store.location });
      return store;
    }
  }
}

export async function startHub(config: HubConfig, o: HubOverrides): Promise<RunningHub> {
  const log = o.log;
  mkdirSync(config.dataDir, { recursive: true });
  const catalogDir = config.catalogDir ?? path.join(config.dataDir, 'catalog');
  const store = await openStore(config, log);
  const stops: (() => Promise<void>)[] = [() => store.close()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((error: unknown) => log.warn('stop step failed', { error: String(error) }));
  };
  try {
    await o.seed?.(store, catalogDir);

    // On the embedded broker the hub's own login is new at every start; devices keep theirs (hashed
    // in the store). An external broker knows the hub by the user name and password configured for it.
    let hubLogin = { username: config.mqtt.username, password: config.mqtt.password };
    let mqttUrl = config.mqtt.url;
    if (!mqttUrl) {
      hubLogin = { username: 'hub', password: generateDeviceSecret() };
      const hubHash = await hashSecret(hubLogin.password);
      const broker = new EmbeddedBroker({
        host: config.mqtt.host,
        port: config.mqtt.port,
        logger: log.child('broker'),
        credentials: credentialCheck(async (username) => {
          if (username === 'hub') return { principal: { role: 'hub' }, secretHash: hubHash };
          const hash = await store.getDeviceSecret(username);
          return hash === null ? null : { principal: { role: 'device', deviceId: username }, secretHash: hash };
        }),
      });
      const address = await broker.start();
      stops.push(() => broker.stop());
      mqttUrl = `mqtt://${address.host}:${address.port}`;
    }

    const bridges = [...(o.bridges ?? [])];
    const source = new ReleaseSources({
      sources: [o.source ?? new CatalogFolderSource(catalogDir, log.child('catalog'))],
      bridges: bridges.map((b) => b.bridge),
      onRefused: (refusal) => log.warn('release repository refused', { ...refusal }),
    });
    let engineRef: RolloutEngine | null = null;
    const gateway = new GatewayRouter({
      fallback: new MqttDeviceGateway({ url: mqttUrl, username: hubLogin.username, password: hubLogin.password, clock: o.clock, logger: log.child('gateway') }),
      bridges, store, log: log.child('bridges'),
      onRegistered: () => engineRef?.markPlanDirty(),
    });

    let baseUrl = '';
    let service: DefaultHubService | null = null;
    const engine = new RolloutEngine({
      store, gateway, source, clock: o.clock, log,
      config: { tickMs: config.engine.tickMs, offerResendSeconds: config.engine.offerResendSeconds, releaseRefreshSeconds: 300 },
      imageUrl: (releaseId) => `${baseUrl}/firmware/${encodeURIComponent(releaseId)}`,
      onHistory: (event) => service?.publish(event),
    });
    engineRef = engine;
    service = new DefaultHubService({
      store, engine, clock: o.clock, version: HUB_VERSION, gatewayName: 'mqtt',
      mqtt: { host: new URL(mqttUrl).hostname, port: Number(new URL(mqttUrl).port || 1883) },
    });
    const app = createHttpApp(service, {
      ownerToken: o.ownerToken,
      maxBodyBytes: config.http.maxBodyBytes,
      imagePath: async (releaseId) => {
        // Until the engine has loaded its releases (right after a restart) the stored ones answer, so a resumed download is not told 404.
        const release = engine.releases.get(releaseId) ?? (await store.getRelease(releaseId));
        // Invariant 4 on the hub: only an image whose length and hash verify is served.
        return release ? source.imagePath(release) : null;
      },
      // The owner account and sessions live next to the owner token (dashboard-auth.ts).
      dashboard: new DashboardAuth({ dataDir: config.dataDir }),
      onInternalError: (error) => log.error('request failed', { error: error instanceof Error ? error.stack ?? error.message : String(error) }),
    });
    const http = await serveHttp(app, { host: config.http.host, port: config.http.port });
    stops.push(() => http.close());
    baseUrl = `http://${config.http.host}:${http.port}`;

    await gateway.start(engine);
    stops.push(() => gateway.stop());
    await engine.start();
    stops.push(() => engine.stop());

    return { store, engine, service, httpPort: http.port, mqttUrl, baseUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
