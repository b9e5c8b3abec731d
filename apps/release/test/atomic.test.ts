/**
 * Crash safety by fault injection: a failure thrown before the Nth file write, for every N an
 * operation reaches, must leave the working folder and the published folder loadable and verifying,
 * as before (or, once the operation completes, as after).
 */
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ReleaseRepository, verifyRepository } from '../src/index.ts';
import type { BeforeWrite } from '../src/index.ts';
import { PASSPHRASE, buildRepository, customFor, makeImage } from './helpers.ts';

class InjectedCrash extends Error {}

/** Throws before the write numbered `crashAt` (0-based); records the paths it let through. */
function crashAt(crashAt: number): { beforeWrite: BeforeWrite; writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    beforeWrite: (path) => {
      if (writes.length === crashAt) throw new InjectedCrash(`crash before writing ${path}`);
      writes.push(path);
    },
  };
}

describe('atomic writes', () => {
  test('a crash at any write of add leaves the working folder as before; it still publishes and verifies', async () => {
    const built = await buildRepository();
    const image = await makeImage(built.dir, 'fw.bin');
    const versionBefore = built.repository.status().vendors[0]?.version;
    let completedAt = -1;
    for (let n = 0; n < 50 && completedAt < 0; n++) {
      const faults = crashAt(n);
      const repository = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE, beforeWrite: faults.beforeWrite });
      try {
        await repository.add({ image, custom: customFor('acme', 'plug', '1.0.0') });
        completedAt = n;
        break;
      } catch (error) {
        assert.ok(error instanceof InjectedCrash, `crash ${n}: ${String(error)}`);
      }
      const reopened = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE });
      const acme = reopened.status().vendors[0];
      assert.equal(acme?.version, versionBefore, `crash ${n}: the vendor role is as before`);
      assert.deepEqual(acme?.releases, [], `crash ${n}`);
      assert.deepEqual(reopened.status().problems, [], `crash ${n}`);
      const out = join(built.dir, `public-${n}`);
      await reopened.publish(out);
      const report = await verifyRepository(out, { trustedRoot: join(out, 'metadata', '1.root.json') });
      assert.equal(report.ok, true, `crash ${n}`);
    }
    assert.ok(completedAt >= 5, `the fault points covered the image, the metadata set and the swap (${completedAt})`);
    const after = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE });
    assert.equal(after.status().vendors[0]?.releases.length, 1);
  });

  test('a crash at any write of publish leaves the published folder as before; the next publish completes it', async () => {
    const built = await buildRepository();
    await built.repository.add({ image: await makeImage(built.dir, 'one.bin', 3000, 1), custom: customFor('acme', 'plug', '1.0.0') });
    const first = await built.repository.publish(built.outDir);
    const trustedRoot = join(built.outDir, 'metadata', '1.root.json');
    await built.repository.add({ image: await makeImage(built.dir, 'two.bin', 3000, 2), custom: customFor('acme', 'plug', '1.1.0') });
    await built.repository.retract('acme/plug/1.0.0', 'Superseded by a fix for a boot loop.');

    let completedAt = -1;
    for (let n = 0; n < 50 && completedAt < 0; n++) {
      const faults = crashAt(n);
      const repository = await ReleaseRepository.open(built.repoDir, { keyDirs: [built.keysDir], passphrase: PASSPHRASE, beforeWrite: faults.beforeWrite });
      try {
        await repository.publish(built.outDir);
        completedAt = n;
        break;
      } catch (error) {
        assert.ok(error instanceof InjectedCrash, `crash ${n}: ${String(error)}`);
      }
      const report = await verifyRepository(built.outDir, { trustedRoot });
      assert.equal(report.ok, true, `crash ${n}: ${JSON.stringify(report.problems)}`);
      assert.equal(report.timestampVersion, first.timestampVersion, `crash ${n}: still the old repository`);
      assert.deepEqual(report.vendors[0]?.targets.map((t) => [t.path, t.retracted]), [['acme/plug/1.0.0/one.bin', false]], `crash ${n}`);
    }
    assert.ok(completedAt >= 4, `the fault points covered the image, the metadata set and the swap (${completedAt})`);
    const report = await verifyRepository(built.outDir, { trustedRoot });
    assert.equal(report.ok, true);
    assert.deepEqual(report.vendors[0]?.targets.map((t) => [t.path, t.retracted]), [['acme/plug/1.0.0/one.bin', true], ['acme/plug/1.1.0/two.bin', false]]);
  });
});
