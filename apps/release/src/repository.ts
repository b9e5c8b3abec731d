/**
 * The maker's signed release repository, kept in a working folder:
 *
 *   metadata            → a link to the current set in sets/ (swapped atomically on every change)
 *   sets/<n>/           _settings.json, <N>.root.json (every root version), targets.json,
 *                       vendor.<vendor>.json (one delegated role per vendor), snapshot.json, timestamp.json
 *   images/<vendor>/<model>/<version>/<file>
 *   keys/               key files, unless --keys names other folders (root keys belong offline)
 *
 * Every operation builds a whole new metadata set in memory, signs it, writes it into a fresh folder
 * and only then swaps the link: a crash leaves the repository as before or as after. Images are
 * written before the metadata that names them.
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import type { EpochMs, ErrorCode } from '@firmward/core';
import { releaseCustomSchema, targetPath, vendorDelegation } from '@firmward/tuf';
import { copyFileAtomic, hashFile, linkTarget, noFaults, removeAllBut, swapLink, writeFolder } from './atomic.ts';
import type { BeforeWrite } from './atomic.ts';
import { Keyring, generateSigningKey, loadSigningKey, publicKeyJson, readPublicKey, writeKeyFile } from './keys.ts';
import type { KeyFileKdf } from './keys.ts';
import type { PublicKeyJson, SigningKey } from './keys.ts';
import { withLock } from './lock.ts';
import {
  DAY_MS, SPEC_VERSION, formatExpires, metadataText, parseMetadata, readMetadata, sameSigned, signMetadata, validSigners, writeMetadata,
} from './metadata.ts';
import type {
  AnySigned, DelegatedRoleJson, Envelope, RoleJson, RootSigned, SnapshotSigned, TargetFileJson, TargetsSigned, TimestampSigned, TopLevelRole,
} from './metadata.ts';
import { publishState } from './publish.ts';
import type { PublishResult } from './publish.ts';

/** How long each kind of metadata stays valid after it is signed, in days. */
export interface ExpiryDays { root: number; targets: number; vendor: number; snapshot: number; timestamp: number }
export const DEFAULT_EXPIRY_DAYS: Readonly<ExpiryDays> = { root: 365, targets: 90, vendor: 90, snapshot: 7, timestamp: 1 };

const settingsSchema = z.strictObject({
  firmwardRelease: z.literal(1),
  expiryDays: z.strictObject({
    root: z.number().int().min(1).max(3650), targets: z.number().int().min(1).max(3650), vendor: z.number().int().min(1).max(3650),
    snapshot: z.number().int().min(1).max(3650), timestamp: z.number().int().min(1).max(3650),
  }),
});
type Settings = z.output<typeof settingsSchema>;

export interface RepositoryOptions {
  /** Folders holding key files (repeatable `--keys`); default `<dir>/keys`. */
  keyDirs?: readonly string[];
  /** Where keys this tool generates are written; default the first of `keyDirs`. */
  newKeysDir?: string;
  /** Opens (and, for new keys, encrypts) the private keys. */
  passphrase?: string | (() => string);
  /** The clock every expiry is computed from (tests make expired metadata with it). */
  now?: () => EpochMs;
  /** Fault injection: called before each file is written. */
  beforeWrite?: BeforeWrite;
  /** How new (and upgraded) key files are encrypted: default KEY_FILE_KDF; tests and the demo use INSECURE_FAST_KDF. */
  keyFileKdf?: Readonly<KeyFileKdf>;
}

/** Keys for one role: existing key files (their public halves), plus fresh keys up to `keyCount`. */
export interface RoleKeysOptions {
  keyCount?: number;
  threshold?: number;
  keyFiles?: readonly string[];
}
export interface VendorOptions extends RoleKeysOptions { name: string }

export interface InitOptions {
  root?: RoleKeysOptions;
  targets?: RoleKeysOptions;
  snapshot?: RoleKeysOptions;
  timestamp?: RoleKeysOptions;
  vendors?: readonly VendorOptions[];
  expiryDays?: Partial<ExpiryDays>;
}

export interface AddOptions {
  /** The image file. */
  image: string;
  /** The signed description (validated with releaseCustomSchema before anything is written). */
  custom: unknown;
  /** The file name in the target path; default the image's own name. */
  fileName?: string;
}

export interface RotateOptions {
  /** Key ids (or unique prefixes of at least 8 characters) to drop; default all of the role's keys. */
  remove?: readonly string[];
  /** Key files whose public halves join the role (keys made elsewhere with `keygen`). */
  addKeyFiles?: readonly string[];
  /** How many fresh keys to generate; default enough to keep the number of keys. */
  generate?: number;
  /** New threshold; default the current one. */
  threshold?: number;
}

export interface CreatedKey { role: string; keyId: string; file: string }

/** How many valid signatures a piece of metadata has against what it needs. */
export interface SignatureCount { valid: number; threshold: number }

export interface ReleaseSummary {
  path: string;
  lengthBytes: number;
  sha256: string;
  retracted: boolean;
  retractedReason?: string;
}

export interface RepositoryStatus {
  dir: string;
  roots: { version: number; expires: string; signatures: SignatureCount; previousRootSignatures?: SignatureCount }[];
  roles: { role: TopLevelRole; version: number; expires: string; keyIds: string[]; threshold: number; signatures: SignatureCount }[];
  vendors: { name: string; version: number; expires: string; keyIds: string[]; threshold: number; signatures: SignatureCount; releases: ReleaseSummary[] }[];
  /** What keeps the repository from being published (below threshold, expired), one sentence each. */
  problems: { code: ErrorCode; message: string }[];
}

export interface RootSigningResult { version: number; signatures: SignatureCount; previousRootSignatures?: SignatureCount; complete: boolean }

