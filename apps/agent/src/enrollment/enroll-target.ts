/**
 * Which hub to join with which code, from `enroll`'s flags or the `hub.enroll` setting: the hub's
 * address and a code, or the `firmward-enroll:?…` payload of the hub's QR code, checked and
 * brought into one canonical form before anything is sent.
 */
import { normalizeEnrollmentCode, parseEnrollmentPayload } from '@firmward/protocol';

export interface EnrollTarget {
  /** http(s)://host[:port][/path], no trailing slash. */
  hubUrl: string;
  /** Canonical (normalizeEnrollmentCode). */
  code: string;
  /** The home the person expects; the hub refuses a code of another home. */
  homeId?: string;
  /** What the household calls the device. */
  name?: string;
}

export interface EnrollTargetInput {
  hubUrl?: string | undefined;
  code?: string | undefined;
  homeId?: string | undefined;
  payload?: string | undefined;
  name?: string | undefined;
}

export type EnrollTargetField = keyof EnrollTargetInput;

export interface EnrollTargetProblem {
  field: EnrollTargetField;
  message: string;
  /** `code`: what was given cannot be a code (a wrong code, exit 4); `usage`: something is missing or malformed (exit 2). */
  kind: 'usage' | 'code';
}

/**
 * The hub's web address in one form (so a resumed claim is recognised as the same hub), or null
 * when it is not an http(s) address without user, query or fragment.
 *
 * @example
 * normalizeHubUrl('http://Hub.local:8080/') // 'http://hub.local:8080'
 */
export function normalizeHubUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') return null;
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Every problem at once, each naming its field; the caller names the fields its own way (flags
 * or setting keys).
 *
 * @example
 * enrollTarget({ hubUrl: 'http://hub.local:8080', code: 'k7q2m-x9ht4' })
 * // { target: { hubUrl: 'http://hub.local:8080', code: 'K7Q2MX9HT4' } }
 */
export function enrollTarget(input: EnrollTargetInput): { target: EnrollTarget } | { problems: EnrollTargetProblem[] } {
  const problems: EnrollTargetProblem[] = [];
  const usage = (field: EnrollTargetField, message: string) => problems.push({ field, message, kind: 'usage' });
  const name = input.name?.trim();
  if (name !== undefined && (name === '' || name.length > 120)) usage('name', 'must be 1 to 120 characters');
  const named = name === undefined || name === '' ? {} : { name };
  if (input.payload !== undefined) {
    if (input.hubUrl !== undefined || input.code !== undefined || input.homeId !== undefined) {
      usage('payload', 'already holds the hub, the home and the code: give either the payload or the hub and the code, not both');
    }
    const payload = parseEnrollmentPayload(input.payload);
    if (payload === null) problems.push({ field: 'payload', message: 'is not an enrollment payload: the firmward-enroll:?… text of the hub\'s QR code or link', kind: 'code' });
    const hubUrl = payload === null ? null : normalizeHubUrl(payload.hubUrl);
    if (payload !== null && hubUrl === null) usage('payload', 'names a hub address that is not http:// or https://');
    if (problems.length > 0 || payload === null || hubUrl === null) return { problems };
    return { target: { hubUrl, code: payload.code, homeId: payload.homeId, ...named } };
  }
  const hubUrl = input.hubUrl === undefined ? null : normalizeHubUrl(input.hubUrl);
  if (input.hubUrl === undefined) usage('hubUrl', 'is needed: the hub\'s web address, such as http://hub.local:8080 (or give the payload of its QR code)');
  else if (hubUrl === null) usage('hubUrl', 'must be the hub\'s web address, such as http://hub.local:8080');
  const code = input.code === undefined ? null : normalizeEnrollmentCode(input.code);
  if (input.code === undefined) usage('code', 'is needed: the enrollment code the hub shows, such as K7Q2M-X9HT4');
  else if (code === null) problems.push({ field: 'code', message: 'is not an enrollment code: 10 letters and digits, such as K7Q2M-X9HT4', kind: 'code' });
  const homeId = input.homeId?.trim();
  if (homeId !== undefined && (homeId === '' || homeId.length > 200)) usage('homeId', 'must be 1 to 200 characters');
  if (problems.length > 0 || hubUrl === null || code === null) return { problems };
  return { target: { hubUrl, code, ...(homeId === undefined ? {} : { homeId }), ...named } };
}
