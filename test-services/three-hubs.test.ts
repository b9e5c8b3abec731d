/**
 * Scale-out (DESIGN, scale-out): three hub processes on one PostgreSQL database and one Mosquitto
 * drive one staged rollout over twelve homes of simulated devices; one of them is killed (SIGKILL)
 * while it holds homes with an update under way (but no download from it open: see the kill).
 *
 * What must hold: invariant 1 (one active update per home) in the database at every poll and over
 * the whole history; no job ever moves backwards; the survivors take the dead instance's homes over
 * once its leases run out (Store.claimHomes); the rollout opens its waves in order and completes;
 * every device runs the new version with exactly one job, succeeded (invariant 8: nothing lost).
 *
 * Real processes, real clock, loopback only: three `node apps/hub/src/main.ts`, each with its own
 * data folder and HTTP port, all with store.kind "postgres" and the same external broker; the fleet
 * of apps/hub/test/fixtures/fleet.ts (the real agent on simulated devices) logs in to Mosquitto
 * with one user per device. The test reads PostgreSQL directly for what no single hub can see.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { Client } from 'pg';
import { ACTIVE_STATES, JOB_STATES, assignWaves } from '@firmward/core';
import type { JobState } from '@firmward/core';
import { generateDeviceSecret } from '@firmward/mqtt';
import { silentLogger } from '@firmward/ports';
import { PostgresStore } from '@firmward/store-postgres';
import { HubClient } from '../apps/cli/src/client.ts';
import type { RolloutView } from '../apps/cli/src/client.ts';
import { FLEET_TARGET_VERSION, fleetHomeId, publishFleetRelease, seedFleet } from '../apps/hub/test/fixtures/fleet-fixture.ts';
import type { FleetSecrets } from '../apps/hub/test/fixtures/fleet-fixture.ts';
import { Child } from '../apps/hub/test/fixtures/child-process.ts';
import { waitFor } from '../apps/hub/test/fixtures/hub-api.ts';
import { freePort } from '../packages/ports/testing/free-port.ts';
import { startMosquitto } from './mosquitto-broker.ts';
import type { RunningMosquitto } from './mosquitto-broker.ts';
import { createTestDatabase } from './postgres-server.ts';
import type { TestDatabase } from './postgres-server.ts';

const LAYOUT = { homes: 12, devicesPerHome: 2 };
const INSTANCES = 3;
const WAVES = [25, 50, 100];
const TICK_MS = 200;
/** The engine's lease on a home: max(3 × tickMs, 5 s) (apps/hub/src/engine.ts). */
const LEASE_MS = Math.max(3 * TICK_MS, 5_000);
const OWNER_TOKEN = 'three-hubs-test-owner-token-0123456789';
const HUB_MAIN = path.join(import.meta.dirname, '..', 'apps', 'hub', 'src', 'main.ts');
const FLEET_MAIN = path.join(import.meta.dirname, '..', 'apps', 'hub', 'test', 'fixtures', 'fleet.ts');

/** How far along a job is; no instance, dead or alive, may ever move a job back. */
const RANK: Record<JobState, number> = {
  queued: 0, waiting: 0, offered: 1, downloading: 2, downloaded: 3, installing: 4, rebooting: 5, confirming: 6,
  succeeded: 7, failed: 7, cancelled: 7,
};
/** Past "offered", with the image already on the device: the kill lands while an update is under way. */
const UNDER_WAY: readonly JobState[] = ['downloaded', 'installing', 'rebooting', 'confirming'];
/** The device may be fetching from the instance that offered (see the kill below). */
const FETCHING: readonly JobState[] = ['offered', 'downloading'];

interface Hub {
  child: Child;
  client: HubClient;
  /** Its name in home_leases (the instance id it keeps in its data folder). */
  instanceId: string;
}

interface JobRow {
  id: string;
  homeId: string;
  deviceId: string;
  releaseId: string;
  state: JobState;
}