export interface RefreshResult {
  timestampVersion: number;
  snapshotVersion: number;
  /** Roles re-signed because they were close to expiry. */
  renewed: string[];
  /** Things a person must do (an offline root close to expiry, a role whose keys are not here). */
  warnings: string[];
}

interface State {
  settings: Settings;
  roots: Envelope<RootSigned>[];
  targets: Envelope<TargetsSigned>;
  vendors: Map<string, Envelope<TargetsSigned>>;
  snapshot: Envelope<SnapshotSigned>;
  timestamp: Envelope<TimestampSigned>;
}

interface Change {
  root?: RootSigned;
  targets?: TargetsSigned;
  vendors?: ReadonlyMap<string, TargetsSigned>;
}

const RESERVED_ROLE_NAMES = new Set(['root', 'targets', 'snapshot', 'timestamp']);
const SETTINGS_FILE = '_settings.json';
const ROOT_FILE = /^(\d+)\.root\.json$/;
const MAX_KEYS_PER_ROLE = 20;
/** An offline root needs people to sign it: warn this long before it expires. */
const ROOT_WARNING_DAYS = 30;

const vendorFile = (vendor: string): string => `vendor.${vendor}.json`;

function newest<T>(list: readonly T[]): T {
  const last = list.at(-1);
  if (last === undefined) throw new FirmwardError('internal', 'The repository has no root metadata.');
  return last;
}

function zodMessage(error: z.ZodError): string {
  return z.prettifyError(error).replaceAll('\n', ' ');
}

/** Checks a vendor name for the layout contract and for names that would collide with TUF's own files. */
export function checkVendorName(name: string, existing: Iterable<string> = []): void {
  vendorDelegation(name);
  if (RESERVED_ROLE_NAMES.has(name.toLowerCase())) {
    throw new FirmwardError('invalid_input', `"${name}" cannot be a vendor name: it is the name of one of TUF's own roles.`);
  }
  for (const other of existing) {
    // Case-insensitive file systems (a CDN's, a Mac's) would mix up "Acme" and "acme".
    if (other.toLowerCase() === name.toLowerCase()) throw new FirmwardError('conflict', `The vendor "${other}" is already in this repository.`);
  }
}

function checkCount(what: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new FirmwardError('invalid_input', `The ${what} must be a whole number from ${min} to ${max}.`);
  }
}

function timeLabel(epochMs: number): string {
  return formatExpires(epochMs).replace('T', ' ').replace('Z', ' UTC');
}

export class ReleaseRepository {
  readonly dir: string;
  readonly keyring: Keyring;
  readonly #newKeysDir: string;
  readonly #now: () => EpochMs;
  readonly #beforeWrite: BeforeWrite;
  #state: State;

  private constructor(dir: string, state: State, options: RepositoryOptions) {
    this.dir = dir;
    const keyDirs = options.keyDirs !== undefined && options.keyDirs.length > 0 ? options.keyDirs.map((d) => resolve(d)) : [join(dir, 'keys')];
    this.keyring = new Keyring(keyDirs, options.passphrase, {
      ...(options.beforeWrite !== undefined && { beforeWrite: options.beforeWrite }),
      ...(options.keyFileKdf !== undefined && { kdf: options.keyFileKdf }),
    });
    this.#newKeysDir = options.newKeysDir === undefined ? keyDirs[0] ?? join(dir, 'keys') : resolve(options.newKeysDir);
    this.#now = options.now ?? Date.now;
    this.#beforeWrite = options.beforeWrite ?? noFaults;
    this.#state = state;
  }

