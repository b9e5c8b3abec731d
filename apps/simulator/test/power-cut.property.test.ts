/**
 * Invariant 7 on whole simulated devices: power cuts at random moments of an update, on profiles
 * that succeed, fail their health check, never start, or hang. The device must always come back
 * on a good image and every state it reports must name what really runs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { InProcessTransport } from '@firmward/agent';
import { ManualClock } from '@firmward/ports';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { OfferCommand, ResultEvent } from '@firmward/protocol';
import { buildReleaseImage, createSimulatedDevice, demoProfiles, SeededRandom } from '../src/index.ts';
import type { DeviceProfile } from '../src/index.ts';
import { startImageServer } from '../../agent/test/helpers.ts';
import type { ImageServer } from '../../agent/test/helpers.ts';

const NIGHT = Date.UTC(2026, 2, 2, 1, 0);
const demos = demoProfiles();
const PROFILES: Record<string, DeviceProfile> = Object.fromEntries(
  (['kitchenPlug', 'deskLamp', 'garageDoor', 'frontLock'] as const).map((k) => [k, { ...demos[k], imageBytes: 64 * 1024, slotCapacityBytes: 128 * 1024 }]),
);
const GOOD = new Set(['kitchenPlug', 'frontLock']);

let server: ImageServer;
before(async () => {
  const images: Record<string, Uint8Array> = {};
  for (const p of Object.values(PROFILES)) images[`/${p.identity.deviceId}.bin`] = buildReleaseImage(p, '1.1.0');
  server = await startImageServer(images);
});
after(async () => {
  await server.close();
});

async function run(name: string, cutAtSteps: number[], seed: number) {
  const profile = PROFILES[name]!;
  const clock = new ManualClock(NIGHT);
  const results: ResultEvent[] = [];
  const lies: string[] = [];
  let downloaded = false;
  // The connection of the current boot (the device opens a new one after every boot).
  const link: { current: InProcessTransport | null } = { current: null };
  const device = createSimulatedDevice(profile, {
    clock, random: new SeededRandom(seed),
    agentConfig: { downloadChunkBytes: 8 * 1024, stateReportIntervalMs: 30_000, downloadRetryDelayMs: 1_000 },
    connect: () => {
      const transport = new InProcessTransport();
      transport.observe((m) => {
        if (m.kind === 'event') {
          if (m.event.type === 'result') results.push(m.event);
          if (m.event.type === 'progress' && m.event.phase === 'downloaded') downloaded = true;
        } else if (m.state.firmwareVersion !== device.runningVersion) {
          lies.push(`reported ${m.state.firmwareVersion} while running ${device.runningVersion}`);
        }
      });
      link.current = transport;
      return transport;
    },
  });
  const image = buildReleaseImage(profile, '1.1.0');
  const offer: OfferCommand = {
    v: PROTOCOL_VERSION, type: 'offer', jobId: 'job-1', releaseId: 'r', vendor: profile.identity.vendor, model: profile.identity.model,
    hardwareRevisions: [profile.identity.hardwareRevision], version: '1.1.0', applicableFrom: null, applicableTo: null,
    image: { url: server.url(`/${profile.identity.deviceId}.bin`), lengthBytes: image.byteLength, sha256: createHash('sha256').update(image).digest('hex') },
    expectedInstallSeconds: profile.installSeconds,
  };
  await device.start();
  const cuts = new Set(cutAtSteps);
  let silentSteps = 0;
  for (let step = 0; step < 1_500; step++) {
    if (results.length > 0 && device.agent?.phase === 'idle') break;
    // A person power-cycles a device that stays silent (the hub has failed its job by then).
    silentSteps = device.silent ? silentSteps + 1 : 0;
    if (cuts.has(step) || silentSteps > 20) {
      await device.powerCut();
      device.powerOn();
    }
    if (results.length === 0) {
      link.current?.send(offer);
      if (downloaded) link.current?.send({ v: 1, type: 'install', jobId: 'job-1' });
    }
    await clock.advance(5_000);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const running = device.runningVersion;
  await device.powerCut();
  let booted = false;
  const started = device.whenAgentStarted().then(() => { booted = true; });
  device.powerOn();
  while (!booted) {
    await clock.advance(1_000);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await started;
  const again = device.runningVersion;
  await device.stop();
  return { results, lies, running, again };
}

test('simulated devices: power cuts at random moments never leave a bad image running or a false report', { timeout: 240_000 }, async () => {
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...Object.keys(PROFILES)),
    fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 3 }),
    fc.integer({ min: 1, max: 1_000 }),
    async (name, cutAtSteps, seed) => {
      const out = await run(name, cutAtSteps, seed);
      assert.ok(out.results.length > 0, 'the update ended with a result');
      assert.deepEqual(out.lies, []);
      assert.ok(out.running === '1.0.0' || out.running === '1.1.0');
      const result = out.results[0]!;
      assert.equal(result.firmwareVersion, out.running);
      if (!GOOD.has(name)) assert.equal(out.running, '1.0.0', 'a bad image never stays');
      if (result.outcome === 'installed') assert.equal(out.running, '1.1.0');
      assert.equal(out.again, out.running, 'another power cycle boots the same good image');
    },
  ), { numRuns: 30 });
});
