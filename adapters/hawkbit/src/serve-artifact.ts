/**
 * Sends an action's artifact the way hawkBit does: Range (206 with Content-Range, 416 past the
 * end), HEAD, an ETag of its sha1 and If-Match against it — a client resuming a download after a
 * dropped connection must get the rest of the same file. The file goes straight from a 1 MiB-read
 * file stream to the socket (a web stream in between costs most of the throughput).
 */
import { createReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import parseRange from 'range-parser';
import type { ArtifactDownload } from './gateway.ts';

const READ_BYTES = 1024 * 1024;

export async function serveArtifact(c: Context, download: ArtifactDownload, filename: string): Promise<Response> {
  const { size, sha1 } = download.artifact;
  const headers: Record<string, string> = {
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${sha1}"`,
    'Content-Disposition': `attachment; filename="${filename}"`,
  };
  const ifMatch = c.req.header('if-match');
  if (ifMatch !== undefined && !matchesEtag(ifMatch, sha1)) {
    return c.json({ error: { code: 'conflict', message: 'The file changed since the device started downloading it; start the download again.' } }, 412);
  }
  let start = 0;
  let end = size - 1;
  let status: 200 | 206 = 200;
  const range = c.req.header('range');
  if (range !== undefined) {
    const ranges = parseRange(size, range, { combine: true });
    if (ranges === -1) {
      return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${size}` });
    }
    // A malformed header, another unit or several ranges: the whole file, as RFC 9110 allows.
    const only = ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1 ? ranges[0] : undefined;
    if (only) {
      start = only.start;
      end = only.end;
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
  }
  headers['Content-Length'] = String(end - start + 1);
  if (c.req.method === 'HEAD') return c.body(null, status, headers);

  // The hub hears "downloading" with a percentage as the bytes go out, then "downloaded".
  download.started(start, end);
  const file = createReadStream(download.path, { start, end, highWaterMark: READ_BYTES });
  let sent = start;
  file.on('data', (chunk) => {
    sent += chunk.length;
    download.progressed(sent);
  });
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return new Response(Readable.toWeb(file) as ReadableStream<Uint8Array>, { status, headers });
  outgoing.writeHead(status, headers);
  // A device that goes away mid-download resumes later with Range; nothing to report here.
  await pipeline(file, outgoing).catch(() => undefined);
  return RESPONSE_ALREADY_SENT;
}

/** `If-Match: "a", W/"b"` or `*`; hawkBit clients also send the sha1 without quotes. */
function matchesEtag(header: string, sha1: string): boolean {
  return header.split(',').map((t) => t.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1')).some((t) => t === '*' || t.toLowerCase() === sha1);
}
