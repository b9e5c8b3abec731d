/**
 * Issue 18 with the embedded broker (the default install): the hub SIGKILLed fifteen times at
 * seeded random moments of a rollout over ten homes of three devices — a third of the kills aimed
 * at a job offered or downloading — and restarted every time. No device blamed, no home halted,
 * nothing lost, never two active jobs in a home; every device ends on the new version.
 * fixtures/hub-chaos.ts has the run and every check; FIRMWARD_CHAOS_SEED replays a schedule.
 */
import { test } from 'node:test';
import { chaosSeed, runHubChaos } from './fixtures/hub-chaos.ts';

test('the hub killed 15 times at random moments, embedded broker: no device blamed, no home halted, nothing lost', { timeout: 300_000 }, async (t) => {
  await runHubChaos(t, { homes: 10, devicesPerHome: 3, kills: 15, seed: chaosSeed(), testFile: 'apps/hub/test/hub-chaos.test.ts' });
});
