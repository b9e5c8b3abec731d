import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ParsedVersion, VersionScheme } from '@firmward/core';
import { FirmwardError, compareVersions, createVersionParser, isFirmwardError, parseVersion, tryCompareVersions } from '@firmward/core';

/** The opposite order (0 stays 0, not -0, for strict equality). */
const flip = (order: number): number => (order === 0 ? 0 : -order);

describe('parseVersion', () => {
  const cases: [string, VersionScheme, number[], (string | number)[] | null, number | null][] = [
    ['1.2.3', 'semver', [1, 2, 3], null, null],
    ['1.2.3-rc.1', 'semver', [1, 2, 3], ['rc', 1], null],
    ['1.2.3+abc', 'semver', [1, 2, 3], null, null],
    ['1.2.3-beta.2+exp.sha.5114f85', 'semver', [1, 2, 3], ['beta', 2], null],
    ['v1.2.3-beta.2', 'semver', [1, 2, 3], ['beta', 2], null],
    ['4.10.2.17', 'dotted', [4, 10, 2, 17], null, null],
    ['1.2', 'dotted', [1, 2], null, null],
    ['7', 'dotted', [7], null, null],
    ['1.2.0.0', 'dotted', [1, 2], null, null],
    ['20260315', 'date', [2026, 3, 15], null, null],
    ['2026.03.15', 'date', [2026, 3, 15], null, null],
    ['2026-03-15', 'date', [2026, 3, 15], null, null],
    ['20260315.2', 'date', [2026, 3, 15], null, 2],
    ['2026-03-15.4', 'date', [2026, 3, 15], null, 4],
    ['v2.4.1', 'prefixed', [2, 4, 1], null, null],
    ['V2.4.1-build.17', 'prefixed', [2, 4, 1], null, 17],
    ['v2.4.1_b17', 'prefixed', [2, 4, 1], null, 17],
    ['v2.4.1-b17', 'prefixed', [2, 4, 1], null, 17],
    ['v2.4.1_build.3', 'prefixed', [2, 4, 1], null, 3],
    ['2.4.1_b17', 'prefixed', [2, 4, 1], null, 17],
    // Not real dates: ordinary numbers.
    ['12345678', 'dotted', [12345678], null, null],
    ['20260230', 'dotted', [20260230], null, null],
    [' 1.2.3 ', 'semver', [1, 2, 3], null, null],
  ];
  for (const [raw, scheme, numbers, prerelease, build] of cases) {
    test(`${JSON.stringify(raw)} is ${scheme}`, () => {
      const p = parseVersion(raw);
      assert.equal(p.scheme, scheme);
      assert.deepEqual(p.numbers, numbers);
      assert.deepEqual(p.prerelease, prerelease);
      assert.equal(p.build, build);
      assert.equal(p.raw, raw.trim());
    });
  }

  test('year-led numbers are marked as calendar numbering', () => {
    assert.equal(parseVersion('2026.1').yearLed, true);
    assert.equal(parseVersion('3.2').yearLed, false);
    assert.equal(parseVersion('20260315').yearLed, true);
  });

  for (const raw of ['', '   ', 'abc', '1..2', '.1', '1.', 'v', 'v1.2.x', '1.2.3-', '1.2.3+', '1.2.3-rc..1', '1,2,3', `1.${'9'.repeat(16)}`, '1.2.3'.repeat(20)]) {
    test(`${JSON.stringify(raw.slice(0, 30))} is refused as version_invalid`, () => {
      assert.throws(() => parseVersion(raw), (e: unknown) => isFirmwardError(e, 'version_invalid') && e.message.startsWith('Firmward cannot read the version'));
    });
  }
});

