import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import {
  HOUR_MS, MINUTE_MS, effectiveWindow, fitsInWindow, isFirmwardError, learnQuietHours, localTimeOfDay,
  parseTimeOfDay, validateTimeZone, windowStatus,
} from '../src/index.ts';
import type { MaintenanceWindow } from '../src/index.ts';
import { dailyUsage, local, utc, wall } from './fixtures.ts';

const BERLIN = 'Europe/Berlin';
const NIGHT: MaintenanceWindow = { start: '01:00', end: '05:00' };
const invalidInput = (e: unknown): boolean => isFirmwardError(e, 'invalid_input');

test('parseTimeOfDay reads HH:MM and refuses anything else', () => {
  assert.deepEqual(parseTimeOfDay('23:30'), { hour: 23, minute: 30, minuteOfDay: 1410 });
  assert.deepEqual(parseTimeOfDay('00:00'), { hour: 0, minute: 0, minuteOfDay: 0 });
  for (const bad of ['24:00', '1:00', '01:60', '01-00', 'ab:cd', '', ' 01:00', '01:00:00']) {
    assert.throws(() => parseTimeOfDay(bad), invalidInput, bad);
  }
});

test('validateTimeZone accepts IANA names and refuses unknown ones', () => {
  assert.equal(validateTimeZone('Europe/Berlin'), 'Europe/Berlin');
  assert.equal(validateTimeZone('UTC'), 'UTC');
  for (const bad of ['Mars/Olympus_Mons', '', 'Berlin']) assert.throws(() => validateTimeZone(bad), invalidInput, bad);
  assert.throws(() => windowStatus(0, 'Nowhere/Land', NIGHT), invalidInput);
  assert.throws(() => windowStatus(0, BERLIN, { start: '1am', end: '05:00' }), invalidInput);
});

test('a plain overnight window: inside, outside, and the next one', () => {
  const inside = windowStatus(local('2026-06-10T02:00', BERLIN), BERLIN, NIGHT);
  assert.equal(inside.inside, true);
  assert.equal(inside.currentEnd, local('2026-06-10T05:00', BERLIN));
  assert.equal(inside.nextStart, local('2026-06-11T01:00', BERLIN));
  assert.equal(inside.nextEnd, local('2026-06-11T05:00', BERLIN));

  const noon = windowStatus(local('2026-06-10T12:00', BERLIN), BERLIN, NIGHT);
  assert.equal(noon.inside, false);
  assert.equal(noon.currentEnd, null);
  assert.equal(noon.nextStart, local('2026-06-11T01:00', BERLIN));

  // Half-open: the start belongs to the window, the end does not.
  assert.equal(windowStatus(local('2026-06-10T01:00', BERLIN), BERLIN, NIGHT).inside, true);
  assert.equal(windowStatus(local('2026-06-10T05:00', BERLIN), BERLIN, NIGHT).inside, false);
});

test('a window crossing midnight (23:00–05:00)', () => {
  const w = { start: '23:00', end: '05:00' };
  const lateEvening = windowStatus(local('2026-06-10T23:30', BERLIN), BERLIN, w);
  assert.equal(lateEvening.inside, true);
  assert.equal(lateEvening.currentEnd, local('2026-06-11T05:00', BERLIN));
  assert.equal(lateEvening.nextStart, local('2026-06-11T23:00', BERLIN));

  const small = windowStatus(local('2026-06-11T03:00', BERLIN), BERLIN, w);
  assert.equal(small.inside, true);
  assert.equal(small.currentEnd, local('2026-06-11T05:00', BERLIN));
  assert.equal(small.nextStart, local('2026-06-11T23:00', BERLIN));

  const evening = windowStatus(local('2026-06-11T22:59', BERLIN), BERLIN, w);
  assert.equal(evening.inside, false);
  assert.equal(evening.nextStart, local('2026-06-11T23:00', BERLIN));
  assert.equal(evening.nextEnd, local('2026-06-12T05:00', BERLIN));
});

