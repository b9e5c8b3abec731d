import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Device, Home, Job, Policy, PlanInput, Release, Severity, Vulnerability } from '@firmward/core';
import {
  DEFAULT_THRESHOLDS, DEFAULT_WINDOW, PRIORITY_NORMAL, PRIORITY_SECURITY, PRIORITY_URGENT, effectivePolicy, newJob, orderJobs,
  planReleases, policyAllows, releaseId, skipKey,
} from '@firmward/core';
import { release } from './fixtures.ts';

const NOW = Date.UTC(2026, 2, 15, 12, 0, 0);


function device(id: string, fields: Partial<Device> = {}): Device {
  return {
    id, homeId: 'h1', name: `Device ${id}`, vendor: 'Acme', model: 'Plug', hardwareRevision: 'A', firmwareVersion: '1.0.0',
    policy: null, thresholds: {}, schedules: [], ...fields,
  };
}

function home(id: string, policy: Policy = 'automatic'): Home {
  return {
    id, name: `Home ${id}`, halt: null,
    settings: {
      timeZone: 'Europe/Berlin', window: DEFAULT_WINDOW, learnQuietHours: false, policy, thresholds: DEFAULT_THRESHOLDS,
      soakSeconds: 120, silenceTimeoutSeconds: 600,
    },
  };
}

function vuln(id: string, severity: Severity): Vulnerability {
  return { id, severity };
}

function plan(fields: Partial<PlanInput> & Pick<PlanInput, 'devices' | 'releases'>) {
  return planReleases({ now: NOW, homes: new Map([['h1', home('h1')]]), openJobsByDevice: new Map(), skipped: new Set(), ...fields });
}

function reasonOf(result: ReturnType<typeof planReleases>, deviceId: string) {
  return result.noJob.find((n) => n.deviceId === deviceId)?.reason;
}

describe('planReleases: which release', () => {
  test('picks the newest compatible release, whatever order they come in', () => {
    const releases = [release({ version: '1.1.0' }), release({ version: '2.0.0' }), release({ version: '1.5.0' })];
    for (const order of [releases, [...releases].reverse()]) {
      const result = plan({ devices: [device('d1')], releases: order });
      assert.equal(result.jobs.length, 1);
      const job = result.jobs[0]!;
      assert.equal(job.targetVersion, '2.0.0');
      assert.equal(job.releaseId, 'Acme/Plug/2.0.0');
      assert.equal(job.fromVersion, '1.0.0');
      assert.equal(job.homeId, 'h1');
      assert.equal(job.deviceId, 'd1');
    }
  });

  test('skips a newer release for another hardware revision and takes the newest that fits', () => {
    const result = plan({
      devices: [device('d1')],
      releases: [release({ version: '2.0.0', hardwareRevisions: ['B'] }), release({ version: '1.5.0', hardwareRevisions: ['A', 'B'] })],
    });
    assert.equal(result.jobs[0]?.targetVersion, '1.5.0');
  });

  test('a release the maker forbids from this version gives way to its stepping stone', () => {
    const result = plan({
      devices: [device('d1')],
      releases: [release({ version: '2.0.0', applicableFrom: '1.5.0' }), release({ version: '1.5.0' })],
    });
    assert.equal(result.jobs[0]?.targetVersion, '1.5.0');
  });

  test('never plans a retracted release, even the newest', () => {
    const result = plan({ devices: [device('d1')], releases: [release({ version: '3.0.0', retracted: true }), release({ version: '2.0.0' })] });
    assert.equal(result.jobs[0]?.targetVersion, '2.0.0');
  });

  test('never plans across vendor or model, not even differing only in case', () => {
    const result = plan({
      devices: [device('d1')],
      releases: [release({ version: '9.0.0', vendor: 'acme' }), release({ version: '9.0.0', model: 'plug' }), release({ version: '9.0.0', vendor: 'Acme/Plug', model: '' })],
    });
    assert.deepEqual(result.jobs, []);
  });

  test('releases whose numbering cannot be ordered are refused rather than guessed; a release newer than both is fine', () => {
    const rc = release({ version: '2.4.1-rc.1' });
    const build = release({ version: 'v2.4.1_b3' });
    for (const releases of [[rc, build], [build, rc]]) {
      const result = plan({ devices: [device('d1', { firmwareVersion: '2.4.0' })], releases });
      assert.deepEqual(result.jobs, []);
      assert.equal(reasonOf(result, 'd1')?.code, 'version_ambiguous');
      assert.match(reasonOf(result, 'd1')?.message ?? '', /^Cannot tell whether .* is newer than .*: one is a test version, the other a numbered build\.$/);
    }
    const newest = release({ version: '2.5.0' });
    for (const releases of [[rc, build, newest], [newest, build, rc], [build, newest, rc]]) {
      const result = plan({ devices: [device('d1', { firmwareVersion: '2.4.0' })], releases });
      assert.equal(result.jobs[0]?.targetVersion, '2.5.0');
    }
  });
});

