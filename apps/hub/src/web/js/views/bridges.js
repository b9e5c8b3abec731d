// The fleet page's bridges to Zigbee2MQTT, Tasmota, Shelly and Home Assistant.

import { h, notify } from '../dom.js';
import { state } from '../state.js';
import { render } from '../screen.js';
import { api, enc } from '../api.js';
import { formatTime } from '../format.js';
import { busy } from '../forms.js';
import { browserZone } from '../time-zones.js';
import { refresh } from '../refresh.js';

const NEW_HOME = '__new__';

const BRIDGE_TITLES = { zigbee2mqtt: 'Zigbee2MQTT', tasmota: 'Tasmota', shelly: 'Shelly', homeAssistant: 'Home Assistant' };

/** On and running, on but still trying to reach its broker (the status line says why), or off. */
function bridgeState(bridge) {
  if (!bridge.enabled) return '(off)';
  const running = bridge.status?.state ?? 'running';
  return running === 'running' ? '(on)' : running === 'off' ? '(on, not running)' : '(on, not running yet)';
}

export function bridgeForm(bridge) {
  const id = (part) => `bridge-${bridge.name}-${part}`;
  const enabled = h('input', { type: 'checkbox', id: id('enabled'), checked: bridge.enabled });
  const url = h('input', { type: 'text', id: id('url'), value: bridge.url, placeholder: 'mqtt://192.168.1.5:1883' });
  const username = h('input', { type: 'text', id: id('username'), value: bridge.username, autocomplete: 'off' });
  // Only homes that exist, or a new one made in the same step (sent as newHome).
  const known = state.homes.some((home) => home.id === bridge.homeId);
  const homeSelect = bridge.name === 'homeAssistant' ? null
    : h('select', { id: id('home') },
      known ? null : h('option', { value: '', disabled: true, selected: true }, 'Pick a home'),
      state.homes.map((home) => h('option', { value: home.id, selected: home.id === bridge.homeId }, home.name)),
      h('option', { value: NEW_HOME }, 'New home…'));
  const newHome = h('input', { type: 'text', id: id('new-home'), maxlength: 80, autocomplete: 'off', placeholder: 'Garden' });
  const newHomeLabel = homeSelect ? h('label', { for: id('new-home'), hidden: true }, 'Name of the new home ', newHome) : null;
  homeSelect?.addEventListener('change', () => {
    newHomeLabel.hidden = homeSelect.value !== NEW_HOME;
    newHome.required = homeSelect.value === NEW_HOME;
    if (homeSelect.value === NEW_HOME) newHome.focus();
  });
  // Not an alert: the notice at the top says it too; this line says it where the person looks.
  const error = h('p', { class: 'error', id: id('error') });
  const submit = h('button', { type: 'submit', 'data-key': `save-${bridge.name}` }, 'Save');
  const save = (event) => {
    event.preventDefault();
    const patch = { enabled: enabled.checked, url: url.value.trim(), username: username.value.trim() };
    if (homeSelect?.value === NEW_HOME) patch.newHome = { name: newHome.value.trim(), timeZone: browserZone() };
    else if (homeSelect && homeSelect.value !== '') patch.homeId = homeSelect.value;
    void busy(submit, null, async () => {
      error.textContent = '';
      try {
        const next = await api('PATCH', `/api/v1/bridges/${enc(bridge.name)}`, patch);
        notify(`${BRIDGE_TITLES[bridge.name]}: ${next.enabled ? 'on' : 'off'}${patch.newHome ? `; its devices join the new home ${patch.newHome.name}` : ''}.`);
      } catch (e) {
        notify(e.message, 'error');
        error.textContent = e.message;
        return;
      } finally {
        // A new home may exist even when the bridge did not start.
        if (patch.newHome) await refresh().catch(() => undefined);
      }
      await render({ keepFocus: true });
    });
  };
  const status = bridge.status ?? null;
  const nextTry = status?.state === 'retrying' && status.nextAttemptAt ? ` It tries again at ${formatTime(status.nextAttemptAt)}.` : '';
  return h('li', { 'data-bridge': bridge.name },
    h('form', { class: 'bridge', onsubmit: save },
      h('h3', {}, BRIDGE_TITLES[bridge.name] ?? bridge.name, ' ', h('span', { class: 'bridge-state' }, bridgeState(bridge))),
      status?.message ? h('p', { class: 'hint bridge-status' }, status.message, nextTry) : null,
      h('label', { for: id('enabled') }, enabled, ' Turned on'),
      h('label', { for: id('url') }, 'Broker ', url),
      h('label', { for: id('username') }, 'User name ', username, bridge.passwordSet ? ' (password set)' : ''),
      homeSelect ? h('label', { for: id('home') }, 'Devices join ', homeSelect) : null,
      newHomeLabel,
      error,
      submit));
}
