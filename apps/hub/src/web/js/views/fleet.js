// The fleet: where firmware comes from, how devices are reached, staged rollouts.

import { h, notify } from '../dom.js';
import { render } from '../screen.js';
import { api, enc } from '../api.js';
import { addRepositoryForm, repositoryItem } from './repositories.js';
import { ddiSection } from './ddi-settings.js';
import { bridgeForm } from './bridges.js';

export async function fleetView() {
  const [health, repositories, rollouts, bridges, ddi] = await Promise.all([
    api('GET', '/api/v1/health'), api('GET', '/api/v1/repositories'), api('GET', '/api/v1/rollouts'), api('GET', '/api/v1/bridges'),
    api('GET', '/api/v1/ddi').catch(() => null),
  ]);
  const act = (rollout, action) => () => {
    api('POST', `/api/v1/rollouts/${enc(rollout.id)}/${action}`, {})
      .then((next) => { notify(`${rollout.releaseId}: ${next.summary}`); void render({ keepFocus: true }); })
      .catch((e) => notify(e.message, 'error'));
  };
  const button = (rollout, action, label, danger = false) =>
    h('button', { type: 'button', ...(danger && { class: 'danger' }), 'data-key': `${action}-${rollout.id}`, onclick: act(rollout, action) }, label);
  return h('div', { class: 'fleet' },
    h('h1', {}, 'Fleet'),
    h('section', { 'aria-labelledby': 'sources-title' },
      h('h2', { id: 'sources-title' }, 'Where firmware comes from'),
      repositories.length === 0
        ? h('p', {}, 'No signed release repository is configured: no release reaches a device. Add the maker\'s repository below.')
        : h('ul', { class: 'sources' }, repositories.map(repositoryItem)),
      h('p', {}, `Devices are reached through: ${health.gateway.split('+').join(', ')}.`),
      addRepositoryForm(repositories.length === 0)),
    ddiSection(ddi),
    h('section', { 'aria-labelledby': 'bridges-title' },
      h('h2', { id: 'bridges-title' }, 'Bridges to other systems'),
      h('p', {}, 'Devices that Zigbee2MQTT, Tasmota or Shelly firmware manage, and Home Assistant\'s view of every device. Passwords are set in the hub\'s config file or environment, not here.'),
      h('ul', { class: 'bridges' }, bridges.map(bridgeForm))),
    h('section', { 'aria-labelledby': 'rollouts-title' },
      h('h2', { id: 'rollouts-title' }, 'Staged rollouts'),
      rollouts.length === 0
        ? h('p', {}, 'None. A release reaches every home at once unless a rollout stages it (firmward rollout start).')
        : h('ul', { class: 'rollouts' }, rollouts.map((r) => h('li', { 'data-rollout': r.id },
          h('h3', {}, r.releaseId),
          h('p', { class: 'rollout-summary' }, r.summary),
          h('p', {}, `Waves: ${r.rules.waves.map((pct, i) => `${pct} % (${r.homesPerWave[i]} homes)${i === r.wave ? ' ◀' : ''}`).join(' → ')}`),
          h('div', { class: 'actions' },
            r.state === 'running' ? button(r, 'pause', 'Pause') : null,
            r.state === 'paused' || r.state === 'stopped' ? button(r, 'resume', 'Resume') : null,
            r.state !== 'aborted' && r.state !== 'completed' ? button(r, 'abort', 'Call off', true) : null))))));
}
