// The household's dashboard: plain ES module, no build step. Everything it shows comes from the
// hub's JSON API (the same read models the CLI prints); it refetches when the hub's event stream
// says something happened, so the page stays live without reloading. Every refusal shown is the
// hub's own sentence (error.message); the page adds no reasons of its own.

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
  updating: 'Updating', failed: 'Failed', ignored: 'Left alone', unknown: 'Not reported yet',
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
/** How the hub reaches a device (DeviceView.protocol), as a person reads it. */
const PROTOCOL_LABEL = {
  agent: 'Firmward agent', ddi: 'hawkBit (SWUpdate)', hawkbit: 'hawkBit (SWUpdate)',
  zigbee2mqtt: 'Zigbee2MQTT', tasmota: 'Tasmota', shelly: 'Shelly',
};

function protocolLabel(protocol) {
  return PROTOCOL_LABEL[protocol] ?? protocol;
}

/** "Reached through the Firmward agent", "… through Zigbee2MQTT". */
function reachedThrough(protocol) {
  return protocol === 'agent' ? 'the Firmward agent' : protocolLabel(protocol);
}
/** Devices of these ecosystems take their names from the ecosystem; the hub refuses to rename them. */
const NAMED_BY_ECOSYSTEM = ['zigbee2mqtt', 'tasmota', 'shelly'];
/** Only these have credentials the hub issued (and can rotate or revoke). */
const OWN_CREDENTIALS = ['agent', 'ddi'];
const ENROLLMENT_LIFETIMES = [[15, '15 minutes'], [60, 'An hour'], [24 * 60, 'A day'], [7 * 24 * 60, 'A week']];
const DEFAULT_WINDOW = { start: '01:00', end: '05:00' };
const NEW_HOME = '__new__';

const state = {
  session: null,
  homes: [],
  homeId: null,
  devices: [],
  /** Devices waiting for approval, in every home (and those that asked for none). */
  pending: [],
  /** What a person typed into a waiting device's fields, kept across live re-renders. */
  pendingDrafts: new Map(),
  events: [],
  historyFilter: { deviceId: '', to: '' },
  stream: null,
  pollTimer: null,
  refreshTimer: null,
  /** Called after every refresh while an open dialog shows something that may change (an enrollment code used). */
  liveHooks: new Set(),
  /** What the last refresh saw, so a live refresh that changed nothing leaves the page alone. */
  seen: '',
  /** The control (by data-key) that gets focus after the next render, instead of the page. */
  focusAfterRender: null,
};

/** Builds an element; strings become text nodes, so nothing from the API is ever parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    // A textarea has no value attribute: its default text is its content.
    else if (key === 'value' && tag === 'textarea') el.defaultValue = String(value);
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
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
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
    throw new HttpError(res.status, data?.error?.message ?? `The hub answered ${res.status}.`, data?.error?.code);
  }
  return data;
}

const enc = encodeURIComponent;

/** "person:owner" → "you": the history's actors as the owner reads them. */
function who(actor) {
  if (actor === 'person:owner') return 'you';
  if (actor === 'device') return 'the device';
  return actor.replace(/^person:/, '');
}

function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

// ── form pieces ──────────────────────────────────────────────────────────────────────────

/** A labelled input (or select/textarea passed as `control`), with an optional hint tied to it. */
function field(id, label, attrs = {}, hint = null) {
  const describedBy = hint ? `${id}-hint` : undefined;
  const control = attrs.control ?? h(attrs.tag ?? 'input', { id, name: id, 'aria-describedby': describedBy, ...withoutKeys(attrs, ['control', 'tag']) });
  if (attrs.control && describedBy) control.setAttribute('aria-describedby', describedBy);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: describedBy }, hint) : null);
}

function withoutKeys(object, keys) {
  return Object.fromEntries(Object.entries(object).filter(([k]) => !keys.includes(k)));
}

/** Where a form says what went wrong: the hub's sentence, read out at once. */
function errorLine(id) {
  return h('p', { class: 'error', role: 'alert', id });
}

function showError(el, message) {
  el.textContent = message;
  if (message) el.scrollIntoView({ block: 'nearest' });
}

/**
 * Runs one action of a form or button: the button is disabled while the hub answers, a refusal
 * goes to `error` in the hub's words.
 */
