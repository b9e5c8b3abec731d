// Devices waiting for approval.

import { h, notify } from '../dom.js';
import { homeName, state } from '../state.js';
import { api, enc } from '../api.js';
import { formatTime } from '../format.js';
import { busy, errorLine, field } from '../forms.js';
import { reload } from '../refresh.js';

/** This home's waiting devices, and those that asked for no home (they need one picked). */
export function pendingSection(home) {
  const waiting = state.pending.filter((p) => p.state === 'waiting' && (p.homeId === home.id || p.homeId === null));
  if (waiting.length === 0) return null;
  return h('section', { class: 'card pending', id: 'pending', 'aria-labelledby': 'pending-title' },
    h('h2', { id: 'pending-title' }, `Waiting for your approval (${waiting.length})`),
    h('p', { class: 'hint' }, 'These devices asked to join. Approve only a device you are setting up yourself: once approved, it may get firmware from this hub.'),
    h('ul', { class: 'pending-list' }, waiting.map(pendingItem)));
}

function pendingItem(p) {
  const draft = state.pendingDrafts.get(p.id) ?? {};
  const remember = (key, value) => state.pendingDrafts.set(p.id, { ...state.pendingDrafts.get(p.id), [key]: value });
  const nameId = `pending-${p.id}-name`;
  const homeId = `pending-${p.id}-home`;
  const error = errorLine(`pending-${p.id}-error`);
  const name = h('input', {
    id: nameId, name: nameId, type: 'text', required: true, maxlength: 80, autocomplete: 'off', 'data-key': nameId, value: draft.name ?? p.name,
    oninput: (e) => remember('name', e.target.value),
  });
  const homePick = p.homeId === null
    ? h('select', { id: homeId, name: homeId, 'data-key': homeId, onchange: (e) => remember('homeId', e.target.value) },
      h('option', { value: '', disabled: true, selected: !draft.homeId }, 'Pick a home'),
      state.homes.map((home) => h('option', { value: home.id, selected: draft.homeId === home.id }, home.name)))
    : null;
  const approve = h('button', { type: 'submit', 'data-key': `approve-${p.id}`, 'aria-label': `Approve ${p.name}` }, 'Approve');
  const reject = h('button', { type: 'button', class: 'danger', 'data-key': `reject-${p.id}`, 'aria-label': `Reject ${p.name}` }, 'Reject');
  const form = h('form', { class: 'pending-form' },
    h('div', { class: 'row' },
      field(nameId, 'Name', { control: name }),
      homePick ? field(homeId, 'Home it joins', { control: homePick }) : null),
    error,
    h('div', { class: 'actions' }, approve, reject));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = {};
    const newName = name.value.trim();
    if (newName !== '' && newName !== p.name) body.name = newName;
    // None picked: the hub says what is missing, in its own words.
    if (homePick && homePick.value !== '') body.homeId = homePick.value;
    void busy(approve, error, async () => {
      const device = await api('POST', `/api/v1/pending-devices/${enc(p.id)}/approve`, body);
      state.pendingDrafts.delete(p.id);
      notify(`${device.name} joined ${homeName(device.homeId)}.`);
      await reload();
    });
  });
  reject.addEventListener('click', () => void busy(reject, error, async () => {
    await api('POST', `/api/v1/pending-devices/${enc(p.id)}/reject`, {});
    state.pendingDrafts.delete(p.id);
    notify(`${p.name} was not let in.`);
    await reload();
  }));
  return h('li', { class: 'pending-device', 'data-pending': p.id, 'aria-labelledby': `pending-${p.id}-title` },
    h('div', { class: 'device-head' },
      h('h3', { id: `pending-${p.id}-title` }, p.name),
      h('span', { class: 'badge badge-waiting' }, p.protocol === 'hawkbit' ? 'hawkBit' : 'Firmward agent')),
    h('p', { class: 'summary' }, p.summary),
    h('p', { class: 'when' }, `Asked at ${formatTime(p.requestedAt)}. Device id ${p.deviceId}.`),
    form);
}
