/**
 * The demo home (`npm start`): eight simulated devices — the real agent on a simulated platform —
 * on a clock that runs a night in about a minute. Each device is there to show one rule:
 *
 *   kitchen plug     a security fix, so it goes first
 *   thermostat       an ordinary update, one after the other
 *   hall sensor      battery at 23 %: held back until it is put on its charger at 01:30
 *   porch camera     unsteady WiFi: held back until the extender comes back at 02:00
 *   living room TV   in use until 01:20: held back while it is watched
 *   kitchen speaker  its schedule says it plays 01:10–01:50: held back as "needed soon"
 *   desk lamp        its new image fails the health check: rolls back, halts the queue, shows recovery steps
 *   bedroom blind    already up to date
 *
 * Releases are signed and published with the real release tool under demo keys (demo-repository.ts);
 * the hub trusts that repository's root and every device ships it too. Images carry the version the
 * simulated bootloader starts.
 */
import { DateTime } from 'luxon';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import type { Device, EpochMs, Home, UsageSchedule } from '@firmward/core';
import { MqttAgentTransport } from '@firmward/agent';
import { generateDeviceSecret, hashDeviceSecret } from '@firmward/mqtt';
import type { Clock, Logger, Store } from '@firmward/ports';
import { buildReleaseImage, createSimulatedDevice, demoProfiles, SeededRandom } from '@firmward/simulator';
import type { DeviceProfile, SimulatedDevice } from '@firmward/simulator';
import { DeviceTrust } from '@firmward/tuf';
import type { ReleaseCustomInput } from '@firmward/tuf';
import type { ReleaseToPublish } from './demo-repository.ts';

export const DEMO_HOME_ID = 'demo-home';
export const DEMO_TIME_ZONE = 'Europe/Berlin';

interface DemoDevice {
  profile: DeviceProfile;
  /** The release the maker publishes for it (null: none newer). */
  release: Omit<ReleaseCustomInput, 'vendor' | 'model' | 'hardwareRevisions'> | null;
  schedules: UsageSchedule[];
}

const RECOVERY = (what: string) => ({
  steps: [
    `Leave the ${what} powered; it has already gone back to its previous version by itself.`,
    `If it does not respond, switch it off at the wall for ten seconds and on again.`,
    `If it still does not respond, hold its button for 15 seconds to start it from its factory image.`,
  ],
  supportUrl: 'https://support.acme.example/recovery',
  supportContact: 'Acme support, +49 30 0000000 (demo)',
});

/** The demo fleet: profiles tuned so every rule shows within the first simulated night. */
export function demoFleet(timeZone = DEMO_TIME_ZONE): DemoDevice[] {
  const p = demoProfiles(timeZone);
  const named = (profile: DeviceProfile, id: string, name: string, model: string, patch: Partial<DeviceProfile> = {}): DeviceProfile =>
    ({ ...profile, name, identity: { ...profile.identity, deviceId: id, model }, timeZone, ...patch });
  const release = (version: string, extra: Partial<DemoDevice['release']> = {}, what = 'device'): DemoDevice['release'] => ({
    version, expectedInstallSeconds: 240, recovery: RECOVERY(what), ...extra,
  });
  return [
    {
      profile: named(p.kitchenPlug, 'kitchen-plug', 'Kitchen plug', 'SmartPlug'),
      release: release('1.1.0', { severity: 'high', vulnerabilitiesFixed: [{ id: 'CVE-2026-11873', severity: 'high' }], notes: 'Fixes a remote-control weakness.' }, 'plug'),
      schedules: [],
    },
    { profile: named(p.thermostat, 'thermostat', 'Thermostat', 'Thermo3'), release: release('1.2.0', {}, 'thermostat'), schedules: [] },
    {
      profile: named(p.hallSensor, 'hall-sensor', 'Hall motion sensor', 'MotionSensor', {
        battery: { startPercent: 23, drainPercentPerHour: 0.2, chargePercentPerHour: 40, chargingWindows: [{ start: '01:30', end: '04:00' }] },
      }),
      release: release('1.1.0', { severity: 'medium', vulnerabilitiesFixed: [{ id: 'CVE-2026-20417', severity: 'medium' }] }, 'sensor'),
      schedules: [],
    },
    {
      // Weak (about −80 dBm, pinned by the demo script) until 02:00, when the WiFi extender comes back.
      profile: named(p.porchCamera, 'porch-camera', 'Porch camera', 'Cam2', {
        signal: { baseDbm: -58, driftDb: 2, dropoutChancePerHour: 0, dropoutSeconds: 60, dropoutWindows: [] },
      }),
      release: release('2.0.0', { expectedInstallSeconds: 300 }, 'camera'),
      schedules: [],
    },
    {
      profile: named(p.livingRoomTv, 'living-tv', 'Living room TV', 'TV55', { busy: [{ start: '00:00', end: '01:20' }, { start: '18:00', end: '23:59' }], installSeconds: 120, bootSeconds: 30 }),
      release: release('1.1.0', { expectedInstallSeconds: 300 }, 'TV'),
      schedules: [],
    },
    {
      profile: named(p.kitchenPlug, 'kitchen-speaker', 'Kitchen speaker', 'Speaker1', { installSeconds: 60 }),
      release: release('1.1.0', {}, 'speaker'),
      schedules: [{ weekdays: [], start: '01:10', end: '01:50' }],
    },
    {
      // In use until 02:15 so that its failure comes last and the halt is easy to see.
      profile: named(p.deskLamp, 'desk-lamp', 'Desk lamp', 'Bulb', { busy: [{ start: '00:00', end: '02:15' }] }),
      release: release('1.1.0', {}, 'lamp'),
      schedules: [],
    },
    { profile: named(p.kitchenPlug, 'bedroom-blind', 'Bedroom blind', 'Blind', { firmwareVersion: '1.1.0' }), release: release('1.1.0', {}, 'blind'), schedules: [] },
  ];
}

