import type { Device, DeviceConditions } from './device.ts';
import type { Home } from './home.ts';
import type { Job, JobEvent } from './job.ts';
import { isActive, isTerminal } from './job.ts';
import { orderJobs } from './planner.ts';
import { effectivePolicy, policyAllows } from './policy.ts';
import { runPreflight } from './preflight/index.ts';
import type { PreflightStage, PreflightVerdict } from './preflight/types.ts';
import type { Reason } from './reason.ts';
import type { Release } from './release.ts';
import { rolloutHold } from './rollout.ts';
import type { Rollout } from './rollout.ts';
import { mergeThresholds } from './thresholds.ts';
import type { EpochMs, Interval } from './time.ts';
import { SECOND_MS } from './time.ts';

/** Everything the sequencer needs to decide one home's next steps: a snapshot, no I/O. */
export interface HomeSnapshot {
  now: EpochMs;
  home: Home;
  /** The home's open jobs (any order). Terminal jobs are ignored. */
  jobs: Job[];
  devices: ReadonlyMap<string, Device>;
  conditions: ReadonlyMap<string, DeviceConditions>;
  releases: ReadonlyMap<string, Release>;
  /** Busy periods of the home's devices, for learned quiet hours. */
  homeUsage: Interval[];
  /**
   * Silence is measured from the later of the job's last message and this instant, so a hub that
   * was down does not fail devices for its own absence.
   */
  listeningSince: EpochMs;
  /** Staged rollouts by release id, each with the wave this home is in (absent: the release goes to every home). */
  rollouts?: ReadonlyMap<string, { rollout: Rollout; wave: number | undefined }>;
  /** Devices a person asked Firmward to leave alone: an update of theirs that has not started is cancelled, never offered. */
  ignored?: ReadonlySet<string>;
}

/** One step the caller persists (through `transition`) and then carries out. */
export interface SequencerStep {
  jobId: string;
  event: JobEvent;
}

export interface SequencerDecision {
  steps: SequencerStep[];
  /** The job holding the home's single active slot after these steps, if any. */
  activeJobId: string | null;
  /**
   * The earliest time at which looking at this home again could decide something else when
   * nothing is reported meanwhile: a silence deadline, a soak's end, a retry time, the earliest
   * time a failing check said it may pass (window opening, battery, signal, usage). Null: only a
   * change (a report, a job's end, a person, a release, a rollout wave) can move this home on.
   */
  nextLookAt: EpochMs | null;
}

/** Sentinel a person-requested update uses: the person chose the time, so the window rule is theirs. */
const PERSON_SKIPS: ReadonlySet<string> = new Set(['window']);

/**
 * The per-home sequencer (DESIGN: one device at a time, confirm each before the next).
 *
 * - Invariant 1: an offer is made only when the home has no active job, and at most one per call.
 * - Invariant 3: an offer needs a passing preflight at stage "start", the install go-ahead a passing
 *   preflight at stage "install"; only a person's force skips them, and the job records who.
 * - Invariant 6: nothing here ever cancels a job at or past the install step.
 * - A halted home offers nothing until a person resumes or skips.
 * - A device silent past its deadline fails; it never succeeds (DESIGN, path step 8).
 *
 * @example
 * const { steps } = sequenceHome(snapshot);
 * for (const step of steps) persistThenAct(step);
 */
