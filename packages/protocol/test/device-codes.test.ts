/**
 * Which device codes end an update and which only make it wait: the one table the agent, the
 * bridges and the hub share (issue 18). Pinned here code by code, so changing what a code means is
 * a visible decision.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEVICE_CODES, deviceCodeKind, isDeviceCode, isTemporary } from '../src/index.ts';
import type { DeviceCodeKind } from '../src/index.ts';

const EXPECTED: Record<DeviceCodeKind, string[]> = {
  not_now: [
    'battery_low', 'battery_unknown', 'power_unstable', 'signal_weak', 'signal_unstable', 'storage_low', 'insufficient_storage',
    'device_busy', 'device_asleep', 'not_now', 'busy', 'update_in_progress',
  ],
  // The hub, the repository or the network out of reach, or a response cut off: never the device's fault.
  unreachable: ['hub_unreachable', 'repository_unreachable', 'image_unavailable', 'unknown_job'],
  no_verdict: ['cancel_too_late', 'not_downloaded', 'job_finished', 'not_running'],
  // What the device verified to be wrong, or an install or boot that failed.
  final: [
    'not_signed', 'signature_invalid', 'metadata_expired', 'metadata_rollback', 'metadata_invalid', 'metadata_too_large', 'outside_delegation',
    'image_hash_mismatch', 'image_length_mismatch', 'image_url_invalid', 'image_url_too_long',
    'incompatible', 'model_mismatch', 'hardware_mismatch', 'not_applicable_from', 'downgrade', 'retracted', 'already_up_to_date',
    'version_invalid', 'version_ambiguous', 'version_unknown', 'job_cancelled', 'declined', 'device_cancelled',
    'failed', 'internal', 'slot_changed', 'switch_failed', 'boot_failed', 'rolled_back', 'unhealthy', 'unexpected_version',
    'version_unchanged', 'not_installed', 'install_failed', 'update_failed', 'update_refused', 'update_interrupted', 'upgrade_refused', 'upgrade_failed', 'ota_error',
  ],
};

test('every code has the kind the table says, and the table has no code left unpinned', () => {
  const pinned = new Set<string>();
  for (const [kind, codes] of Object.entries(EXPECTED) as [DeviceCodeKind, string[]][]) {
    for (const code of codes) {
      assert.ok(isDeviceCode(code), `${code} is a device code`);
      assert.equal(deviceCodeKind(code), kind, code);
      assert.equal(isTemporary(code), kind === 'not_now' || kind === 'unreachable', code);
      pinned.add(code);
    }
  }
  assert.deepEqual(Object.keys(DEVICE_CODES).filter((c) => !pinned.has(c)), []);
});

test('a code outside the table, or none, is final: a failure nobody understands is never turned into a retry', () => {
  for (const code of ['made_up_by_a_vendor', '', 'toString', '__proto__', null]) {
    assert.equal(deviceCodeKind(code), 'final', String(code));
    assert.equal(isTemporary(code), false);
  }
});
