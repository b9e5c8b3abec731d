// The household's dashboard: plain ES module, no build step. Everything it shows comes from the
// hub's JSON API (the same read models the CLI prints); it refetches when the hub's event stream
// says something happened, so the page stays live without reloading.

const $ = (selector) => document.querySelector(selector);
const main = $('#main');

const POLICIES = [
  ['automatic', 'Automatic: install every update in the quiet hours'],
  ['security-only', 'Security only: install security fixes automatically'],
  ['notify', 'Notify: tell me, I start updates myself'],
  ['manual', 'Manual: only when I press "Update now"'],
];
const STATUS_LABEL = {
  'up-to-date': 'Up to date', available: 'Available', queued: 'Queued', waiting: 'Waiting',
  updating: 'Updating', failed: 'Failed', unknown: 'Not reported yet',
};
// The update's four steps; job states map onto them (DESIGN: download, install, restart, confirm).
const STEPS = [
  { label: 'Download', states: ['offered', 'downloading', 'downloaded'] },
  { label: 'Install', states: ['installing'] },
  { label: 'Restart', states: ['rebooting'] },
  { label: 'Confirm', states: ['confirming'] },
];
const OUTCOMES = [
  ['', 'Every decision'], ['succeeded', 'Succeeded'], ['failed', 'Failed'], ['cancelled', 'Cancelled'],
  ['waiting', 'Held back (waiting)'], ['queued', 'Queued'], ['installing', 'Installing'],
];

const state = {
  session: null,
  homes: [],
  homeId: null,
  devices: [],
  events: [],
  historyFilter: { deviceId: '', to: '' },
  stream: null,
  pollTimer: null,
  refreshTimer: null,
};

/** Builds an element; strings become text nodes, so nothing from the API is ever parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function notify(text, kind = 'info') {
  const box = $('#notice');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = text === '';
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Writes carry the session's CSRF token (double submit); the cookie alone is not enough.
  if (method !== 'GET' && state.session?.csrfToken) headers['X-CSRF-Token'] = state.session.csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && path.startsWith('/api/')) {
      state.session = null;
      void showSignIn();
    }
    throw new HttpError(res.status, data?.error?.message ?? `The hub answered ${res.status}.`);
  }
  return data;
}

// ── sign-in ──────────────────────────────────────────────────────────────────────────────

async function start() {
  $('#sign-out').addEventListener('click', () => void signOut());
  window.addEventListener('hashchange', () => void render());
  const session = await api('GET', '/auth/session');
  if (session.signedIn) {
    state.session = session;
    await enterDashboard();
  } else {
    await showSignIn(session);
  }
}

async function showSignIn(known) {
  stopLive();
  const session = known ?? await api('GET', '/auth/session').catch(() => ({ account: true }));
  $('#nav').hidden = true;
  $('#sign-out').hidden = true;
  $('#live').hidden = true;
  $('#home-name').textContent = '';
  const first = !session.account;
  const field = (id, label, type, extra = {}) => h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, type, required: true, ...extra }));
  const error = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' });
  const form = h('form', { class: 'card sign-in', 'aria-describedby': 'sign-in-intro' },
    h('h1', {}, first ? 'Create the owner account' : 'Sign in'),
    h('p', { id: 'sign-in-intro' }, first
      ? 'This hub has no owner yet. Enter the owner token it printed when it first started (also in its data folder, file owner-token), then choose a user name and password.'
      : 'Sign in with the owner account to see and manage your devices.'),
    first ? field('owner-token', 'Owner token', 'password', { autocomplete: 'off' }) : null,
    field('username', 'User name', 'text', { autocomplete: 'username', autocapitalize: 'none' }),
    field('password', 'Password', 'password', {
      autocomplete: first ? 'new-password' : 'current-password', minlength: first ? 10 : undefined, 'aria-describedby': first ? 'password-hint' : undefined,
    }),
    first ? h('p', { class: 'hint', id: 'password-hint' }, 'At least 10 characters.') : null,
    error,
    h('button', { type: 'submit' }, first ? 'Create account and sign in' : 'Sign in'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { username: form.elements.username.value, password: form.elements.password.value };
    if (first) body.ownerToken = form.elements['owner-token'].value;
    api('POST', first ? '/auth/setup' : '/auth/login', body)
      .then(async (s) => {
        state.session = s;
        await enterDashboard();
      })
      .catch((e) => { error.textContent = e.message; });
  });
  main.replaceChildren(form);
  form.querySelector('input').focus();
}

async function signOut() {
  await api('POST', '/auth/logout').catch(() => undefined);
  state.session = null;
  notify('You are signed out.');
  await showSignIn();
}

async function enterDashboard() {
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  notify('');
  await refresh();
  startLive();
  await render();
}

// ── data and live updates ────────────────────────────────────────────────────────────────

async function refresh() {
  state.homes = await api('GET', '/api/v1/homes');
  if (!state.homes.some((home) => home.id === state.homeId)) state.homeId = state.homes[0]?.id ?? null;
  state.devices = state.homeId === null ? [] : await api('GET', `/api/v1/devices?homeId=${encodeURIComponent(state.homeId)}`);
  renderHomePicker();
}

/** With more than one home, a picker in the header; with one, just its name. */
function renderHomePicker() {
  const slot = $('#home-name');
  if (state.homes.length <= 1) {
    slot.textContent = currentHome()?.name ?? '';
    return;
  }
  if (slot.querySelector('select')?.dataset.homes === state.homes.map((home) => home.id).join(',')) return;
  const select = h('select', { id: 'home-select', 'aria-label': 'Home', 'data-homes': state.homes.map((home) => home.id).join(',') },
    state.homes.map((home) => h('option', { value: home.id, selected: home.id === state.homeId }, home.name)));
  select.addEventListener('change', () => {
    state.homeId = select.value;
    state.historyFilter.deviceId = '';
    void refresh().then(() => render()).catch((e) => notify(e.message, 'error'));
  });
  slot.replaceChildren(select);
}

