/**
 * The power-cut harness on the file-slot platform (issue 4): an update runs on a `FileDevice`
 * against a local HTTP image server; the power is cut right before a chosen operation — a slot
 * write (so at a random byte offset of the download), an fsync, a read-back, the switch, the
 * first boot's checks, the health check, the commit, a journal write, a report — the agent is
 * abandoned mid-await, unsynced bytes turn to junk, the bootloader applies its trial/fallback
 * rules to its state file, and a new agent starts. After the trial the device must boot a good
 * image, have reported truthfully what it runs, and hold no unverified bytes in a bootable slot
 * (invariants 4 and 7).
 *
 * Trials run in-process (kill = abandoning the agent mid-await + junking unsynced bytes), so
 * 10,000 of them finish in minutes; `sigkill.ts` runs real processes killed with SIGKILL.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '@firmward/ports';
import type { DeviceEvent, DeviceState, ResultEvent } from '@firmward/protocol';
import { Agent } from '../../src/agent.ts';
import { buildFirmwareImage } from '../../src/firmware-image.ts';
import type { DeviceIdentity } from '../../src/platform.ts';
import { InProcessTransport } from '../../src/transport.ts';
import { FaultyPlatform, FileDevice } from './file-device.ts';
import type { BackendKind } from './file-device.ts';

export const FAULT_IDENTITY: DeviceIdentity = { deviceId: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' };
export const FAULT_IMAGE_BYTES = 48 * 1024;
export const OLD_VERSION = '1.0.0';
export const NEW_VERSION = '1.1.0';

export function faultImage(version: string): Uint8Array {
  return buildFirmwareImage({ vendor: FAULT_IDENTITY.vendor, model: FAULT_IDENTITY.model, version }, FAULT_IMAGE_BYTES);
}

const IMAGES = { [OLD_VERSION]: faultImage(OLD_VERSION), [NEW_VERSION]: faultImage(NEW_VERSION) };
const HASHES: Record<string, string> = Object.fromEntries(Object.entries(IMAGES).map(([v, b]) => [v, createHash('sha256').update(b).digest('hex')]));

export interface TrialSpec {
  /** Power cuts, one per boot in order: right before that boot's n-th operation (platform call or report); 0 = none in that boot. */
  cutsAfterOps: number[];
  newStarts: boolean;
  newHealthy: boolean;
  backend: BackendKind;
}

export type Verdict = 'updated' | 'rolled-back';

export interface TrialOutcome {
  verdict: Verdict;
  unbootable: boolean;
  falseSuccess: string[];
  corrupted: string[];
  /** The step each cut landed on (write, fsync, read-back, switch, …). */
  cutSteps: string[];
}

const CONFIG = {
  downloadChunkBytes: 8 * 1024, stateReportIntervalMs: 60_000, healthCheckTimeoutMs: 5_000,
  downloadRetryDelayMs: 1_000, downloadStallTimeoutMs: 30_000,
};

/** A transport whose publishes count as operations of the boot's platform (a cut can land on a report). */
class CountedTransport extends InProcessTransport {
  readonly #before: (step: string) => Promise<void>;

  constructor(before: (step: string) => Promise<void>) {
    super();
    this.#before = before;
  }

  override async publishState(state: DeviceState): Promise<void> {
    await this.#before('report');
    return super.publishState(state);
  }

  override async publishEvent(event: DeviceEvent): Promise<void> {
    await this.#before('report');
    return super.publishEvent(event);
  }
}

