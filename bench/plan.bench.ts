/**
 * Planning a fleet: 100,000 devices in 20,000 homes (FIRMWARD_BENCH_PLAN_DEVICES,
 * FIRMWARD_BENCH_PLAN_HOMES), ~50 releases across 20 models, devices on a mix of versions and
 * hardware revisions (some up to date, some on a retracted version, some with no release for
 * their revision).
 *
 *   1. planReleases (pure core), against its floor: a bare loop over the same devices doing one
 *      Map lookup by model — no planner can do less.
 *   2. engine.plan(now) on the real SqliteStore (temp file, WAL, synchronous=FULL): reading the
 *      fleet, planning, and inserting every job with its history line; against its floor: bare
 *      INSERTs of the same number of job rows in one transaction on a node:sqlite DatabaseSync
 *      with the same schema and pragmas; for reference, the job + history pairs the engine writes,
 *      in one transaction and — to show what per-job commits cost — each in its own.
 *   3. engine.plan(now) again with every job open (what the engine runs after each finished job).
 *
 * The one-commit-per-pair reference is measured on the first FIRMWARD_BENCH_PLAN_COMMIT_SAMPLE
 * rows (default 10,000) and scaled, to keep the run near a minute.
 *
 *   npm run bench:plan        # FIRMWARD_BENCH_PLAN_DEVICES=20000 FIRMWARD_BENCH_PLAN_HOMES=4000 npm run bench:plan
 */
import { DatabaseSync } from 'node:sqlite';
import { planReleases } from '@firmward/core';
import type { Device, Home, Release } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import { MIGRATIONS, SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { countingStore } from './counting-store.ts';
import { InstantDeviceGateway } from '../packages/ports/testing/instant-gateway.ts';
import {
  FixedReleaseSource, benchDevice, benchHome, benchRelease, envInt, mib, ms, pct, peakRssBytes, printMachine, printTable, rate, summary, tempDir,
} from './support.ts';

const DEVICES = envInt('FIRMWARD_BENCH_PLAN_DEVICES', 100_000);
const HOMES = envInt('FIRMWARD_BENCH_PLAN_HOMES', 20_000);
const MODELS = 20;
/** Repeats of the in-memory measurements (median reported); the store ones run once. */
const REPEATS = 5;
const NOW = Date.parse('2026-03-02T02:00:00Z');

const gc = (globalThis as { gc?: () => void }).gc;

/** 20 models × (1.1.0, 1.2.0) + 10 models × 2.0.0 (only from 1.2.0) = 50 releases; some fix vulnerabilities, one is retracted. */
function fleetReleases(): Release[] {
  const releases: Release[] = [];
  for (let m = 0; m < MODELS; m++) {
    const model = `Model${m}`;
    releases.push(benchRelease(model, '1.1.0', { retracted: m === 0, severity: m % 4 === 0 ? 'high' : 'none', vulnerabilitiesFixed: m % 4 === 0 ? [{ id: `CVE-2026-${1000 + m}`, severity: 'high' }] : [] }));
    releases.push(benchRelease(model, '1.2.0', { hardwareRevisions: m % 5 === 0 ? ['A'] : ['A', 'B'], vulnerabilitiesFixed: m % 3 === 0 ? [{ id: `CVE-2026-${2000 + m}`, severity: 'medium' }] : [] }));
    if (m < 10) releases.push(benchRelease(model, '2.0.0', { applicableFrom: '1.2.0' }));
  }
  return releases;
}

/** Deterministic mix: versions 1.0.0 / 1.1.0 / 1.2.0 / 2.0.0, revisions A / B / C (no release names C). */
function fleet(): { homes: Home[]; devices: Device[] } {
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const versions = ['1.0.0', '1.0.0', '1.1.0', '1.2.0', '1.2.0', '2.0.0'];
  const homes = Array.from({ length: HOMES }, (_, h) => benchHome(`home-${String(h).padStart(6, '0')}`, 60));
  const devices: Device[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const home = homes[i % HOMES]!;
    const revision = next() < 0.05 ? 'C' : next() < 0.3 ? 'B' : 'A';
    devices.push(benchDevice(`dev-${String(i).padStart(7, '0')}`, home.id, `Model${Math.floor(next() * MODELS)}`, versions[Math.floor(next() * versions.length)]!, revision));
  }
  return { homes, devices };
}

function timeRepeated(fn: () => number): { medianMs: number; firstMs: number; result: number } {
  const times: number[] = [];
  let result = 0;
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    result = fn();
    times.push(performance.now() - t);
  }
  return { medianMs: summary(times).median, firstMs: times[0]!, result };
}

/** RSS growth while `fn`'s result is still held (what the phase needs on top of what was there). */
function memoryOf<T>(fn: () => T): { result: T; rssGrowth: number; heapGrowth: number } {
  gc?.();
  const before = process.memoryUsage();
  const result = fn();
  const after = process.memoryUsage();
  return { result, rssGrowth: after.rss - before.rss, heapGrowth: after.heapUsed - before.heapUsed };
}

