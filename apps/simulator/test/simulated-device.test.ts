import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { InProcessTransport } from '@firmward/agent';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '@firmward/core';
import { ManualClock } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { Command, DeviceEvent, DeviceState, OfferCommand, ResultEvent } from '@firmward/protocol';
import { buildReleaseImage, createSimulatedDevice, demoProfiles, SeededRandom } from '../src/index.ts';
import type { DeviceProfile, SimulatedDevice } from '../src/index.ts';
import { startImageServer } from '../../agent/test/helpers.ts';
import type { ImageServer } from '../../agent/test/helpers.ts';

// Monday 2 March 2026, 02:00 in Berlin: a quiet night.
const NIGHT = Date.UTC(2026, 2, 2, 1, 0);
const IMAGE_BYTES = 96 * 1024;
const AGENT = { downloadChunkBytes: 16 * 1024, stateReportIntervalMs: 60_000, healthCheckTimeoutMs: 10_000 };

/** Small images so a test downloads in moments; otherwise the demo profiles unchanged. */
function small(profile: DeviceProfile): DeviceProfile {
  return { ...profile, imageBytes: IMAGE_BYTES, slotCapacityBytes: 256 * 1024 };
}

const profiles = Object.values(demoProfiles()).map(small);
let server: ImageServer;
before(async () => {
  const images: Record<string, Uint8Array> = {};
  for (const p of profiles) images[`/${p.identity.deviceId}-1.1.0.bin`] = buildReleaseImage(p, '1.1.0');
  server = await startImageServer(images);
});
after(async () => {
  await server.close();
});

/** Plays the hub's side over every connection the device opens (one per boot). */
class Hub {
  readonly events: DeviceEvent[] = [];
  readonly states: DeviceState[] = [];
  readonly lies: string[] = [];
  #current: InProcessTransport | null = null;
  #device: SimulatedDevice | null = null;

  connect = (): InProcessTransport => {
    const transport = new InProcessTransport();
    transport.observe((m) => {
      if (m.kind === 'event') this.events.push(m.event);
      else {
        this.states.push(m.state);
        const running = this.#device?.runningVersion;
        if (m.state.firmwareVersion !== running) this.lies.push(`reported ${m.state.firmwareVersion} while running ${running}`);
      }
    });
    this.#current = transport;
    return transport;
  };

  watch(device: SimulatedDevice): void {
    this.#device = device;
  }

  send(command: Command): boolean {
    return this.#current?.send(command) ?? false;
  }

  results(): ResultEvent[] {
    return this.events.filter((e): e is ResultEvent => e.type === 'result');
  }
}

interface Sim {
  clock: ManualClock;
  hub: Hub;
  device: SimulatedDevice;
  offer: OfferCommand;
  /** Moves simulated time in steps (letting real I/O happen in between) until `done` or `maxMs`. */
  runUntil(done: () => boolean, options?: { stepMs?: number; maxMs?: number }): Promise<boolean>;
}

