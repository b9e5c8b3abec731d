/**
 * The makers' signed repositories the hub trusts: those of the config file, and those a person adds
 * while the hub runs (kept in the store, so every hub instance sharing it trusts the same). Trust
 * starts from the root the person gives — uploaded or pasted — and never from one fetched on
 * first use (invariant 4). Removing a repository drops its trusted metadata too: added again later,
 * it starts from the root given then, not from the old one.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { Clock, ImageRefusal, Logger, NewHistoryEvent, RepositoryRecord, Store } from '@firmward/ports';
import { TufReleaseSource, isRoot } from '@firmward/tuf';
import type { FirmwardError as Refusal } from '@firmward/core';
import type { RepositoryConfig } from '../config.ts';
import type { ReleaseSources } from '../release-sources.ts';
import { personEvent, who } from './context.ts';
import type { NewRepositoryInput, RepositoryView } from './types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_ROOT_BYTES = 512 * 1024;

export interface RepositoriesOptions {
  config: readonly RepositoryConfig[];
  store: Store;
  dataDir: string;
  clock: Clock;
  log: Logger;
  /** A target the repository lists but that is refused (outside its vendor's paths, not a release). */
  onTargetRefused: (repository: string, refusal: { path: string; error: Refusal }) => void;
  /** A release withheld because its image at the maker's server did not verify (tuf/release-source.ts). */
  onImageRefused?: (repository: string, release: Release, refusal: ImageRefusal) => void;
  /** A withheld or slow image verified: the releases should be read again so it is planned. */
  onImageVerified?: (repository: string, release: Release) => void;
  /** Live views hear the history lines too. */
  publish: (event: NewHistoryEvent) => void;
}

interface Entry {
  source: TufReleaseSource;
  origin: 'config' | 'added';
  record: RepositoryRecord | null;
}

export class Repositories {
  readonly #o: RepositoriesOptions;
  #entries = new Map<string, Entry>();

  constructor(o: RepositoriesOptions) {
    this.#o = o;
    for (const r of o.config) this.#entries.set(r.name, { source: this.#sourceOf(r.name, r.url, r.root), origin: 'config', record: null });
  }

  /** Config first, then the added ones by name: what ReleaseSources reads at every refresh. */
  sources(): TufReleaseSource[] {
    return [...this.#entries.values()].map((e) => e.source);
  }

  get(name: string): TufReleaseSource | null {
    return this.#entries.get(name)?.source ?? null;
  }

  /**
   * Reads the added repositories from the store again (another instance may have added or removed
   * one). Called before every refresh of the releases.
   */
  async sync(): Promise<void> {
    const stored = await this.#o.store.listRepositories();
    const next = new Map([...this.#entries].filter(([, e]) => e.origin === 'config'));
    for (const record of stored) {
      if (next.has(record.name)) {
        this.#o.log.warn('a repository added at run time has the name of one in the config file; the config file\'s is used', { repository: record.name });
        continue;
      }
      const known = this.#entries.get(record.name);
      const same = known?.record !== null && known?.record?.url === record.url && known.record.root === record.root;
      next.set(record.name, same && known ? known : { source: this.#sourceOf(record.name, record.url, Buffer.from(record.root, 'utf8')), origin: 'added', record });
    }
    this.#entries = next;
  }

  async add(input: NewRepositoryInput, actor: string): Promise<void> {
    const problems: string[] = [];
    if (!NAME.test(input.name)) problems.push('the name must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit');
    if (!/^(https?|file):\/\/\S+$/.test(input.url)) problems.push('the address must start with https://, http:// or file://');
    const root = Buffer.from(input.root, 'utf8');
    if (root.length > MAX_ROOT_BYTES) problems.push(`the root file is larger than ${MAX_ROOT_BYTES / 1024} KiB`);
    else if (!isRoot(root)) problems.push('the root is not a TUF root.json (use the 1.root.json the maker hands out)');
    if (problems.length > 0) throw new FirmwardError('invalid_input', `This repository cannot be added: ${problems.join('; ')}.`);
    await this.sync();
    if (this.#entries.get(input.name)?.origin === 'config') throw new FirmwardError('conflict', `A repository "${input.name}" is set in the config file already.`);
    const record: RepositoryRecord = { name: input.name, url: input.url, root: input.root, addedAt: this.#o.clock.now(), addedBy: actor };
    // Whatever an earlier repository of this name trusted is gone: trust starts from this root.
    await rm(this.#dirOf(input.name), { recursive: true, force: true });
    try {
      await this.#o.store.insertRepository(record);
    } catch (error) {
      if (isFirmwardError(error, 'conflict')) throw new FirmwardError('conflict', `A repository "${input.name}" exists already; remove it first to give it another root.`, { cause: error });
      throw error;
    }
    await this.#history(`${who(actor)} added the signed repository ${input.name} (${input.url}); its releases are trusted from the root given.`, 'repository_added', actor);
    await this.sync();
  }

  async remove(name: string, actor: string): Promise<void> {
    await this.sync();
    const entry = this.#entries.get(name);
    if (!entry) throw new FirmwardError('not_found', `There is no repository "${name}".`);
    if (entry.origin === 'config') throw new FirmwardError('conflict', `${name} is set in the hub's config file; remove it there and restart the hub.`);
    await this.#o.store.deleteRepository(name);
    await this.sync();
    await rm(this.#dirOf(name), { recursive: true, force: true });
    await this.#history(`${who(actor)} removed the signed repository ${name}; its releases are no longer offered.`, 'repository_removed', actor);
  }

  views(sources: Pick<ReleaseSources, 'refusals' | 'releaseCount' | 'refreshedAt' | 'refusedImagesOf'>): RepositoryView[] {
    return [...this.#entries.entries()].map(([name, e]) => {
      const refused = sources.refusals.get(name);
      return {
        name, url: e.record?.url ?? this.#o.config.find((r) => r.name === name)?.url ?? '', origin: e.origin,
        trusted: refused === undefined && sources.refreshedAt(name) !== null, code: refused?.code ?? null,
        message: refused?.message ?? (sources.refreshedAt(name) === null ? 'Not read yet.' : null),
        releases: sources.releaseCount(name), refusedImages: sources.refusedImagesOf(name), refreshedAt: sources.refreshedAt(name), addedAt: e.record?.addedAt ?? null, addedBy: e.record?.addedBy ?? null,
      };
    });
  }

  #dirOf(name: string): string {
    return path.join(this.#o.dataDir, 'repositories', name);
  }

  #sourceOf(name: string, url: string, root: string | Uint8Array): TufReleaseSource {
    return new TufReleaseSource({
      name, url, rootFile: root, dir: this.#dirOf(name),
      onTargetRefused: (refusal) => this.#o.onTargetRefused(name, refusal),
      onImageRefused: (release, refusal) => this.#o.onImageRefused?.(name, release, refusal),
      onImageVerified: (release) => this.#o.onImageVerified?.(name, release),
      now: () => this.#o.clock.now(),
    });
  }

  /** A repository concerns every home: each one's history says so. */
  async #history(message: string, code: string, actor: string): Promise<void> {
    const at = this.#o.clock.now();
    for (const home of await this.#o.store.listHomes()) {
      const event = personEvent({ at, homeId: home.id, code, message, actor });
      await this.#o.store.appendEvent(event);
      this.#o.publish(event);
    }
  }
}
