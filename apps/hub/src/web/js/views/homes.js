// Every home in Settings: renamed, deleted (with its devices), and a form for another one.

import { h, notify } from '../dom.js';
import { state } from '../state.js';
import { api, enc } from '../api.js';
import { plural } from '../format.js';
import { busy, errorLine, field } from '../forms.js';
import { confirmAction } from '../dialogs.js';
import { reload } from '../refresh.js';
import { newHomeForm } from './new-home-form.js';

/** Every home: renamed, deleted (with its devices), and a form for another one. */
export function homesSection() {
  return h('section', { class: 'card', id: 'homes', 'aria-labelledby': 'homes-title' },
    h('h2', { id: 'homes-title' }, 'Homes'),
    state.homes.length === 0 ? h('p', {}, 'No home yet.') : h('ul', { class: 'homes' }, state.homes.map(homeRow)),
    h('h3', { id: 'add-home-title' }, state.homes.length === 0 ? 'Create a home' : 'Add another home'),
    newHomeForm('add-home', { submitLabel: 'Add the home' }));
}

function homeRow(home) {
  const id = `home-${home.id}-name`;
  const error = errorLine(`home-${home.id}-error`);
  const name = h('input', { id, name: id, type: 'text', required: true, maxlength: 80, autocomplete: 'off', value: home.name });
  const save = h('button', { type: 'submit', class: 'secondary', 'aria-label': `Save the name of ${home.name}` }, 'Save name');
  const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${home.name}…` }, 'Delete…');
  const form = h('form', { class: 'inline-form' }, field(id, `Rename ${home.name}`, { control: name }), save, remove);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(save, error, async () => {
      const renamed = await api('PATCH', `/api/v1/homes/${enc(home.id)}`, { name: name.value.trim() });
      notify(`The home is called ${renamed.name} now.`);
      await reload();
    });
  });
  remove.addEventListener('click', () => void busy(remove, error, async () => {
    const devices = await api('GET', `/api/v1/devices?homeId=${enc(home.id)}`);
    const names = new Map(devices.map((d) => [d.id, d.name]));
    const yes = await confirmAction({
      title: `Delete ${home.name}?`,
      text: devices.length === 0
        ? `${home.name} has no devices. Its history stays.`
        : `Its ${plural(devices.length, 'device')} (${devices.map((d) => d.name).join(', ')}) are taken off the hub with it and lose their access at once; updates not yet started are called off. Its history stays.`,
      yes: 'Delete the home',
    });
    if (!yes) return;
    const gone = await api('DELETE', `/api/v1/homes/${enc(home.id)}`);
    const removed = gone.devicesRemoved.map((deviceId) => names.get(deviceId) ?? deviceId);
    notify(`${home.name} was deleted${removed.length > 0 ? `, with ${plural(removed.length, 'device')}: ${removed.join(', ')}` : ''}${gone.updatesCancelled > 0 ? `; ${plural(gone.updatesCancelled, 'update')} called off` : ''}.`);
    await reload();
  }));
  return h('li', { 'data-home': home.id },
    form,
    h('p', { class: 'hint' }, `${plural(home.deviceCount, 'device')}; time zone ${home.settings.timeZone}; quiet hours ${home.settings.window.start}–${home.settings.window.end}.`),
    error);
}