describe('planReleases: why no job', () => {
  const cases: [string, Device, Release[], string, string][] = [
    ['up to date', device('d1', { firmwareVersion: '2.4.1' }), [release({ version: '2.4.1' }), release({ version: '2.0.0' })], 'already_up_to_date', 'Up to date (2.4.1).'],
    ['only older releases', device('d1', { firmwareVersion: '3.0.0' }), [release({ version: '2.0.0' })], 'downgrade', 'The newest release the maker signs for this device is 2.0.0, older than the 3.0.0 it runs; Firmward never goes back to an older version.'],
    ['older releases and its own', device('d1', { firmwareVersion: '3.0.0' }), [release({ version: '2.0.0' }), release({ version: '3.0.0' })], 'already_up_to_date', 'Up to date (3.0.0).'],
    ['a newer release only for other hardware', device('d1', { hardwareRevision: 'C' }), [release({ version: '2.0.0', hardwareRevisions: ['A', 'B'] })], 'hardware_mismatch', "The maker's 2.0.0 is for the Acme Plug hardware revisions A or B; this device is revision C, so it stays on 1.0.0."],
    ['up to date, and a newer release only for other hardware', device('d1', { firmwareVersion: '2.4.1' }), [release({ version: '2.4.1' }), release({ version: '3.0.0', hardwareRevisions: ['B'] })], 'hardware_mismatch', "The maker's 3.0.0 is for the Acme Plug hardware revision B; this device is revision A, so it stays on 2.4.1."],
    ['only older releases for other hardware', device('d1', { hardwareRevision: 'C', firmwareVersion: '3.0.0' }), [release({ version: '2.0.0', hardwareRevisions: ['A', 'B'] })], 'no_release_for_revision', 'No release for the Acme Plug hardware revision C.'],
    ['a newer release for the model spelled differently', device('d1'), [release({ version: '2.0.0', model: 'PLUG' })], 'model_mismatch', "The maker's 2.0.0 is for the Acme PLUG; this device reports itself as the Plug, and Firmward matches models exactly, so it stays on 1.0.0."],
    ['nothing for its model', device('d1', { model: 'Lamp' }), [release({ version: '2.0.0' })], 'no_release', 'No release for the Acme Lamp yet.'],
    ['the newer release is retracted', device('d1', { firmwareVersion: '2.4.1' }), [release({ version: '2.4.1' }), release({ version: '3.0.0', retracted: true })], 'retracted', 'Release 3.0.0 is retracted by the maker.'],
    ['the newest retracted one is named', device('d1', { firmwareVersion: '2.4.1' }), [release({ version: '3.0.0', retracted: true }), release({ version: '2.5.0', retracted: true })], 'retracted', 'Release 3.0.0 is retracted by the maker.'],
    ['it needs a stepping stone', device('d1'), [release({ version: '2.0.0', applicableFrom: '1.5.0' }), release({ version: '1.0.0' })], 'not_applicable_from', 'The maker does not allow updating directly from 1.0.0 (needs 1.5.0 or newer).'],
    ['the maker switched numbering', device('d1'), [release({ version: '20260315' })], 'version_ambiguous', 'Cannot tell whether 20260315 is newer than 1.0.0: they use different numbering.'],
    ['it reports an unreadable version', device('d1', { firmwareVersion: '??' }), [release({ version: '2.0.0' })], 'version_invalid', 'Firmward cannot read the version this device reports ("??").'],
  ];
  for (const [name, d, releases, code, message] of cases) {
    test(name, () => {
      const result = plan({ devices: [d], releases });
      assert.deepEqual(result.jobs, []);
      assert.deepEqual(result.noJob.map((n) => ({ deviceId: n.deviceId, reason: n.reason })), [{ deviceId: 'd1', reason: { code, message } }]);
      // A release that exists but does not apply is named, so the hub can say it once per release.
      const named = result.noJob[0]?.releaseId;
      if (['hardware_mismatch', 'model_mismatch', 'not_applicable_from', 'downgrade', 'retracted'].includes(code)) {
        assert.ok(named !== undefined && releases.some((r) => r.id === named), `names the release: ${String(named)}`);
      } else if (code !== 'version_ambiguous' && code !== 'version_invalid') {
        assert.equal(named, undefined);
      }
    });
  }

  test('a device with an open job gets none', () => {
    const open = newJob({ id: 'j1', homeId: 'h1', deviceId: 'd1', releaseId: 'Acme/Plug/1.5.0', fromVersion: '1.0.0', targetVersion: '1.5.0', priority: 2, requestedBy: null }, NOW);
    const result = plan({ devices: [device('d1'), device('d2')], releases: [release({ version: '2.0.0' })], openJobsByDevice: new Map<string, Job>([['d1', open]]) });
    assert.deepEqual(result.jobs.map((j) => j.deviceId), ['d2']);
    assert.deepEqual(reasonOf(result, 'd1'), { code: 'job_open', message: 'Already has an update in progress or queued (1.5.0).' });
  });

  test('a release a person skipped is not planned again, until a newer one comes', () => {
    const skipped = new Set([skipKey('d1', 'Acme/Plug/2.0.0')]);
    const first = plan({ devices: [device('d1'), device('d2')], releases: [release({ version: '2.0.0' })], skipped });
    assert.deepEqual(first.jobs.map((j) => j.deviceId), ['d2']);
    assert.equal(reasonOf(first, 'd1')?.code, 'skipped');
    assert.equal(reasonOf(first, 'd1')?.message, 'You chose to skip 2.0.0; it is not offered again until a newer release comes out.');
    const later = plan({ devices: [device('d1')], releases: [release({ version: '2.0.0' }), release({ version: '2.0.1' })], skipped });
    assert.equal(later.jobs[0]?.targetVersion, '2.0.1');
  });

  test('a device of an unknown home gets none', () => {
    const result = plan({ devices: [device('d1', { homeId: 'nowhere' })], releases: [release({ version: '2.0.0' })] });
    assert.deepEqual(result.jobs, []);
    assert.equal(reasonOf(result, 'd1')?.code, 'home_unknown');
  });
});

