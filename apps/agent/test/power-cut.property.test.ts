/**
 * Invariant 7: after power cuts (or agent crashes) at any point of an update, the device boots a
 * good image and reports truthfully what it runs. The hardware cuts the power right before a
 * chosen platform operation; a new agent starts over the same hardware after the bootloader has
 * applied its trial/fallback rules, and a plain hub keeps re-sending its commands (they are
 * idempotent by job id).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '@firmward/ports';
import type { DeviceState, ResultEvent } from '@firmward/protocol';
import { Agent, InProcessTransport } from '../src/index.ts';
import type { InterruptKind, MemoryPlatformHooks } from '../src/index.ts';
import { image, newHardware, offerFor, startImageServer } from './helpers.ts';
import type { ImageServer } from './helpers.ts';

const NEW = image('1.1.0');
const CONFIG = {
  downloadChunkBytes: 8 * 1024, stateReportIntervalMs: 60_000, healthCheckTimeoutMs: 5_000,
  downloadRetryDelayMs: 1_000, downloadStallTimeoutMs: 30_000,
};

let server: ImageServer;
before(async () => {
  server = await startImageServer({ '/plug-1.1.0.bin': NEW });
});
after(async () => {
  await server.close();
});

interface Scenario {
  interruptions: { afterOps: number; kind: InterruptKind }[];
  newStarts: boolean;
  newHealthy: boolean;
}

interface Outcome {
  results: ResultEvent[];
  lies: string[];
  running: string | null;
  afterPowerCycle: { version: string | null; trial: unknown; reported: string };
}

async function run(scenario: Scenario): Promise<Outcome> {
  const hardware = newHardware({ imageStarts: (h) => scenario.newStarts || h.version !== '1.1.0' });
  const hooks: MemoryPlatformHooks = {
    healthCheck: (running) => scenario.newHealthy || running.version !== '1.1.0'
      ? { healthy: true, detail: 'All good.' }
      : { healthy: false, detail: 'The relay did not answer.' },
  };
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 2, 0));
  const offer = offerFor(NEW, server.url('/plug-1.1.0.bin'));
  const pending = [...scenario.interruptions];
  const results: ResultEvent[] = [];
  const lies: string[] = [];
  let downloadedReported = false;
  let needsStart = true;
  let wake: () => void = () => undefined;
  // The agent and connection of the current boot (replaced on every restart).
  const live: { agent: Agent | null; transport: InProcessTransport } = { agent: null, transport: new InProcessTransport() };

  hardware.onBoot(() => {
    needsStart = true;
    wake();
  });
  hardware.onInterrupt((kind) => {
    // A cut ends the session: nothing more reaches the hub from that boot.
    live.transport.cut();
    if (kind === 'crash') needsStart = true;
    wake();
  });

  const startAgent = async (armInterrupt: boolean) => {
    const previous = live.agent;
    const transport = new InProcessTransport();
    live.transport = transport;
    transport.observe((m) => {
      if (m.kind === 'event') {
        if (m.event.type === 'result') results.push(m.event);
        if (m.event.type === 'progress' && m.event.phase === 'downloaded') downloadedReported = true;
      } else {
        checkTruth(m.state);
      }
      wake();
    });
    const checkTruth = (state: DeviceState) => {
      const running = hardware.running;
      if (state.firmwareVersion !== running.version || state.activeSlot !== running.slot) {
        lies.push(`reported ${state.firmwareVersion}@${state.activeSlot} while running ${running.version}@${running.slot}`);
      }
    };
    const agent = new Agent({ platform: hardware.platform().setHooks(hooks), transport, clock, config: CONFIG });
    live.agent = agent;
    await previous?.stop();
    const next = armInterrupt ? pending.shift() : undefined;
    if (next) hardware.interruptAfter(next.afterOps, next.kind);
    await agent.start().catch(() => undefined);
  };

  for (let i = 0; i < 2_000; i++) {
    if (!hardware.poweredOn) hardware.powerOn();
    if (needsStart) {
      needsStart = false;
      await startAgent(true);
    }
    const current = live.agent;
    if (results.length > 0 && current?.running && current.phase === 'idle') {
      await current.settled();
      if (current.phase === 'idle' && !needsStart) break;
    }
    if (results.length === 0) {
      // The hub re-sends until it hears back; every command is idempotent by job id (invariant 8).
      live.transport.send(offer);
      if (downloadedReported) live.transport.send({ v: 1, type: 'install', jobId: offer.jobId });
    }
    const woken = new Promise<void>((resolve) => { wake = resolve; });
    await Promise.race([woken, new Promise((resolve) => setTimeout(resolve, 5))]);
    await clock.advance(1_000);
  }
  assert.ok(results.length > 0, 'the device reported a result');
  hardware.interruptAfter(null);
  await live.agent?.settled();
  const running = hardware.running.version;

  // One more power cycle with nobody installing: the same good image boots.
  hardware.powerCut();
  hardware.powerOn();
  needsStart = false;
  await startAgent(false);
  const reported = (await live.transport.waitForState(() => true)).firmwareVersion;
  await live.agent?.stop();
  return {
    results, lies, running,
    afterPowerCycle: { version: hardware.running.version, trial: hardware.bootState().trial, reported },
  };
}

const scenarios = fc.record({
  interruptions: fc.array(
    fc.record({ afterOps: fc.integer({ min: 1, max: 60 }), kind: fc.constantFrom<InterruptKind>('power-cut', 'power-cut', 'crash') }),
    { maxLength: 3 },
  ),
  newStarts: fc.boolean(),
  newHealthy: fc.boolean(),
});

test('power cuts at any point: a good image boots and the device reports what it runs (invariant 7)', { timeout: 240_000 }, async () => {
  await fc.assert(fc.asyncProperty(scenarios, async (scenario) => {
    const out = await run(scenario);
    assert.deepEqual(out.lies, [], 'every state report named the version really running');
    assert.ok(out.running === '1.0.0' || out.running === '1.1.0', `runs a good image (${out.running})`);
    const outcomes = new Set(out.results.map((r) => `${r.outcome}:${r.firmwareVersion}`));
    assert.equal(outcomes.size, 1, `repeated results agree: ${[...outcomes].join(', ')}`);
    const result = out.results[0]!;
    assert.equal(result.firmwareVersion, out.running, 'the result names the version that runs');
    if (result.outcome === 'installed') {
      assert.ok(scenario.newStarts && scenario.newHealthy, 'only a good new image is ever committed');
      assert.equal(out.running, '1.1.0');
    } else {
      assert.equal(out.running, '1.0.0');
    }
    if (!scenario.newStarts || !scenario.newHealthy) assert.equal(out.running, '1.0.0', 'a bad new image never stays');
    if (scenario.interruptions.length === 0 && scenario.newStarts && scenario.newHealthy) assert.equal(result.outcome, 'installed');
    assert.equal(out.afterPowerCycle.version, out.running, 'after another power cycle the same image boots');
    assert.equal(out.afterPowerCycle.trial, null, 'nothing is left on trial');
    assert.equal(out.afterPowerCycle.reported, out.running, 'and the device says so');
  }), { numRuns: 150 });
});
