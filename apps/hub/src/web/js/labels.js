// Words for the hub's codes: an update's status, how a device is reached.

export const STATUS_LABEL = {
  'up-to-date': 'Up to date', available: 'Available', queued: 'Queued', waiting: 'Waiting',
  updating: 'Updating', failed: 'Failed', ignored: 'Left alone', unknown: 'Not reported yet',
};

/** How the hub reaches a device (DeviceView.protocol), as a person reads it. */
const PROTOCOL_LABEL = {
  agent: 'Firmward agent', ddi: 'hawkBit (SWUpdate)', hawkbit: 'hawkBit (SWUpdate)',
  zigbee2mqtt: 'Zigbee2MQTT', tasmota: 'Tasmota', shelly: 'Shelly',
};

export function protocolLabel(protocol) {
  return PROTOCOL_LABEL[protocol] ?? protocol;
}

/** "Reached through the Firmward agent", "… through Zigbee2MQTT". */
export function reachedThrough(protocol) {
  return protocol === 'agent' ? 'the Firmward agent' : protocolLabel(protocol);
}
