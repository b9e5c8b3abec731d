/**
 * What the real-SWUpdate tests share: the tools they need, a home open all day, the maker's signed
 * repository with one .swu release (built with the release tool), the hub's config with DDI on,
 * and a bounded wait that shows the hub's and the devices' last words when it gives up.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_THRESHOLDS } from '@firmward/core';
import type { Home, Policy } from '@firmward/core';
import { consoleLogger } from '@firmward/ports';
import type { Logger } from '@firmward/ports';
import { loadConfig } from '../apps/hub/src/config.ts';
import type { HubConfig } from '../apps/hub/src/config.ts';
import { publishReleases } from '../apps/hub/src/demo-repository.ts';
import type { PublishedRepository } from '../apps/hub/src/demo-repository.ts';
import type { SwupdateDevice } from './swupdate-device.ts';
import { buildSwu, makeSigner } from './swupdate-image.ts';
import type { Signer } from './swupdate-image.ts';

export const OWNER_TOKEN = 'swupdate-test-owner-token-0123456789';
export const GATEWAY_TOKEN = 'swupdate-test-gateway-token-0123456789';

/** Fails at once, with the install command, when a tool the test drives is missing. */
export function requireTools(): void {
  for (const tool of ['swupdate', 'cpio', 'openssl']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
    } catch {
      assert.fail(`${tool} is not installed: apt-get install -y swupdate cpio openssl (.ci/run does this)`);
    }
  }
}

export function openHome(id: string, policy: Policy = 'automatic'): Home {
  return {
    id, name: id, halt: null,
    settings: {
      timeZone: 'UTC',
      // start == end: open all day, so the test is about the protocol, not about waiting for the night.
      window: { start: '00:00', end: '00:00' },
      learnQuietHours: false, policy, thresholds: DEFAULT_THRESHOLDS,
      soakSeconds: 2, silenceTimeoutSeconds: 120,
    },
  };
}

export interface SignedRelease {
  signer: Signer;
  swu: Buffer;
  repository: PublishedRepository;
}

/** acme/board 1.1.0 for hardware revision 1.0: a signed .swu, in the maker's repository published with the release tool. */
export async function signedRelease(dir: string, image: Buffer): Promise<SignedRelease> {
  const signer = makeSigner(path.join(dir, 'maker'));
  const swu = buildSwu(path.join(dir, 'build'), signer, { version: '1.1.0', hardwareRevisions: ['1.0'], image, slot: 'slot.img' });
  const repository = await publishReleases(path.join(dir, 'repository'), 'acme', [{
    custom: {
      vendor: 'acme', model: 'board', hardwareRevisions: ['1.0'], version: '1.1.0', expectedInstallSeconds: 30,
      recovery: { steps: ['Switch it off at the wall for ten seconds and on again.'] },
    },
    image: swu,
    fileName: 'board-1.1.0.swu',
  }]);
  return { signer, swu, repository };
}

/** The hub's config as a user writes it: a config file with DDI on, loaded like main.ts loads it. */
export function hubConfig(dir: string, o: { repository: { name: string; url: string; root: string }; ddi: Record<string, unknown>; port?: number }): HubConfig {
  const configFile = path.join(dir, 'hub.json');
  writeFileSync(configFile, JSON.stringify({
    repositories: [o.repository],
    ddi: { enabled: true, tenant: 'DEFAULT', gatewayToken: GATEWAY_TOKEN, pollingSleep: '00:00:01', ...o.ddi },
  }));
  return loadConfig({
    argv: ['--config', configFile, '--data-dir', path.join(dir, 'hub'), '--port', String(o.port ?? 0), '--mqtt-port', '0', '--tick-ms', '100'],
    env: {},
    readFile: (file) => readFileSync(file, 'utf8'),
  });
}

/** The hub's log lines, each with the moment it was written (the tests compare them with the proxy's). */
export function hubLog(): { log: Logger; lines: string[]; times: { at: number; line: string }[] } {
  const lines: string[] = [];
  const times: { at: number; line: string }[] = [];
  const log = consoleLogger('info', 'hub', {
    write: (line) => {
      lines.push(line);
      times.push({ at: Date.now(), line });
    },
  });
  return { log, lines, times };
}

/** Waits (polling, bounded) for something the hub and the devices do in their own time. */
export function waiter(lines: string[], devices: () => Iterable<SwupdateDevice>, context: () => string = () => '') {
  return async function until<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, seconds = 90): Promise<T> {
    for (let i = 0; i < seconds * 10; i++) {
      const value = await probe();
      if (value !== null && value !== undefined && value !== false) return value;
      await sleep(100);
    }
    const tails = [...devices()].map((d) => d.tail(15)).join('\n');
    assert.fail(`gave up waiting for ${what}\n--- hub\n${lines.slice(-40).join('\n')}\n--- devices\n${tails}\n${context()}`);
  };
}

/**
 * The maker's published repository over HTTP, as a maker's web server serves it. While `hold` is
 * set every answer waits for it: a slow server, so a starting hub stays in its start-up (its port
 * open, its engine still reading the maker's metadata) until the test has seen what it waits for.
 */
export class RepositoryServer {
  hold: Promise<void> | null = null;
  #server: Server | null = null;
  port = 0;

  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      const file = path.join(this.dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      const answer = () => {
        if (!file.startsWith(this.dir)) return res.writeHead(403).end();
        try {
          const body = readFileSync(file);
          res.writeHead(200, { 'content-length': body.length }).end(body);
        } catch {
          res.writeHead(404).end();
        }
      };
      if (this.hold === null) answer();
      else void this.hold.then(answer);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}/`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
