/**
 * Scale on PostgreSQL: D devices in H homes (FIRMWARD_BENCH_SCALE_DEVICES, FIRMWARD_BENCH_SCALE_HOMES),
 * all of one model, one release for them, the real PostgresStore on a database made for this run
 * (firmward_bench_<pid>, dropped at the end; FIRMWARD_BENCH_PG_URL names the server), the real
 * RolloutEngine and DefaultHubService on a ManualClock, devices that answer at once
 * (instant-gateway.ts, through the wire contract).
 *
 *   1. Seeding (printed, not the point): homes and devices through the store, then every device
 *      connects and reports through the engine.
 *   2. engine.plan(now): reading the fleet, planning, inserting a queued job and its history line
 *      per device; against its floor: the same number of job rows in bare multi-row INSERTs
 *      (1,000 rows a statement, one transaction) into a copy of the jobs table through `pg`,
 *      run before and after the engine.
 *   3. A staged rollout of the release (waves 1, 5, 25, 100 % of homes; soak 1 simulated second)
 *      driven by engine.tick() + gateway.idle() + clock.advance() until it completes: wall time,
 *      completed jobs/s, time per wave, hub RSS (sampled); against its floor: bare compare-and-set
 *      UPDATE + history INSERT pairs, one transaction each, through `pg` on copies of the tables —
 *      measured on FIRMWARD_BENCH_SCALE_FLOOR_SAMPLE pairs (default 10,000; half before, half after
 *      the rollout) and scaled to the number of transitions the engine made; and one bare round trip.
 *
 * Defaults are 5,000 devices in 1,000 homes (about 6 minutes here). At 100,000 in 20,000 homes the
 * rollout takes hours: every tick reads every home, and its cost grows with the homes, not with
 * the work done (docs/benchmarks.md has the numbers and where the time goes).
 * FIRMWARD_BENCH_SCALE_MAX_TICKS stops the rollout after that many ticks, to measure one tick at
 * full size.
 *
 *   npm run bench:scale      # FIRMWARD_BENCH_SCALE_DEVICES=100000 FIRMWARD_BENCH_SCALE_HOMES=20000 FIRMWARD_BENCH_SCALE_MAX_TICKS=4 npm run bench:scale
 */
import { newJob } from '@firmward/core';
import type { Job, JobState, RolloutState } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { NewHistoryEvent } from '@firmward/ports';
import { PostgresStore } from '@firmward/store-postgres';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { DefaultHubService } from '../apps/hub/src/hub-service.ts';
import { InstantDeviceGateway } from '../packages/ports/testing/instant-gateway.ts';
import { BareFloor, createBenchDatabase, serverInfo } from './scale-postgres.ts';
import type { BenchDatabase } from './scale-postgres.ts';
import { copyTimes, timedStore, timesSince } from './scale-timed-store.ts';
import {
  FixedReleaseSource, VENDOR, benchDevice, benchHome, benchRelease, envInt, mib, ms, pct, peakRssBytes, printMachine, printTable, rate, summary,
} from './support.ts';

const DEVICES = envInt('FIRMWARD_BENCH_SCALE_DEVICES', 5_000);
const HOMES = envInt('FIRMWARD_BENCH_SCALE_HOMES', 1_000);
const FLOOR_SAMPLE = envInt('FIRMWARD_BENCH_SCALE_FLOOR_SAMPLE', 10_000);
/** Stop the rollout after this many ticks (a full-size run then shows what one tick costs at that size). */
const MAX_TICKS = envInt('FIRMWARD_BENCH_SCALE_MAX_TICKS', Number.POSITIVE_INFINITY);
/** Bare round trips measured before and after the rollout. */
const ROUND_TRIPS = 1000;
const WAVES = [1, 5, 25, 100];
const SOAK_SECONDS = 1;
const TICK_MS = 1000;
const MODEL = 'Plug';
const FROM = '1.0.0';
const TO = '2.0.0';
const START = Date.parse('2026-03-02T02:00:00Z');
/** Homes seeded per store transaction (with their devices). */
const SEED_HOMES_PER_TX = 500;
const RSS_SAMPLE_MS = 100;

