/**
 * Devices join a home: the owner makes a one-time code for a home, an agent presents it with what
 * it says it is, and the device waits for the owner's yes or no. A hawkBit client that registers
 * itself (with the tenant's GatewayToken) waits the same way.
 *
 * The code is kept only as its SHA-256 digest and works once. The agent's MQTT secret is issued
 * with the claim and kept only as its hash; it opens the broker only from the approval on, and
 * only for the device id the owner approved — with the identity the owner saw (invariant 2).
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { FirmwardError, checkName, isFirmwardError } from '@firmward/core';
import type { EpochMs } from '@firmward/core';
import type { Enrollment, PendingDevice } from '@firmward/ports';
import { generateDeviceSecret, hashDeviceSecret, verifySecret } from '@firmward/mqtt';
import {
  ENROLLMENT_CODE_ALPHABET, ENROLLMENT_CODE_LENGTH, enrollmentPayload, formatEnrollmentCode, normalizeEnrollmentCode,
} from '@firmward/protocol';
import type { EnrollmentClaim, EnrollmentClaimAnswer, EnrollmentStatus } from '@firmward/protocol';
import type { DeviceView } from '../service.ts';
import { GATEWAY_REGISTERED } from '@firmward/hawkbit';
import { AttemptLimiter } from '../attempt-limiter.ts';
import { aOrAn, agentIdRefusal, commit, homeOf, personEvent, record, who } from './context.ts';
import type { SetupDeps } from './context.ts';
import type { ApproveInput, EnrollmentCreated, EnrollmentView, PendingDeviceView } from './types.ts';

export const DEFAULT_ENROLLMENT_MINUTES = 60;
export const MAX_ENROLLMENT_MINUTES = 7 * 24 * 60;
/** Decided requests are kept this long, so an agent that asks late still hears the answer. */
const DECIDED_KEPT_MS = 7 * 24 * 3600_000;
const POLL_AFTER_SECONDS = 5;

export function codeDigest(code: string): string {
  return createHash('sha256').update(code, 'utf8').digest('hex');
}

/** A fresh code: 10 characters of Crockford's alphabet (50 bits), from the system's random source. */
export function newEnrollmentCode(): string {
  let code = '';
  for (let i = 0; i < ENROLLMENT_CODE_LENGTH; i++) code += ENROLLMENT_CODE_ALPHABET[randomInt(ENROLLMENT_CODE_ALPHABET.length)];
  return code;
}

export function pendingView(p: PendingDevice, homeName: string | null): PendingDeviceView {
  const says = `it says it is ${aOrAn(`${p.vendor} ${p.model}`)} (hardware revision ${p.hardwareRevision}) running ${p.firmwareVersion}`;
  const where = p.homeId === null ? ' Pick the home it joins.' : homeName === null ? '' : ` It asks to join ${homeName}.`;
  const summary = p.state === 'waiting'
    ? `Waiting for your approval: ${says}, asking from ${p.requestedFrom}.${where}`
    : p.state === 'approved' ? `Approved by ${who(p.decidedBy ?? 'person:owner')}; ${says}.` : `Rejected by ${who(p.decidedBy ?? 'person:owner')}.`;
  return {
    id: p.id, homeId: p.homeId, deviceId: p.deviceId, protocol: p.protocol, name: p.name, vendor: p.vendor, model: p.model,
    hardwareRevision: p.hardwareRevision, firmwareVersion: p.firmwareVersion, state: p.state, requestedAt: p.requestedAt,
    requestedFrom: p.requestedFrom, decidedAt: p.decidedAt, decidedBy: p.decidedBy, summary,
  };
}

function enrollmentView(e: Enrollment, now: EpochMs): EnrollmentView {
  return {
    id: e.id, homeId: e.homeId, createdAt: e.createdAt, expiresAt: e.expiresAt, createdBy: e.createdBy,
    state: e.usedAt !== null ? 'used' : e.expiresAt <= now ? 'expired' : 'open', usedBy: e.usedBy,
  };
}

/**
 * The owner's side and the device's side of joining, over one store. The device's side counts
 * every wrong code or wrong secret against the address it came from, before checking it.
 */
export class Enrollments {
  readonly #d: SetupDeps;
  readonly #attempts: AttemptLimiter;

