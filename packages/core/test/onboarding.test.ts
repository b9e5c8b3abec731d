import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Device, JobState } from '@firmward/core';
import {
  CANCELLABLE_STATES, DEFAULT_THRESHOLDS, DEFAULT_WINDOW, JOB_STATES, TERMINAL_STATES, changeRefusal, checkName, homeIdFor, isFirmwardError, planReleases,
} from '@firmward/core';
import type { DeviceChange } from '@firmward/core';
import { release } from './fixtures.ts';

const CHANGES: DeviceChange[] = ['remove', 'move', 'ignore', 'delete-home', 'revoke'];

describe('changeRefusal (invariant 6: an install is never taken away from a device)', () => {
  test('every state × change: refused exactly from the install step on, with a code and the device named', () => {
    for (const state of JOB_STATES) {
      for (const change of CHANGES) {
        const refusal = changeRefusal(change, 'Kitchen plug', { state, targetVersion: '1.2.0' });
        const allowed = TERMINAL_STATES.includes(state) || CANCELLABLE_STATES.includes(state);
        if (allowed) {
          assert.equal(refusal, null, `${change} in ${state}`);
        } else {
          assert.ok(isFirmwardError(refusal, 'update_in_progress'), `${change} in ${state} is refused`);
          assert.match(refusal.message, /Kitchen plug is installing 1\.2\.0 right now/);
        }
      }
    }
    assert.equal(changeRefusal('remove', 'x', null), null);
  });

  test('the install step and after: installing, rebooting, confirming', () => {
    const refused = JOB_STATES.filter((s: JobState) => changeRefusal('remove', 'x', { state: s, targetVersion: '1' }) !== null);
    assert.deepEqual(refused, ['installing', 'rebooting', 'confirming']);
  });
});

describe('homeIdFor', () => {
  test('short, typeable, unique', () => {
    assert.equal(homeIdFor('Flat 3B', new Set()), 'flat-3b');
    assert.equal(homeIdFor('Flat 3B', new Set(['flat-3b'])), 'flat-3b-2');
    assert.equal(homeIdFor('Flat 3B', new Set(['flat-3b', 'flat-3b-2'])), 'flat-3b-3');
    assert.equal(homeIdFor('Ferienhaus Müller', new Set()), 'ferienhaus-muller');
    assert.equal(homeIdFor('  ***  ', new Set()), 'home');
  });

  test('property: always matches the id pattern, is at most 48 characters, never taken', () => {
    fc.assert(fc.property(fc.string({ maxLength: 120 }), fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,48}$/), { maxLength: 20 }), (name, taken) => {
      const set = new Set(taken);
      const id = homeIdFor(name, set);
      assert.match(id, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/);
      assert.ok(id.length <= 48);
      assert.ok(!set.has(id));
    }));
  });
});

describe('checkName', () => {
  test('trims, folds spaces, refuses empty and long names', () => {
    assert.equal(checkName('home', '  My   flat '), 'My flat');
    assert.throws(() => checkName('device', '   '), (e: unknown) => isFirmwardError(e, 'invalid_input'));
    assert.throws(() => checkName('device', 'x'.repeat(81)), (e: unknown) => isFirmwardError(e, 'invalid_input'));
  });
});

describe('planner: a device a person set aside', () => {
  test('is never planned, says why, and is still flagged when vulnerable', () => {
    const device: Device = {
      id: 'd1', homeId: 'h1', name: 'Plug', vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', policy: null, thresholds: {}, schedules: [],
    };
    const fix = release({ version: '1.1.0', vulnerabilitiesFixed: [{ id: 'CVE-2026-1', severity: 'high' }], severity: 'high' });
    const home = {
      id: 'h1', name: 'Home', halt: null,
      settings: { timeZone: 'UTC', window: DEFAULT_WINDOW, learnQuietHours: false, policy: 'automatic' as const, thresholds: DEFAULT_THRESHOLDS, soakSeconds: 60, silenceTimeoutSeconds: 600 },
    };
    const input = { now: 0, devices: [device], homes: new Map([['h1', home]]), releases: [fix], openJobsByDevice: new Map(), skipped: new Set<string>() };
    assert.equal(planReleases(input).jobs.length, 1);
    const plan = planReleases({ ...input, ignored: new Set(['d1']) });
    assert.equal(plan.jobs.length, 0);
    assert.equal(plan.noJob[0]?.reason.code, 'device_ignored');
    assert.deepEqual(plan.vulnerable.get('d1')?.map((v) => v.id), ['CVE-2026-1']);
  });
});
