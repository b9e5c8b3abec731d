/**
 * Freshness: expired metadata is refused by the client and by publish, and `refresh` (the cron
 * job) brings it back. Expired metadata is made with the injected clock, never by waiting.
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isFirmwardError } from '@firmward/core';
import { ReleaseRepository, verifyRepository } from '../src/index.ts';
import { DAY_MS, PASSPHRASE, buildRepository, customFor, makeImage } from './helpers.ts';

describe('refresh', () => {
  test('refresh makes an expired timestamp valid again', async () => {
    const twoDaysAgo = Date.now() - 2 * DAY_MS;
    const built = await buildRepository({}, { now: () => twoDaysAgo });
    await built.repository.add({ image: await makeImage(built.dir, 'fw.bin'), custom: customFor('acme', 'plug', '1.0.0') });
    const first = await built.repository.publish(built.outDir);
    const trustedRoot = join(built.outDir, 'metadata', '1.root.json');
    await assert.rejects(verifyRepository(built.outDir, { trustedRoot }), (e: unknown) => isFirmwardError(e, 'metadata_expired'));

    const today = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE });
    assert.ok(today.status().problems.some((p) => p.code === 'metadata_expired' && p.message.includes('timestamp')));
    await assert.rejects(today.publish(built.outDir), (e: unknown) => isFirmwardError(e, 'metadata_expired'));

    const refreshed = await today.refresh();
    assert.ok(refreshed.timestampVersion > first.timestampVersion);
    assert.ok(refreshed.snapshotVersion > first.snapshotVersion);
    assert.deepEqual(refreshed.renewed, [], 'targets and vendor roles were far from expiry');
    await today.publish(built.outDir);
    const report = await verifyRepository(built.outDir, { trustedRoot });
    assert.equal(report.ok, true);
    assert.equal(report.timestampVersion, refreshed.timestampVersion);
    assert.equal(report.vendors[0]?.targets[0]?.ok, true);
  });

  test('refresh re-signs targets and vendor roles close to expiry, and warns about an old root', async () => {
    const longAgo = Date.now() - 340 * DAY_MS;
    const built = await buildRepository({ expiryDays: { targets: 345, vendor: 400 } }, { now: () => longAgo });
    const today = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE });
    const result = await today.refresh();
    assert.deepEqual(result.renewed, ['targets']);
    assert.equal(result.warnings.length, 1);
    assert.match(result.warnings[0] ?? '', /Root version 1 expires/);
    const targets = today.status().roles.find((r) => r.role === 'targets');
    assert.ok(Date.parse(targets?.expires ?? '') > Date.now() + 300 * DAY_MS);
  });
});
