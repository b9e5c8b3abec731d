/**
 * A hub's enrollment routes and nothing else, on 127.0.0.1, for the agent's tests: the contract of
 * packages/protocol/src/enrollment.ts with its own schemas on both sides. What the agent sends is
 * checked (anything off the contract is answered 400 and kept in `violations`, which a test
 * expects empty); what the fake answers is parsed with the shared schemas before it is sent.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateDeviceSecret } from '@firmward/mqtt';
import {
  enrollmentClaimAnswerSchema, enrollmentClaimSchema, enrollmentStatusSchema, normalizeEnrollmentCode,
} from '@firmward/protocol';
import type { BrokerAddress, EnrollmentClaim, EnrollmentStatus } from '@firmward/protocol';

export interface FakeClaim {
  claimId: string;
  secret: string;
  homeId: string;
  claim: EnrollmentClaim;
  state: 'waiting' | 'approved' | 'rejected';
  message: string;
  /** GETs answered for it. */
  polls: number;
}

export interface FakeHubOptions {
  homes: Record<string, string>;
  /** Canonical code → home id; each works once. */
  codes: Record<string, string>;
  broker: BrokerAddress;
  pollAfterSeconds?: number;
  /** Called when the owner approves (e.g. to let the secret into a broker). */
  onApproved?: (claim: FakeClaim) => void | Promise<void>;
}

export interface InjectedFailure {
  status: number;
  code: string;
  message: string;
  retryAfter?: string;
}

export class FakeEnrollmentHub {
  readonly options: FakeHubOptions;
  readonly claims = new Map<string, FakeClaim>();
  readonly violations: string[] = [];
  /** Every request: method, path, status answered. */
  readonly requests: { method: string; path: string; status: number }[] = [];
  /** Answered to the next requests instead of the real answer, in order. */
  readonly failNext: InjectedFailure[] = [];
  #server: Server | null = null;
  #port = 0;
  #next = 1;

  constructor(options: FakeHubOptions) {
    this.options = options;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }
  get posts(): number {
    return this.requests.filter((r) => r.method === 'POST').length;
  }
  get gets(): number {
    return this.requests.filter((r) => r.method === 'GET').length;
  }

  /** Listens on `port` (0: any free one); the same port again after `stop()` ("the hub is back"). */
  async start(port = this.#port): Promise<number> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((error: unknown) => {
        this.violations.push(`the fake hub failed: ${String(error)}`);
        res.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    return this.#port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async approve(claimId: string, message = 'The owner approved this device.'): Promise<void> {
    const claim = this.#claim(claimId);
    claim.state = 'approved';
    claim.message = message;
    await this.options.onApproved?.(claim);
  }

  reject(claimId: string, message = 'The owner turned this device down.'): void {
    const claim = this.#claim(claimId);
    claim.state = 'rejected';
    claim.message = message;
  }

  /** The one claim made so far (most tests make one). */
  only(): FakeClaim {
    const all = [...this.claims.values()];
    if (all.length !== 1) throw new Error(`expected one claim, there are ${all.length}`);
    return all[0]!;
  }

  #claim(claimId: string): FakeClaim {
    const claim = this.claims.get(claimId);
    if (!claim) throw new Error(`no claim ${claimId}`);
    return claim;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const method = req.method ?? 'GET';
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.requests.push({ method, path, status });
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}) => send(status, { error: { code, message } }, headers);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const injected = this.failNext.shift();
    if (injected) {
      error(injected.status, injected.code, injected.message, injected.retryAfter === undefined ? {} : { 'retry-after': injected.retryAfter });
      return;
    }

    if (method === 'POST' && path === '/enroll/v1/claims') {
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) this.violations.push(`POST without a JSON content type: ${req.headers['content-type']}`);
      let json: unknown;
      try {
        json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        this.violations.push('POST body is not JSON');
        return error(400, 'invalid_input', 'The request is not JSON.');
      }
      const parsed = enrollmentClaimSchema.safeParse(json);
      if (!parsed.success) {
        this.violations.push(`POST body off the contract: ${parsed.error.message}`);
        return error(400, 'invalid_input', 'The request does not follow the enrollment contract.');
      }
      const body = parsed.data;
      const code = normalizeEnrollmentCode(body.code);
      const homeId = code === null ? undefined : this.options.codes[code];
      if (code === null || homeId === undefined) return error(400, 'enrollment_invalid', 'This code is wrong, expired or already used; ask for a new one on the hub.');
      if (body.homeId !== undefined && body.homeId !== homeId) return error(400, 'enrollment_wrong_home', `This code is for another home than ${body.homeId}.`);
      if ([...this.claims.values()].some((c) => c.claim.device.id === body.device.id && c.state !== 'rejected')) {
        delete this.options.codes[code];
        return error(409, 'conflict', `A device called ${body.device.id} is already in this hub or waiting for approval.`);
      }
      delete this.options.codes[code];
      const claim: FakeClaim = {
        claimId: `claim-${this.#next++}`, secret: generateDeviceSecret(), homeId, claim: body, state: 'waiting', message: 'Waiting for the owner.', polls: 0,
      };
      this.claims.set(claim.claimId, claim);
      return send(202, enrollmentClaimAnswerSchema.parse({
        claimId: claim.claimId, deviceId: body.device.id, homeId, homeName: this.options.homes[homeId] ?? '', secret: claim.secret,
        broker: this.options.broker, pollAfterSeconds: this.options.pollAfterSeconds ?? 1,
      }));
    }

    const m = /^\/enroll\/v1\/claims\/([^/]+)$/.exec(path);
    if (method === 'GET' && m) {
      const claim = this.claims.get(decodeURIComponent(m[1]!));
      if (!claim) return error(404, 'not_found', 'There is no such enrollment request (any more).');
      if (req.headers.authorization !== `Bearer ${claim.secret}`) {
        this.violations.push(`GET ${path} without the claim's secret: ${req.headers.authorization}`);
        return error(401, 'unauthorized', 'This request needs the secret the hub issued with it.');
      }
      claim.polls++;
      const status: EnrollmentStatus = claim.state === 'waiting'
        ? { state: 'waiting', message: claim.message, pollAfterSeconds: this.options.pollAfterSeconds ?? 1 }
        : claim.state === 'approved'
          ? { state: 'approved', message: claim.message, deviceId: claim.claim.device.id, homeId: claim.homeId, broker: this.options.broker }
          : { state: 'rejected', message: claim.message };
      return send(200, enrollmentStatusSchema.parse(status));
    }
    this.violations.push(`unexpected ${method} ${path}`);
    return error(404, 'not_found', 'No such route.');
  }
}