const gc = (globalThis as { gc?: () => void }).gc;

const homeId = (h: number) => `home-${String(h).padStart(6, '0')}`;
const devicesIn = (h: number) => Math.floor(DEVICES / HOMES) + (h < DEVICES % HOMES ? 1 : 0);
const deviceId = (h: number, d: number) => `${homeId(h)}-dev${d}`;

/** Every transition one job makes with an instant device (held in line or by its wave first), in order. */
const PATH: readonly JobState[] = ['queued', 'waiting', 'offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming', 'succeeded'];

/** The engine as the hub runs it, with the plans of what changed timed (each tick calls this.planChanged). */
class TimedEngine extends RolloutEngine {
  replans = { calls: 0, ms: 0, created: 0 };
  override async planChanged(now?: number): Promise<number> {
    const t = performance.now();
    const created = await super.planChanged(now);
    this.replans.calls++;
    this.replans.ms += performance.now() - t;
    this.replans.created += created;
    return created;
  }
}

/** The resident set, sampled: the peak of this phase, not of the whole process (process.resourceUsage keeps that). */
class RssSampler {
  peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor() {
    this.sample();
    this.#timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
    this.#timer.unref();
  }
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peak;
  }
}

interface WaveRecord {
  wave: number;
  ticks: number;
  wallMs: number;
  succeeded: number;
}

