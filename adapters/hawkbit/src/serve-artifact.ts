/**
 * Sends an action's artifact the way hawkBit does: Range (one range, several as
 * multipart/byteranges for zchunk delta updates, 416 past the end), HEAD, an ETag of its sha1 and
 * If-Match against it — a client resuming a download after a dropped connection must get the rest
 * of the same file. The file goes straight from disk to the socket (@firmward/http-common).
 */
import type { Context } from 'hono';
import { sendFile } from '@firmward/http-common';
import type { ArtifactDownload } from './gateway.ts';

export async function serveArtifact(c: Context, download: ArtifactDownload, filename: string): Promise<Response> {
  const { size, sha1 } = download.artifact;
  const ifMatch = c.req.header('if-match');
  if (ifMatch !== undefined && !matchesEtag(ifMatch, sha1)) {
    return c.json({ error: { code: 'conflict', message: 'The file changed since the device started downloading it; start the download again.' } }, 412);
  }
  return sendFile(c, {
    path: download.path, size, contentType: 'application/octet-stream', etag: `"${sha1}"`,
    headers: { 'Content-Disposition': `attachment; filename="${filename}"` },
    // The hub hears "downloading" with a percentage as the bytes go out, then "downloaded".
    onSending: (start, end) => download.started(start, end),
    onProgress: (upTo) => download.progressed(upTo),
  });
}

/** `If-Match: "a", W/"b"` or `*`; hawkBit clients also send the sha1 without quotes. */
function matchesEtag(header: string, sha1: string): boolean {
  return header.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')).some((t) => t === '*' || t.toLowerCase() === sha1);
}