describe('planReleases: priority and vulnerabilities', () => {
  test('a device running a retracted version comes first', () => {
    const result = plan({
      devices: [device('a-safe', { firmwareVersion: '1.1.0' }), device('z-retracted', { firmwareVersion: '1.0.0' })],
      releases: [release({ version: '1.0.0', retracted: true }), release({ version: '1.1.0' }), release({ version: '1.2.0' })],
    });
    assert.deepEqual(result.jobs.map((j) => [j.deviceId, j.priority]), [['z-retracted', PRIORITY_URGENT], ['a-safe', PRIORITY_NORMAL]]);
    assert.match(result.jobs[0]!.reason.message, /^The maker retracted 1\.0\.0, which this device runs; 1\.2\.0 replaces it\./);
  });

  test('critical and high fixes come first, other security fixes next, the rest last, ties by device id', () => {
    const result = plan({
      devices: [
        device('d-none', { model: 'None' }), device('c-low', { model: 'Low' }), device('b-high', { model: 'High' }),
        device('a-none', { model: 'None' }), device('e-critical', { model: 'Critical' }),
      ],
      releases: [
        release({ version: '2.0.0', model: 'None' }),
        release({ version: '2.0.0', model: 'Low', vulnerabilitiesFixed: [vuln('CVE-1', 'low')] }),
        release({ version: '2.0.0', model: 'High', vulnerabilitiesFixed: [vuln('CVE-2', 'high'), vuln('CVE-3', 'low')] }),
        release({ version: '2.0.0', model: 'Critical', vulnerabilitiesFixed: [vuln('CVE-4', 'critical')] }),
      ],
    });
    assert.deepEqual(result.jobs.map((j) => [j.deviceId, j.priority]), [
      ['b-high', PRIORITY_URGENT], ['e-critical', PRIORITY_URGENT], ['c-low', PRIORITY_SECURITY], ['a-none', PRIORITY_NORMAL], ['d-none', PRIORITY_NORMAL],
    ]);
  });

  test('vulnerabilities: every newer release for the exact model and revision counts, even retracted or out of reach', () => {
    const result = plan({
      devices: [device('d1'), device('d2', { firmwareVersion: '4.0.0' }), device('d3', { hardwareRevision: 'B' })],
      releases: [
        release({ version: '0.9.0', vulnerabilitiesFixed: [vuln('CVE-OLD', 'critical')] }),
        release({ version: '1.5.0', vulnerabilitiesFixed: [vuln('CVE-A', 'high'), vuln('CVE-B', 'low')] }),
        release({ version: '2.0.0', retracted: true, vulnerabilitiesFixed: [vuln('CVE-B', 'medium')] }),
        release({ version: '3.0.0', applicableFrom: '2.0.0', vulnerabilitiesFixed: [vuln('CVE-C', 'medium')] }),
        release({ version: '3.5.0', hardwareRevisions: ['B'], vulnerabilitiesFixed: [vuln('CVE-REV-B', 'critical')] }),
      ],
    });
    assert.deepEqual(result.vulnerable.get('d1'), [vuln('CVE-A', 'high'), vuln('CVE-B', 'medium'), vuln('CVE-C', 'medium')]);
    assert.equal(result.vulnerable.has('d2'), false);
    assert.deepEqual(result.vulnerable.get('d3'), [vuln('CVE-REV-B', 'critical')]);
    // d1 goes to 1.5.0 (2.0.0 retracted, 3.0.0 needs 2.0.0) and is urgent: it lacks a high-severity fix.
    const d1 = result.jobs.find((j) => j.deviceId === 'd1');
    assert.equal(d1?.targetVersion, '1.5.0');
    assert.equal(d1?.priority, PRIORITY_URGENT);
  });

  test('a device with an open job is still reported as vulnerable', () => {
    const open = newJob({ id: 'j1', homeId: 'h1', deviceId: 'd1', releaseId: 'Acme/Plug/2.0.0', fromVersion: '1.0.0', targetVersion: '2.0.0', priority: 1, requestedBy: null }, NOW);
    const result = plan({ devices: [device('d1')], releases: [release({ version: '2.0.0', vulnerabilitiesFixed: [vuln('CVE-1', 'low')] })], openJobsByDevice: new Map([['d1', open]]) });
    assert.deepEqual(result.vulnerable.get('d1'), [vuln('CVE-1', 'low')]);
  });
});

