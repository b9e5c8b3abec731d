// Dialogs: the page's one confirmation, and the panels that open over the page.

import { $, h, main } from './dom.js';
import { state } from './state.js';
import { errorLine, showError } from './forms.js';

/**
 * Asks before an action that cannot be undone (the page's one confirmation dialog). Cancel is the
 * first button, so Enter on an unexpected dialog does nothing harmful.
 */
export async function confirmAction({ title, text, yes }) {
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
export function openPanel(id, title, { wide = false, opener = null } = {}) {
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
export function onLive(panel, hook) {
  panel.hooks.push(hook);
  state.liveHooks.add(hook);
}