const children: Child[] = [];
const tempDirs: string[] = [];
let db: TestDatabase | null = null;
let broker: RunningMosquitto | null = null;
let watcher: JobWatcher | null = null;
after(async () => {
  // Nothing outlives the test, whatever failed.
  await watcher?.stop();
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await broker?.stop();
  await db?.drop();
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

async function readJobs(sql: Client): Promise<JobRow[]> {
  const { rows } = await sql.query<{ id: string; home_id: string; device_id: string; release_id: string; state: string }>(
    'SELECT id, home_id, device_id, release_id, state FROM jobs',
  );
  return rows.map((r) => {
    assert.ok(isJobState(r.state), `job ${r.id} has an unknown state ${r.state}`);
    return { id: r.id, homeId: r.home_id, deviceId: r.device_id, releaseId: r.release_id, state: r.state };
  });
}

/** Homes held right now (an unexpired lease), per instance. */
async function heldHomes(sql: Client): Promise<Map<string, string[]>> {
  const { rows } = await sql.query<{ owner: string; home_id: string }>(
    'SELECT owner, home_id FROM home_leases WHERE until >= $1 ORDER BY home_id', [Date.now()],
  );
  const held = new Map<string, string[]>();
  for (const r of rows) held.set(r.owner, [...(held.get(r.owner) ?? []), r.home_id]);
  return held;
}

/**
 * Reads every job straight from PostgreSQL about every 100 ms, on its own connection, and records
 * what no hub may ever let happen: two active jobs in a home (invariant 1) or a job moving back.
 */
class JobWatcher {
  readonly violations: string[] = [];
  /** Each job at the furthest state seen. */
  readonly furthest = new Map<string, JobRow>();
  latest: JobRow[] = [];
  polls = 0;
  readonly #sql: Client;
  #stopped = false;
  #loop: Promise<void> | null = null;

  constructor(sql: Client) {
    this.#sql = sql;
  }

  async start(): Promise<void> {
    await this.#sql.connect();
    this.#loop = (async () => {
      while (!this.#stopped) {
        try {
          this.#check(await readJobs(this.#sql));
        } catch (error) {
          this.violations.push(`the watcher could not read the jobs: ${error instanceof Error ? error.message : String(error)}`);
        }
        await sleep(100);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await this.#sql.end().catch(() => undefined);
  }

  #check(jobs: JobRow[]): void {
    this.polls++;
    this.latest = jobs;
    const activeByHome = new Map<string, string[]>();
    for (const job of jobs) {
      if (ACTIVE_STATES.includes(job.state)) activeByHome.set(job.homeId, [...(activeByHome.get(job.homeId) ?? []), `${job.deviceId}=${job.state}`]);
      const before = this.furthest.get(job.id);
      if (before && RANK[job.state] < RANK[before.state]) {
        this.violations.push(`job ${job.id} (${job.deviceId}) moved back from ${before.state} to ${job.state}`);
      }
      if (!before || RANK[job.state] >= RANK[before.state]) this.furthest.set(job.id, job);
    }
    for (const [homeId, active] of activeByHome) {
      if (active.length > 1) this.violations.push(`invariant 1: ${homeId} had ${active.length} active updates at once: ${active.join(', ')}`);
    }
  }

  summary(): string {
    return `jobs last read: ${this.latest.map((j) => `${j.deviceId}=${j.state}`).sort().join(', ')}`;
  }
}

/**
 * What each instance did, from its log: the offers it made (only for homes it held), the
 * transitions it won (device messages reach every instance; the compare-and-set lets one apply
 * each), and the warnings and errors it logged.
 */
function workLogged(hub: Hub): { offers: number; transitions: number; warnings: number; errors: number } {
  const lines = hub.child.stderr.split('\n');
  const transitions = lines.filter((l) => / engine +\S+: \w+ → \w+/.test(l));
  return {
    offers: transitions.filter((l) => l.includes('→ offered')).length, transitions: transitions.length,
    warnings: lines.filter((l) => / warn /.test(l)).length, errors: lines.filter((l) => / error /.test(l)).length,
  };
}

test('three hubs on one PostgreSQL and one Mosquitto: a staged rollout over twelve homes, one hub killed, nothing lost', { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'firmward-three-hubs-'));
  tempDirs.push(dir);
  db = await createTestDatabase();
  const database = db;

  // ── the maker, the store, the broker ──────────────────────────────────────────────────────
  const maker = await publishFleetRelease(path.join(dir, 'repository'));
  const hubLogin = { username: 'hub', password: generateDeviceSecret() };
  const store = await PostgresStore.open({ url: database.url, logger: silentLogger });
  let secrets: FleetSecrets;
  try {
    // With an external broker the devices' secrets live in Mosquitto's password file.
    ({ secrets } = await seedFleet(store, LAYOUT, { soakSeconds: 2, silenceTimeoutSeconds: 60 }));
  } finally {
    await store.close();
  }
  const deviceIds = Object.keys(secrets).sort();
  const homeIds = Array.from({ length: LAYOUT.homes }, (_, h) => fleetHomeId(h));
  broker = await startMosquitto({ hub: hubLogin, devices: Object.entries(secrets).map(([username, password]) => ({ username, password })) });
  const secretsFile = path.join(dir, 'fleet-secrets.json');
  await writeFile(secretsFile, JSON.stringify(secrets), { mode: 0o600 });
  const configFile = path.join(dir, 'hub.json');
  await writeFile(configFile, JSON.stringify({
    repositories: [maker.config],
    store: { kind: 'postgres' },
    mqtt: { url: broker.url, username: hubLogin.username },
  }));

  const sql = new Client({ connectionString: database.url });
  await sql.connect();
  t.after(() => sql.end());

  // ── three hub instances ───────────────────────────────────────────────────────────────────
  const hubs: Hub[] = [];
  let fleet: Child | null = null;
  const jobWatcher = new JobWatcher(new Client({ connectionString: database.url }));
  const context = () => [jobWatcher.summary(), ...hubs.map((h) => h.child.tail(15)), fleet?.tail(10) ?? '', `--- mosquitto (end) ---\n${broker?.log().split('\n').slice(-10).join('\n') ?? ''}`].join('\n');

  const ports = new Set<number>();
  while (ports.size < INSTANCES) ports.add(await freePort());
  for (const [i, port] of [...ports].entries()) {
    const dataDir = path.join(dir, `hub-${i + 1}`);
    const child = new Child(`hub ${i + 1}`, [
      HUB_MAIN, '--config', configFile, '--data-dir', dataDir, '--port', String(port),
      '--tick-ms', String(TICK_MS), '--offer-resend-seconds', '2', '--log-level', 'info',
    ], {
      ...process.env,
      FIRMWARD_OWNER_TOKEN: OWNER_TOKEN, FIRMWARD_STORE_URL: database.url, FIRMWARD_MQTT_PASSWORD: hubLogin.password,
    });
    children.push(child);
    const client = new HubClient({ baseUrl: `http://127.0.0.1:${port}`, token: OWNER_TOKEN, timeoutMs: 10_000 });
    await waitFor(`hub ${i + 1} to answer on port ${port}`, 60_000, async () => {
      if (!child.running) assert.fail(`hub ${i + 1} exited: ${JSON.stringify(await child.exited)}\n${child.tail()}`);
      return (await client.health()).status === 'ok' ? true : undefined;
    }, context);
    const mqttUrl = await waitFor(`hub ${i + 1} to print its MQTT address`, 10_000, () => Promise.resolve(/MQTT\s+(\S+)/.exec(child.stdout)?.[1]), context);
    assert.equal(mqttUrl, broker.url, `hub ${i + 1} must use the external broker, not its own`);
    const instanceId = (await readFile(path.join(dataDir, 'instance-id'), 'utf8')).trim();
    hubs.push({ child, client, instanceId });
  }
  const hubOf = (owner: string) => hubs.find((h) => h.instanceId === owner);

  // The homes are shared out (Store.claimHomes: ⌈homes ÷ live instances⌉ each) before any work starts.
  const share = Math.ceil(LAYOUT.homes / INSTANCES);
  await waitFor(`each instance to hold ${share} homes`, 30_000, async () => {
    const held = await heldHomes(sql);
    return hubs.every((h) => held.get(h.instanceId)?.length === share) ? true : undefined;
  }, context);

  // Every device has its job planned (once, whichever instance planned it) and waits: offline.
  const planned = await waitFor('one planned job per device', 30_000, async () => {
    const jobs = await readJobs(sql);
    return jobs.length === deviceIds.length ? jobs : undefined;
  }, context);
  assert.deepEqual(planned.map((j) => j.deviceId).sort(), deviceIds, 'one job per device, no duplicates');
  const releaseIds = [...new Set(planned.map((j) => j.releaseId))];
  assert.equal(releaseIds.length, 1, `one release for the whole fleet, not ${releaseIds.join(', ')}`);
  const releaseId = releaseIds[0]!;

  // ── the staged rollout, through the first hub's API ───────────────────────────────────────
  const first = hubs[0]!;
  const started = await waitFor('the first hub to accept the rollout', 30_000, () => first.client.startRollout({ releaseId, waves: WAVES, maxFailureRate: 0.5 }), context);
  const rolloutStartedAt = Date.now();
  // 25 %, 50 % and 100 % of twelve homes: 3, then 3 more, then the other 6.
  assert.deepEqual(started.homesPerWave, [3, 3, 6]);
  const waveOf = assignWaves(started, homeIds);
  // Every instance must have read the rollout before a device comes online, or it would offer to
  // every home at once: a tick that renewed its lease after the rollout was stored read it first.
  await waitFor('every instance to run a tick after the rollout was stored', 30_000, async () => {
    const { rows } = await sql.query<{ owner: string; seen_until: string }>('SELECT owner, seen_until FROM hub_instances');
    return hubs.every((h) => rows.some((r) => r.owner === h.instanceId && Number(r.seen_until) > rolloutStartedAt + LEASE_MS)) ? true : undefined;
  }, context);
  watcher = jobWatcher;
  await jobWatcher.start();

  // ── the fleet ─────────────────────────────────────────────────────────────────────────────
  const lastBoot = new Map<string, string | null>();
  const startedFleet = new Child('fleet', [FLEET_MAIN, secretsFile, broker.url, String(LAYOUT.homes), String(LAYOUT.devicesPerHome)], process.env);
  fleet = startedFleet;
  children.push(startedFleet);
  let fleetStarted = false;
  startedFleet.onLine((line) => {
    const message = JSON.parse(line) as { event: string; deviceId?: string; version?: string | null };
    if (message.event === 'started') fleetStarted = true;
    if (message.event === 'boot' && message.deviceId !== undefined) lastBoot.set(message.deviceId, message.version ?? null);
  });
  await waitFor('the fleet to start its devices', 60_000, () => {
    if (!startedFleet.running) assert.fail(`the fleet exited\n${context()}`);
    return Promise.resolve(fleetStarted ? true : undefined);
  }, context);

  /** Fails at once on a violation or a failed update, instead of at the end. */
  const healthy = () => {
    assert.deepEqual(jobWatcher.violations, [], context());
    const failed = jobWatcher.latest.filter((j) => j.state === 'failed' || j.state === 'cancelled');
    assert.deepEqual(failed.map((j) => `${j.deviceId} ${j.state}`), [], `an update ended without success\n${context()}`);
  };

  // ── the kill: the instance holding a home whose update is under way ───────────────────────
  // An offer names the offering instance's own address for the image, so a download in flight
  // from the victim would be cut and retried against a dead address until the device gives up
  // (image_unavailable, the job fails): a gap in the product, not what this test is about (see
  // the report). So the victim is frozen first and killed only at a moment when none of its homes
  // has an offer or a download open; otherwise it goes on and the test looks again.
  const { job: trigger, owner, open } = await waitFor('an update under way in a home an instance holds, with no download from that instance open', 60_000, async () => {
    healthy();
    const job = (await readJobs(sql)).find((j) => UNDER_WAY.includes(j.state));
    if (!job) return undefined;
    const { rows } = await sql.query<{ owner: string }>('SELECT owner FROM home_leases WHERE home_id = $1 AND until >= $2', [job.homeId, Date.now()]);
    const holder = rows[0] === undefined ? undefined : hubOf(rows[0].owner);
    if (!holder) return undefined;
    await holder.child.freeze();
    let moment: { job: JobRow; owner: Hub; open: JobRow[] } | undefined;
    try {
      const [jobs, held] = await Promise.all([readJobs(sql), heldHomes(sql)]);
      const mine = held.get(holder.instanceId) ?? [];
      const now = jobs.find((j) => j.id === job.id);
      if (now && UNDER_WAY.includes(now.state) && !jobs.some((j) => mine.includes(j.homeId) && FETCHING.includes(j.state))) {
        moment = { job: now, owner: holder, open: jobs.filter((j) => RANK[j.state] > 0 && RANK[j.state] < 7) };
      }
    } finally {
      if (!moment) holder.child.thaw();
    }
    return moment;
  }, context);
  const heldBeforeKill = await heldHomes(sql);
  const victimHomes = heldBeforeKill.get(owner.instanceId) ?? [];
  const killed = await owner.child.kill('SIGKILL');
  assert.equal(killed.signal, 'SIGKILL', `the hub should have been killed, not have stopped by itself\n${owner.child.tail()}`);
  const killedAt = Date.now();
  const survivors = hubs.filter((h) => h !== owner);
  const seenBeforeKill = new Map([...jobWatcher.furthest].map(([id, job]) => [id, job.state]));
  t.diagnostic(`homes held before the kill: ${hubs.map((h) => `${h.child.name}: ${(heldBeforeKill.get(h.instanceId) ?? []).length} (${(heldBeforeKill.get(h.instanceId) ?? []).join(' ')})`).join('; ')}`);
  t.diagnostic(`killed ${owner.child.name} when ${trigger.deviceId} (${trigger.homeId}) was ${trigger.state}; open jobs: ${open.map((j) => `${j.deviceId}=${j.state}`).join(', ')}`);
  // Work was shared: every instance held homes when one of them died.
  assert.deepEqual(hubs.map((h) => heldBeforeKill.get(h.instanceId)?.length ?? 0), hubs.map(() => share), 'each instance held its share of the homes');

  // The survivors take the dead instance's homes over once its leases have run out.
  const takenOver = await waitFor('the survivors to hold every home', 30_000, async () => {
    healthy();
    const held = await heldHomes(sql);
    const bySurvivors = survivors.flatMap((h) => held.get(h.instanceId) ?? []);
    return bySurvivors.length === LAYOUT.homes && !held.has(owner.instanceId) ? held : undefined;
  }, context);
  const takeoverMs = Date.now() - killedAt;
  t.diagnostic(`after the kill (${(takeoverMs / 1000).toFixed(1)} s): ${survivors.map((h) => `${h.child.name}: ${(takenOver.get(h.instanceId) ?? []).length}`).join('; ')}; the dead one's homes went to ${victimHomes.map((home) => `${home}→${survivors.find((h) => takenOver.get(h.instanceId)?.includes(home))?.child.name ?? '?'}`).join(', ')}`);

  // ── the rollout completes ─────────────────────────────────────────────────────────────────
  const rollout = await waitFor('the rollout to complete', 150_000, async (): Promise<RolloutView | undefined> => {
    healthy();
    const [r] = await survivors[0]!.client.listRollouts();
    assert.ok(r, 'the rollout is gone');
    assert.ok(r.state === 'running' || r.state === 'completed', `the rollout is ${r.state}: ${r.summary}\n${context()}`);
    return r.state === 'completed' ? r : undefined;
  }, context);
  healthy();
  // The other survivor's API says the same: the state is in the database, not in one instance.
  assert.equal((await survivors[1]!.client.listRollouts())[0]?.state, 'completed');
  assert.equal(rollout.progress.succeeded, deviceIds.length, rollout.summary);
  assert.equal(rollout.progress.failed, 0, rollout.summary);

  // ── nothing lost: every device on the new version, exactly one job each, succeeded ────────
  const jobs = await readJobs(sql);
  for (const deviceId of deviceIds) {
    const mine = jobs.filter((j) => j.deviceId === deviceId);
    assert.deepEqual(mine.map((j) => [j.releaseId, j.state]), [[releaseId, 'succeeded']], `${deviceId} should have exactly one job, succeeded`);
    // The device itself, not only the hub's record, runs the new version.
    assert.equal(lastBoot.get(deviceId), FLEET_TARGET_VERSION, `${deviceId} last booted ${String(lastBoot.get(deviceId))}`);
  }
  for (const jobId of seenBeforeKill.keys()) assert.ok(jobs.some((j) => j.id === jobId), `job ${jobId} seen before the kill is gone`);
  const { rows: versions } = await sql.query<{ id: string; firmware_version: string }>('SELECT id, firmware_version FROM devices ORDER BY id');
  assert.deepEqual(versions.map((d) => [d.id, d.firmware_version]), deviceIds.map((id) => [id, FLEET_TARGET_VERSION]));

  // ── the history: continuous, invariant 1 throughout, never backwards, waves in order ──────
  const { rows: events } = await sql.query<{ id: string; at: string; home_id: string; job_id: string | null; from_state: string | null; to_state: string | null; code: string }>(
    'SELECT id, at, home_id, job_id, from_state, to_state, code FROM events ORDER BY id',
  );
  const stateOf = new Map<string, JobState>();
  const active = new Map<string, Set<string>>(homeIds.map((h) => [h, new Set<string>()]));
  const firstOfferAt = new Map<string, number>();
  for (const e of events) {
    if (e.job_id === null || e.to_state === null) continue;
    assert.ok(isJobState(e.to_state), `event ${e.id} names an unknown state ${e.to_state}`);
    const previous = stateOf.get(e.job_id) ?? null;
    // Nothing lost: each persisted transition starts where the last one ended.
    if (e.from_state !== null) assert.equal(e.from_state, previous, `event ${e.id} moves job ${e.job_id} from ${e.from_state}, but its last recorded state was ${String(previous)}`);
    if (previous !== null) assert.ok(RANK[e.to_state] >= RANK[previous], `event ${e.id} moves job ${e.job_id} back from ${previous} to ${e.to_state}`);
    stateOf.set(e.job_id, e.to_state);
    const set = active.get(e.home_id);
    assert.ok(set, `event ${e.id} names an unknown home ${e.home_id}`);
    if (ACTIVE_STATES.includes(e.to_state)) set.add(e.job_id);
    else set.delete(e.job_id);
    // Invariant 1, over the whole history including the kill and the takeover.
    assert.ok(set.size <= 1, `after event ${e.id} home ${e.home_id} had ${set.size} active jobs: ${[...set].join(', ')}`);
    if (e.to_state === 'offered' && !firstOfferAt.has(e.home_id)) firstOfferAt.set(e.home_id, Number(e.at));
  }
  for (const job of jobs) assert.equal(stateOf.get(job.id), 'succeeded', `the history of job ${job.id} does not end in succeeded`);
  assert.equal(stateOf.size, deviceIds.length, 'the history should hold exactly one job per device');
  const blamed = events.filter((e) => e.code === 'device_silent' || e.to_state === 'failed');
  assert.deepEqual(blamed.map((e) => `${e.home_id}: ${e.code}`), [], 'no device was blamed for an instance\'s death');

  // A home of a later wave is offered the update only once its wave is open (core rollout.ts).
  const openedAt = [rollout.createdAt, ...rollout.log.filter((l) => l.code === 'rollout_wave_opened').map((l) => l.at)];
  assert.equal(openedAt.length, WAVES.length, `every wave opened once: ${rollout.log.map((l) => l.message).join(' | ')}`);
  for (const homeId of homeIds) {
    const wave = waveOf.get(homeId)!;
    const offered = firstOfferAt.get(homeId);
    assert.ok(offered !== undefined, `${homeId} was never offered the update`);
    assert.ok(offered >= openedAt[wave]!, `${homeId} (wave ${wave + 1}) was offered the update before its wave opened`);
  }

  // ── how the work was shared ───────────────────────────────────────────────────────────────
  t.diagnostic(`per instance, offers made / transitions won / warnings / errors logged: ${hubs.map((h) => {
    const n = workLogged(h);
    return `${h.child.name}${h === owner ? ' (killed)' : ''}: ${n.offers} / ${n.transitions} / ${n.warnings} / ${n.errors}`;
  }).join('; ')}`);
  t.diagnostic(`${jobWatcher.polls} polls of PostgreSQL, ${events.length} history events, rollout ${((Date.now() - rolloutStartedAt) / 1000).toFixed(1)} s`);
});
