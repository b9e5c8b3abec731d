/**
 * Sends a file as the answer to a GET or HEAD, with Range as RFC 9110 §14 has it (byte-ranges.ts
 * decides; this file does the I/O). The bytes go from a 1 MiB-read file stream straight to Node's
 * socket when the request came through @hono/node-server (a web stream in between costs most of
 * the throughput), and through a web stream otherwise (Hono's app.request in tests). Nothing is
 * read into memory beyond the stream's buffer, whatever the file's size or the number of ranges.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { multipartLayout, planRanges } from './byte-ranges.ts';
import type { ByteRange, MultipartLayout } from './byte-ranges.ts';

const READ_BYTES = 1024 * 1024;

export interface FileToSend {
  /** The file on disk: always one the caller chose, never a path taken from the URL. */
  path: string;
  /** Its length in bytes (stat'ed or verified by the caller). */
  size: number;
  /** The Content-Type of the file (and of each part of a multi-range answer). */
  contentType: string;
  /** A strong entity tag, quoted; sent as ETag and compared with If-Range. */
  etag?: string;
  /** Sent as Last-Modified and compared with an If-Range date. */
  lastModified?: Date;
  /** More headers every answer carries (Content-Disposition, …). */
  headers?: Record<string, string>;
  /** Bytes start..end (inclusive) of the file are about to be sent: once per GET that sends any. */
  onSending?: (start: number, end: number) => void;
  /** The file's bytes up to (not including) position `upTo` of the range being sent have gone out. */
  onProgress?: (upTo: number) => void;
}

/**
 * Answers the request in `c` with the file: 200, 206 (one range), 206 multipart/byteranges
 * (several) or 416.
 *
 * @example
 * app.get('/firmware/:id', async (c) => {
 *   const path = await imagePath(c.req.param('id'));
 *   const { size, mtime } = await stat(path);
 *   return sendFile(c, { path, size, lastModified: mtime, contentType: 'application/octet-stream' });
 * });
 */
export async function sendFile(c: Context, file: FileToSend): Promise<Response> {
  const { size } = file;
  const plan = planRanges({ method: c.req.method, range: c.req.header('range'), ifRange: c.req.header('if-range') }, file);
  const headers: Record<string, string> = {
    'Content-Type': file.contentType,
    'Accept-Ranges': 'bytes',
    ...(file.etag !== undefined && { ETag: file.etag }),
    ...(file.lastModified !== undefined && { 'Last-Modified': file.lastModified.toUTCString() }),
    ...file.headers,
  };
  switch (plan.kind) {
    case 'unsatisfiable':
      return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${size}` });
    case 'whole':
    case 'single': {
      const range = plan.kind === 'single' ? plan.range : { start: 0, end: size - 1 };
      if (plan.kind === 'single') headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
      headers['Content-Length'] = String(range.end - range.start + 1);
      const status = plan.kind === 'single' ? 206 : 200;
      if (c.req.method === 'HEAD' || size === 0) return c.body(null, status, headers);
      file.onSending?.(range.start, range.end);
      return stream(c, status, headers, fileRange(file, range));
    }
    case 'multipart': {
      // 128 random bits: the boundary cannot occur in the file (RFC 2046 §5.1.1) but by a chance
      // no device will ever meet.
      const layout = multipartLayout(plan.ranges, size, file.contentType, randomBytes(16).toString('hex'));
      headers['Content-Type'] = layout.contentType;
      headers['Content-Length'] = String(layout.length);
      file.onSending?.(plan.ranges[0]!.start, plan.ranges.at(-1)!.end);
      return stream(c, 206, headers, Readable.from(multipartBody(file, layout), { objectMode: false }));
    }
  }
}

function fileRange(file: FileToSend, range: ByteRange): Readable {
  const bytes = createReadStream(file.path, { start: range.start, end: range.end, highWaterMark: READ_BYTES });
  const onProgress = file.onProgress;
  if (onProgress !== undefined) {
    let sent = range.start;
    bytes.on('data', (chunk) => {
      sent += chunk.length;
      onProgress(sent);
    });
  }
  return bytes;
}

async function* multipartBody(file: FileToSend, layout: MultipartLayout): AsyncGenerator<Buffer> {
  for (const part of layout.parts) {
    yield Buffer.from(part.head);
    let sent = part.range.start;
    for await (const chunk of createReadStream(file.path, { start: part.range.start, end: part.range.end, highWaterMark: READ_BYTES })) {
      const bytes = chunk as Buffer;
      sent += bytes.length;
      file.onProgress?.(sent);
      yield bytes;
    }
  }
  yield Buffer.from(layout.tail);
}

async function stream(c: Context, status: 200 | 206, headers: Record<string, string>, body: Readable): Promise<Response> {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return new Response(Readable.toWeb(body) as ReadableStream<Uint8Array>, { status, headers });
  outgoing.writeHead(status, headers);
  // A client that goes away mid-download resumes later with Range; nothing to report here.
  await pipeline(body, outgoing).catch(() => undefined);
  return RESPONSE_ALREADY_SENT;
}
