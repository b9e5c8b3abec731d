/**
 * The numbers behind the preflight gate. Homes carry defaults, devices may override them, and a
 * release may override them again (the maker knows its install best). Units are in the names.
 */
export interface PreflightThresholds {
  /** On battery, at least this charge (unless charging). */
  minBatteryPercent: number;
  /** Signal must be at least this strong (dBm; -50 strong, -80 weak). */
  minSignalDbm: number;
  /** Over the sampling window, strongest minus weakest sample must not exceed this. */
  maxSignalSpreadDb: number;
  /** How far back signal samples are considered. */
  signalWindowSeconds: number;
  /** Fewer samples than this in the window means "not enough evidence yet". */
  minSignalSamples: number;
  /** No connection drop-out in the last N seconds. */
  noDropoutSeconds: number;
  /** Free storage beyond the image size. */
  freeStorageMarginBytes: number;
  /** "Needed soon": predicted use must be at least this far beyond the expected install end. */
  neededSoonMarginSeconds: number;
  /** Usage prediction looks back this many days. */
  usageLookbackDays: number;
  /** Fewer days of history than this: no prediction (the rule passes and says so). */
  minUsageHistoryDays: number;
  /** Share of past days with use in the coming interval at which use is predicted. */
  usageLikelihood: number;
}

export const DEFAULT_THRESHOLDS: PreflightThresholds = {
  minBatteryPercent: 50,
  minSignalDbm: -72,
  maxSignalSpreadDb: 12,
  signalWindowSeconds: 300,
  minSignalSamples: 3,
  noDropoutSeconds: 900,
  freeStorageMarginBytes: 1024 * 1024,
  neededSoonMarginSeconds: 900,
  usageLookbackDays: 14,
  minUsageHistoryDays: 3,
  usageLikelihood: 0.3,
};

export function mergeThresholds(
  base: PreflightThresholds,
  ...overrides: (Partial<PreflightThresholds> | undefined)[]
): PreflightThresholds {
  const merged = { ...base };
  for (const o of overrides) {
    if (!o) continue;
    for (const [k, v] of Object.entries(o) as [keyof PreflightThresholds, number | undefined][]) {
      if (typeof v === 'number' && Number.isFinite(v)) merged[k] = v;
    }
  }
  return merged;
}
