/**
 * Bad input on every API and MQTT message: a clear error, and nothing changed (STYLE principle 9;
 * docs/protocol.md "Bad messages"; invariants 2, 6 and 8).
 *
 * Three levels, each against real parts: the engine as GatewayHandler over a real SQLite store;
 * the real hub (startHub: SQLite, embedded broker with ACLs, HTTP) with a device speaking raw MQTT;
 * and the HTTP API of that same hub. Every refusal compares a snapshot of the whole store (homes,
 * devices with their reports, telemetry, jobs, history, skips, releases) before and after.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import type { MqttClient } from 'mqtt';
import { buildFirmwareImage } from '@firmward/agent';
import { DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Device, EpochMs, Home, Job, JobEvent, JobState, Release } from '@firmward/core';
import { hashSecret } from '@firmward/mqtt';
import { LoopbackGateway, ManualClock, MemoryReleaseSource } from '@firmward/ports';
import type { Logger, Store } from '@firmward/ports';
import { PROTOCOL_VERSION, deviceTopics } from '@firmward/protocol';
import type { DeviceEvent, DeviceState } from '@firmward/protocol';
import { createSimulatedDevice, demoProfiles } from '@firmward/simulator';
import type { SimulatedDevice } from '@firmward/simulator';
import { SqliteStore } from '@firmward/store-sqlite';
import { loadConfig } from '../src/config.ts';
import { RolloutEngine } from '../src/engine.ts';
import { publishReleases } from '../src/demo-repository.ts';
import { startHub } from '../src/hub.ts';
import type { RunningHub } from '../src/hub.ts';

const TZ = 'Europe/Berlin';
const HOUR = 3_600_000;
/** Tuesday 24 November 2026, 12:00 in Berlin: outside the quiet window, so nothing starts by itself. */
const START = Date.UTC(2026, 10, 24, 11, 0);
const SOAK_SECONDS = 300;
const IMAGE_BYTES = 64 * 1024;

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  // Memory-backed when the machine has it: the store fsyncs every write.
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

// ── the home the tests run in ───────────────────────────────────────────────────────────────

function home(id: string): Home {
  return {
    id, name: `Home ${id}`, halt: null,
    settings: {
      timeZone: TZ, window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS, soakSeconds: SOAK_SECONDS, silenceTimeoutSeconds: 900,
    },
  };
}

function device(id: string, homeId: string, model: string, firmwareVersion = '1.0.0'): Device {
  return { id, homeId, name: id, vendor: 'Acme', model, hardwareRevision: 'rev2', firmwareVersion, thresholds: {}, policy: null, schedules: [] };
}

/** plug and lamp share a home; the kettle and the toaster live in another one (one active update per home). */
const HOMES = [home('home'), home('flat')];
const DEVICES = [
  device('plug', 'home', 'SmartPlug'),
  device('lamp', 'home', 'Bulb'),
  device('plug2', 'home', 'SmartPlug', '1.1.0'),
  device('kettle', 'flat', 'Kettle'),
  device('toaster', 'flat', 'Toaster'),
];
const MODELS = ['SmartPlug', 'Bulb', 'Kettle', 'Toaster'];

function imageOf(model: string, version: string): Uint8Array {
  return buildFirmwareImage({ vendor: 'Acme', model, version }, IMAGE_BYTES);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function releaseOf(model: string, version: string): Release {
  const image = imageOf(model, version);
  return {
    id: releaseId('Acme', model, version), vendor: 'Acme', model, hardwareRevisions: ['rev2'], version, severity: 'none',
    vulnerabilitiesFixed: [], expectedInstallSeconds: 600, preflightOverrides: {}, retracted: false,
    recovery: { steps: ['Switch it off at the wall for ten seconds.'], supportContact: 'Acme support' },
    image: { path: `${model}-${version}.img`, lengthBytes: image.byteLength, sha256: sha256(image) },
  };
}

function stateOf(d: Device, patch: Partial<DeviceState> = {}): DeviceState {
  return {
    v: PROTOCOL_VERSION, vendor: d.vendor, model: d.model, hardwareRevision: d.hardwareRevision, firmwareVersion: d.firmwareVersion,
    activeSlot: 'a', powerSource: 'mains', batteryPercent: null, charging: false, signalDbm: -55, busy: false,
    freeStorageBytes: 4 * 1024 * 1024, healthy: true, job: null, ...patch,
  };
}

const byId = (id: string): Device => DEVICES.find((d) => d.id === id)!;

// ── observing the store and the logs ─────────────────────────────────────────────────────────

/** Everything the hub keeps, read through the Store port. */
async function snapshot(store: Store) {
  const devices = await store.listDevices();
  return {
    homes: await store.listHomes(),
    devices,
    telemetry: await Promise.all(devices.map(async (d) => ({ id: d.id, ...(await store.getTelemetry(d.id, 0, 0)) }))),
    jobs: await store.listJobs({}),
    events: await store.listEvents({ limit: 1000 }),
    skips: [...(await store.listSkips())].sort(),
    releases: await store.listReleases(),
    credentials: await store.listDeviceSecrets(),
    enrollments: await store.listEnrollments({}),
    pending: await store.listPendingDevices({}),
    repositories: await store.listRepositories(),
  };
}

interface LogLine {
  logger: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[], name = 'hub'): Logger {
  const at = (level: LogLine['level']) => (message: string, fields: Record<string, unknown> = {}) => {
    lines.push({ logger: name, level, message, fields });
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (n) => recordingLogger(lines, n) };
}

/** Waits for something the hub does asynchronously (an MQTT message handled); the bound only stops a hang. */
async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 2000; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(5);
  }
  assert.fail(`gave up waiting for ${what}`);
}

// ── (a) the engine as GatewayHandler, real SQLite store ─────────────────────────────────────

type Rejection = Parameters<RolloutEngine['onRejected']>[0];

/** The real engine, told of every refusal (onRejected stays the engine's own, only watched). */
class WatchedEngine extends RolloutEngine {
  readonly rejected: Rejection[] = [];
  override onRejected(info: Rejection): void {
    this.rejected.push(info);
    super.onRejected(info);
  }
}

