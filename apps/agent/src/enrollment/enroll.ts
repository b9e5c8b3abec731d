/**
 * Joining a home (packages/protocol/src/enrollment.ts, steps 2 and 3): claim with the code, keep
 * the answer in the credentials file at once, then ask about the claim until the owner decided.
 * One code path for `firmward-agent enroll` and for the daemon's `hub.enroll`; they differ only in
 * how they report (printing or logging) and how long they wait.
 *
 * The decisions are data (STYLE principle 2): `planEnrollment` reads what the credentials file
 * holds, `decideClaimReply` and `decideStatusReply` read what the hub answered; `enroll` only
 * performs, sleeps and writes.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isFirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { BrokerAddress, EnrollmentClaim, EnrollmentClaimAnswer, EnrollmentStatus } from '@firmward/protocol';
import { enrollmentClaimSchema } from '@firmward/protocol';
import type { Clock } from '@firmward/ports';
import { sleepOn } from '../sleep.ts';
import { BROKER_URL_PATTERN, digestOfCode, readCredentials, writeCredentials } from './credentials.ts';
import type { ApprovedCredentials, StoredCredentials, WaitingCredentials } from './credentials.ts';
import type { EnrollTarget } from './enroll-target.ts';
import { EnrollmentHubClient } from './hub-client.ts';
import type { HubReply } from './hub-client.ts';

/** Never longer than this between two questions about a claim, whatever the hub asks for. */
export const MAX_POLL_SECONDS = 30;
/** Longest pause after a connection failure (they double from 1 s up to this). */
export const MAX_RETRY_SECONDS = 30;
/** A hub's `Retry-After` is followed up to this long. */
export const MAX_RETRY_AFTER_SECONDS = 3600;

/** What the device says it is (the version it runs, read from its active slot). */
export type EnrollingDevice = Omit<EnrollmentClaim['device'], 'name'>;

export type EnrollOutcome =
  /** The owner approved; the credentials file holds the secret that now opens the broker. */
  | { kind: 'approved'; credentials: ApprovedCredentials; message: string; already: boolean }
  /** The owner turned the device down. */
  | { kind: 'rejected'; message: string }
  /** The hub refused the claim (a device with that id exists or is waiting, …). */
  | { kind: 'refused'; message: string }
  /** The code is wrong, expired, used, or of another home. */
  | { kind: 'code_invalid'; message: string }
  /** Nothing to do with what was given (usage or settings, a credentials file in the way). */
  | { kind: 'invalid_request'; message: string }
  /** The hub could not be reached (in time), or does not speak the enrollment protocol. */
  | { kind: 'unreachable'; message: string }
  /** Stopped by a signal; a claim already made stays in the credentials file. */
  | { kind: 'stopped'; message: string }
  /** The owner had not decided when the time ran out; the claim stays in the credentials file. */
  | { kind: 'timed_out'; message: string };

/** The exit codes of `firmward-agent enroll` (docs/agent.md, "Joining a home"). */
export const ENROLL_EXIT_CODES = {
  approved: 0, invalid_request: 2, rejected: 3, refused: 3, code_invalid: 4, unreachable: 5, stopped: 6, timed_out: 6,
} as const satisfies Record<EnrollOutcome['kind'], number>;

export type EnrollEvent =
  /** The claim is waiting for the owner (once per run; `resumed`: a claim made by an earlier run). */
  | { kind: 'waiting'; claim: WaitingCredentials; resumed: boolean }
  /** The hub cannot be used right now; trying again (reported when the reason changes). */
  | { kind: 'retrying'; message: string; retryInMs: number }
  /** The claim an earlier run made is gone from the hub; claiming again with the new code. */
  | { kind: 'claim_gone'; message: string };

export type EnrollPlan =
  | { step: 'done'; credentials: ApprovedCredentials }
  | { step: 'poll'; claim: WaitingCredentials }
  | { step: 'claim'; target: EnrollTarget }
  | { step: 'stop'; outcome: EnrollOutcome };

