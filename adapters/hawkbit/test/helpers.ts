/**
 * The DDI gateway on a real loopback HTTP server, a scripted DDI client that speaks like
 * SWUpdate's suricatta, and a handler that records what the hub would hear.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { EpochMs } from '@firmward/core';
import { ManualClock, silentLogger } from '@firmward/ports';
import type { BridgeHandler, DiscoveredDevice } from '@firmward/ports';
import type { DeviceEvent, DeviceState, OfferCommand } from '@firmward/protocol';
import { createDdiGateway } from '../src/create.ts';
import type { CreateDdiGatewayOptions } from '../src/create.ts';
import { MemoryDdiCredentials } from '../src/credentials.ts';
import type { DdiGateway } from '../src/gateway.ts';
import type { CancelAnswer, DeploymentAnswer, PollAnswer } from '../src/wire.ts';

export const TENANT = 'DEFAULT';
export const GATEWAY_TOKEN = 'gateway-token-for-tests-0123456789';

export type HandlerCall =
  | { kind: 'discovered'; device: DiscoveredDevice; at: EpochMs }
  | { kind: 'state'; deviceId: string; state: DeviceState; at: EpochMs }
  | { kind: 'availability'; deviceId: string; online: boolean; at: EpochMs }
  | { kind: 'event'; deviceId: string; event: DeviceEvent; at: EpochMs }
  | { kind: 'rejected'; deviceId: string | null; error: string };

/** What the hub would hear, in order. */
export class RecordingHandler implements BridgeHandler {
  readonly calls: HandlerCall[] = [];

  onDiscovered(device: DiscoveredDevice, at: EpochMs): Promise<void> {
    this.calls.push({ kind: 'discovered', device, at });
    return Promise.resolve();
  }
  onState(deviceId: string, state: DeviceState, at: EpochMs): Promise<void> {
    this.calls.push({ kind: 'state', deviceId, state, at });
    return Promise.resolve();
  }
  onAvailability(deviceId: string, online: boolean, at: EpochMs): Promise<void> {
    this.calls.push({ kind: 'availability', deviceId, online, at });
    return Promise.resolve();
  }
  onEvent(deviceId: string, event: DeviceEvent, at: EpochMs): Promise<void> {
    this.calls.push({ kind: 'event', deviceId, event, at });
    return Promise.resolve();
  }
  onRejected(info: { deviceId: string | null; topic: string; error: string; at: EpochMs }): void {
    this.calls.push({ kind: 'rejected', deviceId: info.deviceId, error: info.error });
  }

  events(deviceId?: string): DeviceEvent[] {
    return this.calls.flatMap((c) => (c.kind === 'event' && (deviceId === undefined || c.deviceId === deviceId) ? [c.event] : []));
  }

  /** Events in a short form: "ack", "progress downloading 40", "result installed 1.1.0". */
  brief(deviceId?: string): string[] {
    return this.events(deviceId).map((e) => {
      switch (e.type) {
        case 'ack': return e.accepted ? 'ack' : `ack refused ${e.code ?? ''}`;
        case 'progress': return `progress ${e.phase} ${e.percent ?? '-'}`;
        case 'result': return `result ${e.outcome} ${e.firmwareVersion}`;
      }
    });
  }

  clear(): void {
    this.calls.length = 0;
  }
}

/** Lets queued deliveries run (they are chained promises and I/O callbacks); bounded, never timed. */
export async function settle(until?: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    await new Promise<void>((r) => setImmediate(r));
    if (until?.() === true) return;
  }
  if (until !== undefined && !until()) throw new Error('the expected delivery never came');
}

export interface Harness {
  gateway: DdiGateway;
  handler: RecordingHandler;
  credentials: MemoryDdiCredentials;
  clock: ManualClock;
  baseUrl: string;
  image: { path: string; bytes: Buffer; sha1: string; md5: string; sha256: string };
  offer(jobId: string, overrides?: Partial<OfferCommand>): OfferCommand;
  client(controllerId: string, authorization?: string | null): DdiClient;
  close(): Promise<void>;
}

export const IMAGE_BYTES = 50_000;

