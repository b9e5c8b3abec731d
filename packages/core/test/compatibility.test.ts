import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { CompatibilityDevice, Release } from '@firmward/core';
import { assessCompatibility, assessPrepared, checkCompatibility, createVersionParser, prepareRelease, readVersion } from '@firmward/core';
import { release } from './fixtures.ts';


function device(fields: Partial<CompatibilityDevice> = {}): CompatibilityDevice {
  return { vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0', ...fields };
}

describe('checkCompatibility', () => {
  test('a newer release for the exact model and revision is ok', () => {
    assert.deepEqual(checkCompatibility(release({ version: '1.1.0' }), device()), { ok: true });
  });

  const refusals: [string, Release, CompatibilityDevice, string, string][] = [
    ['another model', release({ version: '2.0.0', model: 'Bulb' }), device(), 'model_mismatch', 'This release is for the Acme Bulb, not the Acme Plug.'],
    ['another vendor', release({ version: '2.0.0', vendor: 'Other' }), device(), 'model_mismatch', 'This release is for the Other Plug, not the Acme Plug.'],
    ['model differing only in case', release({ version: '2.0.0', model: 'plug' }), device(), 'model_mismatch', 'This release is for the Acme plug, not the Acme Plug.'],
    ['vendor with a trailing space', release({ version: '2.0.0', vendor: 'Acme ' }), device(), 'model_mismatch', 'This release is for the Acme  Plug, not the Acme Plug.'],
    ['another hardware revision', release({ version: '2.0.0', hardwareRevisions: ['B'] }), device(), 'hardware_mismatch', 'This release is for the Acme Plug hardware revision B; this device is revision A.'],
    ['one of several other revisions', release({ version: '2.0.0', hardwareRevisions: ['B', 'C', 'D'] }), device(), 'hardware_mismatch', 'This release is for the Acme Plug hardware revisions B, C or D; this device is revision A.'],
    ['revision differing only in case', release({ version: '2.0.0', hardwareRevisions: ['a'] }), device(), 'hardware_mismatch', 'This release is for the Acme Plug hardware revision a; this device is revision A.'],
    ['no revision listed', release({ version: '2.0.0', hardwareRevisions: [] }), device(), 'hardware_mismatch', 'This release for the Acme Plug names no hardware revision, so it goes on no device.'],
    ['the same version', release({ version: '1.0.0' }), device(), 'already_up_to_date', 'Up to date (1.0.0).'],
    ['the same version written differently', release({ version: '1.0' }), device(), 'already_up_to_date', 'Up to date (1.0.0).'],
    ['an older version', release({ version: '0.9.9' }), device(), 'downgrade', 'Release 0.9.9 is older than the 1.0.0 this device runs; Firmward never goes back to an older version.'],
    ['a pre-release of the installed version', release({ version: '1.0.0-rc.1' }), device(), 'downgrade', 'Release 1.0.0-rc.1 is older than the 1.0.0 this device runs; Firmward never goes back to an older version.'],
    ['a retracted release', release({ version: '3.0.0', retracted: true }), device(), 'retracted', 'Release 3.0.0 is retracted by the maker.'],
    ['installed below applicableFrom', release({ version: '2.0.0', applicableFrom: '1.5.0' }), device(), 'not_applicable_from', 'The maker does not allow updating directly from 1.0.0 (needs 1.5.0 or newer).'],
    ['installed above applicableTo', release({ version: '3.0.0', applicableTo: '2.0.0' }), device({ firmwareVersion: '2.1.0' }), 'not_applicable_from', 'The maker does not allow updating directly from 2.1.0 (this release is only for 2.0.0 or older).'],
    ['date stamp against semver', release({ version: '20260315' }), device(), 'version_ambiguous', 'Cannot tell whether 20260315 is newer than 1.0.0: they use different numbering.'],
    ['range in another numbering', release({ version: '2.0.0', applicableFrom: '2026.1' }), device(), 'version_ambiguous', 'Cannot tell whether 1.0.0 is newer than 2026.1: they use different numbering.'],
    ['an unreadable installed version', release({ version: '2.0.0' }), device({ firmwareVersion: 'unknown' }), 'version_invalid', 'Firmward cannot read the version this device reports ("unknown").'],
    ['an unreadable release version', release({ version: 'latest' }), device(), 'version_invalid', 'Firmward cannot read the version of this release ("latest").'],
    ['an unreadable range', release({ version: '2.0.0', applicableTo: 'any' }), device(), 'version_invalid', 'Firmward cannot read the maker\'s highest version this release may be installed on ("any").'],
  ];
  for (const [name, r, d, code, message] of refusals) {
    test(`refuses ${name}`, () => {
      assert.deepEqual(checkCompatibility(r, d), { ok: false, code, message });
    });
  }

  test('the version range is inclusive at both ends', () => {
    const r = release({ version: '3.0.0', applicableFrom: '1.5.0', applicableTo: '2.0.0' });
    assert.deepEqual(checkCompatibility(r, device({ firmwareVersion: '1.5.0' })), { ok: true });
    assert.deepEqual(checkCompatibility(r, device({ firmwareVersion: '2.0' })), { ok: true });
    assert.equal(checkCompatibility(r, device({ firmwareVersion: '1.4.9' })).ok, false);
    assert.equal(checkCompatibility(r, device({ firmwareVersion: '2.0.1' })).ok, false);
  });

  test('a retracted release is never ok, even when everything else fits', () => {
    const r = release({ version: '2.0.0', retracted: true, hardwareRevisions: ['A', 'B'] });
    for (const d of [device(), device({ hardwareRevision: 'B' }), device({ firmwareVersion: '1.9.9' })]) {
      assert.equal(checkCompatibility(r, d).ok, false);
    }
  });

  test('build-numbered firmware: a later build of the same version is newer, an unnumbered one is refused', () => {
    const d = device({ firmwareVersion: 'v2.4.1_b17' });
    assert.deepEqual(checkCompatibility(release({ version: 'V2.4.1-build.18' }), d), { ok: true });
    assert.equal(checkCompatibility(release({ version: 'v2.4.1-build.16' }), d).ok, false);
    const plain = checkCompatibility(release({ version: 'v2.4.1' }), d);
    assert.equal(plain.ok ? 'ok' : plain.code, 'version_ambiguous');
  });

  test('the planner\'s fast path decides exactly as the gate does, wording aside', () => {
    for (const [, r, d] of refusals) {
      const full = assessCompatibility(r, d);
      const quiet = assessPrepared(prepareRelease(r), d, readVersion(d.firmwareVersion), false);
      assert.equal(quiet.gate, full.gate);
      assert.equal(quiet.result.ok, full.result.ok);
      assert.equal(quiet.result.ok ? null : quiet.result.code, full.result.ok ? null : full.result.code);
      assert.deepEqual(assessPrepared(prepareRelease(r), d, readVersion(d.firmwareVersion)), full);
    }
  });

  test('a memoising parser gives the same answers', () => {
    const parse = createVersionParser();
    for (const [, r, d] of refusals) assert.deepEqual(checkCompatibility(r, d, { parse }), checkCompatibility(r, d));
  });
});

// Invariants 2 and 5, checked against an independent oracle: versions come from two numberings
// (plain x.y.z and date stamps) that the oracle orders by itself and never across.
type Oracle = { kind: 'numeric'; key: number[] } | { kind: 'date'; key: number[] } | null;

function oracle(v: string): Oracle {
  if (/^\d+\.\d+\.\d+$/.test(v)) return { kind: 'numeric', key: v.split('.').map(Number) };
  if (/^\d{8}$/.test(v)) return { kind: 'date', key: [Number(v)] };
  return null;
}

/** -1/0/1, or null when the oracle cannot order them. */
function oracleCompare(a: string, b: string): number | null {
  const x = oracle(a);
  const y = oracle(b);
  if (x === null || y === null || x.kind !== y.kind) return null;
  for (let i = 0; i < Math.max(x.key.length, y.key.length); i++) {
    const d = (x.key[i] ?? 0) - (y.key[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

const versionArb = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })).map((p) => p.join('.')) },
  { weight: 1, arbitrary: fc.constantFrom('20260101', '20260315', '20261231') },
);
const vendorArb = fc.constantFrom('Acme', 'acme', 'Globex');
const modelArb = fc.constantFrom('Plug', 'Bulb', 'plug');
const revisionArb = fc.constantFrom('A', 'B', 'C');