  /**
   * Creates a repository in `dir` (which must not hold one): root, targets, snapshot and timestamp
   * keys and one delegated role per vendor, everything signed and current.
   *
   * @example
   * const { repository, createdKeys } = await ReleaseRepository.init('./repo', {
   *   root: { keyCount: 3, threshold: 2 }, vendors: [{ name: 'acme' }],
   * }, { passphrase: process.env.FIRMWARD_RELEASE_PASSPHRASE });
   */
  static async init(dir: string, init: InitOptions = {}, options: RepositoryOptions = {}): Promise<{ repository: ReleaseRepository; createdKeys: CreatedKey[] }> {
    const absolute = resolve(dir);
    const expiryDays = { ...DEFAULT_EXPIRY_DAYS, ...init.expiryDays };
    const settings = settingsSchema.safeParse({ firmwardRelease: 1, expiryDays });
    if (!settings.success) throw new FirmwardError('invalid_input', `The expiry periods are not valid: ${zodMessage(settings.error)}.`);
    const vendorNames: string[] = [];
    for (const vendor of init.vendors ?? []) {
      checkVendorName(vendor.name, vendorNames);
      vendorNames.push(vendor.name);
    }
    await mkdir(absolute, { recursive: true });
    if (await linkTarget(join(absolute, 'metadata')) !== undefined) {
      throw new FirmwardError('conflict', `${absolute} already holds a release repository.`);
    }
    const blank = <S extends AnySigned>(signed: S): Envelope<S> => ({ signed, signatures: [] });
    const repository = new ReleaseRepository(absolute, {
      settings: settings.data,
      roots: [],
      targets: blank<TargetsSigned>({ _type: 'targets', spec_version: SPEC_VERSION, version: 0, expires: '', targets: {} }),
      vendors: new Map(),
      snapshot: blank<SnapshotSigned>({ _type: 'snapshot', spec_version: SPEC_VERSION, version: 0, expires: '', meta: {} }),
      timestamp: blank<TimestampSigned>({ _type: 'timestamp', spec_version: SPEC_VERSION, version: 0, expires: '', meta: { 'snapshot.json': { version: 0 } } }),
    }, options);
    const createdKeys: CreatedKey[] = [];
    await withLock(join(absolute, 'lock'), async () => {
      const keys: Record<string, PublicKeyJson> = {};
      const roles = {} as Record<TopLevelRole, RoleJson>;
      const defaults: Record<TopLevelRole, { keyCount: number; threshold: number }> = {
        root: { keyCount: 3, threshold: 2 }, targets: { keyCount: 1, threshold: 1 }, snapshot: { keyCount: 1, threshold: 1 }, timestamp: { keyCount: 1, threshold: 1 },
      };
      for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) {
        const made = await repository.#roleKeys(role, init[role] ?? {}, defaults[role], createdKeys);
        Object.assign(keys, made.keys);
        roles[role] = made.role;
      }
      const delegationKeys: Record<string, PublicKeyJson> = {};
      const delegated: DelegatedRoleJson[] = [];
      const vendors = new Map<string, TargetsSigned>();
      for (const vendor of init.vendors ?? []) {
        const made = await repository.#roleKeys(vendor.name, vendor, { keyCount: 1, threshold: 1 }, createdKeys);
        Object.assign(delegationKeys, made.keys);
        delegated.push({ name: vendor.name, ...made.role, terminating: true, paths: vendorDelegation(vendor.name).paths });
        vendors.set(vendor.name, { _type: 'targets', spec_version: SPEC_VERSION, version: 0, expires: '', targets: {} });
      }
      const state = await repository.#seal(repository.#state, {
        root: { _type: 'root', spec_version: SPEC_VERSION, version: 0, expires: '', consistent_snapshot: true, keys, roles },
        targets: { ...repository.#state.targets.signed, delegations: { keys: delegationKeys, roles: delegated } },
        vendors,
      });
      await repository.#commit(state);
      repository.#state = state;
    });
    return { repository, createdKeys };
  }

  /** Opens the repository in `dir`. */
  static async open(dir: string, options: RepositoryOptions = {}): Promise<ReleaseRepository> {
    const absolute = resolve(dir);
    return new ReleaseRepository(absolute, await loadState(absolute), options);
  }

  /** Re-reads the working folder (another process may have changed it). */
  async reload(): Promise<void> {
    this.#state = await loadState(this.dir);
  }

  /** Every vendor with a delegated role, in delegation order. */
  get vendors(): string[] {
    return (this.#state.targets.signed.delegations?.roles ?? []).map((r) => r.name);
  }

  /** The newest root version (the one to ship devices with, once fully signed). */
  get rootVersion(): number {
    return newest(this.#state.roots).signed.version;
  }

  /** The current metadata, by file name as published without version prefixes (copies). */
  metadata(): { roots: Envelope<RootSigned>[]; targets: Envelope<TargetsSigned>; vendors: Map<string, Envelope<TargetsSigned>>; snapshot: Envelope<SnapshotSigned>; timestamp: Envelope<TimestampSigned> } {
    return structuredClone({ roots: this.#state.roots, targets: this.#state.targets, vendors: this.#state.vendors, snapshot: this.#state.snapshot, timestamp: this.#state.timestamp });
  }

  /** The signing keys present for a role (`root`, `targets`, `snapshot`, `timestamp` or a vendor). */
  async signingKeys(role: string): Promise<SigningKey[]> {
    return this.keyring.signers(this.#roleOf(this.#state, role).keyids);
  }

  /** The image file in the working folder for a target path. */
  imagePath(path: string): string {
    return join(this.dir, 'images', ...path.split('/'));
  }

  /** Adds a vendor and its delegated role (trusted only for `<vendor>/*\/*\/*`). */
  async addVendor(vendor: VendorOptions): Promise<{ role: string; keyIds: string[]; createdKeys: CreatedKey[] }> {
    return this.#mutate(async (state) => {
      checkVendorName(vendor.name, (state.targets.signed.delegations?.roles ?? []).map((r) => r.name));
      const createdKeys: CreatedKey[] = [];
      const made = await this.#roleKeys(vendor.name, vendor, { keyCount: 1, threshold: 1 }, createdKeys);
      const targets = structuredClone(state.targets.signed);
      const delegations = targets.delegations ?? { keys: {}, roles: [] };
      Object.assign(delegations.keys, made.keys);
      delegations.roles.push({ name: vendor.name, ...made.role, terminating: true, paths: vendorDelegation(vendor.name).paths });
      targets.delegations = delegations;
      const next = await this.#seal(state, {
        targets,
        vendors: new Map([[vendor.name, { _type: 'targets', spec_version: SPEC_VERSION, version: 0, expires: '', targets: {} }]]),
      });
      return { state: next, result: { role: vendor.name, keyIds: made.role.keyids, createdKeys } };
    });
  }

  /**
   * Adds an image with its signed description to its vendor's role. The description is validated
   * and the signatures made before a byte is written; length and SHA-256 come from the bytes stored.
   * Re-adding a vendor/model/version is refused: a released version never changes.
   */
  async add(options: AddOptions): Promise<{ path: string; lengthBytes: number; sha256: string; vendorVersion: number }> {
    const parsed = releaseCustomSchema.safeParse(options.custom);
    if (!parsed.success) throw new FirmwardError('invalid_input', `The release description is not valid: ${zodMessage(parsed.error)}.`);
    const source = resolve(options.image);
    const info = await stat(source).catch(() => undefined);
    if (info?.isFile() !== true) throw new FirmwardError('not_found', `There is no image file at ${source}.`);
    const { vendor, model, version } = parsed.data;
    const path = targetPath(vendor, model, version, options.fileName ?? basename(source));
    return this.#mutate(async (state) => {
      const role = state.vendors.get(vendor);
      if (role === undefined) {
        throw new FirmwardError('not_found', `The vendor "${vendor}" is not in this repository; add it first with "firmward release add-vendor ${vendor}".`);
      }
      const prefix = `${vendor}/${model}/${version}/`;
      if (Object.keys(role.signed.targets).some((p) => p.startsWith(prefix))) {
        throw new FirmwardError('conflict', `${vendor} ${model} ${version} is already released; a released version never changes, so release a new version instead.`);
      }
      const custom = JSON.parse(JSON.stringify({ ...parsed.data, publishedAt: parsed.data.publishedAt ?? formatExpires(this.#now()) })) as Record<string, unknown>;
      const measured = await hashFile(source);
      const signed = structuredClone(role.signed);
      signed.targets[path] = { length: measured.lengthBytes, hashes: { sha256: measured.sha256 }, custom };
      // Sign first: a missing vendor key must leave nothing behind, not even the image.
      const next = await this.#seal(state, { vendors: new Map([[vendor, signed]]) });
      const destination = this.imagePath(path);
      await mkdir(dirname(destination), { recursive: true });
      const written = await copyFileAtomic(source, destination, this.#beforeWrite);
      if (written.sha256 !== measured.sha256 || written.lengthBytes !== measured.lengthBytes) {
        throw new FirmwardError('image_hash_mismatch', `The image ${source} changed while it was being added; add it again once it is complete.`);
      }
      return { state: next, result: { path, lengthBytes: measured.lengthBytes, sha256: measured.sha256, vendorVersion: newVersion(next, vendor) } };
    });
  }

  /**
   * Marks `<vendor>/<model>/<version>` as retracted in its vendor's signed role. The target stays
   * listed, so a device running it is still recognised (and updated first).
   */
  async retract(release: string, reason: string): Promise<{ path: string; vendorVersion: number }> {
    const trimmed = reason.trim();
    if (trimmed === '' || trimmed.length > 500) throw new FirmwardError('invalid_input', 'Give the reason for the retraction in one sentence (up to 500 characters).');
    const [vendor, model, version, ...rest] = release.split('/');
    if (vendor === undefined || model === undefined || version === undefined || rest.length > 0) {
      throw new FirmwardError('invalid_input', `"${release}" is not a release: write it as <vendor>/<model>/<version>.`);
    }
    return this.#mutate(async (state) => {
      const role = state.vendors.get(vendor);
      const prefix = `${vendor}/${model}/${version}/`;
      const path = Object.keys(role?.signed.targets ?? {}).find((p) => p.startsWith(prefix));
      if (role === undefined || path === undefined) throw new FirmwardError('not_found', `There is no release ${vendor} ${model} ${version} in this repository.`);
      const signed = structuredClone(role.signed);
      const target = signed.targets[path] as TargetFileJson;
      if (target.custom?.['retracted'] === true) throw new FirmwardError('conflict', `${vendor} ${model} ${version} is already retracted.`);
      target.custom = { ...target.custom, retracted: true, retractedReason: trimmed };
      const next = await this.#seal(state, { vendors: new Map([[vendor, signed]]) });
      return { state: next, result: { path, vendorVersion: newVersion(next, vendor) } };
    });
  }

  /**
   * Replaces keys of a role. Root: a new root version signed by a threshold of the old root keys
   * and a threshold of the new ones (the TUF rule; keys not here can sign later with `sign-root`).
   * targets, snapshot, timestamp: a new root version and the role re-signed with its new keys.
   * A vendor: new targets metadata and the vendor's role re-signed with its new keys.
   */
  async rotate(role: string, options: RotateOptions = {}): Promise<{ role: string; keyIds: string[]; createdKeys: CreatedKey[]; root?: RootSigningResult }> {
    return this.#mutate(async (state) => {
      const current = this.#roleOf(state, role);
      const removed = options.remove === undefined ? [...current.keyids] : options.remove.map((id) => resolveKeyId(current.keyids, id, role));
      const kept = current.keyids.filter((id) => !removed.includes(id));
      const added: Record<string, PublicKeyJson> = {};
      for (const file of options.addKeyFiles ?? []) {
        const info = await readPublicKey(resolve(file));
        added[info.keyId] = publicKeyJson(info.publicKeyHex);
      }
      const addedIds = Object.keys(added).filter((id) => !kept.includes(id));
      const generate = options.generate ?? Math.max(0, removed.length - addedIds.length);
      checkCount('number of new keys', generate, 0, MAX_KEYS_PER_ROLE);
      const createdKeys: CreatedKey[] = [];
      for (let i = 0; i < generate; i++) {
        const key = await this.#createKey(role, createdKeys);
        added[key.keyId] = publicKeyJson(key.publicKeyHex);
        addedIds.push(key.keyId);
      }
      const keyIds = [...kept, ...addedIds];
      const threshold = options.threshold ?? current.threshold;
      checkCount('number of keys', keyIds.length, 1, MAX_KEYS_PER_ROLE);
      if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keyIds.length) {
        throw new FirmwardError('invalid_input', `The ${role} role would have ${keyIds.length} keys, so its threshold must be from 1 to ${keyIds.length} (it is ${threshold}).`);
      }
      let next: State;
      if (isTopLevel(role)) {
        const root = structuredClone(newest(state.roots).signed);
        root.roles[role] = { keyids: keyIds, threshold };
        root.keys = pruneKeys({ ...root.keys, ...added }, Object.values(root.roles));
        next = await this.#seal(state, { root, ...(role === 'targets' ? { targets: state.targets.signed } : {}) });
      } else {
        const targets = structuredClone(state.targets.signed);
        const delegations = targets.delegations ?? { keys: {}, roles: [] };
        const delegated = delegations.roles.find((r) => r.name === role) as DelegatedRoleJson;
        delegated.keyids = keyIds;
        delegated.threshold = threshold;
        delegations.keys = pruneKeys({ ...delegations.keys, ...added }, delegations.roles);
        next = await this.#seal(state, { targets, vendors: new Map([[role, (state.vendors.get(role) as Envelope<TargetsSigned>).signed]]) });
      }
      return {
        state: next,
        result: { role, keyIds, createdKeys, ...(isTopLevel(role) ? { root: rootSigning(next.roots, next.roots.length - 1) } : {}) },
      };
    });
  }

  /** A new root version with the same keys and a fresh expiry (root keys sign it, here or later). */
  async renewRoot(): Promise<RootSigningResult> {
    return this.#mutate(async (state) => {
      const next = await this.#seal(state, { root: structuredClone(newest(state.roots).signed) });
      return { state: next, result: rootSigning(next.roots, next.roots.length - 1) };
    });
  }

  /**
   * New timestamp and snapshot versions (for a cron job, well before the timestamp expires); targets
   * and vendor roles expiring within `withinDays` (default: the snapshot period) are re-signed too.
   */
  async refresh(options: { withinDays?: number } = {}): Promise<RefreshResult> {
    return this.#mutate(async (state) => {
      const now = this.#now();
      const horizon = now + (options.withinDays ?? state.settings.expiryDays.snapshot) * DAY_MS;
      const renewed: string[] = [];
      const warnings: string[] = [];
      const change: { targets?: TargetsSigned; vendors: Map<string, TargetsSigned> } = { vendors: new Map() };
      const root = newest(state.roots).signed;
      if (Date.parse(state.targets.signed.expires) <= horizon) {
        if ((await this.keyring.signers(root.roles.targets.keyids)).length >= root.roles.targets.threshold) {
          change.targets = state.targets.signed;
          renewed.push('targets');
        } else {
          warnings.push(`The targets metadata expires on ${timeLabel(Date.parse(state.targets.signed.expires))} and its keys are not here: run refresh where they are.`);
        }
      }
      for (const role of state.targets.signed.delegations?.roles ?? []) {
        const vendor = state.vendors.get(role.name) as Envelope<TargetsSigned>;
        if (Date.parse(vendor.signed.expires) > horizon) continue;
        if ((await this.keyring.signers(role.keyids)).length >= role.threshold) {
          change.vendors.set(role.name, vendor.signed);
          renewed.push(role.name);
        } else {
          warnings.push(`The ${role.name} role expires on ${timeLabel(Date.parse(vendor.signed.expires))} and its keys are not here: run refresh where they are.`);
        }
      }
      if (Date.parse(root.expires) <= now + ROOT_WARNING_DAYS * DAY_MS) {
        warnings.push(`Root version ${root.version} expires on ${timeLabel(Date.parse(root.expires))}: make a new one with "firmward release renew-root" and have the root keys sign it.`);
      }
      const next = await this.#seal(state, change);
      return { state: next, result: { timestampVersion: next.timestamp.signed.version, snapshotVersion: next.snapshot.signed.version, renewed, warnings } };
    });
  }

  /**
   * Adds signatures to the newest root version: with these key files, or with every root key (of
   * this version or the one before) found in the key folders. The offline half of a root change.
   */
  async signRoot(keyFiles?: readonly string[]): Promise<RootSigningResult> {
    return this.#mutate(async (state) => {
      const index = state.roots.length - 1;
      const allowed = rootSigners(state.roots, index);
      let keys: SigningKey[];
      if (keyFiles === undefined) {
        keys = await this.keyring.signers([...allowed]);
      } else {
        keys = [];
        for (const file of keyFiles) keys.push(await loadSigningKey(resolve(file), this.keyring.passphrase(), this.keyring.keyFileOptions));
      }
      for (const key of keys) {
        if (!allowed.has(key.keyId)) {
          throw new FirmwardError('forbidden', `The key ${key.keyId.slice(0, 16)} is not a root key of root version ${index + 1} or the version before it.`);
        }
      }
      if (keys.length === 0) throw new FirmwardError('not_found', 'No root key was found in the key folders; pass --key with a root key file.');
      const roots = [...state.roots];
      roots[index] = signMetadata(newest(roots), keys);
      return { state: { ...state, roots }, result: rootSigning(roots, index) };
    });
  }

  /**
   * Merges the signatures of a root file signed on another machine (`sign-root <file>`) into the
   * root version it signs. Only valid signatures by keys of that version or the one before count.
   */
  async importRootSignatures(file: string): Promise<RootSigningResult> {
    const incoming = await readMetadata(resolve(file));
    if (incoming.signed._type !== 'root') throw new FirmwardError('invalid_input', `${file} is not root metadata.`);
    return this.#mutate((state) => {
      const index = incoming.signed.version - 1;
      const mine = state.roots[index];
      if (mine === undefined || !sameSigned(mine, incoming)) {
        throw new FirmwardError('conflict', `${file} is not root version ${incoming.signed.version} of this repository; sign the file this repository wrote.`);
      }
      const allowed = rootSigners(state.roots, index);
      const merged = new Map(mine.signatures.map((s) => [s.keyid, s]));
      const candidate: Envelope<RootSigned> = { signed: mine.signed, signatures: incoming.signatures };
      const root = mine.signed;
      const previous = state.roots[index - 1]?.signed;
      const valid = new Set([
        ...validSigners(root.keys, { keyids: [...allowed], threshold: 1 }, candidate),
        ...(previous === undefined ? [] : validSigners(previous.keys, { keyids: [...allowed], threshold: 1 }, candidate)),
      ]);
      for (const signature of incoming.signatures) if (valid.has(signature.keyid)) merged.set(signature.keyid, signature);
      const roots = [...state.roots];
      roots[index] = { signed: mine.signed, signatures: [...merged.values()] };
      return Promise.resolve({ state: { ...state, roots }, result: rootSigning(roots, index) });
    });
  }

  /** Versions, expiries, signature counts, releases and what blocks publishing. */
  status(): RepositoryStatus {
    return describe(this.dir, this.#state, this.#now());
  }

  /**
   * Publishes a static folder any HTTP server can serve (`metadata/` and `targets/`). Refuses
   * metadata below its threshold or expired. Images are written first, then the whole metadata
   * folder is swapped in one step.
   */
  async publish(outDir: string): Promise<PublishResult> {
    return withLock(join(this.dir, 'lock'), async () => {
      this.#state = await loadState(this.dir);
      const status = describe(this.dir, this.#state, this.#now());
      const first = status.problems[0];
      if (first !== undefined) {
        throw new FirmwardError(first.code, `Nothing was published: ${status.problems.map((p) => p.message).join(' ')}`, { detail: { problems: status.problems } });
      }
      return publishState(resolve(outDir), {
        roots: this.#state.roots, targets: this.#state.targets, vendors: this.#state.vendors,
        snapshot: this.#state.snapshot, timestamp: this.#state.timestamp,
        imagePath: (path) => this.imagePath(path),
      }, this.#beforeWrite);
    });
  }

  // ---- internals -------------------------------------------------------------------------------

  async #mutate<T>(work: (state: State) => Promise<{ state: State; result: T }>): Promise<T> {
    return withLock(join(this.dir, 'lock'), async () => {
      const state = await loadState(this.dir);
      const { state: next, result } = await work(state);
      await this.#commit(next);
      this.#state = next;
      return result;
    });
  }

  #roleOf(state: State, role: string): RoleJson {
    if (isTopLevel(role)) return newest(state.roots).signed.roles[role];
    const delegated = state.targets.signed.delegations?.roles.find((r) => r.name === role);
    if (delegated === undefined) throw new FirmwardError('not_found', `There is no role "${role}" in this repository: use root, targets, snapshot, timestamp or a vendor's name.`);
    return delegated;
  }

  async #createKey(role: string, created: CreatedKey[]): Promise<SigningKey> {
    const key = generateSigningKey();
    const file = await writeKeyFile(this.#newKeysDir, role, key, this.keyring.passphrase(), this.keyring.keyFileOptions);
    this.keyring.remember(key, { keyId: key.keyId, publicKeyHex: key.publicKeyHex, label: role, file, hasPrivateKey: true });
    created.push({ role, keyId: key.keyId, file });
    return key;
  }

  async #roleKeys(role: string, options: RoleKeysOptions, defaults: { keyCount: number; threshold: number }, created: CreatedKey[]): Promise<{ keys: Record<string, PublicKeyJson>; role: RoleJson }> {
    const keyFiles = options.keyFiles ?? [];
    const keyCount = options.keyCount ?? Math.max(defaults.keyCount, keyFiles.length);
    checkCount(`number of ${role} keys`, keyCount, 1, MAX_KEYS_PER_ROLE);
    const threshold = options.threshold ?? Math.min(defaults.threshold, keyCount);
    if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > keyCount) {
      throw new FirmwardError('invalid_input', `The ${role} threshold must be from 1 to its number of keys (${keyCount}).`);
    }
    if (keyFiles.length > keyCount) throw new FirmwardError('invalid_input', `${keyFiles.length} key files were given for ${role}, more than its ${keyCount} keys.`);
    const keys: Record<string, PublicKeyJson> = {};
    for (const file of keyFiles) {
      const info = await readPublicKey(resolve(file));
      keys[info.keyId] = publicKeyJson(info.publicKeyHex);
    }
    if (Object.keys(keys).length !== keyFiles.length) throw new FirmwardError('invalid_input', `The same key was given twice for ${role}.`);
    while (Object.keys(keys).length < keyCount) {
      const key = await this.#createKey(role, created);
      keys[key.keyId] = publicKeyJson(key.publicKeyHex);
    }
    return { keys, role: { keyids: Object.keys(keys), threshold } };
  }

  /** Signs an online role with every key of it present; refuses when they fall below its threshold. */
  async #signOnline<S extends TargetsSigned | SnapshotSigned | TimestampSigned>(signed: S, role: RoleJson, name: string): Promise<Envelope<S>> {
    const keys = await this.keyring.signers(role.keyids);
    if (keys.length < role.threshold) {
      throw new FirmwardError('not_signed',
        `The ${name} role needs ${role.threshold} signing key${role.threshold === 1 ? '' : 's'} and ${keys.length === 0 ? 'none is' : `only ${keys.length} ${keys.length === 1 ? 'is' : 'are'}`} in the key folders (${this.keyring.dirs.join(', ')}).`);
    }
    return signMetadata({ signed, signatures: [] }, keys);
  }

  /**
   * Bumps and re-signs what changed, then always a new snapshot and timestamp. Every expiry is
   * computed from one reference time (STYLE 10).
   */
  async #seal(state: State, change: Change): Promise<State> {
    const now = this.#now();
    const days = state.settings.expiryDays;
    const expires = (d: number): string => formatExpires(now + d * DAY_MS);
    const roots = [...state.roots];
    if (change.root !== undefined) {
      const signed: RootSigned = { ...structuredClone(change.root), version: roots.length + 1, expires: expires(days.root) };
      const allowed = [...new Set([...signed.roles.root.keyids, ...(roots.at(-1)?.signed.roles.root.keyids ?? [])])];
      // Root may stay below its thresholds here: the offline keys sign it later (sign-root), and publish refuses it until then.
      roots.push(signMetadata({ signed, signatures: [] }, await this.keyring.signers(allowed)));
    }
    const root = newest(roots).signed;
    let targets = state.targets;
    if (change.targets !== undefined) {
      targets = await this.#signOnline({ ...structuredClone(change.targets), version: state.targets.signed.version + 1, expires: expires(days.targets) }, root.roles.targets, 'targets');
    }
    const delegations = targets.signed.delegations ?? { keys: {}, roles: [] };
    const vendors = new Map(state.vendors);
    for (const [name, signed] of change.vendors ?? []) {
      const role = delegations.roles.find((r) => r.name === name);
      if (role === undefined) throw new FirmwardError('internal', `The vendor ${name} has no delegation.`);
      const version = (state.vendors.get(name)?.signed.version ?? 0) + 1;
      vendors.set(name, await this.#signOnline({ ...structuredClone(signed), version, expires: expires(days.vendor) }, role, name));
    }
    const meta: SnapshotSigned['meta'] = { 'targets.json': { version: targets.signed.version } };
    for (const role of delegations.roles) meta[`${role.name}.json`] = { version: (vendors.get(role.name) as Envelope<TargetsSigned>).signed.version };
    const snapshot = await this.#signOnline<SnapshotSigned>({
      _type: 'snapshot', spec_version: SPEC_VERSION, version: state.snapshot.signed.version + 1, expires: expires(days.snapshot), meta,
    }, root.roles.snapshot, 'snapshot');
    const timestamp = await this.#signOnline<TimestampSigned>({
      _type: 'timestamp', spec_version: SPEC_VERSION, version: state.timestamp.signed.version + 1, expires: expires(days.timestamp),
      meta: { 'snapshot.json': { version: snapshot.signed.version } },
    }, root.roles.timestamp, 'timestamp');
    return { settings: state.settings, roots, targets, vendors, snapshot, timestamp };
  }

  /** Writes the whole set into a fresh folder, then swaps the `metadata` link to it (the commit point). */
  async #commit(state: State): Promise<void> {
    const files = new Map<string, string>([[SETTINGS_FILE, `${JSON.stringify(state.settings, null, 2)}\n`]]);
    for (const root of state.roots) files.set(`${root.signed.version}.root.json`, metadataText(root));
    files.set('targets.json', metadataText(state.targets));
    for (const [name, role] of state.vendors) files.set(vendorFile(name), metadataText(role));
    files.set('snapshot.json', metadataText(state.snapshot));
    files.set('timestamp.json', metadataText(state.timestamp));
    const sets = join(this.dir, 'sets');
    await mkdir(sets, { recursive: true });
    const current = await linkTarget(join(this.dir, 'metadata'));
    const currentName = current === undefined ? undefined : basename(current);
    // Sets left by a crash are not current: clear them so the next number is free.
    await removeAllBut(sets, new Set(currentName === undefined ? [] : [currentName]));
    const nextName = String((currentName === undefined ? 0 : Number(currentName)) + 1).padStart(6, '0');
    await writeFolder(join(sets, nextName), files, this.#beforeWrite);
    await swapLink(join(this.dir, 'metadata'), join(sets, nextName), this.#beforeWrite);
    await removeAllBut(sets, new Set([nextName]));
  }
}