interface EngineFixture {
  store: SqliteStore;
  engine: WatchedEngine;
  clock: ManualClock;
  gateway: LoopbackGateway;
  source: MemoryReleaseSource;
  logs: LogLine[];
  jobOf(deviceId: string): Promise<Job>;
  drive(deviceId: string, to: JobState): Promise<Job>;
  close(): Promise<void>;
}

async function engineFixture(): Promise<EngineFixture> {
  const dir = tempDir('firmward-bad-input-');
  const clock = new ManualClock(START);
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  const source = new MemoryReleaseSource();
  for (const model of MODELS) source.publish(releaseOf(model, '1.1.0'), imageOf(model, '1.1.0'));
  const gateway = new LoopbackGateway(clock);
  const logs: LogLine[] = [];
  const engine = new WatchedEngine({
    store, gateway, source, clock, log: recordingLogger(logs),
    config: { tickMs: 60_000, offerResendSeconds: 120, releaseRefreshSeconds: 300 },
    imageUrl: (id) => `http://hub.test/firmware/${encodeURIComponent(id)}`,
  });
  for (const h of HOMES) await store.putHome(h);
  for (const d of DEVICES) await store.putDevice(d);
  await gateway.start(engine);
  await engine.refreshReleases();
  await engine.plan(clock.now());

  const jobOf = async (deviceId: string) => (await store.listJobs({ deviceId }))[0]!;
  /** Moves a device's job along the legal path with the events the hub and device would give. */
  const drive = async (deviceId: string, to: JobState): Promise<Job> => {
    const job = await jobOf(deviceId);
    const path: JobEvent[] = to === 'cancelled'
      ? [{ type: 'cancel', by: 'person:owner', message: 'Cancelled by owner.' }]
      : [
        { type: 'offer', expectedDoneAt: clock.now() + HOUR, forcedBy: null, reasons: [] },
        { type: 'progress', phase: 'downloading', percent: 10 },
        { type: 'progress', phase: 'downloaded', percent: 100 },
        { type: 'approve-install' },
        { type: 'progress', phase: 'rebooting', percent: null },
        { type: 'reported', version: job.targetVersion, healthy: true },
        { type: 'soak-complete' },
      ];
    for (const event of path) {
      const current = await jobOf(deviceId);
      if (current.state === to) break;
      if (event.type === 'soak-complete') await clock.advance(SOAK_SECONDS * 1000 + 1);
      await engine.applyAs(job.id, event, 'hub');
    }
    const reached = await jobOf(deviceId);
    assert.equal(reached.state, to, 'the fixture could not drive the job');
    return reached;
  };
  return { store, engine, clock, gateway, source, logs, jobOf, drive, close: () => store.close() };
}

const progress = (jobId: string, phase: 'downloading' | 'downloaded' | 'installing' | 'rebooting', percent: number | null = null): DeviceEvent =>
  ({ v: PROTOCOL_VERSION, type: 'progress', jobId, phase, percent });
const ack = (jobId: string, accepted: boolean, code: string | null = null): DeviceEvent =>
  ({ v: PROTOCOL_VERSION, type: 'ack', jobId, accepted, code, message: code === null ? null : 'Not now.' });
const result = (jobId: string, outcome: 'installed' | 'rolled-back' | 'failed', firmwareVersion: string): DeviceEvent =>
  ({ v: PROTOCOL_VERSION, type: 'result', jobId, outcome, firmwareVersion, healthy: true, code: null, message: null });

interface BadMessageCase {
  name: string;
  /** Puts the store in the state the message is bad for. */
  prepare?: (f: EngineFixture) => Promise<void>;
  deliver: (f: EngineFixture, at: EpochMs) => Promise<void>;
  deviceId: string;
  topic: string;
  error: RegExp;
}