describe('compareVersions', () => {
  // [a, b, order of a relative to b]
  const ordered: [string, string, -1 | 0 | 1][] = [
    // semver
    ['1.2.3', '1.2.4', -1],
    ['1.10.0', '1.9.9', 1],
    ['2.0.0', '10.0.0', -1],
    ['1.2.3-rc.1', '1.2.3', -1],
    ['1.2.3-alpha', '1.2.3-alpha.1', -1],
    ['1.2.3-alpha.1', '1.2.3-alpha.beta', -1],
    ['1.2.3-alpha.beta', '1.2.3-beta', -1],
    ['1.2.3-beta.2', '1.2.3-beta.11', -1],
    ['1.2.3-rc.1', '1.2.2', 1],
    ['1.2.3+abc', '1.2.3+def', 0],
    ['1.2.3+abc', '1.2.3', 0],
    ['1.2.3-rc.1+abc', '1.2.3-rc.1', 0],
    // dotted
    ['4.10.2.17', '4.10.2.9', 1],
    ['4.10.2.17', '4.10.3', -1],
    ['1.2', '1.2.0', 0],
    ['1.2', '1.2.0.0', 0],
    ['1.2', '1.2.0.1', -1],
    ['01.02', '1.2', 0],
    ['7', '6.99', 1],
    // dates
    ['20260315', '2026.03.15', 0],
    ['2026-03-15', '20260316', -1],
    ['20260315.2', '20260315.10', -1],
    ['20260315', '20260315.1', -1],
    ['2025-12-31', '2026.01.01', -1],
    // v-prefixed with builds
    ['v2.4.1', 'v2.4.2', -1],
    ['v2.4.1', '2.4.1', 0],
    ['V2.4.1-build.17', 'v2.4.1_b18', -1],
    ['v2.4.1_b17', 'v2.4.1-build.9', 1],
    ['v2.4.1-build.17', 'v2.4.1-build.17', 0],
    ['v2.4.2_b1', 'v2.4.1_b99', 1],
    ['v2.4.2_b1', '2.4.1', 1],
    // calendar numbering among itself
    ['2026.1', '2026.2', -1],
    ['2025.12', '2026.1', -1],
  ];
  for (const [a, b, expected] of ordered) {
    test(`${a} vs ${b} → ${expected}`, () => {
      assert.equal(compareVersions(a, b), expected);
      assert.equal(compareVersions(b, a), flip(expected));
    });
  }

  const refused: [string, string][] = [
    ['2026.1', '3.2'],
    ['20260315', '1.2.3'],
    ['2026.03.15', '2026.3'],
    ['20260315', 'v2.4.1_b17'],
    ['1.2.3-rc.1', 'v1.2.3-build.2'],
    ['1.2.3-rc.1', 'v1.3.0_b2'],
    ['2.4.1-build.17', 'V2.4.1-build.17'],
    ['v2.4.1', 'v2.4.1-build.17'],
    ['2.4.1', 'v2.4.1_b17'],
  ];
  for (const [a, b] of refused) {
    test(`${a} vs ${b} is refused as ambiguous`, () => {
      for (const [x, y] of [[a, b], [b, a]] as const) {
        assert.throws(() => compareVersions(x, y), (e: unknown) => isFirmwardError(e, 'version_ambiguous') && e.message.includes(x) && e.message.includes(y));
      }
    });
  }

  test('the refusal says it in one sentence', () => {
    assert.throws(() => compareVersions('2026.1', '3.2'), {
      name: 'FirmwardError',
      code: 'version_ambiguous',
      message: 'Cannot tell whether 2026.1 is newer than 3.2: they use different numbering.',
    });
  });

  test('unreadable input is version_invalid, on either side', () => {
    assert.throws(() => compareVersions('1.2.3', 'latest'), (e: unknown) => isFirmwardError(e, 'version_invalid'));
    assert.throws(() => compareVersions('', '1.2.3'), (e: unknown) => isFirmwardError(e, 'version_invalid'));
  });

  test('accepts parsed versions as well as text', () => {
    assert.equal(compareVersions(parseVersion('1.2.3'), '1.2.4'), -1);
  });
});

describe('tryCompareVersions', () => {
  test('returns the order without throwing', () => {
    assert.deepEqual(tryCompareVersions('1.0.0', '0.9'), { ok: true, order: 1 });
  });
  test('returns the refusal instead of throwing', () => {
    const r = tryCompareVersions('20260315', '1.2.3');
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.ok(r.error instanceof FirmwardError);
    assert.equal(r.error.code, 'version_ambiguous');
    const bad = tryCompareVersions('1.2.3', 'nope');
    assert.equal(bad.ok ? null : bad.error.code, 'version_invalid');
  });
});

describe('createVersionParser', () => {
  test('reads each string once and remembers failures', () => {
    const parse = createVersionParser();
    const a = parse('1.2.3');
    assert.equal(parse('1.2.3'), a);
    assert.throws(() => parse('bad'), (e: unknown) => isFirmwardError(e, 'version_invalid'));
    assert.throws(() => parse('bad'), (e: unknown) => isFirmwardError(e, 'version_invalid'));
  });
});

