/**
 * The composition root: the one place that picks adapters and wires them to the engine
 * (STYLE principle 5). main.ts calls it with the loaded config; tests call it with a temp folder,
 * a ManualClock and port 0, and get the same hub a user runs.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { createDdiGateway, credentialsInStore } from '@firmward/hawkbit';
import { EmbeddedBroker, MqttDeviceGateway, credentialCheck, generateDeviceSecret, hashDeviceSecret } from '@firmward/mqtt';
import { LocalNotifier } from '@firmward/ports';
import type { Clock, Logger, ReleaseSource, Store } from '@firmward/ports';
import { PostgresChangeFeed, PostgresStore } from '@firmward/store-postgres';
import { SqliteStore } from '@firmward/store-sqlite';
import { EmbeddedBrokerAccess, MosquittoFilesAccess } from './broker-access.ts';
import type { BrokerAccess } from './broker-access.ts';
import type { HubConfig } from './config.ts';
import { DashboardAuth } from './dashboard-auth.ts';
import { ownerOnlyFolder } from './data-folder.ts';
import { RolloutEngine } from './engine.ts';
import { BridgeSettings, withSavedBridges } from './bridge-settings.ts';
import { createBridges } from './bridges.ts';
import { GatewayRouter } from './gateway-router.ts';
import { ImageDistribution } from './image-distribution.ts';
import type { RoutedBridge } from './gateway-router.ts';
import { ReleaseSources } from './release-sources.ts';
import { writeSecretFile } from './secret-file.ts';
import { createHttpApp, serveHttp } from './http/index.ts';
import { DefaultHubService } from './hub-service.ts';
import { DdiSettings } from './onboarding/ddi-settings.ts';
import { Repositories } from './onboarding/repositories.ts';
import { DefaultSetupService } from './onboarding/setup-service.ts';

export const HUB_VERSION = '0.1.0';

export interface HubOverrides {
  clock: Clock;
  log: Logger;
  ownerToken: string;
  /** Replaces the config's signed repositories (unit-level hub tests with an in-memory source). */
  source?: ReleaseSource;
  /** Ecosystem bridges beside the hub's own MQTT protocol (tests; the config's bridges are added too). */
  bridges?: RoutedBridge[];
  /** Called once the store is open and before the engine starts (the demo seeds its home here). */
  seed?: (store: Store) => Promise<void>;
}

export interface RunningHub {
  store: Store;
  engine: RolloutEngine;
  service: DefaultHubService;
  setup: DefaultSetupService;
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
      // A folder made for it is owner-only; the files themselves are made 0600 by the store.
      mkdirSync(path.dirname(storePath), { recursive: true, mode: 0o700 });
      return SqliteStore.open(storePath);
    }
    case 'postgres': {
      const store = await PostgresStore.open({ url: config.store.url, logger: log.child('store') });
      log.info('store: PostgreSQL', { url: store.location });
      return store;
    }
  }
}

/** The file in the data folder where the hub writes the address the CLI on this machine uses. */
export const HUB_URL_FILE = 'hub-url';

/** An address this machine reaches the hub at (a wildcard listener is reached on loopback). */
function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** No broker files to keep (an external broker whose credentials someone else manages): every change is said in the log. */
function unmanagedAccess(log: Logger): BrokerAccess {
  return {
    start: () => Promise.resolve(),
    credentialsChanged: (deviceId) => {
      log.warn('A device credential changed, and this hub does not manage the external broker\'s password file (mqtt.mosquitto): make the broker agree.', { deviceId });
      return Promise.resolve();
    },
  };
}

/**
 * This hub's name among instances sharing a database, kept in its data folder: after a restart it
 * picks up its own homes at once instead of waiting for its old leases to run out.
 */
function instanceIdOf(dataDir: string): string {
  const file = path.join(dataDir, 'instance-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9-]{8,64}$/.test(id)) return id;
  } catch {
    // first start: made below
  }
  const id = `${hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 24)}-${randomUUID().slice(0, 8)}`;
  writeSecretFile(file, `${id}\n`);
  return id;
}

