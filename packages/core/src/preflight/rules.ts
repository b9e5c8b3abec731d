import type { DeviceReport, SignalSample } from '../device.ts';
import type { EpochMs } from '../time.ts';
import { MINUTE_MS, SECOND_MS } from '../time.ts';
import { effectiveWindow, localTimeOfDay, windowStatus } from '../window.ts';
import { describeWhen, formatAgo, formatDbm, formatDuration, formatMegabytes } from './format.ts';
import { findScheduledConflict, predictUsage } from './needed-soon.ts';
import type { PreflightInput, PreflightRuleName, RuleResult } from './types.ts';

/*
 * The preflight rules (DESIGN: the careful person's rules turned into a gate; invariant 3: never
 * start, nor move to the install step, while one fails). Each rule is pure: it reads the input
 * and returns one result with a stable code, one sentence for the householder, and — when it
 * fails — the earliest time it could pass (null: only a new report from the device can change it).
 */

export type PreflightRule = (input: PreflightInput) => RuleResult;

const BATTERY_RECHECK_MS = 15 * MINUTE_MS;
const SIGNAL_RECHECK_MS = MINUTE_MS;
const BUSY_RECHECK_MS = 5 * MINUTE_MS;
const USAGE_FALLBACK_RECHECK_MS = 30 * MINUTE_MS;

function pass(rule: PreflightRuleName, code: string, message: string): RuleResult {
  return { rule, pass: true, code, message, recheckAt: null };
}
function fail(rule: PreflightRuleName, code: string, message: string, recheckAt: EpochMs | null): RuleResult {
  return { rule, pass: false, code, message, recheckAt };
}

/** Rules after `online` need the device's latest report; without one they cannot judge. */
function needReport(rule: PreflightRuleName, input: PreflightInput, check: (report: DeviceReport) => RuleResult): RuleResult {
  const report = input.conditions.report;
  if (!report) return fail(rule, 'no_report', 'The device has not reported its state yet.', null);
  return check(report);
}

export const onlineRule: PreflightRule = (input) => {
  if (!input.conditions.online) return fail('online', 'device_offline', 'The device is offline.', null);
  if (!input.conditions.report) return fail('online', 'no_report', 'The device has not reported its state yet.', null);
  return pass('online', 'online', 'The device is online.');
};

/** DESIGN: "stable power, charged battery" — on mains, or battery at/above the threshold, or charging. */
export const powerRule: PreflightRule = (input) => needReport('power', input, (report) => {
  const min = input.thresholds.minBatteryPercent;
  if (report.powerSource === 'mains') return pass('power', 'mains', 'On mains power.');
  const percent = report.batteryPercent;
  if (report.charging) {
    return pass('power', 'battery_charging', percent === null ? 'On battery and charging.' : `Battery ${Math.floor(percent)} % and charging.`);
  }
  if (percent === null) return fail('power', 'battery_unknown', 'On battery, but the device does not say how charged it is.', null);
  if (percent >= min) return pass('power', 'battery_ok', `Battery ${Math.floor(percent)} %, enough for the update.`);
  // Floor, so 49.6 % never reads as the 50 % it falls short of.
  return fail('power', 'battery_low', `Battery ${Math.floor(percent)} %, needs ${min} % or charging.`, input.now + BATTERY_RECHECK_MS);
});

/**
 * DESIGN: "strong, stable WiFi" — enough recent readings, none weaker than the threshold, a
 * small spread between strongest and weakest, and no drop-out for a while. Wired devices pass.
 */
