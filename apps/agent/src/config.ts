import { FirmwardError } from '@firmward/core';

/** The agent's settings; units are in the names (STYLE principle 11). */
export interface AgentConfig {
  /** Bytes written between two syncs and journal checkpoints: at most this much is downloaded again after a cut. */
  downloadChunkBytes: number;
  /** How often the retained state is published (also after every change). */
  stateReportIntervalMs: number;
  /** A health check that has not answered after this long counts as failed. */
  healthCheckTimeoutMs: number;
  /** The device's own preflight: on battery and not charging, at least this charge to accept an offer. */
  minBatteryPercent: number;
  /** The device's own preflight: a signal weaker than this refuses an offer or the install step. */
  minSignalDbm: number;
  /**
   * How long a download keeps retrying without progress (the hub away, the network down) before the
   * device tells the hub it could not get the update; it keeps what it has and resumes when offered again.
   */
  downloadRetryBudgetMs: number;
  /** The first pause between download tries; it doubles up to a minute. */
  downloadRetryDelayMs: number;
  /** No byte for this long counts as a dropped connection. */
  downloadStallTimeoutMs: number;
}

export const DEFAULT_AGENT_CONFIG: AgentConfig = {
  downloadChunkBytes: 4 * 1024 * 1024,
  stateReportIntervalMs: 60_000,
  healthCheckTimeoutMs: 30_000,
  minBatteryPercent: 20,
  minSignalDbm: -85,
  downloadRetryBudgetMs: 30 * 60_000,
  downloadRetryDelayMs: 2_000,
  downloadStallTimeoutMs: 60_000,
};

/** Defaults < the given values; anything not a positive finite number (a dBm in range for minSignalDbm) is refused. */
export function agentConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  const merged: AgentConfig = { ...DEFAULT_AGENT_CONFIG };
  for (const [key, value] of Object.entries(overrides) as [keyof AgentConfig, number | undefined][]) {
    if (value === undefined) continue;
    if (key === 'minSignalDbm') {
      // dBm are negative: -130 (nothing) to 0.
      if (!Number.isFinite(value) || value < -130 || value > 0) {
        throw new FirmwardError('config_invalid', `The agent setting minSignalDbm must be between -130 and 0 dBm, not ${String(value)}.`);
      }
    } else if (!Number.isFinite(value) || value < 0 || (key !== 'minBatteryPercent' && value === 0)) {
      throw new FirmwardError('config_invalid', `The agent setting ${key} must be a positive number, not ${String(value)}.`);
    }
    merged[key] = value;
  }
  return merged;
}