test('Berlin spring-forward night (2026-03-29): the window is an hour shorter', () => {
  // 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
  const before = windowStatus(local('2026-03-28T12:00', BERLIN), BERLIN, NIGHT);
  assert.equal(before.nextStart, utc('2026-03-29T00:00:00Z')); // 01:00 CET
  assert.equal(before.nextEnd, utc('2026-03-29T03:00:00Z')); // 05:00 CEST
  assert.equal(before.nextEnd - before.nextStart, 3 * HOUR_MS);

  const during = windowStatus(utc('2026-03-29T00:30:00Z'), BERLIN, NIGHT); // 01:30 CET
  assert.equal(during.inside, true);
  assert.equal(during.currentEnd, utc('2026-03-29T03:00:00Z'));
  // A 3-hour install fits on an ordinary night at 01:30, not on this one.
  assert.equal(fitsInWindow(utc('2026-03-29T00:30:00Z'), 3 * HOUR_MS, BERLIN, NIGHT), false);
  assert.equal(fitsInWindow(local('2026-03-30T01:30', BERLIN), 3 * HOUR_MS, BERLIN, NIGHT), true);
});

test('a window start inside the spring-forward gap opens at the first instant after it', () => {
  const w = { start: '02:30', end: '04:00' };
  const s = windowStatus(local('2026-03-28T12:00', BERLIN), BERLIN, w);
  assert.equal(s.nextStart, utc('2026-03-29T01:00:00Z'), wall(s.nextStart, BERLIN)); // 03:00 CEST
  assert.equal(wall(s.nextStart, BERLIN), '2026-03-29 03:00 +02:00');
  assert.equal(s.nextEnd, utc('2026-03-29T02:00:00Z')); // 04:00 CEST
  assert.equal(windowStatus(utc('2026-03-29T00:59:59Z'), BERLIN, w).inside, false);
  assert.equal(windowStatus(utc('2026-03-29T01:00:00Z'), BERLIN, w).inside, true);

  // An end inside the gap closes the window when the clock jumps.
  const evening = windowStatus(local('2026-03-28T23:30', BERLIN), BERLIN, { start: '23:00', end: '02:30' });
  assert.equal(evening.currentEnd, utc('2026-03-29T01:00:00Z'));

  // A window entirely inside the gap does not happen that night.
  const gone = windowStatus(local('2026-03-28T12:00', BERLIN), BERLIN, { start: '02:15', end: '02:45' });
  assert.equal(wall(gone.nextStart, BERLIN), '2026-03-30 02:15 +02:00');
});

test('Berlin fall-back night (2026-10-25): the window is measured in wall-clock time, an hour longer', () => {
  // 03:00 CEST falls back to 02:00 CET at 01:00 UTC.
  const s = windowStatus(local('2026-10-24T12:00', BERLIN), BERLIN, NIGHT);
  assert.equal(s.nextStart, utc('2026-10-24T23:00:00Z')); // 01:00 CEST
  assert.equal(s.nextEnd, utc('2026-10-25T04:00:00Z')); // 05:00 CET
  assert.equal(s.nextEnd - s.nextStart, 5 * HOUR_MS);

  // A start in the repeated hour means its first reading, an end its second.
  const inRepeat = windowStatus(local('2026-10-24T12:00', BERLIN), BERLIN, { start: '02:30', end: '04:00' });
  assert.equal(inRepeat.nextStart, utc('2026-10-25T00:30:00Z')); // 02:30 CEST
  const endsInRepeat = windowStatus(utc('2026-10-25T01:15:00Z'), BERLIN, { start: '23:00', end: '02:30' }); // 02:15 CET
  assert.equal(endsInRepeat.inside, true);
  assert.equal(endsInRepeat.currentEnd, utc('2026-10-25T01:30:00Z')); // 02:30 CET

  // 3.5 hours from 02:30 CEST fit this night (until 05:00 CET), not an ordinary night.
  assert.equal(fitsInWindow(utc('2026-10-25T00:30:00Z'), 3.5 * HOUR_MS, BERLIN, NIGHT), true);
  assert.equal(fitsInWindow(local('2026-10-26T02:30', BERLIN), 3.5 * HOUR_MS, BERLIN, NIGHT), false);
});

test('fitsInWindow: only inside, and only when the update ends by the window end', () => {
  const at = local('2026-06-10T04:00', BERLIN);
  assert.equal(fitsInWindow(at, 59 * MINUTE_MS, BERLIN, NIGHT), true);
  assert.equal(fitsInWindow(at, 60 * MINUTE_MS, BERLIN, NIGHT), true);
  assert.equal(fitsInWindow(at, 61 * MINUTE_MS, BERLIN, NIGHT), false);
  assert.equal(fitsInWindow(local('2026-06-10T00:59', BERLIN), MINUTE_MS, BERLIN, NIGHT), false);
});

