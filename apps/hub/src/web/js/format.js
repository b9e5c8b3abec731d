// Times, counts and actors as a person reads them.

import { currentHome } from './state.js';

/** "person:owner" → "you": the history's actors as the owner reads them. */
export function who(actor) {
  if (actor === 'person:owner') return 'you';
  if (actor === 'device') return 'the device';
  return actor.replace(/^person:/, '');
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function formatTime(at, zone = currentHome()?.settings.timeZone) {
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(at));
}

/** "Tue 14:32 (Europe/Berlin)": a deadline in the home's own time. */
export function formatDeadline(at, zone) {
  const text = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(at));
  return zone ? `${text} (${zone.replaceAll('_', ' ')})` : text;
}