describe('planReleases: policy', () => {
  test('jobs the policy holds are still returned, marked as waiting for a person', () => {
    const result = planReleases({
      now: NOW,
      devices: [device('d1'), device('d2', { policy: 'automatic' }), device('d3', { homeId: 'h2' }), device('d4', { homeId: 'h2', model: 'Cam' })],
      homes: { h1: home('h1', 'notify'), h2: home('h2', 'security-only') },
      releases: [release({ version: '2.0.0' }), release({ version: '2.0.0', model: 'Cam', vulnerabilitiesFixed: [vuln('CVE-9', 'medium')] })],
      openJobsByDevice: new Map(),
      skipped: new Set(),
    });
    const byId = new Map(result.jobs.map((j) => [j.deviceId, j]));
    assert.equal(byId.get('d1')?.policyAllows, false);
    assert.match(byId.get('d1')?.reason.message ?? '', /Available, waiting for you/);
    assert.equal(byId.get('d2')?.policyAllows, true);
    assert.equal(byId.get('d3')?.policyAllows, false);
    assert.equal(byId.get('d4')?.policyAllows, true);
    assert.equal(result.plannedAt, NOW);
  });
});

describe('policyAllows', () => {
  const plain = release({ version: '2.0.0' });
  const security = release({ version: '2.0.1', vulnerabilitiesFixed: [vuln('CVE-1', 'low')] });
  const table: [Policy, Release, boolean][] = [
    ['automatic', plain, true], ['automatic', security, true],
    ['security-only', plain, false], ['security-only', security, true],
    ['notify', plain, false], ['notify', security, false],
    ['manual', plain, false], ['manual', security, false],
  ];
  for (const [policy, r, allowed] of table) {
    test(`${policy} with ${r.vulnerabilitiesFixed.length > 0 ? 'a security' : 'a plain'} release on its own → ${allowed}`, () => {
      const d = policyAllows(policy, r, 'automatic');
      assert.equal(d.allowed, allowed);
      if (!allowed) assert.match(d.reason.message, /^Available, waiting for you/);
      assert.ok(d.reason.message.length > 0 && d.reason.code.length > 0);
    });
    test(`${policy}: a person's "update now" is always allowed by policy`, () => {
      const d = policyAllows(policy, r, 'person');
      assert.equal(d.allowed, true);
      assert.equal(d.reason.code, 'requested_by_person');
    });
  }

  test('the device policy wins over the home policy', () => {
    assert.equal(effectivePolicy('automatic', null), 'automatic');
    assert.equal(effectivePolicy('automatic', 'manual'), 'manual');
    assert.equal(effectivePolicy('manual', 'security-only'), 'security-only');
  });
});

