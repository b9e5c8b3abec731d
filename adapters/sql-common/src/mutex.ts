/**
 * A first-come, first-served async lock for a store's one connection (SQLite) or one transaction
 * client (PostgreSQL). A transaction's callback is async: without the lock another caller's
 * statement could run on the connection while it awaits and silently become part of it; and two
 * operations started at once inside a PostgreSQL transaction must not interleave their savepoints.
 */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /**
   * Runs `fn` once every earlier holder has finished; releases when `fn` settles.
   *
   * @example
   * const value = await mutex.run(async () => { ...; return 1; });
   */
  async run<T>(fn: () => T | Promise<T>): Promise<T> {
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
