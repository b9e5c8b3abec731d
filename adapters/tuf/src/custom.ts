/**
 * The contract between the maker's release tool and every consumer (hub and device): where a
 * release lives in the signed repository and what its signed `custom` metadata says.
 *
 * Layout: one delegated targets role per vendor, named after the vendor, trusted only for
 * `<vendor>/*\/*\/*` — that is `<vendor>/<model>/<version>/<file>`. Every field that decides
 * whether a device may install an image (model, hardware revisions, version range, retraction)
 * is inside the signed target, so a hub cannot change it without breaking the vendor's signature.
 */
import { z } from 'zod';
import { FirmwardError, releaseId } from '@firmward/core';
import type { PreflightThresholds, Release } from '@firmward/core';

/** One path segment: what a vendor, model or version may be called in the repository. */
export const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const segment = z.string().regex(SEGMENT, 'letters, digits, ".", "_", "+" or "-", up to 64, no slash');
const severity = z.enum(['none', 'low', 'medium', 'high', 'critical']);
const text = z.string().min(1).max(200);

/**
 * The thresholds a release may override (the maker knows its install best). Integers only:
 * canonical JSON, which TUF signs, has no floats.
 */
export const RELEASE_OVERRIDE_KEYS = [
  'minBatteryPercent', 'minSignalDbm', 'maxSignalSpreadDb', 'signalWindowSeconds', 'minSignalSamples',
  'noDropoutSeconds', 'freeStorageMarginBytes', 'neededSoonMarginSeconds',
] as const satisfies readonly (keyof PreflightThresholds)[];
type OverrideKey = (typeof RELEASE_OVERRIDE_KEYS)[number];

const overrides = z.strictObject(
  Object.fromEntries(RELEASE_OVERRIDE_KEYS.map((k) => [k, z.number().int().optional()])) as Record<OverrideKey, z.ZodOptional<z.ZodNumber>>,
);

/** The signed `custom` object of one firmware target. */
export const releaseCustomSchema = z.strictObject({
  vendor: segment,
  model: segment,
  hardwareRevisions: z.array(text).min(1).max(64),
  version: segment,
  applicableFrom: segment.optional(),
  applicableTo: segment.optional(),
  severity: severity.default('none'),
  vulnerabilitiesFixed: z.array(z.strictObject({ id: text, severity })).max(200).default([]),
  expectedInstallSeconds: z.number().int().positive().max(24 * 3600),
  preflightOverrides: overrides.default({}),
  recovery: z.strictObject({
    steps: z.array(z.string().min(1).max(500)).min(1).max(30),
    supportUrl: z.string().max(500).optional(),
    supportContact: z.string().max(200).optional(),
  }),
  /** Set by `firmward release retract`: the version is bad; never offered again, devices on it go first. */
  retracted: z.boolean().default(false),
  retractedReason: z.string().max(500).optional(),
  notes: z.string().max(5000).optional(),
  publishedAt: z.string().max(64).optional(),
});
export type ReleaseCustom = z.output<typeof releaseCustomSchema>;
export type ReleaseCustomInput = z.input<typeof releaseCustomSchema>;

/** The target path of an image: `<vendor>/<model>/<version>/<file>`. */
export function targetPath(vendor: string, model: string, version: string, fileName: string): string {
  for (const [what, value] of [['vendor', vendor], ['model', model], ['version', version], ['file name', fileName]] as const) {
    if (!SEGMENT.test(value)) throw new FirmwardError('invalid_input', `The ${what} "${value}" cannot be part of a release path: use letters, digits, ".", "_", "+" or "-".`);
  }
  return `${vendor}/${model}/${version}/${fileName}`;
}

const TOP_LEVEL_ROLES = new Set(['root', 'targets', 'snapshot', 'timestamp']);

/** The delegated role of a vendor and the only paths it is trusted for. */
export function vendorDelegation(vendor: string): { role: string; paths: string[] } {
  if (!SEGMENT.test(vendor)) throw new FirmwardError('invalid_input', `"${vendor}" cannot be a vendor name: use letters, digits, ".", "_", "+" or "-".`);
  // The role's metadata is published as `<N>.<vendor>.json`, beside the top-level roles' files.
  if (TOP_LEVEL_ROLES.has(vendor.toLowerCase())) throw new FirmwardError('invalid_input', `"${vendor}" is the name of a TUF role and cannot be a vendor name.`);
  return { role: vendor, paths: [`${vendor}/*/*/*`] };
}

/**
 * A signed target as a Release. Refuses (FirmwardError `outside_delegation`) a target whose path
 * does not agree with its own vendor, model and version — a vendor can only speak for itself.
 */
export function releaseFromTarget(repository: string, path: string, length: number, sha256: string, custom: unknown): Release {
  const parsed = releaseCustomSchema.safeParse(custom);
  if (!parsed.success) {
    throw new FirmwardError('metadata_invalid', `The signed description of ${path} is not a release Firmward understands: ${z.prettifyError(parsed.error).replaceAll('\n', ' ')}.`);
  }
  const c = parsed.data;
  const [vendor, model, version] = path.split('/');
  if (vendor !== c.vendor || model !== c.model || version !== c.version) {
    throw new FirmwardError('outside_delegation', `The image ${path} is signed as ${c.vendor} ${c.model} ${c.version}, which does not match its place in the maker's repository.`);
  }
  const preflightOverrides: Partial<PreflightThresholds> = {};
  for (const key of RELEASE_OVERRIDE_KEYS) {
    const value = c.preflightOverrides[key];
    if (value !== undefined) preflightOverrides[key] = value;
  }
  const release: Release = {
    id: releaseId(c.vendor, c.model, c.version),
    repository,
    vendor: c.vendor,
    model: c.model,
    hardwareRevisions: c.hardwareRevisions,
    version: c.version,
    severity: c.severity,
    vulnerabilitiesFixed: c.vulnerabilitiesFixed,
    expectedInstallSeconds: c.expectedInstallSeconds,
    preflightOverrides,
    recovery: {
      steps: c.recovery.steps,
      ...(c.recovery.supportUrl !== undefined && { supportUrl: c.recovery.supportUrl }),
      ...(c.recovery.supportContact !== undefined && { supportContact: c.recovery.supportContact }),
    },
    retracted: c.retracted,
    image: { path, lengthBytes: length, sha256 },
  };
  if (c.applicableFrom !== undefined) release.applicableFrom = c.applicableFrom;
  if (c.applicableTo !== undefined) release.applicableTo = c.applicableTo;
  if (c.notes !== undefined) release.notes = c.notes;
  if (c.publishedAt !== undefined) release.publishedAt = c.publishedAt;
  return release;
}
