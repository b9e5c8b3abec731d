// One device's menu: rename, move, leave alone, rotate or revoke its credential, remove.

import { h, notify } from '../dom.js';
import { homeName, state } from '../state.js';
import { api, enc } from '../api.js';
import { STATUS_LABEL, reachedThrough } from '../labels.js';
import { busy, field } from '../forms.js';
import { confirmAction, onLive, openPanel } from '../dialogs.js';
import { reload } from '../refresh.js';
import { credentialView } from './credential.js';

/** Devices of these ecosystems take their names from the ecosystem; the hub refuses to rename them. */
const NAMED_BY_ECOSYSTEM = ['zigbee2mqtt', 'tasmota', 'shelly'];
/** Only these have credentials the hub issued (and can rotate or revoke). */
const OWN_CREDENTIALS = ['agent', 'ddi'];

/**
 * One device's menu: rename, move, leave alone, rotate or revoke its credential, remove. Each
 * action's answer (or refusal) is said at the top of the panel; the panel then shows the device
 * as the hub sees it now.
 */
export function openDevicePanel(device, opener) {
  const panel = openPanel('device-panel', device.name, { opener });
  const fill = (dev) => {
    panel.heading.textContent = dev.name;
    panel.body.replaceChildren(...devicePanelContent(dev, panel, fill));
  };
  fill(device);
  // While it is open the device's status line follows the hub (the rest is the person's to edit).
  onLive(panel, () => {
    const fresh = state.devices.find((d) => d.id === device.id);
    const line = panel.body.querySelector('#device-panel-summary');
    if (fresh && line) line.replaceChildren(...deviceStatusLine(fresh));
  });
  panel.body.querySelector('input, select, button')?.focus();
}

function deviceStatusLine(dev) {
  return [h('span', { class: `badge badge-${dev.update.status}` }, STATUS_LABEL[dev.update.status] ?? dev.update.status), ' ', dev.update.summary];
}