function isTopLevel(role: string): role is TopLevelRole {
  return RESERVED_ROLE_NAMES.has(role);
}

function newVersion(state: State, vendor: string): number {
  return (state.vendors.get(vendor) as Envelope<TargetsSigned>).signed.version;
}

function resolveKeyId(keyIds: readonly string[], id: string, role: string): string {
  const matches = id.length >= 8 ? keyIds.filter((k) => k.startsWith(id)) : [];
  if (matches.length !== 1) throw new FirmwardError('not_found', `"${id}" is not (the start of) exactly one key of the ${role} role.`);
  return matches[0] as string;
}

/** Keeps only the keys some role still uses (a rotated-out key leaves the key list). */
function pruneKeys(keys: Record<string, PublicKeyJson>, roles: readonly RoleJson[]): Record<string, PublicKeyJson> {
  const used = new Set(roles.flatMap((r) => r.keyids));
  return Object.fromEntries(Object.entries(keys).filter(([id]) => used.has(id)));
}

/** Who may sign root version index+1: its own root keys and those of the version before (TUF 5.3.4). */
function rootSigners(roots: readonly Envelope<RootSigned>[], index: number): Set<string> {
  return new Set([...(roots[index]?.signed.roles.root.keyids ?? []), ...(roots[index - 1]?.signed.roles.root.keyids ?? [])]);
}