/** 00:40 tonight in the demo home: twenty quiet minutes before the window opens at 01:00. */
export function demoStartTime(realNow: EpochMs, timeZone = DEMO_TIME_ZONE): EpochMs {
  return DateTime.fromMillis(realNow, { zone: timeZone }).startOf('day').plus({ minutes: 40 }).toMillis();
}

export function demoHome(timeZone = DEMO_TIME_ZONE): Home {
  return {
    id: DEMO_HOME_ID, name: 'Demo home', halt: null,
    settings: {
      timeZone, window: { start: '01:00', end: '05:00' }, learnQuietHours: false, policy: 'automatic',
      thresholds: DEFAULT_THRESHOLDS, soakSeconds: 120, silenceTimeoutSeconds: 900,
    },
  };
}

/** The repository name the demo's hub and devices trust. */
export const DEMO_REPOSITORY = 'acme-demo';

/** Writes the demo home and its devices with their MQTT secrets. */
export async function seedDemo(store: Store, secrets: Map<string, string>, fleet = demoFleet()): Promise<void> {
  await store.putHome(demoHome());
  for (const { profile, schedules } of fleet) {
    const id = profile.identity;
    const device: Device = {
      id: id.deviceId, homeId: DEMO_HOME_ID, name: profile.name, vendor: id.vendor, model: id.model, hardwareRevision: id.hardwareRevision,
      firmwareVersion: profile.firmwareVersion, policy: null, thresholds: {}, schedules,
    };
    await store.putDevice(device);
    const secret = generateDeviceSecret();
    await store.setDeviceSecret(device.id, await hashDeviceSecret(secret));
    secrets.set(device.id, secret);
  }
}

/** What the demo's maker publishes: one release per model that has a newer version. */
export function demoReleases(fleet = demoFleet()): ReleaseToPublish[] {
  const releases = new Map<string, ReleaseToPublish>();
  for (const { profile, release } of fleet) {
    const id = profile.identity;
    const key = `${id.vendor}/${id.model}`;
    if (!release || releases.has(key)) continue;
    releases.set(key, {
      custom: { vendor: id.vendor, model: id.model, hardwareRevisions: [id.hardwareRevision], ...release },
      image: buildReleaseImage(profile, release.version),
    });
  }
  return [...releases.values()];
}

export interface DemoDevices {
  devices: SimulatedDevice[];
  stop(): Promise<void>;
}

/** Starts the simulated devices, each with its own MQTT login, plus the demo's script of events. */
export async function startDemoDevices(o: {
  mqttUrl: string; secrets: Map<string, string>; clock: Clock; log: Logger; fleet?: DemoDevice[];
  /** The maker's root every device ships with, and where each keeps its trusted metadata. */
  trust?: { root: Uint8Array; dir: string };
}): Promise<DemoDevices> {
  const fleet = o.fleet ?? demoFleet();
  const trust = o.trust;
  const devices = fleet.map(({ profile }, i) => createSimulatedDevice(profile, {
    clock: o.clock,
    random: new SeededRandom(i + 1),
    log: o.log.child(profile.identity.deviceId),
    // Generous stall and retry times in device time: the demo clock runs 240× faster than the network.
    agentConfig: { stateReportIntervalMs: 30_000, downloadStallTimeoutMs: 1_800_000, downloadRetryDelayMs: 5_000 },
    ...(trust && { verifier: new DeviceTrust({ dir: `${trust.dir}/${profile.identity.deviceId}`, roots: { [DEMO_REPOSITORY]: trust.root } }) }),
    connect: (identity) => new MqttAgentTransport({
      url: o.mqttUrl, deviceId: identity.deviceId, password: o.secrets.get(identity.deviceId) ?? '', clock: o.clock, logger: o.log.child(identity.deviceId),
    }),
  }));
  const camera = devices.find((d) => d.profile.identity.deviceId === 'porch-camera');
  camera?.environment.setSignal(-80);
  for (const d of devices) await d.start();

  const script = new AbortController();
  const extenderBack = DateTime.fromMillis(o.clock.now(), { zone: DEMO_TIME_ZONE }).startOf('day').plus({ hours: 2 }).toMillis();
  const scriptDone = (async () => {
    try {
      await o.clock.sleep(extenderBack - o.clock.now(), script.signal);
      camera?.environment.setSignal(null);
      o.log.info('02:00: the WiFi extender is back; the porch camera has a steady signal');
    } catch {
      // stopped before 02:00
    }
  })();

  return {
    devices,
    async stop() {
      script.abort();
      await scriptDone;
      for (const d of devices) await d.stop();
    },
  };
}
