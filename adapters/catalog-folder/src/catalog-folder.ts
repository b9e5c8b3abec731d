/**
 * ReleaseSource over a local folder: `<dir>/releases/*.json`, one release each, images beside
 * them. Unsigned — a stand-in until the maker's signed TUF repository replaces it (its own issue).
 * Even so, an image is handed out only after its length and SHA-256 match what the release says
 * (invariant 4 on the hub side), and a release that does not parse is refused, never guessed.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { FirmwardError, releaseId } from '@firmward/core';
import type { Release } from '@firmward/core';
import type { ReleaseSource } from '@firmward/ports';

const severity = z.enum(['none', 'low', 'medium', 'high', 'critical']);
const text = z.string().min(1).max(200);

export const releaseFileSchema = z.strictObject({
  vendor: text,
  model: text,
  hardwareRevisions: z.array(text).min(1),
  version: z.string().min(1).max(64),
  applicableFrom: z.string().min(1).max(64).optional(),
  applicableTo: z.string().min(1).max(64).optional(),
  severity: severity.default('none'),
  vulnerabilitiesFixed: z.array(z.strictObject({ id: text, severity })).default([]),
  expectedInstallSeconds: z.number().int().positive().max(24 * 3600),
  preflightOverrides: z.record(z.string(), z.number()).default({}),
  recovery: z.strictObject({
    steps: z.array(z.string().min(1).max(500)).min(1),
    supportUrl: z.string().max(500).optional(),
    supportContact: z.string().max(200).optional(),
  }),
  retracted: z.boolean().default(false),
  image: z.strictObject({
    path: z.string().min(1).max(500),
    lengthBytes: z.number().int().positive(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  notes: z.string().max(5000).optional(),
  publishedAt: z.string().max(64).optional(),
});
export type ReleaseFile = z.input<typeof releaseFileSchema>;

const THRESHOLD_KEYS = new Set([
  'minBatteryPercent', 'minSignalDbm', 'maxSignalSpreadDb', 'signalWindowSeconds', 'minSignalSamples', 'noDropoutSeconds',
  'freeStorageMarginBytes', 'neededSoonMarginSeconds', 'usageLookbackDays', 'minUsageHistoryDays', 'usageLikelihood',
]);

export interface CatalogLog {
  warn(message: string): void;
}

export class CatalogFolderSource implements ReleaseSource {
  readonly name: string;
  readonly #dir: string;
  readonly #log: CatalogLog;
  /**
   * Images already verified, by release id, so a large image is hashed once per change. Any change
   * to the file (another path, inode, size, mtime or ctime) or to the release's hash verifies it
   * again (invariant 4): ctime moves on every write, even when the mtime is put back.
   * Only files left alone for SETTLED_MS are cached (see imagePath).
   */
  readonly #verified = new Map<string, VerifiedImage>();

  constructor(dir: string, log: CatalogLog = { warn: () => {} }) {
    this.#dir = path.resolve(dir);
    this.name = `catalog:${this.#dir}`;
    this.#log = log;
  }

  async refresh(): Promise<Release[]> {
    const folder = path.join(this.#dir, 'releases');
    let names: string[];
    try {
      names = (await readdir(folder)).filter((n) => n.endsWith('.json')).sort();
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new FirmwardError('image_unavailable', `The release catalog at ${folder} cannot be read.`, { cause });
    }
    const parsed: { name: string; release: Release }[] = [];
    for (const name of names) {
      const file = path.join(folder, name);
      try {
        parsed.push({ name, release: toRelease(releaseFileSchema.parse(JSON.parse(await readFile(file, 'utf8')))) });
      } catch (cause) {
        // One bad file does not hide the good ones; it is named, with what is wrong, so the maker can fix it.
        this.#log.warn(`release file ${name} refused: ${describeRefusal(cause)}`);
      }
    }
    // Two files for one release: which image and which version range were meant is a guess, and a
    // release is never guessed; both are refused until one is removed.
    const files = new Map<string, string[]>();
    for (const { name, release } of parsed) files.set(release.id, [...(files.get(release.id) ?? []), name]);
    const releases: Release[] = [];
    for (const { name, release } of parsed) {
      const same = files.get(release.id)!;
      if (same.length === 1) releases.push(release);
      else this.#log.warn(`release file ${name} refused: ${same.join(', ')} all describe ${release.id}; keep only one.`);
    }
    return releases;
  }

  async imagePath(release: Release): Promise<string> {
    const file = path.resolve(this.#dir, release.image.path);
    if (!file.startsWith(this.#dir + path.sep)) {
      throw new FirmwardError('image_unavailable', `The image of ${release.id} points outside the catalog.`);
    }
    let info;
    try {
      info = await stat(file);
    } catch (cause) {
      throw new FirmwardError('image_unavailable', `The image of ${release.id} is missing.`, { cause });
    }
    const seen: VerifiedImage = { file, sha256: release.image.sha256, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, ino: info.ino };
    const known = this.#verified.get(release.id);
    if (known && sameImage(known, seen)) return file;
    this.#verified.delete(release.id);
    if (info.size !== release.image.lengthBytes) {
      throw new FirmwardError('image_length_mismatch', `The image of ${release.id} is ${info.size} bytes, but the release says ${release.image.lengthBytes}.`);
    }
    const digest = await sha256File(file);
    if (digest !== release.image.sha256) {
      throw new FirmwardError('image_hash_mismatch', `The image of ${release.id} does not match its checksum; it will not be offered.`);
    }
    // File times tick coarsely (milliseconds apart at best): a file changed within the same tick
    // as its check could change again unseen, so only a file left alone for a while is cached
    // (git's "racily clean" rule). Any later write then moves its ctime past the cached one.
    if (Date.now() - Math.max(info.mtimeMs, info.ctimeMs) >= SETTLED_MS) this.#verified.set(release.id, seen);
    return file;
  }
}

/** How long a file must be left alone before its verified hash is trusted without re-reading it. */
const SETTLED_MS = 2_000;

interface VerifiedImage {
  file: string;
  sha256: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

function sameImage(a: VerifiedImage, b: VerifiedImage): boolean {
  return a.file === b.file && a.sha256 === b.sha256 && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}

/** One line a maker can act on: zod's issues as "field: problem", anything else by its message. */
function describeRefusal(cause: unknown): string {
  if (cause instanceof z.ZodError) {
    return cause.issues.map((issue) => {
      const at = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => `"${at === '' ? k : `${at}.${k}`}" is not a field of a release`).join('; ');
      return `${at === '' ? 'the file' : `"${at}"`}: ${issue.message}`;
    }).join('; ');
  }
  return cause instanceof Error ? cause.message.split('\n')[0]! : String(cause);
}

function toRelease(f: z.output<typeof releaseFileSchema>): Release {
  const overrides: Record<string, number> = {};
  for (const [k, v] of Object.entries(f.preflightOverrides)) {
    if (!THRESHOLD_KEYS.has(k)) throw new FirmwardError('invalid_input', `Unknown preflight override "${k}".`);
    overrides[k] = v;
  }
  const release: Release = {
    id: releaseId(f.vendor, f.model, f.version),
    vendor: f.vendor,
    model: f.model,
    hardwareRevisions: f.hardwareRevisions,
    version: f.version,
    severity: f.severity,
    vulnerabilitiesFixed: f.vulnerabilitiesFixed,
    expectedInstallSeconds: f.expectedInstallSeconds,
    preflightOverrides: overrides,
    recovery: {
      steps: f.recovery.steps,
      ...(f.recovery.supportUrl !== undefined && { supportUrl: f.recovery.supportUrl }),
      ...(f.recovery.supportContact !== undefined && { supportContact: f.recovery.supportContact }),
    },
    retracted: f.retracted,
    image: f.image,
  };
  if (f.applicableFrom !== undefined) release.applicableFrom = f.applicableFrom;
  if (f.applicableTo !== undefined) release.applicableTo = f.applicableTo;
  if (f.notes !== undefined) release.notes = f.notes;
  if (f.publishedAt !== undefined) release.publishedAt = f.publishedAt;
  return release;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Writes a release and its image into a catalog folder atomically (temp file + rename), with
 * length and hash computed from the bytes — the production writer the demo and tests use.
 */
export async function writeCatalogRelease(dir: string, fields: Omit<ReleaseFile, 'image'>, image: Uint8Array): Promise<Release> {
  const imagesDir = path.join(dir, 'images');
  const releasesDir = path.join(dir, 'releases');
  const slug = `${fields.vendor}-${fields.model}-${fields.version}`.replace(/[^A-Za-z0-9._-]/g, '_');
  const imageRel = path.join('images', `${slug}.img`);
  const sha256 = createHash('sha256').update(image).digest('hex');
  const file: ReleaseFile = { ...fields, image: { path: imageRel, lengthBytes: image.byteLength, sha256 } };
  // Checked before anything is written: the writer never leaves a file the catalog would refuse.
  const parsed = releaseFileSchema.safeParse(file);
  if (!parsed.success) throw new FirmwardError('invalid_input', `This release cannot be written: ${describeRefusal(parsed.error)}.`);
  const release = toRelease(parsed.data);
  await mkdir(imagesDir, { recursive: true });
  await mkdir(releasesDir, { recursive: true });
  await atomicWrite(path.join(dir, imageRel), image);
  await atomicWrite(path.join(releasesDir, `${slug}.json`), JSON.stringify(file, null, 2));
  return release;
}

async function atomicWrite(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
