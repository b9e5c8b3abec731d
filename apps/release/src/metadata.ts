/**
 * TUF metadata as plain JSON (`{signed, signatures}`), signed and checked with the same canonical
 * JSON and the same parser the tuf-js client uses (@tufjs/models), so what we sign is byte for byte
 * what a device verifies. Kept low-level on purpose: the repository builds on it, and attack tests
 * use it to craft metadata no honest repository would write.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { canonicalize } from '@tufjs/canonical-json';
import { Key, Metadata, MetadataKind } from '@tufjs/models';
import { FirmwardError } from '@firmward/core';
import { writeFileAtomic } from './atomic.ts';
import type { BeforeWrite } from './atomic.ts';
import { signBytes } from './keys.ts';
import type { PublicKeyJson, SigningKey } from './keys.ts';

export const SPEC_VERSION = '1.0.31';
export const TOP_LEVEL_ROLES = ['root', 'targets', 'snapshot', 'timestamp'] as const;
export type TopLevelRole = (typeof TOP_LEVEL_ROLES)[number];

export interface SignatureJson { keyid: string; sig: string }
export interface RoleJson { keyids: string[]; threshold: number }
export interface DelegatedRoleJson extends RoleJson { name: string; terminating: boolean; paths: string[] }
export interface MetaFileJson { version: number; length?: number; hashes?: Record<string, string> }
export interface TargetFileJson { length: number; hashes: Record<string, string>; custom?: Record<string, unknown> }

interface SignedCommon { spec_version: string; version: number; expires: string }
export interface RootSigned extends SignedCommon {
  _type: 'root';
  consistent_snapshot: boolean;
  keys: Record<string, PublicKeyJson>;
  roles: Record<TopLevelRole, RoleJson>;
}
export interface TargetsSigned extends SignedCommon {
  _type: 'targets';
  targets: Record<string, TargetFileJson>;
  delegations?: { keys: Record<string, PublicKeyJson>; roles: DelegatedRoleJson[] };
}
export interface SnapshotSigned extends SignedCommon { _type: 'snapshot'; meta: Record<string, MetaFileJson> }
export interface TimestampSigned extends SignedCommon { _type: 'timestamp'; meta: { 'snapshot.json': MetaFileJson } }
export type AnySigned = RootSigned | TargetsSigned | SnapshotSigned | TimestampSigned;

/** One metadata file: the signed part and its signatures. */
export interface Envelope<S extends AnySigned = AnySigned> {
  signed: S;
  signatures: SignatureJson[];
}