function rootSigning(roots: readonly Envelope<RootSigned>[], index: number): RootSigningResult {
  const root = roots[index] as Envelope<RootSigned>;
  const own = { valid: validSigners(root.signed.keys, root.signed.roles.root, root).length, threshold: root.signed.roles.root.threshold };
  const previous = roots[index - 1];
  const before = previous === undefined ? undefined : {
    valid: validSigners(previous.signed.keys, previous.signed.roles.root, root).length, threshold: previous.signed.roles.root.threshold,
  };
  return {
    version: root.signed.version,
    signatures: own,
    ...(before === undefined ? {} : { previousRootSignatures: before }),
    complete: own.valid >= own.threshold && (before === undefined || before.valid >= before.threshold),
  };
}

function count(keys: Record<string, PublicKeyJson>, role: RoleJson, envelope: Envelope): SignatureCount {
  return { valid: validSigners(keys, role, envelope).length, threshold: role.threshold };
}

function describe(dir: string, state: State, now: EpochMs): RepositoryStatus {
  const problems: RepositoryStatus['problems'] = [];
  const roots = state.roots.map((root, index) => {
    const signing = rootSigning(state.roots, index);
    if (signing.signatures.valid < signing.signatures.threshold) {
      problems.push({ code: 'not_signed', message: `Root version ${root.signed.version} has ${signing.signatures.valid} of the ${signing.signatures.threshold} root signatures it needs: sign it with "firmward release sign-root" where the other root keys are.` });
    }
    const before = signing.previousRootSignatures;
    if (before !== undefined && before.valid < before.threshold) {
      problems.push({ code: 'not_signed', message: `Root version ${root.signed.version} has ${before.valid} of the ${before.threshold} signatures it needs from the keys of root version ${root.signed.version - 1}: sign it with those keys too.` });
    }
    return {
      version: root.signed.version, expires: root.signed.expires, signatures: signing.signatures,
      ...(before === undefined ? {} : { previousRootSignatures: before }),
    };
  });
  const root = newest(state.roots);
  const expired = (what: string, expires: string): void => {
    if (Date.parse(expires) <= now) {
      problems.push({ code: 'metadata_expired', message: `The ${what} metadata expired on ${timeLabel(Date.parse(expires))}: run "firmward release refresh"${what === 'root' ? ' after "renew-root"' : ''}.` });
    }
  };
  expired('root', root.signed.expires);
  const top = [['targets', state.targets], ['snapshot', state.snapshot], ['timestamp', state.timestamp]] as const;
  const roles: RepositoryStatus['roles'] = [{
    role: 'root', version: root.signed.version, expires: root.signed.expires, keyIds: root.signed.roles.root.keyids,
    threshold: root.signed.roles.root.threshold, signatures: count(root.signed.keys, root.signed.roles.root, root),
  }];
  for (const [name, envelope] of top) {
    const role = root.signed.roles[name];
    const signatures = count(root.signed.keys, role, envelope);
    if (signatures.valid < signatures.threshold) problems.push({ code: 'not_signed', message: `The ${name} metadata has ${signatures.valid} of the ${signatures.threshold} signatures it needs.` });
    expired(name, envelope.signed.expires);
    roles.push({ role: name, version: envelope.signed.version, expires: envelope.signed.expires, keyIds: role.keyids, threshold: role.threshold, signatures });
  }
  const delegations = state.targets.signed.delegations ?? { keys: {}, roles: [] };
  const vendors = delegations.roles.map((role) => {
    const envelope = state.vendors.get(role.name) as Envelope<TargetsSigned>;
    const signatures = count(delegations.keys, role, envelope);
    if (signatures.valid < signatures.threshold) problems.push({ code: 'not_signed', message: `The ${role.name} role has ${signatures.valid} of the ${signatures.threshold} signatures it needs.` });
    expired(role.name, envelope.signed.expires);
    const releases = Object.entries(envelope.signed.targets).map(([path, target]): ReleaseSummary => {
      const reason = target.custom?.['retractedReason'];
      return {
        path, lengthBytes: target.length, sha256: target.hashes['sha256'] ?? '', retracted: target.custom?.['retracted'] === true,
        ...(typeof reason === 'string' ? { retractedReason: reason } : {}),
      };
    });
    return { name: role.name, version: envelope.signed.version, expires: envelope.signed.expires, keyIds: role.keyids, threshold: role.threshold, signatures, releases };
  });
  return { dir, roots, roles, vendors, problems };
}

