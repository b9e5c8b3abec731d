/**
 * The agent's side of the enrollment routes (`POST /enroll/v1/claims`, `GET /enroll/v1/claims/:id`,
 * packages/protocol/src/enrollment.ts). It only transports: every answer comes back as data (what
 * the hub said, or that it could not be reached) and enroll.ts decides what follows. Answers are
 * bounded in size and parsed with the shared schemas before anything uses them (STYLE principle 9).
 */
import { z } from 'zod';
import { enrollmentClaimAnswerSchema, enrollmentStatusSchema } from '@firmward/protocol';
import type { EnrollmentClaim, EnrollmentClaimAnswer, EnrollmentStatus } from '@firmward/protocol';

/** No enrollment answer is legitimately larger than this. */
const MAX_ANSWER_BYTES = 64 * 1024;

export type HubReply<T> =
  | { kind: 'ok'; value: T }
  /** An HTTP error: the hub's code and sentence (shown verbatim), `Retry-After` as sent. */
  | { kind: 'error'; status: number; code: string; message: string; retryAfter: string | null }
  /** No HTTP answer at all (refused, reset, timed out, name not found). */
  | { kind: 'unreachable'; message: string }
  /** An answer that is not what the contract says (a proxy's page, another program on that port). */
  | { kind: 'garbled'; status: number; message: string };

export interface EnrollmentHubClientOptions {
  /** The hub's web address, e.g. http://hub.local:8080 (no trailing slash). */
  hubUrl: string;
  /** Per request; default 15 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const errorBodySchema = z.object({ error: z.object({ code: z.string().min(1).max(100), message: z.string().max(1000) }) });

/**
 * @example
 * const hub = new EnrollmentHubClient({ hubUrl: 'http://hub.local:8080' });
 * const reply = await hub.claim({ code: 'K7Q2MX9HT4', device }, signal);
 * if (reply.kind === 'ok') console.log(reply.value.claimId);
 */
export class EnrollmentHubClient {
  readonly hubUrl: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: EnrollmentHubClientOptions) {
    this.hubUrl = options.hubUrl;
    this.#timeoutMs = options.timeoutMs ?? 15_000;
    this.#fetch = options.fetch ?? fetch;
  }

  claim(claim: EnrollmentClaim, signal: AbortSignal): Promise<HubReply<EnrollmentClaimAnswer>> {
    return this.#send('POST', '/enroll/v1/claims', { 'content-type': 'application/json' }, JSON.stringify(claim), signal, enrollmentClaimAnswerSchema);
  }

  status(claimId: string, secret: string, signal: AbortSignal): Promise<HubReply<EnrollmentStatus>> {
    return this.#send('GET', `/enroll/v1/claims/${encodeURIComponent(claimId)}`, { authorization: `Bearer ${secret}` }, undefined, signal, enrollmentStatusSchema);
  }

  /** Throws only when `signal` aborts (the agent is stopping); everything else is a reply. */
  async #send<T>(method: string, path: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, schema: z.ZodType<T>): Promise<HubReply<T>> {
    let response: Response;
    let text: string | null;
    try {
      response = await this.#fetch(`${this.hubUrl}${path}`, {
        method, headers: { accept: 'application/json', ...headers }, signal: AbortSignal.any([signal, AbortSignal.timeout(this.#timeoutMs)]),
        ...(body === undefined ? {} : { body }),
      });
      text = await readBounded(response, MAX_ANSWER_BYTES);
    } catch (error) {
      signal.throwIfAborted();
      return { kind: 'unreachable', message: `Cannot reach the hub at ${this.hubUrl} (${describe(error)}).` };
    }
    if (text === null) return { kind: 'garbled', status: response.status, message: `The hub at ${this.hubUrl} sent an answer larger than ${MAX_ANSWER_BYTES} bytes.` };
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch {
      // handled below: not JSON is not an answer
    }
    if (!response.ok) {
      const error = errorBodySchema.safeParse(json);
      return {
        kind: 'error', status: response.status,
        code: error.success ? error.data.error.code : `http_${response.status}`,
        message: error.success ? error.data.error.message : `The hub at ${this.hubUrl} answered HTTP ${response.status} without saying why.`,
        retryAfter: response.headers.get('retry-after'),
      };
    }
    const parsed = schema.safeParse(json);
    if (parsed.success) return { kind: 'ok', value: parsed.data };
    return { kind: 'garbled', status: response.status, message: `The hub at ${this.hubUrl} answered ${method} ${path.split('/').slice(0, 4).join('/')} with something that is not an enrollment answer; is it a Firmward hub?` };
  }
}

/** The body as text, or null past `maxBytes` (the rest is not read). */
async function readBounded(response: Response, maxBytes: number): Promise<string | null> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `ECONNREFUSED`, `timed out`, …: the cause undici hides inside "fetch failed". */
function describe(error: unknown): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') return 'no answer in time';
  const cause = error instanceof Error ? error.cause : undefined;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : null;
  if (code !== null) return code;
  return error instanceof Error ? (cause instanceof Error ? cause.message : error.message) : String(error);
}
