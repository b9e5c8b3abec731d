// Form pieces: labelled fields, the line where a refusal is said, and the busy button.

import { h, notify } from './dom.js';

/** A labelled input (or select/textarea passed as `control`), with an optional hint tied to it. */
export function field(id, label, attrs = {}, hint = null) {
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
export function errorLine(id) {
  return h('p', { class: 'error', role: 'alert', id });
}

export function showError(el, message) {
  el.textContent = message;
  if (message) el.scrollIntoView({ block: 'nearest' });
}

/**
 * Runs one action of a form or button: the button is disabled while the hub answers, a refusal
 * goes to `error` in the hub's words.
 */
export async function busy(button, error, work) {
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
