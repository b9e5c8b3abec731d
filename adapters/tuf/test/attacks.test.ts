/**
 * Every attack on the maker's signed repository, refused on the hub (TufReleaseSource: nothing
 * recorded as available, no image mirrored) and on the device (DeviceTrust: the offer refused), each
 * with its code. Each repository is real, built and signed by our own release tool; the attacks are
 * crafted on its published copy. And the good paths: rotations and refreshed expiry are accepted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import type { Release } from '@firmward/core';
import { bumpVersion, generateSigningKey, readMetadata, setExpires, setMetaVersion, setTarget, signMetadata, targetEntry, writeMetadata } from '@firmward/release-tool';
import type { Envelope, TimestampSigned } from '@firmward/release-tool';
import { TufReleaseSource } from '../src/index.ts';
import { CAMERA, Maker, PLUG, PLUG_DEVICE, REPO, deviceTrust, hubSource, imageOf, offerOf, tempDir } from './fixture.ts';

const DAY = 24 * 3600 * 1000;

async function refused(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isFirmwardError(error), `expected a FirmwardError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** The hub's view after a good first refresh: the plug release, as the hub would offer it. */
async function trustedPlug(source: TufReleaseSource): Promise<Release> {
  const releases = await source.refresh();
  const plug = releases.find((r) => r.model === 'SmartPlug');
  assert.ok(plug, 'the signed plug release is listed');
  return plug;
}

