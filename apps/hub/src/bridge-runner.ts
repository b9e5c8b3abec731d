/**
 * Keeps one bridge (Zigbee2MQTT, Tasmota, Shelly, the Home Assistant publisher) starting until it
 * runs: the hub never waits for an ecosystem's broker, and a broker that is down or refuses the
 * login at start leaves that bridge off with its reason shown while the rest of the hub works.
 * Every change of its state goes through `#to`, which logs `{from, to, reason}` (STYLE principle 4).
 */
import { FirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { Clock, Logger } from '@firmward/ports';

/**
 * off: not asked to run (or stopped); starting: an attempt is under way; running: started;
 * retrying: the last attempt failed and the next one is due at `nextAttemptAt`.
 */
export type BridgeState = 'off' | 'starting' | 'running' | 'retrying';

export interface BridgeStatus {
  state: BridgeState;
  /** Why it is not running, in the bridge's own words and one sentence; null when there is nothing to say. */
  message: string | null;
  /** When the next attempt starts (retrying only). */
  nextAttemptAt: EpochMs | null;
}

export const BRIDGE_OFF: BridgeStatus = { state: 'off', message: null, nextAttemptAt: null };

/** The pause before attempt `failures + 1`: 1 s doubling to at most 60 s, each shortened by up to a fifth at random so bridges sharing a broker do not knock in step. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
  /** The largest share of a pause taken off at random (0.2: between 80 % and 100 % of it). */
  jitter: number;
}

export const DEFAULT_BACKOFF: Backoff = { firstMs: 1_000, maxMs: 60_000, jitter: 0.2 };

/**
 * @example
 * backoffMs(DEFAULT_BACKOFF, 3, () => 0); // 8000: the fourth attempt waits 8 s
 */
export function backoffMs(backoff: Backoff, failures: number, random: () => number): number {
  const base = Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(failures, 30));
  return Math.round(base * (1 - backoff.jitter * random()));
}

const NEXT: Record<BridgeState, readonly BridgeState[]> = {
  off: ['starting'],
  starting: ['running', 'retrying', 'off'],
  retrying: ['starting', 'off'],
  running: ['off'],
};

export interface BridgeRunnerOptions {
  /** As the person reads it in the settings: "zigbee2mqtt", "homeAssistant". */
  name: string;
  /** One attempt; rejects, leaving nothing running, when the bridge cannot start. Gives up when `signal` aborts. */
  start: (signal: AbortSignal) => Promise<void>;
  stop: () => Promise<void>;
  /** Times the pauses between attempts (its `sleep` takes the signal that ends them). */
  clock: Clock;
  log: Logger;
  backoff?: Backoff;
  /** A number in [0, 1) for the jitter; Math.random by default. */
  random?: () => number;
}

/**
 * @example
 * const runner = new BridgeRunner({ name: 'tasmota', start: (signal) => bridge.start(handler, signal), stop: () => bridge.stop(), clock, log });
 * runner.startInBackground();  // the hub goes on; runner.status says how it goes
 * await runner.stop();         // no attempt, pause or timer is left behind
 */
export class BridgeRunner {
  readonly #o: BridgeRunnerOptions;
  #status: BridgeStatus = BRIDGE_OFF;
  #abort: AbortController | null = null;
  /** The attempt or the retry loop under way, which `stop()` waits for once it has aborted it. */
  #work: Promise<void> = Promise.resolve();
  /** The last failed attempt's reason, until one succeeds. */
  #lastReason: string | null = null;
  /** Whether this outage was logged as a warning already. */
  #warned = false;

  constructor(options: BridgeRunnerOptions) {
    this.#o = options;
  }

  get status(): BridgeStatus {
    return this.#status;
  }

  get running(): boolean {
    return this.#status.state === 'running';
  }

