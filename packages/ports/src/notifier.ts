import type { HistoryEvent } from './store.ts';

/** Tells people (and live dashboards) what happened. Best effort: a failing notifier never blocks an update. */
export interface Notifier {
  notify(event: HistoryEvent): void;
}