/**
 * What to do given the credentials file and the code given (null: none, only resume). A claim
 * that is waiting is asked about again rather than presenting a code a second time; usable
 * credentials are never overwritten.
 *
 * @example
 * planEnrollment({ kind: 'none' }, target, 'plug-1', '/etc/firmward/secret') // { step: 'claim', target }
 */
export function planEnrollment(stored: StoredCredentials, target: EnrollTarget | null, deviceId: string, path: string): EnrollPlan {
  const stop = (outcome: EnrollOutcome): EnrollPlan => ({ step: 'stop', outcome });
  const claimOr = (message: string): EnrollPlan => (target ? { step: 'claim', target } : stop({ kind: 'invalid_request', message }));
  switch (stored.kind) {
    case 'none':
      return claimOr(`There is nothing to resume in ${path} and no enrollment code was given.`);
    case 'secret':
      return stop({ kind: 'invalid_request', message: `${path} already holds a secret for this device; move it away first to enroll the device again.` });
    case 'file': {
      const file = stored.file;
      const sameDevice = file.deviceId === deviceId;
      const sameHub = target === null || target.hubUrl === file.hubUrl;
      switch (file.state) {
        case 'approved':
          if (sameDevice && sameHub) return { step: 'done', credentials: file };
          return stop({ kind: 'invalid_request', message: `${path} already holds the credentials of device ${file.deviceId} for the hub at ${file.hubUrl}; move it away first to enroll the device again.` });
        case 'waiting':
          if (sameDevice && sameHub) return { step: 'poll', claim: file };
          return claimOr(`${path} holds a request of device ${file.deviceId}, not ${deviceId}; give an enrollment code to start again.`);
        case 'rejected':
          if (sameDevice && sameHub && (target === null || digestOfCode(target.code) === file.codeDigest)) {
            return stop({ kind: 'rejected', message: `${file.message} (The owner turned this request down earlier; ask for a new enrollment code.)` });
          }
          return claimOr(`${path} holds a request of device ${file.deviceId}, not ${deviceId}; give an enrollment code to start again.`);
      }
    }
  }
}

/** What to do after one answer: use it, ask again later, or stop with an outcome. */
export type ReplyDecision<T> =
  | { do: 'use'; value: T }
  | { do: 'retry'; afterMs: number; message: string }
  | { do: 'stop'; outcome: EnrollOutcome }
  /** The claim is no longer on the hub (status only). */
  | { do: 'gone'; message: string };

/** Attempts already failed in a row (before this one) and the clock's time: backoff and Retry-After. */
export interface RetryContext {
  failures: number;
  now: EpochMs;
}

function backoffMs(failures: number): number {
  return Math.min(MAX_RETRY_SECONDS, 2 ** Math.min(failures, 10)) * 1000;
}

/** `Retry-After` in seconds or as an HTTP date, bounded; the backoff when absent or unreadable. */
export function retryAfterMs(header: string | null, context: RetryContext): number {
  const fallback = backoffMs(context.failures);
  if (header === null) return fallback;
  const value = header.trim();
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value) - context.now;
  if (!Number.isFinite(ms)) return fallback;
  return Math.min(MAX_RETRY_AFTER_SECONDS * 1000, Math.max(1000, ms));
}

/** Shared by both routes: what makes the hub unusable for now rather than the request wrong. */
function transient<T>(reply: HubReply<T>, context: RetryContext): ReplyDecision<T> | null {
  if (reply.kind === 'unreachable') return { do: 'retry', afterMs: backoffMs(context.failures), message: reply.message };
  if (reply.kind === 'error' && (reply.status === 429 || reply.status >= 500)) {
    return { do: 'retry', afterMs: retryAfterMs(reply.retryAfter, context), message: reply.message };
  }
  return null;
}

/**
 * The answer to `POST /enroll/v1/claims`. A garbled 2xx is not retried: the hub may have used the
 * code up already, and presenting it again could only be refused.
 */