describe('orderJobs', () => {
  test('priority first, then the oldest, then id; the input is left alone', () => {
    const j = (id: string, priority: number, createdAt: number) => ({ id, priority, createdAt });
    const input = [j('c', 2, 1), j('b', 1, 5), j('a', 1, 5), j('d', 0, 9), j('e', 1, 2)];
    const copy = structuredClone(input);
    assert.deepEqual(orderJobs(input).map((x) => x.id), ['d', 'e', 'a', 'b', 'c']);
    assert.deepEqual(input, copy);
  });
});

// ---- Properties: invariants 2 and 5 against an independent oracle --------------------------------

/** The oracle's own ordering: plain x.y.z among themselves, 8-digit dates among themselves, never across. */
function oracleCompare(a: string, b: string): number | null {
  const key = (v: string): [string, number[]] | null => {
    if (/^\d+\.\d+\.\d+$/.test(v)) return ['numeric', v.split('.').map(Number)];
    if (/^\d{8}$/.test(v)) return ['date', [Number(v)]];
    return null;
  };
  const x = key(a);
  const y = key(b);
  if (x === null || y === null || x[0] !== y[0]) return null;
  for (let i = 0; i < Math.max(x[1].length, y[1].length); i++) {
    const d = (x[1][i] ?? 0) - (y[1][i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function oracleEligible(r: Release, d: Device): boolean {
  const from = r.applicableFrom === undefined ? 1 : oracleCompare(d.firmwareVersion, r.applicableFrom);
  const to = r.applicableTo === undefined ? -1 : oracleCompare(d.firmwareVersion, r.applicableTo);
  return r.vendor === d.vendor && r.model === d.model && r.hardwareRevisions.includes(d.hardwareRevision) && !r.retracted
    && oracleCompare(r.version, d.firmwareVersion) === 1 && from !== null && from >= 0 && to !== null && to <= 0;
}

const versionArb = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })).map((p) => p.join('.')) },
  { weight: 1, arbitrary: fc.constantFrom('20260101', '20260315') },
);
const vendorArb = fc.constantFrom('Acme', 'acme');
const modelArb = fc.constantFrom('Plug', 'Bulb');
const revisionArb = fc.constantFrom('A', 'B');
const vulnArb = fc.record({ id: fc.constantFrom('CVE-1', 'CVE-2', 'CVE-3'), severity: fc.constantFrom<Severity>('none', 'low', 'medium', 'high', 'critical') });

