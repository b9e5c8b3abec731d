// The overview of a hub with no home yet: make the first one.

import { h } from '../dom.js';
import { newHomeForm } from './new-home-form.js';

/** A hub with no home yet: the first thing to do is to make one. */
export function firstHomeView() {
  return h('section', { class: 'first-home', 'aria-labelledby': 'first-home-title' },
    h('h1', { id: 'first-home-title' }, 'Create your first home'),
    h('p', {}, 'A home is a place with its own devices and quiet hours. Firmward updates one device of a home at a time, and only in its quiet hours, so nobody is woken by a restarting light.'),
    newHomeForm('first-home', { submitLabel: 'Create the home', autofocus: true }));
}
