/**
 * Writes a small secret file (owner token, owner account, sessions) in the data folder: to a temp
 * file with mode 0600, fsync, rename over the old one. A crash leaves the old file or the new one,
 * never half of either, and the secret is never readable by others, not even for a moment.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeSecretFile(file: string, content: string): void {
  // A folder made here is the data folder's first appearance (the owner token): owner-only from the start (data-folder.ts).
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  chmodSync(file, 0o600);
}