export const radioRule: PreflightRule = (input) => needReport('radio', input, (report) => {
  const { now, thresholds: t } = input;
  if (report.signalDbm === null) return pass('radio', 'wired', 'Wired connection; no WiFi signal to check.');

  const windowMs = t.signalWindowSeconds * SECOND_MS;
  const samples = input.conditions.signalSamples
    .filter((s) => s.at >= now - windowMs && s.at <= now)
    .sort((a, b) => a.at - b.at);
  // A sample leaves the window (which includes its start) 1 ms after it is windowMs old.
  const agedOut = (s: SignalSample): EpochMs => s.at + windowMs + 1;

  if (samples.length < t.minSignalSamples) {
    return fail('radio', 'signal_unmeasured', 'Measuring the WiFi signal; not enough readings yet.', now + SIGNAL_RECHECK_MS);
  }

  const weakSamples = samples.filter((s) => s.dbm < t.minSignalDbm);
  const reportWeak = report.signalDbm < t.minSignalDbm;
  if (reportWeak || weakSamples.length > 0) {
    const weakest = Math.min(report.signalDbm, ...samples.map((s) => s.dbm));
    const lastWeak = weakSamples[weakSamples.length - 1];
    const recheckAt = Math.max(reportWeak ? now + SIGNAL_RECHECK_MS : now, lastWeak ? agedOut(lastWeak) : now);
    return fail('radio', 'signal_weak', `WiFi signal ${formatDbm(weakest, 'weaker')}, needs ${formatDbm(t.minSignalDbm)} or stronger.`, recheckAt);
  }

  const spread = spreadOf(samples);
  if (spread > t.maxSignalSpreadDb) {
    return fail('radio', 'signal_unstable', `WiFi signal unsteady (swings of ${Math.ceil(spread)} dB); waiting for it to settle.`, settlesAt(samples, t.maxSignalSpreadDb, agedOut, now));
  }

  const quietMs = t.noDropoutSeconds * SECOND_MS;
  const recent = input.conditions.dropouts.filter((d) => d > now - quietMs);
  if (recent.length > 0) {
    const last = Math.max(...recent);
    return fail(
      'radio', 'signal_dropout',
      `The WiFi connection dropped ${formatAgo(now - last)}; waiting until it has been steady for ${formatDuration(quietMs)}.`,
      last + quietMs,
    );
  }
  return pass('radio', 'signal_ok', `WiFi signal ${formatDbm(Math.min(report.signalDbm, ...samples.map((s) => s.dbm)))} and steady.`);
});

function spreadOf(samples: readonly SignalSample[]): number {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const s of samples) {
    lo = Math.min(lo, s.dbm);
    hi = Math.max(hi, s.dbm);
  }
  return samples.length === 0 ? 0 : hi - lo;
}

/**
 * The earliest time the readings we have could be steady: once enough of the oldest ones have
 * left the window that the rest swing no more than allowed (new readings may of course differ).
 */
function settlesAt(sorted: readonly SignalSample[], maxSpread: number, agedOut: (s: SignalSample) => EpochMs, now: EpochMs): EpochMs {
  // Suffix minima and maxima: the spread of sorted[i+1 …].
  const n = sorted.length;
  const lo = new Array<number>(n + 1).fill(Number.POSITIVE_INFINITY);
  const hi = new Array<number>(n + 1).fill(Number.NEGATIVE_INFINITY);
  for (let i = n - 1; i >= 0; i--) {
    const dbm = sorted[i]?.dbm ?? 0;
    lo[i] = Math.min(lo[i + 1] ?? Number.POSITIVE_INFINITY, dbm);
    hi[i] = Math.max(hi[i + 1] ?? Number.NEGATIVE_INFINITY, dbm);
  }
  for (let i = 0; i < n; i++) {
    const restLo = lo[i + 1] ?? Number.POSITIVE_INFINITY;
    const restHi = hi[i + 1] ?? Number.NEGATIVE_INFINITY;
    const restSpread = i + 1 >= n ? 0 : restHi - restLo;
    const s = sorted[i];
    if (s && restSpread <= maxSpread) return agedOut(s);
  }
  return now + SIGNAL_RECHECK_MS;
}

/** Room for the image plus a margin (the device writes the inactive slot, then keeps both). */
export const storageRule: PreflightRule = (input) => needReport('storage', input, (report) => {
  const needed = input.imageBytes + input.thresholds.freeStorageMarginBytes;
  if (report.freeStorageBytes >= needed) return pass('storage', 'storage_ok', `${formatMegabytes(report.freeStorageBytes, 'down')} free, enough for the update.`);
  return fail('storage', 'storage_low', `Only ${formatMegabytes(report.freeStorageBytes, 'down')} free; the update needs ${formatMegabytes(needed, 'up')}.`, null);
});

/** DESIGN: "the device is not busy". */
export const busyRule: PreflightRule = (input) => needReport('busy', input, (report) => {
  if (report.busy) return fail('busy', 'device_busy', 'In use right now; the update waits until it is idle.', input.now + BUSY_RECHECK_MS);
  return pass('busy', 'idle', 'Not in use right now.');
});

