/**
 * Job transitions per second across many homes with instant devices.
 *
 * N homes (FIRMWARD_BENCH_HOMES, default 500) × 4 devices, one release per model, the real
 * SqliteStore on a temp file (WAL, synchronous=FULL: every commit is durable, invariant 8), the
 * real RolloutEngine on a ManualClock, and devices that answer at once (instant-gateway.ts). The
 * engine is driven tick by tick, the clock moved past the soak, until every job has succeeded.
 *
 * Baseline, same run: the store's floor — as many single-row UPDATE + INSERT event pairs as the
 * engine made transitions, each pair its own transaction, on a bare node:sqlite DatabaseSync with
 * the same schema and pragmas. No engine can persist a transition faster than that (it must
 * persist each one before it acts).
 *
 *   npm run bench:transitions            # FIRMWARD_BENCH_HOMES=100 npm run bench:transitions
 */
import { DatabaseSync } from 'node:sqlite';
import { newJob } from '@firmward/core';
import type { Job, JobState } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { NewHistoryEvent } from '@firmward/ports';
import { MIGRATIONS, SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { countingStore } from './counting-store.ts';
import { InstantDeviceGateway } from '../packages/ports/testing/instant-gateway.ts';
import {
  FixedReleaseSource, benchDevice, benchHome, benchRelease, envInt, mib, ms, pct, peakRssBytes, printMachine, printTable, rate, tempDir,
} from './support.ts';

const HOMES = envInt('FIRMWARD_BENCH_HOMES', 500);
const DEVICES_PER_HOME = 4;
const SOAK_SECONDS = 1;
const MODELS = Array.from({ length: DEVICES_PER_HOME }, (_, i) => `Model${i}`);
const FROM = '1.0.0';
const TO = '2.0.0';
const START = Date.parse('2026-03-02T02:00:00Z');

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

const homeId = (h: number) => `home-${String(h).padStart(5, '0')}`;
const deviceId = (h: number, d: number) => `${homeId(h)}-dev${d}`;

async function runEngine(dbPath: string) {
  const releases = MODELS.map((m) => benchRelease(m, TO));
  const real = await SqliteStore.open(dbPath);
  await real.transaction(async (tx) => {
    for (let h = 0; h < HOMES; h++) {
      await tx.putHome(benchHome(homeId(h), SOAK_SECONDS));
      for (let d = 0; d < DEVICES_PER_HOME; d++) await tx.putDevice(benchDevice(deviceId(h, d), homeId(h), MODELS[d]!, FROM));
    }
  });

  const clock = new ManualClock(START);
  const gateway = new InstantDeviceGateway(clock);
  for (let h = 0; h < HOMES; h++) {
    for (let d = 0; d < DEVICES_PER_HOME; d++) {
      gateway.addDevice(deviceId(h, d), { vendor: 'BenchCo', model: MODELS[d]!, hardwareRevision: 'A', firmwareVersion: FROM });
    }
  }
  const { store, counts } = countingStore(real);
  let transitions = 0;
  const engine = new TimedEngine({
    store, gateway, source: new FixedReleaseSource(releases), clock, log: silentLogger,
    config: { tickMs: 1000, offerResendSeconds: 600, releaseRefreshSeconds: 365 * 86_400 },
    imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
    onHistory: (e: NewHistoryEvent) => {
      if (e.kind === 'transition') transitions++;
    },
  });

  // Untimed setup: devices connect and report, releases are read, the first plan queues every job.
  await gateway.start(engine);
  gateway.announceAll();
  await gateway.idle();
  await engine.refreshReleases();
  const t0 = performance.now();
  const commitsBeforePlan = counts.commits;
  const planned = await engine.plan(clock.now());
  const planMs = performance.now() - t0;
  const planCommits = counts.commits - commitsBeforePlan;
  engine.replans = { calls: 0, ms: 0, created: 0 };
  const setupCounts = { reads: counts.reads, commits: counts.commits, failed: counts.failed };
  const wireBefore = gateway.counts.deviceMessages;

  // Timed: ticks, device answers, clock past the soak, until nothing is open.
  let ticks = 0;
  const tickMs: number[] = [];
  const start = performance.now();
  for (;;) {
    const t = performance.now();
    await engine.tick();
    await gateway.idle();
    tickMs.push(performance.now() - t);
    ticks++;
    if ((await real.listJobs({ open: true, limit: 1 })).length === 0) break;
    if (ticks > 100 * DEVICES_PER_HOME) throw new Error('the rollout did not finish; the engine is stuck');
    await clock.advance(SOAK_SECONDS * 1000);
  }
  const wallMs = performance.now() - start;
  const replans = { ...engine.replans };
  const end = { reads: counts.reads, commits: counts.commits, failed: counts.failed };
  // A pass over homes with nothing left to do (after one that re-plans once more): the cost every
  // tick pays per home, busy or not.
  await clock.advance(SOAK_SECONDS * 1000);
  await engine.tick();
  await clock.advance(SOAK_SECONDS * 1000);
  const idleStartReads = counts.reads;
  const idleStart = performance.now();
  await engine.tick();
  const idleTickMs = performance.now() - idleStart;
  const idleTickReads = counts.reads - idleStartReads;
  const rss = process.memoryUsage().rss;
  const peak = peakRssBytes();
  const heapUsed = process.memoryUsage().heapUsed;
  // With --expose-gc (the npm script passes it): what is still held once garbage is collected.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapRetained = gc ? process.memoryUsage().heapUsed : null;

  await gateway.stop();
  await real.close();
  // Counted from the history itself, not only from what the engine announced.
  const db = new DatabaseSync(dbPath, { readOnly: true });
  const fromDb = Number(db.prepare("SELECT count(*) AS n FROM events WHERE kind = 'transition'").get()?.n);
  const succeeded = Number(db.prepare("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'").get()?.n);
  db.close();
  return {
    planned, planMs, planCommits, idleTickMs, idleTickReads, transitions: fromDb, announced: transitions, succeeded, wallMs, ticks, tickMs, rss, peak, heapUsed, heapRetained,
    reads: end.reads - setupCounts.reads, commits: end.commits - setupCounts.commits, failed: end.failed - setupCounts.failed,
    byMethod: counts.byMethod, replans,
    deviceMessages: gateway.counts.deviceMessages - wireBefore, commands: gateway.counts.commands,
  };
}

/** Every transition one job can make with an instant device, in order (the engine holds queued jobs "in line" first). */
const PATH: readonly JobState[] = ['queued', 'waiting', 'offered', 'downloading', 'downloaded', 'installing', 'rebooting', 'confirming', 'succeeded'];

/**
 * The store's floor: the same schema, pragmas and seed, then `pairs` single-row UPDATE + INSERT
 * event pairs, each in its own BEGIN IMMEDIATE … COMMIT, walking every job along PATH one job
 * at a time (so the invariant-1 index is satisfied, as in the engine).
 */
function runFloor(dbPath: string, pairs: number) {
  const db = new DatabaseSync(dbPath, { enableForeignKeyConstraints: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = FULL');
  for (const m of MIGRATIONS) db.exec(m.sql);
  const jobs: Job[] = [];
  db.exec('BEGIN');
  const insHome = db.prepare('INSERT INTO homes (id, name, settings, halt) VALUES (?, ?, ?, NULL)');
  const insDevice = db.prepare(
    "INSERT INTO devices (id, home_id, name, vendor, model, hardware_revision, firmware_version, policy, thresholds, schedules) VALUES (?, ?, ?, 'BenchCo', ?, 'A', ?, NULL, '{}', '[]')",
  );
  const insJob = db.prepare(
    `INSERT INTO jobs (id, home_id, device_id, release_id, from_version, target_version, state, reasons, recheck_at, priority, requested_by, forced_by,
       created_at, updated_at, state_since, last_heard_at, progress_percent, confirm_until, expected_done_at, failure)
     VALUES (?, ?, ?, ?, ?, ?, 'queued', '[]', NULL, 2, NULL, NULL, ?, ?, ?, NULL, NULL, NULL, NULL, NULL)`,
  );
  for (let h = 0; h < HOMES; h++) {
    insHome.run(homeId(h), `Home ${h}`, JSON.stringify(benchHome(homeId(h), SOAK_SECONDS).settings));
    for (let d = 0; d < DEVICES_PER_HOME; d++) {
      insDevice.run(deviceId(h, d), homeId(h), `Device ${d}`, MODELS[d]!, FROM);
      const job = newJob({ id: crypto.randomUUID(), homeId: homeId(h), deviceId: deviceId(h, d), releaseId: `BenchCo/${MODELS[d]!}/${TO}`, fromVersion: FROM, targetVersion: TO, priority: 2, requestedBy: null }, START);
      insJob.run(job.id, job.homeId, job.deviceId, job.releaseId, FROM, TO, START, START, START);
      jobs.push(job);
    }
  }
  db.exec('COMMIT');

  const update = db.prepare('UPDATE jobs SET state = ?, updated_at = ?, state_since = ?, last_heard_at = ?, reasons = ? WHERE id = ? AND state = ?');
  const event = db.prepare(
    "INSERT INTO events (at, home_id, device_id, job_id, kind, from_state, to_state, code, message, actor) VALUES (?, ?, ?, ?, 'transition', ?, ?, ?, ?, 'hub')",
  );
  const steps = PATH.length - 1;
  const start = performance.now();
  let done = 0;
  outer: for (const job of jobs) {
    for (let s = 0; s < steps; s++) {
      if (done === pairs) break outer;
      const from = PATH[s]!;
      const to = PATH[s + 1]!;
      const at = START + done;
      db.exec('BEGIN IMMEDIATE');
      update.run(to, at, at, at, '[]', job.id, from);
      event.run(at, job.homeId, job.deviceId, job.id, from, to, to, `The update moved from ${from} to ${to}.`);
      db.exec('COMMIT');
      done++;
    }
  }
  const wallMs = performance.now() - start;
  db.close();
  return { pairs: done, wallMs };
}

async function main(): Promise<void> {
  printMachine();
  console.log(`transitions: ${HOMES} homes × ${DEVICES_PER_HOME} instant devices, one release per model, soak ${SOAK_SECONDS} s (ManualClock)`);
  const dir = tempDir('transitions');
  try {
    // The floor runs before and after the engine (the machine is shared and drifts); the ratio uses both.
    // As many as the engine will make: every job walks PATH, except that the first of each home is not held in line.
    const before = runFloor(dir.file('floor-before.db'), HOMES * (DEVICES_PER_HOME * (PATH.length - 1) - 1));
    const e = await runEngine(dir.file('hub.db'));
    const after = runFloor(dir.file('floor-after.db'), e.transitions);
    const f = { pairs: before.pairs + after.pairs, wallMs: before.wallMs + after.wallMs };
    const engineRate = e.transitions / (e.wallMs / 1000);
    const floorRate = f.pairs / (f.wallMs / 1000);
    const ticks = [...e.tickMs].sort((a, b) => a - b);
    printTable('transitions (timed: from the first offer to the last success; the initial plan is shown apart)', [
      ['what', 'count', 'wall', 'rate', 'note'],
      ['engine: transitions', String(e.transitions), ms(e.wallMs), rate(e.transitions, e.wallMs), `${e.succeeded}/${e.planned} jobs succeeded, ${e.ticks} ticks`],
      ['  store commits (writes + tx)', String(e.commits), '', rate(e.commits, e.wallMs), `${(e.commits / e.transitions).toFixed(2)} per transition, ${e.failed} rolled back`],
      ['  plans of what changed (ticks)', String(e.replans.calls), ms(e.replans.ms), '', `${pct(e.replans.ms, e.wallMs)} of the wall time, ${e.replans.created} jobs created`],
      ['  store reads', String(e.reads), '', rate(e.reads, e.wallMs), `${(e.reads / e.transitions).toFixed(1)} per transition`],
      ['  device messages handled', String(e.deviceMessages), '', rate(e.deviceMessages, e.wallMs), `${e.commands} commands sent`],
      ['  one tick (median / max)', '', `${ms(ticks[Math.floor(ticks.length / 2)] ?? 0)} / ${ms(ticks.at(-1) ?? 0)}`, '', 'tick + the answers it caused'],
      ['  idle tick (nothing open)', '', ms(e.idleTickMs), '', `${e.idleTickReads} store reads for ${HOMES} homes`],
      ['engine: initial plan', String(e.planned), ms(e.planMs), rate(e.planned, e.planMs), `untimed above; ${e.planCommits} commits`],
      ['floor: UPDATE+INSERT pairs, before', String(before.pairs), ms(before.wallMs), rate(before.pairs, before.wallMs), 'bare DatabaseSync, WAL, FULL, 1 tx each'],
      ['floor: UPDATE+INSERT pairs, after', String(after.pairs), ms(after.wallMs), rate(after.pairs, after.wallMs), 'the same, after the engine ran'],
      ['hub RSS (now / peak)', '', '', '', `${mib(e.rss)} / ${mib(e.peak)}`],
      ['hub heap (used / after GC)', '', '', '', `${mib(e.heapUsed)} / ${e.heapRetained === null ? 'run with --expose-gc' : mib(e.heapRetained)}`],
    ]);
    const calls = [...e.byMethod.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(`  store calls, whole run (incl. setup): ${calls}`);
    if (e.announced !== e.transitions) console.log(`  note: the engine announced ${e.announced} transitions, the history holds ${e.transitions}`);
    console.log(`\nsummary: transitions — engine ${engineRate.toFixed(0)}/s vs store floor ${floorRate.toFixed(0)}/s: engine = ${pct(engineRate, floorRate)} of the store's floor (${e.transitions} transitions, ${HOMES} homes, peak RSS ${mib(e.peak)})`);
  } finally {
    dir.remove();
  }
}

await main();
