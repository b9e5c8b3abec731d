// A device on the overview: its status, versions, and the update buttons.

import { h, notify } from '../dom.js';
import { currentHome } from '../state.js';
import { api, enc } from '../api.js';
import { STATUS_LABEL, protocolLabel } from '../labels.js';
import { confirmAction } from '../dialogs.js';
import { scheduleRefresh } from '../live.js';
import { openDevicePanel } from './device-manage.js';

export function deviceCard(device) {
  const u = device.update;
  const canUpdate = device.availableVersion !== null && ['available', 'waiting', 'queued'].includes(u.status);
  // Force passes a failing safety check, never the one-update-per-home rule: no offer while another runs.
  const preflightHeld = u.status === 'waiting' && !u.reasons.some((r) => r.code.startsWith('policy_')) && !currentHome()?.activeJobId;
  const id = `device-${device.id}`;
  return h('li', { class: `card device status-${u.status}`, id, 'aria-labelledby': `${id}-name`, 'data-device': device.id },
    h('div', { class: 'device-head' },
      h('h3', { id: `${id}-name` }, device.name),
      h('span', { class: `badge badge-${u.status}` }, STATUS_LABEL[u.status] ?? u.status),
      u.vulnerabilities.length > 0 ? h('span', { class: 'badge badge-vulnerable', title: u.vulnerabilities.map((v) => v.id).join(', ') }, 'Vulnerable') : null,
      device.online ? null : h('span', { class: 'badge badge-offline' }, 'Offline')),
    h('p', { class: 'model' }, `${device.vendor} ${device.model}`, h('span', { class: 'via' }, ` · ${protocolLabel(device.protocol)}`)),
    h('p', { class: 'versions' },
      h('span', { class: 'label' }, 'Installed '), device.firmwareVersion,
      device.availableVersion && device.availableVersion !== device.firmwareVersion
        ? [' → ', device.availableVersion, h('span', { class: 'label' }, ' available')]
        : h('span', { class: 'label' }, ' (latest)')),
    h('p', { class: 'summary' }, u.summary),
    h('div', { class: 'actions' },
      canUpdate ? h('button', { type: 'button', class: 'secondary', 'data-key': `update-${device.id}`, onclick: () => updateNow(device) }, 'Update now') : null,
      preflightHeld ? h('button', { type: 'button', class: 'danger', 'data-key': `force-${device.id}`, onclick: () => void force(device) }, 'Force…') : null,
      h('button', {
        type: 'button', class: 'quiet manage', 'data-key': `manage-${device.id}`, 'aria-label': `Manage ${device.name}…`, 'aria-haspopup': 'dialog',
        onclick: (e) => openDevicePanel(device, e.currentTarget),
      }, 'Manage…')));
}

function updateNow(device) {
  api('POST', `/api/v1/devices/${enc(device.id)}/update`, {})
    .then(() => { notify(`${device.name}: queued; it still waits for every safety check.`); scheduleRefresh(); })
    .catch((e) => notify(`${device.name}: ${e.message}`, 'error'));
}

async function force(device) {
  const yes = await confirmAction({
    title: `Force the update of the ${device.name}?`,
    text: `A safety check says not now: ${device.update.reasons.map((r) => r.message).join(' ')} Forcing starts it anyway and is recorded in the history as your decision.`,
    yes: 'Force the update',
  });
  if (!yes) return;
  try {
    await api('POST', `/api/v1/devices/${enc(device.id)}/force`, { confirm: true });
    notify(`${device.name}: forced; the update starts now.`);
    scheduleRefresh();
  } catch (e) {
    notify(`${device.name}: ${e.message}`, 'error');
  }
}
