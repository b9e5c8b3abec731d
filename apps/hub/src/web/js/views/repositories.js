// The signed release repositories on the fleet page: their trust, refresh, removal, and adding one.

import { h, notify } from '../dom.js';
import { render } from '../screen.js';
import { api, enc } from '../api.js';
import { formatTime, plural, who } from '../format.js';
import { busy, errorLine, field } from '../forms.js';
import { confirmAction } from '../dialogs.js';

export function repositoryItem(r) {
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
    // A release whose image at the maker's server did not verify is withheld (never offered, nothing halts): say which and why.
    (r.refusedImages ?? []).length === 0 ? null : h('ul', { class: 'refused-images' }, r.refusedImages.map((i) =>
      h('li', { 'data-release': i.releaseId }, h('span', { class: 'refused' }, `${i.releaseId} withheld (${i.code}): ${i.message}`), ` Next try ${formatTime(i.retryAt)}.`))),
    h('p', { class: 'hint' }, `${plural(r.releases, 'release')}; ${read}; ${from}.`),
    error,
    h('div', { class: 'actions' }, refreshButton, removeButton));
}

/** Open at once on a hub with no repository; folded away (a disclosure) once there is one. */
export function addRepositoryForm(open) {
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
