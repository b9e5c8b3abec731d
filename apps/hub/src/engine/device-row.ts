import type { Device } from '@firmward/core';

/** A device as the core knows it, without what the store adds (online, last seen, the last report). */
export function stripRow(row: Device & { online?: unknown; lastSeenAt?: unknown; report?: unknown }): Device {
  return {
    id: row.id, homeId: row.homeId, name: row.name, vendor: row.vendor, model: row.model, hardwareRevision: row.hardwareRevision,
    firmwareVersion: row.firmwareVersion, policy: row.policy, thresholds: row.thresholds, schedules: row.schedules,
  };
}