describe('compareVersions properties', () => {
  const small = fc.integer({ min: 0, max: 3 });
  const semver = fc
    .tuple(small, small, small, fc.option(fc.array(fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('alpha', 'beta', 'rc', 'rc-1')), { minLength: 1, maxLength: 3 })), fc.option(fc.constantFrom('abc', 'build.5')))
    .map(([a, b, c, pre, meta]) => `${a}.${b}.${c}${pre ? `-${pre.join('.')}` : ''}${meta ? `+${meta}` : ''}`);
  const dotted = fc.array(small, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.'));
  const prefixed = fc
    .tuple(fc.array(small, { minLength: 1, maxLength: 4 }), fc.option(fc.integer({ min: 0, max: 4 })), fc.constantFrom('-build.', '_b', '-b'))
    .map(([parts, build, sep]) => `v${parts.join('.')}${build === null ? '' : `${sep}${build}`}`);
  const date = fc
    .tuple(fc.integer({ min: 2025, max: 2026 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 3 }), fc.option(fc.integer({ min: 0, max: 2 })), fc.constantFrom('compact', 'dots', 'dashes'))
    .map(([y, m, d, build, form]) => {
      const mm = String(m).padStart(2, '0');
      const dd = String(d).padStart(2, '0');
      const body = form === 'compact' ? `${y}${mm}${dd}` : form === 'dots' ? `${y}.${mm}.${dd}` : `${y}-${mm}-${dd}`;
      return build === null ? body : `${body}.${build}`;
    });
  const anyVersion = fc.oneof(semver, dotted, prefixed, date);

  test('every generated version parses', () => {
    fc.assert(fc.property(anyVersion, (v) => {
      assert.doesNotThrow(() => parseVersion(v));
    }));
  });

  test('reflexive: a version equals itself', () => {
    fc.assert(fc.property(anyVersion, (v) => compareVersions(v, v) === 0));
  });

  test('antisymmetric: swapping the sides flips the order, and a refusal is refused both ways', () => {
    fc.assert(fc.property(anyVersion, anyVersion, (a, b) => {
      const ab = tryCompareVersions(a, b);
      const ba = tryCompareVersions(b, a);
      assert.equal(ab.ok, ba.ok);
      if (ab.ok && ba.ok) assert.equal(ab.order, flip(ba.order));
    }), { numRuns: 2000 });
  });

  test('transitive over semver and dotted versions', () => {
    const numeric = fc.oneof(semver, dotted);
    fc.assert(fc.property(numeric, numeric, numeric, (a, b, c) => {
      const ab = tryCompareVersions(a, b);
      const bc = tryCompareVersions(b, c);
      const ac = tryCompareVersions(a, c);
      if (!ab.ok || !bc.ok || !ac.ok) return;
      if (ab.order <= 0 && bc.order <= 0) assert.ok(ac.order <= 0, `${a} ≤ ${b} ≤ ${c} but ${a} > ${c}`);
      if (ab.order === 0 && bc.order === 0) assert.equal(ac.order, 0);
      if (ab.order < 0 && bc.order <= 0) assert.equal(ac.order, -1);
    }), { numRuns: 3000 });
  });

  test('transitive over every scheme wherever all three comparisons are allowed', () => {
    fc.assert(fc.property(anyVersion, anyVersion, anyVersion, (a, b, c) => {
      const ab = tryCompareVersions(a, b);
      const bc = tryCompareVersions(b, c);
      const ac = tryCompareVersions(a, c);
      if (!ab.ok || !bc.ok || !ac.ok) return;
      if (ab.order <= 0 && bc.order <= 0) assert.ok(ac.order <= 0, `${a} ≤ ${b} ≤ ${c} but ${a} > ${c}`);
    }), { numRuns: 3000 });
  });

  test('plain dotted numbers order like their zero-padded parts (independent oracle)', () => {
    const oracle = (a: string, b: string): number => {
      const x = a.split('.').map(Number);
      const y = b.split('.').map(Number);
      for (let i = 0; i < Math.max(x.length, y.length); i++) {
        const d = (x[i] ?? 0) - (y[i] ?? 0);
        if (d !== 0) return Math.sign(d);
      }
      return 0;
    };
    const wide = fc.array(fc.integer({ min: 0, max: 1200 }), { minLength: 1, maxLength: 5 })
      // Year-led numbers are another numbering; keep the oracle to ordinary ones.
      .filter((p) => (p[0] ?? 0) < 1000)
      .map((p) => p.join('.'))
      .filter((v) => parseVersion(v).scheme !== 'date');
    fc.assert(fc.property(wide, wide, (a, b) => compareVersions(a, b) === oracle(a, b)), { numRuns: 2000 });
  });

  test('dates order like the calendar, whatever way they are written', () => {
    const day = fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2150-12-31T00:00:00Z'), noInvalidDate: true });
    const write = (d: Date, form: number): string => {
      const iso = d.toISOString().slice(0, 10);
      return form === 0 ? iso : form === 1 ? iso.replaceAll('-', '.') : iso.replaceAll('-', '');
    };
    fc.assert(fc.property(day, day, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }), (a, b, fa, fb) => {
      const da = a.toISOString().slice(0, 10);
      const db = b.toISOString().slice(0, 10);
      const expected = da < db ? -1 : da > db ? 1 : 0;
      const p: ParsedVersion = parseVersion(write(a, fa));
      assert.equal(p.scheme, 'date');
      assert.equal(compareVersions(p, write(b, fb)), expected);
    }), { numRuns: 1000 });
  });
});
