/**
 * The DDI resources over HTTP, as a Hono sub-app for the hub's own app: parse, call the gateway,
 * answer. Nothing here decides anything about updates; FirmwardError codes become statuses only in
 * `statusOf` (STYLE principle 8). Paths and shapes follow hawkBit's DDI API v1, base
 * `/{tenant}/controller/v1/{controllerId}`.
 */
import { Hono } from 'hono';
import type { Context as HonoContext, Env } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { FirmwardError } from '@firmward/core';
import type { z } from 'zod';
import { parseActionId } from './action-id.ts';
import type { DdiGateway } from './gateway.ts';
import { serveArtifact } from './serve-artifact.ts';
import { configDataSchema, describeIssues, feedbackSchema } from './wire.ts';
import type { CancelAnswer, DeploymentAnswer, PollAnswer } from './wire.ts';

export interface DdiRoutesOptions {
  /** Larger feedback or configData bodies are refused with 413 before they are read; default 64 KiB. */
  maxBodyBytes?: number;
  /** The address devices reach the hub at, for the links in answers; default: the address the request was sent to. */
  publicUrl?: string;
  /** Told about every 500, so the hub can log what the device is not shown. */
  onInternalError?: (error: unknown) => void;
}

const BASE = '/:tenant/controller/v1/:controllerId';
const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** What a device is told to wait while the gateway is not running (the hub's own start-up gate says the same). */
const RETRY_AFTER_SECONDS = 5;

type Context = HonoContext<Env, string>;

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** The edge's mapping; anything without an entry is the hub's own fault. */
function statusOf(error: FirmwardError): ContentfulStatusCode | null {
  switch (error.code) {
    case 'invalid_input': return 400;
    case 'unauthorized': return 401;
    case 'not_found': return 404;
    // hawkBit answers feedback for a closed action with 410 Gone.
    case 'conflict': return error.detail?.['gone'] === true ? 410 : 409;
    case 'payload_too_large': return 413;
    // The gateway is not running (the hub starts or stops): SWUpdate asks again at its next poll or retry.
    case 'not_ready': return 503;
    case 'image_unavailable': return 404;
    // The hub will not hand out an image that does not verify (invariant 4); it may be fixed later.
    case 'image_length_mismatch':
    case 'image_hash_mismatch': return 503;
    default: return null;
  }
}

/**
 * The DDI sub-app. Mount it on the hub's app with `app.route('/', routes)`.
 *
 * @example
 * const routes = createDdiRoutes(gateway, { maxBodyBytes: 65536 });
 * app.route('/', routes);
 */
export function createDdiRoutes(gateway: DdiGateway, opts: DdiRoutesOptions = {}): Hono {
  const app = new Hono();
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const fail = (c: Context, error: unknown): Response => {
    if (error instanceof FirmwardError) {
      const status = statusOf(error);
      if (status !== null) {
        if (status === 401) c.header('WWW-Authenticate', 'TargetToken, GatewayToken');
        if (status === 503 && error.code === 'not_ready') c.header('Retry-After', String(RETRY_AFTER_SECONDS));
        return c.json(errorBody(error.code, error.message), status);
      }
    }
    opts.onInternalError?.(error);
    return c.json(errorBody('internal', 'Something went wrong inside the hub; the details are in its log.'), 500);
  };
  /** Every DDI handler: the caller must be let in first; errors become answers here. */
  const handle = (fn: (c: Context, deviceId: string) => Promise<Response>) => async (c: Context): Promise<Response> => {
    try {
      const deviceId = await gateway.authenticate(c.req.param('tenant') ?? '', c.req.param('controllerId') ?? '', c.req.header('authorization'));
      return await fn(c, deviceId);
    } catch (error) {
      return fail(c, error);
    }
  };
  const base = (c: Context): string => {
    const origin = opts.publicUrl?.replace(/\/+$/, '') ?? new URL(c.req.url).origin;
    return `${origin}/${encodeURIComponent(c.req.param('tenant') ?? '')}/controller/v1/${encodeURIComponent(c.req.param('controllerId') ?? '')}`;
  };
  const actionId = (c: Context): number => {
    const id = parseActionId(c.req.param('actionId') ?? '');
    if (id === null) throw new FirmwardError('not_found', 'The hub has no update with this id for this device.');
    return id;
  };
  // Refuse oversized bodies before anything reads them (principle 9).
  const limit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) => c.json(errorBody('payload_too_large', `The request body is larger than the hub accepts (${maxBodyBytes} bytes).`), 413),
  });

  app.get(BASE, handle((c, deviceId) => {
    const view = gateway.poll(deviceId);
    const at = base(c);
    const answer: PollAnswer = { config: { polling: { sleep: view.sleep } }, _links: {} };
    // At most one of cancelAction / deploymentBase: SWUpdate reads cancelAction first.
    if (view.cancelAction) answer._links.cancelAction = { href: `${at}/cancelAction/${view.cancelAction.actionId}` };
    if (view.deploymentBase) answer._links.deploymentBase = { href: `${at}/deploymentBase/${view.deploymentBase.actionId}?c=${view.deploymentBase.cacheBuster}` };
    // Only when the hub wants attributes: SWUpdate sends them instead of installing while the link is there.
    if (view.configData) answer._links.configData = { href: `${at}/configData` };
    return Promise.resolve(c.json(answer));
  }));

  app.get(`${BASE}/deploymentBase/:actionId`, handle((c, deviceId) => {
    const d = gateway.deployment(deviceId, actionId(c));
    const download = { href: `${base(c)}/softwaremodules/${d.actionId}/artifacts/${encodeURIComponent(d.filename)}` };
    const answer: DeploymentAnswer = {
      id: String(d.actionId),
      deployment: {
        // The hub shows the action only once every check passed and it is this home's turn.
        download: 'forced',
        update: 'forced',
        chunks: [{
          part: 'os', version: d.version, name: d.name,
          artifacts: [{
            filename: d.filename, size: d.artifact.size,
            hashes: { sha1: d.artifact.sha1, md5: d.artifact.md5, sha256: d.artifact.sha256 },
            _links: { download, 'download-http': download },
          }],
        }],
      },
    };
    return Promise.resolve(c.json(answer));
  }));

  app.post(`${BASE}/deploymentBase/:actionId/feedback`, limit, handle(async (c, deviceId) => {
    const id = actionId(c);
    await gateway.feedback(deviceId, id, parse(feedbackSchema, await readJson(c), 'feedback'));
    return c.body(null, 200);
  }));

  app.get(`${BASE}/cancelAction/:actionId`, handle((c, deviceId) => {
    const { actionId: id } = gateway.cancelAction(deviceId, actionId(c));
    const answer: CancelAnswer = { id: String(id), cancelAction: { stopId: String(id) } };
    return Promise.resolve(c.json(answer));
  }));

  app.post(`${BASE}/cancelAction/:actionId/feedback`, limit, handle(async (c, deviceId) => {
    const id = actionId(c);
    gateway.cancelFeedback(deviceId, id, parse(feedbackSchema, await readJson(c), 'feedback'));
    return c.body(null, 200);
  }));

  app.put(`${BASE}/configData`, limit, handle(async (c, deviceId) => {
    await gateway.configData(deviceId, parse(configDataSchema, await readJson(c), 'configData'));
    return c.body(null, 200);
  }));

  // GET and HEAD (SWUpdate asks HEAD first); Range for resumed downloads, If-Match with the sha1.
  app.get(`${BASE}/softwaremodules/:actionId/artifacts/:filename`, handle(async (c, deviceId) => {
    const filename = c.req.param('filename') ?? '';
    return serveArtifact(c, await gateway.artifact(deviceId, actionId(c), filename), filename);
  }));

  return app;
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FirmwardError('invalid_input', 'The request body is not valid JSON; nothing was changed.');
  }
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new FirmwardError('invalid_input', `${describeIssues(result.error, what)} Nothing was changed.`);
  return result.data;
}