const releaseArb = fc
  .record({
    vendor: vendorArb,
    model: modelArb,
    hardwareRevisions: fc.uniqueArray(revisionArb, { maxLength: 3 }),
    version: versionArb,
    applicableFrom: fc.option(versionArb),
    applicableTo: fc.option(versionArb),
    retracted: fc.boolean(),
  })
  .map(({ applicableFrom, applicableTo, ...rest }) => release({
    ...rest,
    ...(applicableFrom === null ? {} : { applicableFrom }),
    ...(applicableTo === null ? {} : { applicableTo }),
  }));
const deviceArb = fc.record({ vendor: vendorArb, model: modelArb, hardwareRevision: revisionArb, firmwareVersion: versionArb });

describe('checkCompatibility properties (invariants 2 and 5)', () => {
  test('never ok outside the exact model, revision and range, nor for a retracted, equal or older version', () => {
    fc.assert(fc.property(releaseArb, deviceArb, (r, d) => {
      const result = checkCompatibility(r, d);
      const newer = oracleCompare(r.version, d.firmwareVersion);
      const from = r.applicableFrom === undefined ? 1 : oracleCompare(d.firmwareVersion, r.applicableFrom);
      const to = r.applicableTo === undefined ? -1 : oracleCompare(d.firmwareVersion, r.applicableTo);
      const eligible = r.vendor === d.vendor && r.model === d.model && r.hardwareRevisions.includes(d.hardwareRevision)
        && !r.retracted && newer === 1 && from !== null && from >= 0 && to !== null && to <= 0;
      assert.equal(result.ok, eligible, `${JSON.stringify(r)} on ${JSON.stringify(d)} → ${JSON.stringify(result)}`);
    }), { numRuns: 3000 });
  });

  test('an equal version is "up to date" and an older one a "downgrade", whatever else holds for the rest', () => {
    fc.assert(fc.property(releaseArb, deviceArb, (r, d) => {
      const sameDevice = { ...d, vendor: r.vendor, model: r.model, hardwareRevision: r.hardwareRevisions[0] ?? d.hardwareRevision };
      if (!r.hardwareRevisions.includes(sameDevice.hardwareRevision)) return;
      const order = oracleCompare(r.version, sameDevice.firmwareVersion);
      const result = checkCompatibility(r, sameDevice);
      if (order === 0) assert.deepEqual(result.ok ? 'ok' : result.code, 'already_up_to_date');
      if (order === -1) assert.deepEqual(result.ok ? 'ok' : result.code, 'downgrade');
      if (order === null) assert.deepEqual(result.ok ? 'ok' : result.code, 'version_ambiguous');
    }), { numRuns: 2000 });
  });
});
