/**
 * Power cuts at every step of an update on the file-slot Linux platform (issue 4).
 *
 *   FIRMWARD_TRIALS=10000 npm run bench:faults
 *
 * Two kinds of trials, one summary:
 * - FIRMWARD_TRIALS (default 10,000) in-process trials (apps/agent/test/faults/harness.ts): the
 *   power is cut right before a random operation of a boot (each 4 KiB slot write, fsync, read-back,
 *   switch, reboot, health check, commit, journal write, report), the agent is abandoned mid-await
 *   and every byte written since the last fsync is overwritten with junk; the file bootloader then
 *   applies its trial/fallback rules and a new agent starts. ~30 ms a trial, so 10,000 take minutes.
 * - FIRMWARD_SIGKILL_TRIALS (default 30) trials with real processes killed by SIGKILL at a random
 *   moment, the bootloader being the custom-script backend (apps/agent/test/faults/sigkill.ts).
 *   ~3 s a trial (a Node start per boot), which is why they are fewer; SIGKILL loses no page
 *   cache, so they prove the agent against its own sudden death, the in-process ones against lost bytes.
 *
 * The last line: `trials N · unbootable N · false success N · corrupted N · updated N · rolled back N`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { addOutcome, emptyTotals, faultImage, NEW_VERSION, prng, runTrial, summaryLine, trialSpec } from '../apps/agent/test/faults/harness.ts';
import { runSigkillTrial, sigkillImage } from '../apps/agent/test/faults/sigkill.ts';
import { startImageServer } from '../apps/agent/test/helpers.ts';

const trials = Number(process.env['FIRMWARD_TRIALS'] ?? 10_000);
const sigkillTrials = Number(process.env['FIRMWARD_SIGKILL_TRIALS'] ?? 30);
const seed = Number(process.env['FIRMWARD_SEED'] ?? 1);
const baseDir = process.env['FIRMWARD_FAULTS_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());

const server = await startImageServer({ '/new.bin': faultImage(NEW_VERSION), '/big.bin': sigkillImage(NEW_VERSION) });
const base = await mkdtemp(`${baseDir}/firmward-faults-`);
const totals = emptyTotals();
const random = prng(seed);
const started = Date.now();
try {
  console.log(`in-process trials: ${trials} (seed ${seed}, slots in ${baseDir}); SIGKILL trials: ${sigkillTrials}`);
  for (let i = 0; i < trials; i++) {
    // One trial in a hundred goes through the custom-script backend (a shell script per bootloader call, ~20× slower).
    const spec = trialSpec(random, i % 100 === 99 ? 'script' : 'file');
    addOutcome(totals, await runTrial(spec, server.url('/new.bin'), base), spec);
    if ((i + 1) % 1000 === 0) console.log(`  ${i + 1} in-process trials, ${((Date.now() - started) / 1000).toFixed(0)} s: ${summaryLine(totals)}`);
  }
  const inProcessSeconds = (Date.now() - started) / 1000;
  const killStarted = Date.now();
  for (let i = 0; i < sigkillTrials; i++) {
    const kills = Array.from({ length: 1 + Math.floor(random() * 3) }, () => Math.floor(random() * 2_500));
    const spec = { killAfterMs: kills, newStarts: random() < 0.8, newHealthy: random() < 0.8 };
    addOutcome(totals, await runSigkillTrial(spec, server.url('/big.bin'), base), { ...spec, cutsAfterOps: [], backend: 'script' });
  }
  const steps = Object.entries(totals.cutSteps).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  console.log(`cuts by step: ${steps}`);
  console.log(`time: in-process ${inProcessSeconds.toFixed(1)} s (${((inProcessSeconds * 1000) / Math.max(1, trials)).toFixed(1)} ms/trial), SIGKILL ${((Date.now() - killStarted) / 1000).toFixed(1)} s`);
  for (const example of totals.examples) console.log(`problem: ${example}`);
  console.log(summaryLine(totals));
} finally {
  await server.close();
  await rm(base, { recursive: true, force: true });
}
process.exitCode = totals.unbootable + totals.falseSuccess + totals.corrupted > 0 ? 1 : 0;