describe('attacks on the signed repository', () => {
  const dirs: string[] = [];
  const makers: Maker[] = [];
  const fresh = async (o: { now?: () => number } = {}) => {
    const m = await Maker.create(o);
    makers.push(m);
    return m;
  };
  const dir = (prefix: string) => {
    const d = tempDir(prefix);
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const m of makers) m.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('the good path: the hub lists what vendors signed and mirrors verified images; the device accepts the matching offer', async () => {
    const maker = await fresh();
    const source = hubSource(maker, dir('hub-'));
    const releases = await source.refresh();
    assert.deepEqual(releases.map((r) => r.id).sort(), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0']);
    const plug = releases.find((r) => r.model === 'SmartPlug')!;
    assert.equal(plug.repository, REPO);
    assert.deepEqual(plug.hardwareRevisions, ['rev2']);
    const file = await source.imagePath(plug);
    assert.deepEqual(new Uint8Array(await readFile(file)), imageOf(PLUG));
    const device = await deviceTrust(maker, dir('device-'));
    assert.equal(await device.check(offerOf(plug, maker.url), PLUG_DEVICE), null);
  });

  test('an image not signed by its vendor (signed by a key the repository does not know) is refused', async () => {
    const maker = await fresh();
    const stranger = generateSigningKey();
    await maker.republishRole('acme', (t) => setTarget(t, 'acme/SmartPlug/1.2.0/fw.img', targetEntry(imageOf({ ...PLUG, version: '1.2.0' }), { ...PLUG, version: '1.2.0' })), [stranger]);
    // The hub refuses the whole acme role (its releases vanish, with why); the other vendor goes on.
    const refusedTargets: { path: string; code: string }[] = [];
    const releases = await hubSourceWith(maker, dir('hub-'), refusedTargets).refresh();
    assert.deepEqual(releases.map((r) => r.id), ['globex/Cam/2.0.0']);
    assert.deepEqual(refusedTargets.map((r) => r.code), ['signature_invalid']);
    const device = await deviceTrust(maker, dir('device-'));
    const plug = { ...(await trustedPlugFrom(maker)), version: '1.2.0', id: 'acme/SmartPlug/1.2.0' };
    const reason = await device.check(offerOf(plug, maker.url, { target: { repository: REPO, path: 'acme/SmartPlug/1.2.0/fw.img', url: maker.url } }), PLUG_DEVICE);
    assert.equal(reason?.code, 'signature_invalid');
  });

  test('one byte flipped in the published image: the hub does not mirror it and withholds the release; an offer of the flipped image is refused by the device', async () => {
    const maker = await fresh();
    const hubDir = dir('hub-');
    const plug = await trustedPlugFrom(maker);
    const published = publishedImage(maker, plug);
    const bytes = await readFile(published);
    bytes[100] = bytes[100]! ^ 0x01;
    await writeFile(published, bytes);
    const source = hubSource(maker, hubDir);
    assert.deepEqual((await source.refresh()).map((r) => r.id), ['globex/Cam/2.0.0'], 'the release is withheld before anything is planned');
    assert.deepEqual(source.refusedImages().map((r) => [r.releaseId, r.code]), [[plug.id, 'image_hash_mismatch']]);
    await refused(source.imagePath(plug), 'image_hash_mismatch');
    assert.equal(existsSync(path.join(hubDir, 'images', plug.image.sha256)), false, 'nothing mirrored');
    const device = await deviceTrust(maker, dir('device-'));
    const reason = await device.check(offerOf(plug, maker.url, { image: { url: 'x', lengthBytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') } }), PLUG_DEVICE);
    assert.equal(reason?.code, 'not_signed');
  });

  for (const [what, delta] of [['longer', 7], ['shorter', -7]] as const) {
    test(`an image ${what} than declared: the hub stops reading, refuses it and withholds the release; the device refuses an offer of that length`, async () => {
      const maker = await fresh();
      const plug = await trustedPlugFrom(maker);
      const published = publishedImage(maker, plug);
      const bytes = await readFile(published);
      await writeFile(published, delta > 0 ? Buffer.concat([bytes, Buffer.alloc(delta, 1)]) : bytes.subarray(0, bytes.length + delta));
      const source = hubSource(maker, dir('hub-'));
      assert.deepEqual((await source.refresh()).map((r) => r.id), ['globex/Cam/2.0.0'], 'the release is withheld before anything is planned');
      assert.deepEqual(source.refusedImages().map((r) => [r.releaseId, r.code]), [[plug.id, 'image_length_mismatch']]);
      await refused(source.imagePath(plug), 'image_length_mismatch');
      const device = await deviceTrust(maker, dir('device-'));
      const reason = await device.check(offerOf(plug, maker.url, { image: { url: 'x', lengthBytes: plug.image.lengthBytes + delta, sha256: plug.image.sha256 } }), PLUG_DEVICE);
      assert.equal(reason?.code, 'not_signed');
    });
  }

  test('endless metadata (a 10 MB timestamp) is refused before it is read to the end', async () => {
    const maker = await fresh();
    writeFileSync(maker.metadata('timestamp.json'), Buffer.alloc(10 * 1024 * 1024, 0x20));
    await refused(hubSource(maker, dir('hub-')).refresh(), 'metadata_too_large');
    const plug = await trustedPlugFrom(maker, false);
    const reason = await (await deviceTrust(maker, dir('device-'))).check(offerOf(plug, maker.url), PLUG_DEVICE);
    assert.equal(reason?.code, 'metadata_too_large');
  });

  for (const role of ['timestamp', 'snapshot', 'targets'] as const) {
    test(`a replayed older ${role} after a newer one was trusted is refused (rollback)`, async () => {
      const maker = await fresh();
      const old = dir('old-');
      cpSync(maker.published, old, { recursive: true });
      const oldSnapshot = (await maker.newest('snapshot')).version;
      const oldAcme = (await maker.newest('acme')).version;
      // The maker publishes newer metadata; hub and device trust it.
      await maker.add({ ...PLUG, version: '1.2.0' });
      await maker.publish();
      const source = hubSource(maker, dir('hub-'));
      const plug = await trustedPlug(source);
      const device = await deviceTrust(maker, dir('device-'));
      assert.equal(await device.check(offerOf(plug, maker.url), PLUG_DEVICE), null);
      if (role === 'timestamp') {
        // The mirror serves yesterday's timestamp again.
        cpSync(path.join(old, 'metadata', 'timestamp.json'), maker.metadata('timestamp.json'));
      } else if (role === 'snapshot') {
        // A new timestamp pointing at the older snapshot.
        const timestamp = await readMetadata(maker.metadata('timestamp.json')) as Envelope<TimestampSigned>;
        const back = setMetaVersion(bumpVersion(timestamp), 'snapshot.json', oldSnapshot);
        await writeMetadata(maker.metadata('timestamp.json'), signMetadata(back, await maker.keys('timestamp'), { append: false }));
      } else {
        // A new snapshot listing the older targets of the acme role.
        await maker.resnapshot({ 'acme.json': oldAcme });
      }
      await refused(source.refresh(), 'metadata_rollback');
      assert.equal((await device.check(offerOf(plug, maker.url), PLUG_DEVICE))?.code, 'metadata_rollback');
    });
  }

  test('expired timestamp and expired snapshot (a freeze) are refused', async () => {
    // A repository signed ten days ago: its snapshot (7 d) and timestamp (1 d) have expired.
    const tenDaysAgo = Date.now() - 10 * DAY;
    const maker = await fresh({ now: () => tenDaysAgo });
    await refused(hubSource(maker, dir('hub-')).refresh(), 'metadata_expired');
    const plug = await trustedPlugFrom(maker, false);
    assert.equal((await (await deviceTrust(maker, dir('device-'))).check(offerOf(plug, maker.url), PLUG_DEVICE))?.code, 'metadata_expired');
    // Only the snapshot expired: a fresh timestamp does not save it.
    const timestamp = await readMetadata(maker.metadata('timestamp.json')) as Envelope<TimestampSigned>;
    await writeMetadata(maker.metadata('timestamp.json'), signMetadata(setExpires(timestamp, Date.now() + DAY), await maker.keys('timestamp'), { append: false }));
    await assert.rejects(hubSource(maker, dir('hub-')).refresh(), (e: unknown) => isFirmwardError(e, 'metadata_expired') && /expired/.test(e.message));
  });

  test('mix and match: a new timestamp over an old snapshot it does not name is refused', async () => {
    const maker = await fresh();
    const old = dir('old-');
    cpSync(maker.published, old, { recursive: true });
    await maker.add({ ...PLUG, version: '1.2.0' });
    await maker.publish();
    // The newest timestamp, but every snapshot file replaced by the old one (same names, old content).
    const { version } = await maker.newest('snapshot');
    cpSync(path.join(old, 'metadata', `${version - 1}.snapshot.json`), maker.metadata(`${version}.snapshot.json`));
    await refused(hubSource(maker, dir('hub-')).refresh(), 'metadata_rollback');
  });

  test('a new root signed below its threshold, or by a rotated-out key, is refused; a proper rotation is accepted', async () => {
    const maker = await fresh();
    const source = hubSource(maker, dir('hub-'));
    const device = await deviceTrust(maker, dir('device-'));
    const plug = await trustedPlug(source);
    // 1. Below threshold: version 2 of root signed by one of the 2-of-3 keys only.
    const root1 = await readMetadata(maker.metadata('1.root.json'));
    const [oneKey] = await maker.keys('root');
    const root2 = signMetadata({ ...structuredClone(root1), signed: { ...structuredClone(root1.signed), version: 2 } }, [oneKey!], { append: false });
    await writeMetadata(maker.metadata('2.root.json'), root2);
    await refused(source.refresh(), 'signature_invalid');
    assert.equal((await device.check(offerOf(plug, maker.url), PLUG_DEVICE))?.code, 'signature_invalid');
    rmSync(maker.metadata('2.root.json'));
    // 2. A proper rotation of the timestamp key (a new root signed by the old and new root keys): accepted, no downtime.
    const [retired] = await maker.keys('timestamp');
    await maker.repo.rotate('timestamp');
    await maker.publish();
    await source.refresh();
    assert.equal(await device.check(offerOf(plug, maker.url), PLUG_DEVICE), null);
    // 3. The rotated-out timestamp key signs a newer timestamp: refused by both.
    const timestamp = await readMetadata(maker.metadata('timestamp.json')) as Envelope<TimestampSigned>;
    await writeMetadata(maker.metadata('timestamp.json'), signMetadata(bumpVersion(timestamp), [retired!], { append: false }));
    await refused(source.refresh(), 'signature_invalid');
    assert.equal((await device.check(offerOf(plug, maker.url), PLUG_DEVICE))?.code, 'signature_invalid');
  });

  test('a vendor signing a path of another vendor: the hub ignores the target, the device refuses the offer', async () => {
    const maker = await fresh();
    const forged = { ...CAMERA, version: '9.9.9' };
    // acme's own key signs a globex path in acme's role.
    await maker.republishRole('acme', (t) => setTarget(t, 'globex/Cam/9.9.9/fw.img', targetEntry(imageOf(forged), forged)));
    const refusedTargets: { path: string; code: string }[] = [];
    const source = hubSourceWith(maker, dir('hub-'), refusedTargets);
    const releases = await source.refresh();
    assert.deepEqual(releases.map((r) => r.id).sort(), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0'], 'the forged release is not listed');
    assert.deepEqual(refusedTargets, [{ path: 'globex/Cam/9.9.9/fw.img', code: 'outside_delegation' }]);
    const camera = releases.find((r) => r.model === 'Cam')!;
    const forgedOffer = offerOf({ ...camera, id: 'globex/Cam/9.9.9', version: '9.9.9', image: { path: 'globex/Cam/9.9.9/fw.img', lengthBytes: imageOf(forged).length, sha256: targetEntry(imageOf(forged)).hashes.sha256! } }, maker.url);
    const reason = await (await deviceTrust(maker, dir('device-'))).check(forgedOffer, { vendor: 'globex', model: 'Cam', hardwareRevision: 'A', firmwareVersion: '2.0.0' });
    assert.equal(reason?.code, 'not_signed');
  });

  test('the device refuses an image for another model, another hardware revision, a downgrade, and a retracted version — by the signed fields', async () => {
    const maker = await fresh();
    const source = hubSource(maker, dir('hub-'));
    const plug = await trustedPlug(source);
    const device = await deviceTrust(maker, dir('device-'));
    const offer = offerOf(plug, maker.url);
    assert.equal((await device.check(offer, { ...PLUG_DEVICE, model: 'SmartBulb' }))?.code, 'model_mismatch');
    assert.equal((await device.check(offer, { ...PLUG_DEVICE, hardwareRevision: 'rev1' }))?.code, 'hardware_mismatch');
    assert.equal((await device.check(offer, { ...PLUG_DEVICE, firmwareVersion: '1.3.0' }))?.code, 'downgrade');
    // A hub that rewrites the offer's copy of the fields gains nothing: the signed ones decide.
    assert.equal((await device.check({ ...offer, hardwareRevisions: ['rev1'] }, { ...PLUG_DEVICE, hardwareRevision: 'rev1' }))?.code, 'hardware_mismatch');
    await maker.repo.retract('acme/SmartPlug/1.1.0', 'Bricks plugs made before 2025.');
    await maker.publish();
    const after = (await source.refresh()).find((r) => r.id === plug.id);
    assert.equal(after?.retracted, true, 'the hub sees the retraction');
    assert.equal((await device.check(offer, PLUG_DEVICE))?.code, 'retracted');
  });

  test('a hub offering an image the device\'s own root does not vouch for is refused', async () => {
    const maker = await fresh();
    const other = await fresh();
    const plug = await trustedPlug(hubSource(maker, dir('hub-')));
    const device = await deviceTrust(maker, dir('device-'));
    // Another repository, properly signed by other keys, named like the trusted one.
    assert.equal((await device.check(offerOf(plug, other.url), PLUG_DEVICE))?.code, 'signature_invalid');
    // A repository the device has no root for.
    assert.equal((await device.check(offerOf(plug, maker.url, { target: { repository: 'evil', path: plug.image.path, url: maker.url } }), PLUG_DEVICE))?.code, 'not_signed');
    // No signature at all.
    const { target: _target, ...unsigned } = offerOf(plug, maker.url);
    assert.equal((await device.check(unsigned, PLUG_DEVICE))?.code, 'not_signed');
    // A path the repository does not list.
    assert.equal((await device.check(offerOf(plug, maker.url, { target: { repository: REPO, path: 'acme/SmartPlug/1.1.0/other.img', url: maker.url } }), PLUG_DEVICE))?.code, 'not_signed');
  });

  test('expiry refreshed: a timestamp past its expiry is refused, and accepted again after the maker refreshes', async () => {
    let now = Date.now() - 2 * DAY;
    const maker = await fresh({ now: () => now });
    const source = hubSource(maker, dir('hub-'));
    await refused(source.refresh(), 'metadata_expired');
    now = Date.now();
    await maker.repo.refresh();
    await maker.publish();
    assert.equal((await source.refresh()).length, 2);
  });

  test('a torn trust anchor (power cut while saving) falls back to the previous root', async () => {
    const maker = await fresh();
    const hubDir = dir('hub-');
    await hubSource(maker, hubDir).refresh();
    await maker.repo.rotate('root');
    await maker.publish();
    await hubSource(maker, hubDir).refresh();
    const anchor = path.join(hubDir, 'trust', 'anchor');
    assert.deepEqual(readdirSync(anchor).sort(), ['root.json', 'root.previous.json']);
    writeFileSync(path.join(anchor, 'root.json'), '{"signed": {"_type": "ro');
    writeFileSync(path.join(hubDir, 'trust', 'metadata', 'root.json'), '');
    assert.equal((await hubSource(maker, hubDir).refresh()).length, 2, 'the previous root still leads to the current one');
  });
});

/** The plug release as the hub lists it, read with a throwaway hub (or built from the signed fields when the repository is unreadable). */
async function trustedPlugFrom(maker: Maker, readable = true): Promise<Release> {
  if (readable) {
    const releases = await hubSource(maker, tempDir('hub-probe-')).refresh().catch(() => null);
    const plug = releases?.find((r) => r.model === 'SmartPlug');
    if (plug) return plug;
  }
  const image = imageOf(PLUG);
  return {
    id: 'acme/SmartPlug/1.1.0', repository: REPO, vendor: 'acme', model: 'SmartPlug', hardwareRevisions: ['rev2'], version: '1.1.0', applicableFrom: '1.0.0',
    severity: 'none', vulnerabilitiesFixed: [], expectedInstallSeconds: 120, preflightOverrides: {}, recovery: { steps: ['x'] }, retracted: false,
    image: { path: 'acme/SmartPlug/1.1.0/fw.img', lengthBytes: image.length, sha256: targetEntry(image).hashes.sha256! },
  };
}

function hubSourceWith(maker: Maker, dir: string, refusedTargets: { path: string; code: string }[]): TufReleaseSource {
  return new TufReleaseSource({
    name: REPO, url: maker.url, rootFile: maker.rootFile(), dir,
    onTargetRefused: ({ path: p, error }) => refusedTargets.push({ path: p, code: error.code }),
  });
}

function publishedImage(maker: Maker, release: Release): string {
  const [vendor, model, version, file] = release.image.path.split('/');
  return path.join(maker.published, 'targets', vendor!, model!, version!, `${release.image.sha256}.${file!}`);
}


describe('the maker\'s server out of reach', () => {
  test('after a restart the hub still vouches for what it verified before (read again offline, signatures and expiry checked) and serves its mirrored image; nothing new is taken', async () => {
    const maker = await Maker.create();
    const hubDir = tempDir('hub-offline-');
    try {
      // The root the hub was given (its config file, or the store for one added at run time) stays on the hub.
      const root = await readFile(maker.rootFile());
      const source = (dir: string) => new TufReleaseSource({ name: REPO, url: maker.url, rootFile: root, dir });
      const before = source(hubDir);
      const plug = await trustedPlug(before);
      await before.imagePath(plug);
      // The hub restarts while the maker's server is down.
      const away = `${maker.published}.away`;
      cpSync(maker.published, away, { recursive: true });
      rmSync(maker.published, { recursive: true, force: true });
      const after = source(hubDir);
      await refused(after.refresh(), 'repository_unreachable');
      assert.deepEqual(after.lastVerified()?.map((r) => r.id).sort(), ['acme/SmartPlug/1.1.0', 'globex/Cam/2.0.0']);
      assert.deepEqual(new Uint8Array(await readFile(await after.imagePath(plug))), imageOf(PLUG), 'the verified image is served again');
      // A hub that never verified this repository has nothing to fall back on.
      const newcomer = source(tempDir('hub-never-'));
      await refused(newcomer.refresh(), 'repository_unreachable');
      assert.equal(newcomer.lastVerified(), null);
      // Back online: the live metadata is used again.
      cpSync(away, maker.published, { recursive: true });
      assert.equal((await after.refresh()).length, 2);
      assert.equal(after.lastVerified(), null);
    } finally {
      maker.cleanup();
      rmSync(hubDir, { recursive: true, force: true });
    }
  });
});
