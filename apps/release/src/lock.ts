/**
 * One release command at a time per folder: two makers (or a cron `refresh` and a person's `add`)
 * writing the same repository at once would each bump versions from the same base. A lock file
 * holds the owner's pid; a lock left by a process that no longer runs is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import { FirmwardError } from '@firmward/core';

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withLock<T>(lockFile: string, work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(lockFile, 'wx', 0o600);
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 2) throw error;
      const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && running(pid)) {
        throw new FirmwardError('conflict', `Another release command (process ${pid}) is working on this folder; run this again when it has finished.`);
      }
      if (pid === process.pid) {
        throw new FirmwardError('conflict', 'This process is already working on this folder; wait for the first operation to finish.');
      }
      await rm(lockFile, { force: true });
    }
  }
  try {
    return await work();
  } finally {
    await rm(lockFile, { force: true });
  }
}
