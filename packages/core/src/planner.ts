/**
 * Matches releases to devices and orders the work (DESIGN, path step 3). Data in, decisions out
 * (STYLE rule 2): the hub persists the planned jobs and decides when they start.
 *
 * Every job it plans has passed `checkCompatibility` (invariant 2, and invariant 5's "never
 * downgrade"); every device it plans nothing for gets the one reason most worth reading.
 */
import type { CompatibilityAssessment, CompatibilityDevice, PreparedRelease, ReadVersion } from './compatibility.ts';
import { assessPrepared, orList, prepareRelease, readVersion } from './compatibility.ts';
import type { Device } from './device.ts';
import type { Home } from './home.ts';
import type { Job } from './job.ts';
import { FirmwardError } from './errors.ts';
import { effectivePolicy, policyAllows } from './policy.ts';
import type { Reason } from './reason.ts';
import { reason } from './reason.ts';
import type { Release, Severity, Vulnerability } from './release.ts';
import type { EpochMs } from './time.ts';
import type { ParsedVersion } from './version.ts';
import { compareOrRefuse, createVersionParser } from './version.ts';

/** Lower runs first (DESIGN: "devices running an affected or retracted version are flagged and put first"). */
export const PRIORITY_URGENT = 0;
export const PRIORITY_SECURITY = 1;
export const PRIORITY_NORMAL = 2;

export interface PlannedJob {
  deviceId: string;
  homeId: string;
  releaseId: string;
  fromVersion: string;
  targetVersion: string;
  /** 0: runs a retracted version or is exposed to a critical/high vulnerability; 1: other security fixes; 2: the rest. */
  priority: number;
  /** Whether the device's policy lets this start on its own; false means "available, waiting for you". */
  policyAllows: boolean;
  reason: Reason;
}

export interface NoJob {
  deviceId: string;
  reason: Reason;
  /**
   * Set when a signed release exists that does not apply to this device (another hardware
   * revision, a model spelled differently, a stepping stone needed, only older versions): the
   * release the reason names, so the hub can record it once per release.
   */
  releaseId?: string;
}

export interface PlanInput {
  /** The plan's one reference time (STYLE rule 10); returned as `plannedAt`. */
  now: EpochMs;
  devices: readonly Device[];
  homes: ReadonlyMap<string, Home> | Readonly<Record<string, Home>>;
  releases: readonly Release[];
  /** A device with a job that is not yet succeeded, failed or cancelled gets no new one. */
  openJobsByDevice: ReadonlyMap<string, Pick<Job, 'targetVersion'>>;
  /** `skipKey(deviceId, releaseId)` for each release a person chose to skip on a device. */
  skipped: ReadonlySet<string>;
  /** Devices a person asked Firmward to leave alone: listed, never updated. */
  ignored?: ReadonlySet<string>;
}

export interface PlanResult {
  plannedAt: EpochMs;
  /** Ordered by priority, then device id. */
  jobs: PlannedJob[];
  /** Ordered by device id. */
  noJob: NoJob[];
  /**
   * Per device, the vulnerabilities fixed by a newer release for its exact model and hardware
   * revision — whether or not that release may be installed right now (retracted, needs a
   * stepping-stone version). Devices exposed to none are absent.
   */
  vulnerable: Map<string, Vulnerability[]>;
}

/** The key of `PlanInput.skipped`. */
export function skipKey(deviceId: string, releaseId: string): string {
  return `${deviceId}|${releaseId}`;
}

