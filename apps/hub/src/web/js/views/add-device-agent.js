// Adding a device that runs the Firmward agent: one-time enrollment codes.

import { $, h } from '../dom.js';
import { state } from '../state.js';
import { api, enc } from '../api.js';
import { formatDeadline, formatTime, who } from '../format.js';
import { busy, field } from '../forms.js';
import { copyField, copyText } from '../copy.js';
import { onLive } from '../dialogs.js';

const ENROLLMENT_LIFETIMES = [[15, '15 minutes'], [60, 'An hour'], [24 * 60, 'A day'], [7 * 24 * 60, 'A week']];

export function agentPanel(home, panel) {
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
