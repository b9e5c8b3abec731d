/**
 * The database holds every device's secret hash and the whole history: only the hub's own user
 * may read it (audit, issue 14 item 6). SQLite creates a database with 0644 (less the umask), and
 * its -wal and -shm files with the database file's own mode, so making the database file 0600
 * before SQLite opens it is enough for all three — and tightens the files an older hub left.
 */
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';

const OWNER_ONLY = 0o600;

/** The files SQLite keeps for a database in WAL mode. */
export function databaseFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`];
}

/**
 * Creates the database file 0600 if it is missing, and takes group and others' access away from
 * it and from its -wal and -shm files if they have any. Files of another user are left as they are
 * (only their owner may change them; SQLite says so when it cannot open them).
 *
 * @example
 * ownerOnlyDatabase('/var/lib/firmward/firmward.db'); // before new DatabaseSync(…)
 */
export function ownerOnlyDatabase(path: string): void {
  // ':memory:', '' (a temporary database) and URIs name no file of ours.
  if (path === ':memory:' || path === '' || path.startsWith('file:')) return;
  closeSync(openSync(path, 'a', OWNER_ONLY));
  for (const file of databaseFiles(path)) {
    let stat;
    try {
      stat = statSync(file);
    } catch {
      continue; // no -wal or -shm yet: SQLite makes them with the database's mode
    }
    if ((stat.mode & 0o077) !== 0 && stat.uid === process.getuid?.()) chmodSync(file, OWNER_ONLY);
  }
}