async function busy(button, error, work) {
  if (error) error.textContent = '';
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (e) {
    if (error) showError(error, e.message);
    else notify(e.message, 'error');
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

/** The browser's own zone, preselected wherever a time zone is picked. */
function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Every IANA zone this browser knows, with `current` first when the list lacks it. */
function timeZones(current) {
  const zones = typeof Intl.supportedValuesOf === 'function' ? [...Intl.supportedValuesOf('timeZone')] : [];
  for (const zone of [browserZone(), current]) if (zone && !zones.includes(zone)) zones.unshift(zone);
  return zones;
}

function zoneSelect(id, selected, attrs = {}) {
  return h('select', { id, name: id, required: true, ...attrs },
    timeZones(selected).map((zone) => h('option', { value: zone, selected: zone === selected }, zone.replaceAll('_', ' '))));
}

/** A read-only text a person copies to the device, with its Copy button. */
function copyField(id, label, text, { multiline = false, hint = null } = {}) {
  const control = multiline
    ? h('textarea', { id, readonly: true, rows: 3, spellcheck: 'false', class: 'mono' })
    : h('input', { id, type: 'text', readonly: true, spellcheck: 'false', class: 'mono' });
  control.value = text;
  control.addEventListener('focus', () => control.select());
  // The button is "Copy"; what it copies is its description (the field's label).
  return h('div', { class: 'field copy-field' },
    h('label', { for: id, id: `${id}-label` }, label),
    h('div', { class: 'copy-row' }, control,
      h('button', { type: 'button', class: 'secondary', 'aria-describedby': `${id}-label`, onclick: (e) => void copyText(text, e.currentTarget) }, 'Copy')),
    hint ? h('p', { class: 'hint' }, hint) : null);
}

async function copyText(text, button) {
  let copied = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      copied = true;
    }
  } catch {
    copied = false;
  }
  if (!copied) {
    // A hub on the LAN is plain http, where browsers offer no clipboard API: the old way still
    // works. Inside a modal dialog, since everything outside it is inert.
    const area = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    (button.closest('dialog') ?? document.body).append(area);
    area.select();
    copied = document.execCommand('copy');
    area.remove();
    button.focus();
  }
  const label = button.textContent;
  button.textContent = copied ? 'Copied' : 'Select and copy it';
  setTimeout(() => { button.textContent = label; }, 2500);
}

// ── dialogs ──────────────────────────────────────────────────────────────────────────────

/**
 * Asks before an action that cannot be undone (the page's one confirmation dialog). Cancel is the
 * first button, so Enter on an unexpected dialog does nothing harmful.
 */
async function confirmAction({ title, text, yes }) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-yes').textContent = yes;
  dialog.returnValue = '';
  const closed = new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
  dialog.showModal();
  await closed;
  return dialog.returnValue === 'confirm';
}

/**
 * A panel over the page (a modal <dialog> outside <main>, so live re-renders of the page leave
 * what it shows alone — a code shown once must not vanish). Focus goes back to the control that
 * opened it, found again by its data-key when the page was re-rendered meanwhile.
 */
function openPanel(id, title, { wide = false, opener = null } = {}) {
  const old = $(`#${id}`);
  if (old) {
    old.close();
    old.remove();
  }
  const openerKey = opener?.dataset?.key ?? null;
  const heading = h('h2', { id: `${id}-title` }, title);
  const status = h('p', { class: 'panel-status', role: 'status', id: `${id}-status` });
  const error = errorLine(`${id}-error`);
  const body = h('div', { class: 'panel-body' });
  const dialog = h('dialog', { id, class: wide ? 'panel wide' : 'panel', 'aria-labelledby': `${id}-title` },
    h('div', { class: 'panel-head' }, heading,
      h('button', { type: 'button', class: 'secondary', 'data-close': true, onclick: () => dialog.close() }, 'Close')),
    status, error, body);
  const panel = {
    dialog, heading, body, error,
    say(text) {
      status.textContent = text;
      if (text) status.scrollIntoView({ block: 'nearest' });
    },
    fail(text) { showError(error, text); },
    clear() {
      status.textContent = '';
      error.textContent = '';
    },
    hooks: [],
  };
  dialog.addEventListener('close', () => {
    for (const hook of panel.hooks) state.liveHooks.delete(hook);
    dialog.remove();
    const back = openerKey ? main.querySelector(`[data-key="${CSS.escape(openerKey)}"]`) : null;
    if (back) back.focus();
    else if (opener?.isConnected) opener.focus();
    // Its control is gone (the device was moved or removed): the page, not the void.
    else main.focus({ preventScroll: true });
  });
  document.body.append(dialog);
  dialog.showModal();
  return panel;
}

