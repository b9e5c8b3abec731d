/**
 * A whole week of a simulated home in simulated time: the real engine, the real SQLite store and
 * the real agent on simulated devices, joined in-process (LoopbackGateway, MemoryReleaseSource)
 * so seven days run in seconds. Asserts who was updated when, and why the others were not.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DateTime } from 'luxon';
import { ACTIVE_STATES, DEFAULT_THRESHOLDS, releaseId } from '@firmward/core';
import type { Device, Home, Release } from '@firmward/core';
import { LoopbackGateway, ManualClock, MemoryReleaseSource, silentLogger } from '@firmward/ports';
import type { HistoryEvent } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { buildReleaseImage, createSimulatedDevice, demoProfiles } from '@firmward/simulator';
import type { DeviceProfile, SimulatedDevice } from '@firmward/simulator';
import { RolloutEngine } from '../src/engine.ts';
import { DefaultHubService } from '../src/hub-service.ts';

const TZ = 'Europe/Berlin';
const MINUTE = 60_000;
/** Monday 23 November 2026, 12:00 in Berlin. */
const START = DateTime.fromObject({ year: 2026, month: 11, day: 23, hour: 12 }, { zone: TZ }).toMillis();
const at = (day: number, hour: number, minute = 0) => DateTime.fromMillis(START, { zone: TZ }).plus({ days: day }).set({ hour, minute }).toMillis();
const local = (t: number) => DateTime.fromMillis(t, { zone: TZ });

const p = demoProfiles(TZ);
const named = (base: DeviceProfile, id: string, model: string, patch: Partial<DeviceProfile> = {}): DeviceProfile =>
  ({ ...base, name: id, identity: { ...base.identity, deviceId: id, model }, timeZone: TZ, ...patch });

const PROFILES: DeviceProfile[] = [
  named(p.kitchenPlug, 'plug', 'SmartPlug'),
  // On battery at 23 %; only on its charger on Wednesday afternoon.
  named(p.hallSensor, 'sensor', 'MotionSensor', {
    battery: { startPercent: 23, drainPercentPerHour: 0.1, chargePercentPerHour: 30, chargingWindows: [{ start: '14:00', end: '16:00', weekdays: [3] }] },
  }),
  // Night owls: the TV is on until 02:00 every night.
  named(p.livingRoomTv, 'tv', 'TV55', { busy: [{ start: '00:00', end: '02:00' }, { start: '18:00', end: '23:59' }] }),
  // Its new image fails its health check.
  named(p.deskLamp, 'lamp', 'Bulb', { busy: [] }),
  named(p.thermostat, 'thermostat', 'Thermo3', { busy: [] }),
  // Weak WiFi all week.
  named(p.kitchenPlug, 'camera', 'Cam2'),
  // Its owner's schedule says it plays music 01:00–03:00.
  named(p.kitchenPlug, 'speaker', 'Speaker1'),
  // The person wants to be asked first.
  named(p.kitchenPlug, 'blind', 'Blind'),
];

const home: Home = {
  id: 'home', name: 'Week home', halt: null,
  settings: {
    timeZone: TZ, window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic',
    thresholds: DEFAULT_THRESHOLDS, soakSeconds: 300, silenceTimeoutSeconds: 900,
  },
};

