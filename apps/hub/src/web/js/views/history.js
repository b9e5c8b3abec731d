// The history: every decision and action, filtered by device and outcome.

import { h } from '../dom.js';
import { deviceName, state } from '../state.js';
import { render } from '../screen.js';
import { api } from '../api.js';
import { formatTime } from '../format.js';

const OUTCOMES = [
  ['', 'Every decision'], ['succeeded', 'Succeeded'], ['failed', 'Failed'], ['cancelled', 'Cancelled'],
  ['waiting', 'Held back (waiting)'], ['queued', 'Queued'], ['installing', 'Installing'],
];

export async function historyView() {
  const f = state.historyFilter;
  const params = new URLSearchParams({ limit: '300' });
  if (state.homeId) params.set('homeId', state.homeId);
  if (f.deviceId) params.set('deviceId', f.deviceId);
  if (f.to) params.set('to', f.to);
  const events = await api('GET', `/api/v1/events?${params}`);
  const select = (id, label, options, value, key) => h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, 'data-key': id, onchange: (e) => { f[key] = e.target.value; void render(); } },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
  return h('section', { 'aria-labelledby': 'history-title' },
    h('h1', { id: 'history-title' }, 'History'),
    h('p', {}, 'Every decision the hub made and every action a person took, newest first, with the reason.'),
    h('div', { class: 'filters' },
      select('filter-device', 'Device', [['', 'All devices'], ...state.devices.map((d) => [d.id, d.name])], f.deviceId, 'deviceId'),
      select('filter-outcome', 'Outcome', OUTCOMES, f.to, 'to')),
    events.length === 0 ? h('p', { id: 'history-empty' }, 'Nothing recorded for this choice yet.') : h('div', { class: 'table-wrap' },
      h('table', { id: 'history-table' },
        h('caption', { class: 'visually-hidden' }, 'History of decisions'),
        h('thead', {}, h('tr', {}, ['When', 'Device', 'What', 'Why', 'Who'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, events.map((e) => h('tr', {},
          h('td', { class: 'when' }, formatTime(e.at)),
          h('td', {}, e.deviceId ? deviceName(e.deviceId) : '—'),
          h('td', {}, e.to ? h('span', { class: `badge badge-${e.to}` }, e.to) : e.kind),
          h('td', {}, e.message),
          h('td', {}, e.actor)))))));
}
