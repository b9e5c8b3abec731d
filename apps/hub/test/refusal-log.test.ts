/**
 * A device that repeats a bad message at will cannot fill the hub's log: the engine says each
 * refusal (from any gateway) a few times per device and topic a minute, then sums up the rest.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, MemoryReleaseSource } from '@firmward/ports';
import type { Logger, Store } from '@firmward/ports';
import { RolloutEngine } from '../src/engine.ts';
import { quietGateway } from './fixtures/counting-store.ts';

test('a flood of refused messages from one device is logged ten times, then summed up in one line', async () => {
  const lines: { message: string; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  const log: Logger = {
    debug: () => {}, info: () => {}, error: () => {},
    warn: (message, fields) => lines.push({ message, fields }),
    child: () => log,
  };
  const store = { releaseHomes: () => Promise.resolve() } as unknown as Store;
  const engine = new RolloutEngine({
    store, gateway: quietGateway, source: new MemoryReleaseSource(), clock: new ManualClock(0), log,
    config: { tickMs: 1000, offerResendSeconds: 60, releaseRefreshSeconds: 3600 }, imageUrl: (r) => r,
  });
  for (let i = 0; i < 500; i++) engine.onRejected({ deviceId: 'plug', topic: 'firmward/v1/plug/state', error: 'state: payload is not valid JSON', at: i });
  // Another device's refusal is still said.
  engine.onRejected({ deviceId: 'lamp', topic: 'firmward/v1/lamp/state', error: 'state: payload is not valid JSON', at: 1 });
  await engine.stop();
  const said = lines.filter((l) => l.message === 'device message refused');
  assert.equal(said.filter((l) => l.fields?.['deviceId'] === 'plug').length, 10);
  assert.equal(said.filter((l) => l.fields?.['deviceId'] === 'lamp').length, 1);
  const summary = lines.filter((l) => /^490 more refused "firmward\/v1\/plug\/state" messages from plug in the last minute\.$/.test(l.message));
  assert.equal(summary.length, 1, lines.map((l) => l.message).join('\n'));
});
