/**
 * Bounds on what a stranger can make the hub's log say (security audit, issue 14, finding 4: an
 * 8,000-character client id on a refused CONNECT wrote 16 KB of log, and every attempt wrote its
 * own line). Every field a peer chose is clipped with a marker of its real length, and a refusal
 * that repeats is logged the first few times per source in each window, then summed up in one
 * line when the window ends: the log stays readable for the person who must act on it, and a
 * flood cannot fill the disk.
 */
import type { Logger } from './logger.ts';

/** Characters kept of a field a peer chose (a client id, a user name, a topic). */
export const LOGGED_CHARS = 128;

/**
 * `text` as it may go into the log: at most `max` characters, and when cut, the real length.
 *
 * @example
 * clip('x'.repeat(8000)); // 'xxx…x…(8000 chars)' (128 x's)
 */
export function clip(text: string, max = LOGGED_CHARS): string {
  if (text.length <= max) return text;
  let end = max;
  // Never half a surrogate pair: the lone half would print as U+FFFD.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…(${text.length} chars)`;
}

export interface LogThrottleOptions {
  log: Logger;
  /** Lines logged per key in each window; the ones after are only counted. */
  linesPerWindow?: number;
  windowMs?: number;
  /** Keys followed at once; a key beyond them is counted with the others from "elsewhere". */
  maxKeys?: number;
  now?: () => number;
}

/** What a repeated refusal is, for its summary: "12 more refused logins from 10.0.0.5 in the last minute." */
export interface Repeated {
  /** What is counted, plural: "refused logins". */
  what: string;
  /** Where they come from: an address, a device id. */
  from: string;
  /** The field the summary line names `from` in: "remoteAddress", "deviceId". */
  field: string;
}

interface Window {
  startedAt: number;
  logged: number;
  suppressed: number;
  repeated: Repeated;
}

/** Followed keys beyond `maxKeys` share this one. */
const ELSEWHERE = '\u0000elsewhere';

/**
 * Warnings that a peer can repeat at will, at most `linesPerWindow` per key and window (the
 * window of a key starts with its first line), then one summary line when the window ends (at
 * the next warning, on a timer, or at close()).
 *
 * @example
 * const refusals = new LogThrottle({ log });
 * refusals.warn(`login ${address}`, { what: 'refused logins', from: address, field: 'remoteAddress' },
 *   'Refused a login.', { remoteAddress: address, username: clip(username) });
 * // at stop(): refusals.close();
 */
export class LogThrottle {
  readonly #log: Logger;
  readonly #lines: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | null = null;

  constructor(o: LogThrottleOptions) {
    this.#log = o.log;
    this.#lines = o.linesPerWindow ?? 10;
    this.#windowMs = o.windowMs ?? 60_000;
    this.#maxKeys = o.maxKeys ?? 100;
    this.#now = o.now ?? Date.now;
  }

  warn(key: string, repeated: Repeated, message: string, fields: Record<string, unknown>): void {
    const now = this.#now();
    this.#summarize((w) => now >= w.startedAt + this.#windowMs);
    let window = this.#windows.get(key);
    if (window === undefined && this.#windows.size >= this.#maxKeys) {
      key = `${repeated.what}${ELSEWHERE}`;
      window = this.#windows.get(key);
      repeated = { ...repeated, from: 'other sources' };
    }
    if (window === undefined) {
      window = { startedAt: now, logged: 0, suppressed: 0, repeated };
      this.#windows.set(key, window);
    }
    if (window.logged < this.#lines) {
      window.logged += 1;
      this.#log.warn(message, fields);
      return;
    }
    window.suppressed += 1;
    this.#schedule(now);
  }

  /** Writes the summaries still pending and stops the timer (call at stop). */
  close(): void {
    this.#summarize(() => true);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #summarize(ended: (w: Window) => boolean): void {
    for (const [key, w] of this.#windows) {
      if (!ended(w)) continue;
      this.#windows.delete(key);
      if (w.suppressed === 0) continue;
      const span = this.#windowMs === 60_000 ? 'minute' : this.#windowMs >= 1000 ? `${Math.round(this.#windowMs / 1000)} s` : `${this.#windowMs} ms`;
      this.#log.warn(`${w.suppressed} more ${w.repeated.what} from ${w.repeated.from} in the last ${span}.`, {
        [w.repeated.field]: w.repeated.from, suppressed: w.suppressed,
      });
    }
  }

  /** A summary is due when the earliest window with counted lines ends, even if nothing else comes. */
  #schedule(now: number): void {
    if (this.#timer !== null) return;
    let due = Infinity;
    for (const w of this.#windows.values()) if (w.suppressed > 0) due = Math.min(due, w.startedAt + this.#windowMs);
    if (due === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const at = this.#now();
      this.#summarize((w) => at >= w.startedAt + this.#windowMs);
      this.#schedule(at);
    }, Math.max(0, due - now));
    this.#timer.unref();
  }
}
