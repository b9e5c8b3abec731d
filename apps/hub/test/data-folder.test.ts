/**
 * Nobody but the hub's user reads what the hub keeps (audit, issue 14 item 6): a hub started on a
 * fresh data folder makes it 0700 and its database, -wal and -shm 0600; a folder an older hub made
 * 0755 is tightened, and the log says so.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { SystemClock, consoleLogger } from '@firmward/ports';
import { loadConfig } from '../src/config.ts';
import { startHub } from '../src/hub.ts';
import { ensureOwnerToken } from '../src/owner-token.ts';

const TOKEN = 'data-folder-test-owner-token-123';
const parent = mkdtempSync(path.join(tmpdir(), 'firmward-data-folder-'));
after(() => rmSync(parent, { recursive: true, force: true }));
const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

async function startOn(dataDir: string) {
  const lines: string[] = [];
  const config = loadConfig({ argv: ['--data-dir', dataDir, '--port', '0', '--mqtt-port', '0'], env: {}, readFile: () => { throw new Error('no config file'); } });
  // As main.ts does: the owner token is written first, and its folder made by writeSecretFile.
  ensureOwnerToken(config.dataDir, TOKEN);
  const hub = await startHub(config, { clock: new SystemClock(), log: consoleLogger('debug', 'hub', { write: (l) => lines.push(l) }), ownerToken: TOKEN });
  return { hub, lines, db: config.store.path };
}

test('a fresh data folder is 0700, and firmward.db, -wal and -shm are 0600 after a write (umask 022)', async () => {
  const umask = process.umask(0o022);
  try {
    const dataDir = path.join(parent, 'fresh', 'data');
    const { hub, lines, db } = await startOn(dataDir);
    try {
      await hub.setup.createHome({ name: 'Flat' }, 'person:owner');
      assert.equal(modeOf(dataDir), '700');
      for (const file of [db, `${db}-wal`, `${db}-shm`]) assert.equal(modeOf(file), '600', file);
      assert.equal(modeOf(path.join(dataDir, 'owner-token')), '600');
      assert.ok(!lines.some((l) => l.includes('tightened')), 'nothing to tighten on a fresh folder');
    } finally {
      await hub.stop();
    }
  } finally {
    process.umask(umask);
  }
});

test('a data folder an older hub made 0755 is tightened to 0700, and the log says so', async () => {
  const dataDir = path.join(parent, 'old');
  mkdirSync(dataDir);
  chmodSync(dataDir, 0o755);
  const { hub, lines } = await startOn(dataDir);
  try {
    assert.equal(modeOf(dataDir), '700');
    assert.ok(lines.some((l) => /data folder tightened to 0700 \(was 0755\)/.test(l)), lines.join('\n'));
  } finally {
    await hub.stop();
  }
});