function currentHome() {
  return state.homes.find((home) => home.id === state.homeId) ?? null;
}

function setLive(text, ok) {
  const live = $('#live');
  live.hidden = false;
  live.textContent = text;
  live.dataset.ok = String(ok);
}

function startLive() {
  stopLive();
  const stream = new EventSource('/api/v1/events/stream');
  state.stream = stream;
  stream.addEventListener('ready', () => setLive('● Live', true));
  stream.addEventListener('history', () => scheduleRefresh());
  // EventSource reconnects by itself; a refresh on reconnect catches what happened meanwhile.
  stream.addEventListener('error', () => {
    setLive('Reconnecting…', false);
    if (state.session === null) stopLive();
    else void api('GET', '/auth/session').then((s) => { if (!s.signedIn) void showSignIn(s); }).catch(() => undefined);
  });
  // Download and install progress moves between state changes without a history event, so
  // while an update runs the page also asks every two seconds.
  state.pollTimer = setInterval(() => {
    if (currentHome()?.activeJobId) scheduleRefresh();
  }, 2000);
}

function stopLive() {
  state.stream?.close();
  state.stream = null;
  clearInterval(state.pollTimer);
  clearTimeout(state.refreshTimer);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    void refresh().then(() => render({ live: true })).catch((e) => notify(e.message, 'error'));
  }, 150);
}

// ── views ────────────────────────────────────────────────────────────────────────────────

function currentView() {
  const view = location.hash.replace('#', '');
  return ['overview', 'history', 'fleet', 'settings'].includes(view) ? view : 'overview';
}

async function render({ live = false } = {}) {
  if (state.session === null) return;
  const view = currentView();
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Settings and the fleet view's bridge forms are being edited: a live refresh must not throw the
  // edits away (or move a button from under the pointer); they refresh after each action instead.
  if (live && (view === 'settings' || view === 'fleet')) return;
  // Keep keyboard focus on the same control across a live re-render.
  const focusKey = document.activeElement?.dataset?.key;
  let content;
  if (view === 'history') content = await historyView();
  else if (view === 'fleet') content = await fleetView();
  else if (view === 'settings') content = settingsView();
  else content = overviewView();
  main.replaceChildren(content);
  if (focusKey) main.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
  else if (!live) main.focus({ preventScroll: true });
}

function deviceName(deviceId) {
  return state.devices.find((d) => d.id === deviceId)?.name ?? deviceId;
}

function formatTime(at) {
  const zone = currentHome()?.settings.timeZone;
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(at));
}

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

function overviewView() {
  const home = currentHome();
  if (home === null) return h('section', {}, h('h1', {}, 'No home yet'), h('p', {}, 'The hub has no home in its store.'));
  const active = state.devices.find((d) => d.update.status === 'updating');
  return h('div', { class: 'overview' },
    h('h1', {}, home.name),
    h('p', { class: 'home-summary', id: 'home-summary' }, home.summary),
    home.halted ? haltedPanel(home) : null,
    active ? activePanel(active) : null,
    h('section', { 'aria-labelledby': 'devices-title' },
      h('h2', { id: 'devices-title' }, `Devices (${state.devices.length})`),
      h('ul', { class: 'devices' }, state.devices.map(deviceCard))));
}