test('start == end means all day', () => {
  const w = { start: '03:00', end: '03:00' };
  for (const t of ['2026-06-10T02:59', '2026-06-10T03:00', '2026-06-10T15:00']) {
    const s = windowStatus(local(t, BERLIN), BERLIN, w);
    assert.equal(s.inside, true);
    assert.equal(s.allDay, true);
    assert.equal(s.currentEnd, null);
  }
  assert.equal(fitsInWindow(local('2026-06-10T02:59', BERLIN), 20 * HOUR_MS, BERLIN, w), true);
});

test('the same instant is inside the window in New York and outside it in Tokyo', () => {
  const at = utc('2026-06-10T06:00:00Z'); // 02:00 EDT, 15:00 JST
  assert.equal(windowStatus(at, 'America/New_York', NIGHT).inside, true);
  const tokyo = windowStatus(at, 'Asia/Tokyo', NIGHT);
  assert.equal(tokyo.inside, false);
  assert.equal(wall(tokyo.nextStart, 'Asia/Tokyo'), '2026-06-11 01:00 +09:00');
});

const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/Santiago', 'Asia/Kolkata', 'UTC'];
const timeOfDay = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
  .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
// Half the runs land within three days of a DST change in one of the zones above.
const DST_CHANGES = [
  '2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', // Europe
  '2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', // United States
  '2026-04-05T00:00:00Z', '2026-10-04T00:00:00Z', // Lord Howe (30 min), Chatham
  '2026-04-05T03:00:00Z', '2026-09-06T04:00:00Z', // Santiago (midnight changes)
].map(utc);
const DAY = 24 * HOUR_MS;
const instant = fc.oneof(
  fc.integer({ min: utc('2026-01-01T00:00:00Z'), max: utc('2027-12-31T00:00:00Z') }),
  fc.constantFrom(...DST_CHANGES).chain((t) => fc.integer({ min: t - 3 * DAY, max: t + 3 * DAY })),
);

test('property: windowStatus is coherent in every zone, across DST', () => {
  fc.assert(fc.property(instant, fc.constantFrom(...ZONES), timeOfDay, timeOfDay, (now, zone, start, end) => {
    const w = { start, end };
    const s = windowStatus(now, zone, w);
    if (s.allDay) return;
    assert.ok(s.nextStart > now);
    assert.ok(s.nextEnd > s.nextStart);
    if (s.inside) assert.ok(s.currentEnd !== null && s.currentEnd > now && s.currentEnd <= s.nextStart);
    else assert.equal(s.currentEnd, null);
    // The next occurrence opens exactly at nextStart and not a millisecond before.
    assert.equal(windowStatus(s.nextStart, zone, w).inside, true);
    assert.equal(windowStatus(s.nextStart - 1, zone, w).inside, false);
    // Its length is the wall-clock length, give or take one DST shift.
    const wallMinutes = (parseTimeOfDay(end).minuteOfDay - parseTimeOfDay(start).minuteOfDay + 1440) % 1440;
    assert.ok(Math.abs(s.nextEnd - s.nextStart - wallMinutes * MINUTE_MS) <= HOUR_MS);
    // It opens at the configured time, unless the clock jumped over it.
    const opensAt = localTimeOfDay(s.nextStart, zone);
    const jumped = DateTime.fromMillis(s.nextStart - 1, { zone }).offset !== DateTime.fromMillis(s.nextStart, { zone }).offset;
    assert.ok(opensAt === start || jumped, `${opensAt} vs ${start}`);
  }), { numRuns: 300 });
});

test('property: an update that fits is inside the window from start to finish', () => {
  fc.assert(fc.property(instant, fc.constantFrom(...ZONES), timeOfDay, timeOfDay, fc.integer({ min: 0, max: 10 * HOUR_MS }), (now, zone, start, end, duration) => {
    const w = { start, end };
    if (!fitsInWindow(now, duration, zone, w)) return;
    assert.equal(windowStatus(now, zone, w).inside, true);
    if (duration > 0) assert.equal(windowStatus(now + duration - 1, zone, w).inside, true);
  }), { numRuns: 200 });
});

test('learnQuietHours: a home busy 06:00–23:00 every day learns a block inside 23:00–06:00', () => {
  const now = local('2026-06-15T12:00', BERLIN);
  const usage = dailyUsage(now, BERLIN, 14, '06:00', '23:00');
  const learned = learnQuietHours(usage, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 });
  // Every block from 23:00 to 02:00 is equally quiet; the one nearest the overnight default wins.
  assert.deepEqual(learned, { start: '01:00', end: '05:00' });
  const longest = learnQuietHours(usage, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 7 });
  assert.deepEqual(longest, { start: '23:00', end: '06:00' });
});