/**
 * DESIGN: "its usage history / schedule predicts no use before the update's expected duration
 * plus a margin has passed". The interval is [now, now + expectedInstallSeconds + margin] at both
 * stages: at 'start' and again at 'install' (invariant 3: every rule runs at both).
 * Explicit schedules decide alone when a device has any; history is then ignored.
 */
export const neededSoonRule: PreflightRule = (input) => {
  const { now, timeZone, thresholds: t } = input;
  const until = now + (input.expectedInstallSeconds + t.neededSoonMarginSeconds) * SECOND_MS;

  if (input.device.schedules.length > 0) {
    const conflict = findScheduledConflict(input.device.schedules, now, until, timeZone);
    if (!conflict) return pass('needed-soon', 'no_scheduled_use', 'Not scheduled for use before the update would be done.');
    const { use, clearAt } = conflict;
    const message = use.start <= now
      ? `Scheduled for use until ${localTimeOfDay(use.end, timeZone)}; the update waits until after.`
      : `Scheduled for use at ${localTimeOfDay(use.start, timeZone)}; the update would not finish in time.`;
    return fail('needed-soon', 'scheduled_use', message, clearAt);
  }

  const prediction = predictUsage(input.conditions.usage, now, until, timeZone, t);
  if (prediction.kind === 'no-history') {
    return pass('needed-soon', 'no_usage_history', 'Not enough usage history to predict; assuming it is free.');
  }
  const { daysWithUse, daysWithHistory, likelihood, typicalStart, typicalEnd } = prediction;
  if (daysWithUse > 0 && likelihood >= t.usageLikelihood) {
    const recheckAt = typicalEnd !== null && typicalEnd > now ? typicalEnd : now + USAGE_FALLBACK_RECHECK_MS;
    const message = typicalStart === null || typicalStart <= now
      ? `Usually in use at this time until about ${localTimeOfDay(recheckAt, timeZone)}; the update waits until after.`
      : `Usually in use around ${localTimeOfDay(typicalStart, timeZone)}; the update would not finish in time.`;
    return fail('needed-soon', 'needed_soon', message, recheckAt);
  }
  return pass(
    'needed-soon', 'not_needed_soon',
    daysWithUse === 0
      ? 'Not usually in use at this time; it should stay free until the update is done.'
      : `Rarely in use at this time (${daysWithUse} of the last ${daysWithHistory} days); it should stay free until the update is done.`,
  );
};

/**
 * DESIGN: "maintenance windows per home in its own time zone, quiet hours learned from usage; an
 * update that would not finish inside the window is not started". Only the expected install time
 * has to fit; the needed-soon margin guards the household, not the window.
 */
export const windowRule: PreflightRule = (input) => {
  const { now, timeZone } = input;
  const effective = effectiveWindow(input);
  const status = windowStatus(now, timeZone, effective.window);
  const hours = effective.learned ? 'learned quiet hours' : 'quiet hours';
  const name = `${hours} ${effective.window.start}–${effective.window.end}`;
  if (status.allDay) return pass('window', 'inside_window', 'Updates may run at any time of day.');
  const next = describeWhen(status.nextStart, now, timeZone);
  if (!status.inside || status.currentEnd === null) {
    return fail('window', 'outside_window', `Outside the ${name}; next chance ${next}.`, status.nextStart);
  }
  const installMs = input.expectedInstallSeconds * SECOND_MS;
  if (now + installMs > status.currentEnd) {
    return fail(
      'window', 'window_too_short',
      `The update takes about ${formatDuration(installMs)} but the ${hours} end at ${localTimeOfDay(status.currentEnd, timeZone)}; next chance ${next}.`,
      status.nextStart,
    );
  }
  return pass('window', 'inside_window', `Inside the ${name}.`);
};

/** Every rule, in the fixed order the verdict lists them. */
export const PREFLIGHT_RULES: readonly (readonly [PreflightRuleName, PreflightRule])[] = [
  ['online', onlineRule],
  ['power', powerRule],
  ['radio', radioRule],
  ['storage', storageRule],
  ['busy', busyRule],
  ['needed-soon', neededSoonRule],
  ['window', windowRule],
];
