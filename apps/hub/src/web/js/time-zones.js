// Time zones: the browser's own, and a picker of every zone it knows.

import { h } from './dom.js';

/** The browser's own zone, preselected wherever a time zone is picked. */
export function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** Every IANA zone this browser knows, with `current` first when the list lacks it. */
function timeZones(current) {
  const zones = typeof Intl.supportedValuesOf === 'function' ? [...Intl.supportedValuesOf('timeZone')] : [];
  for (const zone of [browserZone(), current]) if (zone && !zones.includes(zone)) zones.unshift(zone);
  return zones;
}

export function zoneSelect(id, selected, attrs = {}) {
  return h('select', { id, name: id, required: true, ...attrs },
    timeZones(selected).map((zone) => h('option', { value: zone, selected: zone === selected }, zone.replaceAll('_', ' '))));
}
