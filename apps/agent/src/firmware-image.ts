/**
 * The image format of simulated and test devices: a one-line header naming vendor, model and
 * version, then filler bytes. The simulated bootloader reads the header the way a real one finds
 * a kernel; a slot whose header does not read does not boot.
 */
import { FirmwardError } from '@firmward/core';

export interface FirmwareHeader {
  vendor: string;
  model: string;
  version: string;
}

const MAGIC = 'FWSIM1 ';
const MAX_HEADER_BYTES = 1024;

/**
 * A deterministic image of exactly `totalBytes` bytes (same arguments, same bytes, same hash).
 *
 * @example
 * const image = buildFirmwareImage({ vendor: 'Acme', model: 'Plug', version: '1.1.0' }, 256 * 1024);
 */
export function buildFirmwareImage(header: FirmwareHeader, totalBytes: number, seed = 1): Uint8Array {
  const head = new TextEncoder().encode(`${MAGIC}${JSON.stringify(header)}\n`);
  if (head.byteLength > MAX_HEADER_BYTES || totalBytes < head.byteLength) {
    throw new FirmwardError('invalid_input', `An image of ${totalBytes} bytes cannot hold its ${head.byteLength}-byte header.`);
  }
  const image = new Uint8Array(totalBytes);
  image.set(head, 0);
  // xorshift32 seeded by the seed and the version, so two versions never share their filler.
  let x = (seed ^ hashText(header.version)) >>> 0 || 0x9e3779b9;
  for (let i = head.byteLength; i < totalBytes; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    image[i] = x & 0xff;
  }
  return image;
}

/** The header of an image, or null when the bytes do not start with a readable one. */
export function readFirmwareHeader(bytes: Uint8Array): FirmwareHeader | null {
  const window = bytes.subarray(0, Math.min(bytes.byteLength, MAX_HEADER_BYTES));
  const end = window.indexOf(0x0a);
  if (end < 0) return null;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(window.subarray(0, end));
  } catch {
    return null;
  }
  if (!text.startsWith(MAGIC)) return null;
  try {
    const parsed: unknown = JSON.parse(text.slice(MAGIC.length));
    if (typeof parsed !== 'object' || parsed === null) return null;
    const { vendor, model, version } = parsed as Record<string, unknown>;
    if (typeof vendor !== 'string' || typeof model !== 'string' || typeof version !== 'string' || version.length === 0) return null;
    return { vendor, model, version };
  } catch {
    return null;
  }
}

function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
