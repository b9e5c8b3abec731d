// Draws the view the address names into <main>, keeping keyboard focus where a person had it.

import { main } from '../dom.js';
import { state } from '../state.js';
import { currentView } from '../screen.js';
import { overviewView } from './overview.js';
import { fleetView } from './fleet.js';
import { historyView } from './history.js';
import { settingsView } from './settings.js';

export async function render({ live = false, keepFocus = false } = {}) {
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
