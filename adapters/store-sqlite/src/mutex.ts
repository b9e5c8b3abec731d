/**
 * A first-come, first-served async lock. node:sqlite runs every statement synchronously on one
 * connection, but a transaction's callback is async: without this lock another caller's statement
 * could run on the connection while the transaction awaits, and silently become part of it (or
 * read its uncommitted writes). Holding the lock for the whole transaction keeps them apart.
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