export async function startHub(config: HubConfig, o: HubOverrides): Promise<RunningHub> {
  const log = o.log;
  ownerOnlyFolder(config.dataDir, log);
  const instanceId = instanceIdOf(config.dataDir);
  const store = await openStore(config, log);
  const stops: (() => Promise<void>)[] = [() => store.close()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((error: unknown) => log.warn('stop step failed', { error: String(error) }));
  };
  try {
    await o.seed?.(store);
    // The after-commit bus: the engine, the setup service and the live views all use this one. On
    // PostgreSQL it crosses to the other instances on the database (LISTEN/NOTIFY).
    const notifier = config.store.kind === 'postgres'
      ? await PostgresChangeFeed.open({ url: config.store.url, instanceId, log: log.child('changes') })
      : new LocalNotifier(log.child('notifier'));
    if (notifier instanceof PostgresChangeFeed) stops.push(() => notifier.close());

    // On the embedded broker the hub's own login is new at every start; devices keep theirs (hashed
    // in the store). An external broker knows the hub by the user name and password configured for it.
    let hubLogin = { username: config.mqtt.username, password: config.mqtt.password };
    let mqttUrl = config.mqtt.url;
    let access: BrokerAccess;
    if (!mqttUrl) {
      hubLogin = { username: 'hub', password: generateDeviceSecret() };
      const hubHash = await hashDeviceSecret(hubLogin.password);
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
      access = new EmbeddedBrokerAccess({ broker, log: log.child('broker-access') });
    } else if (config.mqtt.mosquitto.passwordFile !== '') {
      const m = config.mqtt.mosquitto;
      const files = new MosquittoFilesAccess({
        store, passwordFile: m.passwordFile, aclFile: m.aclFile, pidFile: m.pidFile, reloadCommand: m.reloadCommand,
        hubUser: config.mqtt.username, hubPassword: config.mqtt.password, log: log.child('broker-access'),
      });
      access = files;
      // Credentials changed through another instance sharing the store reach the broker within seconds.
      const resync = setInterval(() => void files.resync().catch((error: unknown) => log.warn('could not bring the Mosquitto files up to date', { error: String(error) })), 5_000);
      resync.unref();
      stops.push(() => Promise.resolve(clearInterval(resync)));
    } else {
      access = unmanagedAccess(log.child('broker-access'));
    }
    await access.start();

    // The config file's bridges, with what a person changed from the dashboard on top (bridge-settings.ts).
    const bridgesConfig = withSavedBridges(config.bridges, config.dataDir);
    const bridges = [...(o.bridges ?? []), ...createBridges(bridgesConfig, { clock: o.clock, log: log.child('bridges') })];
    let service: DefaultHubService | null = null;
    // The makers' repositories: the config file's, and those a person adds while the hub runs (kept in the store).
    const repositories = new Repositories({
      config: o.source ? [] : config.repositories, store, dataDir: config.dataDir, clock: o.clock, log: log.child('repositories'),
      onTargetRefused: (name, { path: target, error }) => {
        log.warn('signed target refused', { repository: name, target, code: error.code, error: error.message });
        void service?.recordRepositoryRefusal({ source: name, code: error.code, message: error.message })
          .catch((e: unknown) => log.warn('could not record the refusal', { error: String(e) }));
      },
      onImageRefused: (name, release, refusal) => {
        log.warn('release withheld: its image did not verify', { repository: name, releaseId: release.id, code: refusal.code, error: refusal.message, attempts: refusal.attempts, retryAt: refusal.retryAt });
        void service?.recordImageRefusal(release, refusal).catch((e: unknown) => log.warn('could not record the refusal', { error: String(e) }));
      },
      onImageVerified: (name, release) => {
        log.info('image verified; the release can be planned', { repository: name, releaseId: release.id });
        engineRef?.refreshReleasesSoon();
      },
      publish: (event) => notifier.committed({ kind: 'history', event }),
    });
    if (!o.source) await repositories.sync();
    const source = new ReleaseSources({
      now: () => o.clock.now(),
      sources: o.source ? [o.source] : () => repositories.sources(),
      bridges: () => gatewayRef?.bridges.map((b) => b.bridge) ?? [],
      onRefused: (refusal) => {
        log.warn('release repository refused', { ...refusal });
        void service?.recordRepositoryRefusal(refusal).catch((error: unknown) => log.warn('could not record the refusal', { error: String(error) }));
      },
    });
    // Every refresh first reads which repositories are trusted now (another instance may have added one).
    const engineSource: ReleaseSource = {
      name: source.name,
      refresh: async (signal) => {
        if (!o.source) await repositories.sync();
        return source.refresh(signal);
      },
      imagePath: (release) => source.imagePath(release),
    };
    let engineRef: RolloutEngine | null = null;
    let gatewayRef: GatewayRouter | null = null;
    // Until the engine has loaded its releases (right after a restart) the stored ones answer, so a resumed download is not told 404.
    const releaseOf = async (releaseId: string) => engineRef?.releases.get(releaseId) ?? (await store.getRelease(releaseId));
    // Invariant 4 on the hub: only an image whose length and hash verify is served (/firmware and DDI downloads alike).
    const imagePath = async (releaseId: string): Promise<string | null> => {
      const release = await releaseOf(releaseId);
      return release ? source.imagePath(release) : null;
    };
    const distribution = new ImageDistribution(config.images, { clock: o.clock, log: log.child('images') });
    stops.push(() => Promise.resolve(distribution.stop()));
    const imageRedirect = async (releaseId: string): Promise<string | null> => {
      const release = await releaseOf(releaseId);
      return release ? distribution.downloadUrl(release, await source.imagePath(release)) : null;
    };
    const onInternalError = (error: unknown) => log.error('request failed', { error: error instanceof Error ? error.stack ?? error.message : String(error) });
    // hawkBit's device API (SWUpdate and other DDI clients), a bridge like the others.
    const ddi = config.ddi.enabled
      ? createDdiGateway({
        tenant: config.ddi.tenant, gatewayToken: config.ddi.gatewayToken, autoRegister: config.ddi.autoRegister, pollingSleep: config.ddi.pollingSleep,
        credentials: credentialsInStore(store), imagePath, clock: o.clock, logger: log.child('ddi'), maxBodyBytes: config.http.maxBodyBytes, onInternalError,
      })
      : null;
    // Devices that register themselves are proposed for this home and wait for a person's approval.
    const ddiRoute = ddi ? { bridge: ddi.gateway, homeId: config.ddi.homeId, approval: true } : null;
    if (ddiRoute) bridges.push(ddiRoute);
    const ddiSettings = new DdiSettings({ config: config.ddi, store, gateway: ddi?.gateway ?? null, route: ddiRoute });
    await ddiSettings.start();
    let setupRef: DefaultSetupService | null = null;
    const gateway = new GatewayRouter({
      fallback: new MqttDeviceGateway({
        url: mqttUrl, username: hubLogin.username, password: hubLogin.password, clock: o.clock, logger: log.child('gateway'),
        // Several instances on one broker split the device messages (config.ts, mqtt.sharedSubscriptions).
        ...(config.mqtt.sharedSubscriptions && { sharedGroup: config.mqtt.sharedSubscriptionGroup }),
      }),
      bridges, store, log: log.child('bridges'), clock: o.clock,
      onRegistered: () => notifier.committed({ kind: 'fleet', why: 'a bridge registered its devices' }),
      onSelfRegistered: (found, homeId) => setupRef?.enrollments.selfRegistered({
        deviceId: found.id, name: found.name, vendor: found.vendor, model: found.model, hardwareRevision: found.hardwareRevision, firmwareVersion: found.firmwareVersion,
        homeId: homeId === '' ? null : homeId, from: 'hawkBit (GatewayToken)',
      }) ?? Promise.resolve(),
    });
    gatewayRef = gateway;

    let baseUrl = '';
    const engine = new RolloutEngine({
      store, gateway, source: engineSource, clock: o.clock, log,
      config: { tickMs: config.engine.tickMs, offerResendSeconds: config.engine.offerResendSeconds, unreachableRetrySeconds: config.engine.unreachableRetrySeconds, releaseRefreshSeconds: config.releases.refreshSeconds, instanceId,
        // Several instances may share PostgreSQL: another's change arrives through the change feed; this net covers what a lost feed connection missed.
        ...(config.store.kind === 'postgres' && { lookAtLeastEverySeconds: 30 }) },
      imageUrl: (releaseId) => `${baseUrl}/firmware/${encodeURIComponent(releaseId)}`,
      // Devices check offers against the maker's metadata as mirrored here, with their own roots.
      repositoryUrl: (name) => (repositories.get(name) !== null ? `${baseUrl}/tuf/${encodeURIComponent(name)}/` : null),
      notifier,
    });
    engineRef = engine;
    // Until the gateways and the engine are up, requests wait and are then told to come back (http/app.ts).
    let ready = false;
    let markReady!: () => void;
    const whenReady = new Promise<void>((resolve) => {
      markReady = () => {
        ready = true;
        resolve();
      };
    });
    const mqttPort = Number(new URL(mqttUrl).port || 1883);
    service = new DefaultHubService({
      store, engine, clock: o.clock, version: HUB_VERSION, gatewayName: () => gateway.name, sources: source,
      mqtt: { host: new URL(mqttUrl).hostname, port: mqttPort },
      protocolOf: (deviceId) => gateway.protocolOf(deviceId),
      ready: () => ready,
    });
    const hubService = service;
    const setup = new DefaultSetupService({
      store, engine, clock: o.clock, log: log.child('setup'), access,
      markOffline: (deviceId) => engine.onAvailability(deviceId, false, o.clock.now()),
      gateway: { protocolOf: (deviceId) => gateway.protocolOf(deviceId), forget: (deviceId) => gateway.forget(deviceId) },
      publish: (event) => notifier.committed({ kind: 'history', event }),
      views: { device: (deviceId) => hubService.getDevice(deviceId), home: (homeId) => hubService.getHome(homeId) },
      // An enrolling agent reaches the broker at the hub's own host unless a public address is set.
      broker: { url: config.mqtt.publicUrl !== '' ? config.mqtt.publicUrl : config.mqtt.url !== '' ? config.mqtt.url : null, port: mqttPort },
      hubUrl: () => baseUrl,
      silenceTimeoutSeconds: config.engine.silenceTimeoutSeconds,
      defaultTimeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      ddi: ddi?.gateway ?? null,
      repositories, sources: source, ddiSettings,
    });
    setupRef = setup;
    const bridgeSettings = new BridgeSettings(bridgesConfig, {
      dataDir: config.dataDir, router: gateway, store, clock: o.clock, log: log.child('bridges'), version: HUB_VERSION,
      homeAssistantHub: service,
      dashboardUrl: () => baseUrl,
      markOffline: (deviceId) => engine.onAvailability(deviceId, false, o.clock.now()),
    });
    const app = createHttpApp(service, {
      ownerToken: o.ownerToken,
      maxBodyBytes: config.http.maxBodyBytes,
      imagePath,
      imageRedirect,
      bridges: bridgeSettings,
      repositoryMetadata: async (name, file) => {
        const repository = repositories.get(name);
        return repository ? repository.metadataFile(file) : null;
      },
      setup,
      publicUrl: config.http.publicUrl,
      // The DNS rebinding guard: the names this hub answers to besides its own (http/host-allow-list.ts).
      allowedHosts: [config.http.host, ...config.http.allowedHosts],
      onHostRefused: (host) => log.warn(`refused a request that named the hub "${host}"; if that is its name, add it to http.allowedHosts (FIRMWARD_ALLOWED_HOSTS)`, { host }),
      readiness: { ready: () => ready, whenReady },
      // The owner account and sessions live next to the owner token (dashboard-auth.ts).
      dashboard: new DashboardAuth({ dataDir: config.dataDir }),
      onInternalError,
    });
    if (ddi) app.route('/', ddi.routes);
    const http = await serveHttp(app, { host: config.http.host, port: config.http.port });
    let httpClosed: Promise<void> | null = null;
    const closeHttp = () => (httpClosed ??= http.close());
    stops.push(closeHttp);
    // Devices are given the shared address when there is one (several instances behind a balancer).
    baseUrl = config.http.publicUrl !== '' ? config.http.publicUrl.replace(/\/+$/, '') : `http://${config.http.host}:${http.port}`;

    await gateway.start(engine);
    stops.push(() => gateway.stop());
    await engine.start();
    stops.push(() => engine.stop());

    await bridgeSettings.start();
    stops.push(() => bridgeSettings.stop());

    // Decided requests to join and expired codes are dropped after a week (checked hourly).
    const pruning = setInterval(() => void setup.enrollments.prune().catch((error: unknown) => log.warn('could not prune enrollments', { error: String(error) })), 3_600_000);
    pruning.unref();
    stops.push(() => Promise.resolve(clearInterval(pruning)));

    // Stopping closes the port first: no device is answered by a hub whose gateways and engine have
    // stopped listening (a DDI download's last bytes, a feedback, a registration would be lost).
    stops.push(closeHttp);

    // The CLI on this machine finds the hub here (apps/cli, resolveHub); a clean stop takes it away again.
    const hubUrlFile = path.join(config.dataDir, HUB_URL_FILE);
    writeSecretFile(hubUrlFile, `${localUrl(config.http.host, http.port)}\n`);
    stops.push(() => Promise.resolve(rmSync(hubUrlFile, { force: true })));
    markReady();
    log.info('ready', { url: localUrl(config.http.host, http.port) });
    return { store, engine, service, setup, httpPort: http.port, mqttUrl, baseUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
