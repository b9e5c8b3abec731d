/**
 * Where devices download images from. Every hub keeps its own verified mirror of the makers'
 * images on disk (the filesystem store; adapters/tuf mirrors an image only after its length and
 * hash match the signed target) and serves it with Range. With an S3-compatible store configured,
 * the hub also puts each verified image there under its content address, once, and answers a
 * device's download with a redirect to a signed URL that expires — several hub instances share the
 * bucket, and the bytes go from the store (or a CDN in front of it) instead of through the hub.
 */
import { z } from 'zod';
import { S3BlobStore } from '@firmward/blob-s3';
import type { Release } from '@firmward/core';
import { imageBlobKey } from '@firmward/ports';
import type { Clock, Logger } from '@firmward/ports';

export const imagesSchema = z.strictObject({
  kind: z.enum(['fs', 's3'], { error: 'must be "fs" (the hub\'s own folder) or "s3"' }).default('fs'),
  endpoint: z.string().default(''),
  region: z.string().default('us-east-1'),
  bucket: z.string().default(''),
  prefix: z.string().default(''),
  accessKeyId: z.string().default(''),
  /** From the file or FIRMWARD_IMAGES_SECRET only; never a flag, never logged. */
  secretAccessKey: z.string().default(''),
  forcePathStyle: z.boolean().default(true),
  urlExpirySeconds: z.number().int().min(1).max(7 * 24 * 3600).default(900),
}, { error: 'must be an object' })
  .refine((i) => i.kind !== 's3' || (i.bucket !== '' && i.accessKeyId !== '' && i.secretAccessKey !== ''),
    { error: 'needs "bucket", "accessKeyId" and the secret (FIRMWARD_IMAGES_SECRET) when kind is "s3"' })
  .prefault({});

export type ImagesConfig = z.output<typeof imagesSchema>;

export class ImageDistribution {
  readonly #store: S3BlobStore | null;
  readonly #expirySeconds: number;
  readonly #log: Logger;
  /** Keys known to be in the store (it only ever gains verified images under content addresses). */
  readonly #present = new Set<string>();

  constructor(config: ImagesConfig, o: { clock: Clock; log: Logger }) {
    this.#log = o.log;
    this.#expirySeconds = config.urlExpirySeconds;
    this.#store = config.kind === 's3'
      ? new S3BlobStore({
        ...(config.endpoint !== '' && { endpoint: config.endpoint }), region: config.region, bucket: config.bucket, prefix: config.prefix,
        accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, forcePathStyle: config.forcePathStyle, clock: o.clock, logger: o.log,
      })
      : null;
  }

  stop(): void {
    this.#store?.stop();
  }

  /**
   * A signed URL of the store for this release's image, putting the verified local file there
   * first if it is not yet; null when the hub serves the bytes itself (no store, or the store
   * cannot be reached right now — the device is never left without its image).
   */
  async downloadUrl(release: Release, verifiedFile: string): Promise<string | null> {
    if (!this.#store) return null;
    const key = imageBlobKey(release.image.sha256);
    try {
      if (!this.#present.has(key)) {
        if (!(await this.#store.has(key))) await this.#store.put(key, verifiedFile, { lengthBytes: release.image.lengthBytes, sha256: release.image.sha256 });
        this.#present.add(key);
      }
      const fileName = release.image.path.split('/').pop() ?? 'firmware.bin';
      return await this.#store.downloadUrl(key, { expiresInSeconds: this.#expirySeconds, fileName });
    } catch (error) {
      this.#log.warn('image store unavailable; serving the image from the hub', { releaseId: release.id, error: error instanceof Error ? error.message : String(error) });
      return null;
    }
  }
}