const BAD_MESSAGES: BadMessageCase[] = [
  {
    name: 'a state from a device the hub does not know',
    deliver: (f, at) => f.engine.onState('ghost', stateOf({ ...byId('plug'), id: 'ghost' }), at),
    deviceId: 'ghost', topic: 'state', error: /unknown device/,
  },
  ...(['vendor', 'model', 'hardwareRevision'] as const).map((field): BadMessageCase => ({
    // Invariant 2: identity is provisioned; a device saying it is something else is not believed.
    name: `a state whose ${field} differs from the registered device`,
    prepare: async (f) => void (await f.drive('plug', 'offered')),
    deliver: (f, at) => f.engine.onState('plug', stateOf(byId('plug'), { [field]: 'Other', firmwareVersion: '1.1.0' }), at),
    deviceId: 'plug', topic: 'state', error: /does not match the registered device/,
  })),
  {
    name: 'an event for a job id nobody issued',
    prepare: async (f) => void (await f.drive('plug', 'installing')),
    deliver: (f, at) => f.engine.onEvent('plug', progress('no-such-job', 'rebooting'), at),
    deviceId: 'plug', topic: 'evt', error: /unknown job no-such-job/,
  },
  {
    name: 'an event for another device\'s job',
    prepare: async (f) => void (await f.drive('kettle', 'downloaded')),
    deliver: async (f, at) => f.engine.onEvent('plug', progress((await f.jobOf('kettle')).id, 'installing', 5), at),
    deviceId: 'plug', topic: 'evt', error: /unknown job/,
  },
  {
    name: 'a replayed "downloading" after the job moved on to installing',
    prepare: async (f) => void (await f.drive('plug', 'installing')),
    deliver: async (f, at) => f.engine.onEvent('plug', progress((await f.jobOf('plug')).id, 'downloading', 40), at),
    deviceId: 'plug', topic: 'evt', error: /behind its recorded state "installing"/,
  },
  {
    name: 'a replayed "downloaded" after the job moved on to rebooting',
    prepare: async (f) => void (await f.drive('plug', 'rebooting')),
    deliver: async (f, at) => f.engine.onEvent('plug', progress((await f.jobOf('plug')).id, 'downloaded', 100), at),
    deviceId: 'plug', topic: 'evt', error: /behind its recorded state "rebooting"/,
  },
  {
    name: 'a "result installed" for a job that already succeeded',
    prepare: async (f) => void (await f.drive('plug', 'succeeded')),
    deliver: async (f, at) => f.engine.onEvent('plug', result((await f.jobOf('plug')).id, 'installed', '1.1.0'), at),
    deviceId: 'plug', topic: 'evt', error: /already ended \(succeeded\)/,
  },
  {
    name: 'a "result rolled-back" for a job that already succeeded',
    prepare: async (f) => void (await f.drive('plug', 'succeeded')),
    deliver: async (f, at) => f.engine.onEvent('plug', result((await f.jobOf('plug')).id, 'rolled-back', '1.0.0'), at),
    deviceId: 'plug', topic: 'evt', error: /already ended \(succeeded\)/,
  },
  {
    name: 'an ack for a cancelled job',
    prepare: async (f) => void (await f.drive('plug', 'cancelled')),
    deliver: async (f, at) => f.engine.onEvent('plug', ack((await f.jobOf('plug')).id, true), at),
    deviceId: 'plug', topic: 'evt', error: /already ended \(cancelled\)/,
  },
  {
    name: 'a refusing ack for a cancelled job',
    prepare: async (f) => void (await f.drive('plug', 'cancelled')),
    deliver: async (f, at) => f.engine.onEvent('plug', ack((await f.jobOf('plug')).id, false, 'device_busy'), at),
    deviceId: 'plug', topic: 'evt', error: /already ended \(cancelled\)/,
  },
  {
    name: 'an ack for a job that was never offered',
    deliver: async (f, at) => f.engine.onEvent('plug', ack((await f.jobOf('plug')).id, false, 'incompatible'), at),
    deviceId: 'plug', topic: 'evt', error: /is queued, not running on the device/,
  },
  {
    // The install step starts only on the hub's go-ahead (invariant 3), never on the device's word.
    name: 'progress "installing" before the hub\'s install go-ahead',
    prepare: async (f) => void (await f.drive('plug', 'downloaded')),
    deliver: async (f, at) => f.engine.onEvent('plug', progress((await f.jobOf('plug')).id, 'installing', 1), at),
    deviceId: 'plug', topic: 'evt', error: /cannot go from "downloaded" on "progress"/,
  },
  {
    name: 'progress "rebooting" while the job is only offered',
    prepare: async (f) => void (await f.drive('plug', 'offered')),
    deliver: async (f, at) => f.engine.onEvent('plug', progress((await f.jobOf('plug')).id, 'rebooting'), at),
    deviceId: 'plug', topic: 'evt', error: /cannot go from "offered" on "progress"/,
  },
  {
    name: 'a "result installed" while the job is only offered',
    prepare: async (f) => void (await f.drive('plug', 'offered')),
    deliver: async (f, at) => f.engine.onEvent('plug', result((await f.jobOf('plug')).id, 'installed', '1.1.0'), at),
    deviceId: 'plug', topic: 'evt', error: /cannot go from "offered" on "reported"/,
  },
  {
    name: 'availability from a device the hub does not know',
    deliver: (f, at) => f.engine.onAvailability('ghost', true, at),
    deviceId: 'ghost', topic: 'availability', error: /unknown device/,
  },
  {
    name: 'an event from a device the hub does not know',
    deliver: async (f, at) => f.engine.onEvent('ghost', ack((await f.jobOf('plug')).id, true), at),
    deviceId: 'ghost', topic: 'evt', error: /unknown device/,
  },
];

describe('(a) the engine refuses bad device messages and changes nothing', () => {
  for (const c of BAD_MESSAGES) {
    test(c.name, async () => {
      const f = await engineFixture();
      try {
        await c.prepare?.(f);
        const before = await snapshot(f.store);
        const sentBefore = f.gateway.sent.length;
        const refusalsBefore = f.logs.filter((l) => l.message === 'device message refused').length;
        await c.deliver(f, f.clock.now() + 1000);
        assert.deepEqual(await snapshot(f.store), before, 'the store changed');
        assert.equal(f.gateway.sent.length, sentBefore, 'a bad message must not trigger a command');
        assert.equal(f.engine.rejected.length, 1, 'onRejected must be told exactly once');
        const r = f.engine.rejected[0]!;
        assert.equal(r.deviceId, c.deviceId);
        assert.equal(r.topic, c.topic);
        assert.match(r.error, c.error);
        // And someone can see it: the engine's log says so, with the reason.
        const refusals = f.logs.filter((l) => l.message === 'device message refused');
        assert.equal(refusals.length, refusalsBefore + 1);
        assert.equal(refusals.at(-1)!.level, 'warn');
        assert.match(String(refusals.at(-1)!.fields['error']), c.error);
      } finally {
        await f.close();
      }
    });
  }

  test('control: the same snapshot sees an accepted message (the comparison can fail)', async () => {
    const f = await engineFixture();
    try {
      await f.drive('plug', 'installing');
      const before = await snapshot(f.store);
      await f.engine.onEvent('plug', progress((await f.jobOf('plug')).id, 'installing', 60), f.clock.now() + 1000);
      const afterProgress = await snapshot(f.store);
      assert.notDeepEqual(afterProgress, before);
      assert.equal((await f.jobOf('plug')).progressPercent, 60);
      await f.engine.onState('plug', stateOf(byId('plug')), f.clock.now() + 2000);
      assert.notDeepEqual(await snapshot(f.store), afterProgress);
      assert.deepEqual(f.engine.rejected, []);
    } finally {
      await f.close();
    }
  });
});

// ── the real hub: startHub with its embedded broker and HTTP ─────────────────────────────────

const OWNER_TOKEN = 'bad-input-test-owner-token-0123456789';
const MAX_BODY_BYTES = 2048;
const SECRETS = new Map<string, string>([['plug', 'plug-secret-0123456789abcdef'], ['lamp', 'lamp-secret-0123456789abcdef']]);

interface HubFixture {
  hub: RunningHub;
  clock: ManualClock;
  logs: LogLine[];
  api(method: string, path: string, init?: { body?: string; token?: string | null }): Promise<Response>;
  /** Resolves once the engine's loop has finished its tick and sleeps (on the manual clock). */
  idle(): Promise<void>;
}