/** Same schema, pragmas and seed as the store, on a bare connection. */
function bareDatabase(path: string, homes: Home[], devices: Device[]): DatabaseSync {
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = FULL');
  for (const m of MIGRATIONS) db.exec(m.sql);
  db.exec('BEGIN');
  const home = db.prepare('INSERT INTO homes (id, name, settings, halt) VALUES (?, ?, ?, NULL)');
  for (const h of homes) home.run(h.id, h.name, JSON.stringify(h.settings));
  const device = db.prepare(
    "INSERT INTO devices (id, home_id, name, vendor, model, hardware_revision, firmware_version, policy, thresholds, schedules) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, '{}', '[]')",
  );
  for (const d of devices) device.run(d.id, d.homeId, d.name, d.vendor, d.model, d.hardwareRevision, d.firmwareVersion);
  db.exec('COMMIT');
  return db;
}

const JOB_SQL = `INSERT INTO jobs (id, home_id, device_id, release_id, from_version, target_version, state, reasons, recheck_at, priority, requested_by, forced_by,
  created_at, updated_at, state_since, last_heard_at, progress_percent, confirm_until, expected_done_at, failure)
  VALUES (?, ?, ?, ?, ?, ?, 'queued', '[]', NULL, ?, NULL, NULL, ?, ?, ?, NULL, NULL, NULL, NULL, NULL)`;
const EVENT_SQL = "INSERT INTO events (at, home_id, device_id, job_id, kind, from_state, to_state, code, message, actor) VALUES (?, ?, ?, ?, 'decision', NULL, 'queued', 'planned', ?, 'hub')";

interface Row { deviceId: string; homeId: string; releaseId: string; from: string; to: string; priority: number; message: string }

/** Floor of the inserts: `rows` job INSERTs in one transaction. */
function bareInsertsOneTransaction(db: DatabaseSync, rows: Row[]): number {
  const job = db.prepare(JOB_SQL);
  const t = performance.now();
  db.exec('BEGIN IMMEDIATE');
  for (const r of rows) job.run(crypto.randomUUID(), r.homeId, r.deviceId, r.releaseId, r.from, r.to, r.priority, NOW, NOW, NOW);
  db.exec('COMMIT');
  return performance.now() - t;
}

/** What the engine writes (a job and its history line per planned job), all in one transaction. */
function barePairsOneTransaction(db: DatabaseSync, rows: Row[]): number {
  const job = db.prepare(JOB_SQL);
  const event = db.prepare(EVENT_SQL);
  const t = performance.now();
  db.exec('BEGIN IMMEDIATE');
  for (const r of rows) {
    const id = crypto.randomUUID();
    job.run(id, r.homeId, r.deviceId, r.releaseId, r.from, r.to, r.priority, NOW, NOW, NOW);
    event.run(NOW, r.homeId, r.deviceId, id, r.message);
  }
  db.exec('COMMIT');
  return performance.now() - t;
}

/** What per-job commits cost at the least: a job + history pair per transaction (one fsync each). */
function barePairsOneTransactionEach(db: DatabaseSync, rows: Row[]): number {
  const job = db.prepare(JOB_SQL);
  const event = db.prepare(EVENT_SQL);
  const t = performance.now();
  for (const r of rows) {
    const id = crypto.randomUUID();
    db.exec('BEGIN IMMEDIATE');
    job.run(id, r.homeId, r.deviceId, r.releaseId, r.from, r.to, r.priority, NOW, NOW, NOW);
    event.run(NOW, r.homeId, r.deviceId, id, r.message);
    db.exec('COMMIT');
  }
  return performance.now() - t;
}

