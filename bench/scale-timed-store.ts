/**
 * Counts and times the calls the engine makes on its store, by method, without changing them: on
 * PostgreSQL every call is at least one network round trip, so where the calls go is where the
 * time goes. Calls overlap (device messages are handled while a tick runs), so the summed times
 * can exceed the wall time; they rank, they do not add up. Calls made through a transaction's
 * `tx` are inside that transaction's time.
 */
import type { Store } from '@firmward/ports';

export interface MethodTime {
  calls: number;
  ms: number;
}

export type StoreTimes = Map<string, MethodTime>;

export function timedStore(store: Store): { store: Store; times: StoreTimes } {
  const times: StoreTimes = new Map();
  const proxy = new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      // Called on the real store: its private fields are not reachable through a proxy.
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        const t = performance.now();
        const result = method.apply(target, args);
        const record = () => {
          const m = times.get(prop) ?? { calls: 0, ms: 0 };
          m.calls++;
          m.ms += performance.now() - t;
          times.set(prop, m);
        };
        // A side branch that only records: the caller still receives (and handles) any rejection.
        if (result instanceof Promise) result.then(record, record);
        else record();
        return result;
      };
    },
  });
  return { store: proxy, times };
}

/** What happened between two copies of the times (`before` taken with copyTimes). */
export function timesSince(now: StoreTimes, before: StoreTimes): StoreTimes {
  const delta: StoreTimes = new Map();
  for (const [method, m] of now) {
    const b = before.get(method) ?? { calls: 0, ms: 0 };
    if (m.calls > b.calls) delta.set(method, { calls: m.calls - b.calls, ms: m.ms - b.ms });
  }
  return delta;
}

export function copyTimes(times: StoreTimes): StoreTimes {
  return new Map([...times].map(([k, v]) => [k, { ...v }]));
}
