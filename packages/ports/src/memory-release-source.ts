/**
 * The fake beside the ReleaseSource port: releases and their images held in memory, published
 * and retracted by a test as time goes by. Images are served by `fetch`, with Range, the way the
 * hub's /firmware route serves them, so the real agent downloads from it.
 */
import { FirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { ReleaseSource } from './release-source.ts';

export class MemoryReleaseSource implements ReleaseSource {
  readonly name = 'memory';
  readonly #releases = new Map<string, Release>();
  readonly #images = new Map<string, Uint8Array>();

  publish(release: Release, image: Uint8Array): void {
    this.#releases.set(release.id, release);
    this.#images.set(release.id, image);
  }

  retract(releaseId: string): void {
    const r = this.#releases.get(releaseId);
    if (r) this.#releases.set(releaseId, { ...r, retracted: true });
  }

  refresh(): Promise<Release[]> {
    return Promise.resolve([...this.#releases.values()]);
  }

  imagePath(release: Release): Promise<string> {
    return Promise.reject(new FirmwardError('image_unavailable', `${release.id} is held in memory; use fetch.`));
  }

  /** A fetch for devices: `<anything>/firmware/<encoded release id>`, with Range. */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const id = decodeURIComponent(url.pathname.replace(/^.*\/firmware\//, ''));
    const image = this.#images.get(id);
    if (!image) return Promise.resolve(new Response('not found', { status: 404 }));
    const range = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined)).get('range');
    const m = range ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
    if (!m) return Promise.resolve(new Response(image.slice(), { status: 200, headers: { 'content-length': String(image.byteLength) } }));
    const start = Number(m[1]);
    const end = m[2] ? Math.min(Number(m[2]), image.byteLength - 1) : image.byteLength - 1;
    if (start >= image.byteLength) return Promise.resolve(new Response(null, { status: 416, headers: { 'content-range': `bytes */${image.byteLength}` } }));
    const part = image.slice(start, end + 1);
    return Promise.resolve(new Response(part, {
      status: 206,
      headers: { 'content-length': String(part.byteLength), 'content-range': `bytes ${start}-${end}/${image.byteLength}` },
    }));
  };
}
