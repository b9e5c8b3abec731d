/**
 * `firmward release …` as a maker runs it: a child process of the real firmward CLI in a
 * temporary folder, so argument parsing, passphrase sources, output and exit codes are all real.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { PublishResult, RepositoryStatus, VerifyReport } from '../src/index.ts';
import { PASSPHRASE, customFor, makeImage, tempDir } from './helpers.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

async function firmward(cwd: string, args: string[], env: Record<string, string> = { FIRMWARD_RELEASE_PASSPHRASE: PASSPHRASE }): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, 'release', ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('firmward release (CLI)', () => {
  test('init, add, publish, verify, retract and status end to end in a temporary folder', async () => {
    const dir = await tempDir();
    const init = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'init', '--vendor', 'acme', '--root-keys', '3', '--root-threshold', '2']);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /Created the release repository .* with 1 vendor role\./);

    await makeImage(dir, 'fw.bin', 2048);
    await writeFile(join(dir, 'release.json'), JSON.stringify(customFor('acme', 'plug', '1.0.0')));
    const add = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'add', 'fw.bin', '--custom', 'release.json']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Added acme\/plug\/1\.0\.0\/fw\.bin \(2048 bytes/);
    const again = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'add', 'fw.bin', '--custom', 'release.json']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already released/);

    const publish = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'publish', 'public', '--json']);
    assert.equal(publish.code, 0, publish.stderr);
    const published = JSON.parse(publish.stdout) as PublishResult;
    assert.equal(published.shipRootFile, 'metadata/1.root.json');
    const human = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'publish', 'public']);
    assert.match(human.stdout, /Ship devices with .*public\/metadata\/1\.root\.json/);

    const verify = await firmward(dir, ['verify', 'public', '--root', 'public/metadata/1.root.json', '--json'], {});
    assert.equal(verify.code, 0, verify.stderr);
    const report = JSON.parse(verify.stdout) as VerifyReport;
    assert.equal(report.ok, true);
    assert.deepEqual(report.vendors.map((v) => v.targets.map((t) => t.path)), [['acme/plug/1.0.0/fw.bin']]);

    const retract = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'retract', 'acme/plug/1.0.0', '--reason', 'It drains the battery.']);
    assert.equal(retract.code, 0, retract.stderr);
    await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'publish', 'public']);
    const verified = await firmward(dir, ['verify', 'public', '--root', 'public/metadata/1.root.json'], {});
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /acme\/plug\/1\.0\.0\/fw\.bin verified \(retracted: It drains the battery\.\)/);

    const status = await firmward(dir, ['--repo', 'repo', '--keys', 'keys', 'status', '--json'], {});
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as RepositoryStatus;
    assert.deepEqual(parsed.problems, []);
    assert.equal(parsed.vendors[0]?.releases[0]?.retracted, true);
  });

  test('the passphrase comes from the environment or --passphrase-file; a wrong one is one clear sentence', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'pass'), `${PASSPHRASE}\n`);
    const init = await firmward(dir, ['--passphrase-file', 'pass', 'init', '--vendor', 'acme'], {});
    assert.equal(init.code, 0, init.stderr);
    const refresh = await firmward(dir, ['refresh'], { FIRMWARD_RELEASE_PASSPHRASE: 'wrong passphrase' });
    assert.equal(refresh.code, 1);
    assert.match(refresh.stderr, /^The passphrase does not open the key file .*\.key\.json\.\n$/);
    const none = await firmward(dir, ['refresh'], {});
    assert.equal(none.code, 1);
    assert.match(none.stderr, /set FIRMWARD_RELEASE_PASSPHRASE or pass --passphrase-file/);
    const ok = await firmward(dir, ['refresh', '--passphrase-file', 'pass'], {});
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Refreshed: timestamp version 2, snapshot version 2/);
  });

  test('verify exits 1 and names the problem when an image does not match', async () => {
    const dir = await tempDir();
    await firmward(dir, ['init', '--vendor', 'acme']);
    await makeImage(dir, 'fw.bin', 1000);
    await writeFile(join(dir, 'release.json'), JSON.stringify(customFor('acme', 'plug', '2.0.0')));
    await firmward(dir, ['add', 'fw.bin', '--custom', 'release.json']);
    const publish = await firmward(dir, ['publish', 'public', '--json']);
    assert.equal(publish.code, 0, publish.stderr);
    const status = JSON.parse((await firmward(dir, ['status', '--json'], {})).stdout) as RepositoryStatus;
    const release = status.vendors[0]?.releases[0];
    await writeFile(join(dir, 'public', 'targets', 'acme', 'plug', '2.0.0', `${release?.sha256 ?? ''}.fw.bin`), Buffer.alloc(1000));
    const verify = await firmward(dir, ['verify', 'public', '--root', 'public/metadata/1.root.json'], {});
    assert.equal(verify.code, 1);
    assert.match(verify.stdout, /REFUSED: The image acme\/plug\/2\.0\.0\/fw\.bin: The image does not match the hash/);
  });
});