const SEVERITY_RANK: Record<Severity, number> = { none: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** What every device with the same vendor, model, hardware revision and installed version shares. */
interface Evaluation {
  chosen: Release | null;
  /** Set when `chosen` is null. */
  why: Reason | null;
  /** The release `why` is about, when one exists but does not apply. */
  whyRelease: string | null;
  vulnerabilities: Vulnerability[];
  priority: number;
  runsRetracted: boolean;
}

/** One model's releases, read once per plan. */
interface ModelReleases {
  /** Every release of the model that lists the revision (the only ones that can pass the hardware gate). */
  byRevision: Map<string, PreparedRelease<Release>[]>;
  /** Every release of the model, any revision (to tell a device that a newer one exists, for other hardware). */
  all: PreparedRelease<Release>[];
  /** Retracted releases of the model, any revision: a device running one of these versions is urgent. */
  retracted: PreparedRelease<Release>[];
}

type ReleaseIndex = Map<string, Map<string, ModelReleases>>;

const byReleaseId = (a: PreparedRelease<Release>, b: PreparedRelease<Release>): number =>
  (a.release.id < b.release.id ? -1 : a.release.id > b.release.id ? 1 : 0);

/**
 * vendor → model → releases with their versions read once, sorted by id so ties resolve the same
 * way on every run, whatever order the releases came in. The revision lists only narrow the
 * search: every release found there still goes through the full compatibility gate.
 */
function indexReleases(releases: readonly Release[], parse: (raw: string) => ParsedVersion): ReleaseIndex {
  const index: ReleaseIndex = new Map();
  for (const r of releases) {
    let byModel = index.get(r.vendor);
    if (!byModel) {
      byModel = new Map<string, ModelReleases>();
      index.set(r.vendor, byModel);
    }
    let entry = byModel.get(r.model);
    if (!entry) {
      entry = { byRevision: new Map(), all: [], retracted: [] };
      byModel.set(r.model, entry);
    }
    const prepared = prepareRelease(r, parse);
    entry.all.push(prepared);
    if (r.retracted) entry.retracted.push(prepared);
    for (const revision of new Set(r.hardwareRevisions)) {
      const list = entry.byRevision.get(revision);
      if (list) list.push(prepared);
      else entry.byRevision.set(revision, [prepared]);
    }
  }
  for (const byModel of index.values()) {
    for (const entry of byModel.values()) {
      entry.retracted.sort(byReleaseId);
      entry.all.sort(byReleaseId);
      for (const list of entry.byRevision.values()) list.sort(byReleaseId);
    }
  }
  return index;
}

/**
 * How informative a refusal among the releases for the device's revision is, lower = tell the
 * person this one: a newer release that needs a stepping stone, then a retracted newer release,
 * then numbering we cannot order, then "up to date" or "only older ones". (A newer release for
 * other hardware or a differently spelled model is told between the two groups: see `evaluate`.)
 */
function refusalRank(a: CompatibilityAssessment): number {
  if (a.result.ok) return Number.POSITIVE_INFINITY;
  switch (a.result.code) {
    case 'not_applicable_from': return 0;
    case 'retracted': return 1;
    case 'version_ambiguous':
    case 'version_invalid': return 2;
    case 'already_up_to_date':
    case 'downgrade': return 3;
    case 'model_mismatch':
    case 'hardware_mismatch': return 4;
  }
}

/** The newest release in `list` that is strictly newer than `installed` and passes `keep`, or null. */
function newestNewer(list: readonly PreparedRelease<Release>[], installed: ReadVersion, keep: (r: Release) => boolean): { release: Release; version: ParsedVersion } | null {
  let best: { release: Release; version: ParsedVersion } | null = null;
  for (const { release, version } of list) {
    if (version instanceof FirmwardError || release.retracted || !keep(release) || !isNewer(version, installed)) continue;
    if (best === null || isNewer(version, best.version)) best = { release, version };
  }
  return best;
}

/** Model names as a person would read them: case, spaces and punctuation aside ("Quick-Plug" and "quickplug"). */
const looseModel = (model: string): string => model.toLowerCase().replace(/[^a-z0-9]/g, '');

function isNewer(a: ReadVersion, b: ReadVersion | null): boolean {
  if (b === null || a instanceof FirmwardError || b instanceof FirmwardError) return false;
  return compareOrRefuse(a, b) === 1;
}

function evaluate(device: CompatibilityDevice, vendor: ReadonlyMap<string, ModelReleases> | undefined, parse: (raw: string) => ParsedVersion): Evaluation {
  const model = vendor?.get(device.model);
  const installed = readVersion(device.firmwareVersion, parse);
  const releases = model?.byRevision.get(device.hardwareRevision) ?? [];
  const exposure = new Map<string, Vulnerability>();
  const candidates: { release: Release; version: ParsedVersion }[] = [];
  let best: { release: Release; version: ParsedVersion } | null = null;
  let refusal: { prepared: PreparedRelease<Release>; assessment: CompatibilityAssessment; rank: number; version: ReadVersion } | null = null;
  // "Runs a retracted version": the maker withdrew the very version this device runs.
  let runsRetracted = false;
  if (!(installed instanceof FirmwardError)) {
    for (const { version } of model?.retracted ?? []) {
      if (!(version instanceof FirmwardError) && compareOrRefuse(version, installed) === 0) {
        runsRetracted = true;
        break;
      }
    }
  }

  for (const prepared of releases) {
    const { release, version } = prepared;
    const assessment = assessPrepared(prepared, device, installed, false);
    // Past the version gate the release is newer than what the device runs: its fixes are ones
    // the device lacks, even when it may not be installed yet.
    if (assessment.gate === 'passed' || assessment.gate === 'retracted' || assessment.gate === 'range') {
      for (const v of release.vulnerabilitiesFixed) {
        const seen = exposure.get(v.id);
        if (!seen || SEVERITY_RANK[v.severity] > SEVERITY_RANK[seen.severity]) exposure.set(v.id, v);
      }
    }
    if (assessment.result.ok && !(version instanceof FirmwardError)) {
      candidates.push({ release, version });
      if (best === null || isNewer(version, best.version)) best = { release, version };
      continue;
    }
    const rank = refusalRank(assessment);
    if (refusal === null || rank < refusal.rank || (rank === refusal.rank && isNewer(version, refusal.version))) {
      refusal = { prepared, assessment, rank, version };
    }
  }

  const vulnerabilities = [...exposure.values()].sort(
    (a, b) => SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  const urgent = runsRetracted || vulnerabilities.some((v) => v.severity === 'critical' || v.severity === 'high');
  const priority = urgent ? PRIORITY_URGENT : vulnerabilities.length > 0 ? PRIORITY_SECURITY : PRIORITY_NORMAL;
  const result = (chosen: Release | null, why: Reason | null, whyRelease: Release | null = null): Evaluation => ({
    chosen, why, whyRelease: whyRelease?.id ?? null, vulnerabilities, priority, runsRetracted,
  });

  if (best !== null) {
    // "The newest" must be certain (invariant 5): the pick has to be at least as new as every
    // other candidate, or the maker's numbering leaves the choice to a guess we do not make.
    for (const c of candidates) {
      const cmp = compareOrRefuse(best.version, c.version);
      if (cmp instanceof FirmwardError) return result(null, reason('version_ambiguous', cmp.message));
    }
    return result(best.release, null);
  }
  // Only the refusal the person will read is worded.
  const refused = refusal === null ? undefined : assessPrepared(refusal.prepared, device, installed, true).result;
  if (refusal !== null && refused !== undefined && !refused.ok && refusal.rank < 3) {
    return result(null, reason(refused.code, refused.message), refusal.prepared.release);
  }
  // A newer signed release that is not for this device's hardware revision, or for a model spelled
  // differently, is said — "Up to date" would hide that the maker has moved on without it.
  const running = installed instanceof FirmwardError ? device.firmwareVersion : installed.raw;
  const forOtherHardware = model === undefined ? null : newestNewer(model.all, installed, (r) => !r.hardwareRevisions.includes(device.hardwareRevision));
  if (forOtherHardware !== null) {
    const revisions = forOtherHardware.release.hardwareRevisions;
    return result(null, reason('hardware_mismatch',
      `The maker's ${forOtherHardware.version.raw} is for the ${device.vendor} ${device.model} hardware ${revisions.length === 1 ? 'revision' : 'revisions'} ${orList(revisions)}; this device is revision ${device.hardwareRevision}, so it stays on ${running}.`),
    forOtherHardware.release);
  }
  const loose = looseModel(device.model);
  const otherSpelling = [...(vendor?.entries() ?? [])]
    .filter(([name]) => name !== device.model && looseModel(name) === loose)
    .map(([, releases]) => newestNewer(releases.all, installed, (r) => r.hardwareRevisions.includes(device.hardwareRevision)))
    .find((found) => found !== null) ?? null;
  if (otherSpelling !== null) {
    return result(null, reason('model_mismatch',
      `The maker's ${otherSpelling.version.raw} is for the ${device.vendor} ${otherSpelling.release.model}; this device reports itself as the ${device.model}, and Firmward matches models exactly, so it stays on ${running}.`),
    otherSpelling.release);
  }
  if (refusal !== null && refused !== undefined && !refused.ok && refusal.rank === 3) {
    if (refused.code === 'downgrade') {
      return result(null, reason('downgrade',
        `The newest release the maker signs for this device is ${refusal.prepared.release.version}, older than the ${running} it runs; Firmward never goes back to an older version.`),
      refusal.prepared.release);
    }
    return result(null, reason('already_up_to_date', `Up to date (${running}).`));
  }
  return model === undefined
    ? result(null, reason('no_release', `No release for the ${device.vendor} ${device.model} yet.`))
    : result(null, reason('no_release_for_revision', `No release for the ${device.vendor} ${device.model} hardware revision ${device.hardwareRevision}.`));
}

function planWhy(device: Device, release: Release, ev: Evaluation): string {
  if (ev.runsRetracted) return `The maker retracted ${device.firmwareVersion}, which this device runs; ${release.version} replaces it.`;
  const n = ev.vulnerabilities.length;
  if (n > 0) return `${release.version} fixes ${n === 1 ? 'a known security problem' : `${n} known security problems`} this device has.`;
  return `${release.version} is available (this device runs ${device.firmwareVersion}).`;
}

function homeOf(homes: PlanInput['homes'], id: string): Home | undefined {
  if (homes instanceof Map) return (homes as ReadonlyMap<string, Home>).get(id);
  const record = homes as Readonly<Record<string, Home>>;
  return Object.hasOwn(record, id) ? record[id] : undefined;
}

/**
 * Plans one update per device: the newest release that passes `checkCompatibility`, unless the
 * device already has an open job or a person skipped that release. Jobs the policy does not let
 * start on their own are still returned (`policyAllows: false`) so the dashboard can say
 * "available"; the hub decides.
 *
 * @example
 * const plan = planReleases({ now, devices, homes, releases, openJobsByDevice, skipped: new Set() });
 * for (const job of plan.jobs) if (job.policyAllows) await queue(job);
 */
export function planReleases(input: PlanInput): PlanResult {
  const parse = createVersionParser();
  const index = indexReleases(input.releases, parse);
  // Devices of one model mostly run the same few versions: evaluate each combination once.
  const evaluations = new Map<string, Evaluation>();
  const jobs: PlannedJob[] = [];
  const noJob: NoJob[] = [];
  const vulnerable = new Map<string, Vulnerability[]>();

  for (const device of input.devices) {
    const key = `${device.vendor}\u0000${device.model}\u0000${device.hardwareRevision}\u0000${device.firmwareVersion}`;
    let ev = evaluations.get(key);
    if (ev === undefined) {
      ev = evaluate(device, index.get(device.vendor), parse);
      evaluations.set(key, ev);
    }
    if (ev.vulnerabilities.length > 0) vulnerable.set(device.id, ev.vulnerabilities.slice());

    if (input.ignored?.has(device.id) === true) {
      noJob.push({ deviceId: device.id, reason: reason('device_ignored', 'You asked Firmward to leave this device alone; it is never updated from here.') });
      continue;
    }
    const open = input.openJobsByDevice.get(device.id);
    if (open !== undefined) {
      noJob.push({ deviceId: device.id, reason: reason('job_open', `Already has an update in progress or queued (${open.targetVersion}).`) });
      continue;
    }
    if (ev.chosen === null) {
      noJob.push({
        deviceId: device.id, reason: ev.why ?? reason('no_release', 'No release applies to this device.'),
        ...(ev.whyRelease !== null && { releaseId: ev.whyRelease }),
      });
      continue;
    }
    const release = ev.chosen;
    if (input.skipped.has(skipKey(device.id, release.id))) {
      noJob.push({ deviceId: device.id, reason: reason('skipped', `You chose to skip ${release.version}; it is not offered again until a newer release comes out.`) });
      continue;
    }
    const home = homeOf(input.homes, device.homeId);
    if (home === undefined) {
      noJob.push({ deviceId: device.id, reason: reason('home_unknown', 'This device belongs to no known home, so nothing is planned for it.') });
      continue;
    }
    const decision = policyAllows(effectivePolicy(home.settings.policy, device.policy), release, 'automatic');
    jobs.push({
      deviceId: device.id,
      homeId: device.homeId,
      releaseId: release.id,
      fromVersion: device.firmwareVersion,
      targetVersion: release.version,
      priority: ev.priority,
      policyAllows: decision.allowed,
      reason: reason(decision.reason.code, `${planWhy(device, release, ev)} ${decision.reason.message}`),
    });
  }

  jobs.sort((a, b) => a.priority - b.priority || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  noJob.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  return { plannedAt: input.now, jobs, noJob, vulnerable };
}

/**
 * The order the sequencer takes a home's queued jobs in: priority, then the oldest first, then id
 * (so two hubs agree). Returns a new array.
 *
 * @example
 * const next = orderJobs(queuedJobsOfHome)[0];
 */
export function orderJobs<T extends Pick<Job, 'priority' | 'createdAt' | 'id'>>(jobs: readonly T[]): T[] {
  return [...jobs].sort((a, b) => a.priority - b.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
