/**
 * The device's own check of an offer against the maker's signed repository (defense in depth;
 * Uptane's "director agrees with the image repository"). The device keeps its own trusted root per
 * maker and never takes the hub's word: the offered image must be a target the maker signed, with
 * the same path, length and hash, and the signed model, hardware revisions and version range —
 * not the offer's copy of them — must fit this device and what it runs. A compromised or buggy hub
 * cannot install anything the maker did not sign for this model.
 */
import path from 'node:path';
import { checkCompatibility, isFirmwardError } from '@firmward/core';
import type { Reason } from '@firmward/core';
import type { OfferCommand } from '@firmward/protocol';
import { releaseFromTarget } from './custom.ts';
import { TrustedRepository } from './trusted-repository.ts';
import type { SignedTarget } from './trusted-repository.ts';

export interface DeviceTrustOptions {
  /** The device's own folder for trusted metadata (one subfolder per repository). */
  dir: string;
  /** The roots this device trusts, by repository name (shipped with the device). */
  roots: Readonly<Record<string, Uint8Array>>;
  timeoutMs?: number;
}

export interface DeviceFacts {
  vendor: string;
  model: string;
  hardwareRevision: string;
  firmwareVersion: string;
}

export class DeviceTrust {
  readonly #o: DeviceTrustOptions;
  readonly #repos = new Map<string, TrustedRepository>();

  constructor(o: DeviceTrustOptions) {
    this.#o = o;
  }

  /** null when the maker vouches for exactly this offer for this device; else why not, with a stable code. */
  async check(offer: OfferCommand, device: DeviceFacts): Promise<Reason | null> {
    const target = offer.target;
    if (!target) return { code: 'not_signed', message: 'The hub offered an image without the maker\'s signature; the device installs only signed firmware.' };
    const found = await this.signedTarget(target);
    if (!found.ok) return found.reason;
    const signed = found.target;
    if (signed.length !== offer.image.lengthBytes || signed.sha256 !== offer.image.sha256) {
      return { code: 'not_signed', message: `The offered image of ${offer.releaseId} differs from the one its maker signed; the device refuses it.` };
    }
    let release;
    try {
      release = releaseFromTarget(target.repository, signed.path, signed.length, signed.sha256, signed.custom);
    } catch (error) {
      if (isFirmwardError(error)) return { code: error.code, message: error.message };
      throw error;
    }
    if (release.id !== offer.releaseId || release.version !== offer.version) {
      return { code: 'not_signed', message: `The hub called this image ${offer.releaseId}, but its maker signed it as ${release.id}; the device refuses it.` };
    }
    const fits = checkCompatibility(release, device);
    return fits.ok ? null : { code: fits.code, message: fits.message };
  }

  /**
   * The TUF half of `check`: the device's own refresh of the repository (from its own root), then
   * the signed target at `target.path` found through the delegations — before any firmware-specific
   * check. Also what the conformance entry point drives (apps/agent/src/tuf-conformance-cli.ts).
   *
   * @example
   * const found = await trust.signedTarget({ repository: 'acme', url: 'http://hub.local:8080/tuf/acme/', path: 'acme/plug/1.2.0/fw.bin' });
   * if (!found.ok) console.log(found.reason.code); // e.g. 'metadata_expired'
   */
  async signedTarget(target: { repository: string; url: string; path: string }): Promise<{ ok: true; target: SignedTarget } | { ok: false; reason: Reason }> {
    const refused = await this.refresh(target.repository, target.url);
    if (refused) return { ok: false, reason: refused };
    let signed;
    try {
      signed = await this.#repository(target.repository, target.url)!.target(target.path);
    } catch (error) {
      if (isFirmwardError(error)) return { ok: false, reason: { code: error.code, message: error.message } };
      throw error;
    }
    if (!signed) return { ok: false, reason: { code: 'not_signed', message: `The maker's signed release list does not contain ${target.path}; the device refuses it.` } };
    return { ok: true, target: signed };
  }

  /** Runs the TUF client workflow for one repository from this device's own root: null when it is trusted now, else why not. */
  async refresh(repository: string, url: string): Promise<Reason | null> {
    const repo = this.#repository(repository, url);
    if (!repo) return { code: 'not_signed', message: `The device does not trust the release repository "${repository}"; it installs only firmware its maker signed.` };
    try {
      await repo.refresh();
    } catch (error) {
      if (isFirmwardError(error)) return { code: error.code, message: error.message };
      throw error;
    }
    return null;
  }

  #repository(name: string, url: string): TrustedRepository | null {
    const root = this.#o.roots[name];
    if (root === undefined) return null;
    // One client per repository; the URL may change (another hub) without changing whom we trust.
    const key = `${name}\n${url}`;
    let repo = this.#repos.get(key);
    if (!repo) {
      repo = new TrustedRepository({ name, url, dir: path.join(this.#o.dir, encodeURIComponent(name)), initialRoot: root, ...(this.#o.timeoutMs !== undefined && { timeoutMs: this.#o.timeoutMs }) });
      this.#repos.set(key, repo);
    }
    return repo;
  }
}