export async function runTrial(spec: TrialSpec, imageUrl: string, baseDir: string): Promise<TrialOutcome> {
  const dir = await mkdtemp(join(baseDir, 'trial-'));
  try {
    return await trial(spec, imageUrl, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function trial(spec: TrialSpec, imageUrl: string, dir: string): Promise<TrialOutcome> {
  const device = new FileDevice({
    dir, identity: FAULT_IDENTITY, factoryImage: IMAGES[OLD_VERSION] ?? new Uint8Array(), slotSizeBytes: 2 * FAULT_IMAGE_BYTES, backend: spec.backend,
    starts: (version) => version === OLD_VERSION || (version === NEW_VERSION && spec.newStarts),
    // The new version fails its health check whenever it runs (it always goes into slot b).
    healthCheck: spec.newHealthy ? null : { command: ['sh', '-c', '! grep -q "^FW_CURRENT=b" "$0"', join(dir, 'bootloader.env')] },
  });
  await device.install();
  await device.boot();
  const clock = new ManualClock(Date.UTC(2026, 2, 1, 2, 0));
  const offer = {
    v: 1 as const, type: 'offer' as const, jobId: 'job-1', releaseId: 'Acme/Plug/1.1.0', vendor: 'Acme', model: 'Plug',
    hardwareRevisions: ['rev2'], version: NEW_VERSION, applicableFrom: OLD_VERSION, applicableTo: null,
    image: { url: imageUrl, lengthBytes: FAULT_IMAGE_BYTES, sha256: HASHES[NEW_VERSION] ?? '' }, expectedInstallSeconds: 60,
  };
  const pending = [...spec.cutsAfterOps];
  const results: ResultEvent[] = [];
  const falseSuccess: string[] = [];
  const cutSteps: string[] = [];
  let downloadedReported = false;
  let needsBoot = false;
  let wake: () => void = () => undefined;
  const live: { agent: Agent | null; platform: FaultyPlatform | null; transport: InProcessTransport | null } = { agent: null, platform: null, transport: null };

  const startAgent = async (arm: boolean) => {
    const previous = live.agent;
    let step = 'start';
    const armed = arm ? pending.shift() ?? 0 : 0;
    let countdown: number | null = armed > 0 ? armed : null;
    // One counter for platform calls and reports: the cut lands right before the n-th of either.
    const before = async (name: string) => {
      step = name;
      if (countdown !== null && --countdown <= 0) {
        countdown = null;
        await platform.cut();
        throw new Error('The device lost power.');
      }
    };
    const transport = new CountedTransport(async (name) => {
      if (platform.dead) throw new Error('The device lost power.');
      await before(name);
    });
    const inner = device.platform(() => {
      // A clean restart: caches are flushed (setTrialBoot synced the slot), the session ends.
      setImmediate(() => {
        platform.abandon();
        transport.cut();
        needsBoot = true;
        wake();
      });
      return Promise.resolve();
    });
    const platform: FaultyPlatform = new FaultyPlatform(inner, device.slots, () => {
      cutSteps.push(step);
      transport.cut();
      needsBoot = true;
      wake();
    }, before);
    transport.observe((m) => {
      if (m.kind === 'event') {
        if (m.event.type === 'result') results.push(m.event);
        if (m.event.type === 'progress' && m.event.phase === 'downloaded') downloadedReported = true;
      }
      wake();
    });
    transport.observe((m) => {
      if (m.kind !== 'state') return;
      const running = device.runningSync();
      if (m.state.firmwareVersion !== running.version || m.state.activeSlot !== running.slot) {
        falseSuccess.push(`reported ${m.state.firmwareVersion}@${m.state.activeSlot} while running ${running.version}@${running.slot}`);
      }
    });
    const agent = new Agent({ platform, transport, clock, config: CONFIG });
    live.agent = agent;
    live.platform = platform;
    live.transport = transport;
    await previous?.stop();
    await agent.start().catch(() => undefined);
  };

  await startAgent(true);
  for (let i = 0; i < 3_000; i++) {
    if (needsBoot) {
      needsBoot = false;
      await live.agent?.stop();
      await device.boot();
      await startAgent(true);
    }
    const current = live.agent;
    if (results.length > 0 && current?.running && current.phase === 'idle') {
      await current.settled();
      if (current.phase === 'idle' && !needsBoot) break;
    }
    if (results.length === 0 && live.transport && i % 8 === 0) {
      // The hub re-sends until it hears back; commands are idempotent by job id (invariant 8).
      live.transport.send(offer);
      if (downloadedReported) live.transport.send({ v: 1, type: 'install', jobId: offer.jobId });
    }
    const woken = new Promise<void>((resolve) => { wake = resolve; });
    await Promise.race([woken, new Promise((resolve) => setTimeout(resolve, 2))]);
    await clock.advance(1_000);
  }
  await live.agent?.settled();
  await live.agent?.stop();
  if (results.length === 0) falseSuccess.push('no result was reported');

  // One more power cycle with nobody installing: what boots must be a good, verified image.
  await device.boot();
  return judgeTrial(device, { imageBytes: FAULT_IMAGE_BYTES, hashes: HASHES, results, spec, falseSuccess, cutSteps, pendingTrialIsUnbootable: true });
}

/**
 * The verdict after a trial, once the device has booted again with nobody installing: every
 * bootable slot holds a verified image, the running one is good, and every result told the truth.
 */
export async function judgeTrial(device: FileDevice, t: {
  imageBytes: number;
  /** version → sha256 of the images the trial could have written. */
  hashes: Record<string, string>;
  results: { outcome: string; firmwareVersion: string }[];
  spec: { newStarts: boolean; newHealthy: boolean };
  falseSuccess: string[];
  cutSteps: string[];
  /** In-process trials end settled; a real process may leave a trial for the next agent start to settle. */
  pendingTrialIsUnbootable: boolean;
}): Promise<TrialOutcome> {
  const { hashes, results, spec, falseSuccess } = t;
  const hashOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  const running = await device.running();
  const state = await device.bootloaderState();
  const corrupted: string[] = [];
  for (const slot of ['a', 'b'] as const) {
    if (!state.good[slot]) continue;
    const hash = hashOf(await device.slotBytes(slot, t.imageBytes));
    if (hash !== hashes[OLD_VERSION] && hash !== hashes[NEW_VERSION]) corrupted.push(`slot ${slot} is bootable but holds unverified bytes`);
  }
  const runningHash = hashOf(await device.slotBytes(running.slot, t.imageBytes));
  const unbootable = !state.good[running.slot] || running.version === null || runningHash !== hashes[running.version]
    || (t.pendingTrialIsUnbootable && state.trial !== null);

  const outcomes = new Set(results.map((r) => `${r.outcome}:${r.firmwareVersion}`));
  if (t.pendingTrialIsUnbootable && outcomes.size > 1) falseSuccess.push(`results disagree: ${[...outcomes].join(', ')}`);
  for (const r of results) {
    if (r.firmwareVersion !== running.version) falseSuccess.push(`result names ${r.firmwareVersion} but ${running.version} runs`);
    if (r.outcome === 'installed' && (!spec.newStarts || !spec.newHealthy)) falseSuccess.push('a bad image was reported installed');
  }
  if (running.version === NEW_VERSION && (!spec.newStarts || !spec.newHealthy)) falseSuccess.push('a bad image stayed');
  return { verdict: running.version === NEW_VERSION ? 'updated' : 'rolled-back', unbootable, falseSuccess, corrupted, cutSteps: t.cutSteps };
}

export interface FaultTotals {
  trials: number;
  unbootable: number;
  falseSuccess: number;
  corrupted: number;
  updated: number;
  rolledBack: number;
  cutSteps: Record<string, number>;
  examples: string[];
}

export function emptyTotals(): FaultTotals {
  return { trials: 0, unbootable: 0, falseSuccess: 0, corrupted: 0, updated: 0, rolledBack: 0, cutSteps: {}, examples: [] };
}

export function addOutcome(totals: FaultTotals, outcome: TrialOutcome, spec: TrialSpec): void {
  totals.trials++;
  if (outcome.unbootable) totals.unbootable++;
  if (outcome.falseSuccess.length > 0) totals.falseSuccess++;
  if (outcome.corrupted.length > 0) totals.corrupted++;
  if (outcome.verdict === 'updated') totals.updated++;
  else totals.rolledBack++;
  for (const step of outcome.cutSteps) totals.cutSteps[step] = (totals.cutSteps[step] ?? 0) + 1;
  const problems = [...outcome.falseSuccess, ...outcome.corrupted, ...(outcome.unbootable ? ['unbootable'] : [])];
  if (problems.length > 0 && totals.examples.length < 5) totals.examples.push(`${JSON.stringify(spec)}: ${problems.join('; ')}`);
}

export function summaryLine(t: FaultTotals): string {
  return `trials ${t.trials} · unbootable ${t.unbootable} · false success ${t.falseSuccess} · corrupted ${t.corrupted} · updated ${t.updated} · rolled back ${t.rolledBack}`;
}

/** A small deterministic PRNG (mulberry32), so a failing trial can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Trial `i` of a run: 0–3 cuts at random operations (a boot of an update takes 20–70). */
export function trialSpec(random: () => number, backend: BackendKind): TrialSpec {
  const cuts = Math.floor(random() * 4);
  const cutsAfterOps = Array.from({ length: cuts }, () => 1 + Math.floor(random() * 70));
  return { cutsAfterOps, newStarts: random() < 0.8, newHealthy: random() < 0.8, backend };
}
