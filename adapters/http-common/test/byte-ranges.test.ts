/**
 * What a file request is answered with, as a table: Range header (and If-Range) in, decision out.
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { ifRangeHolds, MAX_RANGES, multipartLayout, planRanges } from '../src/index.ts';
import type { RangePlan } from '../src/index.ts';

const SIZE = 1000;
const get = (range: string | undefined, ifRange?: string) => planRanges({ method: 'GET', range, ifRange }, { size: SIZE, etag: '"v1"', lastModified: new Date('2026-03-01T10:00:00.500Z') });

describe('planRanges', () => {
  const cases: [string | undefined, RangePlan][] = [
    [undefined, { kind: 'whole', why: 'no-range' }],
    ['bytes=0-0', { kind: 'single', range: { start: 0, end: 0 } }],
    ['bytes=100-199', { kind: 'single', range: { start: 100, end: 199 } }],
    ['bytes=500-', { kind: 'single', range: { start: 500, end: 999 } }],
    ['bytes=-500', { kind: 'single', range: { start: 500, end: 999 } }],
    // A suffix longer than the file is the whole file, as a range (RFC 9110 §14.1.3).
    ['bytes=-5000', { kind: 'single', range: { start: 0, end: 999 } }],
    ['bytes=990-5000', { kind: 'single', range: { start: 990, end: 999 } }],
    ['Bytes=1-2', { kind: 'single', range: { start: 1, end: 2 } }],
    // The audit's case: two ranges are two parts, not the whole file called a 206.
    ['bytes=0-0,2-2', { kind: 'multipart', ranges: [{ start: 0, end: 0 }, { start: 2, end: 2 }] }],
    // A small overlap is coalesced into one part (§14.3).
    ['bytes=900-,-10', { kind: 'single', range: { start: 900, end: 999 } }],
    ['bytes=500-599, 0-99', { kind: 'multipart', ranges: [{ start: 500, end: 599 }, { start: 0, end: 99 }] }],
    // Adjacent ranges become one; the unsatisfiable one is left out.
    ['bytes=0-9,10-19', { kind: 'single', range: { start: 0, end: 19 } }],
    ['bytes=0-9,5000-6000', { kind: 'single', range: { start: 0, end: 9 } }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=5000-6000', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=1000-,2000-', { kind: 'unsatisfiable' }],
    // Malformed: ignored, the whole file.
    ['bytes=abc', { kind: 'whole', why: 'malformed' }],
    ['bytes=5-2', { kind: 'whole', why: 'malformed' }],
    ['bytes=0-1,x-', { kind: 'whole', why: 'malformed' }],
    ['bytes=', { kind: 'whole', why: 'malformed' }],
    ['bytes=-', { kind: 'whole', why: 'malformed' }],
    ['0-100', { kind: 'whole', why: 'malformed' }],
    ['items=0-1', { kind: 'whole', why: 'other-unit' }],
    // Overlapping ranges that add up to more than the file: the file once.
    ['bytes=0-,0-', { kind: 'whole', why: 'overlapping' }],
    ['bytes=0-599,400-999', { kind: 'whole', why: 'overlapping' }],
  ];
  for (const [range, expected] of cases) {
    test(`${range ?? '(no Range)'} → ${expected.kind}`, () => assert.deepEqual(get(range), expected));
  }

  test(`${MAX_RANGES} ranges are served in parts (zchunk asks up to 150), one more is the whole file`, () => {
    const ranges = (n: number) => `bytes=${Array.from({ length: n }, (_, i) => `${i * 4}-${i * 4 + 1}`).join(',')}`;
    const served = get(ranges(MAX_RANGES));
    assert.equal(served.kind, 'multipart');
    assert.equal(served.kind === 'multipart' && served.ranges.length, MAX_RANGES);
    assert.deepEqual(get(ranges(MAX_RANGES + 1)), { kind: 'whole', why: 'too-many-ranges' });
    assert.deepEqual(get(`bytes=0-1,${' '.repeat(9000)}3-4`), { kind: 'whole', why: 'too-many-ranges' });
  });

  test('HEAD and other methods ignore Range (RFC 9110 §14.2: defined for GET only)', () => {
    assert.deepEqual(planRanges({ method: 'HEAD', range: 'bytes=0-1', ifRange: undefined }, { size: SIZE }), { kind: 'whole', why: 'not-get' });
  });

  test('an empty file is always sent whole', () => {
    for (const range of ['bytes=0-', 'bytes=-1', 'bytes=0-0,2-2']) {
      assert.deepEqual(planRanges({ method: 'GET', range, ifRange: undefined }, { size: 0 }), { kind: 'whole', why: 'empty-file' });
    }
  });

  test('If-Range: the same strong tag or the exact date applies the Range; anything else sends the whole file', () => {
    assert.equal(get('bytes=0-1', '"v1"').kind, 'single');
    assert.equal(get('bytes=0-1', 'Sun, 01 Mar 2026 10:00:00 GMT').kind, 'single');
    for (const ifRange of ['"v2"', 'W/"v1"', 'Sun, 01 Mar 2026 09:59:59 GMT', 'not a date', 'v1']) {
      assert.deepEqual(get('bytes=0-1', ifRange), { kind: 'whole', why: 'if-range-failed' }, ifRange);
    }
    assert.equal(ifRangeHolds('"v1"', { size: SIZE }), false, 'a file without a tag matches none');
  });
});

describe('multipartLayout', () => {
  test('each part has its type and range; the length counts every byte of the body', () => {
    const layout = multipartLayout([{ start: 0, end: 0 }, { start: 2, end: 4 }], 10, 'application/octet-stream', 'XYZ');
    assert.equal(layout.contentType, 'multipart/byteranges; boundary=XYZ');
    assert.deepEqual(layout.parts.map((p) => p.head), [
      '\r\n--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-0/10\r\n\r\n',
      '\r\n--XYZ\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 2-4/10\r\n\r\n',
    ]);
    assert.equal(layout.tail, '\r\n--XYZ--\r\n');
    assert.equal(layout.length, layout.parts.reduce((n, p) => n + p.head.length, 0) + 1 + 3 + layout.tail.length);
  });
});
