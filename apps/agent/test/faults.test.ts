/**
 * Power cuts at every step of an update on the file-slot Linux platform (issue 4, invariants 4
 * and 7): first a sweep that cuts once right before each operation in turn (so every step is hit,
 * and every 4 KiB offset of the slot write), then random multi-cut trials, on the in-process file
 * bootloader and on the custom-script backend. Zero unbootable, false-success and corrupted trials.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, test } from 'node:test';
import { existsSync } from 'node:fs';
import { addOutcome, emptyTotals, faultImage, NEW_VERSION, prng, runTrial, summaryLine, trialSpec } from './faults/harness.ts';
import type { FaultTotals, TrialSpec } from './faults/harness.ts';
import { startImageServer } from './helpers.ts';
import type { ImageServer } from './helpers.ts';

let server: ImageServer;
let base: string;
before(async () => {
  server = await startImageServer({ '/new.bin': faultImage(NEW_VERSION) });
  base = await mkdtemp(`${existsSync('/dev/shm') ? '/dev/shm' : tmpdir()}/firmward-faults-`);
});
after(async () => {
  await server.close();
  await rm(base, { recursive: true, force: true });
});

async function run(specs: TrialSpec[], totals: FaultTotals = emptyTotals()): Promise<FaultTotals> {
  for (const spec of specs) addOutcome(totals, await runTrial(spec, server.url('/new.bin'), base), spec);
  return totals;
}

function assertClean(totals: FaultTotals): void {
  assert.deepEqual(totals.examples, [], summaryLine(totals));
  assert.equal(totals.unbootable, 0);
  assert.equal(totals.falseSuccess, 0);
  assert.equal(totals.corrupted, 0);
}

// The timeouts guard against a hang, not a pace: these sweeps take ~15 s alone and over a minute
// beside the rest of npm test on a busy 2-core machine.
test('one cut before each operation in turn: every step, every write offset', { timeout: 240_000 }, async () => {
  const specs: TrialSpec[] = [];
  // The first boot downloads and switches; the second (after the restart) checks, commits, reports.
  // State reports interleave with the download by timing, so the step at a given operation count
  // varies from run to run: the range reaches well past the switch on a slow machine too.
  for (let k = 1; k <= 80; k++) {
    specs.push({ cutsAfterOps: [k], newStarts: true, newHealthy: true, backend: 'file' });
    if (k % 2 === 0) specs.push({ cutsAfterOps: [k], newStarts: k % 4 === 0, newHealthy: k % 4 === 2, backend: 'file' });
  }
  for (let k = 1; k <= 20; k++) {
    specs.push({ cutsAfterOps: [0, k], newStarts: true, newHealthy: true, backend: 'file' });
    specs.push({ cutsAfterOps: [0, k], newStarts: true, newHealthy: false, backend: 'file' });
  }
  const totals = await run(specs);
  const steps = ['write', 'fsync', 'read-back', 'switch', 'reboot', 'health check', 'commit', 'journal', 'report'];
  const missed = () => steps.filter((step) => (totals.cutSteps[step] ?? 0) === 0);
  // On a loaded machine more state reports interleave, so the later steps come at higher counts:
  // the sweep goes on, one operation further at a time, until every step has had its cut.
  for (let k = 81; k <= 400 && missed().length > 0; k++) {
    await run([{ cutsAfterOps: [k], newStarts: true, newHealthy: true, backend: 'file' }], totals);
  }
  assertClean(totals);
  for (const step of steps) {
    assert.ok((totals.cutSteps[step] ?? 0) > 0, `a cut landed on ${step}: ${JSON.stringify(totals.cutSteps)}`);
  }
  assert.ok(totals.updated > 0 && totals.rolledBack > 0, summaryLine(totals));
});

test('random multi-cut trials on the file bootloader and the custom-script backend', { timeout: 240_000 }, async () => {
  const random = prng(20260301);
  const specs = [
    ...Array.from({ length: 80 }, () => trialSpec(random, 'file')),
    ...Array.from({ length: 5 }, () => trialSpec(random, 'script')),
  ];
  const totals = await run(specs);
  assertClean(totals);
  assert.equal(totals.trials, 85);
});
