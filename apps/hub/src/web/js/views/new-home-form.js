// The form that makes a home, on the first-home page and in Settings.

import { h, notify } from '../dom.js';
import { state } from '../state.js';
import { currentView, render } from '../screen.js';
import { api } from '../api.js';
import { busy, errorLine, field } from '../forms.js';
import { browserZone, zoneSelect } from '../time-zones.js';
import { refresh } from '../refresh.js';

const DEFAULT_WINDOW = { start: '01:00', end: '05:00' };

/** The form for a new home: name, time zone (the browser's preselected), quiet hours. */
export function newHomeForm(prefix, { submitLabel, autofocus = false }) {
  const error = errorLine(`${prefix}-error`);
  const submit = h('button', { type: 'submit' }, submitLabel);
  const form = h('form', { class: 'card new-home', id: `${prefix}-form` },
    field(`${prefix}-name`, 'Name of the home', { type: 'text', required: true, maxlength: 80, autocomplete: 'off', placeholder: 'Flat', 'data-autofocus': autofocus || undefined }),
    field(`${prefix}-zone`, 'Time zone', { control: zoneSelect(`${prefix}-zone`, browserZone()) },
      `Quiet hours are kept in this zone. This browser is in ${browserZone().replaceAll('_', ' ')}.`),
    h('fieldset', {}, h('legend', {}, 'Quiet hours (updates only run in this window)'),
      h('div', { class: 'row' },
        field(`${prefix}-start`, 'From', { type: 'time', value: DEFAULT_WINDOW.start, required: true }),
        field(`${prefix}-end`, 'Until', { type: 'time', value: DEFAULT_WINDOW.end, required: true }))),
    error,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const el = form.elements;
    const body = {
      name: el[`${prefix}-name`].value.trim(),
      timeZone: el[`${prefix}-zone`].value,
      window: { start: el[`${prefix}-start`].value, end: el[`${prefix}-end`].value },
    };
    void busy(submit, error, async () => {
      const home = await api('POST', '/api/v1/homes', body);
      state.homeId = home.id;
      await refresh();
      notify(`${home.name} is ready. Add its first device.`);
      state.focusAfterRender = 'add-device';
      // From Settings the new home's overview opens (the hash change renders it).
      if (currentView() !== 'overview') location.hash = '#overview';
      else await render();
    });
  });
  return form;
}
