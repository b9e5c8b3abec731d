// Reading what the views show, and the header's home picker that every read brings up to date.

import { $, h, notify } from './dom.js';
import { currentHome, state } from './state.js';
import { render } from './screen.js';
import { api, enc } from './api.js';

/** Reads what the views show; true when it differs from what the last refresh saw. */
export async function refresh() {
  const [homes, pending] = await Promise.all([api('GET', '/api/v1/homes'), api('GET', '/api/v1/pending-devices')]);
  state.homes = homes;
  state.pending = pending;
  if (!state.homes.some((home) => home.id === state.homeId)) state.homeId = state.homes[0]?.id ?? null;
  state.devices = state.homeId === null ? [] : await api('GET', `/api/v1/devices?homeId=${enc(state.homeId)}`);
  for (const id of state.pendingDrafts.keys()) if (!state.pending.some((p) => p.id === id)) state.pendingDrafts.delete(id);
  renderHomePicker();
  const seen = JSON.stringify([state.homeId, state.homes, state.pending, state.devices]);
  const changed = seen !== state.seen;
  state.seen = seen;
  return changed;
}

/** With more than one home, a picker in the header; with one, just its name. */
function renderHomePicker() {
  const slot = $('#home-name');
  if (state.homes.length <= 1) {
    slot.textContent = currentHome()?.name ?? '';
    return;
  }
  // Rebuilt only when the homes change: a person arrowing through it keeps the focus.
  const signature = state.homes.map((home) => `${home.id}=${home.name}`).join(',');
  const kept = slot.querySelector('select');
  if (kept?.dataset.homes === signature) {
    kept.value = state.homeId;
    return;
  }
  const select = h('select', { id: 'home-select', 'aria-label': 'Home', 'data-homes': signature },
    state.homes.map((home) => h('option', { value: home.id, selected: home.id === state.homeId }, home.name)));
  select.addEventListener('change', () => void switchHome(select.value));
  slot.replaceChildren(select);
}

async function switchHome(homeId) {
  state.homeId = homeId;
  state.historyFilter.deviceId = '';
  try {
    await refresh();
    await render();
  } catch (e) {
    notify(e.message, 'error');
  }
}

/** After a person's action: read again and show it (their own change is not a "live" one). */
export async function reload() {
  await refresh();
  await render({ keepFocus: true });
}
