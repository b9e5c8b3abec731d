/**
 * A fleet of devices on a real Mosquitto, sending state reports: how many the hub handles per
 * second, against Mosquitto's own delivery rate to a bare subscriber, in the same run.
 *
 * 10,000 devices (FIRMWARD_BENCH_MQTT_DEVICES) in homes of 5, seeded into the store (SQLite on
 * /dev/shm, or PostgreSQL with FIRMWARD_BENCH_STORE=postgres), no jobs. Mosquitto runs with the
 * production rules (password per device, hashed by mosquitto_passwd; per-device ACL), and the
 * devices are real device clients (connectDevice: login, last will, command subscription,
 * retained "online", then their first state), spread over FIRMWARD_BENCH_MQTT_WORKERS processes
 * (default 4) so that no single load process is the bottleneck.
 *
 *   A. Baseline: a bare mqtt.js subscriber with the hub's login and subscriptions (the three
 *      filters of HUB_TOPIC_FILTERS, QoS 1) that only counts what arrives.
 *   B. The hub: MqttDeviceGateway handing every message to RolloutEngine.onState /
 *      onAvailability on the seeded store, exactly as the hub wires them (the router in front of
 *      the gateway passes the engine through unchanged). The engine's tick loop is not started: no
 *      jobs exist, and the measurement is the per-report path. A report counts once its store
 *      writes have completed.
 *   H. Scale-out, with FIRMWARD_BENCH_MQTT_HUBS (e.g. "1,3"), instead of B: for each count in turn,
 *      that many hub instances, each in its own Node process (mqtt-fleet-hub.ts), all an
 *      MqttDeviceGateway in one shared subscription group ($share/<group>/…) with the engine on
 *      one PostgresStore database (made for the run beside FIRMWARD_BENCH_PG_URL and dropped at
 *      the end; several instances share a database only on PostgreSQL). The rate is every
 *      instance's reports added up; each report carries its round, so every report is counted as
 *      handled once, twice or not at all (mqtt-fleet-scale-out.ts). 2,000 devices × 5 rounds by
 *      default (FIRMWARD_BENCH_MQTT_DEVICES and _ROUNDS still apply).
 *
 * Each phase has two parts: catch-up (the subscriber connects and receives every device's retained
 * state and availability, as a hub does after a restart) and live (every device publishes
 * FIRMWARD_BENCH_MQTT_ROUNDS (default 20) retained QoS 1 state reports as fast as the broker acknowledges them,
 * at most FIRMWARD_BENCH_MQTT_WINDOW per process awaiting their PUBACK). The live rate is the
 * reports divided by the time from the first publish to the last report handled; "drain" is how
 * long the subscriber still worked after the devices had published everything (its backlog).
 *
 * Hub-side latency (receipt by the gateway → store writes done, per report) comes from the `at`
 * the gateway stamps on every message: it includes the wait in the hub's own queues, not the wait
 * inside the broker, so the drain time is the end-to-end measure.
 *
 *   npm run bench:mqtt
 *   FIRMWARD_BENCH_MQTT_DEVICES=2000 FIRMWARD_BENCH_MQTT_ROUNDS=5 npm run bench:mqtt
 *   FIRMWARD_BENCH_STORE=postgres npm run bench:mqtt      # FIRMWARD_BENCH_POSTGRES_URL, default the local test server
 *   FIRMWARD_BENCH_SQLITE_DIR=/var/tmp npm run bench:mqtt  # SQLite on a disk instead of tmpfs: every report's commit is an fsync
 *   FIRMWARD_BENCH_MQTT_HUBS=1,3 npm run bench:mqtt       # scale-out: 1, then 3 hub processes in a shared group on one PostgreSQL database
 *
 * Numbers only: nothing here asserts on time.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'mqtt';
import { Client, escapeIdentifier } from 'pg';
import type { EpochMs } from '@firmward/core';
import { HUB_CLIENT_ID_PREFIX, HUB_TOPIC_FILTERS, MqttDeviceGateway } from '@firmward/mqtt';
import { SystemClock, silentLogger } from '@firmward/ports';
import type { GatewayHandler, Store } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { PostgresStore } from '@firmward/store-postgres';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { countingStore } from './counting-store.ts';
import { Tally, countingLogger } from './mqtt-fleet-counting.ts';
import type { StoreCallCounts } from './counting-store.ts';
import { startFleetBroker } from './mqtt-fleet-broker.ts';
import { scaleOutPhase, scaleOutRows } from './mqtt-fleet-scale-out.ts';
import type { ScaleOutPhase } from './mqtt-fleet-scale-out.ts';
import { createBenchDatabase, serverInfo } from './scale-postgres.ts';
import type { BenchDatabase } from './scale-postgres.ts';
import type { FleetBroker } from './mqtt-fleet-broker.ts';
import { FLEET_HARDWARE_REVISION, FLEET_VERSION, fleetDeviceId, fleetHomeId, fleetModel, fleetPassword } from './mqtt-fleet-shared.ts';
import { forkDevices } from './mqtt-fleet-process.ts';
import type { DeviceProcess } from './mqtt-fleet-process.ts';
import { FixedReleaseSource, benchDevice, benchHome, envInt, mib, ms, printMachine, printTable, quantile } from './support.ts';

/** Hub instance counts of the scale-out phases, or null for the in-process hub phase (B). */
const HUB_COUNTS = hubCounts(process.env['FIRMWARD_BENCH_MQTT_HUBS']);
/**
 * Fewer by default in the scale-out phases: there every instance catches up on every device's
 * retained state and availability, and PostgreSQL takes a few hundred reports a second here, so
 * 10,000 devices would make the run about 8 minutes; 2,000 × 5 rounds keep it near 2.
 */
