/**
 * One hub instance of the MQTT fleet benchmark's scale-out phase (forked by mqtt-fleet.bench.ts,
 * FIRMWARD_BENCH_MQTT_HUBS): in a process of its own, as a deployed hub is, an MqttDeviceGateway
 * in a shared subscription group handing every message to RolloutEngine on a PostgresStore that
 * the other instances share. It counts what it handled, per report, so that the benchmark can
 * add the instances up and tell a report handled twice from one handled nowhere.
 *
 * The engine is constructed as the benchmark's in-process phase does (no tick loop: no jobs exist,
 * the per-report path is measured), with the instance id and the short look interval the hub sets
 * on PostgreSQL (apps/hub/src/hub.ts).
 */
import { Client } from 'pg';
import type { EpochMs } from '@firmward/core';
import { MqttDeviceGateway } from '@firmward/mqtt';
import { SystemClock, silentLogger } from '@firmward/ports';
import type { GatewayHandler } from '@firmward/ports';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { PostgresStore } from '@firmward/store-postgres';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { countingStore } from './counting-store.ts';
import type { StoreCallCounts } from './counting-store.ts';
import { Tally, countingLogger } from './mqtt-fleet-counting.ts';
import { fleetIndexOf, fleetRoundOf } from './mqtt-fleet-shared.ts';
import type { FromHub, HubCollected, HubLive, HubStart, ToHub } from './mqtt-fleet-shared.ts';
import { FixedReleaseSource, quantile } from './support.ts';

// Every SQL statement the store sends is at least one round trip to PostgreSQL: counted here, in
// the benchmark's process only, by wrapping the client class the store's pool makes its clients of.
let queries = 0;
const clientPrototype = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
const sendQuery = clientPrototype.query;
clientPrototype.query = function countedQuery(this: unknown, ...args: unknown[]): unknown {
  queries++;
  return sendQuery.apply(this, args);
};

const wallNow = () => performance.timeOrigin + performance.now();

/** The live phase under way: which rounds are its, and how often this instance handled each report. */
interface Phase {
  firstRound: number;
  rounds: number;
  seen: Uint8Array;
  handled: number;
  lastAt: number;
  outside: number;
  latencies: number[];
  cpu: NodeJS.CpuUsage;
  calls: Pick<StoreCallCounts, 'reads' | 'commits' | 'failed'>;
  queries: number;
  rssPeak: number;
}

class CountingHandler implements GatewayHandler {
  /** Retained states and availabilities handled before the first live phase (the catch-up). */
  readonly retained = new Tally();
  phase: Phase | null = null;
  readonly #engine: RolloutEngine;
  readonly #clock: SystemClock;
  readonly #devices: number;

  constructor(engine: RolloutEngine, clock: SystemClock, devices: number) {
    this.#engine = engine;
    this.#clock = clock;
    this.#devices = devices;
  }

  async onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    await this.#engine.onState(deviceId, state, at);
    const p = this.phase;
    if (p === null) return this.retained.add();
    const index = fleetIndexOf(deviceId);
    const round = fleetRoundOf(state) - p.firstRound;
    if (index < 0 || index >= this.#devices || round < 0 || round >= p.rounds) {
      p.outside++;
      return;
    }
    const slot = index * p.rounds + round;
    p.seen[slot] = Math.min(255, p.seen[slot]! + 1);
    p.handled++;
    p.lastAt = wallNow();
    p.latencies.push(this.#clock.now() - at);
  }

  async onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    await this.#engine.onAvailability(deviceId, online, at);
    if (this.phase === null) this.retained.add();
    else this.phase.outside++;
  }

  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    return this.#engine.onEvent(deviceId, event, at);
  }

  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.#engine.onRejected(info);
  }
}

interface Running {
  store: PostgresStore;
  counts: StoreCallCounts;
  gateway: MqttDeviceGateway;
  handler: CountingHandler;
  log: ReturnType<typeof countingLogger>;
  devices: number;
}

let running: Running | null = null;
let sampler: NodeJS.Timeout | null = null;

function tell(message: FromHub): void {
  process.send?.(message);
}

async function start(s: HubStart): Promise<void> {
  const store = await PostgresStore.open({ url: s.databaseUrl, logger: silentLogger });
  const counted = countingStore(store);
  const clock = new SystemClock();
  const log = countingLogger(`hub ${s.instanceId}`);
  const gateway = new MqttDeviceGateway({ url: s.url, username: s.username, password: s.password, clientId: s.clientId, sharedGroup: s.sharedGroup, clock, logger: log.log });
  const engine = new RolloutEngine({
    store: counted.store, gateway, source: new FixedReleaseSource([]), clock, log: log.log,
    config: { tickMs: 1000, offerResendSeconds: 30, releaseRefreshSeconds: 300, instanceId: s.instanceId, lookAtLeastEverySeconds: 30 },
    imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
  });
  const handler = new CountingHandler(engine, clock, s.devices);
  running = { store, counts: counted.counts, gateway, handler, log, devices: s.devices };
  const t = performance.now();
  const caughtUp = handler.retained.reach(s.devices * 2, s.timeoutMs);
  await gateway.start(handler);
  const complete = await caughtUp;
  tell({ kind: 'ready', retained: handler.retained.count, catchUpMs: handler.retained.reachedAt - t, complete });
}

function live(l: HubLive): void {
  const r = running;
  if (r === null) throw new Error('"live" before "start"');
  r.handler.phase = {
    firstRound: l.firstRound, rounds: l.rounds, seen: new Uint8Array(r.devices * l.rounds), handled: 0, lastAt: Number.NaN, outside: 0, latencies: [],
    cpu: process.cpuUsage(), calls: { reads: r.counts.reads, commits: r.counts.commits, failed: r.counts.failed }, queries, rssPeak: process.memoryUsage.rss(),
  };
  if (sampler !== null) clearInterval(sampler);
  sampler = setInterval(() => {
    const p = r.handler.phase;
    if (p !== null) p.rssPeak = Math.max(p.rssPeak, process.memoryUsage.rss());
  }, 100);
  tell({ kind: 'live-ready' });
}

function collect(): HubCollected {
  const r = running;
  const p = r?.handler.phase;
  if (!r || !p) throw new Error('"collect" before "live"');
  const cpu = process.cpuUsage(p.cpu);
  const latencies = p.latencies.sort((a, b) => a - b);
  return {
    kind: 'collected', handled: p.handled, lastAt: p.lastAt, seen: Buffer.from(p.seen).toString('base64'), outside: p.outside,
    cpuMs: (cpu.user + cpu.system) / 1000, latencyP50Ms: quantile(latencies, 0.5), latencyP99Ms: quantile(latencies, 0.99),
    reads: r.counts.reads - p.calls.reads, commits: r.counts.commits - p.calls.commits, failed: r.counts.failed - p.calls.failed, queries: queries - p.queries,
    warnings: r.log.warnings(), errors: r.log.errors(), rssPeakBytes: p.rssPeak,
  };
}

async function exit(): Promise<never> {
  if (sampler !== null) clearInterval(sampler);
  const r = running;
  running = null;
  if (r !== null) {
    await r.gateway.stop();
    await r.store.close();
  }
  process.exit(0);
}

process.on('message', (message: ToHub) => {
  const work = (async () => {
    switch (message.kind) {
      case 'start':
        return start(message);
      case 'live':
        return live(message);
      case 'tally':
        return tell({ kind: 'tally', handled: running?.handler.phase?.handled ?? 0 });
      case 'collect':
        return tell(collect());
      case 'exit':
        return exit();
    }
  })();
  work.catch((error: unknown) => {
    tell({ kind: 'failed', error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
});
