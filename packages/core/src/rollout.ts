/**
 * Staged rollouts across homes: a release reaches the fleet in waves that grow (e.g. 1 %, 5 %,
 * 25 %, all), each wave opening only once the one before is confirmed, and the rollout stops by
 * itself when too many updates fail or get stuck. Per-home sequencing still holds inside every
 * wave: this module only decides *which homes may start* the release now. Pure: data in,
 * decisions with reasons out.
 */
import { FirmwardError } from './errors.ts';
import { isActive, isTerminal } from './job.ts';
import type { Job } from './job.ts';
import type { Reason } from './reason.ts';
import type { EpochMs } from './time.ts';
import { SECOND_MS } from './time.ts';

export type RolloutState = 'running' | 'paused' | 'stopped' | 'aborted' | 'completed';

export interface RolloutRules {
  /** Cumulative share of homes per wave, in percent, strictly growing, the last 100. */
  waves: number[];
  /** Stop when failed ÷ finished among the opened waves exceeds this (0..1)… */
  maxFailureRate: number;
  /** …once at least this many updates have finished (success or failure). */
  minFinished: number;
  /** Stop when this many updates are stuck: running longer than `stuckAfterSeconds`. */
  maxStuck: number;
  stuckAfterSeconds: number;
  /**
   * A wave also counts as done when it has been open this long and nothing in it is running: the
   * devices still waiting (on battery, say) go on by themselves, but do not hold up the fleet.
   */
  waveMaxSeconds: number;
}

export const DEFAULT_ROLLOUT_RULES: RolloutRules = {
  waves: [1, 5, 25, 100],
  maxFailureRate: 0.05,
  minFinished: 10,
  maxStuck: 5,
  stuckAfterSeconds: 4 * 3600,
  waveMaxSeconds: 3 * 24 * 3600,
};

export interface RolloutLogEntry {
  at: EpochMs;
  code: string;
  message: string;
  actor: string;
}

export interface Rollout {
  id: string;
  releaseId: string;
  rules: RolloutRules;
  state: RolloutState;
  /** Index into `rules.waves` of the newest opened wave. */
  wave: number;
  waveOpenedAt: EpochMs;
  /**
   * Failures and successes count from here: the start, or the moment a person resumed a rollout
   * that stopped by itself (they looked; the old failures would stop it again at once).
   */
  countFrom: EpochMs;
  /** Why the rollout is not running (paused, stopped, aborted), in one sentence. */
  reason: Reason | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
  /** Compare-and-set counter: every save names the version it read. */
  version: number;
  /** What happened, newest last (bounded). */
  log: RolloutLogEntry[];
}

const LOG_KEPT = 50;

/** Checks the rules a person gives; throws `invalid_input` with every problem in one sentence. */
export function validateRolloutRules(rules: RolloutRules): RolloutRules {
  const problems: string[] = [];
  const w = rules.waves;
  if (w.length === 0 || w.length > 20) problems.push('give between 1 and 20 waves');
  if (w.some((p) => !Number.isFinite(p) || p <= 0 || p > 100)) problems.push('each wave is a share of homes above 0 and at most 100 %');
  if (w.some((p, i) => i > 0 && p <= w[i - 1]!)) problems.push('each wave must reach more homes than the one before');
  if (w.length > 0 && w[w.length - 1] !== 100) problems.push('the last wave must reach 100 % of homes');
  if (!(rules.maxFailureRate >= 0 && rules.maxFailureRate <= 1)) problems.push('the failure rate that stops the rollout is between 0 and 1');
  if (!Number.isInteger(rules.minFinished) || rules.minFinished < 1) problems.push('the number of finished updates before the failure rate counts is a whole number from 1');
  if (!Number.isInteger(rules.maxStuck) || rules.maxStuck < 1) problems.push('the number of stuck updates that stops the rollout is a whole number from 1');
  if (!(rules.stuckAfterSeconds >= 60)) problems.push('an update counts as stuck after at least 60 seconds');
  if (!(rules.waveMaxSeconds >= 60)) problems.push('a wave stays open at least 60 seconds');
  if (problems.length > 0) throw new FirmwardError('invalid_input', `This rollout cannot start: ${problems.join('; ')}.`);
  return rules;
}

export function newRollout(o: { id: string; releaseId: string; rules: RolloutRules; actor: string }, now: EpochMs): Rollout {
  const rules = validateRolloutRules(o.rules);
  return {
    id: o.id, releaseId: o.releaseId, rules, state: 'running', wave: 0, waveOpenedAt: now, countFrom: now, reason: null,
    createdAt: now, updatedAt: now, version: 1,
    log: [{ at: now, code: 'rollout_started', message: `${o.actor} started a staged rollout of ${o.releaseId}: waves of ${rules.waves.join(' %, ')} % of homes.`, actor: o.actor }],
  };
}