const DEVICES = envInt('FIRMWARD_BENCH_MQTT_DEVICES', HUB_COUNTS === null ? 10_000 : 2_000);
const ROUNDS = envInt('FIRMWARD_BENCH_MQTT_ROUNDS', HUB_COUNTS === null ? 20 : 5);
const WORKERS = Math.min(envInt('FIRMWARD_BENCH_MQTT_WORKERS', 4), DEVICES);
const PUBLISH_WINDOW = envInt('FIRMWARD_BENCH_MQTT_WINDOW', 200);
const CONNECT_WINDOW = envInt('FIRMWARD_BENCH_MQTT_CONNECT_WINDOW', 50);
/** A phase that has not received everything by then ends with a shortfall in the table instead of hanging. */
const PHASE_TIMEOUT_MS = envInt('FIRMWARD_BENCH_MQTT_TIMEOUT_SECONDS', 120) * 1000;
const STORE_KIND = process.env['FIRMWARD_BENCH_STORE'] ?? 'sqlite';
/** Where the SQLite file lives: tmpfs by default, so the hub is measured, not the disk; a disk folder shows what its fsyncs cost. */
const SQLITE_DIR = process.env['FIRMWARD_BENCH_SQLITE_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
const POSTGRES_URL = process.env['FIRMWARD_BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const HUB_USER = 'hub';
const SHARED_GROUP = 'firmward-bench';

function hubCounts(raw: string | undefined): number[] | null {
  if (raw === undefined || raw.trim() === '') return null;
  const counts = raw.split(',').map((c) => Number(c.trim()));
  if (counts.some((c) => !Number.isInteger(c) || c < 1 || c > 16)) throw new Error(`FIRMWARD_BENCH_MQTT_HUBS must be hub instance counts from 1 to 16, separated by commas (e.g. "1,3"), got "${raw}"`);
  return counts;
}

const LIVE_REPORTS = DEVICES * ROUNDS;
/** Each device's retained state and retained availability. */
const RETAINED = DEVICES * 2;

// ── counting ────────────────────────────────────────────────────────────────────────────────

/** The engine as the gateway's handler, counting each message once the engine is done with it. */
class CountingHandler implements GatewayHandler {
  readonly states = new Tally();
  readonly availabilities = new Tally();
  readonly retained = new Tally();
  /** Receipt → handled, per live report, in ms; collected only while `live`. */
  readonly latencies: number[] = [];
  live = false;
  readonly #engine: RolloutEngine;
  readonly #clock: SystemClock;

  constructor(engine: RolloutEngine, clock: SystemClock) {
    this.#engine = engine;
    this.#clock = clock;
  }

  async onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    await this.#engine.onState(deviceId, state, at);
    if (this.live) {
      this.latencies.push(this.#clock.now() - at);
      this.states.add();
    } else {
      this.retained.add();
    }
  }

  async onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    await this.#engine.onAvailability(deviceId, online, at);
    this.availabilities.add();
    if (!this.live) this.retained.add();
  }

  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    return this.#engine.onEvent(deviceId, event, at);
  }

  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#engine.onRejected(info);
  }
}