async function startTestHub(): Promise<HubFixture> {
  const dir = tempDir('firmward-bad-input-hub-');
  const config = loadConfig({
    argv: ['--data-dir', dir, '--port', '0', '--mqtt-port', '0', '--max-body-bytes', String(MAX_BODY_BYTES)],
    env: {},
    readFile: () => {
      throw new Error('no config file in this test');
    },
  });
  const clock = new ManualClock(START);
  const logs: LogLine[] = [];
  // The maker's releases, signed and published with the release tool; the hub trusts its root.
  const maker = await publishReleases(path.join(dir, 'maker'), 'acme', MODELS.map((model) => ({
    custom: {
      vendor: 'Acme', model, hardwareRevisions: ['rev2'], version: '1.1.0', expectedInstallSeconds: 600,
      recovery: { steps: ['Switch it off at the wall for ten seconds.'] },
    },
    image: imageOf(model, '1.1.0'),
  })));
  const hub = await startHub({ ...config, repositories: [maker.config] }, {
    clock, log: recordingLogger(logs), ownerToken: OWNER_TOKEN,
    seed: async (store) => {
      for (const h of HOMES) await store.putHome(h);
      for (const d of DEVICES) await store.putDevice(d);
      for (const [id, secret] of SECRETS) await store.setDeviceSecret(id, await hashSecret(secret));
      // plug2 runs 1.1.0 already; an old "no" to that release is still on record.
      await store.addSkip('plug2', releaseId('Acme', 'SmartPlug', '1.1.0'), START - HOUR, 'person:owner');
    },
  });
  const base = `http://127.0.0.1:${hub.httpPort}`;
  const api = (method: string, p: string, init: { body?: string; token?: string | null } = {}) => {
    const headers: Record<string, string> = {};
    const token = init.token === undefined ? OWNER_TOKEN : init.token;
    if (token !== null) headers['authorization'] = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(`${base}${p}`, { method, headers, ...(init.body === undefined ? {} : { body: init.body }) });
  };
  const idle = () => until('the engine to finish its tick', () => (clock.pending > 0 ? true : undefined)).then(() => undefined);
  await idle();
  return { hub, clock, logs, api, idle };
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = await res.json() as { error?: { code?: unknown; message?: unknown } };
  assert.equal(typeof body.error?.code, 'string', 'an error has a code');
  assert.equal(typeof body.error?.message, 'string', 'an error has a message');
  const message = body.error!.message as string;
  // One sentence a householder can read, never a stack or an empty string.
  assert.match(message, /^\S.{8,}[.)]$/s, `not a sentence: ${message}`);
  assert.doesNotMatch(message, /at .*\.ts:\d+|SQLITE|undefined/);
  return { code: body.error!.code as string, message };
}

