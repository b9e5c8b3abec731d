/**
 * A first-come, first-served async lock. A PostgreSQL transaction lives on one client, and every
 * operation inside it is wrapped in its own savepoint; two operations the callback starts at once
 * (Promise.all) must not interleave their SAVEPOINT / RELEASE pairs, so they take turns.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /**
   * Runs `fn` once every earlier holder has finished; releases when `fn` settles.
   *
   * @example
   * const value = await mutex.run(async () => { ...; return 1; });
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
