/**
 * Checks a published repository the way a device does: the tuf-js Updater, starting from a trusted
 * root, walks the root chain, timestamp, snapshot, targets and every vendor role, then downloads
 * every image and checks its length and hash. A folder is served on a loopback port for the run.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import type { Config } from 'tuf-js';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import type { ErrorCode } from '@firmward/core';
import { releaseFromTarget } from '@firmward/tuf';
import { fromClientError } from './client-errors.ts';
import { parseMetadata } from './metadata.ts';
import type { Envelope, RootSigned, SnapshotSigned, TargetsSigned, TimestampSigned } from './metadata.ts';
import { serveFolder } from './static-server.ts';

export interface VerifyOptions {
  /** The root the client starts from: a root.json path, or its bytes (not needed with `metadataDir`). */
  trustedRoot?: string | Uint8Array;
  /** Download every image and check its length and hash (default true). */
  images?: boolean;
  /**
   * The client's own metadata folder, kept between runs like a device keeps it (so a second run
   * refuses a rollback); default a fresh temporary folder. It must already hold `root.json` when given.
   */
  metadataDir?: string;
  /** tuf-js client settings (timeouts, retries, size limits). */
  config?: Partial<Config>;
}

export interface VerifiedTarget {
  path: string;
  lengthBytes: number;
  sha256: string;
  retracted: boolean;
  retractedReason?: string;
  /** Whether the client trusts this target and (when images are checked) its image verified. */
  ok: boolean;
  problem?: { code: ErrorCode; message: string };
}

export interface VerifyReport {
  source: string;
  ok: boolean;
  rootVersion: number;
  timestampVersion: number;
  snapshotVersion: number;
  targetsVersion: number;
  vendors: { role: string; version: number; targets: VerifiedTarget[] }[];
  problems: { path: string; code: ErrorCode; message: string }[];
}

function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * Verifies `source` (an http(s) URL of a published repository, or a published folder) with tuf-js.
 * Refusals of the metadata throw a FirmwardError (`metadata_expired`, `metadata_rollback`,
 * `signature_invalid`, …); problems with single targets are listed in the report.
 *
 * @example
 * const report = await verifyRepository('./public', { trustedRoot: './public/metadata/1.root.json' });
 * if (!report.ok) console.log(report.problems.map((p) => p.message).join('\n'));
 */
export async function verifyRepository(source: string, options: VerifyOptions): Promise<VerifyReport> {
  const served = isUrl(source) ? undefined : await serveFolder(source);
  const work = await mkdtemp(join(tmpdir(), 'firmward-verify-'));
  try {
    const base = (served?.url ?? source).replace(/\/+$/, '');
    const metadataDir = options.metadataDir ?? join(work, 'metadata');
    if (options.metadataDir === undefined) {
      if (options.trustedRoot === undefined) throw new FirmwardError('invalid_input', 'Name the trusted root.json the client starts from (--root).');
      const rootBytes = typeof options.trustedRoot === 'string' ? await readFile(options.trustedRoot).catch((error: unknown) => {
        throw new FirmwardError('not_found', `The trusted root ${String(options.trustedRoot)} cannot be read.`, { cause: error });
      }) : options.trustedRoot;
      parseMetadata(Buffer.from(rootBytes).toString('utf8'), 'the trusted root');
      await rm(metadataDir, { recursive: true, force: true });
      await mkdir(metadataDir, { recursive: true });
      await writeFile(join(metadataDir, 'root.json'), rootBytes);
    }
    const targetDir = join(work, 'targets');
    await mkdir(targetDir, { recursive: true });
    const updater = new Updater({
      metadataDir, metadataBaseUrl: `${base}/metadata`, targetDir, targetBaseUrl: `${base}/targets`, ...(options.config === undefined ? {} : { config: options.config }),
    });
    try {
      await updater.refresh();
    } catch (error) {
      throw fromClientError(error, 'metadata', `The repository at ${source} was refused`);
    }
    // What the client persisted, it verified: read versions and the role list from there.
    const trusted = async <S extends Envelope['signed']>(name: string): Promise<Envelope<S>> =>
      parseMetadata(await readFile(join(metadataDir, `${encodeURIComponent(name)}.json`), 'utf8'), name) as Envelope<S>;
    const root = await trusted<RootSigned>('root');
    const timestamp = await trusted<TimestampSigned>('timestamp');
    const snapshot = await trusted<SnapshotSigned>('snapshot');
    const targets = await trusted<TargetsSigned>('targets');

    const problems: VerifyReport['problems'] = [];
    const vendors: VerifyReport['vendors'] = [];
    for (const role of targets.signed.delegations?.roles ?? []) {
      const pattern = role.paths[0];
      if (pattern === undefined) {
        problems.push({ path: role.name, code: 'metadata_invalid', message: `The role ${role.name} has no path pattern, so its targets cannot be listed.` });
        continue;
      }
      try {
        // Any path the role is trusted for makes the client load and verify that role's metadata.
        await updater.getTargetInfo(pattern.split('/').map((part) => part.replaceAll('*', 'probe')).join('/'));
      } catch (error) {
        throw fromClientError(error, 'metadata', `The ${role.name} role at ${source} was refused`);
      }
      const vendor = await trusted<TargetsSigned>(role.name);
      const checked: VerifiedTarget[] = [];
      for (const [path, entry] of Object.entries(vendor.signed.targets)) {
        const sha256 = entry.hashes['sha256'] ?? '';
        const reason = entry.custom?.['retractedReason'];
        const item: VerifiedTarget = {
          path, lengthBytes: entry.length, sha256, retracted: entry.custom?.['retracted'] === true, ok: true,
          ...(typeof reason === 'string' ? { retractedReason: reason } : {}),
        };
        const fail = (code: ErrorCode, message: string): void => {
          item.ok = false;
          item.problem = { code, message };
          problems.push({ path, code, message });
        };
        try {
          // The trust decision is the client's own walk of the delegations, not our reading of the file.
          const info = await updater.getTargetInfo(path);
          if (info === undefined) {
            fail('outside_delegation', `${path} is listed by ${role.name}, which is not trusted for that path, so devices never see it.`);
          } else {
            releaseFromTarget(source, path, info.length, info.hashes['sha256'] ?? '', info.custom);
            if (options.images !== false) {
              try {
                await updater.downloadTarget(info, join(targetDir, encodeURIComponent(path)));
              } catch (error) {
                const refused = fromClientError(error, 'image', `The image ${path}`);
                fail(refused.code, refused.message);
              }
            }
          }
        } catch (error) {
          if (!isFirmwardError(error)) throw error;
          fail(error.code, error.message);
        }
        checked.push(item);
      }
      vendors.push({ role: role.name, version: vendor.signed.version, targets: checked });
    }
    return {
      source, ok: problems.length === 0,
      rootVersion: root.signed.version, timestampVersion: timestamp.signed.version, snapshotVersion: snapshot.signed.version, targetsVersion: targets.signed.version,
      vendors, problems,
    };
  } finally {
    await served?.close();
    await rm(work, { recursive: true, force: true });
  }
}
