/**
 * Replacing a small file so that a power cut leaves the old or the new content, never a mix:
 * write a temporary file, fsync it, rename it over the old one, fsync the directory (the rename
 * itself is only durable once the directory is). Serves the journal (invariant 7), the device's
 * credentials file and the simulated bootloader's environment.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * The new file is created 0600 (owner only) from its first byte on, which the credentials file
 * relies on: a secret must never be readable by others, not even for a moment.
 *
 * @example
 * await writeFileAtomic('/var/lib/firmward/journal.json', JSON.stringify(journal));
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  // A fresh name, created exclusively: never a file left by a crash or planted as a link (which
  // would keep its own mode), and two writers of one file never share a temporary file.
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dirname(path));
}

export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
