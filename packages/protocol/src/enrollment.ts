/**
 * Enrollment over HTTP: how a Firmward agent that has no credentials yet joins a home. One typed
 * contract shared by the hub's routes, the agent's `enroll` command and the tests (STYLE
 * principle 13); documented in docs/protocol.md ("Enrollment").
 *
 * 1. The owner creates an enrollment for a home: a short one-time code with an expiry.
 * 2. The agent sends `POST /enroll/v1/claims` with the code and what it says it is. The hub uses
 *    the code up (once, whatever follows), issues the device its own MQTT secret and answers with
 *    it. The secret is not valid yet: the device waits for approval in that home.
 * 3. The agent asks `GET /enroll/v1/claims/:claimId` with `Authorization: Bearer <secret>` until the
 *    owner approved (the secret now opens the broker, for that device id only) or rejected it.
 *
 * Invariant 2: the identity the hub stores is the one the owner approved on the hub, never what
 * the device reports later; a state report that names another vendor, model or hardware revision
 * is refused.
 */
import { z } from 'zod';

/** Enrollment codes: 10 characters of Crockford's base-32 alphabet, shown as two groups of five. */
export const ENROLLMENT_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const ENROLLMENT_CODE_LENGTH = 10;

/**
 * A code as a person may type it (lower case, spaces or dashes, the letters I, L and O for 1 and 0)
 * in its one canonical form, or null when it cannot be a code at all.
 *
 * @example
 * normalizeEnrollmentCode('k7q2m-x9ht4') // 'K7Q2MX9HT4'
 */
export function normalizeEnrollmentCode(text: string): string | null {
  const compact = text.toUpperCase().replace(/[\s-]+/g, '').replace(/[IL]/g, '1').replace(/O/g, '0');
  if (compact.length !== ENROLLMENT_CODE_LENGTH) return null;
  for (const ch of compact) if (!ENROLLMENT_CODE_ALPHABET.includes(ch)) return null;
  return compact;
}

/** `K7Q2MX9HT4` → `K7Q2M-X9HT4`, the way the hub shows it. */
export function formatEnrollmentCode(code: string): string {
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/**
 * What a QR code or a copied link carries: the hub's address, the home and the code, so the agent
 * needs nothing typed. `firmward-enroll:` is ours, not a registered URI scheme.
 *
 * @example
 * enrollmentPayload({ hubUrl: 'http://hub.local:8080', homeId: 'home-1', code: 'K7Q2MX9HT4' })
 * // 'firmward-enroll:?hub=http%3A%2F%2Fhub.local%3A8080&home=home-1&code=K7Q2M-X9HT4'
 */
export function enrollmentPayload(o: { hubUrl: string; homeId: string; code: string }): string {
  const params = new URLSearchParams({ hub: o.hubUrl, home: o.homeId, code: formatEnrollmentCode(o.code) });
  return `firmward-enroll:?${params.toString()}`;
}

/** Reads a payload made by `enrollmentPayload`; null when it is not one. */
export function parseEnrollmentPayload(text: string): { hubUrl: string; homeId: string; code: string } | null {
  const m = /^firmward-enroll:\?(.*)$/.exec(text.trim());
  if (!m) return null;
  const params = new URLSearchParams(m[1]);
  const hubUrl = params.get('hub');
  const homeId = params.get('home');
  const code = normalizeEnrollmentCode(params.get('code') ?? '');
  if (hubUrl === null || !/^https?:\/\/\S+$/.test(hubUrl) || homeId === null || homeId === '' || code === null) return null;
  return { hubUrl, homeId, code };
}

const deviceId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:-]+$/, { error: 'letters, digits and . _ : - only' });
const label = z.string().min(1).max(64);

/** `POST /enroll/v1/claims`: the code, and what the device says it is. */
export const enrollmentClaimSchema = z.strictObject({
  code: z.string().min(1).max(64),
  /** The home the person enrolling expects (from the QR payload); a code of another home is refused. */
  homeId: z.string().min(1).max(200).exactOptional(),
  device: z.strictObject({
    id: deviceId,
    /** What the household calls it; the owner may rename it when approving. */
    name: z.string().min(1).max(120).exactOptional(),
    vendor: label,
    model: label,
    hardwareRevision: label,
    firmwareVersion: z.string().min(1).max(64),
  }),
});
export type EnrollmentClaim = z.infer<typeof enrollmentClaimSchema>;

/** How the device reaches the hub's broker once approved. */
export const brokerAddressSchema = z.strictObject({
  /** A full address (an external broker, or the hub's public one); null: the hub's host with `port`. */
  url: z.string().min(1).max(500).nullable(),
  port: z.number().int().min(1).max(65535),
});
export type BrokerAddress = z.infer<typeof brokerAddressSchema>;

/** 202 to a claim: the device's own credentials, valid from the owner's approval on. */
export const enrollmentClaimAnswerSchema = z.strictObject({
  claimId: z.string().min(1).max(200),
  deviceId,
  homeId: z.string().min(1).max(200),
  homeName: z.string().max(200),
  /** The MQTT user name is the device id; this is its password. Keep it 0600; the hub keeps only its hash. */
  secret: z.string().min(32).max(200),
  broker: brokerAddressSchema,
  /** Ask again after this long. */
  pollAfterSeconds: z.number().int().min(1).max(3600),
});
export type EnrollmentClaimAnswer = z.infer<typeof enrollmentClaimAnswerSchema>;

/** `GET /enroll/v1/claims/:claimId`: where the request stands. */
export const enrollmentStatusSchema = z.discriminatedUnion('state', [
  z.strictObject({ state: z.literal('waiting'), message: z.string(), pollAfterSeconds: z.number().int().min(1).max(3600) }),
  z.strictObject({ state: z.literal('approved'), message: z.string(), deviceId, homeId: z.string(), broker: brokerAddressSchema }),
  z.strictObject({ state: z.literal('rejected'), message: z.string() }),
]);
export type EnrollmentStatus = z.infer<typeof enrollmentStatusSchema>;