/** The gateway's routes served on 127.0.0.1 (a free port) with a fresh image in a temp folder. */
export async function startHarness(overrides: Partial<CreateDdiGatewayOptions> = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'firmward-ddi-'));
  const bytes = randomBytes(IMAGE_BYTES);
  const imageFile = path.join(dir, 'gw-1.1.0.swu');
  writeFileSync(imageFile, bytes);
  const digest = (alg: string) => createHash(alg).update(bytes).digest('hex');
  const image = { path: imageFile, bytes, sha1: digest('sha1'), md5: digest('md5'), sha256: digest('sha256') };
  const clock = new ManualClock(Date.UTC(2026, 10, 27, 2, 0));
  const credentials = new MemoryDdiCredentials();
  const handler = new RecordingHandler();
  const { gateway, routes } = createDdiGateway({
    tenant: TENANT, gatewayToken: GATEWAY_TOKEN, autoRegister: {}, credentials, clock, logger: silentLogger,
    imagePath: (releaseId) => Promise.resolve(releaseId === 'acme/gw/1.1.0' ? imageFile : null),
    maxBodyBytes: 4096,
    ...overrides,
  });
  const app = new Hono();
  app.route('/', routes);
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await gateway.start(handler);
  return {
    gateway, handler, credentials, clock, baseUrl, image,
    offer: (jobId, o = {}) => ({
      v: 1, type: 'offer', jobId, releaseId: 'acme/gw/1.1.0', vendor: 'acme', model: 'gw', hardwareRevisions: ['1.0'], version: '1.1.0',
      applicableFrom: null, applicableTo: null, image: { url: `${baseUrl}/firmware/acme%2Fgw%2F1.1.0`, lengthBytes: IMAGE_BYTES, sha256: image.sha256 },
      expectedInstallSeconds: 60, ...o,
    }),
    client: (controllerId, authorization = `GatewayToken ${GATEWAY_TOKEN}`) => new DdiClient(baseUrl, controllerId, authorization),
    close: async () => {
      await gateway.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Any DDI answer, typed as all of them at once: a test reads the fields it expects to be there. */
export type AnswerJson = PollAnswer & DeploymentAnswer & CancelAnswer & { error: { code: string; message: string } };

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: AnswerJson;
}

/** A scripted DDI client: the requests SWUpdate's suricatta makes, in the shapes it makes them. */
export class DdiClient {
  readonly base: string;
  readonly #authorization: string | null;

  constructor(baseUrl: string, controllerId: string, authorization: string | null, tenant = TENANT) {
    this.base = `${baseUrl}/${tenant}/controller/v1/${controllerId}`;
    this.#authorization = authorization;
  }

  async request(method: string, url: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.#authorization !== null) headers['authorization'] = this.#authorization;
    if (init.body !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(url, { method, headers, ...(init.body !== undefined && { body: init.body }) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    // Read as the test expects; a missing field fails the test's assertion.
    return { status: res.status, headers: res.headers, text, json: json as AnswerJson };
  }

  poll(): Promise<Answer> {
    return this.request('GET', this.base);
  }

  get(href: string, headers: Record<string, string> = {}): Promise<Answer> {
    return this.request('GET', href, { headers });
  }

  /** SWUpdate's feedback body: `id` and `time` besides the status, which hawkBit ignores. */
  feedback(actionId: number, execution: string, finished: string, progress: { cnt: number; of: number } = { cnt: 0, of: 0 }, details: string[] = []): Promise<Answer> {
    const body = { id: actionId, time: '20261127T020000', status: { result: { progress, finished }, execution, details } };
    return this.request('POST', `${this.base}/deploymentBase/${actionId}/feedback`, { body: JSON.stringify(body) });
  }

  cancelFeedback(actionId: number, execution: string, finished: string): Promise<Answer> {
    const body = { id: actionId, time: '20261127T020000', status: { result: { finished }, execution, details: [] } };
    return this.request('POST', `${this.base}/cancelAction/${actionId}/feedback`, { body: JSON.stringify(body) });
  }

  configData(data: Record<string, string>, mode?: string): Promise<Answer> {
    // SWUpdate sends no mode, and an empty id, a time and a status besides the data.
    const body = { id: '', time: '20261127T020000', status: { result: { finished: 'success' }, execution: 'closed', details: [''] }, data, ...(mode !== undefined && { mode }) };
    return this.request('PUT', `${this.base}/configData`, { body: JSON.stringify(body) });
  }
}

/** Attributes a SWUpdate `identify` section would send for our test device. */
export const IDENTITY = { vendor: 'acme', model: 'gw', hardwareRevision: '1.0', firmwareVersion: '1.0.0' } as const;
