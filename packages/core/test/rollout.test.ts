import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_ROLLOUT_RULES, actOnRollout, advanceRollout, assignWaves, isFirmwardError, newJob, newRollout, rolloutHold, rolloutProgress,
} from '../src/index.ts';
import type { Job, JobState, Rollout } from '../src/index.ts';

const T0 = Date.UTC(2026, 10, 27, 1, 0);
const rollout = (patch: Partial<Rollout['rules']> = {}): Rollout =>
  newRollout({ id: 'r1', releaseId: 'acme/plug/1.1.0', rules: { ...DEFAULT_ROLLOUT_RULES, ...patch }, actor: 'person:owner' }, T0);

function job(i: number, homeId: string, state: JobState, stateSince = T0): Job {
  return { ...newJob({ id: `j${i}`, homeId, deviceId: `d${i}`, releaseId: 'acme/plug/1.1.0', fromVersion: '1.0.0', targetVersion: '1.1.0', priority: 1, requestedBy: null }, T0), state, stateSince };
}

test('waves: every home in exactly one wave, the same every time, growing as the rules say, the first never empty', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 400 }), fc.string({ minLength: 1, maxLength: 8 }), (n, id) => {
    const r = { ...rollout(), id };
    const homes = Array.from({ length: n }, (_, i) => `home-${i}`);
    const waves = assignWaves(r, homes);
    assert.equal(waves.size, n);
    assert.deepEqual(assignWaves(r, [...homes].reverse()), waves, 'independent of the order homes are listed in');
    let reached = 0;
    r.rules.waves.forEach((pct, i) => {
      reached += [...waves.values()].filter((w) => w === i).length;
      const wanted = Math.min(n, Math.max(1, Math.ceil((pct / 100) * n)));
      assert.equal(reached, wanted, `after wave ${i + 1}: ${reached} of ${n} homes, wanted ${wanted}`);
    });
  }));
});

test('rules a person gives are checked, every problem named', () => {
  assert.throws(() => rollout({ waves: [5, 1, 90] }), (e: unknown) => isFirmwardError(e, 'invalid_input') && /more homes than the one before/.test(e.message) && /last wave must reach 100/.test(e.message));
  assert.throws(() => rollout({ maxFailureRate: 2 }), /between 0 and 1/);
});

test('only homes of opened waves may start; paused, stopped and aborted hold everyone with the reason', () => {
  const r = rollout();
  assert.equal(rolloutHold(r, 0), null);
  assert.match(rolloutHold(r, 2)?.message ?? '', /wave 3 \(25 % of homes\), which opens once the waves before it are confirmed/);
  // The sentence does not change as earlier waves open (each change would be saved for every waiting update).
  assert.deepEqual(rolloutHold({ ...r, wave: 1 }, 2), rolloutHold(r, 2));
  const paused = actOnRollout(r, 'pause', 'person:ada', T0);
  assert.match(rolloutHold(paused, 0)?.message ?? '', /paused by ada/);
  assert.throws(() => actOnRollout(paused, 'pause', 'person:ada', T0), /only a running rollout/);
  const aborted = actOnRollout(paused, 'abort', 'person:ada', T0);
  assert.equal(rolloutHold(aborted, 0)?.code, 'rollout_aborted');
  assert.throws(() => actOnRollout(aborted, 'resume', 'person:ada', T0), /only a paused or stopped/);
});

test('a wave opens when its updates are finished; too many failures or stuck updates stop it; a resume counts afresh', () => {
  const r = rollout({ waves: [50, 100], minFinished: 2, maxFailureRate: 0.4, maxStuck: 2, stuckAfterSeconds: 3600 });
  const waves = new Map([['a', 0], ['b', 0], ['c', 1], ['d', 1]]);
  // Wave 1 has one running update: not done.
  const running = [job(1, 'a', 'succeeded'), job(2, 'b', 'installing', T0), job(3, 'c', 'waiting')];
  assert.equal(advanceRollout(r, rolloutProgress(r, running, waves, T0 + 60_000), T0 + 60_000), null);
  // Both finished, one failed: 50 % > 40 % → stopped.
  const failing = [job(1, 'a', 'succeeded'), job(2, 'b', 'failed')];
  const stopped = advanceRollout(r, rolloutProgress(r, failing, waves, T0 + 60_000), T0 + 60_000)!;
  assert.equal(stopped.state, 'stopped');
  assert.match(stopped.reason!.message, /1 of 2 finished updates failed \(50 %, more than 40 %\)/);
  // Resumed: the old failure no longer counts; with two successes the next wave opens.
  const resumed = actOnRollout(stopped, 'resume', 'person:ada', T0 + 120_000);
  const after = [job(1, 'a', 'succeeded'), job(2, 'b', 'failed'), job(4, 'a', 'succeeded', T0 + 130_000)];
  assert.equal(rolloutProgress(resumed, after, waves, T0 + 140_000).failed, 0);
  // Two updates running for over an hour: stuck → stopped.
  const stuck = [job(1, 'a', 'installing', T0), job(2, 'b', 'rebooting', T0)];
  assert.equal(advanceRollout(r, rolloutProgress(r, stuck, waves, T0 + 2 * 3600_000), T0 + 2 * 3600_000)?.reason?.code, 'rollout_stopped_stuck');
  // Everything in wave 1 succeeded: wave 2 opens; then everything: completed.
  const next = advanceRollout(r, rolloutProgress(r, [job(1, 'a', 'succeeded'), job(2, 'b', 'succeeded')], waves, T0 + 60_000), T0 + 60_000)!;
  assert.equal(next.wave, 1);
  const all = [job(1, 'a', 'succeeded'), job(2, 'b', 'succeeded'), job(3, 'c', 'succeeded'), job(5, 'd', 'succeeded')];
  assert.equal(advanceRollout(next, rolloutProgress(next, all, waves, T0 + 120_000), T0 + 120_000)?.state, 'completed');
});

test('a wave whose remaining devices only wait (on battery, say) opens the next after its longest time, never while one runs', () => {
  const r = rollout({ waves: [50, 100], waveMaxSeconds: 3600 });
  const waves = new Map([['a', 0], ['b', 0], ['c', 1]]);
  const jobs = [job(1, 'a', 'succeeded'), job(2, 'b', 'waiting')];
  assert.equal(advanceRollout(r, rolloutProgress(r, jobs, waves, T0 + 1800_000), T0 + 1800_000), null);
  assert.equal(advanceRollout(r, rolloutProgress(r, jobs, waves, T0 + 3700_000), T0 + 3700_000)?.wave, 1);
  const busy = [job(1, 'a', 'succeeded'), job(2, 'b', 'installing', T0 + 3500_000)];
  assert.equal(advanceRollout(r, rolloutProgress(r, busy, waves, T0 + 3700_000), T0 + 3700_000), null);
});
