// Signing in and out: the owner account form (first run) or the sign-in form, and the way into
// the dashboard.

import { $, h, main, notify } from '../dom.js';
import { state } from '../state.js';
import { render } from '../screen.js';
import { api } from '../api.js';
import { refresh } from '../refresh.js';
import { startLive, stopLive } from '../live.js';

export async function showSignIn(known) {
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

export async function signOut() {
  await api('POST', '/auth/logout').catch(() => undefined);
  state.session = null;
  notify('You are signed out.');
  await showSignIn();
}

export async function enterDashboard() {
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  notify('');
  await refresh();
  startLive();
  await render();
}