export function decideClaimReply(reply: HubReply<EnrollmentClaimAnswer>, deviceId: string, context: RetryContext): ReplyDecision<EnrollmentClaimAnswer> {
  const again = transient(reply, context);
  if (again) return again;
  switch (reply.kind) {
    case 'ok':
      if (reply.value.deviceId !== deviceId) {
        return { do: 'stop', outcome: { kind: 'refused', message: `The hub answered the request for device ${reply.value.deviceId}, but this device is ${deviceId}.` } };
      }
      return unusableBroker(reply.value.broker) ?? { do: 'use', value: reply.value };
    case 'garbled':
      return { do: 'stop', outcome: { kind: 'unreachable', message: reply.message } };
    case 'unreachable':
      return { do: 'retry', afterMs: backoffMs(context.failures), message: reply.message };
    case 'error':
      if (reply.code === 'enrollment_invalid' || reply.code === 'enrollment_wrong_home') return { do: 'stop', outcome: { kind: 'code_invalid', message: reply.message } };
      if (reply.code === 'invalid_input') return { do: 'stop', outcome: { kind: 'invalid_request', message: reply.message } };
      if (reply.code === 'http_404') {
        return { do: 'stop', outcome: { kind: 'unreachable', message: `${reply.message} It does not seem to offer enrollment; is it a Firmward hub, and the right address?` } };
      }
      return { do: 'stop', outcome: { kind: 'refused', message: reply.message } };
  }
}

/** A broker address the agent's MQTT transport cannot use (the hub's settings allow none such). */
function unusableBroker(broker: BrokerAddress): ReplyDecision<never> | null {
  if (broker.url === null || BROKER_URL_PATTERN.test(broker.url)) return null;
  return { do: 'stop', outcome: { kind: 'unreachable', message: `The hub gave the broker address ${broker.url.slice(0, 100)}, which is not mqtt://, mqtts://, ws:// or wss://.` } };
}

/** The answer to `GET /enroll/v1/claims/:claimId`. */
export function decideStatusReply(reply: HubReply<EnrollmentStatus>, deviceId: string, context: RetryContext): ReplyDecision<EnrollmentStatus> {
  const again = transient(reply, context);
  if (again) return again;
  switch (reply.kind) {
    case 'ok':
      if (reply.value.state === 'approved' && reply.value.deviceId !== deviceId) {
        return { do: 'stop', outcome: { kind: 'refused', message: `The hub approved the request as device ${reply.value.deviceId}, but this device is ${deviceId}.` } };
      }
      return (reply.value.state === 'approved' ? unusableBroker(reply.value.broker) : null) ?? { do: 'use', value: reply.value };
    // Asking is harmless (unlike claiming): a proxy's error page may be gone the next time.
    case 'garbled':
    case 'unreachable':
      return { do: 'retry', afterMs: backoffMs(context.failures), message: reply.message };
    case 'error':
      // 401: the hub no longer takes this claim's secret, which is as good as gone.
      if (reply.status === 404 || reply.status === 401) return { do: 'gone', message: reply.message };
      return { do: 'stop', outcome: { kind: 'refused', message: reply.message } };
  }
}

export interface EnrollOptions {
  /** `hub.passwordFile`. */
  credentialsPath: string;
  /** The hub and the code; null: only resume the claim the credentials file names. */
  target: EnrollTarget | null;
  device: EnrollingDevice;
  /** Give up at this time of `clock`; null: wait for as long as it runs (the daemon). */
  deadline: EpochMs | null;
  clock: Clock;
  /** Aborts = stop cleanly (a claim already made stays in the file, to be resumed). */
  signal: AbortSignal;
  report?: (event: EnrollEvent) => void;
  fetch?: typeof fetch;
  /** Per request; default 15 s. */
  requestTimeoutMs?: number;
}

type Step<T> = { value: T } | { outcome: EnrollOutcome } | { gone: string };

/**
 * Enrolls the device, or resumes the claim an earlier run made.
 *
 * @example
 * const outcome = await enroll({ credentialsPath, target, device, deadline: null, clock, signal });
 * if (outcome.kind === 'approved') connectTo(brokerUrlOf(outcome.credentials.broker, outcome.credentials.hubUrl));
 */
