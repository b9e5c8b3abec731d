import type { Release } from '@firmward/core';

/**
 * A release the source vouches for whose image did not verify at the source's mirror (altered,
 * longer, shorter, endless, or out of reach): it is withheld — never planned, never offered —
 * until the image verifies on a later try.
 */
export interface ImageRefusal {
  releaseId: string;
  /** `image_hash_mismatch`, `image_length_mismatch` or `image_unavailable`. */
  code: string;
  message: string;
  /** Tries so far; the next one is not before `retryAt`. */
  attempts: number;
  retryAt: number;
}

/**
 * Where releases come from: a maker's signed TUF repository (adapters/tuf), an ecosystem a bridge
 * speaks for, or an in-memory list in tests.
 */
export interface ReleaseSource {
  readonly name: string;
  /** Reads the source again; throws FirmwardError with a reason when it cannot be trusted or read. */
  refresh(signal?: AbortSignal): Promise<Release[]>;
  /** The image bytes of a release, only after its length and hash verify. Returns a file path the hub can serve with Range. */
  imagePath(release: Release): Promise<string>;
  /**
   * After a refresh that failed only because the source could not be reached: the releases it
   * verified earlier and still vouches for (its metadata not expired), or null.
   */
  lastVerified?(): Release[] | null;
  /** The releases withheld because their image did not verify, with why (none for sources that serve no images). */
  refusedImages?(): ImageRefusal[];
}
