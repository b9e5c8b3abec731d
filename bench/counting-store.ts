/**
 * Counts the calls the engine makes on its store, by kind, without changing them: a write outside
 * a transaction and a transaction are each one durable commit (one fsync with synchronous=FULL),
 * which is what bounds the engine's rate. Calls made through a transaction's `tx` are not seen
 * (they are part of that one commit).
 */
import type { Store } from '@firmward/ports';

export interface StoreCallCounts {
  reads: number;
  /** Top-level writes and transactions: one commit each (or a rollback, counted in `failed` too). */
  commits: number;
  /** Calls that rejected (for a transaction: rolled back, nothing written). */
  failed: number;
  byMethod: Map<string, number>;
}

const READS = /^(get|list)/;

export function countingStore(store: Store): { store: Store; counts: StoreCallCounts } {
  const counts: StoreCallCounts = { reads: 0, commits: 0, failed: 0, byMethod: new Map() };
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      // Called on the real store: its private fields are not reachable through a proxy.
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        counts.byMethod.set(prop, (counts.byMethod.get(prop) ?? 0) + 1);
        if (READS.test(prop)) counts.reads++;
        else if (prop !== 'close' && prop !== 'migrate') counts.commits++;
        const result = method.apply(target, args);
        // A side branch that only counts: the caller still receives (and handles) the rejection.
        if (result instanceof Promise) result.then(undefined, () => counts.failed++);
        return result;
      };
    },
  });
  return { store: proxy, counts };
}
