/**
 * What the hub's and the device's TUF conformance entry points share: the command line of the
 * public client conformance suite (theupdateframework/tuf-conformance, CLIENT-CLI.md), where our
 * own state lives inside the suite's metadata folder, and the copies the suite reads.
 *
 * `D` is the suite's `--metadata-dir`. Our clients keep their state as they do in production, in
 * `D/.firmward/` (tuf-js's working copy, our root anchor, the hub's mirror, the device's slots);
 * after every command the trusted metadata tuf-js persisted is copied to `D/<role>.json`, under
 * the unversioned names the suite reads — CLIENT-CLI.md allows a client to keep metadata its own
 * way and make copies available. Nothing is ever read back from those copies.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { FirmwardError } from '@firmward/core';
import type { Reason } from '@firmward/core';
import { atomicWrite } from './trusted-repository.ts';

/** The one repository a conformance run trusts (the suite serves one per test). */
export const CONFORMANCE_REPOSITORY = 'conformance';

export type ConformanceCommand =
  | { command: 'init'; metadataDir: string; trustedRoot: string }
  | { command: 'refresh'; metadataDir: string; repositoryUrl: string }
  | { command: 'download'; metadataDir: string; repositoryUrl: string; targetNames: string[]; targetDir: string };

/**
 * The suite's command line. Our clients take one repository URL with `metadata/` and `targets/`
 * under it (as the release tool publishes and the hub mirrors); the suite serves exactly that,
 * and a `--target-base-url` elsewhere is refused rather than silently ignored.
 *
 * @example
 * parseConformanceArgs(['--metadata-dir', '/tmp/m', 'init', '/tmp/root.json']); // { command: 'init', … }
 */
export function parseConformanceArgs(argv: readonly string[]): ConformanceCommand {
  const parsed = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      'metadata-dir': { type: 'string' },
      'metadata-url': { type: 'string' },
      'target-name': { type: 'string', multiple: true },
      'target-base-url': { type: 'string' },
      'target-dir': { type: 'string' },
      verbose: { type: 'boolean', short: 'v', multiple: true },
    },
  });
  const { positionals } = parsed;
  const values = { ...parsed.values, 'metadata-dir': local(parsed.values['metadata-dir']), 'target-dir': local(parsed.values['target-dir']) };
  const metadataDir = values['metadata-dir'];
  if (metadataDir === undefined) throw usage('--metadata-dir is required.');
  const [command, ...rest] = positionals;
  if (command === 'init') {
    if (rest.length !== 1 || rest[0] === undefined) throw usage('init takes the trusted root file.');
    return { command, metadataDir, trustedRoot: local(rest[0]) };
  }
  if (command !== 'refresh' && command !== 'download') throw usage(`Unknown command "${command ?? ''}": init, refresh or download.`);
  if (rest.length > 0) throw usage(`${command} takes no arguments.`);
  const metadataUrl = values['metadata-url'];
  if (metadataUrl === undefined) throw usage('--metadata-url is required.');
  const repositoryUrl = baseOf(metadataUrl, 'metadata');
  if (command === 'refresh') return { command, metadataDir, repositoryUrl };
  const targetNames = values['target-name'] ?? [];
  const targetDir = values['target-dir'];
  const targetBaseUrl = values['target-base-url'];
  if (targetNames.length === 0 || targetDir === undefined || targetBaseUrl === undefined) {
    throw usage('download needs --target-name, --target-base-url and --target-dir.');
  }
  if (baseOf(targetBaseUrl, 'targets') !== repositoryUrl) {
    throw usage(`Our clients read one repository: metadata under <url>/metadata/ and images under <url>/targets/, not ${targetBaseUrl}.`);
  }
  return { command, metadataDir, repositoryUrl, targetNames, targetDir };
}

/**
 * A path as the caller meant it: `npm run` starts scripts in the package's folder, so a relative
 * path given to `npm run -s tuf-client:… --` is taken from where npm was called (INIT_CWD).
 */
function local<T extends string | undefined>(file: T): T {
  if (file === undefined) return file;
  const from = process.env['npm_lifecycle_event']?.startsWith('tuf-client:') === true ? process.env['INIT_CWD'] : undefined;
  return path.resolve(from ?? process.cwd(), file) as T;
}