export async function enroll(options: EnrollOptions): Promise<EnrollOutcome> {
  const { credentialsPath: path, device } = options;
  let stored: StoredCredentials;
  try {
    stored = await readCredentials(path);
  } catch (error) {
    if (isFirmwardError(error)) return { kind: 'invalid_request', message: error.message };
    throw error;
  }
  let plan = planEnrollment(stored, options.target, device.id, path);
  let resumed = plan.step === 'poll';
  for (;;) {
    switch (plan.step) {
      case 'done':
        return { kind: 'approved', credentials: plan.credentials, message: `This device already belongs to the hub at ${plan.credentials.hubUrl}.`, already: true };
      case 'stop':
        return plan.outcome;
      case 'claim': {
        const claimed = await claim(plan.target, options);
        if ('outcome' in claimed) return claimed.outcome;
        plan = { step: 'poll', claim: claimed.value };
        resumed = false;
        break;
      }
      case 'poll': {
        const polled = await poll(plan.claim, resumed, options);
        if ('value' in polled) return polled.value;
        if ('outcome' in polled) return polled.outcome;
        const target = options.target;
        if (target === null || digestOfCode(target.code) === plan.claim.codeDigest) {
          return { kind: 'code_invalid', message: `${polled.gone} (The request this device made earlier is no longer on the hub, and its code was used up; ask for a new enrollment code.)` };
        }
        options.report?.({ kind: 'claim_gone', message: polled.gone });
        plan = { step: 'claim', target };
        break;
      }
    }
  }
}

async function claim(target: EnrollTarget, options: EnrollOptions): Promise<{ value: WaitingCredentials } | { outcome: EnrollOutcome }> {
  const body: EnrollmentClaim = {
    code: target.code,
    ...(target.homeId === undefined ? {} : { homeId: target.homeId }),
    device: { ...options.device, ...(target.name === undefined ? {} : { name: target.name }) },
  };
  // What the hub would refuse anyway is refused here, before the code is used up.
  const checked = enrollmentClaimSchema.safeParse(body);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    return { outcome: { kind: 'invalid_request', message: `The device cannot enroll as it is set up (${problems.join('; ')}).` } };
  }
  // Likewise a credentials file that could not be written: the answer would be lost with the code.
  const writable = await checkWritable(options.credentialsPath);
  if (writable !== null) return { outcome: { kind: 'invalid_request', message: writable } };
  const hub = new EnrollmentHubClient({ hubUrl: target.hubUrl, ...(options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs }), ...(options.fetch ? { fetch: options.fetch } : {}) });
  // A claim under way is not cut off by a stop signal (only by its timeout): the hub may use the
  // code up whatever follows, so its answer must reach the file (the way a switch already under
  // way is finished first, invariant 6).
  const unstoppable = new AbortController().signal;
  const step = await attempt(options, () => hub.claim(checked.data, unstoppable), (reply, context) => decideClaimReply(reply, options.device.id, context));
  if (!('value' in step)) return 'outcome' in step ? step : { outcome: { kind: 'refused', message: step.gone } };
  const answer = step.value;
  const waiting: WaitingCredentials = {
    v: 1, state: 'waiting', deviceId: answer.deviceId, hubUrl: target.hubUrl, homeId: answer.homeId, homeName: answer.homeName,
    claimId: answer.claimId, codeDigest: digestOfCode(target.code), secret: answer.secret, broker: answer.broker,
  };
  // Kept at once: a stopped agent resumes this claim instead of needing a new code.
  await writeCredentials(options.credentialsPath, waiting);
  options.report?.({ kind: 'waiting', claim: waiting, resumed: false });
  const paused = await pause(options, Math.min(answer.pollAfterSeconds, MAX_POLL_SECONDS) * 1000);
  if (paused !== null) return { outcome: paused };
  return { value: waiting };
}