function release(profile: DeviceProfile, version: string, extra: Partial<Release> = {}): Release {
  const image = buildReleaseImage(profile, version);
  return {
    id: releaseId(profile.identity.vendor, profile.identity.model, version), vendor: profile.identity.vendor, model: profile.identity.model,
    hardwareRevisions: [profile.identity.hardwareRevision], version, severity: 'none', vulnerabilitiesFixed: [],
    expectedInstallSeconds: 600, preflightOverrides: {}, retracted: false,
    recovery: { steps: [`Switch the ${profile.name} off at the wall for ten seconds.`], supportContact: 'Acme support' },
    image: { path: `${profile.identity.model}-${version}.img`, lengthBytes: image.byteLength, sha256: sha256(image) },
    ...extra,
  };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let dir = '';
let events: HistoryEvent[] = [];
let finalVersions = new Map<string, string>();
let homeAfterFailure: Home | null = null;
let summaries = new Map<string, string>();

before(async () => {
  // Memory-backed when the machine has it: the store still fsyncs every write, which a real hub
  // wants and a week of simulated reports does not need to wait for.
  dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'firmward-week-'));
  const clock = new ManualClock(START);
  const store = await SqliteStore.open(path.join(dir, 'hub.db'));
  const source = new MemoryReleaseSource();
  const gateway = new LoopbackGateway(clock);
  const engine = new RolloutEngine({
    store, gateway, source, clock, log: silentLogger,
    config: { tickMs: MINUTE, offerResendSeconds: 120, releaseRefreshSeconds: 300 },
    imageUrl: (id) => `http://hub.test/firmware/${encodeURIComponent(id)}`,
  });
  const service = new DefaultHubService({ store, engine, clock, version: 'test', gatewayName: 'loopback', mqtt: null });

  await store.putHome(home);
  for (const profile of PROFILES) {
    const id = profile.identity;
    const device: Device = {
      id: id.deviceId, homeId: home.id, name: profile.name, vendor: id.vendor, model: id.model, hardwareRevision: id.hardwareRevision,
      firmwareVersion: profile.firmwareVersion, thresholds: {},
      policy: id.deviceId === 'blind' ? 'notify' : null,
      schedules: id.deviceId === 'speaker' ? [{ weekdays: [], start: '01:00', end: '03:00' }] : [],
    };
    await store.putDevice(device);
  }
  const devices: SimulatedDevice[] = PROFILES.map((profile) => createSimulatedDevice(profile, {
    clock, fetch: source.fetch, linkCheckIntervalMs: MINUTE,
    connect: (identity) => gateway.connect(identity.deviceId),
  }));
  devices.find((d) => d.profile.identity.deviceId === 'camera')!.setSignal(-81);

  const byId = (id: string) => PROFILES.find((x) => x.identity.deviceId === id)!;
  const publish = (id: string, version: string, extra: Partial<Release> = {}) => {
    const r = release(byId(id), version, extra);
    source.publish(r, buildReleaseImage(byId(id), version));
  };
  // Monday noon: the maker publishes for most devices.
  for (const id of ['plug', 'sensor', 'tv', 'camera', 'speaker', 'blind']) publish(id, '1.1.0');
  await gateway.start(engine);
  await engine.start();
  for (const d of devices) await d.start();

  const script: [number, () => Promise<void> | void][] = [
    // Tuesday noon: a security fix for the lamp (it goes first) and an update for the thermostat.
    [at(1, 12), () => {
      publish('lamp', '1.1.0', { severity: 'high', vulnerabilitiesFixed: [{ id: 'CVE-2026-4242', severity: 'high' }] });
      publish('thermostat', '1.2.0');
    }],
    // Wednesday noon: the person reads the dashboard and skips the lamp's failed update.
    [at(2, 12), async () => {
      homeAfterFailure = await store.getHome(home.id);
      await service.skip(home.id, 'person:owner');
    }],
  ];
  const end = at(7, 11);
  while (clock.now() < end) {
    const due = script.filter(([t]) => t <= clock.now());
    for (const entry of due) {
      await entry[1]();
      script.splice(script.indexOf(entry), 1);
    }
    await clock.advance(MINUTE);
  }
  summaries = new Map((await service.listDevices({})).map((d) => [d.id, d.update.summary]));
  await engine.stop();
  for (const d of devices) await d.stop();
  events = [];
  let beforeId: number | undefined;
  for (;;) {
    const page = await store.listEvents({ homeId: home.id, limit: 1000, ...(beforeId !== undefined && { beforeId }) });
    if (page.length === 0) break;
    events.push(...page);
    beforeId = page[page.length - 1]!.id;
  }
  events.reverse();
  finalVersions = new Map((await store.listDevices({ homeId: home.id })).map((d) => [d.id, d.firmwareVersion]));
  await store.close();
});

after(() => rmSync(dir, { recursive: true, force: true }));

if (process.env.WEEK_DEBUG) {
  after(() => {
    for (const e of events) if (!e.deviceId || ['lamp', 'sensor', process.env.WEEK_DEBUG].includes(e.deviceId)) console.log(local(e.at).toFormat('ccc HH:mm:ss'), e.deviceId, e.kind, e.from, '->', e.to, e.code, e.message);
  });
}

