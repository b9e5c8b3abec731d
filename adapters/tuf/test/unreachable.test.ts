/**
 * A device checks an offer through the hub's mirror of the maker's repository; when the hub is
 * away or dies mid-answer, the check must say "out of reach" (temporary), never "invalid" (final):
 * issue 18, where a cut-off metadata fetch read as metadata_invalid failed an update and halted a
 * home. Real HTTP on loopback in front of a repository the release tool published.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deviceCodeKind } from '@firmward/protocol';
import { DeviceTrust, TufReleaseSource } from '../src/index.ts';
import { Maker, PLUG_DEVICE, REPO, offerOf, servePublished, tempDir } from './fixture.ts';

type Mode = 'whole' | 'cut-socket' | 'cut-framed' | 'status-503' | 'garbage';

let maker: Maker;
let server: { base: string; close(): Promise<void> };
let base: string;
let mode: Mode = 'whole';
before(async () => {
  maker = await Maker.create();
  server = await servePublished(maker, (file, body, res) => {
    if (!file.endsWith('timestamp.json') || mode === 'whole') return false;
    if (mode === 'status-503') {
      res.writeHead(503).end();
    } else if (mode === 'cut-socket') {
      // The hub dies mid-answer: the announced length never arrives.
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
    } else if (mode === 'cut-framed') {
      // A mirror that passed on a cut-off file as if whole.
      const half = body.subarray(0, body.length >> 1);
      res.writeHead(200, { 'content-length': half.length }).end(half);
    } else {
      const junk = Buffer.from('{"signed": {"_type": "timestamp"}, "signatures": []}');
      res.writeHead(200, { 'content-length': junk.length }).end(junk);
    }
    return true;
  });
  base = server.base;
});
after(async () => {
  await server.close();
  maker.cleanup();
});

async function plugRelease() {
  mode = 'whole';
  const hub = new TufReleaseSource({ name: REPO, url: base, rootFile: maker.rootFile(), dir: tempDir('hub-') });
  const releases = await hub.refresh();
  return releases.find((r) => r.model === 'SmartPlug')!;
}

for (const [cut, expected] of [
  ['cut-socket', 'repository_unreachable'], ['cut-framed', 'repository_unreachable'], ['status-503', 'repository_unreachable'], ['garbage', 'metadata_invalid'],
] as const) {
  test(`the device's check when the mirror answers ${cut}: ${expected} (${deviceCodeKind(expected)})`, async () => {
    const plug = await plugRelease();
    const device = new DeviceTrust({ dir: tempDir('device-'), roots: { [REPO]: await maker.root() } });
    mode = cut;
    const reason = await device.check(offerOf(plug, base), PLUG_DEVICE);
    assert.equal(reason?.code, expected, reason?.message);
    // Back in reach, the same check passes.
    mode = 'whole';
    assert.equal(await device.check(offerOf(plug, base), PLUG_DEVICE), null);
  });
}

test('a mirror nobody answers at (connection refused) is out of reach, not invalid', async () => {
  const plug = await plugRelease();
  const device = new DeviceTrust({ dir: tempDir('device-'), roots: { [REPO]: await maker.root() } });
  const reason = await device.check(offerOf(plug, 'http://127.0.0.1:1/'), PLUG_DEVICE);
  assert.equal(reason?.code, 'repository_unreachable', reason?.message);
  assert.equal(deviceCodeKind(reason?.code ?? null), 'unreachable');
});

test('tuf-js re-wraps a fetch failure or cut-off JSON in its own RuntimeError (the original only in the text): still out of reach', async () => {
  const { tufRefusal } = await import('../src/index.ts');
  class RuntimeError extends Error {}
  for (const text of ['Unable to load targets error TypeError: fetch failed', 'Unable to load snapshot error TypeError: terminated', 'Unable to load targets error SyntaxError: Unexpected end of JSON input']) {
    assert.equal(tufRefusal(REPO, new RuntimeError(text)).code, 'repository_unreachable', text);
  }
  assert.equal(tufRefusal(REPO, new RuntimeError('Unable to load targets error Error: no signatures')).code, 'signature_invalid');
  assert.equal(tufRefusal(REPO, new RuntimeError('something else entirely')).code, 'metadata_invalid');
});