// ── measuring one live phase ────────────────────────────────────────────────────────────────

interface LivePhase {
  received: number;
  complete: boolean;
  /** First publish → last report handled. */
  elapsedMs: number;
  /** First publish → every device process done publishing (every PUBACK in). */
  publishMs: number;
  /** Last publish acknowledged → last report handled (0 when the subscriber kept up). */
  drainMs: number;
  /** This process's CPU time during the phase. */
  cpuMs: number;
  brokerCpuMs: number | null;
}

async function livePhase(devices: readonly DeviceProcess[], firstRound: number, tally: Tally, broker: FleetBroker): Promise<LivePhase> {
  const target = tally.count + LIVE_REPORTS;
  const cpu0 = process.cpuUsage();
  const brokerCpu0 = broker.cpuMs();
  const t0 = performance.now();
  const reached = tally.reach(target, PHASE_TIMEOUT_MS);
  await Promise.all(devices.map((d) => d.ask({ kind: 'publish', firstRound, rounds: ROUNDS }, 'published')));
  const published = performance.now();
  const complete = await reached;
  const cpu = process.cpuUsage(cpu0);
  const brokerCpu1 = broker.cpuMs();
  return {
    received: tally.count - (target - LIVE_REPORTS), complete,
    elapsedMs: tally.reachedAt - t0, publishMs: published - t0, drainMs: Math.max(0, tally.reachedAt - published),
    cpuMs: (cpu.user + cpu.system) / 1000,
    brokerCpuMs: brokerCpu0 !== null && brokerCpu1 !== null ? brokerCpu1 - brokerCpu0 : null,
  };
}

// ── the store ───────────────────────────────────────────────────────────────────────────────

interface BenchStore {
  store: Store;
  where: string;
  /** The database of its own, where the scale-out phases' instances open it too. */
  database: BenchDatabase | null;
  close(): Promise<void>;
}