async function poll(claim: WaitingCredentials, resumed: boolean, options: EnrollOptions): Promise<Step<EnrollOutcome>> {
  const hub = new EnrollmentHubClient({ hubUrl: claim.hubUrl, ...(options.requestTimeoutMs === undefined ? {} : { timeoutMs: options.requestTimeoutMs }), ...(options.fetch ? { fetch: options.fetch } : {}) });
  let announced = !resumed;
  for (;;) {
    const step = await attempt(options, (signal) => hub.status(claim.claimId, claim.secret, signal), (reply, context) => decideStatusReply(reply, options.device.id, context));
    if (!('value' in step)) return step;
    const status = step.value;
    switch (status.state) {
      case 'approved': {
        const credentials: ApprovedCredentials = {
          v: 1, state: 'approved', deviceId: status.deviceId, hubUrl: claim.hubUrl, homeId: status.homeId || claim.homeId, homeName: claim.homeName,
          claimId: claim.claimId, secret: claim.secret, broker: status.broker,
        };
        await writeCredentials(options.credentialsPath, credentials);
        return { value: { kind: 'approved', credentials, message: status.message, already: false } };
      }
      case 'rejected':
        // The secret is worthless now; what is kept is which code was turned down.
        await writeCredentials(options.credentialsPath, {
          v: 1, state: 'rejected', deviceId: claim.deviceId, hubUrl: claim.hubUrl, claimId: claim.claimId, codeDigest: claim.codeDigest, message: status.message.slice(0, 500),
        });
        return { value: { kind: 'rejected', message: status.message } };
      case 'waiting': {
        if (!announced) {
          announced = true;
          options.report?.({ kind: 'waiting', claim, resumed: true });
        }
        if (options.deadline !== null && options.clock.now() >= options.deadline) {
          return { outcome: { kind: 'timed_out', message: `${status.message} (Still waiting when the time ran out; the request stays open: run the same command again to keep waiting.)` } };
        }
        const paused = await pause(options, Math.min(status.pollAfterSeconds, MAX_POLL_SECONDS) * 1000);
        if (paused !== null) return { outcome: paused };
        break;
      }
    }
  }
}

/** One request, repeated while the hub cannot be used (until the deadline). */
async function attempt<T>(
  options: EnrollOptions,
  send: (signal: AbortSignal) => Promise<HubReply<T>>,
  decide: (reply: HubReply<T>, context: RetryContext) => ReplyDecision<T>,
): Promise<Step<T>> {
  let failures = 0;
  let lastMessage: string | null = null;
  for (;;) {
    if (options.signal.aborted) return { outcome: stopped() };
    let reply: HubReply<T>;
    try {
      reply = await send(options.signal);
    } catch (error) {
      if (options.signal.aborted) return { outcome: stopped() };
      throw error;
    }
    const decision = decide(reply, { failures, now: options.clock.now() });
    switch (decision.do) {
      case 'use':
        return { value: decision.value };
      case 'stop':
        return { outcome: decision.outcome };
      case 'gone':
        return { gone: decision.message };
      case 'retry': {
        failures++;
        if (options.deadline !== null && options.clock.now() >= options.deadline) return { outcome: { kind: 'unreachable', message: decision.message } };
        if (decision.message !== lastMessage) {
          lastMessage = decision.message;
          options.report?.({ kind: 'retrying', message: decision.message, retryInMs: decision.afterMs });
        }
        const paused = await pause(options, decision.afterMs);
        if (paused !== null) return { outcome: paused };
        break;
      }
    }
  }
}

/** Sleeps, but not past the deadline; a stop signal ends it with the `stopped` outcome. */
async function pause(options: EnrollOptions, ms: number): Promise<EnrollOutcome | null> {
  const left = options.deadline === null ? ms : Math.max(0, Math.min(ms, options.deadline - options.clock.now()));
  try {
    await sleepOn(options.clock, left, options.signal);
  } catch (error) {
    if (options.signal.aborted) return stopped();
    throw error;
  }
  return null;
}

function stopped(): EnrollOutcome {
  return { kind: 'stopped', message: 'Stopped before the hub answered; a request already made stays open: run the same command again to keep waiting.' };
}

/** null when the credentials file can be written (its folder is made if missing), else why not. */
async function checkWritable(path: string): Promise<string | null> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await access(dirname(path), constants.W_OK);
    return null;
  } catch (error) {
    return `The credentials file ${path} cannot be written (${(error as NodeJS.ErrnoException).code ?? String(error)}); run the agent as a user that may write there, or set hub.passwordFile.`;
  }
}
