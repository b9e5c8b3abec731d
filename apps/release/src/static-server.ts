/**
 * A published folder served as plain static files on an ephemeral loopback port, so `verify` can
 * check a folder exactly as a device checks a CDN: over HTTP, through the real client. GET and HEAD
 * only; nothing outside the folder is reachable.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, sep } from 'node:path';

export interface ServedFolder {
  /** `http://127.0.0.1:<port>` */
  url: string;
  close(): Promise<void>;
}

export async function serveFolder(root: string): Promise<ServedFolder> {
  const server = createServer((request, response) => {
    void (async () => {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405).end();
        return;
      }
      const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
      let segments: string[];
      try {
        segments = pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
      } catch {
        response.writeHead(400).end();
        return;
      }
      if (segments.some((s) => s === '..' || s === '.' || s.includes(sep) || s.includes('\0'))) {
        response.writeHead(400).end();
        return;
      }
      const file = join(root, ...segments);
      const info = await stat(file).catch(() => undefined);
      if (info?.isFile() !== true) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-length': info.size, 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
      if (request.method === 'HEAD') {
        response.end();
        return;
      }
      createReadStream(file).on('error', () => response.destroy()).pipe(response);
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
