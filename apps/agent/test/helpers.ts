/**
 * Test fixtures for the agent: a tiny image server on 127.0.0.1 with Range support and switchable
 * misbehaviour, devices on the in-memory platform, and offers built from real image bytes.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROTOCOL_VERSION } from '@firmward/protocol';
import type { OfferCommand } from '@firmward/protocol';
import { buildFirmwareImage, MemoryHardware } from '../src/index.ts';
import type { DeviceIdentity, FirmwareHeader } from '../src/index.ts';

export interface ServerBehaviour {
  /** Answer every request with 200 and the whole body, as if Range were unknown. */
  ignoreRange: boolean;
  /** Bytes appended after the image (a server with a different, longer file). */
  extraBytes: number;
  /** Send no Content-Length (chunked), so only the stream bound can catch a wrong size. */
  chunked: boolean;
  /** Flip one bit of the byte at this offset. */
  flipByteAt: number | null;
  /** Hold the response after this many body bytes until `release()` (or the client goes away). */
  holdAfterBytes: number | null;
  /** Cut the connection after this many body bytes, once. */
  dropAfterBytes: number | null;
  /** Answer this many next requests with 503. */
  failNext: number;
}

export interface ImageServer {
  url(path: string): string;
  behaviour: ServerBehaviour;
  /** Every request: the path and the Range header it carried, and the status answered. */
  requests: { path: string; range: string | null; status: number }[];
  /** Lets held responses go on. */
  release(): void;
  /** Resolves once a response is being held. */
  held(): Promise<void>;
  close(): Promise<void>;
}

const PIECE_BYTES = 4096;

export async function startImageServer(images: Record<string, Uint8Array>): Promise<ImageServer> {
  const behaviour: ServerBehaviour = {
    ignoreRange: false, extraBytes: 0, chunked: false, flipByteAt: null, holdAfterBytes: null, dropAfterBytes: null, failNext: 0,
  };
  const requests: ImageServer['requests'] = [];
  let releaseHeld: () => void = () => undefined;
  let released = new Promise<void>((resolve) => { releaseHeld = resolve; });
  let onHeld: () => void = () => undefined;
  let heldPromise = new Promise<void>((resolve) => { onHeld = resolve; });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const range = req.headers.range ?? null;
    const image = images[path];
    if (behaviour.failNext > 0) {
      behaviour.failNext--;
      requests.push({ path, range, status: 503 });
      res.writeHead(503).end();
      return;
    }
    if (!image) {
      requests.push({ path, range, status: 404 });
      res.writeHead(404).end();
      return;
    }
    let body = new Uint8Array(image.byteLength + behaviour.extraBytes);
    body.set(image);
    body.fill(0x5a, image.byteLength);
    if (behaviour.flipByteAt !== null) body[behaviour.flipByteAt] = (body[behaviour.flipByteAt] ?? 0) ^ 0x01;
    let status = 200;
    const headers: Record<string, string> = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    const m = range && !behaviour.ignoreRange ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      const start = Number(m[1]);
      if (start >= body.byteLength) {
        requests.push({ path, range, status: 416 });
        res.writeHead(416, { 'content-range': `bytes */${body.byteLength}` }).end();
        return;
      }
      headers['content-range'] = `bytes ${start}-${body.byteLength - 1}/${body.byteLength}`;
      body = body.subarray(start);
      status = 206;
    }
    if (!behaviour.chunked) headers['content-length'] = String(body.byteLength);
    requests.push({ path, range, status });
    res.writeHead(status, headers);
    let closed = false;
    res.on('close', () => { closed = true; });
    const dropAt = behaviour.dropAfterBytes;
    behaviour.dropAfterBytes = null;
    for (let sent = 0; sent < body.byteLength && !closed; sent += PIECE_BYTES) {
      if (dropAt !== null && sent >= dropAt) {
        // Let the client take in what was sent, then cut the connection.
        await new Promise((resolve) => setTimeout(resolve, 20));
        res.destroy();
        return;
      }
      if (behaviour.holdAfterBytes !== null && sent >= behaviour.holdAfterBytes) {
        onHeld();
        await Promise.race([released, new Promise<void>((resolve) => res.once('close', resolve))]);
        if (closed) return;
      }
      const piece = body.subarray(sent, Math.min(sent + PIECE_BYTES, body.byteLength));
      if (!res.write(piece)) await new Promise<void>((resolve) => res.once('drain', resolve));
    }
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    behaviour,
    requests,
    release() {
      behaviour.holdAfterBytes = null;
      releaseHeld();
      released = new Promise<void>((resolve) => { releaseHeld = resolve; });
      heldPromise = new Promise<void>((resolve) => { onHeld = resolve; });
    },
    held: () => heldPromise,
    close: () => new Promise<void>((resolve) => {
      releaseHeld();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export const IDENTITY: DeviceIdentity = { deviceId: 'plug-1', vendor: 'Acme', model: 'Plug', hardwareRevision: 'rev2' };
export const IMAGE_BYTES = 64 * 1024;

export function image(version: string, identity: DeviceIdentity = IDENTITY, bytes = IMAGE_BYTES): Uint8Array {
  const header: FirmwareHeader = { vendor: identity.vendor, model: identity.model, version };
  return buildFirmwareImage(header, bytes);
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function newHardware(options: { version?: string; identity?: DeviceIdentity; imageStarts?: (h: FirmwareHeader) => boolean } = {}): MemoryHardware {
  const identity = options.identity ?? IDENTITY;
  const hardware = new MemoryHardware({
    identity,
    slotCapacityBytes: 256 * 1024,
    factoryImage: image(options.version ?? '1.0.0', identity),
    ...(options.imageStarts ? { imageStarts: options.imageStarts } : {}),
  });
  hardware.powerOn();
  return hardware;
}

export function offerFor(bytes: Uint8Array, url: string, overrides: Partial<OfferCommand> = {}): OfferCommand {
  return {
    v: PROTOCOL_VERSION,
    type: 'offer',
    jobId: 'job-1',
    releaseId: 'Acme/Plug/1.1.0',
    vendor: IDENTITY.vendor,
    model: IDENTITY.model,
    hardwareRevisions: ['rev1', 'rev2'],
    version: '1.1.0',
    applicableFrom: '1.0.0',
    applicableTo: null,
    image: { url, lengthBytes: bytes.byteLength, sha256: sha256(bytes) },
    expectedInstallSeconds: 60,
    ...overrides,
  };
}

/** Resolves once the hardware has booted again (after the agent asked for a restart). */
export function nextBoot(hardware: MemoryHardware): Promise<void> {
  return new Promise((resolve) => {
    const off = hardware.onBoot(() => {
      off();
      resolve();
    });
  });
}
