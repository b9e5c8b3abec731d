// Text a person copies to a device: a read-only field with its Copy button.

import { h } from './dom.js';

/** A read-only text a person copies to the device, with its Copy button. */
export function copyField(id, label, text, { multiline = false, hint = null } = {}) {
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

export async function copyText(text, button) {
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