  /**
   * One attempt, answered at once: resolves once it runs, or rejects with the bridge's error and
   * stays off (a person turning the bridge on waits for this answer).
   */
  async startOnce(): Promise<void> {
    const abort = this.#begin();
    const attempt = this.#attempt(abort.signal);
    this.#work = attempt.then(() => undefined, () => undefined);
    const error = await attempt;
    if (error === null) return;
    if (this.#status.state === 'starting') this.#to({ state: 'off', message: null, nextAttemptAt: null }, 'it could not start');
    throw error;
  }

  /** Keeps trying, with backoff, until it runs or `stop()` is called; returns at once. */
  startInBackground(): void {
    const abort = this.#begin();
    this.#work = this.#keepTrying(abort.signal);
  }

  /** Ends the pause or the attempt under way, and stops the bridge if it runs. Never throws. */
  async stop(): Promise<void> {
    this.#abort?.abort(new FirmwardError('internal', `The ${this.#o.name} bridge was stopped.`));
    this.#abort = null;
    await this.#work;
    if (this.#status.state === 'off') return;
    const wasRunning = this.running;
    this.#to(BRIDGE_OFF, 'stopped');
    if (wasRunning) await this.#o.stop().catch((error: unknown) => this.#o.log.warn('bridge stop failed', { bridge: this.#o.name, error: String(error) }));
  }

  #begin(): AbortController {
    if (this.#status.state !== 'off') throw new FirmwardError('conflict', `The ${this.#o.name} bridge is already ${this.#status.state}.`);
    const abort = new AbortController();
    this.#abort = abort;
    return abort;
  }

  async #keepTrying(signal: AbortSignal): Promise<void> {
    for (let failures = 0; !signal.aborted; failures++) {
      const error = await this.#attempt(signal);
      if (error === null || signal.aborted) return;
      const waitMs = backoffMs(this.#o.backoff ?? DEFAULT_BACKOFF, failures, this.#o.random ?? Math.random);
      const message = `${sentenceOf(this.#o.name, error)}; Firmward tries again in ${Math.max(1, Math.round(waitMs / 1000))} s.`;
      this.#to({ state: 'retrying', message, nextAttemptAt: this.#o.clock.now() + waitMs }, 'the attempt failed');
      try {
        await this.#o.clock.sleep(waitMs, signal);
      } catch {
        return; // stopped during the pause
      }
    }
  }

  /** Resolves with null once running, or with the error of an attempt that failed (state still "starting"). */
  async #attempt(signal: AbortSignal): Promise<Error | null> {
    // Retrying again: the last reason stays visible while this attempt runs.
    const message = this.#lastReason === null ? null : `${this.#lastReason}; Firmward is trying again now.`;
    this.#to({ state: 'starting', message, nextAttemptAt: null }, 'attempt');
    try {
      await this.#o.start(signal);
    } catch (error) {
      this.#lastReason = sentenceOf(this.#o.name, error);
      return error instanceof Error ? error : new FirmwardError('internal', String(error), { cause: error });
    }
    // Started even if stop() came meanwhile: stop() then finds it running and stops it.
    this.#lastReason = null;
    this.#to({ state: 'running', message: null, nextAttemptAt: null }, 'started');
    return null;
  }

  /** The one place the state changes: checks the move is allowed and says so in the log. */
  #to(next: BridgeStatus, reason: string): void {
    const from = this.#status.state;
    if (!NEXT[from].includes(next.state)) {
      throw new FirmwardError('illegal_transition', `The ${this.#o.name} bridge cannot go from ${from} to ${next.state}.`);
    }
    this.#status = next;
    const fields = { bridge: this.#o.name, from, to: next.state, reason, ...(next.message !== null && { message: next.message }) };
    // Someone should look when a bridge stops working; each later retry of the same outage is only what happened.
    if (next.state === 'retrying' && !this.#warned) {
      this.#warned = true;
      this.#o.log.warn('bridge not running', fields);
    } else {
      this.#o.log.info('bridge state', fields);
    }
    if (next.state === 'running') this.#warned = false;
  }
}

/** "The zigbee2mqtt bridge did not start: <the bridge's own sentence>" without its final stop. */
function sentenceOf(name: string, error: unknown): string {
  return `The ${name} bridge did not start: ${describe(error).replace(/\.$/, '')}`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
