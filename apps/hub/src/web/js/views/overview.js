// The overview: the home's devices, a halted queue, the update that runs now.

import { h, notify } from '../dom.js';
import { currentHome, state } from '../state.js';
import { api, enc } from '../api.js';
import { formatTime } from '../format.js';
import { scheduleRefresh } from '../live.js';
import { firstHomeView } from './first-home.js';
import { pendingSection } from './pending.js';
import { deviceCard } from './device-card.js';
import { openAddDevice } from './add-device.js';

// The update's four steps; job states map onto them (DESIGN: download, install, restart, confirm).
const STEPS = [
  { label: 'Download', states: ['offered', 'downloading', 'downloaded'] },
  { label: 'Install', states: ['installing'] },
  { label: 'Restart', states: ['rebooting'] },
  { label: 'Confirm', states: ['confirming'] },
];

function overallPercent(update) {
  const p = update.progressPercent ?? 0;
  switch (update.jobState) {
    case 'offered': return 0;
    case 'downloading': return Math.round(p * 0.35);
    case 'downloaded': return 35;
    case 'installing': return 35 + Math.round(p * 0.4);
    case 'rebooting': return 80;
    case 'confirming': return 90;
    default: return 0;
  }
}

export function overviewView() {
  const home = currentHome();
  if (home === null) return firstHomeView();
  const active = state.devices.find((d) => d.update.status === 'updating');
  const addButton = (big) => h('button', {
    type: 'button', class: big ? 'cta' : undefined, 'data-key': 'add-device', onclick: (e) => openAddDevice(e.currentTarget),
  }, 'Add a device');
  return h('div', { class: 'overview' },
    h('h1', {}, home.name),
    h('p', { class: 'home-summary', id: 'home-summary' }, home.summary),
    home.halted ? haltedPanel(home) : null,
    active ? activePanel(active) : null,
    pendingSection(home),
    h('section', { 'aria-labelledby': 'devices-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'devices-title' }, `Devices (${state.devices.length})`),
        state.devices.length > 0 ? addButton(false) : null),
      state.devices.length === 0
        ? h('div', { class: 'card empty', id: 'no-devices' },
          h('p', {}, `${home.name} has no devices yet. Add the first one: a device that runs the Firmward agent, one that updates with SWUpdate (hawkBit), or the devices of a Zigbee2MQTT, Tasmota or Shelly installation.`),
          addButton(true))
        : h('ul', { class: 'devices' }, state.devices.map(deviceCard))));
}

function haltedPanel(home) {
  const device = state.devices.find((d) => d.id === home.halted.deviceId);
  const recovery = home.halted.recovery ?? device?.update.recovery ?? null;
  const act = (what) => () => {
    api('POST', `/api/v1/homes/${enc(home.id)}/${what}`, {})
      .then(() => { notify(what === 'resume' ? 'The queue goes on; the device will be tried again.' : 'The queue goes on without this update.'); scheduleRefresh(); })
      .catch((e) => notify(e.message, 'error'));
  };
  return h('section', { class: 'card halted', id: 'halted', 'aria-labelledby': 'halted-title' },
    h('h2', { id: 'halted-title' }, `Updates are paused: ${device?.name ?? home.halted.deviceId} failed`),
    h('p', {}, home.halted.message),
    h('p', { class: 'when' }, `At ${formatTime(home.halted.at)}.`),
    recovery ? h('div', { class: 'recovery' },
      h('h3', {}, `What to do (from the maker of the ${device ? `${device.vendor} ${device.model}` : 'device'})`),
      h('ol', { id: 'recovery-steps' }, recovery.steps.map((step) => h('li', {}, step))),
      recovery.supportUrl ? h('p', {}, 'Support: ', h('a', { href: recovery.supportUrl, rel: 'noopener noreferrer', target: '_blank' }, recovery.supportUrl)) : null,
      recovery.supportContact ? h('p', {}, recovery.supportContact) : null)
      : h('p', {}, 'The maker gives no recovery steps for this model.'),
    h('div', { class: 'actions' },
      h('button', { type: 'button', 'data-key': 'resume', onclick: act('resume') }, 'Retry and resume updates'),
      h('button', { type: 'button', class: 'secondary', 'data-key': 'skip', onclick: act('skip') }, 'Skip this update and go on')));
}

function activePanel(device) {
  const u = device.update;
  const current = STEPS.findIndex((s) => s.states.includes(u.jobState));
  const percent = overallPercent(u);
  return h('section', { class: 'card active', id: 'active-update', 'aria-labelledby': 'active-title' },
    h('h2', { id: 'active-title' }, `Updating ${device.name} to ${u.targetVersion}`),
    h('p', { class: 'warning', role: 'note' }, h('strong', {}, `Don't unplug the ${device.name} or power it off`), ' until this update has finished.'),
    h('ol', { class: 'steps', 'aria-label': 'Update steps' }, STEPS.map((step, i) => h('li', {
      class: i < current ? 'done' : i === current ? 'current' : 'todo',
      'aria-current': i === current ? 'step' : undefined,
    }, step.label))),
    h('label', { for: 'active-progress', class: 'progress-label' }, `Overall progress: ${percent} %`),
    h('progress', { id: 'active-progress', max: 100, value: percent }, `${percent} %`),
    h('p', { id: 'active-state', 'aria-live': 'polite' }, u.summary),
    u.overdue ? h('p', { class: 'warning' }, 'Taking longer than expected — leave it powered.') : null);
}
