/**
 * The retained copies one catch-up has handed on (hub-subscriptions.ts): a broker may send the same
 * retained message twice at a (re)connect — once for the shared subscription (Mosquitto 2 and EMQX
 * do, though the specification says they should not) and once for the catch-up subscription — and
 * the second copy would only repeat the work of the first. Kept only while a catch-up is under way,
 * as a digest per topic, so it costs nothing the rest of the time.
 *
 * A retained copy is recognised by its retain flag: a broker sets it only on the copies it sends
 * because of a new subscription, never on a message it forwards live (MQTT 3.1.1 §3.3.1.3).
 */
import { createHash } from 'node:crypto';

/**
 * @example
 * const copies = new CatchUpCopies();
 * copies.begin();
 * copies.repeated('firmward/v1/d/plug-1/state', payload); // false: hand it on
 * copies.repeated('firmward/v1/d/plug-1/state', payload); // true: the same copy again, drop it
 * copies.end();
 */
export class CatchUpCopies {
  /** Topic → digest of the payload handed on; null while no catch-up is under way. */
  #seen: Map<string, string> | null = null;

  /** A catch-up starts (a connection is up): what came before it is forgotten. */
  begin(): void {
    this.#seen = new Map();
  }

  /** The catch-up is over: copies from now on are handed on as they come. */
  end(): void {
    this.#seen = null;
  }

  get active(): boolean {
    return this.#seen !== null;
  }

  /**
   * True when this retained copy was handed on already in this catch-up: the same topic with the
   * same payload. A different payload on the topic (the device published again in between) is
   * new and handed on.
   */
  repeated(topic: string, payload: Uint8Array): boolean {
    const seen = this.#seen;
    if (seen === null) return false;
    const digest = createHash('sha256').update(payload).digest('base64');
    if (seen.get(topic) === digest) return true;
    seen.set(topic, digest);
    return false;
  }
}
