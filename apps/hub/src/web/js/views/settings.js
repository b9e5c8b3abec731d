// Settings: the home's policy, quiet hours, time zone and thresholds, and each device's policy.

import { h, notify } from '../dom.js';
import { currentHome, state } from '../state.js';
import { render } from '../screen.js';
import { api, enc } from '../api.js';
import { field } from '../forms.js';
import { zoneSelect } from '../time-zones.js';
import { refresh } from '../refresh.js';
import { homesSection } from './homes.js';

const POLICIES = [
  ['automatic', 'Automatic: install every update in the quiet hours'],
  ['security-only', 'Security only: install security fixes automatically'],
  ['notify', 'Notify: tell me, I start updates myself'],
  ['manual', 'Manual: only when I press "Update now"'],
];

export function settingsView() {
  const home = currentHome();
  if (home === null) {
    return h('div', { class: 'settings' }, h('h1', {}, 'Settings'), homesSection());
  }
  const s = home.settings;
  const input = (id, label, attrs, hint) => h('div', { class: 'field' },
    h('label', { for: id }, label), h('input', { id, name: id, ...attrs }), hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
  const policySelect = (id, value, withDefault) => h('select', { id, name: id },
    withDefault ? h('option', { value: '', selected: value === null }, `Home default (${s.policy})`) : null,
    POLICIES.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
  const homeForm = h('form', { class: 'card', id: 'home-settings', 'aria-labelledby': 'home-settings-title' },
    h('h2', { id: 'home-settings-title' }, `${home.name}`),
    h('div', { class: 'field' }, h('label', { for: 'home-policy' }, 'Update policy'), policySelect('home-policy', s.policy, false)),
    h('fieldset', {}, h('legend', {}, 'Quiet hours (updates only run in this window)'),
      h('div', { class: 'row' },
        input('window-start', 'From', { type: 'time', value: s.window.start, required: true }),
        input('window-end', 'Until', { type: 'time', value: s.window.end, required: true })),
      h('div', { class: 'check' },
        h('input', { id: 'learn-quiet', name: 'learn-quiet', type: 'checkbox', checked: s.learnQuietHours }),
        h('label', { for: 'learn-quiet' }, 'Learn the quiet hours from how the devices are used')),
      h('p', { class: 'hint' }, `In force now: ${home.effectiveWindow.start}–${home.effectiveWindow.end}${home.effectiveWindow.learned ? ' (learned)' : ''}.`)),
    field('time-zone', 'Time zone', { control: zoneSelect('time-zone', s.timeZone) }, 'Quiet hours and times on this page are in this zone.'),
    h('fieldset', {}, h('legend', {}, 'Safety thresholds'),
      h('div', { class: 'row' },
        input('min-battery', 'Least battery (%)', { type: 'number', min: 0, max: 100, step: 1, value: s.thresholds.minBatteryPercent, required: true }),
        input('min-signal', 'Weakest signal (dBm)', { type: 'number', min: -150, max: 0, step: 1, value: s.thresholds.minSignalDbm, required: true }))),
    h('button', { type: 'submit' }, 'Save home settings'));
  homeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const el = homeForm.elements;
    const patch = {
      policy: el['home-policy'].value,
      window: { start: el['window-start'].value, end: el['window-end'].value },
      learnQuietHours: el['learn-quiet'].checked,
      timeZone: el['time-zone'].value,
      thresholds: { minBatteryPercent: Number(el['min-battery'].value), minSignalDbm: Number(el['min-signal'].value) },
    };
    api('PATCH', `/api/v1/homes/${enc(home.id)}/settings`, patch)
      .then(async () => { notify('Home settings saved.'); await refresh(); await render({ keepFocus: true }); })
      .catch((e) => notify(e.message, 'error'));
  });

  const deviceRows = state.devices.map((d) => {
    const id = `policy-${d.id}`;
    const form = h('form', { class: 'device-setting', 'data-device': d.id },
      h('label', { for: id }, d.name, h('span', { class: 'model' }, ` ${d.vendor} ${d.model}`)),
      policySelect(id, d.policy ?? null, true),
      h('button', { type: 'submit', class: 'secondary', 'aria-label': `Save policy for ${d.name}` }, 'Save'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const value = form.elements[id].value;
      api('PATCH', `/api/v1/devices/${enc(d.id)}/settings`, { policy: value === '' ? null : value })
        .then(async () => { notify(`${d.name}: policy saved.`); await refresh(); })
        .catch((e) => notify(`${d.name}: ${e.message}`, 'error'));
    });
    return h('li', {}, form);
  });
  return h('div', { class: 'settings' },
    h('h1', {}, 'Settings'),
    homeForm,
    h('section', { class: 'card', 'aria-labelledby': 'device-settings-title' },
      h('h2', { id: 'device-settings-title' }, 'Per device'),
      state.devices.length === 0 ? h('p', { class: 'hint' }, 'No devices in this home yet.') : h('ul', { class: 'device-settings' }, deviceRows)),
    homesSection());
}
