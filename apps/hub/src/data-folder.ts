/**
 * The data folder holds the owner token, dashboard accounts and sessions, the database (device
 * secret hashes, the whole history) and the verified images: only the hub's own user may enter it
 * (audit, issue 14 item 6). Made 0700; one an older hub made 0755 is tightened, and the log says so.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import type { Logger } from '@firmward/ports';

export const DATA_FOLDER_MODE = 0o700;

/**
 * Creates `dir` (and missing parents) owner-only, or tightens it when it exists, is ours and lets
 * others in. A folder of another user is left alone with a warning: only its owner can change it.
 *
 * @example
 * ownerOnlyFolder(config.dataDir, log); // before anything is written into it
 */
export function ownerOnlyFolder(dir: string, log: Logger): void {
  mkdirSync(dir, { recursive: true, mode: DATA_FOLDER_MODE });
  const { mode, uid } = statSync(dir);
  if ((mode & 0o077) === 0) return;
  const was = (mode & 0o777).toString(8).padStart(4, '0');
  if (uid !== process.getuid?.()) {
    log.warn(`The data folder ${dir} can be read by other users of this machine (mode ${was}) and belongs to another user, so the hub cannot change it: make it the hub user's with mode 0700.`, { dir, mode: was });
    return;
  }
  chmodSync(dir, DATA_FOLDER_MODE);
  log.info(`data folder tightened to 0700 (was ${was}): it holds the owner token, device secret hashes and the history`, { dir, was });
}
