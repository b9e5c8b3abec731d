/**
 * The gap between one device's confirmation and the next device's offer in the same home: from
 * the 'succeeded' history event of device k to the 'offered' event of device k+1, in real
 * wall-clock time, with the SystemClock and the engine's own loop (engine.start()), for a short
 * and a long tickMs. Devices answer at once (instant-gateway.ts) and the soak is 0 s, so what is
 * left is the engine's loop and its work.
 *
 * Baseline, same run: tickMs itself (what the gap was while the next offer waited for the loop's
 * next pass) and the raw duration of one engine.tick() on that home. Since the engine looks at a
 * home at once when one of its updates ends, the next offer is made outside the tick: the table
 * counts the offers made while a tick ran and those made outside one.
 *
 *   npm run bench:gap       # FIRMWARD_BENCH_GAP_TICKS=50,200,1000 FIRMWARD_BENCH_GAP_DEVICES=20 npm run bench:gap
 */
import { SystemClock, silentLogger } from '@firmward/ports';
import type { NewHistoryEvent } from '@firmward/ports';
import { SqliteStore } from '@firmward/store-sqlite';
import { RolloutEngine } from '../apps/hub/src/engine.ts';
import { InstantDeviceGateway } from '../packages/ports/testing/instant-gateway.ts';
import { FixedReleaseSource, benchDevice, benchHome, benchRelease, envInt, ms, printMachine, printTable, summary, tempDir } from './support.ts';

const TICKS = (process.env.FIRMWARD_BENCH_GAP_TICKS ?? '50,1000').split(',').map((s) => {
  const n = Number(s.trim());
  if (!Number.isInteger(n) || n < 1) throw new Error(`FIRMWARD_BENCH_GAP_TICKS must list whole milliseconds, got "${s}"`);
  return n;
});
const HOME = 'home-gap';
const MODEL = 'Model0';

/** Enough devices for a spread of gaps, in about 45 s of wall time per setting at most. */
function devicesFor(tickMs: number): number {
  return envInt('FIRMWARD_BENCH_GAP_DEVICES', tickMs <= 100 ? 40 : 16);
}

interface TickRecord { ms: number; offered: boolean }

class TimedEngine extends RolloutEngine {
  readonly ticks: TickRecord[] = [];
  current: TickRecord | null = null;
  override async tick(): Promise<void> {
    const record: TickRecord = { ms: 0, offered: false };
    this.current = record;
    const t = performance.now();
    try {
      await super.tick();
    } finally {
      record.ms = performance.now() - t;
      this.current = null;
      this.ticks.push(record);
    }
  }
}

async function run(tickMs: number) {
  const devices = devicesFor(tickMs);
  const dir = tempDir(`gap-${tickMs}`);
  try {
    const store = await SqliteStore.open(dir.file('hub.db'));
    await store.transaction(async (tx) => {
      await tx.putHome(benchHome(HOME, 0));
      for (let d = 0; d < devices; d++) await tx.putDevice(benchDevice(`${HOME}-dev${String(d).padStart(3, '0')}`, HOME, MODEL, '1.0.0'));
    });
    const clock = new SystemClock();
    const gateway = new InstantDeviceGateway(clock);
    for (let d = 0; d < devices; d++) {
      gateway.addDevice(`${HOME}-dev${String(d).padStart(3, '0')}`, { vendor: 'BenchCo', model: MODEL, hardwareRevision: 'A', firmwareVersion: '1.0.0' });
    }

    const gaps: number[] = [];
    let lastSucceededAt: number | null = null;
    let succeeded = 0;
    let allDone!: () => void;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    const engine: TimedEngine = new TimedEngine({
      store, gateway, source: new FixedReleaseSource([benchRelease(MODEL, '2.0.0')]), clock, log: silentLogger,
      config: { tickMs, offerResendSeconds: 600, releaseRefreshSeconds: 3600 },
      imageUrl: (id) => `http://hub.invalid/firmware/${encodeURIComponent(id)}`,
      // Called right after the transition is committed (the engine persists before it acts).
      onHistory: (e: NewHistoryEvent) => {
        if (e.kind !== 'transition') return;
        const now = performance.now();
        if (e.to === 'offered') {
          if (engine.current) engine.current.offered = true;
          if (lastSucceededAt !== null) gaps.push(now - lastSucceededAt);
          lastSucceededAt = null;
        } else if (e.to === 'succeeded') {
          lastSucceededAt = now;
          if (++succeeded === devices) allDone();
        }
      },
    });
    await gateway.start(engine);
    gateway.announceAll();
    await gateway.idle();
    const start = performance.now();
    await engine.start();
    await done;
    const wallMs = performance.now() - start;
    await engine.stop();
    await gateway.stop();
    await store.close();
    // The first pass also reads the release source and plans the whole home: shown apart.
    const [first, ...rest] = engine.ticks;
    return {
      tickMs, devices, wallMs, gaps: summary(gaps), firstTickMs: first?.ms ?? Number.NaN, offersInTicks: rest.filter((t) => t.offered).length,
      allTicks: summary(rest.map((t) => t.ms)),
    };
  } finally {
    dir.remove();
  }
}

async function main(): Promise<void> {
  printMachine();
  console.log(`gap: one home, instant devices, soak 0 s, SystemClock, engine.start() loop; tickMs ${TICKS.join(', ')}`);
  const results = [];
  for (const tickMs of TICKS) results.push(await run(tickMs));
  const rows: string[][] = [['tickMs', 'devices', 'gaps', 'gap median', 'gap p95', 'gap max', 'median / tickMs', 'offers during a tick / outside', 'tick median', 'first tick', 'wall']];
  for (const r of results) {
    rows.push([
      String(r.tickMs), String(r.devices), String(r.gaps.n), ms(r.gaps.median), ms(r.gaps.p95), ms(r.gaps.max), `${((100 * r.gaps.median) / r.tickMs).toFixed(1)} %`,
      `${r.offersInTicks} / ${r.gaps.n - r.offersInTicks}`, ms(r.allTicks.median), ms(r.firstTickMs), ms(r.wallMs),
    ]);
  }
  printTable('gap from "succeeded" (device k) to "offered" (device k+1), same home; baseline: tickMs (a next offer waiting for the next pass)', rows);
  const parts = results.map((r) => `tickMs ${r.tickMs}: median ${ms(r.gaps.median)} (p95 ${ms(r.gaps.p95)}), ${((100 * r.gaps.median) / r.tickMs).toFixed(1)} % of tickMs, one tick ${ms(r.allTicks.median)}`);
  console.log(`\nsummary: gap — ${parts.join('; ')}`);
}

await main();
