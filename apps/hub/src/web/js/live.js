// Live updates: the hub's event stream, the poll while an update runs, and the refresh they
// schedule.

import { $, notify } from './dom.js';
import { currentHome, state } from './state.js';
import { currentView, render, showSignIn } from './screen.js';
import { api } from './api.js';
import { refresh } from './refresh.js';

function setLive(text, ok) {
  const live = $('#live');
  live.hidden = false;
  live.textContent = text;
  live.dataset.ok = String(ok);
}

export function startLive() {
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

export function stopLive() {
  state.stream?.close();
  state.stream = null;
  clearInterval(state.pollTimer);
  clearTimeout(state.refreshTimer);
}

export function scheduleRefresh() {
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
