/** DeliveryQueue: per-device order, isolation between devices and between failing calls, and drain. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliveryQueue } from '../src/index.ts';
import { recordingLogger } from '../testing/recording-logger.ts';

function gate(): { opened: Promise<void>; open(): void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('DeliveryQueue', () => {
  test('runs one device\'s tasks in the order they were pushed, each after the previous one finished', async () => {
    const queue = new DeliveryQueue(recordingLogger());
    const ran: string[] = [];
    const first = gate();
    queue.push('a', async () => {
      await first.opened;
      ran.push('a1');
    });
    queue.push('a', () => void ran.push('a2'));
    queue.push('a', () => void ran.push('a3'));
    await Promise.resolve();
    assert.deepEqual(ran, [], 'the second task waits for the first');
    first.open();
    await queue.drain();
    assert.deepEqual(ran, ['a1', 'a2', 'a3']);
  });

  test('a device whose call hangs does not hold up another device', async () => {
    const queue = new DeliveryQueue(recordingLogger());
    const ran: string[] = [];
    const stuck = gate();
    queue.push('a', async () => {
      await stuck.opened;
      ran.push('a');
    });
    const b = gate();
    queue.push('b', () => {
      ran.push('b');
      b.open();
    });
    await b.opened;
    assert.deepEqual(ran, ['b']);
    stuck.open();
    await queue.drain();
    assert.deepEqual(ran, ['b', 'a']);
  });

  test('a failing call is logged and the next one still runs', async () => {
    const logger = recordingLogger();
    const queue = new DeliveryQueue(logger);
    const ran: string[] = [];
    queue.push('a', () => Promise.reject(new Error('handler broke')));
    queue.push('a', () => void ran.push('after'));
    await queue.drain();
    assert.deepEqual(ran, ['after']);
    assert.deepEqual(logger.lines.map((l) => [l.level, l.message, l.fields]), [['error', 'A bridge handler call failed.', { key: 'a', error: 'Error: handler broke' }]]);
  });

  test('drain waits for tasks queued while it waits', async () => {
    const queue = new DeliveryQueue(recordingLogger());
    const ran: string[] = [];
    queue.push('a', () => {
      ran.push('a');
      queue.push('b', async () => {
        await Promise.resolve();
        ran.push('b');
      });
    });
    await queue.drain();
    assert.deepEqual(ran, ['a', 'b']);
  });
});