function haltedPanel(home) {
  const device = state.devices.find((d) => d.id === home.halted.deviceId);
  const recovery = home.halted.recovery ?? device?.update.recovery ?? null;
  const act = (what) => () => {
    api('POST', `/api/v1/homes/${encodeURIComponent(home.id)}/${what}`, {})
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

function deviceCard(device) {
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
    h('p', { class: 'model' }, `${device.vendor} ${device.model}`),
    h('p', { class: 'versions' },
      h('span', { class: 'label' }, 'Installed '), device.firmwareVersion,
      device.availableVersion && device.availableVersion !== device.firmwareVersion
        ? [' → ', device.availableVersion, h('span', { class: 'label' }, ' available')]
        : h('span', { class: 'label' }, ' (latest)')),
    h('p', { class: 'summary' }, u.summary),
    canUpdate || preflightHeld ? h('div', { class: 'actions' },
      canUpdate ? h('button', { type: 'button', class: 'secondary', 'data-key': `update-${device.id}`, onclick: () => updateNow(device) }, 'Update now') : null,
      preflightHeld ? h('button', { type: 'button', class: 'danger', 'data-key': `force-${device.id}`, onclick: () => void force(device) }, 'Force…') : null) : null);
}

function updateNow(device) {
  api('POST', `/api/v1/devices/${encodeURIComponent(device.id)}/update`, {})
    .then(() => { notify(`${device.name}: queued; it still waits for every safety check.`); scheduleRefresh(); })
    .catch((e) => notify(`${device.name}: ${e.message}`, 'error'));
}

async function force(device) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = `Force the update of the ${device.name}?`;
  $('#confirm-text').textContent = `A safety check says not now: ${device.update.reasons.map((r) => r.message).join(' ')} Forcing starts it anyway and is recorded in the history as your decision.`;
  dialog.returnValue = '';
  const closed = new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  dialog.showModal();
  await closed;
  if (dialog.returnValue !== 'confirm') return;
  try {
    await api('POST', `/api/v1/devices/${encodeURIComponent(device.id)}/force`, { confirm: true });
    notify(`${device.name}: forced; the update starts now.`);
    scheduleRefresh();
  } catch (e) {
    notify(`${device.name}: ${e.message}`, 'error');
  }
}

// ── fleet: where firmware comes from, how devices are reached, staged rollouts ───────────