async function run(db: BenchDatabase): Promise<void> {
  console.log(await serverInfo(db.url));
  console.log(`scale: ${DEVICES} devices in ${HOMES} homes, one model and one release (${FROM} → ${TO}), staged rollout in waves of ${WAVES.join(', ')} % of homes, soak ${SOAK_SECONDS} s (ManualClock, ${TICK_MS / 1000} s a tick)`);
  const release = benchRelease(MODEL, TO);
  const real = await PostgresStore.open({ url: db.url });
  const floor = await BareFloor.open(db.url);
  try {
    // 1. Seeding: homes and devices through the store, then the devices connect and report.
    const seedStart = performance.now();
    for (let h0 = 0; h0 < HOMES; h0 += SEED_HOMES_PER_TX) {
      await real.transaction(async (tx) => {
        for (let h = h0; h < Math.min(HOMES, h0 + SEED_HOMES_PER_TX); h++) {
          await tx.putHome(benchHome(homeId(h), SOAK_SECONDS));
          for (let d = 0; d < devicesIn(h); d++) await tx.putDevice(benchDevice(deviceId(h, d), homeId(h), MODEL, FROM));
        }
      });
    }
    const seedMs = performance.now() - seedStart;

    const clock = new ManualClock(START);
    const gateway = new InstantDeviceGateway(clock);
    for (let h = 0; h < HOMES; h++) {
      for (let d = 0; d < devicesIn(h); d++) gateway.addDevice(deviceId(h, d), { vendor: VENDOR, model: MODEL, hardwareRevision: 'A', firmwareVersion: FROM });
    }
    const { store, times } = timedStore(real);
    let announced = 0;
    const engine = new TimedEngine({
      store, gateway, source: new FixedReleaseSource([release]), clock, log: silentLogger,
      config: { tickMs: TICK_MS, offerResendSeconds: 600, releaseRefreshSeconds: 365 * 86_400 },
      imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
      onHistory: (e: NewHistoryEvent) => {
        if (e.kind === 'transition') announced++;
      },
    });
    const service = new DefaultHubService({ store, engine, clock, version: 'bench', gatewayName: gateway.name, mqtt: null });
    await gateway.start(engine);
    const connectStart = performance.now();
    gateway.announceAll();
    await gateway.idle();
    const connectMs = performance.now() - connectStart;
    await engine.refreshReleases();
    const started = await service.startRollout({ releaseId: release.id, waves: WAVES }, 'person:bench');

    // 2. engine.plan against bare multi-row INSERTs of as many job rows, before and after it.
    const floorJobs: Job[] = [];
    for (let h = 0; h < HOMES; h++) {
      for (let d = 0; d < devicesIn(h); d++) {
        floorJobs.push(newJob({ id: crypto.randomUUID(), homeId: homeId(h), deviceId: deviceId(h, d), releaseId: release.id, fromVersion: FROM, targetVersion: TO, priority: 2, requestedBy: null }, START));
      }
    }
    const floorEvent = (j: Job) => [START, j.homeId, j.deviceId, j.id, 'decision', null, 'queued', 'planned', `Update available: ${TO}.`, 'hub'];
    const insertsBeforeMs = await floor.insertRows(floorJobs);
    await floor.clear();
    gc?.();
    const rssBeforePlan = process.memoryUsage().rss;
    const planSampler = new RssSampler();
    const planTimes = copyTimes(times);
    const planStart = performance.now();
    const planned = await engine.plan(clock.now());
    const planMs = performance.now() - planStart;
    const planRssPeak = planSampler.stop();
    const planCalls = timesSince(times, planTimes);
    const pairsRefMs = await floor.insertRows(floorJobs, floorEvent);
    await floor.clear();
    const insertsAfterMs = await floor.insertRows(floorJobs);
    const insertsMs = (insertsBeforeMs + insertsAfterMs) / 2;
    engine.replans = { calls: 0, ms: 0, created: 0 };

    // The transition floor's first half, on the jobs just planned (copied back to queued).
    const pairJobs = await floor.copyJobsAsQueued();
    const floorBefore = await floor.transitionPairs(pairJobs, PATH, Math.floor(FLOOR_SAMPLE / 2), 0, START);
    const roundTripsBeforeMs = await floor.roundTrips(ROUND_TRIPS);

    // 3. The staged rollout: ticks, device answers, the clock past the soak, until it completes.
    gc?.();
    const rolloutTimes = copyTimes(times);
    const wire = { ...gateway.counts };
    const sampler = new RssSampler();
    const tickMs: number[] = [];
    const waves: WaveRecord[] = [];
    let wave = { wave: 0, ticks: 0, startedAt: performance.now(), succeededBefore: 0 };
    let state: RolloutState = 'running';
    let ticks = 0;
    let capped = false;
    const rolloutStart = performance.now();
    for (;;) {
      const t = performance.now();
      await engine.tick();
      await gateway.idle();
      tickMs.push(performance.now() - t);
      sampler.sample();
      ticks++;
      wave.ticks++;
      const rollout = await real.getRollout(started.id);
      if (rollout === null) throw new Error('the rollout disappeared from the store');
      state = rollout.state;
      if (rollout.wave !== wave.wave || state === 'completed') {
        // advanceRollout runs at the start of a tick: the wave ended when this tick began.
        const succeeded = await floor.count("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'");
        // The tick that found the last wave done is that wave's last.
        const done = state === 'completed';
        waves.push({ wave: wave.wave, ticks: wave.ticks - (done ? 0 : 1), wallMs: (done ? performance.now() : t) - wave.startedAt, succeeded: succeeded - wave.succeededBefore });
        wave = { wave: rollout.wave, ticks: done ? 0 : 1, startedAt: t, succeededBefore: succeeded };
      }
      if (state === 'completed') break;
      if (state !== 'running') throw new Error(`the rollout is ${state}: ${rollout.reason?.message ?? ''}`);
      if (ticks >= MAX_TICKS) {
        capped = true;
        waves.push({ wave: wave.wave, ticks: wave.ticks, wallMs: performance.now() - wave.startedAt, succeeded: (await floor.count("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'")) - wave.succeededBefore });
        break;
      }
      if (ticks > WAVES.length * 20 * Math.ceil(DEVICES / HOMES) + 50) throw new Error('the rollout did not finish; the engine is stuck');
      await clock.advance(TICK_MS);
    }
    const rolloutMs = performance.now() - rolloutStart;
    const rolloutRssPeak = sampler.stop();
    const rolloutCalls = timesSince(times, rolloutTimes);
    const replans = { ...engine.replans };
    const wireDelta = { commands: gateway.counts.commands - wire.commands, deviceMessages: gateway.counts.deviceMessages - wire.deviceMessages };
    const heapUsed = process.memoryUsage().heapUsed;
    gc?.();
    const heapRetained = gc ? process.memoryUsage().heapUsed : null;
    await gateway.stop();

    // Counted from the database itself, not only from what the engine announced.
    const transitions = await floor.count("SELECT count(*) AS n FROM events WHERE kind = 'transition'");
    const succeeded = await floor.count("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'");
    const open = await floor.count("SELECT count(*) AS n FROM jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled')");
    const roundTripsAfterMs = await floor.roundTrips(ROUND_TRIPS);
    const roundTripMs = (roundTripsBeforeMs + roundTripsAfterMs) / (2 * ROUND_TRIPS);
    const floorAfter = await floor.transitionPairs(pairJobs, PATH, FLOOR_SAMPLE - floorBefore.done, floorBefore.next, START);
    const floorPairs = floorBefore.done + floorAfter.done;
    const floorRate = floorPairs / ((floorBefore.wallMs + floorAfter.wallMs) / 1000);
    const floorScaledMs = (transitions / floorRate) * 1000;
    const engineRate = transitions / (rolloutMs / 1000);
    const peak = peakRssBytes();

    const sortedTicks = [...tickMs].sort((a, b) => a - b);
    const ticksSummary = summary(tickMs);
    // With instant devices a home takes three ticks a device (offer; install go-ahead; confirmation after the soak), a wave as long as its fullest home.
    const expectedTicks = WAVES.length * 3 * Math.ceil(DEVICES / HOMES) + 1;
    const waveLabel = (w: WaveRecord) => `  wave ${w.wave + 1} (${WAVES[w.wave]} % of homes)${capped && w === waves.at(-1) ? ', unfinished' : ''}`;
    printTable(`scale on PostgreSQL (${DEVICES} devices, ${HOMES} homes)`, [
      ['what', 'count', 'wall', 'rate', 'memory', 'note'],
      ['seed: homes + devices via the store', String(HOMES + DEVICES), ms(seedMs), rate(HOMES + DEVICES, seedMs), '', `${Math.ceil(HOMES / SEED_HOMES_PER_TX)} transactions; untimed below`],
      ['seed: devices connect and report', String(DEVICES), ms(connectMs), rate(DEVICES, connectMs), '', 'availability + state through the engine'],
      ['floor: job rows, multi-row INSERT', String(floorJobs.length), `${ms(insertsBeforeMs)} / ${ms(insertsAfterMs)}`, rate(floorJobs.length, insertsMs), '', 'before / after the engine; 1,000 rows a statement, 1 tx'],
      ['ref: job + event rows, multi-row', String(floorJobs.length), ms(pairsRefMs), rate(floorJobs.length, pairsRefMs), '', 'what engine.plan writes, at the least'],
      ['engine.plan (read + plan + insert)', String(planned), ms(planMs), rate(planned, planMs), `+${mib(planRssPeak - rssBeforePlan)} RSS`, `${(planMs / insertsMs).toFixed(1)}× the floor; ${calls(planCalls)}`],
      ['rollout: jobs completed', String(succeeded), ms(rolloutMs), rate(succeeded, rolloutMs), `${mib(rolloutRssPeak)} RSS peak`,
        `${ticks} ticks${capped ? ` (stopped at FIRMWARD_BENCH_SCALE_MAX_TICKS; all ${expectedTicks} ≈ ${ms(expectedTicks * ticksSummary.median)})` : ''}, ${open} left open, ${transitions} transitions (${rate(transitions, rolloutMs)})`],
      ...waves.map((w) => [waveLabel(w), String(w.succeeded), ms(w.wallMs), rate(w.succeeded, w.wallMs), '', `${w.ticks} ticks, ${ms(w.wallMs / Math.max(1, w.ticks))} a tick`]),
      ['  one tick (median / p95 / max)', '', `${ms(ticksSummary.median)} / ${ms(ticksSummary.p95)} / ${ms(sortedTicks.at(-1) ?? 0)}`, '', '', 'tick + the answers it caused'],
      ['  plans of what changed (ticks)', String(replans.calls), ms(replans.ms), '', '', `${pct(replans.ms, rolloutMs)} of the rollout, ${replans.created} jobs created`],
      ['  device messages handled', String(wireDelta.deviceMessages), '', rate(wireDelta.deviceMessages, rolloutMs), '', `${wireDelta.commands} commands sent`],
      ['floor: CAS UPDATE + INSERT pairs', String(floorPairs), ms(floorBefore.wallMs + floorAfter.wallMs), `${floorRate.toFixed(0)}/s`, '', `bare pg, 1 tx each; ${floorBefore.done} before, ${floorAfter.done} after the rollout`],
      ['  scaled to the engine\'s transitions', String(transitions), ms(floorScaledMs), '', '', `${(rolloutMs / floorScaledMs).toFixed(1)}× for the engine`],
      ['floor: one round trip (SELECT 1)', String(2 * ROUND_TRIPS), ms(roundTripMs), '', '', 'bare pg, before and after the rollout'],
      ['hub heap (used / after GC)', '', '', '', `${mib(heapUsed)} / ${heapRetained === null ? 'run with --expose-gc' : mib(heapRetained)}`, ''],
      ['process RSS peak (whole run)', '', '', '', mib(peak), 'includes seeding'],
    ]);

    // Where the rollout's time went, by store method: every call is at least one round trip.
    const byTime = [...rolloutCalls.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10);
    printTable('store calls during the rollout (summed times overlap; they rank, they do not add up)', [
      ['method', 'calls', 'summed', 'per call', '÷ one round trip', 'per tick per home'],
      ...byTime.map(([method, m]) => [method, String(m.calls), ms(m.ms), ms(m.ms / m.calls), (m.ms / m.calls / roundTripMs).toFixed(1), (m.calls / (ticks * HOMES)).toFixed(2)]),
    ]);
    if (announced !== transitions) console.log(`  note: the engine announced ${announced} transitions, the history holds ${transitions}`);
    console.log(`\nsummary: scale on PostgreSQL, ${DEVICES} devices / ${HOMES} homes — engine.plan ${ms(planMs)} for ${planned} jobs (${rate(planned, planMs)}) vs bare multi-row INSERTs ${ms(insertsMs)} (${(planMs / insertsMs).toFixed(1)}×); staged rollout${capped ? ` (first ${ticks} of ~${expectedTicks} ticks)` : ''} ${ms(rolloutMs)} for ${succeeded} jobs (${rate(succeeded, rolloutMs)} completed), ${transitions} transitions at ${engineRate.toFixed(0)}/s vs floor ${floorRate.toFixed(0)}/s (${pct(engineRate, floorRate)} of it); hub RSS peak ${mib(rolloutRssPeak)}`);
    if (!capped && (open > 0 || succeeded !== planned)) process.exitCode = 1;
  } finally {
    await floor.close();
    await real.close();
  }
}

/** The store calls of one phase, most expensive first, in a few words. */
function calls(t: Map<string, { calls: number; ms: number }>): string {
  return [...t.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 3).map(([k, v]) => `${k} ×${v.calls}`).join(', ');
}

async function main(): Promise<void> {
  if (HOMES > DEVICES) throw new Error('FIRMWARD_BENCH_SCALE_HOMES must not exceed FIRMWARD_BENCH_SCALE_DEVICES: every home needs a device');
  printMachine();
  const db = await createBenchDatabase();
  // Interrupted (a run is long): the database made for this run goes too.
  const interrupted = () => {
    void db.drop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  try {
    await run(db);
  } finally {
    process.off('SIGINT', interrupted);
    await db.drop();
  }
}

await main();
