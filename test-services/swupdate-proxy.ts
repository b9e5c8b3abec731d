/**
 * A loopback HTTP proxy between the SWUpdate devices and the hub: it forwards every request as it
 * is (Host included, so the hub's links point back at the proxy), records what each device asked
 * for and when it was answered, and plays the network's part for one device or another — a
 * download cut off mid-body once (the device must resume it with Range), or an image tampered
 * with on the way. While the hub is down (refused, or stopped mid-answer) the device's connection
 * drops as it would without the proxy.
 */
import { createServer, request as forward } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tamper } from './swupdate-image.ts';

export interface ProxiedRequest {
  controllerId: string | null;
  method: string;
  /** What was asked for, after `/{tenant}/controller/v1/{id}` (e.g. "deploymentBase/123"). */
  resource: string;
  range: string | null;
  status: number;
  /** Bytes of the body the device actually got. */
  bodyBytes: number;
  /** The proxy cut it off. */
  cut: boolean;
  /** When the proxy got it, and when the hub's answer began (null: the hub never answered; the device's connection dropped). */
  at: number;
  answeredAt: number | null;
  /** The answer ended before all of its body arrived (the hub stopped mid-download). */
  dropped: boolean;
  retryAfter: string | null;
  /** The hub's port was closed (connection refused): the device's connection was dropped at once. */
  refused: boolean;
}

export interface ProxyFaults {
  /** Controllers whose first artifact download is cut off after half of its body. */
  cutOnce: Set<string>;
  /** Controllers whose artifact arrives with two bytes of this image swapped. */
  tamperWith: Map<string, Buffer>;
}

export class DdiProxy {
  readonly log: ProxiedRequest[] = [];
  readonly faults: ProxyFaults = { cutOnce: new Set(), tamperWith: new Map() };
  /** Where the hub listens; a restarted hub comes back on another port. */
  hubPort: number;
  #server: Server | null = null;
  port = 0;

  readonly #pace: number | null;

  /**
   * `artifactBytesPerSecond`: images go to the device no faster than this, paced here rather than
   * by the device's reading — loopback socket buffers take many MiB at once, so a device's own speed
   * limit alone cannot say how far a download got when the hub stops.
   */
  constructor(hubPort: number, o: { artifactBytesPerSecond?: number } = {}) {
    this.hubPort = hubPort;
    this.#pace = o.artifactBytesPerSecond ?? null;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => this.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  requestsOf(controllerId: string): ProxiedRequest[] {
    return this.log.filter((r) => r.controllerId === controllerId);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const m = /^\/[^/]+\/controller\/v1\/([^/?]+)\/?([^?]*)/.exec(req.url ?? '');
    const entry: ProxiedRequest = {
      controllerId: m?.[1] ?? null, method: req.method ?? 'GET', resource: m?.[2] ?? '', range: req.headers.range ?? null, status: 0, bodyBytes: 0, cut: false,
      at: Date.now(), answeredAt: null, dropped: false, retryAfter: null, refused: false,
    };
    this.log.push(entry);
    const artifactGet = entry.method === 'GET' && entry.resource.includes('/artifacts/');
    const cut = artifactGet && entry.controllerId !== null && this.faults.cutOnce.delete(entry.controllerId);
    const tamperImage = artifactGet && entry.controllerId !== null ? this.faults.tamperWith.get(entry.controllerId) : undefined;
    const upstream = forward({ host: '127.0.0.1', port: this.hubPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      entry.status = answer.statusCode ?? 0;
      entry.answeredAt = Date.now();
      const retryAfter = answer.headers['retry-after'];
      entry.retryAfter = typeof retryAfter === 'string' ? retryAfter : null;
      if (tamperImage !== undefined && entry.status === 200) {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const body = tamper(Buffer.concat(chunks), tamperImage);
          entry.bodyBytes = body.length;
          res.writeHead(200, answer.headers);
          res.end(body);
        });
        return;
      }
      res.writeHead(entry.status, answer.headers);
      const length = Number(answer.headers['content-length'] ?? 0);
      answer.on('data', (c: Buffer) => {
        if (entry.cut) return;
        if (cut && entry.bodyBytes + c.length >= length / 2) {
          // The connection drops mid-body: the device got half, and the headers promised all.
          const part = c.subarray(0, Math.max(0, Math.floor(length / 2) - entry.bodyBytes));
          entry.bodyBytes += part.length;
          entry.cut = true;
          res.write(part, () => res.socket?.destroy());
          answer.destroy();
          return;
        }
        if (artifactGet && this.#pace !== null) {
          // Paced here: the piece goes out, and the next waits as long as the link would take for it.
          answer.pause();
          entry.bodyBytes += c.length;
          res.write(c);
          setTimeout(() => answer.resume(), (c.length / this.#pace) * 1000);
          return;
        }
        entry.bodyBytes += c.length;
        // Paced by the device: the hub sends no faster than the device reads (a network, not a buffer).
        if (!res.write(c)) {
          answer.pause();
          res.once('drain', () => answer.resume());
        }
      });
      answer.on('end', () => {
        if (!entry.cut) res.end();
      });
      // The hub went away mid-answer: the device's connection drops too, as it would without the proxy.
      answer.on('close', () => {
        if (answer.complete || entry.cut) return;
        entry.dropped = true;
        res.destroy();
      });
    });
    upstream.on('error', () => {
      if (entry.answeredAt === null) entry.refused = true;
      res.destroy();
    });
    req.pipe(upstream);
  }
}
