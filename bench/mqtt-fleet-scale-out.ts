/**
 * The scale-out phases of the MQTT fleet benchmark (FIRMWARD_BENCH_MQTT_HUBS, e.g. "1,3"): for
 * each count, that many hub instances, each in its own Node process (mqtt-fleet-hub.ts), all in
 * one shared subscription group on the benchmark's Mosquitto and all on one PostgreSQL database,
 * as several hubs of one deployment are (DESIGN, scale-out). The devices publish one live phase
 * of reports; the instances' rates are added up, and every report is checked to have been
 * handled exactly once in all (the round each report carries tells them apart).
 *
 * Where the time goes is measured per process: each instance's CPU per report, its store calls and
 * SQL statements per report (each statement at least one round trip), the PostgreSQL backends' CPU
 * (read from /proc for the connections to the benchmark's database) and Mosquitto's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { processCpuMs } from './mqtt-fleet-broker.ts';
import type { FleetBroker } from './mqtt-fleet-broker.ts';
import { forkHub } from './mqtt-fleet-process.ts';
import type { DeviceProcess, HubProcess } from './mqtt-fleet-process.ts';
import type { HubCollected } from './mqtt-fleet-shared.ts';
import { mib, ms } from './support.ts';

export interface ScaleOutSetup {
  devices: readonly DeviceProcess[];
  broker: FleetBroker;
  hub: { username: string; password: string };
  /** The seeded database every instance opens. */
  database: { name: string; url: string };
  fleetSize: number;
  rounds: number;
  timeoutMs: number;
  /** The shared subscription group the instances join. */
  group: string;
}

export interface ScaleOutPhase {
  instances: number;
  catchUp: { retained: number; ms: number; complete: boolean };
  /** Live reports handled in all (duplicates included), and how many were sent. */
  handled: number;
  sent: number;
  /** First publish → last report handled by any instance. */
  elapsedMs: number;
  publishMs: number;
  drainMs: number;
  /** Reports handled by no instance; extra handlings of a report already handled (summed over reports). */
  lost: number;
  duplicates: number;
  /** State or availability messages of another round handled during the live phase. */
  outside: number;
  complete: boolean;
  /** The phase ended on its timeout: a report counted lost may only have been still queued. */
  timedOut: boolean;
  perInstance: HubCollected[];
  brokerCpuMs: number | null;
  postgresCpuMs: number | null;
  /** What the connections to the database were doing, sampled every ~100 ms: share of samples by state (pg_stat_activity). */
  postgresStates: Map<string, number>;
}

const wallNow = () => performance.timeOrigin + performance.now();

/** CPU used so far by each server process serving a connection to `database` (pid → ms), or null where /proc cannot tell. */
async function backendCpu(admin: Client, database: string): Promise<Map<number, number> | null> {
  const { rows } = await admin.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()", [database]);
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    const used = processCpuMs(pid);
    if (used === null) return null;
    cpu.set(pid, used);
  }
  return cpu;
}

/** CPU the backends used between two readings; a connection opened in between counts from zero. */
function backendCpuSpent(before: Map<number, number> | null, after: Map<number, number> | null): number | null {
  if (before === null || after === null) return null;
  let spent = 0;
  for (const [pid, used] of after) spent += used - (before.get(pid) ?? 0);
  return spent;
}

/**
 * One look at what the connections to `database` are doing, added to `into`: "on CPU" (active,
 * no wait), a wait event type (Lock: a row lock such as recordTelemetry's FOR UPDATE; IO, LWLock:
 * WAL writes and flushes, the commit's fsync among them), or "idle"/"idle in transaction" (waiting
 * for the hub's next statement: the round trip and the hub's own work).
 */
async function sampleBackends(admin: Client, database: string, into: Map<string, number>): Promise<void> {
  const { rows } = await admin.query<{ what: string; n: number }>(
    `SELECT CASE WHEN state = 'active' THEN coalesce(wait_event_type || ' wait', 'on CPU') ELSE coalesce(state, '?') END AS what, count(*)::int AS n
     FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1`,
    [database],
  );
  for (const { what, n } of rows) into.set(what, (into.get(what) ?? 0) + n);
}