/** Something a panel refreshes after every live refresh while it is open. */
function onLive(panel, hook) {
  panel.hooks.push(hook);
  state.liveHooks.add(hook);
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
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
  const session = known ?? await api('GET', '/auth/session').catch(() => ({ account: true }));
  $('#nav').hidden = true;
  $('#sign-out').hidden = true;
  $('#live').hidden = true;
  $('#home-name').textContent = '';
  const first = !session.account;
  const input = (id, label, type, extra = {}) => h('div', { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, type, required: true, ...extra }));
  const error = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' });
  const form = h('form', { class: 'card sign-in', 'aria-describedby': 'sign-in-intro' },
    h('h1', {}, first ? 'Create the owner account' : 'Sign in'),
    h('p', { id: 'sign-in-intro' }, first
      ? 'This hub has no owner yet. Enter the owner token it printed when it first started (also in its data folder, file owner-token), then choose a user name and password.'
      : 'Sign in with the owner account to see and manage your devices.'),
    first ? input('owner-token', 'Owner token', 'password', { autocomplete: 'off' }) : null,
    input('username', 'User name', 'text', { autocomplete: 'username', autocapitalize: 'none' }),
    input('password', 'Password', 'password', {
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

/** Reads what the views show; true when it differs from what the last refresh saw. */
async function refresh() {
  const [homes, pending] = await Promise.all([api('GET', '/api/v1/homes'), api('GET', '/api/v1/pending-devices')]);
  state.homes = homes;
  state.pending = pending;
  if (!state.homes.some((home) => home.id === state.homeId)) state.homeId = state.homes[0]?.id ?? null;
  state.devices = state.homeId === null ? [] : await api('GET', `/api/v1/devices?homeId=${enc(state.homeId)}`);
  for (const id of state.pendingDrafts.keys()) if (!state.pending.some((p) => p.id === id)) state.pendingDrafts.delete(id);
  renderHomePicker();
  const seen = JSON.stringify([state.homeId, state.homes, state.pending, state.devices]);
  const changed = seen !== state.seen;
  state.seen = seen;
  return changed;
}

/** With more than one home, a picker in the header; with one, just its name. */
function renderHomePicker() {
  const slot = $('#home-name');
  if (state.homes.length <= 1) {
    slot.textContent = currentHome()?.name ?? '';
    return;
  }
  // Rebuilt only when the homes change: a person arrowing through it keeps the focus.
  const signature = state.homes.map((home) => `${home.id}=${home.name}`).join(',');
  const kept = slot.querySelector('select');
  if (kept?.dataset.homes === signature) {
    kept.value = state.homeId;
    return;
  }
  const select = h('select', { id: 'home-select', 'aria-label': 'Home', 'data-homes': signature },
    state.homes.map((home) => h('option', { value: home.id, selected: home.id === state.homeId }, home.name)));
  select.addEventListener('change', () => void switchHome(select.value));
  slot.replaceChildren(select);
}

async function switchHome(homeId) {
  state.homeId = homeId;
  state.historyFilter.deviceId = '';
  try {
    await refresh();
    await render();
  } catch (e) {
    notify(e.message, 'error');
  }
}

function currentHome() {
  return state.homes.find((home) => home.id === state.homeId) ?? null;
}

function homeName(homeId) {
  return state.homes.find((home) => home.id === homeId)?.name ?? homeId;
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
  // Every change the hub records (a device asking to join, an update moving on) is a history line.
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
    void refresh()
      .then(async (changed) => {
        // The history view shows lines that change nothing else (a code made, a repository read).
        if (changed || currentView() === 'history') await render({ live: true });
        for (const hook of state.liveHooks) hook();
      })
      .catch((e) => notify(e.message, 'error'));
  }, 150);
}

/** After a person's action: read again and show it (their own change is not a "live" one). */
async function reload() {
  await refresh();
  await render({ keepFocus: true });
}

// ── views ────────────────────────────────────────────────────────────────────────────────

function currentView() {
  const view = location.hash.replace('#', '');
  return ['overview', 'history', 'fleet', 'settings'].includes(view) ? view : 'overview';
}

async function render({ live = false, keepFocus = false } = {}) {
  if (state.session === null) return;
  const view = currentView();
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Settings and the fleet view's forms are being edited: a live refresh must not throw the
  // edits away (or move a button from under the pointer); they refresh after each action instead.
  if (live && (view === 'settings' || view === 'fleet')) return;
  // Keep keyboard focus (and the caret in a text field) on the same control across a re-render.
  const active = main.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = active?.dataset?.key;
  const caret = active && typeof active.selectionStart === 'number' ? [active.selectionStart, active.selectionEnd] : null;
  let content;
  if (view === 'history') content = await historyView();
  else if (view === 'fleet') content = await fleetView();
  else if (view === 'settings') content = settingsView();
  else content = overviewView();
  main.replaceChildren(content);
  const panelOpen = document.querySelector('dialog[open]') !== null;
  const wanted = state.focusAfterRender;
  state.focusAfterRender = null;
  if (wanted && !panelOpen && main.querySelector(`[data-key="${CSS.escape(wanted)}"]`)) {
    main.querySelector(`[data-key="${CSS.escape(wanted)}"]`).focus();
  } else if (focusKey) {
    const again = main.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
    again?.focus();
    if (again && caret) again.setSelectionRange?.(caret[0], caret[1]);
  } else if (!live && !keepFocus && !panelOpen) {
    const first = main.querySelector('[data-autofocus]');
    if (first) first.focus();
    else main.focus({ preventScroll: true });
  }
}

function deviceName(deviceId) {
  return state.devices.find((d) => d.id === deviceId)?.name ?? deviceId;
}

function formatTime(at, zone = currentHome()?.settings.timeZone) {
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(at));
}