const releasesArb = fc.array(
  fc.record({
    vendor: vendorArb, model: modelArb, hardwareRevisions: fc.uniqueArray(revisionArb, { minLength: 1, maxLength: 2 }), version: versionArb,
    applicableFrom: fc.option(versionArb, { freq: 3 }), applicableTo: fc.option(versionArb, { freq: 3 }),
    retracted: fc.integer({ min: 0, max: 3 }).map((n) => n === 0), vulnerabilitiesFixed: fc.array(vulnArb, { maxLength: 2 }),
  }),
  { maxLength: 14 },
).map((rows) => rows.map(({ applicableFrom, applicableTo, ...rest }, i) => release({
  ...rest,
  id: `${releaseId(rest.vendor, rest.model, rest.version)}#${i}`,
  ...(applicableFrom === null ? {} : { applicableFrom }),
  ...(applicableTo === null ? {} : { applicableTo }),
})));
const devicesArb = fc.array(
  fc.record({ vendor: vendorArb, model: modelArb, hardwareRevision: revisionArb, firmwareVersion: versionArb, homeId: fc.constantFrom('h1', 'h2', 'gone') }),
  { maxLength: 12 },
).map((rows) => rows.map((row, i) => device(`d${String(i).padStart(2, '0')}`, row)));

const scenarioArb = fc.tuple(devicesArb, releasesArb).chain(([devices, releases]) => fc.record({
  devices: fc.constant(devices),
  releases: fc.constant(releases),
  open: fc.subarray(devices.map((d) => d.id)),
  skipped: fc.subarray(devices.flatMap((d) => releases.map((r) => skipKey(d.id, r.id)))),
  policies: fc.tuple(fc.constantFrom<Policy>('automatic', 'security-only', 'notify', 'manual'), fc.constantFrom<Policy>('automatic', 'security-only', 'notify', 'manual')),
}));

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function runScenario(s: Scenario) {
  const openJobsByDevice = new Map(s.open.map((id) => [id, newJob({ id: `j-${id}`, homeId: 'h1', deviceId: id, releaseId: 'x', fromVersion: '0.0.0', targetVersion: '0.0.1', priority: 2, requestedBy: null }, NOW)]));
  return planReleases({
    now: NOW, devices: s.devices, releases: s.releases, openJobsByDevice, skipped: new Set(s.skipped),
    homes: new Map([['h1', home('h1', s.policies[0])], ['h2', home('h2', s.policies[1])]]),
  });
}