async function loadState(dir: string): Promise<State> {
  const set = await linkTarget(join(dir, 'metadata'));
  if (set === undefined || set.startsWith('not-a-link:')) {
    throw new FirmwardError('not_found', `${dir} does not hold a release repository; create one with "firmward release init".`);
  }
  const read = async (name: string): Promise<string> => readFile(join(set, name), 'utf8');
  const settings = settingsSchema.safeParse(JSON.parse(await read(SETTINGS_FILE)));
  if (!settings.success) throw new FirmwardError('metadata_invalid', `The settings of ${dir} are damaged: ${zodMessage(settings.error)}.`);
  const rootVersions = (await readdir(set)).map((n) => ROOT_FILE.exec(n)?.[1]).filter((v) => v !== undefined).map(Number).sort((a, b) => a - b);
  const roots: Envelope<RootSigned>[] = [];
  for (const [index, version] of rootVersions.entries()) {
    if (version !== index + 1) throw new FirmwardError('metadata_invalid', `Root version ${index + 1} is missing from ${set}.`);
    roots.push(parseMetadata(await read(`${version}.root.json`), `${version}.root.json`) as Envelope<RootSigned>);
  }
  if (roots.length === 0) throw new FirmwardError('metadata_invalid', `${set} holds no root metadata.`);
  const targets = parseMetadata(await read('targets.json'), 'targets.json') as Envelope<TargetsSigned>;
  const vendors = new Map<string, Envelope<TargetsSigned>>();
  for (const role of targets.signed.delegations?.roles ?? []) {
    vendors.set(role.name, parseMetadata(await read(vendorFile(role.name)), vendorFile(role.name)) as Envelope<TargetsSigned>);
  }
  const snapshot = parseMetadata(await read('snapshot.json'), 'snapshot.json') as Envelope<SnapshotSigned>;
  const timestamp = parseMetadata(await read('timestamp.json'), 'timestamp.json') as Envelope<TimestampSigned>;
  return { settings: settings.data, roots, targets, vendors, snapshot, timestamp };
}


