/**
 * Which homes a rollout's move makes due (StagedRollouts.moved): a wave that opens lets go only its
 * own homes — whoever opened it, this instance or another one sharing the database — and a pause,
 * an abort or the last wave concerns every home. A fake store: this is the part's own logic.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_ROLLOUT_RULES, actOnRollout, assignWaves, newRollout } from '@firmward/core';
import type { Rollout } from '@firmward/core';
import { LocalNotifier, silentLogger } from '@firmward/ports';
import type { Store } from '@firmward/ports';
import { StagedRollouts } from '../src/engine/staged-rollouts.ts';

const T0 = Date.UTC(2026, 11, 7, 1, 0);
const HOMES = Array.from({ length: 40 }, (_, i) => `home-${i}`);

/** The rollout another instance keeps moving on in the shared database; no jobs, so this one never advances it itself. */
function sharedDatabase(initial: Rollout): { store: Store; set: (r: Rollout) => void } {
  let rollout = initial;
  const store = {
    listRollouts: () => Promise.resolve([rollout]),
    listReleaseJobs: () => Promise.resolve([]),
    saveRollout: () => Promise.resolve(false),
  } as unknown as Store;
  return { store, set: (r) => (rollout = r) };
}

test('a wave opened on another instance makes only its homes due here; a pause and the last wave make every home due', async () => {
  const first = newRollout({ id: 'r1', releaseId: 'acme/plug/1.1.0', rules: { ...DEFAULT_ROLLOUT_RULES, waves: [10, 50, 100] }, actor: 'person:owner' }, T0);
  const db = sharedDatabase(first);
  const moves: (readonly string[] | null)[] = [];
  const rollouts = new StagedRollouts({
    store: db.store, log: silentLogger, notifier: new LocalNotifier(), cancel: () => Promise.resolve(),
    moved: (homeIds) => moves.push(homeIds),
  });
  const waves = assignWaves(first, HOMES);
  const inWave = (w: number) => HOMES.filter((h) => waves.get(h) === w).sort();

  await rollouts.advance(HOMES, T0);
  await rollouts.advance(HOMES, T0 + 1000);
  assert.deepEqual(moves, [], 'nothing moved: nothing made due (the first pass looks at every home anyway)');

  db.set({ ...first, wave: 1, version: first.version + 1 });
  await rollouts.advance(HOMES, T0 + 2000);
  assert.equal(moves.length, 1);
  assert.deepEqual([...(moves[0] ?? [])].sort(), inWave(1), 'only the homes of the wave that opened');
  assert.ok(inWave(1).length > 0 && inWave(1).length < HOMES.length);

  const paused = actOnRollout({ ...first, wave: 1, version: first.version + 1 }, 'pause', 'person:owner', T0 + 3000);
  db.set(paused);
  await rollouts.advance(HOMES, T0 + 3000);
  assert.equal(moves[1], null, 'a pause holds every home');

  db.set({ ...first, wave: 2, version: paused.version + 1 });
  await rollouts.advance(HOMES, T0 + 4000);
  assert.equal(moves[2], null, 'a resume (and the last wave) lets every home go');
  assert.equal(moves.length, 3);
});