async function fleetView() {
  const [health, rollouts, bridges] = await Promise.all([api('GET', '/api/v1/health'), api('GET', '/api/v1/rollouts'), api('GET', '/api/v1/bridges')]);
  const act = (rollout, action) => () => {
    api('POST', `/api/v1/rollouts/${encodeURIComponent(rollout.id)}/${action}`, {})
      .then((next) => { notify(`${rollout.releaseId}: ${next.summary}`); void render(); })
      .catch((e) => notify(e.message, 'error'));
  };
  const button = (rollout, action, label, danger = false) =>
    h('button', { type: 'button', ...(danger && { class: 'danger' }), 'data-key': `${action}-${rollout.id}`, onclick: act(rollout, action) }, label);
  return h('div', { class: 'fleet' },
    h('h1', {}, 'Fleet'),
    h('section', { 'aria-labelledby': 'sources-title' },
      h('h2', { id: 'sources-title' }, 'Where firmware comes from'),
      health.repositories.length === 0
        ? h('p', {}, 'No signed release repository is configured: no release reaches a device.')
        : h('ul', { class: 'sources' }, health.repositories.map((r) =>
          h('li', { 'data-repository': r.name },
            h('strong', {}, r.name), ' — ',
            r.trusted ? 'signed by its maker and verified.' : h('span', { class: 'refused' }, `refused (${r.code}): ${r.message}`)))),
      h('p', {}, `Devices are reached through: ${health.gateway.split('+').join(', ')}.`)),
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

const BRIDGE_TITLES = { zigbee2mqtt: 'Zigbee2MQTT', tasmota: 'Tasmota', shelly: 'Shelly', homeAssistant: 'Home Assistant' };

/** On and running, on but still trying to reach its broker (the status line says why), or off. */
function bridgeState(bridge) {
  if (!bridge.enabled) return '(off)';
  const state = bridge.status?.state ?? 'running';
  return state === 'running' ? '(on)' : state === 'off' ? '(on, not running)' : '(on, not running yet)';
}

function bridgeForm(bridge) {
  const id = (field) => `bridge-${bridge.name}-${field}`;
  const enabled = h('input', { type: 'checkbox', id: id('enabled'), checked: bridge.enabled });
  const url = h('input', { type: 'text', id: id('url'), value: bridge.url, placeholder: 'mqtt://192.168.1.5:1883' });
  const username = h('input', { type: 'text', id: id('username'), value: bridge.username, autocomplete: 'off' });
  const home = bridge.name === 'homeAssistant' ? null
    : h('select', { id: id('home') }, [h('option', { value: '' }, '—'), ...state.homes.map((home) => h('option', { value: home.id, selected: home.id === bridge.homeId }, home.name))]);
  const save = (event) => {
    event.preventDefault();
    const patch = { enabled: enabled.checked, url: url.value.trim(), username: username.value.trim(), ...(home && { homeId: home.value }) };
    api('PATCH', `/api/v1/bridges/${encodeURIComponent(bridge.name)}`, patch)
      .then((next) => { notify(`${BRIDGE_TITLES[bridge.name]}: ${next.enabled ? 'on' : 'off'}.`); void render(); })
      .catch((e) => notify(e.message, 'error'));
  };
  return h('li', { 'data-bridge': bridge.name },
    h('form', { class: 'bridge', onsubmit: save },
      h('h3', {}, BRIDGE_TITLES[bridge.name] ?? bridge.name, ' ', h('span', { class: 'bridge-state' }, bridgeState(bridge))),
      bridge.status?.message ? h('p', { class: 'hint bridge-status' }, bridge.status.message) : null,
      h('label', { for: id('enabled') }, enabled, ' Turned on'),
      h('label', { for: id('url') }, 'Broker ', url),
      h('label', { for: id('username') }, 'User name ', username, bridge.passwordSet ? ' (password set)' : ''),
      home ? h('label', { for: id('home') }, 'Devices join ', home) : null,
      h('button', { type: 'submit', 'data-key': `save-${bridge.name}` }, 'Save')));
}

async function historyView() {
  const f = state.historyFilter;
  const params = new URLSearchParams({ limit: '300' });
  if (state.homeId) params.set('homeId', state.homeId);
  if (f.deviceId) params.set('deviceId', f.deviceId);
  if (f.to) params.set('to', f.to);
  const events = await api('GET', `/api/v1/events?${params}`);
  const select = (id, label, options, value, key) => h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('select', { id, 'data-key': id, onchange: (e) => { f[key] = e.target.value; void render(); } },
      options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
  return h('section', { 'aria-labelledby': 'history-title' },
    h('h1', { id: 'history-title' }, 'History'),
    h('p', {}, 'Every decision the hub made and every action a person took, newest first, with the reason.'),
    h('div', { class: 'filters' },
      select('filter-device', 'Device', [['', 'All devices'], ...state.devices.map((d) => [d.id, d.name])], f.deviceId, 'deviceId'),
      select('filter-outcome', 'Outcome', OUTCOMES, f.to, 'to')),
    events.length === 0 ? h('p', { id: 'history-empty' }, 'Nothing recorded for this choice yet.') : h('div', { class: 'table-wrap' },
      h('table', { id: 'history-table' },
        h('caption', { class: 'visually-hidden' }, 'History of decisions'),
        h('thead', {}, h('tr', {}, ['When', 'Device', 'What', 'Why', 'Who'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, events.map((e) => h('tr', {},
          h('td', { class: 'when' }, formatTime(e.at)),
          h('td', {}, e.deviceId ? deviceName(e.deviceId) : '—'),
          h('td', {}, e.to ? h('span', { class: `badge badge-${e.to}` }, e.to) : e.kind),
          h('td', {}, e.message),
          h('td', {}, e.actor)))))));
}

function settingsView() {
  const home = currentHome();
  if (home === null) return h('p', {}, 'No home yet.');
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
    input('time-zone', 'Time zone', { type: 'text', value: s.timeZone, required: true, autocomplete: 'off', 'aria-describedby': 'time-zone-hint' }, 'For example Europe/Berlin.'),
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
      timeZone: el['time-zone'].value.trim(),
      thresholds: { minBatteryPercent: Number(el['min-battery'].value), minSignalDbm: Number(el['min-signal'].value) },
    };
    api('PATCH', `/api/v1/homes/${encodeURIComponent(home.id)}/settings`, patch)
      .then(async () => { notify('Home settings saved.'); await refresh(); await render(); })
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
      api('PATCH', `/api/v1/devices/${encodeURIComponent(d.id)}/settings`, { policy: value === '' ? null : value })
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
      h('ul', { class: 'device-settings' }, deviceRows)));
}

start().catch((e) => {
  main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The dashboard could not start: ${e.message}`));
});