describe('through the real hub (startHub, embedded broker, HTTP)', () => {
  let f: HubFixture;
  let plug: MqttClient | null = null;
  before(async () => {
    f = await startTestHub();
  });
  after(async () => {
    await plug?.endAsync(true);
    await f.hub.stop();
  });

  const engineRefusals = () => f.logs.filter((l) => l.logger === 'engine' && l.message === 'device message refused');
  const brokerRefusals = () => f.logs.filter((l) => l.logger === 'broker' && l.message === 'Refused a publish; it was dropped.');

  describe('(a) raw MQTT from a provisioned device', () => {
    const topics = deviceTopics('plug');
    const bad: { name: string; topic: string; payload: string | Buffer; retain?: boolean; heardBy: 'engine' | 'broker'; error: RegExp }[] = [
      { name: 'not JSON', topic: topics.state, payload: '{"v":1,"vendor":', retain: true, heardBy: 'engine', error: /^state: payload is not valid JSON$/ },
      { name: 'not UTF-8', topic: topics.event, payload: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), heardBy: 'engine', error: /^event: payload is not valid JSON$/ },
      { name: 'an empty payload', topic: topics.availability, payload: '', heardBy: 'engine', error: /^availability: payload is not valid JSON$/ },
      {
        name: 'the wrong schema (battery as text)', topic: topics.state,
        payload: JSON.stringify({ ...stateOf(byId('plug')), batteryPercent: 'full' }), retain: true, heardBy: 'engine', error: /^state: batteryPercent: /,
      },
      {
        name: 'an unknown protocol version', topic: topics.event,
        payload: JSON.stringify({ v: 2, type: 'ack', jobId: 'j', accepted: true, code: null, message: null }), heardBy: 'engine', error: /^event: v: /,
      },
      {
        name: 'an extra field in a state', topic: topics.state,
        payload: JSON.stringify({ ...stateOf(byId('plug')), admin: true }), retain: true, heardBy: 'engine', error: /^state: .*admin/,
      },
      {
        name: 'an extra field in an event', topic: topics.event,
        payload: JSON.stringify({ v: 1, type: 'progress', jobId: 'j', phase: 'downloading', percent: 5, installNow: true }), heardBy: 'engine', error: /^event: .*installNow/,
      },
      {
        name: 'an oversized payload', topic: topics.event,
        payload: JSON.stringify({ v: 1, type: 'ack', jobId: 'j', accepted: false, code: 'x', message: 'y'.repeat(17_000) }), heardBy: 'broker', error: /over the 16384-byte limit/,
      },
      {
        name: 'a state on another device\'s topic (broker ACL)', topic: deviceTopics('lamp').state,
        payload: JSON.stringify(stateOf(byId('lamp'), { firmwareVersion: '9.9.9' })), retain: true, heardBy: 'broker', error: /may not publish for "lamp"/,
      },
      {
        name: 'a command on its own command topic (broker ACL)', topic: topics.command,
        payload: JSON.stringify({ v: 1, type: 'install', jobId: 'j' }), heardBy: 'broker', error: /may not publish commands/,
      },
      {
        // Invariant 2: a well-formed state that claims another model is refused by the engine.
        name: 'a valid state with a mismatched identity', topic: topics.state,
        payload: JSON.stringify(stateOf(byId('plug'), { model: 'Bulb', firmwareVersion: '1.0.0' })), retain: true, heardBy: 'engine',
        error: /identity Acme\/Bulb\/rev2 does not match the registered device/,
      },
      {
        name: 'an event for a job id nobody issued', topic: topics.event,
        payload: JSON.stringify(progress('no-such-job', 'installing', 1)), heardBy: 'engine', error: /unknown job no-such-job/,
      },
    ];

    test('the device connects with its own credentials', async () => {
      plug = await connectAsync(f.hub.mqttUrl, {
        clientId: 'plug', username: 'plug', password: SECRETS.get('plug')!, protocolVersion: 4, clean: true, reconnectPeriod: 0,
      });
      assert.ok(plug.connected);
    });

    for (const c of bad) {
      test(`${c.name}: refused, nothing changed, the hub still answers`, async () => {
        assert.ok(plug?.connected, 'the device is connected');
        const before = await snapshot(f.hub.store);
        const seen = c.heardBy === 'engine' ? engineRefusals : brokerRefusals;
        const count = seen().length;
        await plug.publishAsync(c.topic, c.payload, { qos: 1, retain: c.retain ?? false });
        const refusal = await until(`the ${c.heardBy} to refuse it`, () => seen()[count]);
        const reason = String(c.heardBy === 'engine' ? refusal.fields['error'] : refusal.fields['reason']);
        assert.match(reason, c.error);
        assert.equal(c.heardBy === 'engine' ? refusal.fields['deviceId'] : refusal.fields['clientId'], 'plug');
        assert.equal(seen().length, count + 1, 'refused exactly once');
        assert.deepEqual(await snapshot(f.hub.store), before, 'the store changed');
        const health = await f.api('GET', '/api/v1/health', { token: null });
        assert.equal(health.status, 200);
        assert.ok(plug.connected, 'a refused message does not cost the device its connection');
      });
    }

    test('the API still shows the devices as they were; a valid state is then accepted (control)', async () => {
      const res = await f.api('GET', '/api/v1/devices');
      assert.equal(res.status, 200);
      const views = await res.json() as { id: string; model: string; firmwareVersion: string; report: unknown }[];
      const plugView = views.find((v) => v.id === 'plug')!;
      const lampView = views.find((v) => v.id === 'lamp')!;
      assert.equal(plugView.model, 'SmartPlug');
      assert.equal(plugView.report, null);
      assert.equal(lampView.firmwareVersion, '1.0.0', 'another device\'s state was not taken');
      assert.equal(lampView.report, null);

      const refusals = engineRefusals().length;
      await plug!.publishAsync(deviceTopics('plug').state, JSON.stringify(stateOf(byId('plug'), { signalDbm: -48 })), { qos: 1, retain: true });
      const report = await until('the valid state to be recorded', async () => (await f.hub.store.getDevice('plug'))?.report ?? undefined);
      assert.equal(report.signalDbm, -48);
      assert.equal(engineRefusals().length, refusals);
    });
  });

  describe('(b) the HTTP API refuses bad requests and changes nothing', () => {
    /** Sends the request and checks status, code, sentence and that the store did not move. */
    async function refused(method: string, p: string, init: { body?: string; token?: string | null }, status: number, code: string): Promise<string> {
      const before = await snapshot(f.hub.store);
      const res = await f.api(method, p, init);
      assert.equal(res.status, status, `${method} ${p}`);
      const error = await errorOf(res);
      assert.equal(error.code, code, `${method} ${p}`);
      assert.deepEqual(await snapshot(f.hub.store), before, `${method} ${p} changed the store`);
      return error.message;
    }

    test('malformed JSON', async () => {
      for (const [method, p] of [['PATCH', '/api/v1/homes/home/settings'], ['PATCH', '/api/v1/devices/plug/settings'], ['POST', '/api/v1/devices/plug/update'], ['POST', '/api/v1/devices/plug/force'], ['POST', '/api/v1/homes/home/resume']] as const) {
        assert.match(await refused(method, p, { body: '{"policy": "notify",' }, 400, 'invalid_input'), /not valid JSON/);
      }
    });

    test('an oversized body', async () => {
      const big = JSON.stringify({ policy: 'notify', timeZone: 'x'.repeat(MAX_BODY_BYTES) });
      const message = await refused('PATCH', '/api/v1/homes/home/settings', { body: big }, 413, 'payload_too_large');
      assert.match(message, new RegExp(String(MAX_BODY_BYTES)));
      await refused('POST', '/api/v1/devices/plug/force', { body: JSON.stringify({ confirm: true, pad: 'x'.repeat(MAX_BODY_BYTES) }) }, 413, 'payload_too_large');
    });

    test('unknown fields', async () => {
      assert.match(await refused('PATCH', '/api/v1/homes/home/settings', { body: '{"policy":"notify","colour":"red"}' }, 400, 'invalid_input'), /"colour" is not a field/);
      assert.match(await refused('PATCH', '/api/v1/homes/home/settings', { body: '{"thresholds":{"minBatteryPercent":20,"maxTemperature":40}}' }, 400, 'invalid_input'), /"thresholds.maxTemperature" is not a field/);
      assert.match(await refused('PATCH', '/api/v1/devices/plug/settings', { body: '{"firmwareVersion":"9.9.9"}' }, 400, 'invalid_input'), /"firmwareVersion" is not a field/);
      assert.match(await refused('POST', '/api/v1/devices/plug/update', { body: '{"version":"9.9.9"}' }, 400, 'invalid_input'), /"version" is not a field/);
      assert.match(await refused('POST', '/api/v1/devices/plug/force', { body: '{"confirm":true,"skipChecks":"all"}' }, 400, 'invalid_input'), /"skipChecks" is not a field/);
      assert.match(await refused('GET', '/api/v1/jobs?state=failed', {}, 400, 'invalid_input'), /"state" is not a field/);
      // Values out of range are refused the same way.
      assert.match(await refused('PATCH', '/api/v1/homes/home/settings', { body: '{"timeZone":"Mars/Olympus"}' }, 400, 'invalid_input'), /time zone/);
      await refused('PATCH', '/api/v1/homes/home/settings', { body: '{"window":{"start":"25:00","end":"05:00"}}' }, 400, 'invalid_input');
    });

    test('setting a household up: malformed, unknown fields, out of range, unknown ids — each refused, nothing changed', async () => {
      const cases: [string, string, string | undefined, number, string, RegExp][] = [
        ['POST', '/api/v1/homes', '{"name": "Flat",', 400, 'invalid_input', /not valid JSON/],
        ['POST', '/api/v1/homes', '{"name":"Flat","colour":"red"}', 400, 'invalid_input', /"colour" is not a field/],
        ['POST', '/api/v1/homes', '{"name":""}', 400, 'invalid_input', /name/],
        ['PATCH', '/api/v1/homes/nowhere', '{"name":"x"}', 404, 'not_found', /no home "nowhere"/],
        ['DELETE', '/api/v1/homes/nowhere', undefined, 404, 'not_found', /no home "nowhere"/],
        ['POST', '/api/v1/homes/nowhere/enrollments', '{}', 404, 'not_found', /no home "nowhere"/],
        ['POST', '/api/v1/homes/home/enrollments', '{"expiresInMinutes": 0}', 400, 'invalid_input', /expiresInMinutes/],
        ['POST', '/api/v1/homes/home/enrollments', '{"expiresInMinutes": 99999}', 400, 'invalid_input', /a week/],
        ['DELETE', '/api/v1/enrollments/none', undefined, 404, 'not_found', /no such enrollment/],
        ['POST', '/api/v1/pending-devices/ghost/approve', '{}', 404, 'not_found', /no device "ghost" waiting/],
        ['POST', '/api/v1/pending-devices/ghost/reject', '{}', 404, 'not_found', /no device "ghost" waiting/],
        ['POST', '/api/v1/homes/home/devices', '{"protocol":"zigbee","id":"x","name":"x","vendor":"a","model":"b","hardwareRevision":"c","firmwareVersion":"1"}', 400, 'invalid_input', /protocol/],
        ['POST', '/api/v1/homes/home/devices', '{"protocol":"agent","id":"plug","name":"x","vendor":"a","model":"b","hardwareRevision":"c","firmwareVersion":"1"}', 409, 'conflict', /on the hub already/],
        ['POST', '/api/v1/homes/home/devices', '{"protocol":"hawkbit","id":"gw1","name":"x","vendor":"a","model":"b","hardwareRevision":"c","firmwareVersion":"1"}', 400, 'invalid_input', /hawkBit device API/],
        ['PATCH', '/api/v1/devices/plug', '{}', 400, 'invalid_input', /must change something/],
        ['PATCH', '/api/v1/devices/plug', '{"vendor":"Other"}', 400, 'invalid_input', /"vendor" is not a field/],
        ['PATCH', '/api/v1/devices/plug', '{"homeId":"nowhere"}', 404, 'not_found', /no home "nowhere"/],
        ['PATCH', '/api/v1/devices/ghost', '{"name":"x"}', 404, 'not_found', /no device "ghost"/],
        ['DELETE', '/api/v1/devices/ghost', undefined, 404, 'not_found', /no device "ghost"/],
        ['POST', '/api/v1/devices/ghost/credentials', undefined, 404, 'not_found', /no device "ghost"/],
        ['POST', '/api/v1/repositories', '{"name":"x","url":"https://x.example/","root":"{}"}', 400, 'invalid_input', /not a TUF root/],
        ['POST', '/api/v1/repositories', '{"name":"x","url":"https://x.example/"}', 400, 'invalid_input', /root/],
        ['DELETE', '/api/v1/repositories/nope', undefined, 404, 'not_found', /no repository "nope"/],
        ['PATCH', '/api/v1/ddi', '{"autoRegister":true}', 400, 'invalid_input', /hawkBit device API is off/],
        ['POST', '/enroll/v1/claims', '{"code":', 400, 'invalid_input', /not valid JSON/],
        ['POST', '/enroll/v1/claims', '{"code":"AAAAA-AAAAA","device":{"id":"x","vendor":"a","model":"b","hardwareRevision":"c","firmwareVersion":"1"},"extra":1}', 400, 'invalid_input', /"extra" is not a field/],
      ];
      for (const [method, p, body, status, code, message] of cases) {
        assert.match(await refused(method, p, body === undefined ? {} : { body }, status, code), message, `${method} ${p}`);
      }
      await refused('POST', '/api/v1/homes', { body: JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES) }) }, 413, 'payload_too_large');
    });

    test('unknown home, device and job ids: 404 with a sentence', async () => {
      const cases: [string, string, string | undefined, RegExp][] = [
        ['GET', '/api/v1/homes/nowhere', undefined, /no home nowhere/],
        ['PATCH', '/api/v1/homes/nowhere/settings', '{"policy":"notify"}', /no home nowhere/],
        ['POST', '/api/v1/homes/nowhere/resume', undefined, /no home nowhere/],
        ['POST', '/api/v1/homes/nowhere/skip', undefined, /no home nowhere/],
        ['GET', '/api/v1/devices/ghost', undefined, /no device ghost/],
        ['PATCH', '/api/v1/devices/ghost/settings', '{"policy":"manual"}', /no device ghost/],
        ['POST', '/api/v1/devices/ghost/update', undefined, /no device ghost/],
        ['POST', '/api/v1/devices/ghost/force', '{"confirm":true}', /no device ghost/],
        ['GET', '/api/v1/jobs/no-such-job', undefined, /no update no-such-job/],
        ['POST', '/api/v1/jobs/no-such-job/cancel', undefined, /no update no-such-job/],
      ];
      for (const [method, p, body, message] of cases) {
        assert.match(await refused(method, p, body === undefined ? {} : { body }, 404, 'not_found'), message);
      }
    });

    test('a wrong or missing owner token: 401, and no action is taken', async () => {
      for (const token of ['not-the-owner-token-0123456789', null]) {
        await refused('POST', '/api/v1/devices/plug/update', { token }, 401, 'unauthorized');
        await refused('POST', '/api/v1/devices/plug/force', { token, body: '{"confirm":true}' }, 401, 'unauthorized');
        await refused('PATCH', '/api/v1/homes/home/settings', { token, body: '{"policy":"manual"}' }, 401, 'unauthorized');
        await refused('POST', `/api/v1/jobs/${(await f.hub.store.listJobs({ deviceId: 'lamp' }))[0]!.id}/cancel`, { token }, 401, 'unauthorized');
      }
    });

    test('force without confirm: 400 (invariant 3 needs an explicit yes)', async () => {
      for (const body of [undefined, '{}', '{"confirm":false}', '{"confirm":"yes"}', '[]']) {
        const message = await refused('POST', '/api/v1/devices/plug/force', body === undefined ? {} : { body }, 400, 'invalid_input');
        assert.match(message, /"confirm": true/);
      }
    });

    test('resume or skip of a home that is not halted: 409 queue_not_halted', async () => {
      assert.match(await refused('POST', '/api/v1/homes/home/resume', {}, 409, 'queue_not_halted'), /not paused/);
      await refused('POST', '/api/v1/homes/home/skip', {}, 409, 'queue_not_halted');
    });

    test('update-now of an up-to-date device: 422 already_up_to_date, and its skips stay', async () => {
      const message = await refused('POST', '/api/v1/devices/plug2/update', {}, 422, 'already_up_to_date');
      assert.match(message, /1\.1\.0/);
      assert.ok((await f.hub.store.listSkips()).has(`plug2|${releaseId('Acme', 'SmartPlug', '1.1.0')}`));
      await refused('POST', '/api/v1/devices/plug2/force', { body: '{"confirm":true}' }, 422, 'already_up_to_date');
    });

    test('cancel of an installing job: 409 cancel_too_late (invariant 6); a forced start beside it: 409 home_busy', async () => {
      const kettle = (await f.hub.store.listJobs({ deviceId: 'kettle' }))[0]!;
      const now = f.clock.now();
      for (const event of [
        { type: 'offer', expectedDoneAt: now + HOUR, forcedBy: null, reasons: [] },
        { type: 'progress', phase: 'downloading', percent: 50 },
        { type: 'progress', phase: 'downloaded', percent: 100 },
        { type: 'approve-install' },
      ] as const satisfies readonly JobEvent[]) {
        await f.hub.engine.applyAs(kettle.id, event, 'hub');
      }
      assert.equal((await f.hub.store.getJob(kettle.id))!.state, 'installing');
      const message = await refused('POST', `/api/v1/jobs/${kettle.id}/cancel`, {}, 409, 'cancel_too_late');
      assert.match(message, /installing/);
      assert.equal((await f.hub.store.getJob(kettle.id))!.state, 'installing');
      // The toaster shares the kettle's home: even forced, it waits, and the refusal writes nothing.
      assert.match(await refused('POST', '/api/v1/devices/toaster/force', { body: '{"confirm":true}' }, 409, 'home_busy'), /one at a time/);
      assert.match(await refused('POST', '/api/v1/devices/kettle/settings', { body: '{}' }, 404, 'not_found'), /nothing at this address/);
    });
  });

  describe('(c) every command is idempotent by job id (invariant 8)', () => {
    test('update-now twice: the same job, and the second call writes nothing', async () => {
      const first = await f.api('POST', '/api/v1/devices/plug/update');
      assert.equal(first.status, 200);
      const job = await first.json() as { id: string; requestedBy: string | null; deviceId: string };
      assert.equal(job.deviceId, 'plug');
      assert.equal(job.requestedBy, 'person:owner');
      const before = await snapshot(f.hub.store);
      const second = await f.api('POST', '/api/v1/devices/plug/update');
      assert.equal(second.status, 200);
      assert.equal((await second.json() as { id: string }).id, job.id);
      assert.deepEqual(await snapshot(f.hub.store), before);
      assert.equal((await f.hub.store.listJobs({ deviceId: 'plug', open: true })).length, 1);
    });

    test('cancel twice: the same cancelled job; a later update-now makes one new job', async () => {
      const open = (await f.hub.store.listJobs({ deviceId: 'lamp', open: true }))[0]!;
      const first = await f.api('POST', `/api/v1/jobs/${open.id}/cancel`);
      assert.equal(first.status, 200, await first.clone().text());
      assert.equal((await first.json() as { state: string }).state, 'cancelled');
      const before = await snapshot(f.hub.store);
      const second = await f.api('POST', `/api/v1/jobs/${open.id}/cancel`);
      assert.equal(second.status, 200, await second.clone().text());
      const again = await second.json() as { id: string; state: string };
      assert.deepEqual([again.id, again.state], [open.id, 'cancelled']);
      assert.deepEqual(await snapshot(f.hub.store), before, 'a repeated cancel writes nothing');

      const a = await (await f.api('POST', '/api/v1/devices/lamp/update')).json() as { id: string };
      const b = await (await f.api('POST', '/api/v1/devices/lamp/update')).json() as { id: string };
      assert.notEqual(a.id, open.id);
      assert.equal(b.id, a.id);
      assert.equal((await f.hub.store.listJobs({ deviceId: 'lamp', open: true })).length, 1);
    });

    test('cancel of a job that already succeeded: 409 with a sentence, nothing changed', async () => {
      const kettle = (await f.hub.store.listJobs({ deviceId: 'kettle' }))[0]!;
      await f.hub.engine.applyAs(kettle.id, { type: 'progress', phase: 'rebooting', percent: null }, 'hub');
      await f.hub.engine.applyAs(kettle.id, { type: 'reported', version: '1.1.0', healthy: true }, 'hub');
      await f.clock.advance(SOAK_SECONDS * 1000 + 1);
      await f.idle();
      const job = (await f.hub.store.getJob(kettle.id))!;
      if (job.state === 'confirming') await f.hub.engine.applyAs(kettle.id, { type: 'soak-complete' }, 'hub');
      assert.equal((await f.hub.store.getJob(kettle.id))!.state, 'succeeded');
      const before = await snapshot(f.hub.store);
      const res = await f.api('POST', `/api/v1/jobs/${kettle.id}/cancel`);
      assert.equal(res.status, 409);
      const error = await errorOf(res);
      assert.equal(error.code, 'conflict');
      assert.match(error.message, /already succeeded/);
      assert.deepEqual(await snapshot(f.hub.store), before);
    });
  });
});