/** TUF's expiry format, second precision: `YYYY-MM-DDTHH:MM:SSZ`. */
export function formatExpires(epochMs: number): string {
  return new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export const DAY_MS = 24 * 3600 * 1000;

function kindOf(type: string): MetadataKind {
  switch (type) {
    case 'root': return MetadataKind.Root;
    case 'targets': return MetadataKind.Targets;
    case 'snapshot': return MetadataKind.Snapshot;
    case 'timestamp': return MetadataKind.Timestamp;
    default: throw new FirmwardError('metadata_invalid', `"${type}" is not a kind of TUF metadata.`);
  }
}

/** The models' view of an envelope; throws FirmwardError `metadata_invalid` when it does not parse. */
export function toModel(envelope: Envelope): Metadata<never> {
  try {
    // fromJSON is overloaded per kind; the union of kinds is all we need here.
    return Metadata.fromJSON(kindOf(envelope.signed._type) as MetadataKind.Root, envelope as never) as unknown as Metadata<never>;
  } catch (error) {
    if (error instanceof FirmwardError) throw error;
    throw new FirmwardError('metadata_invalid', `The ${envelope.signed._type} metadata is not valid TUF metadata: ${error instanceof Error ? error.message : String(error)}.`, { cause: error });
  }
}

/**
 * The bytes a signature covers: the canonical JSON of the signed part as the client re-serialises
 * it (the models' `toJSON`), falling back to the raw signed part when the models refuse it (a test
 * crafting deliberately broken metadata still gets a signature over what it wrote).
 */
export function signedBytes(envelope: Envelope): Buffer {
  let signed: unknown = envelope.signed;
  try {
    signed = (toModel(envelope) as unknown as { signed: { toJSON(): unknown } }).signed.toJSON();
  } catch {
    // deliberately broken metadata: sign what was written
  }
  return Buffer.from(canonicalize(signed));
}

/**
 * Signs `envelope` with each key. `append` (default) keeps the signatures already there (one per
 * key id; a key signing again replaces its own); `append: false` replaces them all. Returns a copy.
 *
 * @example
 * const resigned = signMetadata(bumpVersion(timestamp), [timestampKey], { append: false });
 */
export function signMetadata<S extends AnySigned>(envelope: Envelope<S>, keys: readonly SigningKey[], options: { append?: boolean } = {}): Envelope<S> {
  const bytes = signedBytes(envelope);
  const byKey = new Map<string, SignatureJson>();
  if (options.append !== false) for (const s of envelope.signatures) byKey.set(s.keyid, s);
  for (const key of keys) byKey.set(key.keyId, { keyid: key.keyId, sig: signBytes(key, bytes) });
  return { signed: structuredClone(envelope.signed), signatures: [...byKey.values()] };
}

/** A copy with `signed.version` set; the signatures are kept as they were (now stale): re-sign it. */
export function setVersion<S extends AnySigned>(envelope: Envelope<S>, version: number): Envelope<S> {
  return { signed: { ...structuredClone(envelope.signed), version }, signatures: [...envelope.signatures] };
}

/** A copy with `signed.version` raised by `by` (default 1); signatures kept as they were. */
export function bumpVersion<S extends AnySigned>(envelope: Envelope<S>, by = 1): Envelope<S> {
  return setVersion(envelope, envelope.signed.version + by);
}

/** A copy expiring at `at` (epoch ms or Date); signatures kept as they were. */
export function setExpires<S extends AnySigned>(envelope: Envelope<S>, at: number | Date): Envelope<S> {
  return { signed: { ...structuredClone(envelope.signed), expires: formatExpires(typeof at === 'number' ? at : at.getTime()) }, signatures: [...envelope.signatures] };
}

/** A copy of snapshot or timestamp metadata naming `version` for `fileName` (e.g. `acme.json`). */
export function setMetaVersion<S extends SnapshotSigned | TimestampSigned>(envelope: Envelope<S>, fileName: string, version: number): Envelope<S> {
  const signed = structuredClone(envelope.signed);
  (signed.meta as Record<string, MetaFileJson>)[fileName] = { version };
  return { signed, signatures: [...envelope.signatures] };
}

/** The TUF target entry for an image: its length, its SHA-256 (the only hash, see publish) and `custom`. */
export function targetEntry(bytes: Uint8Array, custom?: Record<string, unknown>): TargetFileJson {
  return {
    length: bytes.length,
    hashes: { sha256: createHash('sha256').update(bytes).digest('hex') },
    ...(custom === undefined ? {} : { custom: structuredClone(custom) }),
  };
}

/** A copy of targets metadata with `path` set to `entry`; signatures kept as they were. */
export function setTarget(envelope: Envelope<TargetsSigned>, path: string, entry: TargetFileJson): Envelope<TargetsSigned> {
  const signed = structuredClone(envelope.signed);
  signed.targets[path] = structuredClone(entry);
  return { signed, signatures: [...envelope.signatures] };
}

/** Parses metadata text; throws FirmwardError `metadata_invalid` for anything the client would not load. */
export function parseMetadata(text: string, source: string): Envelope {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FirmwardError('metadata_invalid', `${source} is not JSON.`, { cause: error });
  }
  const candidate = json as Partial<Envelope> | null;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.signed !== 'object' || !Array.isArray(candidate.signatures)) {
    throw new FirmwardError('metadata_invalid', `${source} is not TUF metadata.`);
  }
  const envelope = candidate as Envelope;
  toModel(envelope);
  return envelope;
}

/** Reads one metadata file (a working-folder or published one). */
export async function readMetadata(path: string): Promise<Envelope> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new FirmwardError('not_found', `The metadata file ${path} cannot be read.`, { cause: error });
  }
  return parseMetadata(text, path);
}

/** The text a metadata file holds (stable formatting; signatures do not depend on it). */
export function metadataText(envelope: Envelope): string {
  return `${JSON.stringify(envelope, null, 2)}\n`;
}

/** Writes one metadata file atomically. */
export async function writeMetadata(path: string, envelope: Envelope, beforeWrite?: BeforeWrite): Promise<void> {
  await writeFileAtomic(path, metadataText(envelope), beforeWrite === undefined ? {} : { beforeWrite });
}

/** Whether two envelopes have the same signed part (they may differ in signatures). */
export function sameSigned(a: Envelope, b: Envelope): boolean {
  return canonicalize(a.signed) === canonicalize(b.signed);
}

/**
 * The key ids among `role.keyids` whose signature over `envelope` verifies with the key listed in
 * `keys` — the count a client compares with the threshold.
 */
export function validSigners(keys: Readonly<Record<string, PublicKeyJson>>, role: RoleJson, envelope: Envelope): string[] {
  const model = toModel(envelope);
  const valid: string[] = [];
  for (const keyId of new Set(role.keyids)) {
    const keyJson = keys[keyId];
    if (keyJson === undefined) continue;
    try {
      Key.fromJSON(keyId, keyJson as never).verifySignature(model);
      valid.push(keyId);
    } catch {
      // not signed by this key, or badly: it does not count
    }
  }
  return valid;
}