  constructor(d: SetupDeps, o: { maxFailures?: number; windowMs?: number } = {}) {
    this.#d = d;
    this.#attempts = new AttemptLimiter({
      maxFailures: o.maxFailures ?? 10, windowMs: o.windowMs ?? 15 * 60_000, now: () => Date.now(),
      message: 'Too many wrong enrollment codes from this address; wait a quarter of an hour and try again.',
    });
  }

  // ── the owner ──────────────────────────────────────────────────────────────────────────────

  async create(homeId: string, o: { expiresInMinutes?: number; hubUrl: string }, actor: string): Promise<EnrollmentCreated> {
    const home = await homeOf(this.#d.store, homeId);
    const minutes = o.expiresInMinutes ?? DEFAULT_ENROLLMENT_MINUTES;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_ENROLLMENT_MINUTES) {
      throw new FirmwardError('invalid_input', `An enrollment code lasts 1 to ${MAX_ENROLLMENT_MINUTES} minutes (a week).`);
    }
    const now = this.#d.clock.now();
    const code = newEnrollmentCode();
    const enrollment: Enrollment = {
      id: randomUUID(), homeId, codeDigest: codeDigest(code), createdAt: now, expiresAt: now + minutes * 60_000, createdBy: actor, usedAt: null, usedBy: null,
    };
    const event = personEvent({ at: now, homeId, code: 'enrollment_created', actor, message: `${who(actor)} made an enrollment code for ${home.name}; it works once, for ${minutes} minutes.` });
    await commit(this.#d, [event], (tx) => tx.insertEnrollment(enrollment));
    const payload = enrollmentPayload({ hubUrl: o.hubUrl, homeId, code });
    return {
      id: enrollment.id, homeId, homeName: home.name, timeZone: home.settings.timeZone, code: formatEnrollmentCode(code), expiresAt: enrollment.expiresAt, payload, hubUrl: o.hubUrl,
      agentCommand: `firmward-agent enroll --config /etc/firmward/agent.json --payload '${payload}'`,
    };
  }

  async list(query: { homeId?: string }): Promise<EnrollmentView[]> {
    const now = this.#d.clock.now();
    return (await this.#d.store.listEnrollments(query)).map((e) => enrollmentView(e, now));
  }

  async revoke(enrollmentId: string, actor: string): Promise<void> {
    const found = (await this.#d.store.listEnrollments({})).find((e) => e.id === enrollmentId);
    if (!found || !(await this.#d.store.deleteEnrollment(enrollmentId))) throw new FirmwardError('not_found', 'There is no such enrollment code.');
    await record(this.#d, personEvent({ at: this.#d.clock.now(), homeId: found.homeId, code: 'enrollment_revoked', actor, message: `${who(actor)} withdrew an enrollment code.` }));
  }

  async listPending(query: { homeId?: string; all?: boolean }): Promise<PendingDeviceView[]> {
    const rows = await this.#d.store.listPendingDevices({ ...(query.homeId !== undefined && { homeId: query.homeId }), ...(query.all !== true && { states: ['waiting'] as const }) });
    const names = new Map((await this.#d.store.listHomes()).map((h) => [h.id, h.name]));
    return rows.map((p) => pendingView(p, p.homeId === null ? null : names.get(p.homeId) ?? null));
  }

  /**
   * Yes: the device is added with the identity the owner saw (a new name, a home for one that
   * asked for none), and its credential opens the broker from now on.
   */
  async approve(pendingId: string, input: ApproveInput, actor: string): Promise<DeviceView> {
    const pending = await this.#waiting(pendingId);
    const homeId = input.homeId ?? pending.homeId;
    if (homeId === null) throw new FirmwardError('invalid_input', `${pending.name} asked for no particular home; say which home it joins.`);
    const name = checkName('device', input.name ?? pending.name);
    await this.#d.engine.withHome(homeId, async () => {
      const home = await homeOf(this.#d.store, homeId);
      if (await this.#d.store.getDevice(pending.deviceId)) {
        throw new FirmwardError('conflict', `A device "${pending.deviceId}" is on the hub already; remove it first if this one replaces it.`);
      }
      const now = this.#d.clock.now();
      const event = personEvent({
        at: now, homeId, deviceId: pending.deviceId, code: 'device_approved', actor,
        message: `${who(actor)} let ${name} join ${home.name} as ${aOrAn(`${pending.vendor} ${pending.model}`)} (hardware revision ${pending.hardwareRevision}).`,
      });
      await commit(this.#d, [event], async (tx) => {
        if (!(await tx.decidePendingDevice({ ...pending, homeId, name, state: 'approved', decidedAt: now, decidedBy: actor }))) {
          throw new FirmwardError('conflict', 'Somebody decided about this device meanwhile; look again.');
        }
        // Invariant 2: the identity stored is the one approved here, never a later report's.
        await tx.putDevice({
          id: pending.deviceId, homeId, name, vendor: pending.vendor, model: pending.model, hardwareRevision: pending.hardwareRevision,
          firmwareVersion: pending.firmwareVersion, policy: null, thresholds: {}, schedules: [],
        });
        await tx.setDeviceSecret(pending.deviceId, pending.secretHash ?? GATEWAY_REGISTERED);
      });
    });
    await this.#d.access.credentialsChanged(pending.deviceId).catch((error: unknown) => this.#d.log.warn('the broker did not take the new credential yet', { deviceId: pending.deviceId, error: String(error) }));
    // A hawkBit client is asked for its attributes again, so the hub hears its state now.
    this.#d.gateway.forget(pending.deviceId);
    this.#d.engine.notifier.committed({ kind: 'device', deviceId: pending.deviceId, homeId });
    this.#d.log.info('device approved', { deviceId: pending.deviceId, homeId, actor });
    return this.#d.views.device(pending.deviceId);
  }

  async reject(pendingId: string, actor: string): Promise<PendingDeviceView> {
    const pending = await this.#waiting(pendingId);
    const now = this.#d.clock.now();
    const decided: PendingDevice = { ...pending, state: 'rejected', decidedAt: now, decidedBy: actor };
    if (!(await this.#d.store.decidePendingDevice(decided))) throw new FirmwardError('conflict', 'Somebody decided about this device meanwhile; look again.');
    const event = personEvent({ at: now, homeId: pending.homeId ?? '', deviceId: pending.deviceId, code: 'device_rejected', actor, message: `${who(actor)} did not let ${pending.name} (${pending.vendor} ${pending.model}) join.` });
    // One that asked for no home has no history to keep it in; live views still hear of it.
    if (pending.homeId !== null) await record(this.#d, event);
    else this.#d.publish(event);
    this.#d.gateway.forget(pending.deviceId);
    return pendingView(decided, null);
  }

  /** By the request's id, or by the device id it asks for (what the agent prints). */
  async #waiting(idOrDeviceId: string): Promise<PendingDevice> {
    const pending = (await this.#d.store.getPendingDevice(idOrDeviceId))
      ?? (await this.#d.store.listPendingDevices({ deviceId: idOrDeviceId, states: ['waiting'] }))[0]
      // Asked again about one decided already: say so, rather than that it does not exist.
      ?? (await this.#d.store.listPendingDevices({ deviceId: idOrDeviceId })).at(-1);
    if (!pending) throw new FirmwardError('not_found', `There is no device "${idOrDeviceId}" waiting for approval.`);
    if (pending.state !== 'waiting') throw new FirmwardError('conflict', `This request was ${pending.state} already.`);
    return pending;
  }

  // ── the device ─────────────────────────────────────────────────────────────────────────────

  /** `POST /enroll/v1/claims`: the code is used up, the device waits for approval with its secret. */
  async claim(claim: EnrollmentClaim, from: string): Promise<EnrollmentClaimAnswer> {
    const attempt = this.#attempts.begin(from);
    const code = normalizeEnrollmentCode(claim.code);
    const enrollment = code === null ? null : await this.#d.store.findEnrollment(codeDigest(code));
    const now = this.#d.clock.now();
    if (enrollment === null) throw new FirmwardError('enrollment_invalid', 'This is not an enrollment code of this hub; check it, or ask the hub\'s owner for a new one.');
    if (enrollment.usedAt !== null) throw new FirmwardError('enrollment_invalid', 'This enrollment code was used already; a code works once. Ask the hub\'s owner for a new one.');
    if (enrollment.expiresAt <= now) throw new FirmwardError('enrollment_invalid', 'This enrollment code has expired; ask the hub\'s owner for a new one.');
    if (claim.homeId !== undefined && claim.homeId !== enrollment.homeId) {
      throw new FirmwardError('enrollment_wrong_home', 'This enrollment code belongs to another home than the one you are joining; use the code made for this home.');
    }
    // The code was right: the attempt does not count against the address.
    attempt.succeeded();
    const home = await homeOf(this.#d.store, enrollment.homeId);
    const device = claim.device;
    const taken = agentIdRefusal(this.#d, device.id);
    if (taken) throw taken;
    if (await this.#d.store.getDevice(device.id)) {
      throw new FirmwardError('conflict', `A device "${device.id}" is on this hub already; a device cannot take another's id. Give it its own id, or remove the old one first.`);
    }
    const secret = generateDeviceSecret();
    const pending: PendingDevice = {
      id: randomUUID(), homeId: home.id, deviceId: device.id, protocol: 'agent', name: checkName('device', device.name ?? device.id),
      vendor: device.vendor, model: device.model, hardwareRevision: device.hardwareRevision, firmwareVersion: device.firmwareVersion,
      secretHash: await hashDeviceSecret(secret), enrollmentId: enrollment.id, state: 'waiting', requestedAt: now, requestedFrom: from,
      decidedAt: null, decidedBy: null,
    };
    const event = personEvent({
      at: now, homeId: home.id, deviceId: device.id, code: 'device_waiting', actor: 'device', kind: 'device',
      message: `${pending.name} asks to join ${home.name}: it says it is ${aOrAn(`${device.vendor} ${device.model}`)} (hardware revision ${device.hardwareRevision}) running ${device.firmwareVersion}. Approve or reject it.`,
    });
    try {
      await commit(this.#d, [event], async (tx) => {
        // A code works once, even when two devices present it at the same moment.
        if (!(await tx.useEnrollment(enrollment.id, now, pending.id))) throw new FirmwardError('enrollment_invalid', 'This enrollment code was used already; a code works once. Ask the hub\'s owner for a new one.');
        await tx.insertPendingDevice(pending);
      });
    } catch (error) {
      if (isFirmwardError(error, 'conflict')) throw new FirmwardError('conflict', `A device "${device.id}" is waiting for approval already; approve or reject that one first.`, { cause: error });
      throw error;
    }
    this.#d.log.info('a device asks to join', { deviceId: device.id, homeId: home.id, from });
    return {
      claimId: pending.id, deviceId: device.id, homeId: home.id, homeName: home.name, secret, broker: this.#d.broker, pollAfterSeconds: POLL_AFTER_SECONDS,
    };
  }

  /** `GET /enroll/v1/claims/:claimId` with the device's secret: where its request stands. */
  async status(claimId: string, secret: string, from: string): Promise<EnrollmentStatus> {
    const attempt = this.#attempts.begin(from);
    const pending = await this.#d.store.getPendingDevice(claimId);
    // The same answer for "no such request" and "wrong secret": a guesser learns nothing.
    if (!pending || pending.secretHash === null || !(await verifySecret(secret, pending.secretHash))) {
      throw new FirmwardError('unauthorized', 'This request to join is unknown, or the secret does not match it.');
    }
    attempt.succeeded();
    switch (pending.state) {
      case 'waiting':
        return { state: 'waiting', message: 'Waiting for the owner to approve this device on the hub.', pollAfterSeconds: POLL_AFTER_SECONDS };
      case 'approved':
        return { state: 'approved', message: `Approved: this device is ${pending.name} on the hub.`, deviceId: pending.deviceId, homeId: pending.homeId ?? '', broker: this.#d.broker };
      case 'rejected':
        return { state: 'rejected', message: 'The owner did not let this device join. Ask for a new enrollment code if that was a mistake.' };
    }
  }

  /**
   * A hawkBit client the hub does not know registered itself with the GatewayToken (where the
   * owner allows it): it waits for approval like an enrolled agent. Asking again is harmless.
   */
  async selfRegistered(o: { deviceId: string; homeId: string | null; name: string; vendor: string; model: string; hardwareRevision: string; firmwareVersion: string; from: string }): Promise<void> {
    if ((await this.#d.store.listPendingDevices({ deviceId: o.deviceId, states: ['waiting'] })).length > 0) return;
    const homeId = o.homeId !== null && (await this.#d.store.getHome(o.homeId)) ? o.homeId : null;
    const now = this.#d.clock.now();
    const pending: PendingDevice = {
      id: randomUUID(), homeId, deviceId: o.deviceId, protocol: 'hawkbit', name: checkName('device', o.name), vendor: o.vendor, model: o.model,
      hardwareRevision: o.hardwareRevision, firmwareVersion: o.firmwareVersion, secretHash: null, enrollmentId: null, state: 'waiting',
      requestedAt: now, requestedFrom: o.from, decidedAt: null, decidedBy: null,
    };
    try {
      await this.#d.store.insertPendingDevice(pending);
    } catch (error) {
      if (isFirmwardError(error, 'conflict')) return; // registered twice at once: one request is enough
      throw error;
    }
    const event = personEvent({ at: now, homeId: homeId ?? '', deviceId: o.deviceId, code: 'device_waiting', actor: 'device', kind: 'device', message: `${pending.name} (hawkBit) asks to join: it says it is ${aOrAn(`${o.vendor} ${o.model}`)} (hardware revision ${o.hardwareRevision}) running ${o.firmwareVersion}. Approve or reject it.` });
    // One that asked for no home has no history to keep it in; live views still hear of it.
    if (homeId !== null) await record(this.#d, event);
    else this.#d.publish(event);
    this.#d.log.info('a hawkBit device asks to join', { deviceId: o.deviceId, homeId });
  }

  /** Decided requests and expired codes are dropped after a week. */
  prune(): Promise<void> {
    return this.#d.store.pruneEnrollments(this.#d.clock.now() - DECIDED_KEPT_MS);
  }
}
