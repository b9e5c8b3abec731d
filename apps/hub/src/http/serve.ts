/**
 * Puts a Hono app on a TCP port with @hono/node-server. `close()` also ends open event streams,
 * which would otherwise keep the server from closing.
 */
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { FirmwardError } from '@firmward/core';

export interface RunningHttpServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Starts listening; resolves once the port is bound.
 *
 * @example
 * const server = await serveHttp(app, { host: '127.0.0.1', port: 0 });
 * console.log(`listening on ${server.port}`);
 * await server.close();
 */
export function serveHttp(app: Hono, opts: { host: string; port: number }): Promise<RunningHttpServer> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const why = error.code === 'EADDRINUSE'
        ? `port ${opts.port} on ${opts.host} is already in use; pick another with --port`
        : `it could not listen on ${opts.host}:${opts.port} (${error.message})`;
      reject(new FirmwardError('config_invalid', `The hub's web server did not start: ${why}.`, { cause: error }));
    };
    const server = serve({ fetch: app.fetch, hostname: opts.host, port: opts.port }, (info) => {
      server.off('error', onError);
      resolve({
        port: info.port,
        close: () => new Promise<void>((done, fail) => {
          server.close((error) => (error ? fail(error) : done()));
          if ('closeAllConnections' in server) server.closeAllConnections();
        }),
      });
    });
    server.once('error', onError);
  });
}
