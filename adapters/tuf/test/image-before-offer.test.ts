/**
 * The hub mirrors and verifies a release's image before it hands the release on to be planned
 * (issue 14, finding 1): an altered, longer, shorter or endless image at the maker's server is
 * withheld with its code — never planned, so never offered and no home halts — tried again with
 * backoff, and handed on once it verifies. Real HTTP on loopback in front of a repository the
 * release tool published; the image route is the one the test alters.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import type { Release } from '@firmward/core';
import type { ImageRefusal } from '@firmward/ports';
import { TufReleaseSource } from '../src/index.ts';
import { Maker, REPO, servePublished, tempDir } from './fixture.ts';

type ImageMode = 'whole' | 'flipped' | 'longer' | 'shorter' | 'endless' | 'slow' | 'missing';

let maker: Maker;
let server: { base: string; close(): Promise<void> };
let base: string;
let imageMode: ImageMode = 'whole';
let imageRequests = 0;
/** The slow image's answer, held until the test lets it go. */
let releaseSlow: (() => void) | null = null;

before(async () => {
  maker = await Maker.create();
  server = await servePublished(maker, (file, body, res) => {
    if (!file.startsWith('targets/acme/')) return false;
    imageRequests += 1;
    serveImage(res, body);
    return true;
  });
  base = server.base;
});
after(async () => {
  releaseSlow?.();
  await server.close();
  maker.cleanup();
});
beforeEach(() => {
  imageMode = 'whole';
  imageRequests = 0;
});

function serveImage(res: ServerResponse, body: Buffer): void {
  switch (imageMode) {
    case 'whole':
      res.writeHead(200, { 'content-length': body.length }).end(body);
      return;
    case 'flipped': {
      const altered = Buffer.from(body);
      altered[100] = altered[100]! ^ 0x01;
      res.writeHead(200, { 'content-length': altered.length }).end(altered);
      return;
    }
    case 'longer':
      res.writeHead(200).end(Buffer.concat([body, Buffer.alloc(7, 1)]));
      return;
    case 'shorter':
      res.writeHead(200).end(body.subarray(0, body.length - 7));
      return;
    case 'endless': {
      // Chunked, never ending: the hub must stop at the first byte past the signed length.
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
      return;
    }
    case 'slow':
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 10));
      releaseSlow = () => {
        releaseSlow = null;
        res.end(body.subarray(10));
      };
      return;
    case 'missing':
      res.writeHead(404).end();
  }
}

function source(o: { now?: () => number; mirrorWaitMs?: number } = {}) {
  const told = { refused: [] as { release: Release; refusal: ImageRefusal }[], verified: [] as Release[] };
  const s = new TufReleaseSource({
    name: REPO, url: base, rootFile: maker.rootFile(), dir: tempDir('hub-'),
    onImageRefused: (release, refusal) => told.refused.push({ release, refusal }),
    onImageVerified: (release) => told.verified.push(release),
    imageRetryMs: { first: 60_000, max: 3600_000 },
    ...o,
  });
  return { s, told };
}

const ids = (releases: Release[]) => releases.map((r) => r.id).sort();

for (const [mode, code] of [
  ['flipped', 'image_hash_mismatch'], ['longer', 'image_length_mismatch'], ['shorter', 'image_length_mismatch'],
  ['endless', 'image_length_mismatch'], ['missing', 'image_unavailable'],
] as const) {
  test(`an image ${mode} at the maker's server: the release is withheld with ${code}, told once, and the other vendor's release goes on`, async () => {
    imageMode = mode;
    const { s, told } = source();
    assert.deepEqual(ids(await s.refresh()), ['globex/Cam/2.0.0']);
    assert.deepEqual(s.refusedImages().map((r) => [r.releaseId, r.code, r.attempts]), [['acme/SmartPlug/1.1.0', code, 1]]);
    assert.match(s.refusedImages()[0]!.message, /Nothing is offered; the hub tries the maker's server again later\.$/);
    assert.deepEqual(told.refused.map((t) => [t.release.id, t.refusal.code]), [['acme/SmartPlug/1.1.0', code]]);
    // A second refresh within the backoff does not fetch the image again, and says nothing new.
    const requests = imageRequests;
    assert.deepEqual(ids(await s.refresh()), ['globex/Cam/2.0.0']);
    assert.equal(imageRequests, requests, 'no new try before the backoff has passed');
    assert.equal(told.refused.length, 1, 'told once, not at every refresh');
  });
}

test('a withheld image is tried again after its backoff (doubling), and the release is handed on once it verifies', async () => {
  let now = 1_000_000;
  imageMode = 'flipped';
  const { s, told } = source({ now: () => now });
  await s.refresh();
  const first = s.refusedImages()[0]!;
  assert.equal(first.retryAt, now + 60_000);
  now = first.retryAt;
  assert.deepEqual(ids(await s.refresh()), ['globex/Cam/2.0.0']);
  const second = s.refusedImages()[0]!;
  assert.deepEqual([second.attempts, second.retryAt], [2, now + 120_000], 'the wait doubles');
  assert.equal(told.refused.length, 1, 'the same refusal is not told again');
  // The maker fixes the file; the next try after the backoff verifies it.
  imageMode = 'whole';
  now = second.retryAt;
  assert.deepEqual(ids(await s.refresh()), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0']);
  assert.deepEqual(s.refusedImages(), []);
  assert.deepEqual(told.verified.map((r) => r.id), ['acme/SmartPlug/1.1.0'], 'whoever waits is told it verified');
});

test('retrying now (a person pressed "Refresh now") skips the backoff', async () => {
  imageMode = 'flipped';
  const { s } = source();
  await s.refresh();
  imageMode = 'whole';
  assert.deepEqual(ids(await s.refresh()), ['globex/Cam/2.0.0'], 'still within the backoff');
  s.retryRefusedImages();
  assert.deepEqual(ids(await s.refresh()), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0']);
});

test('an image still arriving when the refresh stops waiting is withheld for now; when it verifies, whoever waits is told', async () => {
  imageMode = 'slow';
  const { s, told } = source({ mirrorWaitMs: 200 });
  assert.deepEqual(ids(await s.refresh()), ['globex/Cam/2.0.0'], 'not handed on before it verifies');
  assert.deepEqual(s.refusedImages(), [], 'slow is not refused');
  assert.ok(releaseSlow, 'the image is being fetched');
  releaseSlow();
  for (let i = 0; i < 100 && told.verified.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(told.verified.map((r) => r.id), ['acme/SmartPlug/1.1.0']);
  const requests = imageRequests;
  assert.deepEqual(ids(await s.refresh()), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0']);
  assert.equal(imageRequests, requests, 'verified once, not fetched again');
});