/** "Tue 14:32 (Europe/Berlin)": a deadline in the home's own time. */
function formatDeadline(at, zone) {
  const text = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: zone }).format(new Date(at));
  return zone ? `${text} (${zone.replaceAll('_', ' ')})` : text;
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

// ── overview ─────────────────────────────────────────────────────────────────────────────

function overviewView() {
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

/** A hub with no home yet: the first thing to do is to make one. */
function firstHomeView() {
  return h('section', { class: 'first-home', 'aria-labelledby': 'first-home-title' },
    h('h1', { id: 'first-home-title' }, 'Create your first home'),
    h('p', {}, 'A home is a place with its own devices and quiet hours. Firmward updates one device of a home at a time, and only in its quiet hours, so nobody is woken by a restarting light.'),
    newHomeForm('first-home', { submitLabel: 'Create the home', autofocus: true }));
}

/** The form for a new home: name, time zone (the browser's preselected), quiet hours. */
function newHomeForm(prefix, { submitLabel, autofocus = false }) {
  const error = errorLine(`${prefix}-error`);
  const submit = h('button', { type: 'submit' }, submitLabel);
  const form = h('form', { class: 'card new-home', id: `${prefix}-form` },
    field(`${prefix}-name`, 'Name of the home', { type: 'text', required: true, maxlength: 80, autocomplete: 'off', placeholder: 'Flat', 'data-autofocus': autofocus || undefined }),
    field(`${prefix}-zone`, 'Time zone', { control: zoneSelect(`${prefix}-zone`, browserZone()) },
      `Quiet hours are kept in this zone. This browser is in ${browserZone().replaceAll('_', ' ')}.`),
    h('fieldset', {}, h('legend', {}, 'Quiet hours (updates only run in this window)'),
      h('div', { class: 'row' },
        field(`${prefix}-start`, 'From', { type: 'time', value: DEFAULT_WINDOW.start, required: true }),
        field(`${prefix}-end`, 'Until', { type: 'time', value: DEFAULT_WINDOW.end, required: true }))),
    error,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const el = form.elements;
    const body = {
      name: el[`${prefix}-name`].value.trim(),
      timeZone: el[`${prefix}-zone`].value,
      window: { start: el[`${prefix}-start`].value, end: el[`${prefix}-end`].value },
    };
    void busy(submit, error, async () => {
      const home = await api('POST', '/api/v1/homes', body);
      state.homeId = home.id;
      await refresh();
      notify(`${home.name} is ready. Add its first device.`);
      state.focusAfterRender = 'add-device';
      // From Settings the new home's overview opens (the hash change renders it).
      if (currentView() !== 'overview') location.hash = '#overview';
      else await render();
    });
  });
  return form;
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

// ── devices waiting for approval ─────────────────────────────────────────────────────────

/** This home's waiting devices, and those that asked for no home (they need one picked). */
function pendingSection(home) {
  const waiting = state.pending.filter((p) => p.state === 'waiting' && (p.homeId === home.id || p.homeId === null));
  if (waiting.length === 0) return null;
  return h('section', { class: 'card pending', id: 'pending', 'aria-labelledby': 'pending-title' },
    h('h2', { id: 'pending-title' }, `Waiting for your approval (${waiting.length})`),
    h('p', { class: 'hint' }, 'These devices asked to join. Approve only a device you are setting up yourself: once approved, it may get firmware from this hub.'),
    h('ul', { class: 'pending-list' }, waiting.map(pendingItem)));
}

function pendingItem(p) {
  const draft = state.pendingDrafts.get(p.id) ?? {};
  const remember = (key, value) => state.pendingDrafts.set(p.id, { ...state.pendingDrafts.get(p.id), [key]: value });
  const nameId = `pending-${p.id}-name`;
  const homeId = `pending-${p.id}-home`;
  const error = errorLine(`pending-${p.id}-error`);
  const name = h('input', {
    id: nameId, name: nameId, type: 'text', required: true, maxlength: 80, autocomplete: 'off', 'data-key': nameId, value: draft.name ?? p.name,
    oninput: (e) => remember('name', e.target.value),
  });
  const homePick = p.homeId === null
    ? h('select', { id: homeId, name: homeId, 'data-key': homeId, onchange: (e) => remember('homeId', e.target.value) },
      h('option', { value: '', disabled: true, selected: !draft.homeId }, 'Pick a home'),
      state.homes.map((home) => h('option', { value: home.id, selected: draft.homeId === home.id }, home.name)))
    : null;
  const approve = h('button', { type: 'submit', 'data-key': `approve-${p.id}`, 'aria-label': `Approve ${p.name}` }, 'Approve');
  const reject = h('button', { type: 'button', class: 'danger', 'data-key': `reject-${p.id}`, 'aria-label': `Reject ${p.name}` }, 'Reject');
  const form = h('form', { class: 'pending-form' },
    h('div', { class: 'row' },
      field(nameId, 'Name', { control: name }),
      homePick ? field(homeId, 'Home it joins', { control: homePick }) : null),
    error,
    h('div', { class: 'actions' }, approve, reject));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = {};
    const newName = name.value.trim();
    if (newName !== '' && newName !== p.name) body.name = newName;
    // None picked: the hub says what is missing, in its own words.
    if (homePick && homePick.value !== '') body.homeId = homePick.value;
    void busy(approve, error, async () => {
      const device = await api('POST', `/api/v1/pending-devices/${enc(p.id)}/approve`, body);
      state.pendingDrafts.delete(p.id);
      notify(`${device.name} joined ${homeName(device.homeId)}.`);
      await reload();
    });
  });
  reject.addEventListener('click', () => void busy(reject, error, async () => {
    await api('POST', `/api/v1/pending-devices/${enc(p.id)}/reject`, {});
    state.pendingDrafts.delete(p.id);
    notify(`${p.name} was not let in.`);
    await reload();
  }));
  return h('li', { class: 'pending-device', 'data-pending': p.id, 'aria-labelledby': `pending-${p.id}-title` },
    h('div', { class: 'device-head' },
      h('h3', { id: `pending-${p.id}-title` }, p.name),
      h('span', { class: 'badge badge-waiting' }, p.protocol === 'hawkbit' ? 'hawkBit' : 'Firmward agent')),
    h('p', { class: 'summary' }, p.summary),
    h('p', { class: 'when' }, `Asked at ${formatTime(p.requestedAt)}. Device id ${p.deviceId}.`),
    form);
}

