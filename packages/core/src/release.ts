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
  /** Where the hub finds the image inside its release source (relative path or key). */
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
}

export function releaseId(vendor: string, model: string, version: string): string {
  return `${vendor}/${model}/${version}`;
}

/** A release counts as a security fix when it names a vulnerability it fixes. */
export function isSecurityRelease(release: Pick<Release, 'vulnerabilitiesFixed' | 'severity'>): boolean {
  return release.vulnerabilitiesFixed.length > 0;
}