describe('planReleases properties', () => {
  test('every planned job passes every condition of invariants 2 and 5, re-checked independently', () => {
    fc.assert(fc.property(scenarioArb, (s) => {
      const result = runScenario(s);
      const devices = new Map(s.devices.map((d) => [d.id, d]));
      const releases = new Map(s.releases.map((r) => [r.id, r]));
      for (const job of result.jobs) {
        const d = devices.get(job.deviceId)!;
        const r = releases.get(job.releaseId)!;
        assert.ok(r, 'the job names a real release');
        assert.equal(r.vendor, d.vendor, 'same vendor');
        assert.equal(r.model, d.model, 'same model');
        assert.ok(r.hardwareRevisions.includes(d.hardwareRevision), 'listed hardware revision');
        assert.equal(r.retracted, false, 'not retracted');
        assert.equal(oracleCompare(r.version, d.firmwareVersion), 1, 'strictly newer (invariant 5)');
        if (r.applicableFrom !== undefined) assert.ok((oracleCompare(d.firmwareVersion, r.applicableFrom) ?? -1) >= 0, 'at or above applicableFrom');
        if (r.applicableTo !== undefined) assert.ok((oracleCompare(d.firmwareVersion, r.applicableTo) ?? 1) <= 0, 'at or below applicableTo');
        assert.equal(job.fromVersion, d.firmwareVersion);
        assert.equal(job.targetVersion, r.version);
        assert.equal(job.homeId, d.homeId);
        assert.ok(!s.open.includes(d.id), 'no second job for a device with an open one');
        assert.ok(!s.skipped.includes(skipKey(d.id, r.id)), 'not a skipped release');
      }
    }), { numRuns: 400 });
  });

  test('each device gets the newest eligible release, or exactly one reason why not', () => {
    fc.assert(fc.property(scenarioArb, (s) => {
      const result = runScenario(s);
      const jobs = new Map(result.jobs.map((j) => [j.deviceId, j]));
      const noJob = new Map(result.noJob.map((n) => [n.deviceId, n.reason]));
      assert.equal(result.jobs.length + result.noJob.length, s.devices.length);
      for (const d of s.devices) {
        assert.ok(jobs.has(d.id) !== noJob.has(d.id), `${d.id}: a job or a reason, not both`);
        const eligible = s.releases.filter((r) => oracleEligible(r, d));
        const newest = eligible.reduce<Release | null>((best, r) => (best === null || oracleCompare(r.version, best.version) === 1 ? r : best), null);
        const job = jobs.get(d.id);
        if (job) {
          assert.ok(newest !== null);
          assert.equal(oracleCompare(job.targetVersion, newest.version), 0, `${d.id}: ${job.targetVersion} is the newest (${newest.version})`);
        } else {
          const why = noJob.get(d.id)!;
          assert.ok(why.message.length > 0);
          const blocked = s.open.includes(d.id) || d.homeId === 'gone'
            || (newest !== null && s.releases.some((r) => oracleEligible(r, d) && oracleCompare(r.version, newest.version) === 0 && s.skipped.includes(skipKey(d.id, r.id))));
          assert.ok(newest === null || blocked, `${d.id}: ${newest?.version ?? ''} applies but nothing was planned (${why.message})`);
        }
      }
    }), { numRuns: 400 });
  });

  test('priority: retracted or critical/high exposure first, then other security fixes; jobs ordered by it', () => {
    fc.assert(fc.property(scenarioArb, (s) => {
      const result = runScenario(s);
      for (const d of s.devices) {
        const exposed = s.releases.filter((r) => r.vendor === d.vendor && r.model === d.model && r.hardwareRevisions.includes(d.hardwareRevision)
          && oracleCompare(r.version, d.firmwareVersion) === 1).flatMap((r) => r.vulnerabilitiesFixed);
        const ids = [...new Set(exposed.map((v) => v.id))].sort();
        assert.deepEqual((result.vulnerable.get(d.id) ?? []).map((v) => v.id).sort(), ids, `${d.id}: vulnerabilities`);
        const job = result.jobs.find((j) => j.deviceId === d.id);
        if (!job) continue;
        const runsRetracted = s.releases.some((r) => r.retracted && r.vendor === d.vendor && r.model === d.model && oracleCompare(r.version, d.firmwareVersion) === 0);
        const urgent = runsRetracted || exposed.some((v) => v.severity === 'critical' || v.severity === 'high');
        assert.equal(job.priority, urgent ? PRIORITY_URGENT : ids.length > 0 ? PRIORITY_SECURITY : PRIORITY_NORMAL, `${d.id}: priority`);
      }
      for (let i = 1; i < result.jobs.length; i++) {
        const a = result.jobs[i - 1]!;
        const b = result.jobs[i]!;
        assert.ok(a.priority < b.priority || (a.priority === b.priority && a.deviceId < b.deviceId), 'ordered by priority, then device id');
      }
    }), { numRuns: 400 });
  });

  test('the plan does not depend on the order devices and releases come in', () => {
    fc.assert(fc.property(scenarioArb, fc.integer(), (s, seed) => {
      const shuffle = <T>(xs: readonly T[]): T[] => {
        const out = [...xs];
        let x = seed | 0 || 1;
        for (let i = out.length - 1; i > 0; i--) {
          x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
          const j = Math.abs(x) % (i + 1);
          [out[i], out[j]] = [out[j]!, out[i]!];
        }
        return out;
      };
      const a = runScenario(s);
      const b = runScenario({ ...s, devices: shuffle(s.devices), releases: shuffle(s.releases) });
      assert.deepEqual(b.jobs, a.jobs);
      assert.deepEqual(b.noJob, a.noJob);
    }), { numRuns: 200 });
  });
});
