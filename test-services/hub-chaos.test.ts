/**
 * Issue 18 with Mosquitto as the broker (mqtt.url; the broker outlives the hub, so devices stay
 * connected and their answers wait in Mosquitto for the next hub): the hub SIGKILLed thirty times
 * at seeded random moments of a rollout over twenty homes of five devices — a third of the kills
 * aimed at a job just offered or downloading — and restarted every time. No device blamed, no home
 * halted, nothing lost, never two active jobs in a home; every device ends on the new version.
 * apps/hub/test/fixtures/hub-chaos.ts has the run and every check; FIRMWARD_CHAOS_SEED replays a schedule.
 */
import { test } from 'node:test';
import { chaosSeed, runHubChaos } from '../apps/hub/test/fixtures/hub-chaos.ts';
import { startMosquitto } from './mosquitto-broker.ts';

test('the hub killed 30 times at random moments, Mosquitto: no device blamed, no home halted, nothing lost', { timeout: 600_000 }, async (t) => {
  await runHubChaos(t, {
    homes: 20, devicesPerHome: 5, kills: 30, seed: chaosSeed(), testFile: 'test-services/hub-chaos.test.ts',
    externalBroker: (logins) => startMosquitto(logins),
    settleTimeoutMs: 180_000,
  });
});
