// The household's dashboard: plain ES modules, no build step. Everything it shows comes from the
// hub's JSON API (the same read models the CLI prints); it refetches when the hub's event stream
// says something happened, so the page stays live without reloading. Every refusal shown is the
// hub's own sentence (error.message); the page adds no reasons of its own.
//
// This entry only wires the page: js/ holds the pieces below the views (dom, api, state, live
// updates), js/views/ one file per part of the page. The hub serves every file of this folder
// under its own fixed route (apps/hub/src/http/web-assets.ts).

import { $, h, main } from './js/dom.js';
import { state } from './js/state.js';
import { bindScreen } from './js/screen.js';
import { api } from './js/api.js';
import { render } from './js/views/render.js';
import { enterDashboard, showSignIn, signOut } from './js/views/sign-in.js';

bindScreen({ render, showSignIn });

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

start().catch((e) => {
  main.replaceChildren(h('p', { class: 'error', role: 'alert' }, `The dashboard could not start: ${e.message}`));
});