/** A deterministic, well-spread rank for a home within one rollout (FNV-1a over rollout id and home id). */
function rankOf(rolloutId: string, homeId: string): number {
  let h = 0x811c9dc5;
  const text = `${rolloutId}\u0000${homeId}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Which wave each home belongs to. Homes are ordered by a hash of the rollout and home ids (the
 * same every time, different per rollout), and wave i takes the first ⌈waves[i] % × homes⌉ —
 * at least one home for the first wave, so a small fleet still starts with a small step.
 */
export function assignWaves(rollout: Pick<Rollout, 'id' | 'rules'>, homeIds: readonly string[]): Map<string, number> {
  const ordered = [...homeIds].sort((a, b) => rankOf(rollout.id, a) - rankOf(rollout.id, b) || (a < b ? -1 : a > b ? 1 : 0));
  const n = ordered.length;
  const cut = rollout.rules.waves.map((p) => Math.max(1, Math.ceil((p / 100) * n)));
  const waves = new Map<string, number>();
  let wave = 0;
  ordered.forEach((homeId, i) => {
    while (wave < cut.length - 1 && i >= cut[wave]!) wave++;
    waves.set(homeId, wave);
  });
  return waves;
}

/**
 * Whether a home may start this release now, or why not. Only jobs that have not started are held:
 * an update already running always finishes (invariant 6), whatever happens to the rollout.
 */
export function rolloutHold(rollout: Rollout, homeWave: number | undefined): Reason | null {
  const wave = homeWave ?? rollout.rules.waves.length - 1;
  switch (rollout.state) {
    case 'completed':
      return null;
    case 'paused':
    case 'stopped':
    case 'aborted':
      return rollout.reason ?? { code: `rollout_${rollout.state}`, message: `The staged rollout of this update is ${rollout.state}.` };
    case 'running':
      if (wave <= rollout.wave) return null;
      return {
        code: 'rollout_wave',
        // The same sentence while earlier waves open: it does not name the current wave, so opening one
        // does not rewrite the reason of every update still waiting (100,000 saves in a large fleet).
        message: `Waiting for its turn in the staged rollout: this home is in wave ${wave + 1} (${rollout.rules.waves[wave]} % of homes), which opens once the waves before it are confirmed.`,
      };
  }
}

export interface RolloutProgress {
  /** Per opened wave: how many of its homes' updates of this release are where. */
  finished: number;
  succeeded: number;
  failed: number;
  running: number;
  stuck: number;
  waiting: number;
  /** Every job of the newest opened wave is finished, or the wave has been open long enough with nothing running. */
  waveDone: boolean;
}

/** Counts the release's jobs in the opened waves (the waves up to and including `rollout.wave`). */
export function rolloutProgress(rollout: Rollout, jobs: readonly Pick<Job, 'homeId' | 'releaseId' | 'state' | 'stateSince'>[], waveOf: ReadonlyMap<string, number>, now: EpochMs): RolloutProgress {
  const p: RolloutProgress = { finished: 0, succeeded: 0, failed: 0, running: 0, stuck: 0, waiting: 0, waveDone: true };
  let currentOpen = 0;
  let currentRunning = 0;
  for (const job of jobs) {
    if (job.releaseId !== rollout.releaseId) continue;
    const wave = waveOf.get(job.homeId);
    if (wave === undefined || wave > rollout.wave) continue;
    const counts = job.stateSince >= rollout.countFrom;
    if (job.state === 'succeeded') p.succeeded += counts ? 1 : 0;
    else if (job.state === 'failed') p.failed += counts ? 1 : 0;
    else if (isActive(job.state)) {
      p.running++;
      if (now - job.stateSince >= rollout.rules.stuckAfterSeconds * SECOND_MS && job.state !== 'confirming') p.stuck++;
    } else if (!isTerminal(job.state)) p.waiting++;
    if (wave === rollout.wave && !isTerminal(job.state)) {
      currentOpen++;
      if (isActive(job.state)) currentRunning++;
    }
  }
  p.finished = p.succeeded + p.failed;
  const openLongEnough = now - rollout.waveOpenedAt >= rollout.rules.waveMaxSeconds * SECOND_MS;
  p.waveDone = currentOpen === 0 || (openLongEnough && currentRunning === 0);
  return p;
}

/**
 * The rollout's next state: stop on too many failures or stuck updates, open the next wave once the
 * newest one is done, complete after the last. Returns null when nothing changes.
 */
export function advanceRollout(rollout: Rollout, progress: RolloutProgress, now: EpochMs): Rollout | null {
  if (rollout.state !== 'running') return null;
  const r = rollout.rules;
  if (progress.finished >= r.minFinished && progress.failed / progress.finished > r.maxFailureRate) {
    const pct = Math.round((100 * progress.failed) / progress.finished);
    return stop(rollout, now, {
      code: 'rollout_stopped_failures',
      message: `The staged rollout stopped by itself: ${progress.failed} of ${progress.finished} finished updates failed (${pct} %, more than ${Math.round(r.maxFailureRate * 100)} %). Updates already running finish; no new ones start until someone looks and resumes it.`,
    });
  }
  if (progress.stuck >= r.maxStuck) {
    return stop(rollout, now, {
      code: 'rollout_stopped_stuck',
      message: `The staged rollout stopped by itself: ${progress.stuck} updates have been running for more than ${Math.round(r.stuckAfterSeconds / 60)} minutes. No new ones start until someone looks and resumes it.`,
    });
  }
  if (!progress.waveDone) return null;
  if (rollout.wave >= r.waves.length - 1) {
    return logged({ ...rollout, state: 'completed', updatedAt: now, version: rollout.version + 1 }, { at: now, code: 'rollout_completed', message: `Every wave is done: ${progress.succeeded} updated, ${progress.failed} failed.`, actor: 'hub' });
  }
  const next = rollout.wave + 1;
  return logged(
    { ...rollout, wave: next, waveOpenedAt: now, updatedAt: now, version: rollout.version + 1 },
    { at: now, code: 'rollout_wave_opened', message: `Wave ${next} is confirmed (${progress.succeeded} updated, ${progress.failed} failed so far); wave ${next + 1} opens: ${r.waves[next]} % of homes.`, actor: 'hub' },
  );
}

function stop(rollout: Rollout, now: EpochMs, reason: Reason): Rollout {
  return logged({ ...rollout, state: 'stopped', reason, updatedAt: now, version: rollout.version + 1 }, { at: now, code: reason.code, message: reason.message, actor: 'hub' });
}

function logged(rollout: Rollout, entry: RolloutLogEntry): Rollout {
  return { ...rollout, log: [...rollout.log, entry].slice(-LOG_KEPT) };
}

export type RolloutAction = 'pause' | 'resume' | 'abort';

/**
 * A person's pause, resume or abort. Resume also restarts a rollout that stopped by itself — the
 * person has looked — and failures count afresh from then on, so a resumed rollout that keeps
 * failing stops again.
 */
export function actOnRollout(rollout: Rollout, action: RolloutAction, actor: string, now: EpochMs): Rollout {
  const who = actor.replace(/^person:/, '');
  const done = rollout.state === 'aborted' || rollout.state === 'completed';
  switch (action) {
    case 'pause':
      if (rollout.state !== 'running') throw new FirmwardError('conflict', `The rollout is ${rollout.state}; only a running rollout can be paused.`);
      return logged({ ...rollout, state: 'paused', reason: { code: 'rollout_paused', message: `The staged rollout of this update is paused by ${who}.` }, updatedAt: now, version: rollout.version + 1 },
        { at: now, code: 'rollout_paused', message: `${who} paused the rollout.`, actor });
    case 'resume':
      if (rollout.state !== 'paused' && rollout.state !== 'stopped') throw new FirmwardError('conflict', `The rollout is ${rollout.state}; only a paused or stopped rollout can be resumed.`);
      return logged({
        ...rollout, state: 'running', reason: null, updatedAt: now, version: rollout.version + 1,
        ...(rollout.state === 'stopped' && { waveOpenedAt: now, countFrom: now }),
      },
        { at: now, code: 'rollout_resumed', message: `${who} resumed the rollout at wave ${rollout.wave + 1}.`, actor });
    case 'abort':
      if (done) throw new FirmwardError('conflict', `The rollout is already ${rollout.state}.`);
      return logged({ ...rollout, state: 'aborted', reason: { code: 'rollout_aborted', message: `The staged rollout of this update was called off by ${who}; it will not be installed.` }, updatedAt: now, version: rollout.version + 1 },
        { at: now, code: 'rollout_aborted', message: `${who} called the rollout off; updates not yet started are cancelled, running ones finish.`, actor });
  }
}