test('learnQuietHours: avoids the hours that are in use, even a little', () => {
  const now = local('2026-06-15T12:00', BERLIN);
  const usage = dailyUsage(now, BERLIN, 10, '01:00', '01:20');
  assert.deepEqual(learnQuietHours(usage, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), { start: '02:00', end: '06:00' });
  // A night-shift home is quiet by day.
  const nightShift = dailyUsage(now, BERLIN, 10, '20:00', '08:00');
  assert.deepEqual(learnQuietHours(nightShift, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), { start: '08:00', end: '12:00' });
});

test('learnQuietHours: buckets by local hour, also across the spring-forward change', () => {
  const now = local('2026-04-05T12:00', BERLIN);
  const usage = dailyUsage(now, BERLIN, 14, '05:00', '00:30');
  assert.deepEqual(learnQuietHours(usage, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), { start: '01:00', end: '05:00' });
  // The same instants seen from Tokyo (7 hours ahead) give Tokyo's quiet hours.
  assert.deepEqual(learnQuietHours(usage, now, 'Asia/Tokyo', { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), { start: '08:00', end: '12:00' });
});

test('learnQuietHours: nothing learned without enough history, and bad options are refused', () => {
  const now = local('2026-06-15T12:00', BERLIN);
  assert.equal(learnQuietHours([], now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), null);
  const twoDays = dailyUsage(now, BERLIN, 2, '06:00', '23:00'); // first use 2 days and 6 hours ago
  assert.equal(learnQuietHours(twoDays, now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: 4 }), null);
  assert.notEqual(learnQuietHours(twoDays, now, BERLIN, { lookbackDays: 14, minHistoryDays: 2, lengthHours: 4 }), null);
  for (const lengthHours of [0, 24, 2.5]) {
    assert.throws(() => learnQuietHours(twoDays, now, BERLIN, { lookbackDays: 14, minHistoryDays: 2, lengthHours }), invalidInput);
  }
});

test('property: when a daily busy period leaves room, the learned window never touches it', () => {
  const now = local('2026-06-20T12:00', BERLIN);
  fc.assert(fc.property(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 23 }), (busyStart, busyHours, length) => {
    fc.pre(length <= 24 - busyHours);
    const start = `${String(busyStart).padStart(2, '0')}:00`;
    const end = `${String((busyStart + busyHours) % 24).padStart(2, '0')}:00`;
    const learned = learnQuietHours(dailyUsage(now, BERLIN, 10, start, end), now, BERLIN, { lookbackDays: 14, minHistoryDays: 3, lengthHours: length });
    assert.ok(learned);
    const s = parseTimeOfDay(learned.start).hour;
    assert.equal((parseTimeOfDay(learned.end).hour - s + 24) % 24, length % 24);
    for (let i = 0; i < length; i++) {
      const h = (s + i) % 24;
      assert.ok((h - busyStart + 24) % 24 >= busyHours, `learned ${learned.start}–${learned.end} overlaps busy ${start}–${end}`);
    }
  }), { numRuns: 60 });
});

test('effectiveWindow: the configured window unless quiet hours are learned', () => {
  const now = local('2026-06-15T12:00', BERLIN);
  const homeUsage = dailyUsage(now, BERLIN, 14, '05:00', '02:00');
  const base = { now, timeZone: BERLIN, window: { start: '01:00', end: '04:00' }, homeUsage, thresholds: { usageLookbackDays: 14, minUsageHistoryDays: 3 } };
  assert.deepEqual(effectiveWindow({ ...base, learnQuietHours: false }), { window: { start: '01:00', end: '04:00' }, learned: false });
  assert.deepEqual(effectiveWindow({ ...base, learnQuietHours: true }), { window: { start: '02:00', end: '05:00' }, learned: true });
  assert.deepEqual(effectiveWindow({ ...base, learnQuietHours: true, homeUsage: [] }), { window: { start: '01:00', end: '04:00' }, learned: false });
  // A 90-minute window learns a 2-hour block (minimum length).
  assert.deepEqual(effectiveWindow({ ...base, learnQuietHours: true, window: { start: '23:00', end: '00:30' } }), { window: { start: '02:00', end: '04:00' }, learned: true });
  // All day has nothing to narrow.
  assert.deepEqual(effectiveWindow({ ...base, learnQuietHours: true, window: { start: '00:00', end: '00:00' } }), { window: { start: '00:00', end: '00:00' }, learned: false });
});
