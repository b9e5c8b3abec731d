// Adding a device that updates with SWUpdate (hawkBit): registered here, with its own TargetToken.

import { $, h } from '../dom.js';
import { api, enc } from '../api.js';
import { busy, field } from '../forms.js';
import { reload } from '../refresh.js';
import { credentialView } from './credential.js';

export function hawkbitPanel(home, panel) {
  const note = h('p', { class: 'hint', id: 'hawkbit-note' });
  void api('GET', '/api/v1/ddi').then((ddi) => {
    note.textContent = ddi.enabled
      ? `For a device whose SWUpdate (suricatta) asks this hub for updates, tenant ${ddi.tenant}. It joins ${home.name} at once.`
      : 'This hub\'s hawkBit device API is off (ddi.enabled in its config file); until it is on, the hub turns hawkBit devices away.';
  }).catch(() => undefined);
  const fields = [
    ['hawkbit-id', 'Controller id', { maxlength: 120, spellcheck: 'false', autocapitalize: 'none' }, 'As in SWUpdate\'s -i; letters, digits and . _ : -'],
    ['hawkbit-name', 'Name', { maxlength: 80, placeholder: 'Attic gateway' }],
    ['hawkbit-vendor', 'Vendor', { maxlength: 64 }],
    ['hawkbit-model', 'Model', { maxlength: 64 }],
    ['hawkbit-revision', 'Hardware revision', { maxlength: 64 }],
    ['hawkbit-version', 'Firmware version it runs', { maxlength: 64, placeholder: '1.0.0' }],
  ];
  const add = h('button', { type: 'submit' }, 'Add the device');
  const result = h('div', { id: 'hawkbit-result' });
  const form = h('form', { id: 'hawkbit-form' },
    h('div', { class: 'grid-2' }, fields.map(([id, label, attrs, hint]) => field(id, label, { type: 'text', required: true, autocomplete: 'off', ...attrs }, hint))),
    h('div', { class: 'actions' }, add));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const v = (id) => form.elements[id].value.trim();
    const body = {
      protocol: 'hawkbit', id: v('hawkbit-id'), name: v('hawkbit-name'), vendor: v('hawkbit-vendor'), model: v('hawkbit-model'),
      hardwareRevision: v('hawkbit-revision'), firmwareVersion: v('hawkbit-version'),
    };
    void busy(add, panel.error, async () => {
      panel.clear();
      const registered = await api('POST', `/api/v1/homes/${enc(home.id)}/devices`, body);
      form.reset();
      panel.say(`${registered.device.name} is in ${home.name} now.`);
      result.replaceChildren(credentialView(registered.credential));
      $('#target-token')?.scrollIntoView({ block: 'nearest' });
      await reload();
    });
  });
  return h('div', {}, note, form, result);
}