const transitions = (deviceId: string, to: string) => events.filter((e) => e.kind === 'transition' && e.deviceId === deviceId && e.to === to);
const holds = (deviceId: string, code: string) => events.filter((e) => e.deviceId === deviceId && (e.code === code || e.message.includes(code)));

test('never two devices updating at once in the home (invariant 1)', () => {
  const activeStates: readonly string[] = ACTIVE_STATES;
  const active = new Set<string>();
  for (const e of events) {
    if (e.kind !== 'transition' || !e.jobId) continue;
    if (activeStates.includes(e.to ?? '')) active.add(e.jobId);
    else active.delete(e.jobId);
    assert.ok(active.size <= 1, `two active jobs at ${local(e.at).toISO()}`);
  }
});

test('every update started inside the quiet hours, 01:00–05:00 Berlin time', () => {
  const offers = events.filter((e) => e.kind === 'transition' && e.to === 'offered');
  assert.ok(offers.length >= 6, `only ${offers.length} offers`);
  for (const o of offers) {
    const t = local(o.at);
    assert.ok(t.hour >= 1 && t.hour < 5, `${o.deviceId} offered at ${t.toFormat('ccc HH:mm')}`);
  }
});

test('the plug is updated in the first night, confirmed after its soak', () => {
  const done = transitions('plug', 'succeeded');
  assert.equal(done.length, 1);
  assert.equal(local(done[0]!.at).toFormat('ccc'), 'Tue');
  assert.equal(finalVersions.get('plug'), '1.1.0');
  const confirming = transitions('plug', 'confirming')[0]!;
  assert.ok(done[0]!.at - confirming.at >= 300_000, 'confirmed before its soak time');
});

test('the battery sensor waits for its charger and is updated the night after (Thursday)', () => {
  assert.ok(holds('sensor', 'battery_low').length >= 1, 'no battery hold recorded');
  const offered = transitions('sensor', 'offered');
  assert.equal(offered.length, 1);
  assert.equal(local(offered[0]!.at).toFormat('ccc'), 'Thu');
  assert.equal(finalVersions.get('sensor'), '1.1.0');
});

test('the TV is never updated while it is on; it goes after 02:00', () => {
  const offered = transitions('tv', 'offered');
  assert.equal(offered.length, 1);
  const t = local(offered[0]!.at);
  assert.ok(t.hour >= 2, `offered at ${t.toFormat('HH:mm')} while in use`);
  assert.ok(holds('tv', 'device_busy').length >= 1);
  assert.equal(finalVersions.get('tv'), '1.1.0');
});

test('the speaker waits for the end of its schedule (explicit schedules win)', () => {
  const offered = transitions('speaker', 'offered');
  assert.equal(offered.length, 1);
  assert.ok(local(offered[0]!.at).hour >= 3);
  assert.ok(holds('speaker', 'scheduled_use').length >= 1);
});

test('the lamp fails, rolls back, halts the queue by name; the thermostat waits until the person skips', () => {
  const failed = transitions('lamp', 'failed');
  assert.equal(failed.length, 1, 'the lamp should fail exactly once (skipped afterwards)');
  assert.equal(local(failed[0]!.at).toFormat('ccc'), 'Wed');
  assert.equal(finalVersions.get('lamp'), '1.0.0', 'the lamp must run its old version after the rollback');
  assert.equal(homeAfterFailure?.halt?.deviceId, 'lamp');
  // Security fix first: the lamp went before the thermostat that same night.
  const thermostat = transitions('thermostat', 'offered');
  assert.equal(thermostat.length, 1);
  assert.equal(local(thermostat[0]!.at).toFormat('ccc'), 'Thu', 'the thermostat must wait through the halted night');
  assert.ok(events.some((e) => e.kind === 'person' && e.code === 'skipped'));
  assert.equal(finalVersions.get('thermostat'), '1.2.0');
});

test('the camera with weak WiFi is never updated, and says why', () => {
  assert.equal(transitions('camera', 'offered').length, 0);
  assert.equal(finalVersions.get('camera'), '1.0.0');
  assert.match(summaries.get('camera') ?? '', /WiFi signal/);
});

test('the blind (policy notify) is never updated on its own, and says it is available', () => {
  assert.equal(transitions('blind', 'offered').length, 0);
  assert.match(summaries.get('blind') ?? '', /available/i);
});
