// Adding a device: the panel that asks how it gets its updates, and the way to the bridges.

import { $, h } from '../dom.js';
import { currentHome, state } from '../state.js';
import { openPanel } from '../dialogs.js';
import { agentPanel } from './add-device-agent.js';
import { hawkbitPanel } from './add-device-hawkbit.js';

const ADD_KINDS = [
  ['agent', 'It runs the Firmward agent', 'Make a one-time code and enter it on the device.'],
  ['hawkbit', 'It updates with SWUpdate (hawkBit)', 'Register it here; it gets its own TargetToken.'],
  ['bridge', 'It is in Zigbee2MQTT, Tasmota or Shelly', 'Its devices join through a bridge.'],
];

export function openAddDevice(opener) {
  const home = currentHome();
  if (home === null) return;
  const panel = openPanel('add-device', `Add a device to ${home.name}`, { wide: true, opener });
  const content = h('div', { class: 'add-content' });
  const choose = (kind) => {
    panel.clear();
    for (const hook of panel.hooks) state.liveHooks.delete(hook);
    panel.hooks = [];
    if (kind === 'agent') content.replaceChildren(agentPanel(home, panel));
    else if (kind === 'hawkbit') content.replaceChildren(hawkbitPanel(home, panel));
    else content.replaceChildren(bridgePanel(panel));
  };
  const kinds = h('fieldset', { class: 'kinds' }, h('legend', {}, 'How does it get its updates?'),
    ADD_KINDS.map(([value, label, hint], i) => h('div', { class: 'kind' },
      h('input', { type: 'radio', name: 'add-kind', id: `add-kind-${value}`, value, checked: i === 0, 'aria-describedby': `add-kind-${value}-hint`, onchange: () => choose(value) }),
      h('label', { for: `add-kind-${value}` }, label),
      h('span', { class: 'hint', id: `add-kind-${value}-hint` }, hint))));
  panel.body.replaceChildren(kinds, content);
  choose('agent');
  $('#add-kind-agent').focus();
}

function bridgePanel(panel) {
  return h('div', {},
    h('p', {}, 'Devices that a Zigbee2MQTT, Tasmota or Shelly installation manages come in through its bridge: turn the bridge on, give it the broker, and pick the home its devices join. They then show up here by themselves.'),
    h('p', {}, h('a', { href: '#fleet', id: 'to-bridges', onclick: () => panel.dialog.close() }, 'Set up a bridge'), ' (on the Fleet page).'));
}
