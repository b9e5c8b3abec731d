// What the page knows: one object every module reads and the refresh writes, and the look-ups
// the views share.

export const state = {
  session: null,
  homes: [],
  homeId: null,
  devices: [],
  /** Devices waiting for approval, in every home (and those that asked for none). */
  pending: [],
  /** What a person typed into a waiting device's fields, kept across live re-renders. */
  pendingDrafts: new Map(),
  events: [],
  historyFilter: { deviceId: '', to: '' },
  stream: null,
  pollTimer: null,
  refreshTimer: null,
  /** Called after every refresh while an open dialog shows something that may change (an enrollment code used). */
  liveHooks: new Set(),
  /** What the last refresh saw, so a live refresh that changed nothing leaves the page alone. */
  seen: '',
  /** The control (by data-key) that gets focus after the next render, instead of the page. */
  focusAfterRender: null,
};

export function currentHome() {
  return state.homes.find((home) => home.id === state.homeId) ?? null;
}

export function homeName(homeId) {
  return state.homes.find((home) => home.id === homeId)?.name ?? homeId;
}

export function deviceName(deviceId) {
  return state.devices.find((d) => d.id === deviceId)?.name ?? deviceId;
}