// ── (c) the same offer twice to a real agent ─────────────────────────────────────────────────

describe('(c) the real agent takes the same offer twice as once', () => {
  let clock: ManualClock;
  let store: SqliteStore;
  let engine: WatchedEngine;
  let gateway: LoopbackGateway;
  let sim: SimulatedDevice;
  const fetches: string[] = [];
  const heard: DeviceEvent[] = [];
  const agentSteps: string[] = [];

  before(async () => {
    const dir = tempDir('firmward-bad-input-agent-');
    clock = new ManualClock(START);
    store = await SqliteStore.open(path.join(dir, 'hub.db'));
    const source = new MemoryReleaseSource();
    const profile = { ...demoProfiles(TZ).kitchenPlug, name: 'plug', identity: { deviceId: 'plug', vendor: 'Acme', model: 'SmartPlug', hardwareRevision: 'rev2' }, imageBytes: IMAGE_BYTES };
    const image = imageOf('SmartPlug', '1.1.0');
    source.publish(releaseOf('SmartPlug', '1.1.0'), image);
    gateway = new LoopbackGateway(clock);
    engine = new (class extends WatchedEngine {
      override async onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
        heard.push(event);
        await super.onEvent(deviceId, event, at);
      }
    })({
      store, gateway, source, clock, log: recordingLogger([]),
      config: { tickMs: 60_000, offerResendSeconds: 120, releaseRefreshSeconds: 300 },
      imageUrl: (id) => `http://hub.test/firmware/${encodeURIComponent(id)}`,
    });
    await store.putHome(home('home'));
    await store.putDevice(device('plug', 'home', 'SmartPlug'));
    await gateway.start(engine);
    await engine.refreshReleases();
    await engine.plan(clock.now());
    sim = createSimulatedDevice(profile, {
      clock,
      fetch: (input, init) => {
        fetches.push(String(input instanceof Request ? input.url : input));
        return source.fetch(input, init);
      },
      connect: (identity) => gateway.connect(identity.deviceId),
    });
    await sim.start();
    sim.agent!.onTransition((t) => agentSteps.push(`${t.from}→${t.to}`));
  });
  after(async () => {
    await sim.stop();
    await store.close();
  });

  const acks = (jobId: string) => heard.filter((e) => e.type === 'ack' && e.jobId === jobId);

  test('offer twice with one job id: one download, two acks, no restart', async () => {
    const job = (await store.listJobs({ deviceId: 'plug' }))[0]!;
    const bootsBefore = sim.hardware.boots.length;
    // The hub's offer, then the same offer again (a re-send after a lost ack, or a QoS 1 duplicate).
    await engine.applyAs(job.id, { type: 'offer', expectedDoneAt: clock.now() + HOUR, forcedBy: null, reasons: [] }, 'hub');
    await engine.sendOffer((await store.getJob(job.id))!);
    await until('the device to report the download', async () => ((await store.getJob(job.id))!.state === 'downloaded' && acks(job.id).length >= 2 ? true : undefined));
    await sim.agent!.settled();

    // And a third copy after the download finished: acknowledged again, nothing started over.
    await engine.sendOffer((await store.getJob(job.id))!);
    await until('the third ack', () => (acks(job.id).length >= 3 ? true : undefined));
    await sim.agent!.settled();

    assert.equal(fetches.length, 1, `one download, got ${fetches.length}`);
    assert.deepEqual(acks(job.id).map((a) => a.type === 'ack' && a.accepted), [true, true, true]);
    assert.deepEqual(agentSteps, ['idle→downloading', 'downloading→downloaded'], 'the agent never restarted the job');
    assert.equal(sim.hardware.boots.length, bootsBefore, 'no restart of the device');
    assert.equal(sim.agent!.phase, 'downloaded');
    const saved = (await store.getJob(job.id))!;
    assert.equal(saved.state, 'downloaded');
    assert.equal(saved.failure, null);
    assert.deepEqual(engine.rejected.filter((r) => r.topic === 'evt' && !/behind its recorded state/.test(r.error)), []);
  });

  test('an install deferred at the last check is offered again under the same job id: picked up, not refused', async () => {
    // The sequencer defers the install when a preflight rule fails right before it (invariant 3),
    // and offers the same job again once the rule passes.
    const job = (await store.listJobs({ deviceId: 'plug' }))[0]!;
    assert.equal(job.state, 'downloaded');
    const sentBefore = gateway.sent.length;
    await engine.applyAs(job.id, { type: 'defer-install', reasons: [{ code: 'device_busy', message: 'The plug is in use.' }], recheckAt: null }, 'hub');
    await sim.agent!.settled();
    assert.equal((await store.getJob(job.id))!.state, 'waiting');
    assert.deepEqual(gateway.sent.slice(sentBefore), [], 'nothing is sent to the device: it keeps its verified download');
    assert.equal(sim.agent!.phase, 'downloaded');

    const acksBefore = acks(job.id).length;
    await engine.applyAs(job.id, { type: 'offer', expectedDoneAt: clock.now() + HOUR, forcedBy: null, reasons: [] }, 'hub');
    await until('the device to answer the new offer', async () => ((await store.getJob(job.id))!.state === 'downloaded' && acks(job.id).length > acksBefore ? true : undefined));
    await sim.agent!.settled();
    const again = (await store.getJob(job.id))!;
    assert.equal(again.failure, null, `the update failed: ${again.failure?.message ?? ''}`);
    assert.deepEqual(acks(job.id).slice(acksBefore).map((a) => a.type === 'ack' && a.accepted), [true]);
    assert.equal(fetches.length, 1, 'the download is not repeated');
    assert.deepEqual(agentSteps, ['idle→downloading', 'downloading→downloaded']);

    // The go-ahead now finds the download where it was left.
    await engine.applyAs(job.id, { type: 'approve-install' }, 'hub');
    await until('the device to start installing', () => (sim.agent?.phase === 'installing' ? true : undefined));
    assert.equal((await store.getJob(job.id))!.state, 'installing');
  });
});