async function main(): Promise<void> {
  printMachine();
  const releases = fleetReleases();
  const { homes, devices } = fleet();
  const models = new Set(releases.map((r) => r.model)).size;
  console.log(`plan: ${DEVICES} devices in ${HOMES} homes, ${releases.length} releases across ${models} models`);
  const dir = tempDir('plan');
  try {
    // 1. In memory: the floor, then the pure planner.
    const byModel = new Map<string, Release[]>();
    for (const r of releases) byModel.set(r.model, [...(byModel.get(r.model) ?? []), r]);
    const floor = timeRepeated(() => {
      let hits = 0;
      for (const d of devices) if (byModel.get(d.model) !== undefined) hits++;
      return hits;
    });
    const homeMap = new Map(homes.map((h) => [h.id, h]));
    const input = { now: NOW, devices, homes: homeMap, releases, openJobsByDevice: new Map(), skipped: new Set<string>() };
    const pure = timeRepeated(() => planReleases(input).jobs.length);
    const pureMem = memoryOf(() => planReleases(input));
    const plan = pureMem.result;
    const rows: Row[] = plan.jobs.map((j) => ({ deviceId: j.deviceId, homeId: j.homeId, releaseId: j.releaseId, from: j.fromVersion, to: j.targetVersion, priority: j.priority, message: j.reason.message }));

    // 2. The store's floor for the same rows.
    const bare = bareDatabase(dir.file('bare.db'), homes, devices);
    const bareOneTxMs = bareInsertsOneTransaction(bare, rows);
    bare.exec('DELETE FROM events; DELETE FROM jobs;');
    const barePairsMs = barePairsOneTransaction(bare, rows);
    bare.exec('DELETE FROM events; DELETE FROM jobs;');
    const eachSample = rows.slice(0, Math.min(rows.length, envInt('FIRMWARD_BENCH_PLAN_COMMIT_SAMPLE', 10_000)));
    const bareEachMs = barePairsOneTransactionEach(bare, eachSample);
    bare.close();

    // 3. The engine on the real store.
    const real = await SqliteStore.open(dir.file('hub.db'));
    const seedStart = performance.now();
    await real.transaction(async (tx) => {
      for (const h of homes) await tx.putHome(h);
      for (const d of devices) await tx.putDevice(d);
    });
    const seedMs = performance.now() - seedStart;
    const { store, counts } = countingStore(real);
    const clock = new ManualClock(NOW);
    const engine = new RolloutEngine({
      store, gateway: new InstantDeviceGateway(clock), source: new FixedReleaseSource(releases), clock, log: silentLogger,
      config: { tickMs: 1000, offerResendSeconds: 600, releaseRefreshSeconds: 365 * 86_400 },
      imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
    });
    await engine.refreshReleases();
    gc?.();
    const rssBeforeEngine = process.memoryUsage().rss;
    const c0 = { commits: counts.commits, failed: counts.failed };
    let t = performance.now();
    const created = await engine.plan(NOW);
    const engineMs = performance.now() - t;
    const rssAfterEngine = process.memoryUsage().rss;
    const c1 = { commits: counts.commits, failed: counts.failed };
    t = performance.now();
    const createdAgain = await engine.plan(NOW + 1000);
    const replanMs = performance.now() - t;
    const c2 = { commits: counts.commits, failed: counts.failed };
    const peak = peakRssBytes();
    await real.close();

    const each = bareEachMs * (rows.length / eachSample.length);
    const sampled = eachSample.length < rows.length ? ` (${eachSample.length} measured, scaled)` : '';
    printTable(`plan (${REPEATS} runs, median, for the in-memory rows)`, [
      ['what', 'items', 'time', 'rate', 'memory', 'note'],
      ['floor: loop + Map lookup by model', String(devices.length), ms(floor.medianMs), rate(devices.length, floor.medianMs), '', `${floor.result} hits`],
      ['planReleases (pure)', String(devices.length), ms(pure.medianMs), rate(devices.length, pure.medianMs), `+${mib(pureMem.heapGrowth)} heap`, `${plan.jobs.length} jobs, ${plan.noJob.length} none; first run ${ms(pure.firstMs)}; ${(pure.medianMs / floor.medianMs).toFixed(0)}× the floor`],
      ['floor: bare job INSERTs, 1 tx', String(rows.length), ms(bareOneTxMs), rate(rows.length, bareOneTxMs), '', 'DatabaseSync, same schema, WAL, FULL'],
      ['ref: job+event INSERTs, 1 tx', String(rows.length), ms(barePairsMs), rate(rows.length, barePairsMs), '', 'what engine.plan writes, in one commit'],
      ['ref: job+event INSERTs, 1 tx each', String(rows.length), ms(each), rate(rows.length, each), '', `one fsync per job${sampled}`],
      ['engine.plan (store + plan + inserts)', String(created), ms(engineMs), rate(created, engineMs), `+${mib(rssAfterEngine - rssBeforeEngine)} RSS`, `${c1.commits - c0.commits} commits; ${pct(bareOneTxMs, engineMs)} is the insert floor`],
      ['engine.plan again, all jobs open', String(createdAgain), ms(replanMs), '', '', `${c2.commits - c1.commits} commits, ${c2.failed - c1.failed} rolled back (conflict)`],
      ['store seed (1 tx, untimed above)', String(homes.length + devices.length), ms(seedMs), rate(homes.length + devices.length, seedMs), '', ''],
      ['process RSS peak', '', '', '', mib(peak), ''],
    ]);
    console.log(`\nsummary: plan — planReleases ${ms(pure.medianMs)} for ${devices.length} devices (${(pure.medianMs / floor.medianMs).toFixed(0)}× a bare Map loop); engine.plan ${ms(engineMs)} for ${created} jobs vs ${ms(bareOneTxMs)} bare INSERTs (${(engineMs / bareOneTxMs).toFixed(0)}×); re-plan with all open ${ms(replanMs)}; peak RSS ${mib(peak)}`);
  } finally {
    dir.remove();
  }
}

await main();