function baseOf(url: string, folder: 'metadata' | 'targets'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new FirmwardError('invalid_input', `"${url}" is not a URL.`, { cause });
  }
  const pathname = parsed.pathname.replace(/\/+$/, '');
  if (!pathname.endsWith(`/${folder}`)) throw usage(`Our clients expect ${folder} under <url>/${folder}/, not ${url}.`);
  parsed.pathname = `${pathname.slice(0, -folder.length)}`;
  parsed.search = '';
  parsed.hash = '';
  return parsed.href;
}

function usage(message: string): FirmwardError {
  return new FirmwardError('invalid_input', message);
}

/** Our state inside the suite's metadata folder. */
export function stateDir(metadataDir: string): string {
  return path.join(metadataDir, '.firmward');
}

/** The root given to `init`, kept where our clients read their first root from. */
export function initialRootFile(metadataDir: string): string {
  return path.join(stateDir(metadataDir), 'initial-root.json');
}

/** `init`: trust this root. Nothing is fetched; the root is checked when it is first used. */
export async function initConformanceClient(metadataDir: string, trustedRoot: string): Promise<void> {
  const bytes = await readFile(trustedRoot);
  await mkdir(stateDir(metadataDir), { recursive: true });
  await atomicWrite(initialRootFile(metadataDir), bytes);
  await atomicWrite(path.join(metadataDir, 'root.json'), bytes);
}

/** Copies every metadata file tuf-js persisted in `workDir` (it writes a file only once verified) to `D/<name>.json`. */
export async function publishTrustedCopies(workDir: string, metadataDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(workDir);
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const bytes = await readFile(path.join(workDir, name));
    const copy = path.join(metadataDir, name);
    const before = await readFile(copy).catch(() => null);
    if (before === null || !before.equals(bytes)) await atomicWrite(copy, bytes);
  }
}

/**
 * Where a target's verified bytes go in the suite's target folder: one file per target path
 * (the same name when its content changes), the path's `/` kept as folders, each segment encoded
 * so that no target path can leave the folder.
 */
export function targetFile(targetDir: string, targetPath: string): string {
  return path.join(targetDir, ...targetPath.split('/').map(fileNameOf));
}

/** One path segment as a file name: URI-encoded (one-to-one), and never empty, `.` or `..`. */
function fileNameOf(segment: string): string {
  if (segment === '') return '%';
  if (segment === '.' || segment === '..') return segment.replaceAll('.', '%2E');
  return encodeURIComponent(segment);
}

/** True when `file` already holds exactly these bytes (the suite's artifact cache: not fetched again). */
export async function holds(file: string, lengthBytes: number, sha256: string): Promise<boolean> {
  const bytes = await readFile(file).catch(() => null);
  return bytes !== null && bytes.byteLength === lengthBytes && createHash('sha256').update(bytes).digest('hex') === sha256;
}

/** Puts verified bytes (the first `lengthBytes` of a file of ours) into the suite's target folder, atomically. */
export async function placeVerified(fromFile: string, lengthBytes: number, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  await atomicWrite(to, (await readFile(fromFile)).subarray(0, lengthBytes));
}

/**
 * Runs one command and maps its outcome to the suite's exit codes: 0 when it succeeded fully, 1
 * for any failure — thrown, or a refusal returned (the device's checks answer with a reason) —
 * with the reason (our code and sentence) on stderr.
 */
export async function runConformance(name: string, argv: readonly string[], run: (command: ConformanceCommand) => Promise<Reason | null>): Promise<number> {
  try {
    const refused = await run(parseConformanceArgs(argv));
    if (refused === null) return 0;
    process.stderr.write(`${name}: ${refused.code}: ${refused.message}\n`);
    return 1;
  } catch (error) {
    const code = error instanceof FirmwardError ? error.code : 'internal';
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${name}: ${code}: ${message}\n`);
    const tuf = error instanceof FirmwardError ? error.detail?.['tuf'] : undefined;
    if (typeof tuf === 'string') process.stderr.write(`${name}: tuf-js said: ${tuf}\n`);
    return 1;
  }
}
