/**
 * Serializes work per key (a home) inside one hub process, so the sequencer and device messages
 * of one home never interleave. Across processes the store's compare-and-set and the partial
 * unique index keep invariant 1; this lock only keeps one process from racing itself.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
