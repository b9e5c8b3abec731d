// A credential the hub shows once.

import { h } from '../dom.js';
import { copyField } from '../copy.js';

/** A credential the hub shows once: an agent's MQTT secret, or a hawkBit device's TargetToken. */
export function credentialView(c) {
  if (c.kind === 'hawkbit') {
    const command = `swupdate -k maker-cert.pem -f /etc/swupdate.cfg -u '-t ${c.tenant} -u ${location.origin} -i ${c.controllerId} -k ${c.targetToken}'`;
    return h('div', { class: 'shown-once', id: 'hawkbit-credential' },
      h('p', { class: 'once' }, h('strong', {}, 'Shown only now: '), 'the hub keeps only a fingerprint of this TargetToken. Write it down or put it on the device before you close this.'),
      copyField('target-token', 'TargetToken', c.targetToken),
      h('p', {}, `Tenant ${c.tenant}, controller id ${c.controllerId}.`),
      copyField('swupdate-command', 'SWUpdate (suricatta) command', command, {
        multiline: true, hint: 'The token goes after -k inside -u; -k maker-cert.pem outside it is the maker\'s signing certificate.',
      }));
  }
  const broker = c.broker.url ?? `mqtt://${location.hostname}:${c.broker.port}`;
  return h('div', { class: 'shown-once', id: 'mqtt-credential' },
    h('p', { class: 'once' }, h('strong', {}, 'Shown only now: '), 'the hub keeps only a hash of this secret.'),
    copyField('mqtt-username', 'User name', c.username),
    copyField('mqtt-secret', 'Secret', c.secret, { hint: 'Put it, as one line, into the file the agent\'s hub.passwordFile names, then restart the agent.' }),
    h('p', {}, `Broker: ${broker}.`));
}
