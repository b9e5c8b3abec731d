/**
 * The catalog folder as a ReleaseSource: what the production writer writes is read back; a release
 * file that does not parse is refused by name while the good ones load; an image is handed out
 * only while its length and SHA-256 match the release (invariant 4 on the hub), never from outside
 * the folder, and the verified-image cache forgets an image as soon as its file changes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { appendFile, readFile, readdir, rename, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import type { ErrorCode, Release } from '@firmward/core';
import { CatalogFolderSource, writeCatalogRelease } from '../src/index.ts';
import type { ReleaseFile } from '../src/index.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function catalogDir(): string {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'firmward-catalog-'));
  dirs.push(dir);
  return dir;
}

/** A catalog with a log that keeps its warnings. */
function open(dir: string) {
  const warnings: string[] = [];
  const source = new CatalogFolderSource(dir, { warn: (m) => warnings.push(m) });
  return { source, warnings };
}

function fields(model: string, version = '1.1.0', extra: Partial<Omit<ReleaseFile, 'image'>> = {}): Omit<ReleaseFile, 'image'> {
  return {
    vendor: 'Acme', model, hardwareRevisions: ['rev1', 'rev2'], version, applicableFrom: '1.0.0',
    severity: 'high', vulnerabilitiesFixed: [{ id: 'CVE-2026-0001', severity: 'high' }], expectedInstallSeconds: 180,
    preflightOverrides: { minBatteryPercent: 60 },
    recovery: { steps: ['Unplug it for ten seconds.', 'Hold the button while plugging it back in.'], supportUrl: 'https://acme.example/support' },
    ...extra,
  };
}