// ── devices ──────────────────────────────────────────────────────────────────────────────

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

/**
 * One device's menu: rename, move, leave alone, rotate or revoke its credential, remove. Each
 * action's answer (or refusal) is said at the top of the panel; the panel then shows the device
 * as the hub sees it now.
 */
function openDevicePanel(device, opener) {
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

/** A credential the hub shows once: an agent's MQTT secret, or a hawkBit device's TargetToken. */
function credentialView(c) {
  if (c.kind === 'hawkbit') {
    const command = `swupdate -k maker-cert.pem -f /etc/swupdate.cfg -u '-t ${c.tenant} -u ${location.origin} -i ${c.controllerId} -k ${c.targetToken}'`;
    return h('div', { class: 'shown-once', id: 'hawkbit-credential' },
      h('p', { class: 'once' }, h('strong', {}, 'Shown only now: '), 'the hub keeps only a fingerprint of this TargetToken. Write it down or put it on the device before you close this.'),
      copyField('target-token', 'TargetToken', c.targetToken),
      h('p', {}, `Tenant ${c.tenant}, controller id ${c.controllerId}.`),
      copyField('swupdate-command', 'SWUpdate (suricatta) command', command, {
        multiline: true, hint: 'The token goes after -k inside -u; -k maker-cert.pem outside it is the maker\'s signing certificate.',
      }));
  }
  const broker = c.broker.url ?? `mqtt://${location.hostname}:${c.broker.port}`;
  return h('div', { class: 'shown-once', id: 'mqtt-credential' },
    h('p', { class: 'once' }, h('strong', {}, 'Shown only now: '), 'the hub keeps only a hash of this secret.'),
    copyField('mqtt-username', 'User name', c.username),
    copyField('mqtt-secret', 'Secret', c.secret, { hint: 'Put it, as one line, into the file the agent\'s hub.passwordFile names, then restart the agent.' }),
    h('p', {}, `Broker: ${broker}.`));
}

// ── adding devices ───────────────────────────────────────────────────────────────────────

const ADD_KINDS = [
  ['agent', 'It runs the Firmward agent', 'Make a one-time code and enter it on the device.'],
  ['hawkbit', 'It updates with SWUpdate (hawkBit)', 'Register it here; it gets its own TargetToken.'],
  ['bridge', 'It is in Zigbee2MQTT, Tasmota or Shelly', 'Its devices join through a bridge.'],
];

function openAddDevice(opener) {
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

function agentPanel(home, panel) {
  const zone = home.settings.timeZone;
  const minutes = h('select', { id: 'enroll-minutes', name: 'enroll-minutes' },
    ENROLLMENT_LIFETIMES.map(([value, label]) => h('option', { value, selected: value === 60 }, label)));
  const make = h('button', { type: 'submit' }, 'Make an enrollment code');
  const result = h('div', { class: 'enrollment', id: 'enrollment' });
  const open = h('div', { class: 'open-codes', id: 'open-codes' });
  let made = null;

  const showCodes = async () => {
    const codes = (await api('GET', `/api/v1/enrollments?homeId=${enc(home.id)}`)).filter((e) => e.state === 'open');
    if (made && !codes.some((e) => e.id === made.id)) {
      const used = state.pending.find((p) => p.homeId === home.id && p.state === 'waiting');
      $('#enrollment-state')?.replaceChildren(used
        ? `Used: ${used.name} asked to join and waits for your approval on the overview. Close this to approve it.`
        : 'This code is used up or withdrawn.');
    }
    open.replaceChildren(...codes.length === 0 ? [h('p', { class: 'hint' }, 'No open codes.')] : [
      h('h3', {}, `Open codes (${codes.length})`),
      h('ul', { class: 'codes' }, codes.map((e) => {
        const withdraw = h('button', { type: 'button', class: 'secondary', 'aria-label': `Withdraw the code made at ${formatTime(e.createdAt, zone)}` }, 'Withdraw');
        withdraw.addEventListener('click', () => void busy(withdraw, panel.error, async () => {
          await api('DELETE', `/api/v1/enrollments/${enc(e.id)}`);
          panel.say('The code was withdrawn; it no longer works.');
          await showCodes();
        }));
        return h('li', { 'data-enrollment': e.id },
          h('span', {}, `Made ${formatTime(e.createdAt, zone)} by ${who(e.createdBy)}; works until ${formatDeadline(e.expiresAt, zone)}.`), withdraw);
      }))]);
  };
  onLive(panel, () => void showCodes().catch(() => undefined));

  const form = h('form', { class: 'inline-form', id: 'enroll-form' }, field('enroll-minutes', 'The code works for', { control: minutes }), make);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(make, panel.error, async () => {
      panel.clear();
      made = await api('POST', `/api/v1/homes/${enc(home.id)}/enrollments`, { expiresInMinutes: Number(minutes.value) });
      result.replaceChildren(
        h('p', { class: 'code-label', id: 'enrollment-code-label' }, 'Enrollment code'),
        h('div', { class: 'code-row' },
          h('p', { class: 'code', id: 'enrollment-code', 'aria-labelledby': 'enrollment-code-label' }, made.code),
          h('button', { type: 'button', class: 'secondary', 'aria-describedby': 'enrollment-code-label', onclick: (e) => void copyText(made.code, e.currentTarget) }, 'Copy')),
        h('p', { class: 'once' }, h('strong', {}, 'Shown only now, and it works once: '),
          `one device can join ${made.homeName} with it until ${formatDeadline(made.expiresAt, zone)}. The hub keeps only a fingerprint of it.`),
        copyField('enrollment-payload', 'Enrollment payload', made.payload, { hint: 'Hub address, home and code in one line: what the agent\'s --payload takes, or a QR code carries.' }),
        copyField('enrollment-command', 'Command on the device', made.agentCommand, { multiline: true }),
        h('p', { id: 'enrollment-state', role: 'status', class: 'hint' }, 'Waiting for a device to use it… It then shows up on the overview under "Waiting for your approval".'));
      make.textContent = 'Make another code';
      await showCodes();
      $('#enrollment-code')?.scrollIntoView({ block: 'nearest' });
    });
  });
  void showCodes().catch((e) => panel.fail(e.message));
  return h('div', {},
    h('p', {}, 'The device joins with a one-time code: run ', h('code', {}, 'firmward-agent enroll'), ' on it with the code, then approve it here.'),
    form, result, open);
}

