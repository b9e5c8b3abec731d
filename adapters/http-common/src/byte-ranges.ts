/**
 * What to send for a GET of a file with a `Range` header (RFC 9110 §14): the whole file, one
 * range, several ranges as multipart/byteranges, or 416. Pure: the header, the file's length and
 * its validators in, a decision out; send-file.ts does the I/O. The header itself is parsed by
 * jshttp's range-parser, not by hand.
 */
import { combineRanges, parse } from 'range-parser';

/** Inclusive byte positions, as in Content-Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangePlan =
  /** 200 with the whole file: no Range, a Range this server ignores, or one it declines. */
  | { kind: 'whole'; why: WholeFileReason }
  /** 206 with Content-Range. */
  | { kind: 'single'; range: ByteRange }
  /** 206 multipart/byteranges, the parts in the order asked (RFC 9110 §14.6). */
  | { kind: 'multipart'; ranges: readonly ByteRange[] }
  /** 416 with `Content-Range: bytes *\/size`: no range overlaps the file. */
  | { kind: 'unsatisfiable' };

export type WholeFileReason =
  | 'no-range'
  | 'not-get'
  | 'if-range-failed'
  | 'malformed'
  | 'other-unit'
  | 'empty-file'
  | 'too-many-ranges'
  | 'overlapping';

/**
 * More ranges than this in one request are a broken client or a denial-of-service attempt (RFC 9110
 * §14.2 lets a server ignore them). SWUpdate's zchunk delta updates ask for up to 150 at once.
 */
export const MAX_RANGES = 200;

/** A Range header longer than this is not parsed at all (200 ranges of 20-digit numbers fit). */
export const MAX_RANGE_HEADER_CHARS = 8 * 1024;

export interface RangeRequest {
  method: string;
  /** The Range header, if any. */
  range: string | undefined;
  /** The If-Range header, if any. */
  ifRange: string | undefined;
}

export interface FileValidators {
  /** Length of the file in bytes. */
  size: number;
  /** The file's strong entity tag, quoted (`"abc"`), if it has one. */
  etag?: string | undefined;
  /** When the file last changed, if known (what Last-Modified says). */
  lastModified?: Date | undefined;
}

/**
 * Decides what to answer to a file request.
 *
 * @example
 * planRanges({ method: 'GET', range: 'bytes=0-0,2-2', ifRange: undefined }, { size: 10 });
 * // { kind: 'multipart', ranges: [{ start: 0, end: 0 }, { start: 2, end: 2 }] }
 */
export function planRanges(request: RangeRequest, file: FileValidators): RangePlan {
  if (request.range === undefined) return { kind: 'whole', why: 'no-range' };
  // §14.2: GET is the only method range handling is defined for; a HEAD says what a plain GET would.
  if (request.method !== 'GET') return { kind: 'whole', why: 'not-get' };
  // §13.1.5: a Range made for another version of the file must not be applied to this one.
  if (request.ifRange !== undefined && !ifRangeHolds(request.ifRange, file)) return { kind: 'whole', why: 'if-range-failed' };
  if (request.range.length > MAX_RANGE_HEADER_CHARS) return { kind: 'whole', why: 'too-many-ranges' };
  // Nothing of an empty file can be sent in parts; every client copes with its empty 200.
  if (file.size === 0) return { kind: 'whole', why: 'empty-file' };

  const parsed = parse(file.size, request.range);
  // No "=" at all is malformed; another unit (items=…) is one this server does not have.
  if (parsed.type !== 'bytes') return { kind: 'whole', why: parsed.type === '' ? 'malformed' : 'other-unit' };
  // §14.2 lets a server ignore an invalid ranges-specifier: the whole file, never a guess at what was meant.
  if ((parsed.code & 1) !== 0) return { kind: 'whole', why: 'malformed' };
  if (parsed.ranges.length === 0) return { kind: 'unsatisfiable' };
  if (parsed.ranges.length > MAX_RANGES) return { kind: 'whole', why: 'too-many-ranges' };
  // nginx's rule: ranges that add up to more than the file overlap, and sending the file once is
  // cheaper than sending parts of it again and again (§14.2: overlapping ranges may be ignored).
  const asked = parsed.ranges.reduce((sum, r) => sum + (r.end - r.start + 1), 0);
  if (asked > file.size) return { kind: 'whole', why: 'overlapping' };

  // Adjacent ranges become one part (§14.3 allows coalescing); the parts keep the order asked.
  const ranges = combineRanges(parsed.ranges).map(({ start, end }) => ({ start, end }));
  const only = ranges.length === 1 ? ranges[0] : undefined;
  return only !== undefined ? { kind: 'single', range: only } : { kind: 'multipart', ranges };
}

/**
 * RFC 9110 §13.1.5: an entity tag holds only if it is strong and the same as the file's; a date only
 * if it is exactly the file's Last-Modified. Anything else (a weak tag, a tag the file does not
 * have) fails, and the whole file is sent.
 */
export function ifRangeHolds(ifRange: string, file: FileValidators): boolean {
  const value = ifRange.trim();
  if (value.startsWith('W/')) return false;
  if (value.startsWith('"')) return file.etag !== undefined && value === file.etag;
  if (file.lastModified === undefined) return false;
  const date = Date.parse(value);
  // HTTP dates have whole seconds; Last-Modified was sent rounded down to them.
  return !Number.isNaN(date) && date === Math.floor(file.lastModified.getTime() / 1000) * 1000;
}

/** One part of a multipart/byteranges body: its header block, then bytes start..end of the file. */
export interface MultipartPart {
  head: string;
  range: ByteRange;
}

export interface MultipartLayout {
  /** The Content-Type of the whole answer, with its boundary. */
  contentType: string;
  parts: readonly MultipartPart[];
  /** The closing delimiter. */
  tail: string;
  /** Exactly how many bytes the body has (Content-Length). */
  length: number;
}

/**
 * The body of a multi-range answer, laid out before a byte is read so its Content-Length is exact
 * (RFC 9110 §14.6, RFC 2046 §5.1.1): every part has its own Content-Type and Content-Range.
 *
 * @example
 * const layout = multipartLayout([{ start: 0, end: 0 }, { start: 2, end: 2 }], 10, 'application/octet-stream', 'b0undary');
 * // layout.parts[0].head === '\r\n--b0undary\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes 0-0/10\r\n\r\n'
 */
export function multipartLayout(ranges: readonly ByteRange[], size: number, partType: string, boundary: string): MultipartLayout {
  const parts = ranges.map((range) => ({
    // Every delimiter starts on a new line, the first too (what nginx and Apache send); the body
    // then starts with an empty preamble, which RFC 2046 allows.
    head: `\r\n--${boundary}\r\nContent-Type: ${partType}\r\nContent-Range: bytes ${range.start}-${range.end}/${size}\r\n\r\n`,
    range,
  }));
  const tail = `\r\n--${boundary}--\r\n`;
  const length = parts.reduce((sum, p) => sum + Buffer.byteLength(p.head) + (p.range.end - p.range.start + 1), Buffer.byteLength(tail));
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, tail, length };
}
