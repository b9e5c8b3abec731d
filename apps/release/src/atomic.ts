/**
 * Durable, all-or-nothing file operations. A crash at any point leaves every file and folder this
 * tool writes as it was before or as it is after, never half-written: single files are written to
 * a temporary name, fsynced and renamed; whole metadata sets are written into a fresh folder and
 * made current by atomically replacing one symbolic link (`rename(2)` over it).
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';

/**
 * Called before every file or link this tool is about to write, with its path. Tests throw from it
 * after N calls to prove a crash at that point leaves everything loadable (fault injection).
 */
export type BeforeWrite = (path: string) => void;

export const noFaults: BeforeWrite = () => undefined;

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** fsync a folder, so that a rename or a new entry in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function finish(handle: FileHandle, temp: string, path: string): Promise<void> {
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncDirectory(dirname(path));
}

/** Replaces `path` with `data`: the old content or the new, never a mix. Created with `mode`. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: { mode?: number; beforeWrite?: BeforeWrite } = {}): Promise<void> {
  (options.beforeWrite ?? noFaults)(path);
  const temp = tempName(path);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await finish(handle, temp, path);
}

/**
 * Copies `source` to `path` atomically while hashing the bytes actually written, so the length and
 * SHA-256 returned describe exactly what is on disk.
 */
export async function copyFileAtomic(source: string, path: string, beforeWrite: BeforeWrite = noFaults): Promise<{ lengthBytes: number; sha256: string }> {
  beforeWrite(path);
  const temp = tempName(path);
  const handle = await open(temp, 'wx', 0o644);
  const hash = createHash('sha256');
  let lengthBytes = 0;
  try {
    await pipeline(createReadStream(source), new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        lengthBytes += chunk.length;
        handle.write(chunk).then(() => callback(), callback);
      },
    }));
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await finish(handle, temp, path);
  return { lengthBytes, sha256: hash.digest('hex') };
}

/** Length and SHA-256 of a file, streamed. */
export async function hashFile(path: string): Promise<{ lengthBytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let lengthBytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    lengthBytes += chunk.length;
  }
  return { lengthBytes, sha256: hash.digest('hex') };
}

/** Writes each file of a fresh (not yet visible) folder durably, then syncs the folder. */
export async function writeFolder(dir: string, files: ReadonlyMap<string, string>, beforeWrite: BeforeWrite = noFaults): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of files) {
    const path = join(dir, name);
    beforeWrite(path);
    const handle = await open(path, 'wx', 0o644);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  await syncDirectory(dir);
  await syncDirectory(dirname(dir));
}

/** The folder a managed link points at (absolute), or undefined when there is no link yet. */
export async function linkTarget(link: string): Promise<string | undefined> {
  let stats;
  try {
    stats = await lstat(link);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (!stats.isSymbolicLink()) return `not-a-link:${link}`;
  return resolve(dirname(link), await readlink(link));
}

/**
 * Makes `link` point at `target` in one step: a new link under a temporary name renamed over the
 * old one. Readers see the old folder or the new one, never a mix (the commit point of a set).
 */
export async function swapLink(link: string, target: string, beforeWrite: BeforeWrite = noFaults): Promise<void> {
  beforeWrite(link);
  const temp = tempName(link);
  await symlink(relative(dirname(link), target), temp);
  await rename(temp, link);
  await syncDirectory(dirname(link));
}

/** Removes every entry of `dir` except those named in `keep` (stale sets, left-over temp files). */
export async function removeAllBut(dir: string, keep: ReadonlySet<string>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!keep.has(name)) await rm(join(dir, name), { recursive: true, force: true });
  }
}