function hawkbitPanel(home, panel) {
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

function bridgePanel(panel) {
  return h('div', {},
    h('p', {}, 'Devices that a Zigbee2MQTT, Tasmota or Shelly installation manages come in through its bridge: turn the bridge on, give it the broker, and pick the home its devices join. They then show up here by themselves.'),
    h('p', {}, h('a', { href: '#fleet', id: 'to-bridges', onclick: () => panel.dialog.close() }, 'Set up a bridge'), ' (on the Fleet page).'));
}

// ── fleet: where firmware comes from, how devices are reached, staged rollouts ───────────

async function fleetView() {
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

function repositoryItem(r) {
  const error = errorLine(`repository-${r.name}-error`);
  const refreshButton = h('button', { type: 'button', class: 'secondary', 'data-key': `refresh-${r.name}`, 'aria-label': `Refresh ${r.name} now` }, 'Refresh now');
  refreshButton.addEventListener('click', () => void busy(refreshButton, error, async () => {
    const next = await api('POST', `/api/v1/repositories/${enc(r.name)}/refresh`, {});
    notify(next.trusted ? `${next.name}: read again; ${plural(next.releases, 'release')}.` : `${next.name}: refused (${next.code}): ${next.message}`, next.trusted ? 'info' : 'error');
    await render({ keepFocus: true });
  }));
  const removeButton = r.origin === 'added'
    ? h('button', { type: 'button', class: 'danger', 'data-key': `remove-${r.name}`, 'aria-label': `Remove ${r.name}…` }, 'Remove…')
    : null;
  removeButton?.addEventListener('click', () => void (async () => {
    const yes = await confirmAction({
      title: `Remove the repository ${r.name}?`,
      text: `Its releases are no longer offered to any device, and what the hub trusted of it is dropped: added again later, trust starts from the root given then.`,
      yes: 'Remove the repository',
    });
    if (yes) {
      await busy(removeButton, error, async () => {
        await api('DELETE', `/api/v1/repositories/${enc(r.name)}`);
        notify(`${r.name} was removed; its releases are no longer offered.`);
        await render({ keepFocus: true });
      });
    }
  })());
  const read = r.refreshedAt === null ? 'not read yet' : `last read ${formatTime(r.refreshedAt)}`;
  const from = r.origin === 'config' ? 'set in the config file' : `added${r.addedAt ? ` ${formatTime(r.addedAt)}` : ''}${r.addedBy ? ` by ${who(r.addedBy)}` : ''}`;
  return h('li', { 'data-repository': r.name, class: 'repository' },
    h('div', { class: 'device-head' },
      h('h3', {}, r.name),
      h('span', { class: `badge ${r.trusted ? 'badge-up-to-date' : r.code ? 'badge-failed' : 'badge-offline'}` }, r.trusted ? 'Trusted' : r.code ? 'Refused' : 'Not read yet')),
    h('p', { class: 'url' }, r.url),
    h('p', {}, r.trusted ? 'Trusted: signed by its maker and verified.' : h('span', { class: 'refused' }, r.code ? `refused (${r.code}): ${r.message}` : r.message ?? 'Not read yet.')),
    h('p', { class: 'hint' }, `${plural(r.releases, 'release')}; ${read}; ${from}.`),
    error,
    h('div', { class: 'actions' }, refreshButton, removeButton));
}

/** Open at once on a hub with no repository; folded away (a disclosure) once there is one. */
function addRepositoryForm(open) {
  const error = errorLine('repository-add-error');
  const root = h('textarea', { id: 'repository-root', name: 'repository-root', rows: 5, required: true, spellcheck: 'false', class: 'mono', placeholder: '{"signed": {"_type": "root", …}, "signatures": […]}' });
  const file = h('input', { id: 'repository-file', name: 'repository-file', type: 'file', accept: '.json,application/json' });
  file.addEventListener('change', () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    // Read here and sent as text: the hub checks it is a TUF root (and its size) itself.
    chosen.text().then((text) => { root.value = text; }).catch((e) => { error.textContent = e.message; });
  });
  const add = h('button', { type: 'submit' }, 'Add the repository');
  const form = h('form', { id: 'repository-add', 'aria-labelledby': 'repository-add-title' },
    h('p', { class: 'hint' }, 'The maker gives you its repository\'s address and its root.json (usually 1.root.json). Trust starts from that file, never from one fetched from the address.'),
    h('div', { class: 'row' },
      field('repository-name', 'Name', { type: 'text', required: true, maxlength: 64, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', placeholder: 'acme' }),
      field('repository-url', 'Address (URL)', { type: 'text', inputmode: 'url', required: true, maxlength: 2048, spellcheck: 'false', autocapitalize: 'none', placeholder: 'https://updates.example.com/tuf/' })),
    field('repository-root', 'The maker\'s root.json, pasted', { control: root }),
    field('repository-file', 'Or choose the root.json file', { control: file }),
    error,
    h('div', { class: 'actions' }, add));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = { name: form.elements['repository-name'].value.trim(), url: form.elements['repository-url'].value.trim(), root: root.value };
    void busy(add, error, async () => {
      const added = await api('POST', '/api/v1/repositories', body);
      notify(added.trusted ? `${added.name} was added; ${plural(added.releases, 'release')} verified.` : `${added.name} was added but is refused for now (${added.code}): ${added.message}`, added.trusted ? 'info' : 'error');
      await render({ keepFocus: true });
    });
  });
  return h('details', { class: 'card add-repository', open },
    h('summary', {}, h('h3', { id: 'repository-add-title' }, 'Add a repository')),
    form);
}

/** Who may register as a hawkBit device (only when the hub's hawkBit device API is on). */
function ddiSection(ddi) {
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

const BRIDGE_TITLES = { zigbee2mqtt: 'Zigbee2MQTT', tasmota: 'Tasmota', shelly: 'Shelly', homeAssistant: 'Home Assistant' };

/** On and running, on but still trying to reach its broker (the status line says why), or off. */
function bridgeState(bridge) {
  if (!bridge.enabled) return '(off)';
  const running = bridge.status?.state ?? 'running';
  return running === 'running' ? '(on)' : running === 'off' ? '(on, not running)' : '(on, not running yet)';
}

function bridgeForm(bridge) {
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

// ── history ──────────────────────────────────────────────────────────────────────────────

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

// ── settings ─────────────────────────────────────────────────────────────────────────────

function settingsView() {
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

/** Every home: renamed, deleted (with its devices), and a form for another one. */
function homesSection() {
  return h('section', { class: 'card', id: 'homes', 'aria-labelledby': 'homes-title' },
    h('h2', { id: 'homes-title' }, 'Homes'),
    state.homes.length === 0 ? h('p', {}, 'No home yet.') : h('ul', { class: 'homes' }, state.homes.map(homeRow)),
    h('h3', { id: 'add-home-title' }, state.homes.length === 0 ? 'Create a home' : 'Add another home'),
    newHomeForm('add-home', { submitLabel: 'Add the home' }));
}

function homeRow(home) {
  const id = `home-${home.id}-name`;
  const error = errorLine(`home-${home.id}-error`);
  const name = h('input', { id, name: id, type: 'text', required: true, maxlength: 80, autocomplete: 'off', value: home.name });
  const save = h('button', { type: 'submit', class: 'secondary', 'aria-label': `Save the name of ${home.name}` }, 'Save name');
  const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${home.name}…` }, 'Delete…');
  const form = h('form', { class: 'inline-form' }, field(id, `Rename ${home.name}`, { control: name }), save, remove);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(save, error, async () => {
      const renamed = await api('PATCH', `/api/v1/homes/${enc(home.id)}`, { name: name.value.trim() });
      notify(`The home is called ${renamed.name} now.`);
      await reload();
    });
  });
  remove.addEventListener('click', () => void busy(remove, error, async () => {
    const devices = await api('GET', `/api/v1/devices?homeId=${enc(home.id)}`);
    const names = new Map(devices.map((d) => [d.id, d.name]));
    const yes = await confirmAction({
      title: `Delete ${home.name}?`,
      text: devices.length === 0
        ? `${home.name} has no devices. Its history stays.`
        : `Its ${plural(devices.length, 'device')} (${devices.map((d) => d.name).join(', ')}) are taken off the hub with it and lose their access at once; updates not yet started are called off. Its history stays.`,
      yes: 'Delete the home',
    });
    if (!yes) return;
    const gone = await api('DELETE', `/api/v1/homes/${enc(home.id)}`);
    const removed = gone.devicesRemoved.map((deviceId) => names.get(deviceId) ?? deviceId);
    notify(`${home.name} was deleted${removed.length > 0 ? `, with ${plural(removed.length, 'device')}: ${removed.join(', ')}` : ''}${gone.updatesCancelled > 0 ? `; ${plural(gone.updatesCancelled, 'update')} called off` : ''}.`);
    await reload();
  }));
  return h('li', { 'data-home': home.id },
    form,
    h('p', { class: 'hint' }, `${plural(home.deviceCount, 'device')}; time zone ${home.settings.timeZone}; quiet hours ${home.settings.window.start}–${home.settings.window.end}.`),
    error);
}

start().catch((e) => {
  main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The dashboard could not start: ${e.message}`));
});