async function askAll<T>(hubs: readonly HubProcess[], ask: (hub: HubProcess) => Promise<T>): Promise<T[]> {
  return Promise.all(hubs.map(ask));
}

async function handledSoFar(hubs: readonly HubProcess[]): Promise<number> {
  return (await askAll(hubs, (h) => h.ask({ kind: 'tally' }, 'tally'))).reduce((sum, t) => sum + t.handled, 0);
}

/** Runs one phase with `instances` hub processes; the devices publish rounds `firstRound` … */
export async function scaleOutPhase(s: ScaleOutSetup, instances: number, firstRound: number): Promise<ScaleOutPhase> {
  const sent = s.fleetSize * s.rounds;
  const hubs: HubProcess[] = [];
  const admin = new Client({ connectionString: s.database.url });
  await admin.connect();
  try {
    for (let i = 0; i < instances; i++) hubs.push(forkHub());
    // The instances start together, as after a deployment: each catches up on every retained copy.
    const ready = await Promise.all(hubs.map((h, i) => h.ask({
      kind: 'start', url: s.broker.url, username: s.hub.username, password: s.hub.password, clientId: `hub/bench-${instances}-${i + 1}`,
      sharedGroup: s.group, instanceId: `bench-${instances}-${i + 1}`, databaseUrl: s.database.url, devices: s.fleetSize, timeoutMs: s.timeoutMs,
    }, 'ready')));
    const catchUp = { retained: ready.reduce((sum, r) => sum + r.retained, 0), ms: Math.max(...ready.map((r) => r.catchUpMs)), complete: ready.every((r) => r.complete) };
    await askAll(hubs, (h) => h.ask({ kind: 'live', firstRound, rounds: s.rounds }, 'live-ready'));

    const brokerCpu0 = s.broker.cpuMs();
    const postgres0 = await backendCpu(admin, s.database.name);
    const t0 = performance.now();
    const wall0 = wallNow();
    const published = Promise.all(s.devices.map((d) => d.ask({ kind: 'publish', firstRound, rounds: s.rounds }, 'published'))).then(() => performance.now());
    let handled = 0;
    const postgresStates = new Map<string, number>();
    while (handled < sent && performance.now() - t0 < s.timeoutMs) {
      await sleep(100);
      handled = await handledSoFar(hubs);
      await sampleBackends(admin, s.database.name, postgresStates);
    }
    const timedOut = handled < sent;
    const publishedAt = await published;
    // A report handled twice would make the sum reach `sent` early: wait until the count stands still.
    for (let settled = 0; settled < 3 && performance.now() - t0 < s.timeoutMs;) {
      await sleep(200);
      const now = await handledSoFar(hubs);
      settled = now === handled ? settled + 1 : 0;
      handled = now;
    }
    const brokerCpu1 = s.broker.cpuMs();
    const postgres1 = await backendCpu(admin, s.database.name);
    const perInstance = await askAll(hubs, (h) => h.ask({ kind: 'collect' }, 'collected'));

    // Every report, over all instances: 0 is a loss, 2 or more a duplicate.
    const times = new Uint16Array(sent);
    for (const c of perInstance) {
      const seen = Buffer.from(c.seen, 'base64');
      for (let i = 0; i < sent; i++) times[i]! += seen[i]!;
    }
    let lost = 0;
    let duplicates = 0;
    for (const count of times) {
      if (count === 0) lost++;
      else duplicates += count - 1;
    }
    const lastAt = Math.max(...perInstance.map((c) => (Number.isNaN(c.lastAt) ? -Infinity : c.lastAt)));
    const elapsedMs = lastAt === -Infinity ? performance.now() - t0 : lastAt - wall0;
    return {
      instances, catchUp, sent, lost, duplicates, complete: lost === 0, timedOut,
      handled: perInstance.reduce((sum, c) => sum + c.handled, 0),
      outside: perInstance.reduce((sum, c) => sum + c.outside, 0),
      elapsedMs, publishMs: publishedAt - t0, drainMs: Math.max(0, elapsedMs - (publishedAt - t0)),
      perInstance,
      brokerCpuMs: brokerCpu0 !== null && brokerCpu1 !== null ? brokerCpu1 - brokerCpu0 : null,
      postgresCpuMs: backendCpuSpent(postgres0, postgres1),
      postgresStates,
    };
  } finally {
    await Promise.all(hubs.map((h) => h.exit().catch(() => h.kill())));
    await admin.end();
  }
}

