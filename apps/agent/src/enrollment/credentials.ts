/**
 * The device's credentials file (`hub.passwordFile`): either one line holding the MQTT secret (as
 * an operator writes it by hand), or the JSON record enrollment keeps, which also says where the
 * broker is and, while the owner has not decided yet, which claim to ask about (docs/agent.md,
 * "Joining a home"). Written atomically and 0600 from its first byte on.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import { brokerAddressSchema } from '@firmward/protocol';
import type { BrokerAddress } from '@firmward/protocol';
import { syncDirectory, writeFileAtomic } from '../linux/durable-file.ts';

/** The broker addresses the agent's MQTT transport can use (the same rule as `hub.url`). */
export const BROKER_URL_PATTERN = /^(mqtts?|wss?):\/\/\S+$/;

const text = z.string().min(1).max(500);
const broker = brokerAddressSchema.refine((b) => b.url === null || BROKER_URL_PATTERN.test(b.url), {
  error: 'the broker address must start with mqtt://, mqtts://, ws:// or wss://',
});
const hubUrl = z.string().regex(/^https?:\/\/\S+$/, 'must be the hub\'s http:// or https:// address');
/** sha256 of the canonical code: tells "the code this claim used" without keeping the code. */
const codeDigest = z.string().regex(/^[0-9a-f]{64}$/);

export const credentialsFileSchema = z.discriminatedUnion('state', [
  /** Claimed, the owner has not decided yet: the secret does not open the broker yet. */
  z.strictObject({
    v: z.literal(1), state: z.literal('waiting'), deviceId: text, hubUrl, homeId: text, homeName: z.string().max(200),
    claimId: text, codeDigest, secret: text, broker,
  }),
  /** The owner approved: `secret` opens the broker for `deviceId`. */
  z.strictObject({
    v: z.literal(1), state: z.literal('approved'), deviceId: text, hubUrl, homeId: text.optional(), homeName: z.string().max(200).optional(),
    claimId: text.optional(), secret: text, broker,
  }),
  /** The owner turned the device down; kept so the same code is not presented again. */
  z.strictObject({
    v: z.literal(1), state: z.literal('rejected'), deviceId: text, hubUrl, claimId: text, codeDigest, message: z.string().max(500),
  }),
]);
export type CredentialsFile = z.infer<typeof credentialsFileSchema>;
export type WaitingCredentials = Extract<CredentialsFile, { state: 'waiting' }>;
export type ApprovedCredentials = Extract<CredentialsFile, { state: 'approved' }>;

/** What `hub.passwordFile` holds. */
export type StoredCredentials =
  | { kind: 'none' }
  /** The old form: the whole trimmed text is the secret; the broker is `hub.url`. */
  | { kind: 'secret'; secret: string }
  | { kind: 'file'; file: CredentialsFile };

/**
 * Text that is a JSON object with a `v` key is the enrollment record (and must be a valid one);
 * anything else is a plain secret. An empty file holds nothing yet.
 *
 * @example
 * parseCredentials('s3cret\n', 'secret') // { kind: 'secret', secret: 's3cret' }
 */
export function parseCredentials(content: string, path: string): StoredCredentials {
  const trimmed = content.trim();
  if (trimmed === '') return { kind: 'none' };
  let json: unknown = undefined;
  try {
    json = JSON.parse(trimmed);
  } catch {
    // not JSON: a plain secret
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json) || !('v' in json)) return { kind: 'secret', secret: trimmed };
  // A record written by hand without `state` is an approved one.
  const record = 'state' in json ? json : { ...json, state: 'approved' };
  const parsed = credentialsFileSchema.safeParse(record);
  if (parsed.success) return { kind: 'file', file: parsed.data };
  const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
  throw new FirmwardError('config_invalid', `The credentials file ${path} is not a valid enrollment record (${problems.join('; ')}). Enroll the device again, or write only its secret into the file.`, {
    detail: { problems },
  });
}

/** Reads `hub.passwordFile`; a missing file holds nothing yet. */
export async function readCredentials(path: string): Promise<StoredCredentials> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw new FirmwardError('config_invalid', `The credentials file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}).`, { cause: error });
  }
  return parseCredentials(content, path);
}

/**
 * Replaces the credentials file atomically, 0600 from its first byte on (temporary file in the
 * same folder, fsync, rename, fsync of the folder); creates the folder (0700) if it is missing.
 */
export async function writeCredentials(path: string, file: CredentialsFile): Promise<void> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  // A folder made just now exists durably only once its own parent is synced.
  if (created !== undefined) await syncDirectory(dirname(created));
  await writeFileAtomic(path, `${JSON.stringify(credentialsFileSchema.parse(file))}\n`);
}

/**
 * Where an approved device connects: the hub's full broker address, else the hub's host with the
 * broker's port (an IPv6 host in brackets).
 *
 * @example
 * brokerUrlOf({ url: null, port: 1883 }, 'http://[fd00::1]:8080') // 'mqtt://[fd00::1]:1883'
 */
export function brokerUrlOf(address: BrokerAddress, hubUrl: string): string {
  if (address.url !== null) return address.url;
  const host = new URL(hubUrl).hostname;
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `mqtt://${bracketed}:${address.port}`;
}

/** sha256 (hex) of a code in its canonical form. */
export function digestOfCode(canonicalCode: string): string {
  return createHash('sha256').update(canonicalCode).digest('hex');
}