function devicePanelContent(dev, panel, fill) {
  const via = reachedThrough(dev.protocol);
  const ecosystem = NAMED_BY_ECOSYSTEM.includes(dev.protocol);
  const own = OWN_CREDENTIALS.includes(dev.protocol);
  /** Runs a change; on success says `message`, shows the device again and refreshes the page. */
  const act = (button, work, message) => busy(button, panel.error, async () => {
    panel.clear();
    const result = await work();
    const fresh = result?.device ?? await api('GET', `/api/v1/devices/${enc(dev.id)}`);
    fill(fresh);
    panel.say(typeof message === 'function' ? message(fresh) : message);
    void reload().catch(() => undefined);
    return result;
  });

  const rename = h('input', { id: 'device-rename', name: 'device-rename', type: 'text', required: true, maxlength: 80, autocomplete: 'off', value: dev.name });
  const renameButton = h('button', { type: 'submit', class: 'secondary' }, 'Rename');
  const renameForm = ecosystem
    ? h('p', { class: 'hint', id: 'device-rename-note' }, `${dev.name} takes its name from ${via}: rename it there and Firmward shows the new name.`)
    : h('form', {
      class: 'inline-form',
      onsubmit: (e) => {
        e.preventDefault();
        const name = rename.value.trim();
        void act(renameButton, () => api('PATCH', `/api/v1/devices/${enc(dev.id)}`, { name }), (d) => `Renamed to ${d.name}.`);
      },
    }, field('device-rename', 'Name on the hub', { control: rename }), renameButton);

  const others = state.homes.filter((home) => home.id !== dev.homeId);
  const move = h('select', { id: 'device-move', name: 'device-move' }, others.map((home) => h('option', { value: home.id }, home.name)));
  const moveButton = h('button', { type: 'submit', class: 'secondary' }, 'Move');
  const moveForm = others.length === 0
    ? h('p', { class: 'hint' }, `${dev.name} is in ${homeName(dev.homeId)}, the only home. Add another home in Settings to move it there.`)
    : h('form', {
      class: 'inline-form',
      onsubmit: (e) => {
        e.preventDefault();
        const to = move.value;
        void act(moveButton, () => api('PATCH', `/api/v1/devices/${enc(dev.id)}`, { homeId: to }), (d) => `Moved to ${homeName(d.homeId)}; it follows that home's quiet hours now.`);
      },
    }, field('device-move', `Move from ${homeName(dev.homeId)} to`, { control: move }), moveButton);

  const ignoreButton = h('button', { type: 'button', class: 'secondary', id: 'device-ignore' }, dev.ignored ? 'Look after it again' : 'Leave this device alone');
  ignoreButton.addEventListener('click', () => void act(ignoreButton,
    () => api('PATCH', `/api/v1/devices/${enc(dev.id)}`, { ignored: !dev.ignored }),
    (d) => d.ignored ? `Firmward leaves ${d.name} alone now: it stays listed and is never updated from here.` : `Firmward looks after ${d.name} again.`));

  const credential = h('div', { class: 'credential', id: 'device-credential' });
  const rotateButton = h('button', { type: 'button', class: 'secondary', id: 'device-rotate' }, 'Give it a new secret…');
  rotateButton.addEventListener('click', () => void (async () => {
    const yes = await confirmAction({
      title: `A new secret for ${dev.name}?`,
      text: 'The old secret stops working at once: the device cannot reach the hub until it has the new one, which is shown here once.',
      yes: 'Make a new secret',
    });
    if (!yes) return;
    const issued = await act(rotateButton, () => api('POST', `/api/v1/devices/${enc(dev.id)}/credentials`, {}), 'A new secret is made; the old one no longer works.');
    if (issued) panel.body.querySelector('#device-credential')?.replaceChildren(credentialView(issued));
  })());
  const revokeButton = h('button', { type: 'button', class: 'danger', id: 'device-revoke' }, 'Revoke access…');
  revokeButton.addEventListener('click', () => void (async () => {
    const yes = await confirmAction({
      title: `Revoke ${dev.name}'s access?`,
      text: `${dev.name} can no longer reach the hub; it stays listed. To let it back in, give it a new secret.`,
      yes: 'Revoke access',
    });
    if (yes) await act(revokeButton, () => api('DELETE', `/api/v1/devices/${enc(dev.id)}/credentials`), (d) => `${d.name} can no longer reach the hub.`);
  })());

  const removeButton = h('button', { type: 'button', class: 'danger', id: 'device-remove' }, 'Remove…');
  removeButton.addEventListener('click', () => void (async () => {
    const yes = await confirmAction({
      title: `Remove ${dev.name}?`,
      text: `${dev.name} is taken off the hub and its access ends now; its history stays.${ecosystem ? ` ${via} still knows it, so it comes back when ${via} announces it: "Leave this device alone" keeps Firmward away from it instead.` : ''}`,
      yes: 'Remove the device',
    });
    if (!yes) return;
    await busy(removeButton, panel.error, async () => {
      panel.clear();
      await api('DELETE', `/api/v1/devices/${enc(dev.id)}`);
      state.focusAfterRender = 'add-device';
      panel.dialog.close();
      notify(`${dev.name} was removed from the hub.`);
      await reload();
    });
  })());

  return [
    h('p', { class: 'model' }, `${dev.vendor} ${dev.model}, hardware revision ${dev.hardwareRevision}, running ${dev.firmwareVersion}.`),
    h('p', { class: 'hint' }, `Reached through ${via}; device id ${dev.id}; in ${homeName(dev.homeId)}.`),
    h('p', { class: 'summary', id: 'device-panel-summary', 'aria-live': 'polite' }, deviceStatusLine(dev)),
    h('section', { class: 'panel-section', 'aria-labelledby': 'device-name-title' }, h('h3', { id: 'device-name-title' }, 'Name'), renameForm),
    h('section', { class: 'panel-section', 'aria-labelledby': 'device-home-title' }, h('h3', { id: 'device-home-title' }, 'Home'), moveForm),
    h('section', { class: 'panel-section', 'aria-labelledby': 'device-care-title' },
      h('h3', { id: 'device-care-title' }, 'Updates'),
      h('p', { class: 'hint' }, dev.ignored
        ? 'Firmward leaves this device alone: it stays listed and is never updated from here.'
        : 'Left alone, a device stays listed but Firmward never updates it (an update not yet started is called off).'),
      h('div', { class: 'actions' }, ignoreButton)),
    h('section', { class: 'panel-section', 'aria-labelledby': 'device-access-title' },
      h('h3', { id: 'device-access-title' }, 'Access to the hub'),
      own
        ? [h('p', { class: 'hint' }, 'A new secret replaces the old one at once (for a lost or leaked secret). Revoking shuts the device out until it gets a new one.'),
          h('div', { class: 'actions' }, rotateButton, revokeButton), credential]
        : h('p', { class: 'hint' }, `${dev.name} is reached through ${via}; its credentials are ${via}'s, not the hub's.`)),
    h('section', { class: 'panel-section', 'aria-labelledby': 'device-remove-title' },
      h('h3', { id: 'device-remove-title' }, 'Remove'),
      h('p', { class: 'hint' }, 'Not while it installs an update: the hub sees every install to its end.'),
      h('div', { class: 'actions' }, removeButton)),
  ];
}