export function sequenceHome(s: HomeSnapshot): SequencerDecision {
  const steps: SequencerStep[] = [];
  const open = s.jobs.filter((j) => !isTerminal(j.state) && j.homeId === s.home.id);
  const active = open.filter((j) => isActive(j.state));
  const silenceMs = s.home.settings.silenceTimeoutSeconds * SECOND_MS;

  let activeJobId: string | null = null;
  let nextLookAt: EpochMs | null = null;
  const lookAt = (at: EpochMs | null): void => {
    if (at !== null && (nextLookAt === null || at < nextLookAt)) nextLookAt = at;
  };
  // Each failing check's own time, not the verdict's recheckAt (the latest, when all may pass):
  // every reason shown is brought up to date when it can change.
  const lookAtChecks = (verdict: PreflightVerdict): void => {
    for (const f of verdict.failures) lookAt(f.recheckAt);
  };
  for (const job of active) {
    const heardAt = Math.max(job.lastHeardAt ?? job.stateSince, s.listeningSince);
    // While it installs, a device may be quiet for as long as the maker says the install takes:
    // some clients (SWUpdate) say nothing until they are done.
    const installing = job.state === 'installing' || job.state === 'rebooting';
    const allowedMs = installing ? Math.max(silenceMs, (s.releases.get(job.releaseId)?.expectedInstallSeconds ?? 0) * SECOND_MS) : silenceMs;
    if (s.now - heardAt > allowedMs) {
      steps.push({ jobId: job.id, event: { type: 'silent', silentForMs: s.now - heardAt } });
      continue;
    }
    lookAt(heardAt + allowedMs + 1);
    activeJobId = job.id;
    if (job.state === 'confirming' && job.confirmUntil !== null && s.now < job.confirmUntil) lookAt(job.confirmUntil);
    if (job.state === 'confirming' && job.confirmUntil !== null && s.now >= job.confirmUntil) {
      const report = s.conditions.get(job.deviceId)?.report;
      const online = s.conditions.get(job.deviceId)?.online ?? false;
      // Confirmed only while it still runs the new version, healthy and reachable.
      if (online && report && report.firmwareVersion === job.targetVersion && report.healthy) {
        steps.push({ jobId: job.id, event: { type: 'soak-complete' } });
      }
    } else if (job.state === 'downloaded') {
      const verdict = job.forcedBy ? null : gate(s, job, 'install');
      if (verdict === null || verdict.pass) {
        steps.push({ jobId: job.id, event: { type: 'approve-install' } });
      } else {
        steps.push({ jobId: job.id, event: { type: 'defer-install', reasons: reasonsOf(verdict), recheckAt: verdict.recheckAt } });
        lookAtChecks(verdict);
        activeJobId = null;
      }
    }
  }
  // A job that failed for silence this round leaves the home halted; the caller records the halt.
  const failing = steps.some((st) => st.event.type === 'silent');
  // Once the failure is saved the home is halted: the next look holds the others.
  if (failing) return { steps, activeJobId, nextLookAt: s.now };

  const waiting = orderJobs(open.filter((j) => j.state === 'queued' || j.state === 'waiting'));
  if (s.home.halt) {
    const device = s.devices.get(s.home.halt.deviceId);
    const r: Reason = {
      code: 'queue_halted',
      message: `Paused: the update of ${device?.name ?? s.home.halt.deviceId} failed. Resume or skip it to go on.`,
    };
    for (const job of waiting) steps.push(...hold(job, [r], null));
    return { steps, activeJobId: null, nextLookAt };
  }

  // While another device updates, the waiting ones are still checked, so each says what it
  // waits for ("Battery 23 %…") rather than only that it is not its turn.
  let offered = activeJobId !== null;
  for (const job of waiting) {
    if (s.ignored?.has(job.deviceId) === true) {
      steps.push({ jobId: job.id, event: { type: 'cancel', by: 'hub', message: 'Cancelled: you asked Firmward to leave this device alone.' } });
      continue;
    }
    // The device could not get it a moment ago (the hub or the repository out of reach): its own
    // reason stands until the retry time, and the home's slot goes to the next in line.
    if (job.state === 'waiting' && job.retryAt !== null && s.now < job.retryAt) {
      lookAt(job.retryAt);
      continue;
    }
    const release = s.releases.get(job.releaseId);
    const device = s.devices.get(job.deviceId);
    if (!release || !device) {
      steps.push(...hold(job, [{ code: 'release_missing', message: 'The release for this update is no longer available from the maker.' }], null));
      continue;
    }
    // A staged rollout decides which homes may start the release now — for a person's request too:
    // its waves and automatic stop protect the whole fleet (rollout.ts).
    const staged = s.rollouts?.get(job.releaseId);
    const stagedHold = staged ? rolloutHold(staged.rollout, staged.wave) : null;
    if (stagedHold) {
      steps.push(...hold(job, [stagedHold], null));
      continue;
    }
    const trigger = job.requestedBy ? 'person' : 'automatic';
    const policy = policyAllows(effectivePolicy(s.home.settings.policy, device.policy), release, trigger);
    if (!policy.allowed) {
      steps.push(...hold(job, [policy.reason], null));
      continue;
    }
    const verdict = gate(s, job, 'start');
    if (!verdict.pass) {
      steps.push(...hold(job, reasonsOf(verdict), verdict.recheckAt));
      lookAtChecks(verdict);
      continue;
    }
    if (offered) {
      steps.push(...hold(job, [{ code: 'in_line', message: 'Next in line: one device at a time in this home.' }], null));
      continue;
    }
    const expectedDoneAt = s.now + release.expectedInstallSeconds * SECOND_MS + s.home.settings.soakSeconds * SECOND_MS;
    steps.push({ jobId: job.id, event: { type: 'offer', expectedDoneAt, forcedBy: null, reasons: [] } });
    activeJobId = job.id;
    offered = true;
  }
  return { steps, activeJobId, nextLookAt };
}