/** "on CPU 40 %, idle 35 %, …", largest first. */
function backendShares(states: ReadonlyMap<string, number>): string {
  const total = [...states.values()].reduce((sum, c) => sum + c, 0);
  if (total === 0) return 'not sampled';
  return [...states].sort((a, b) => b[1] - a[1]).map(([what, c]) => `${what} ${((c / total) * 100).toFixed(0)} %`).join(', ') + ' of samples';
}

const n = (x: number) => Math.round(x).toLocaleString('en');
const perSecond = (count: number, elapsedMs: number) => count / (elapsedMs / 1000);

/** The table rows of one phase: the phase, then one row per instance; `baseline` is the bare subscriber's live rate. */
export function scaleOutRows(p: ScaleOutPhase, baseline: number, one: ScaleOutPhase | null): string[][] {
  const rate = perSecond(p.handled, p.elapsedMs);
  const label = `${p.instances} hub instance${p.instances === 1 ? '' : 's'}`;
  const cpuAll = p.perInstance.reduce((sum, c) => sum + c.cpuMs, 0);
  const reports = Math.max(1, p.handled);
  const queries = p.perInstance.reduce((sum, c) => sum + c.queries, 0);
  const vsOne = one === null ? '' : `; ${(rate / perSecond(one.handled, one.elapsedMs)).toFixed(2)}× ${one.instances} instance`;
  const rows: string[][] = [
    [`H${p.instances} catch-up: ${label}, retained`, n(p.catchUp.retained), ms(p.catchUp.ms), n(perSecond(p.catchUp.retained, p.catchUp.ms)), '',
      `every instance gets every device's state + availability${p.catchUp.complete ? '' : ' (not all before the timeout)'}`],
    [`H${p.instances} live: ${label} (gateway + engine.onState, PostgreSQL)`, n(p.handled), ms(p.elapsedMs), n(rate), (rate / baseline).toFixed(2),
      `devices done publishing at ${ms(p.publishMs)}, drain ${ms(p.drainMs)}${vsOne}`],
    ['  exactly once', '', '', '', '', `${n(p.sent)} sent: ${n(p.lost)} lost, ${n(p.duplicates)} duplicates, ${n(p.outside)} other messages during the phase` +
      `${p.timedOut ? ' (ended on the timeout: "lost" counts what was still queued too)' : ''}`],
    ['  where the time goes', '', '', '', '',
      `hub CPU ${ms(cpuAll)} in all (${ms(cpuAll / reports)}/report), ${(queries / reports).toFixed(2)} SQL statements/report` +
      `${p.postgresCpuMs !== null ? `, PostgreSQL backends CPU ${ms(p.postgresCpuMs)} (${ms(p.postgresCpuMs / reports)}/report)` : ''}` +
      `${p.brokerCpuMs !== null ? `, Mosquitto CPU ${ms(p.brokerCpuMs)}` : ''}`],
    ['  PostgreSQL connections', '', '', '', '', backendShares(p.postgresStates)],
  ];
  p.perInstance.forEach((c, i) => {
    const own = Math.max(1, c.handled);
    rows.push([`  instance ${i + 1}`, n(c.handled), '', '', '',
      `${((c.handled / reports) * 100).toFixed(0)} %; CPU ${ms(c.cpuMs)} (${ms(c.cpuMs / own)}/report); receipt → stored p50 ${ms(c.latencyP50Ms)} / p99 ${ms(c.latencyP99Ms)}; ` +
      `${(c.reads / own).toFixed(1)} reads + ${(c.commits / own).toFixed(1)} writes = ${(c.queries / own).toFixed(1)} SQL/report, ${c.failed} failed; RSS peak ${mib(c.rssPeakBytes)}; ${c.warnings} warnings / ${c.errors} errors`]);
  });
  return rows;
}