async function openStore(): Promise<BenchStore> {
  if (HUB_COUNTS !== null) {
    const database = await createBenchDatabase();
    try {
      const store = await PostgresStore.open({ url: database.url });
      return {
        store, database, where: `${await serverInfo(database.url)}, database ${database.name} (made for this run)`,
        async close() {
          await store.close();
          await database.drop();
        },
      };
    } catch (error) {
      await database.drop();
      throw error;
    }
  }
  if (STORE_KIND === 'postgres') {
    const schema = `fw_bench_mqtt_${process.pid}_${randomBytes(4).toString('hex')}`;
    const store = await PostgresStore.open({ url: POSTGRES_URL, schema });
    return {
      store, database: null, where: `PostgreSQL ${store.location}, schema ${schema}`,
      async close() {
        await store.close();
        const admin = new Client({ connectionString: POSTGRES_URL });
        await admin.connect();
        try {
          await admin.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(schema)} CASCADE`);
        } finally {
          await admin.end();
        }
      },
    };
  }
  if (STORE_KIND !== 'sqlite') throw new Error(`FIRMWARD_BENCH_STORE must be "sqlite" or "postgres", got "${STORE_KIND}"`);
  const dir = mkdtempSync(path.join(SQLITE_DIR, 'firmward-bench-mqtt-'));
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  return {
    store, database: null, where: `SQLite ${dir}/hub.db (WAL, synchronous=FULL)`,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function seed(store: Store): Promise<void> {
  const homes = Math.ceil(DEVICES / 5);
  // Batches keep each transaction short, as the hub's own bulk writes are.
  for (let from = 0; from < DEVICES; from += 1000) {
    await store.transaction(async (tx) => {
      for (let i = from; i < Math.min(DEVICES, from + 1000); i++) {
        if (i % 5 === 0) await tx.putHome(benchHome(fleetHomeId(i), 60));
        await tx.putDevice(benchDevice(fleetDeviceId(i), fleetHomeId(i), fleetModel(i), FLEET_VERSION, FLEET_HARDWARE_REVISION));
      }
    });
  }
  console.log(`seeded ${homes.toLocaleString('en')} homes × 5 = ${DEVICES.toLocaleString('en')} devices, no jobs`);
}

// ── the run ─────────────────────────────────────────────────────────────────────────────────

const n = (x: number) => Math.round(x).toLocaleString('en');
const perSecond = (count: number, elapsedMs: number) => count / (elapsedMs / 1000);

async function main(): Promise<void> {
  printMachine();
  const runKey = randomBytes(32).toString('hex');
  const hubPassword = randomBytes(24).toString('base64url');
  const ids = Array.from({ length: DEVICES }, (_, i) => fleetDeviceId(i));

  let t = performance.now();
  const broker = await startFleetBroker({ hub: { username: HUB_USER, password: hubPassword }, devices: ids.map((id) => ({ username: id, password: fleetPassword(runKey, id) })) });
  console.log(`Mosquitto on ${broker.url} (${DEVICES.toLocaleString('en')} users with hashed passwords, per-device ACL, fd limit ${broker.fileLimit}) started in ${ms(performance.now() - t)}`);
  const devices: DeviceProcess[] = [];
  let opened: BenchStore | null = null;
  let gateway: MqttDeviceGateway | null = null;
  try {
    opened = await openStore();
    console.log(`store: ${opened.where}`);
    await seed(opened.store);

    // Devices connect: every one logs in with its own password and leaves a retained state.
    t = performance.now();
    const share = Math.ceil(DEVICES / WORKERS);
    const slices = Array.from({ length: WORKERS }, (_, w) => ({ from: w * share, to: Math.min(DEVICES, (w + 1) * share) })).filter((s) => s.from < s.to);
    for (let i = 0; i < slices.length; i++) devices.push(forkDevices());
    await Promise.all(devices.map((d, w) => d.ask({ kind: 'start', url: broker.url, runKey, ...slices[w]!, connectWindow: CONNECT_WINDOW, publishWindow: PUBLISH_WINDOW }, 'connected')));
    const connectMs = performance.now() - t;
    console.log(`${DEVICES.toLocaleString('en')} devices connected through ${devices.length} processes in ${ms(connectMs)}; ${LIVE_REPORTS.toLocaleString('en')} live reports per phase`);

    // ── A. the baseline: Mosquitto delivering to a subscriber that only counts ──
    const bareRetained = new Tally();
    const bareLive = new Tally();
    t = performance.now();
    const bare = connect(broker.url, { clientId: `${HUB_CLIENT_ID_PREFIX}bare-${randomUUID()}`, username: HUB_USER, password: hubPassword, protocolVersion: 4, clean: true, reconnectPeriod: 1000 });
    bare.on('message', (_topic, _payload, packet) => (packet.retain ? bareRetained.add() : bareLive.add()));
    const bareCaughtUp = bareRetained.reach(RETAINED, PHASE_TIMEOUT_MS);
    await bare.subscribeAsync([...HUB_TOPIC_FILTERS], { qos: 1 });
    const bareCatchUp = { complete: await bareCaughtUp, ms: bareRetained.reachedAt - t, received: bareRetained.count };
    const a = await livePhase(devices, 1, bareLive, broker);
    await bare.endAsync();
    const baseline = perSecond(a.received, a.elapsedMs);
    const shortfall = (p: { received: number; complete: boolean }, of: number) => (p.complete ? '' : ` (only ${n(p.received)} of ${n(of)} before the timeout)`);
    // CPU per message drifts far less than msg/s when other work shares the machine.
    const cpu = (p: LivePhase, who: string) => `${who} CPU ${ms(p.cpuMs)} (${ms(p.cpuMs / Math.max(1, p.received))}/msg)${p.brokerCpuMs !== null ? `, Mosquitto CPU ${ms(p.brokerCpuMs)}` : ''}`;
    const header = ['what', 'messages', 'time', 'msg/s', 'vs A', 'note'];
    const baselineRows = [
      ['devices connect + first state', n(DEVICES), ms(connectMs), n(perSecond(DEVICES, connectMs)), '', 'login (PBKDF2), will, subscribe, online, state'],
      ['A catch-up: bare subscriber, retained', n(bareCatchUp.received), ms(bareCatchUp.ms), n(perSecond(bareCatchUp.received, bareCatchUp.ms)), '', `state + availability of every device${shortfall(bareCatchUp, RETAINED)}`],
      ['A live: bare subscriber', n(a.received), ms(a.elapsedMs), n(baseline), '1.00', `devices done publishing at ${ms(a.publishMs)}, drain ${ms(a.drainMs)}; ${cpu(a, 'subscriber')}${shortfall(a, LIVE_REPORTS)}`],
    ];

    // ── H. scale-out: 1, 3, … hub processes in one shared group on one PostgreSQL database ──
    if (HUB_COUNTS !== null && opened.database !== null) {
      const setup = {
        devices, broker, hub: { username: HUB_USER, password: hubPassword }, database: opened.database,
        fleetSize: DEVICES, rounds: ROUNDS, timeoutMs: PHASE_TIMEOUT_MS, group: SHARED_GROUP,
      };
      const phases: ScaleOutPhase[] = [];
      for (const [k, count] of HUB_COUNTS.entries()) {
        const phase = await scaleOutPhase(setup, count, 1 + ROUNDS * (k + 1));
        console.log(`${count} hub instance${count === 1 ? '' : 's'}: ${n(phase.handled)} of ${n(phase.sent)} reports in ${ms(phase.elapsedMs)}, ${n(phase.lost)} lost, ${n(phase.duplicates)} duplicates`);
        phases.push(phase);
      }
      const first = phases[0] ?? null;
      // The machine is shared: what else ran shows in the load average.
      console.log(`load average (1, 5, 15 min): ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
      printTable(`mqtt fleet scale-out: ${n(DEVICES)} devices, ${devices.length} device processes, QoS 1 retained state reports, shared group "${SHARED_GROUP}", one PostgreSQL database`, [
        header, ...baselineRows,
        ...phases.flatMap((p) => scaleOutRows(p, baseline, p === first ? null : first)),
      ]);
      const rates = phases.map((p) => `${p.instances} hub${p.instances === 1 ? '' : 's'} ${n(perSecond(p.handled, p.elapsedMs))} msg/s (${n(p.lost)} lost, ${n(p.duplicates)} duplicates)`);
      const last = phases.at(-1);
      const ratio = first && last ? perSecond(last.handled, last.elapsedMs) / perSecond(first.handled, first.elapsedMs) : Number.NaN;
      console.log(`\nmqtt fleet scale-out: devices ${DEVICES} · baseline ${n(baseline)} msg/s · ${rates.join(' · ')} · ${last?.instances ?? '?'} vs ${first?.instances ?? '?'}: ${ratio.toFixed(2)}×`);
      return;
    }

    // ── B. the hub: the gateway and the engine on the seeded store ──
    const { store, counts } = countingStore(opened.store);
    const clock = new SystemClock();
    const hubLog = countingLogger();
    gateway = new MqttDeviceGateway({ url: broker.url, username: HUB_USER, password: hubPassword, clock, logger: silentLogger });
    const engine = new RolloutEngine({
      store, gateway, source: new FixedReleaseSource([]), clock, log: hubLog.log,
      config: { tickMs: 1000, offerResendSeconds: 30, releaseRefreshSeconds: 300 },
      imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
    });
    const handler = new CountingHandler(engine, clock);
    let rssPeak = 0;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 100);
    const rssBefore = process.memoryUsage.rss();
    t = performance.now();
    const hubCaughtUp = handler.retained.reach(RETAINED, PHASE_TIMEOUT_MS);
    await gateway.start(handler);
    const hubCatchUp = { complete: await hubCaughtUp, ms: handler.retained.reachedAt - t, received: handler.retained.count };
    const before: Pick<StoreCallCounts, 'reads' | 'commits' | 'failed'> = { reads: counts.reads, commits: counts.commits, failed: counts.failed };
    handler.live = true;
    const b = await livePhase(devices, 1 + ROUNDS, handler.states, broker);
    clearInterval(sampler);
    await gateway.stop();
    gateway = null;

    // ── the report ──
    const latencies = [...handler.latencies].sort((x, y) => x - y);
    const hub = perSecond(b.received, b.elapsedMs);
    const ratio = hub / baseline;
    const reports = Math.max(1, b.received);
    printTable(`mqtt fleet: ${n(DEVICES)} devices, ${devices.length} device processes, QoS 1 retained state reports, ${STORE_KIND}`, [
      header, ...baselineRows,
      ['B catch-up: hub, retained', n(hubCatchUp.received), ms(hubCatchUp.ms), n(perSecond(hubCatchUp.received, hubCatchUp.ms)), (perSecond(hubCatchUp.received, hubCatchUp.ms) / perSecond(bareCatchUp.received, bareCatchUp.ms)).toFixed(2), `onState + onAvailability, store writes done${shortfall(hubCatchUp, RETAINED)}`],
      ['B live: hub (gateway + engine.onState)', n(b.received), ms(b.elapsedMs), n(hub), ratio.toFixed(2), `devices done publishing at ${ms(b.publishMs)}, drain ${ms(b.drainMs)}; ${cpu(b, 'hub')}${shortfall(b, LIVE_REPORTS)}`],
      ['  hub latency receipt → stored', '', `${ms(quantile(latencies, 0.5))} / ${ms(quantile(latencies, 0.99))}`, '', '', 'p50 / p99; the wait inside the broker is in "drain"'],
      ['  store calls per live report', '', '', '', '', `${((counts.reads - before.reads) / reports).toFixed(1)} reads, ${((counts.commits - before.commits) / reports).toFixed(1)} commits, ${counts.failed - before.failed} failed`],
      ['  hub process RSS', '', '', '', '', `${mib(rssBefore)} before B, ${mib(rssPeak)} peak during B`],
      ['  hub warnings / errors', '', '', '', '', `${hubLog.warnings()} / ${hubLog.errors()} (a refused report is a warning)`],
    ]);
    // The benchmark may run as root; Mosquitto says so once, which is not news.
    const brokerLog = broker.log().split('\n').filter((l) => l.trim() !== '' && !l.includes('should not be run as root')).join('\n');
    if (brokerLog !== '') console.log(`\nMosquitto said:\n${brokerLog.split('\n').slice(0, 10).join('\n')}`);
    console.log(`\nmqtt fleet: devices ${DEVICES} · baseline ${n(baseline)} msg/s · hub ${n(hub)} msg/s · ratio ${ratio.toFixed(2)}`);
  } finally {
    await gateway?.stop();
    await Promise.all(devices.map((d) => d.exit().catch(() => d.kill())));
    await broker.stop();
    await opened?.close();
  }
}

await main();