/**
 * Adds signatures to a root file in place (atomically): the offline machine's half of a root
 * change, for a file carried over from the working folder. Any ed25519 key file may sign (a
 * rotated-out key of the version before is not listed in the file); `listed` says which are.
 *
 * @example
 * await signRootFile('/media/usb/3.root.json', ['/media/usb/root-1a2b.key.json'], passphrase);
 */
export async function signRootFile(file: string, keyFiles: readonly string[], passphrase: string): Promise<{ version: number; signedBy: { keyId: string; listed: boolean }[] }> {
  const envelope = await readMetadata(resolve(file));
  if (envelope.signed._type !== 'root') throw new FirmwardError('invalid_input', `${file} is not root metadata.`);
  if (keyFiles.length === 0) throw new FirmwardError('invalid_input', 'Name at least one key file to sign with (--key).');
  const keys: SigningKey[] = [];
  for (const keyFile of keyFiles) keys.push(await loadSigningKey(resolve(keyFile), passphrase));
  const root = envelope as Envelope<RootSigned>;
  await writeMetadata(resolve(file), signMetadata(root, keys));
  return { version: root.signed.version, signedBy: keys.map((k) => ({ keyId: k.keyId, listed: root.signed.roles.root.keyids.includes(k.keyId) })) };
}