function imageBytes(seed: number, length = 8 * 1024): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function refusal(promise: Promise<unknown>, code: ErrorCode): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFirmwardError(error), `expected a FirmwardError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error.message;
  }
  assert.fail(`expected ${code}, but it was accepted`);
}

/** A release file written by hand, for what the production writer would never produce. */
async function writeRaw(dir: string, name: string, content: unknown): Promise<void> {
  await writeFile(path.join(dir, 'releases', name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
}

describe('reading what writeCatalogRelease wrote', () => {
  test('refresh returns exactly the release the writer returned, and the image verifies', async () => {
    const dir = catalogDir();
    const image = imageBytes(1);
    const written = await writeCatalogRelease(dir, fields('Plug'), image);
    assert.equal(written.id, 'Acme/Plug/1.1.0');
    assert.deepEqual(written.image, { path: path.join('images', 'Acme-Plug-1.1.0.img'), lengthBytes: image.byteLength, sha256: sha256(image) });
    const { source, warnings } = open(dir);
    const releases = await source.refresh();
    assert.deepEqual(releases, [written]);
    assert.deepEqual(written.preflightOverrides, { minBatteryPercent: 60 });
    assert.equal(written.applicableFrom, '1.0.0');
    assert.equal(written.applicableTo, undefined);
    const file = await source.imagePath(written);
    assert.deepEqual(new Uint8Array(await readFile(file)), image);
    assert.deepEqual(warnings, []);
  });

  test('defaults fill what a minimal file leaves out', async () => {
    const dir = catalogDir();
    const written = await writeCatalogRelease(dir, {
      vendor: 'Acme', model: 'Bulb', hardwareRevisions: ['r1'], version: '2.0.0', expectedInstallSeconds: 60, recovery: { steps: ['Switch it off and on.'] },
    }, imageBytes(2));
    const [read] = await open(dir).source.refresh();
    assert.deepEqual(read, written);
    assert.equal(read.severity, 'none');
    assert.deepEqual(read.vulnerabilitiesFixed, []);
    assert.deepEqual(read.preflightOverrides, {});
    assert.equal(read.retracted, false);
  });

  test('an empty or missing catalog has no releases and no warnings', async () => {
    const { source, warnings } = open(path.join(catalogDir(), 'never-created'));
    assert.deepEqual(await source.refresh(), []);
    assert.deepEqual(warnings, []);
  });

  test('the writer refuses what the reader would refuse, and then writes nothing', async () => {
    const dir = catalogDir();
    const message = await refusal(writeCatalogRelease(dir, fields('Plug', '1.1.0', { preflightOverrides: { maxTemperature: 40 } }), imageBytes(1)), 'invalid_input');
    assert.match(message, /maxTemperature/);
    await refusal(writeCatalogRelease(dir, fields('Plug', '1.1.0', { recovery: { steps: [] } }), imageBytes(1)), 'invalid_input');
    assert.deepEqual(await readdir(dir), [], 'no half-written release is left behind');
  });
});

describe('a release file that does not parse is refused by name; the good ones still load', () => {
  const good = { ...fields('Plug'), image: { path: 'images/x.img', lengthBytes: 10, sha256: 'a'.repeat(64) } };
  const cases: { name: string; content: unknown; problem: RegExp }[] = [
    { name: 'bad-json.json', content: '{"vendor": "Acme", ', problem: /JSON/ },
    { name: 'not-an-object.json', content: '[1, 2, 3]', problem: /the file: / },
    { name: 'unknown-field.json', content: { ...good, model: 'U', installAnyway: true }, problem: /"installAnyway" is not a field of a release/ },
    { name: 'missing-recovery.json', content: { ...good, model: 'M', recovery: undefined }, problem: /"recovery": / },
    { name: 'no-recovery-steps.json', content: { ...good, model: 'S', recovery: { steps: [] } }, problem: /"recovery.steps": / },
    { name: 'bad-sha256.json', content: { ...good, model: 'H', image: { ...good.image, sha256: 'A'.repeat(64) } }, problem: /"image.sha256": / },
    { name: 'short-sha256.json', content: { ...good, model: 'H2', image: { ...good.image, sha256: 'abc' } }, problem: /"image.sha256": / },
    { name: 'negative-length.json', content: { ...good, model: 'L', image: { ...good.image, lengthBytes: -1 } }, problem: /"image.lengthBytes": / },
    { name: 'no-hardware.json', content: { ...good, model: 'N', hardwareRevisions: [] }, problem: /"hardwareRevisions": / },
    { name: 'unknown-override.json', content: { ...good, model: 'O', preflightOverrides: { minBatteryPercent: 40, ignoreBusy: 1 } }, problem: /Unknown preflight override "ignoreBusy"/ },
  ];

  test('each bad file is named with what is wrong with it', async () => {
    const dir = catalogDir();
    const plug = await writeCatalogRelease(dir, fields('Plug'), imageBytes(1));
    const lamp = await writeCatalogRelease(dir, fields('Lamp'), imageBytes(2));
    for (const c of cases) await writeRaw(dir, c.name, c.content);
    const { source, warnings } = open(dir);
    assert.deepEqual(await source.refresh(), [lamp, plug]);
    assert.equal(warnings.length, cases.length, warnings.join('\n'));
    for (const c of cases) {
      const warning = warnings.find((w) => w.includes(`release file ${c.name} refused`));
      assert.ok(warning, `no warning names ${c.name}: ${warnings.join('\n')}`);
      assert.match(warning, c.problem);
      // A sentence a maker can act on, not a dump of the validator's internals.
      assert.doesNotMatch(warning, /refused: \[|\n/);
    }
  });

  test('only *.json files are releases (a temp file of the atomic writer is not)', async () => {
    const dir = catalogDir();
    const plug = await writeCatalogRelease(dir, fields('Plug'), imageBytes(1));
    await writeFile(path.join(dir, 'releases', 'Acme-Lamp-1.1.0.json.123.tmp'), '{"half": ');
    await writeFile(path.join(dir, 'releases', 'README'), 'not a release');
    const { source, warnings } = open(dir);
    assert.deepEqual(await source.refresh(), [plug]);
    assert.deepEqual(warnings, []);
  });

  test('two files describing the same release are both refused, by name (never guess which was meant)', async () => {
    const dir = catalogDir();
    const plug = await writeCatalogRelease(dir, fields('Plug'), imageBytes(1));
    const lamp = await writeCatalogRelease(dir, fields('Lamp'), imageBytes(2));
    const copy = JSON.parse(await readFile(path.join(dir, 'releases', 'Acme-Plug-1.1.0.json'), 'utf8')) as ReleaseFile;
    await writeRaw(dir, 'plug-copy.json', { ...copy, applicableFrom: '0.1.0' });
    const { source, warnings } = open(dir);
    const releases = await source.refresh();
    assert.deepEqual(releases, [lamp]);
    assert.ok(!releases.some((r) => r.id === plug.id));
    assert.equal(warnings.length, 2);
    for (const name of ['Acme-Plug-1.1.0.json', 'plug-copy.json']) {
      assert.ok(warnings.some((w) => w.startsWith(`release file ${name} refused`) && w.includes('Acme/Plug/1.1.0')), warnings.join('\n'));
    }
  });
});

describe('imagePath hands out only an image that verifies, from inside the catalog (invariant 4)', () => {
  async function setup() {
    const dir = catalogDir();
    const image = imageBytes(3, 16 * 1024);
    const release = await writeCatalogRelease(dir, fields('Plug'), image);
    const { source } = open(dir);
    const file = path.join(dir, release.image.path);
    return { dir, image, release, source, file };
  }

  test('one byte flipped: image_hash_mismatch', async () => {
    const { image, release, source, file } = await setup();
    const flipped = image.slice();
    flipped[9000] = flipped[9000]! ^ 0x01;
    await writeFile(file, flipped);
    assert.match(await refusal(source.imagePath(release), 'image_hash_mismatch'), /Acme\/Plug\/1\.1\.0/);
  });

  test('truncated: image_length_mismatch', async () => {
    const { release, source, file } = await setup();
    await truncate(file, release.image.lengthBytes - 1);
    assert.match(await refusal(source.imagePath(release), 'image_length_mismatch'), new RegExp(`${release.image.lengthBytes - 1} bytes`));
  });

  test('bytes appended: image_length_mismatch', async () => {
    const { release, source, file } = await setup();
    await appendFile(file, new Uint8Array([0]));
    assert.match(await refusal(source.imagePath(release), 'image_length_mismatch'), new RegExp(`${release.image.lengthBytes + 1} bytes`));
  });

  test('a release whose hash or length differs from the image: refused', async () => {
    const { release, source } = await setup();
    await refusal(source.imagePath({ ...release, image: { ...release.image, sha256: 'b'.repeat(64) } }), 'image_hash_mismatch');
    await refusal(source.imagePath({ ...release, image: { ...release.image, lengthBytes: release.image.lengthBytes * 2 } }), 'image_length_mismatch');
  });

  test('a path escaping the folder is refused, even when the file there would verify', async () => {
    const { dir, image, release, source } = await setup();
    // A verifying image just outside the catalog folder: only the folder's own files are served.
    const outside = path.join(path.dirname(dir), `${path.basename(dir)}-outside.img`);
    await writeFile(outside, image);
    try {
      for (const escape of ['../x', `../${path.basename(outside)}`, outside, 'images/../../x', '.', '']) {
        const message = await refusal(source.imagePath({ ...release, image: { ...release.image, path: escape } }), 'image_unavailable');
        assert.match(message, /outside the catalog/, escape);
      }
    } finally {
      rmSync(outside, { force: true });
    }
  });

  test('a missing image: image_unavailable', async () => {
    const { release, source, file } = await setup();
    rmSync(file);
    assert.match(await refusal(source.imagePath(release), 'image_unavailable'), /missing/);
    await refusal(source.imagePath({ ...release, image: { ...release.image, path: 'images/never-written.img' } }), 'image_unavailable');
  });
});

describe('the verified-image cache forgets an image as soon as its file changes', () => {
  async function verified() {
    const dir = catalogDir();
    const image = imageBytes(4, 16 * 1024);
    const release: Release = await writeCatalogRelease(dir, fields('Plug'), image);
    const { source } = open(dir);
    const file = path.join(dir, release.image.path);
    assert.equal(await source.imagePath(release), file);
    return { image, release, source, file };
  }

  const other = (image: Uint8Array) => {
    const changed = image.slice();
    changed[100] = changed[100]! ^ 0xff;
    return changed;
  };

  test('rewritten in place with different bytes of the same length: refused again', async () => {
    const { image, release, source, file } = await verified();
    await writeFile(file, other(image));
    await refusal(source.imagePath(release), 'image_hash_mismatch');
    // The right bytes back: served again.
    await writeFile(file, image);
    assert.equal(await source.imagePath(release), file);
  });

  test('replaced by rename (a new file) with different bytes: refused again', async () => {
    const { image, release, source, file } = await verified();
    await writeFile(`${file}.new`, other(image));
    await rename(`${file}.new`, file);
    await refusal(source.imagePath(release), 'image_hash_mismatch');
  });

  test('rewritten with its old modification time put back: still refused (ctime)', async () => {
    const { image, release, source, file } = await verified();
    // A whole-second mtime, so putting it back is exact; then verified once more under it.
    const ROUND = new Date(1_767_225_600_000);
    await utimes(file, ROUND, ROUND);
    assert.equal(await source.imagePath(release), file);
    const before = await stat(file);
    await writeFile(file, other(image));
    await utimes(file, ROUND, ROUND);
    const after = await stat(file);
    assert.equal(after.mtimeMs, before.mtimeMs, 'the test needs the old mtime back');
    assert.equal(after.size, before.size);
    await refusal(source.imagePath(release), 'image_hash_mismatch');
  });

  test('a verified release pointed at another file with the same bytes length: verified, not taken from the cache', async () => {
    const { image, release, source, file } = await verified();
    const second = path.join(path.dirname(file), 'second.img');
    const ROUND = new Date(1_767_225_600_000);
    await utimes(file, ROUND, ROUND);
    assert.equal(await source.imagePath(release), file);
    await writeFile(second, other(image));
    await utimes(second, ROUND, ROUND);
    await refusal(source.imagePath({ ...release, image: { ...release.image, path: path.join('images', 'second.img') } }), 'image_hash_mismatch');
  });

  test('unchanged: the same path every time', async () => {
    const { release, source, file } = await verified();
    for (let i = 0; i < 3; i++) assert.equal(await source.imagePath(release), file);
  });
});
