/**
 * The database is the hub user's alone (audit, issue 14 item 6): firmward.db and the -wal and -shm
 * files SQLite makes beside it are 0600, whatever the umask, and an older hub's 0644 files are
 * tightened when the store opens them.
 */
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { makeHome } from '../../../packages/ports/testing/store-contract.ts';
import { SqliteStore } from '../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'firmward-modes-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);
const files = (path: string) => [path, `${path}-wal`, `${path}-shm`];

describe('SqliteStore file modes', () => {
  test('a new database and its -wal and -shm are 0600 after a write, with the usual umask 022', async () => {
    const path = join(dir, 'new.db');
    const umask = process.umask(0o022);
    try {
      const store = await SqliteStore.open(path);
      await store.putHome(makeHome('h'));
      for (const file of files(path)) {
        assert.ok(existsSync(file), `${file} exists while the store is open`);
        assert.equal(modeOf(file), '600', file);
      }
      await store.close();
    } finally {
      process.umask(umask);
    }
  });

  test('an older database left 0644, with its -wal and -shm, is made 0600 when opened', async () => {
    const path = join(dir, 'old.db');
    // What an older hub left after a crash: the database and its WAL files, readable by all.
    const before = new DatabaseSync(path);
    before.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1)');
    const leftover = new DatabaseSync(path);
    leftover.exec('SELECT * FROM t');
    for (const file of files(path)) chmodSync(file, 0o644);
    const store = await SqliteStore.open(path);
    for (const file of files(path)) assert.equal(modeOf(file), '600', file);
    await store.close();
    leftover.close();
    before.close();
  });

  test('an empty file is taken as an empty database; :memory: touches no file', async () => {
    const path = join(dir, 'empty.db');
    writeFileSync(path, '', { mode: 0o664 });
    const store = await SqliteStore.open(path);
    assert.equal(modeOf(path), '600');
    await store.close();
    const memory = await SqliteStore.open(':memory:');
    assert.equal(existsSync(':memory:'), false);
    await memory.close();
  });
});
