import type { PreflightThresholds } from './thresholds.ts';

export type Severity = 'none' | 'low' | 'medium' | 'high' | 'critical';

export interface Vulnerability {
  /** e.g. "CVE-2026-1234" */
  id: string;
  severity: Severity;
}

export interface RecoveryInstructions {
  /** The maker's steps for this exact model, in order, written for a householder. */
  steps: string[];
  supportUrl?: string;
  supportContact?: string;
}

export interface ImageRef {
  /** The image's target path in the signed repository: `<vendor>/<model>/<version>/<file>`. */
  path: string;
  lengthBytes: number;
  /** lowercase hex */
  sha256: string;
}

/**
 * One firmware release as the maker describes it. It applies to exactly one vendor + model, the
 * listed hardware revisions, and devices whose installed version lies in
 * [applicableFrom, applicableTo] (both optional, both inclusive).
 */
export interface Release {
  /** Stable id: `${vendor}/${model}/${version}` */
  id: string;
  /** The signed repository (one per maker) that vouches for this release; absent only in unit tests of the core. */
  repository?: string;
  vendor: string;
  model: string;
  hardwareRevisions: string[];
  version: string;
  applicableFrom?: string;
  applicableTo?: string;
  severity: Severity;
  vulnerabilitiesFixed: Vulnerability[];
  expectedInstallSeconds: number;
  preflightOverrides: Partial<PreflightThresholds>;
  recovery: RecoveryInstructions;
  retracted: boolean;
  image: ImageRef;
  notes?: string;
  publishedAt?: string;
  /**
   * Set when the release is vouched for by another ecosystem rather than the maker's signed
   * repository (Zigbee2MQTT's OTA index, Shelly's stable channel): the device fetches the image
   * from there and checks it itself; `image` then names it (`lengthBytes` 0 and `sha256` "" when
   * unknown). Shown to the householder as-is: this is the ecosystem's trust, not ours.
   */
  origin?: { ecosystem: string; trust: string };
}

export function releaseId(vendor: string, model: string, version: string): string {
  return `${vendor}/${model}/${version}`;
}

/** A release counts as a security fix when it names a vulnerability it fixes. */
export function isSecurityRelease(release: Pick<Release, 'vulnerabilitiesFixed' | 'severity'>): boolean {
  return release.vulnerabilitiesFixed.length > 0;
}