/** Emits a hold only when it tells something new, so an idle home writes nothing. */
function hold(job: Job, reasons: Reason[], recheckAt: EpochMs | null): SequencerStep[] {
  if (job.state === 'waiting' && job.recheckAt === recheckAt && sameReasons(job.reasons, reasons)) return [];
  return [{ jobId: job.id, event: { type: 'hold', reasons, recheckAt } }];
}

function sameReasons(a: Reason[], b: Reason[]): boolean {
  return a.length === b.length && a.every((r, i) => r.code === b[i]?.code && r.message === b[i]?.message);
}

/** The failing rules' reasons, each said once (every rule that needs a report says "no report yet"). */
function reasonsOf(verdict: PreflightVerdict): Reason[] {
  const seen = new Set<string>();
  return verdict.failures.flatMap((f) => {
    const key = `${f.code}\u0000${f.message}`;
    if (seen.has(key)) return [];
    seen.add(key);
    return [{ code: f.code, message: f.message }];
  });
}

/** Runs the preflight gate for one job at one stage with the thresholds home < device < release. */
export function gate(s: Pick<HomeSnapshot, 'now' | 'home' | 'devices' | 'conditions' | 'releases' | 'homeUsage'>, job: Job, stage: PreflightStage): PreflightVerdict {
  const device = s.devices.get(job.deviceId);
  const release = s.releases.get(job.releaseId);
  const conditions = s.conditions.get(job.deviceId) ?? { online: false, report: null, signalSamples: [], dropouts: [], usage: [] };
  const thresholds = mergeThresholds(s.home.settings.thresholds, device?.thresholds, release?.preflightOverrides);
  const verdict = runPreflight({
    now: s.now,
    stage,
    timeZone: s.home.settings.timeZone,
    window: s.home.settings.window,
    learnQuietHours: s.home.settings.learnQuietHours,
    homeUsage: s.homeUsage,
    device: { schedules: device?.schedules ?? [] },
    conditions,
    thresholds,
    expectedInstallSeconds: release?.expectedInstallSeconds ?? 0,
    imageBytes: release?.image.lengthBytes ?? 0,
  });
  if (!job.requestedBy) return verdict;
  // A person pressing "update now" picks the time; every safety rule still applies.
  const failures = verdict.failures.filter((f) => !PERSON_SKIPS.has(f.rule));
  const recheck = failures.map((f) => f.recheckAt).filter((t): t is number => t !== null);
  return { ...verdict, failures, pass: failures.length === 0, recheckAt: recheck.length ? Math.max(...recheck) : null };
}
