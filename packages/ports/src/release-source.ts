import type { Release } from '@firmward/core';

/**
 * Where releases come from. The local catalog folder now; the maker's signed TUF repository
 * (the signed-source issue) later, behind the same port.
 */
export interface ReleaseSource {
  readonly name: string;
  /** Reads the source again; throws FirmwardError with a reason when it cannot be trusted or read. */
  refresh(signal?: AbortSignal): Promise<Release[]>;
  /** The image bytes of a release, only after its length and hash verify. Returns a file path the hub can serve with Range. */
  imagePath(release: Release): Promise<string>;
}
