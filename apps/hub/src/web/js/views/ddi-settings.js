// The fleet page's hawkBit (SWUpdate) registration settings.

import { h, notify } from '../dom.js';
import { state } from '../state.js';
import { render } from '../screen.js';
import { api } from '../api.js';
import { busy, errorLine, field } from '../forms.js';

/** Who may register as a hawkBit device (only when the hub's hawkBit device API is on). */
export function ddiSection(ddi) {
  if (ddi === null) return null;
  if (!ddi.enabled) {
    return h('section', { 'aria-labelledby': 'ddi-title' },
      h('h2', { id: 'ddi-title' }, 'hawkBit (SWUpdate) devices'),
      h('p', {}, 'The hub\'s hawkBit device API is off. Turn it on in the hub\'s config file (ddi.enabled) to add devices that update with SWUpdate.'));
  }
  const error = errorLine('ddi-error');
  const save = h('button', { type: 'submit' }, 'Save hawkBit settings');
  const form = h('form', { class: 'card', id: 'ddi-settings', 'aria-labelledby': 'ddi-title' },
    h('h2', { id: 'ddi-title' }, 'hawkBit (SWUpdate) devices'),
    h('p', { class: 'hint' }, `Tenant ${ddi.tenant}. Devices ask ${location.origin}/${ddi.tenant}/controller/v1/<controller id>.`),
    h('div', { class: 'check' },
      h('input', { id: 'ddi-auto', name: 'ddi-auto', type: 'checkbox', checked: ddi.autoRegister, 'aria-describedby': 'ddi-auto-hint' }),
      h('label', { for: 'ddi-auto' }, 'Let devices register themselves (each then waits for your approval)')),
    h('p', { class: 'hint', id: 'ddi-auto-hint' }, ddi.gatewayTokenSet
      ? 'They sign in with the tenant\'s GatewayToken.'
      : 'No GatewayToken is set (ddi.gatewayToken in the config file, or FIRMWARD_DDI_GATEWAY_TOKEN), so devices cannot register themselves.'),
    field('ddi-allowed', 'Only these controller ids may register', {
      tag: 'textarea', rows: 3, spellcheck: 'false', class: 'mono', value: (ddi.allowedControllerIds ?? []).join('\n'),
    }, 'One a line (or separated by commas). Empty: any controller id.'),
    field('ddi-home', 'Home proposed for them', {
      control: h('select', { id: 'ddi-home', name: 'ddi-home' },
        h('option', { value: '', selected: ddi.homeId === '' }, 'None: I pick one when approving'),
        state.homes.map((home) => h('option', { value: home.id, selected: home.id === ddi.homeId }, home.name))),
    }),
    ddi.changedHere ? h('p', { class: 'hint' }, 'Changed here; these settings win over the config file\'s.') : null,
    error,
    h('div', { class: 'actions' }, save));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const ids = form.elements['ddi-allowed'].value.split(/[\s,]+/).map((s) => s.trim()).filter((s) => s !== '');
    const patch = { autoRegister: form.elements['ddi-auto'].checked, allowedControllerIds: ids.length === 0 ? null : ids, homeId: form.elements['ddi-home'].value };
    void busy(save, error, async () => {
      const next = await api('PATCH', '/api/v1/ddi', patch);
      notify(`hawkBit registration saved: ${next.autoRegister ? 'devices may register themselves' : 'only devices added here'}.`);
      await render({ keepFocus: true });
    });
  });
  return h('section', {}, form);
}