async function simulate(profile: DeviceProfile, start = NIGHT, seed = 1): Promise<Sim> {
  const clock = new ManualClock(start);
  const hub = new Hub();
  const device = createSimulatedDevice(profile, { clock, connect: hub.connect, random: new SeededRandom(seed), agentConfig: AGENT });
  hub.watch(device);
  await device.start();
  const image = buildReleaseImage(profile, '1.1.0');
  const offer: OfferCommand = {
    v: PROTOCOL_VERSION, type: 'offer', jobId: `job-${profile.identity.deviceId}`, releaseId: `Acme/${profile.identity.model}/1.1.0`,
    vendor: profile.identity.vendor, model: profile.identity.model, hardwareRevisions: [profile.identity.hardwareRevision],
    version: '1.1.0', applicableFrom: null, applicableTo: null,
    image: { url: server.url(`/${profile.identity.deviceId}-1.1.0.bin`), lengthBytes: image.byteLength, sha256: createHash('sha256').update(image).digest('hex') },
    expectedInstallSeconds: profile.installSeconds,
  };
  return {
    clock, hub, device, offer,
    async runUntil(done, options = {}) {
      const stepMs = options.stepMs ?? 1_000;
      const endAt = clock.now() + (options.maxMs ?? HOUR_MS);
      while (!done()) {
        if (clock.now() >= endAt) return false;
        await clock.advance(stepMs);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      return true;
    },
  };
}

const progressed = (sim: Sim, phase: string) => () => sim.hub.events.some((e) => e.type === 'progress' && e.phase === phase);
const acked = (sim: Sim) => () => sim.hub.events.some((e) => e.type === 'ack' && e.jobId === sim.offer.jobId);

async function updateThroughHub(sim: Sim): Promise<ResultEvent> {
  sim.hub.send(sim.offer);
  assert.ok(await sim.runUntil(progressed(sim, 'downloaded')), 'downloaded');
  sim.hub.send({ v: 1, type: 'install', jobId: sim.offer.jobId });
  assert.ok(await sim.runUntil(() => sim.hub.results().length > 0, { maxMs: 2 * HOUR_MS }), 'a result came');
  return sim.hub.results()[0]!;
}

const byName = (name: keyof ReturnType<typeof demoProfiles>) => small(demoProfiles()[name]);

describe('simulated devices on the real agent', () => {
  test('plug on mains: updates, and installing takes its installSeconds of simulated time', { timeout: 20_000 }, async () => {
    const profile = byName('kitchenPlug');
    const sim = await simulate(profile);
    sim.hub.send(sim.offer);
    assert.ok(await sim.runUntil(progressed(sim, 'downloaded')));
    sim.hub.send({ v: 1, type: 'install', jobId: sim.offer.jobId });
    await sim.runUntil(progressed(sim, 'installing'));
    const installStarted = sim.clock.now();
    assert.ok(await sim.runUntil(progressed(sim, 'rebooting')));
    const took = sim.clock.now() - installStarted;
    assert.ok(took >= profile.installSeconds * 1000, `the install step took ${took} ms of simulated time`);
    assert.ok(await sim.runUntil(() => sim.hub.results().length > 0));
    const result = sim.hub.results()[0]!;
    assert.equal(result.outcome, 'installed');
    assert.equal(sim.device.runningVersion, '1.1.0');
    assert.equal(sim.hub.states.at(-1)?.firmwareVersion, '1.1.0');
    assert.deepEqual(sim.hub.lies, []);
    await sim.device.stop();
  });

  test('battery sensor at 23 %: reports it truthfully; its own 20 % floor lets it take the offer', { timeout: 20_000 }, async () => {
    const sim = await simulate(byName('hallSensor'));
    sim.hub.send(sim.offer);
    await sim.runUntil(acked(sim));
    const state = sim.hub.states.at(-1)!;
    assert.equal(state.batteryPercent, 23);
    assert.equal(state.charging, false);
    assert.equal(state.powerSource, 'battery');
    const ack = sim.hub.events.find((e) => e.type === 'ack');
    assert.equal(ack?.type === 'ack' && ack.accepted, true, 'the hub\'s stricter 50 % rule is what holds it back, not the device');
    await sim.device.stop();
  });

  test('drained battery sensor at 15 %: refuses on battery, accepts once on its charger', { timeout: 20_000 }, async () => {
    const profile = byName('hallSensor');
    const sim = await simulate({ ...profile, battery: { ...profile.battery!, startPercent: 15 } });
    sim.hub.send(sim.offer);
    await sim.runUntil(acked(sim));
    const first = sim.hub.events.find((e) => e.type === 'ack');
    assert.equal(first?.type === 'ack' && first.accepted, false);
    assert.equal(first?.type === 'ack' ? first.code : null, 'battery_low');

    // Its charger schedule is 14:00–16:00 local: run the clock there, then offer again.
    assert.ok(await sim.runUntil(() => sim.hub.states.at(-1)?.charging === true, { stepMs: 10 * MINUTE_MS, maxMs: DAY_MS }));
    sim.hub.send({ ...sim.offer, jobId: 'job-2' });
    await sim.runUntil(() => sim.hub.events.some((e) => e.type === 'ack' && e.jobId === 'job-2'));
    const second = sim.hub.events.find((e) => e.type === 'ack' && e.jobId === 'job-2');
    assert.equal(second?.type === 'ack' && second.accepted, true);
    await sim.device.stop();
  });

  test('the same toggle works by hand: setCharging(true)', { timeout: 20_000 }, async () => {
    const profile = byName('hallSensor');
    const sim = await simulate({ ...profile, battery: { ...profile.battery!, startPercent: 15 } });
    sim.device.setCharging(true);
    sim.hub.send(sim.offer);
    await sim.runUntil(acked(sim));
    const ack = sim.hub.events.find((e) => e.type === 'ack');
    assert.equal(ack?.type === 'ack' && ack.accepted, true);
    await sim.device.stop();
  });

  test('TV busy in the evening refuses then; at night it accepts', { timeout: 20_000 }, async () => {
    const evening = Date.UTC(2026, 2, 2, 19, 0); // 20:00 in Berlin
    const sim = await simulate(byName('livingRoomTv'), evening);
    sim.hub.send(sim.offer);
    await sim.runUntil(acked(sim));
    const ack = sim.hub.events.find((e) => e.type === 'ack');
    assert.equal(ack?.type === 'ack' ? ack.code : null, 'device_busy');
    assert.equal(sim.hub.states.at(-1)?.busy, true);
    assert.ok(await sim.runUntil(() => sim.hub.states.at(-1)?.busy === false, { stepMs: 5 * MINUTE_MS, maxMs: 6 * HOUR_MS }));
    const result = await updateThroughHub({ ...sim, offer: { ...sim.offer, jobId: 'job-night' } });
    assert.equal(result.outcome, 'installed');
    await sim.device.stop();
  });

  test('lamp whose new image fails its health check: rolls back and reports the old version', { timeout: 20_000 }, async () => {
    const sim = await simulate(byName('deskLamp'));
    const result = await updateThroughHub(sim);
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.code, 'unhealthy');
    assert.equal(result.firmwareVersion, '1.0.0');
    assert.equal(sim.device.runningVersion, '1.0.0');
    assert.equal(sim.hub.states.some((s) => s.firmwareVersion === '1.1.0' && s.healthy), false);
    assert.deepEqual(sim.hub.lies, []);
    await sim.device.stop();
  });

  test('garage door whose new image never starts: the bootloader falls back, result boot_failed', { timeout: 20_000 }, async () => {
    const sim = await simulate(byName('garageDoor'));
    const result = await updateThroughHub(sim);
    assert.equal(result.outcome, 'rolled-back');
    assert.equal(result.code, 'boot_failed');
    assert.equal(sim.device.runningVersion, '1.0.0');
    assert.equal(sim.device.hardware.boots.at(-1)?.fellBack, true);
    assert.deepEqual(sim.hub.lies, []);
    await sim.device.stop();
  });

  test('lock that goes silent mid-install: nothing more is heard; after a power cycle it reports the truth', { timeout: 20_000 }, async () => {
    const sim = await simulate(byName('frontLock'));
    sim.hub.send(sim.offer);
    assert.ok(await sim.runUntil(progressed(sim, 'downloaded')));
    sim.hub.send({ v: 1, type: 'install', jobId: sim.offer.jobId });
    await sim.runUntil(() => sim.device.silent);
    const heard = sim.hub.events.length + sim.hub.states.length;
    await sim.runUntil(() => false, { stepMs: MINUTE_MS, maxMs: HOUR_MS });
    assert.equal(sim.hub.events.length + sim.hub.states.length, heard, 'an hour of silence');
    assert.equal(sim.hub.results().length, 0, 'never a success while silent');

    await sim.device.powerCut();
    sim.device.powerOn();
    assert.ok(await sim.runUntil(() => sim.hub.results().length > 0, { maxMs: HOUR_MS }));
    const result = sim.hub.results()[0]!;
    assert.equal(result.firmwareVersion, sim.device.runningVersion);
    assert.deepEqual(sim.hub.lies, []);
    await sim.device.stop();
  });

  test('camera with drop-outs: the link goes down during one and comes back', { timeout: 20_000 }, async () => {
    const noon = Date.UTC(2026, 2, 2, 10, 58); // 11:58 in Berlin, two minutes before its daily drop-out
    const sim = await simulate(byName('porchCamera'), noon, 5);
    assert.equal(sim.device.online, true);
    assert.ok(await sim.runUntil(() => !sim.device.online, { stepMs: 10_000, maxMs: 10 * MINUTE_MS }));
    const reports = sim.hub.states.length;
    await sim.runUntil(() => false, { stepMs: 30_000, maxMs: 2 * MINUTE_MS });
    assert.equal(sim.device.online, false, 'still inside the 12:00–12:05 drop-out');
    assert.equal(sim.hub.states.length, reports, 'nothing reaches the hub while the link is down');
    assert.ok(await sim.runUntil(() => sim.device.online, { stepMs: 10_000, maxMs: HOUR_MS }));
    assert.ok(sim.device.dropouts.length >= 1);
    await sim.device.stop();
  });

  test('a week of battery drain and state reports passes in moments', { timeout: 30_000 }, async () => {
    const profile: DeviceProfile = {
      ...byName('frontLock'),
      failure: 'none',
      battery: { startPercent: 80, drainPercentPerHour: 0.25, chargePercentPerHour: 0, chargingWindows: [] },
    };
    const clock = new ManualClock(NIGHT);
    const hub = new Hub();
    const device = createSimulatedDevice(profile, {
      clock, connect: hub.connect, agentConfig: { ...AGENT, stateReportIntervalMs: HOUR_MS }, linkCheckIntervalMs: 5 * MINUTE_MS,
    });
    hub.watch(device);
    await device.start();
    for (let day = 0; day < 7; day++) {
      await clock.advance(DAY_MS);
    }
    const last = hub.states.at(-1)!;
    assert.ok(hub.states.length >= 7 * 24, `${hub.states.length} hourly reports`);
    assert.ok(Math.abs(last.batteryPercent! - (80 - 7 * 24 * 0.25)) <= 0.5, `battery ${last.batteryPercent}`);
    await device.stop();
  });
});
