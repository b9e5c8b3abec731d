/**
 * A real S3 REST server on loopback for the tests: @20minutes/s3rver (the maintained fork of
 * s3rver), pure JS, keeping objects in a temp folder. It checks SigV4 signatures — of requests
 * and of presigned URLs, with their expiry — against its one account, so a tampered or expired
 * download URL is refused as S3 would. What it does not do: refuse unsigned requests (every
 * bucket is public to it), verify `x-amz-checksum-sha256`, or hold ACLs and policies.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from '@20minutes/s3rver';

/** s3rver's one account, hard-coded in the server. */
export const S3RVER_KEY = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  folder: string;
  stop(): Promise<void>;
}

export async function startS3Server(bucket = 'firmware'): Promise<S3TestServer> {
  const folder = await mkdtemp(path.join(tmpdir(), 'firmward-s3rver-'));
  // Path-style only (vhostBuckets off): loopback has no DNS for <bucket>.127.0.0.1.
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: folder, vhostBuckets: false, configureBuckets: [{ name: bucket }] });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    folder,
    stop: async () => {
      await server.close();
      await rm(folder, { recursive: true, force: true });
    },
  };
}
