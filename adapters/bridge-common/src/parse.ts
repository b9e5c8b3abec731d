/** Bytes from an ecosystem's broker → typed payloads (STYLE principle 9: parse `unknown` at the boundary). Nothing here throws. */
import type { z } from 'zod';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** Bytes → JSON, bounded; never throws. */
export function readJson(payload: Uint8Array, maxBytes: number): ParseResult<unknown> {
  if (payload.byteLength > maxBytes) return { ok: false, error: `payload of ${payload.byteLength} bytes is over the ${maxBytes}-byte limit` };
  try {
    return { ok: true, value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) };
  } catch {
    return { ok: false, error: 'payload is not valid JSON' };
  }
}

/** An already-parsed value against a schema, or a one-line reason. */
export function validate<T>(schema: z.ZodType<T>, value: unknown): ParseResult<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: issue ? `${issue.path.join('.') || 'payload'}: ${issue.message}` : 'payload does not match the schema' };
  }
  return { ok: true, value: parsed.data };
}

/**
 * Bytes → JSON → a typed payload, or a one-line reason. Never throws.
 *
 * @example
 * const reply = parseJson(rpcReplySchema, payload, MAX_PAYLOAD_BYTES);
 * if (!reply.ok) return reject(topic, reply.error);
 */
export function parseJson<T>(schema: z.ZodType<T>, payload: Uint8Array, maxBytes: number): ParseResult<T> {
  const json = readJson(payload, maxBytes);
  return json.ok ? validate(schema, json.value) : json;
}
