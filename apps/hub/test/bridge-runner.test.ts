/**
 * BridgeRunner on a ManualClock: a bridge that cannot start is tried again after 1 s, 2 s, 4 s …
 * up to 60 s, says why in the meantime, and comes up by itself; stop() ends a pause or an
 * attempt under way at once and leaves no sleeper behind; a person's one attempt answers at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import { BridgeRunner, DEFAULT_BACKOFF, backoffMs } from '../src/bridge-runner.ts';

const T0 = 1_700_000_000_000;
const DOWN = new FirmwardError('gateway_failure', 'The Tasmota bridge could not reach its MQTT broker at mqtt://127.0.0.1:1883: connection refused.');

/** A bridge whose start fails while `down` is true, and counts its starts and stops. */
class FakeBridge {
  down = true;
  starts = 0;
  stops = 0;
  /** When set, start waits for this (or for the signal) instead of answering at once. */
  hold: Promise<void> | null = null;
  lastSignal: AbortSignal | null = null;

  async start(signal: AbortSignal): Promise<void> {
    this.starts++;
    this.lastSignal = signal;
    if (this.hold) {
      const hold = this.hold;
      await new Promise<void>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(new FirmwardError('gateway_failure', 'given up')), { once: true });
        void hold.then(resolve);
      });
    }
    if (this.down) throw DOWN;
  }

  stop(): Promise<void> {
    this.stops++;
    return Promise.resolve();
  }
}

function runnerFor(bridge: FakeBridge, clock: ManualClock): BridgeRunner {
  return new BridgeRunner({
    name: 'tasmota', clock, log: silentLogger, random: () => 0,
    start: (signal) => bridge.start(signal), stop: () => bridge.stop(),
  });
}

/** Read afresh each time (an assertion on one read must not narrow the next). */
const status = (runner: BridgeRunner) => runner.status;

/** Lets the runner reach its next await (the fake answers without I/O). */
const settle = (clock: ManualClock) => clock.advance(0);

describe('BridgeRunner', () => {
  test('pauses double from 1 s to at most 60 s, and jitter only shortens them, by a fifth at most', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffMs(DEFAULT_BACKOFF, n, () => 0)),
      [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    assert.equal(backoffMs(DEFAULT_BACKOFF, 3, () => 0.999_999), 6_400);
  });

  test('a bridge that cannot start says why, tries again with backoff, and runs once it can', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    const runner = runnerFor(bridge, clock);
    assert.deepEqual(status(runner), { state: 'off', message: null, nextAttemptAt: null });
    runner.startInBackground();
    await settle(clock);
    assert.deepEqual(status(runner), {
      state: 'retrying',
      message: 'The tasmota bridge did not start: The Tasmota bridge could not reach its MQTT broker at mqtt://127.0.0.1:1883: connection refused; Firmward tries again in 1 s.',
      nextAttemptAt: T0 + 1_000,
    });
    assert.equal(runner.running, false);

    await clock.advance(1_000);
    assert.equal(bridge.starts, 2);
    assert.equal(status(runner).state, 'retrying');
    assert.equal(status(runner).nextAttemptAt, T0 + 1_000 + 2_000);
    assert.match(status(runner).message ?? '', /tries again in 2 s\.$/);

    await clock.advance(2_000);
    assert.equal(status(runner).nextAttemptAt, T0 + 3_000 + 4_000, 'then 4 s');

    bridge.down = false;
    await clock.advance(3_999);
    assert.equal(bridge.starts, 3, 'not before its time');
    await clock.advance(1);
    assert.deepEqual(status(runner), { state: 'running', message: null, nextAttemptAt: null });
    assert.equal(runner.running, true);
    assert.equal(clock.pending, 0, 'nothing is left waiting once it runs');

    await runner.stop();
    assert.deepEqual([status(runner).state, bridge.stops], ['off', 1]);
  });

  test('while an attempt is under way after a failure, the last reason stays visible', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    const runner = runnerFor(bridge, clock);
    runner.startInBackground();
    await settle(clock);
    let release!: () => void;
    bridge.hold = new Promise((resolve) => (release = resolve));
    await clock.advance(1_000);
    assert.equal(status(runner).state, 'starting');
    assert.match(status(runner).message ?? '', /connection refused; Firmward is trying again now\.$/);
    release();
    await settle(clock);
    assert.equal(status(runner).state, 'retrying');
    await runner.stop();
  });

  test('stop() during a pause returns at once and leaves nothing waiting', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    const runner = runnerFor(bridge, clock);
    runner.startInBackground();
    await settle(clock);
    assert.equal(clock.pending, 1);
    await runner.stop();
    assert.deepEqual(status(runner), { state: 'off', message: null, nextAttemptAt: null });
    assert.equal(clock.pending, 0);
    await clock.advance(120_000);
    assert.deepEqual([bridge.starts, bridge.stops], [1, 0], 'no attempt after stop, and nothing to stop');
  });

  test('stop() during an attempt gives it up through its signal', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    bridge.hold = new Promise(() => undefined); // a broker that never answers
    const runner = runnerFor(bridge, clock);
    runner.startInBackground();
    await settle(clock);
    assert.equal(status(runner).state, 'starting');
    await runner.stop();
    assert.equal(bridge.lastSignal?.aborted, true);
    assert.deepEqual([status(runner).state, clock.pending, bridge.stops], ['off', 0, 0]);
  });

  test('an attempt that succeeds as stop() comes is stopped, not left running', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    bridge.down = false;
    let release!: () => void;
    bridge.hold = new Promise((resolve) => (release = resolve));
    const runner = new BridgeRunner({
      name: 'tasmota', clock, log: silentLogger,
      // Ignores the signal, as a bridge does once its broker has answered.
      start: () => bridge.hold!.then(() => undefined),
      stop: () => bridge.stop(),
    });
    runner.startInBackground();
    const stopped = runner.stop();
    release();
    await stopped;
    assert.deepEqual([status(runner).state, bridge.stops], ['off', 1]);
  });

  test('one attempt for a person: rejects with the bridge\'s error and stays off, or runs', async () => {
    const clock = new ManualClock(T0);
    const bridge = new FakeBridge();
    const failing = runnerFor(bridge, clock);
    await assert.rejects(failing.startOnce(), (error: unknown) => error === DOWN);
    assert.deepEqual(status(failing), { state: 'off', message: null, nextAttemptAt: null });
    assert.equal(clock.pending, 0, 'no retry');

    bridge.down = false;
    const working = runnerFor(bridge, clock);
    await working.startOnce();
    assert.equal(status(working).state, 'running');
    await assert.rejects(working.startOnce(), (error: unknown) => isFirmwardError(error, 'conflict'));
    await working.stop();
    assert.equal(status(working).state, 'off');
  });
});
