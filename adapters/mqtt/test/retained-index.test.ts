/**
 * The retained index answers exactly what aedes-persistence's own scan answers: the same
 * messages for exact filters, wildcard filters, mixes, replacements and deletions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import MemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import type { AedesPacket } from 'aedes-packet';
import { IndexedRetainedPersistence } from '../src/retained-index.ts';

function retained(topic: string, payload: string): AedesPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: true, dup: false, length: 0, brokerId: 'b', brokerCounter: 1, messageId: 1 };
}

async function answer(p: MemoryPersistence, filters: string[]): Promise<string[]> {
  const got: string[] = [];
  for await (const packet of p.createRetainedStreamCombi(filters)) {
    const { topic, payload } = packet as { topic: string; payload: Buffer };
    got.push(`${topic}=${payload.toString()}`);
  }
  return got.sort();
}

test('exact, wildcard and mixed filters find what the library scan finds, after replacements and deletions', async () => {
  const ours = new IndexedRetainedPersistence();
  const library = new MemoryPersistence();
  const writes = [
    retained('firmward/v1/d/a/state', 'a1'), retained('firmward/v1/d/b/state', 'b1'), retained('firmward/v1/d/a/availability', 'on'),
    retained('firmward/v1/d/a/state', 'a2'), // replaced
    retained('firmward/v1/d/b/state', ''), // deleted (an empty retained payload)
    retained('$SYS/x/uptime', '5'),
  ];
  for (const w of writes) {
    await ours.storeRetained(w);
    await library.storeRetained(w);
  }
  const cases = [
    ['firmward/v1/d/a/state'],
    ['firmward/v1/d/b/state'],
    ['firmward/v1/d/nobody/cmd'],
    ['firmward/v1/d/+/state'],
    ['firmward/v1/#'],
    ['firmward/v1/d/a/state', 'firmward/v1/d/+/availability'],
    ['firmward/v1/d/a/state', 'firmward/v1/d/a/state'],
    ['$SYS/x/uptime'],
  ];
  for (const filters of cases) {
    assert.deepEqual(await answer(ours, filters), await answer(library, filters), `filters ${filters.join(', ')}`);
  }
  assert.deepEqual(await answer(ours, ['firmward/v1/d/a/state']), ['firmward/v1/d/a/state=a2']);
  assert.deepEqual(await answer(ours, ['firmward/v1/d/b/state']), []);
});

test('a stored packet is a copy: changing the original later changes nothing retained', async () => {
  const ours = new IndexedRetainedPersistence();
  const packet = retained('t/1', 'first');
  await ours.storeRetained(packet);
  (packet as { topic: string }).topic = 't/2';
  assert.deepEqual(await answer(ours, ['t/1']), ['t/1=first']);
});
