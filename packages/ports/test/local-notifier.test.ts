import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalNotifier } from '../src/local-notifier.ts';
import type { CommittedChange } from '../src/notifier.ts';
import type { Logger } from '../src/logger.ts';

const fleet: CommittedChange = { kind: 'fleet', why: 'test' };

test('every listener hears a committed change, in the order they subscribed', () => {
  const notifier = new LocalNotifier();
  const heard: string[] = [];
  notifier.subscribe((c) => heard.push(`a ${c.kind}`));
  notifier.subscribe((c) => heard.push(`b ${c.kind}`));
  notifier.committed(fleet);
  assert.deepEqual(heard, ['a fleet', 'b fleet']);
});

test('a failing listener is logged and does not keep the change from the others or throw at the writer', () => {
  const errors: string[] = [];
  const log = { error: (message: string) => errors.push(message) } as unknown as Logger;
  const notifier = new LocalNotifier(log);
  const heard: CommittedChange[] = [];
  notifier.subscribe(() => {
    throw new Error('boom');
  });
  notifier.subscribe((c) => heard.push(c));
  assert.doesNotThrow(() => notifier.committed(fleet));
  assert.deepEqual(heard, [fleet]);
  assert.equal(errors.length, 1);
});

test('an unsubscribed listener hears nothing more', () => {
  const notifier = new LocalNotifier();
  let count = 0;
  const unsubscribe = notifier.subscribe(() => count++);
  notifier.committed(fleet);
  unsubscribe();
  notifier.committed(fleet);
  assert.equal(count, 1);
});
