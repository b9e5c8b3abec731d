/**
 * The hub's HTTP edge: parse, call the HubService, map. Nothing here decides anything about
 * updates; errors become statuses only in errors.ts (STYLE principle 8).
 */
import { stat } from 'node:fs/promises';
import { Hono } from 'hono';
import type { Context, MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { streamSSE } from 'hono/streaming';
import { FirmwardError, isFirmwardError } from '@firmward/core';
import { sendFile } from '@firmward/http-common';
import type { HistoryEvent } from '@firmward/ports';
import type { HubService } from '../service.ts';
import { BRIDGE_NAMES, bridgePatchSchema } from '../bridge-settings.ts';
import type { BridgeName, BridgePatch, BridgeView } from '../bridge-settings.ts';
import type { DashboardAuth } from '../dashboard-auth.ts';
import type { EnrollmentDesk } from '../onboarding/setup-service.ts';
import type { SetupService } from '../onboarding/types.ts';
import { mountDashboard, sessionGuard, usesSession } from './dashboard.ts';
import { BridgeNewHomeSchema } from './onboarding-schemas.ts';
import { mountOnboardingRoutes } from './onboarding-routes.ts';
import { errorBody, errorResponse } from './errors.ts';
import { hostAllowList } from './host-allow-list.ts';
import { readers } from './readers.ts';
import {
  DeviceSettingsPatchSchema, DevicesQuerySchema, EmptyBodySchema, EventStreamQuerySchema, EventsQuerySchema, ForceBodySchema,
  HomeSettingsPatchSchema, JobsQuerySchema, StartRolloutSchema,
} from './schemas.ts';

export interface HttpAppOptions {
  /** Every /api route but health needs `Authorization: Bearer <ownerToken>`. */
  ownerToken: string;
  /** Larger request bodies are refused with 413 before anything reads or parses them. */
  maxBodyBytes: number;
  /** The file of a release's image, or null when the hub does not know that release. */
  imagePath?: (releaseId: string) => Promise<string | null>;
  /** Where the device should fetch a release's image instead of from the hub (a signed URL of the image store), or null. */
  imageRedirect?: (releaseId: string) => Promise<string | null>;
  /** The bridges' settings, changed from the dashboard or the API (bridge-settings.ts). */
  bridges?: { list(): BridgeView[]; update(name: BridgeName, patch: BridgePatch): Promise<BridgeView> };
  /** A metadata file of a signed repository the hub trusts, or null when it has no such repository. */
  repositoryMetadata?: (repository: string, file: string) => Promise<ReadableStream<Uint8Array> | null>;
  /** Told about every 500, so the hub can log what the caller is not shown. */
  onInternalError?: (error: unknown) => void;
  /** How often an idle event stream sends a keep-alive comment; default 15 s. */
  streamKeepAliveMs?: number;
  /** When given, the hub serves the dashboard at `/` and a signed-in page may use /api with its session cookie. */
  dashboard?: DashboardAuth;
  /** Setting a household up: homes, enrollment, devices, credentials, repositories (onboarding-routes.ts). */
  setup?: SetupService & EnrollmentDesk;
  /** The hub's address for devices when fixed (http.publicUrl); '' : the address a request came to. */
  publicUrl?: string;
  /**
   * Host names the hub answers to besides localhost, this machine's and publicUrl's (the listen
   * address, http.allowedHosts); requests naming any other are refused (host-allow-list.ts).
   */
  allowedHosts?: readonly string[];
  /** Told the first time each refused host name is seen, so the operator can find the setting. */
  onHostRefused?: (host: string) => void;
  /**
   * While the hub starts, its port is open but its gateways and engine are not up: requests wait
   * for them (up to `holdMs`, default 10 s) and are then answered 503 with Retry-After, so no
   * device is told something half-started (a registration lost, a resumed download refused).
   */
  readiness?: { ready(): boolean; whenReady: Promise<void>; holdMs?: number };
}

/** Every action taken through the API is recorded as the owner's (DESIGN: who, what, when, why). */
export const OWNER_ACTOR = 'person:owner';

const FORCE_NEEDS_CONFIRM =
  'Forcing starts the update even though a safety check fails (battery, signal, whether the device is needed soon); send {"confirm": true} to confirm that is what you want.';

const { parse: parseWith, json: readJson, body: readBody, query: readQuery, id: readId } = readers;

function matches(event: HistoryEvent, filter: { homeId?: string; deviceId?: string }): boolean {
  return (filter.homeId === undefined || event.homeId === filter.homeId)
    && (filter.deviceId === undefined || event.deviceId === filter.deviceId);
}

/**
 * Builds the hub's HTTP app over a HubService.
 *
 * @example
 * const app = createHttpApp(service, { ownerToken: token, maxBodyBytes: 65536, imagePath: (id) => images.pathOf(id) });
 * const server = await serveHttp(app, { host: '127.0.0.1', port: 8080 });
 */
export function createHttpApp(service: HubService, opts: HttpAppOptions): Hono {
  if (opts.ownerToken === '') {
    throw new FirmwardError('config_invalid', 'The HTTP API needs an owner token; without one anybody could act on the devices.');
  }
  const app = new Hono();

  app.onError((error, c) => {
    // bearerAuth and bodyLimit already built their answer in our error shape.
    if (error instanceof HTTPException) return error.getResponse();
    const { status, body, internal } = errorResponse(error);
    if (internal) opts.onInternalError?.(error);
    const retryAfter = error instanceof FirmwardError ? error.detail?.['retryAfterSeconds'] : undefined;
    if (typeof retryAfter === 'number') c.header('Retry-After', String(retryAfter));
    return c.json(body, status);
  });
  app.notFound((c) => c.json(errorBody('not_found', 'There is nothing at this address on the hub.'), 404));

  // Before everything, health included: a page that reached the hub through its own DNS name reads nothing.
  app.use('*', hostAllowList({ publicUrl: opts.publicUrl ?? '', allowedHosts: opts.allowedHosts ?? [] }, opts.onHostRefused));

  // Health first: it answers before the owner-token check so monitors need no secret, and while the hub starts.
  app.get('/api/v1/health', (c) => c.json(service.health()));

  const readiness = opts.readiness;
  if (readiness !== undefined) {
    app.use('*', async (c, next) => {
      if (!readiness.ready()) {
        const held = await Promise.race([readiness.whenReady.then(() => true), new Promise<false>((resolve) => setTimeout(resolve, readiness.holdMs ?? 10_000, false).unref())]);
        if (!held) {
          c.header('Retry-After', '5');
          return c.json(errorBody('not_ready', 'The hub is starting; ask again in a few seconds.'), 503);
        }
      }
      await next();
      return undefined;
    });
  }

  // Only the owner acts on the devices; hono's bearerAuth compares tokens in constant time.
  const askForToken = (c: Context) => c.json(errorBody('unauthorized',
    'This needs the owner token: send "Authorization: Bearer <token>"; the hub printed the token when it first started and keeps it in its data folder (owner-token).'), 401);
  const bearer: MiddlewareHandler = bearerAuth({
    token: opts.ownerToken,
    noAuthenticationHeader: { message: askForToken },
    invalidAuthenticationHeader: { message: askForToken },
    invalidToken: {
      message: (c) => c.json(errorBody('unauthorized', 'The owner token is wrong; use the one in the hub\'s data folder (owner-token).'), 401),
    },
  });
  // The signed-in dashboard sends its session cookie instead of the token; the CLI and
  // automation keep using the bearer token. Nothing under /api answers without one of the two.
  const dashboardSession = opts.dashboard === undefined ? null : sessionGuard(opts.dashboard);
  const apiGuard: MiddlewareHandler = (c, next) => (dashboardSession !== null && usesSession(c) ? dashboardSession(c, next) : bearer(c, next));
  app.use('/api/*', apiGuard);

  // Refuse oversized bodies before anything reads them into memory or parses them (principle 9).
  app.use('*', bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: (c) => c.json(errorBody('payload_too_large', `The request body is larger than the hub accepts (${opts.maxBodyBytes} bytes).`), 413),
  }));

  if (opts.dashboard !== undefined) mountDashboard(app, opts.dashboard, opts.ownerToken);

  // --- homes ---
  app.get('/api/v1/homes', async (c) => c.json(await service.listHomes()));
  app.get('/api/v1/homes/:id', async (c) => c.json(await service.getHome(readId(c, 'id'))));
  app.patch('/api/v1/homes/:id/settings', async (c) => {
    const homeId = readId(c, 'id');
    const patch = await readBody(c, HomeSettingsPatchSchema);
    return c.json(await service.updateHomeSettings(homeId, patch, OWNER_ACTOR));
  });
  app.post('/api/v1/homes/:id/resume', async (c) => {
    const homeId = readId(c, 'id');
    await readBody(c, EmptyBodySchema);
    return c.json(await service.resume(homeId, OWNER_ACTOR));
  });
  app.post('/api/v1/homes/:id/skip', async (c) => {
    const homeId = readId(c, 'id');
    await readBody(c, EmptyBodySchema);
    return c.json(await service.skip(homeId, OWNER_ACTOR));
  });

  // --- devices ---
  app.get('/api/v1/devices', async (c) => c.json(await service.listDevices(readQuery(c, DevicesQuerySchema))));
  app.get('/api/v1/devices/:id', async (c) => c.json(await service.getDevice(readId(c, 'id'))));
  app.patch('/api/v1/devices/:id/settings', async (c) => {
    const deviceId = readId(c, 'id');
    const patch = await readBody(c, DeviceSettingsPatchSchema);
    return c.json(await service.updateDeviceSettings(deviceId, patch, OWNER_ACTOR));
  });
  app.post('/api/v1/devices/:id/update', async (c) => {
    const deviceId = readId(c, 'id');
    await readBody(c, EmptyBodySchema);
    return c.json(await service.updateNow(deviceId, OWNER_ACTOR));
  });
  app.post('/api/v1/devices/:id/force', async (c) => {
    const deviceId = readId(c, 'id');
    const body = await readJson(c);
    // Invariant 3: skipping the preflight gate needs an explicit, recorded yes from a person.
    const confirmed = typeof body === 'object' && body !== null && (body as Record<string, unknown>)['confirm'] === true;
    if (!confirmed) throw new FirmwardError('invalid_input', FORCE_NEEDS_CONFIRM);
    parseWith(ForceBodySchema, body, 'request body');
    return c.json(await service.force(deviceId, OWNER_ACTOR));
  });

  // --- jobs ---
  app.get('/api/v1/jobs', async (c) => c.json(await service.listJobs(readQuery(c, JobsQuerySchema))));
  app.get('/api/v1/jobs/:id', async (c) => c.json(await service.getJob(readId(c, 'id'))));
  app.post('/api/v1/jobs/:id/cancel', async (c) => {
    const jobId = readId(c, 'id');
    await readBody(c, EmptyBodySchema);
    return c.json(await service.cancel(jobId, OWNER_ACTOR));
  });

  // --- history ---
  // --- bridges to other ecosystems ---
  app.get('/api/v1/bridges', (c) => c.json(opts.bridges?.list() ?? []));
  app.patch('/api/v1/bridges/:name', async (c) => {
    const name = c.req.param('name');
    if (!opts.bridges || !(BRIDGE_NAMES as readonly string[]).includes(name)) throw new FirmwardError('not_found', `There is no bridge "${name}".`);
    // A bridge's devices join a home: an existing one, or one made in the same step.
    const { newHome, ...patch } = await readBody(c, bridgePatchSchema.extend({ newHome: BridgeNewHomeSchema.exactOptional() }));
    if (newHome === undefined) return c.json(await opts.bridges.update(name as BridgeName, patch));
    if (opts.setup === undefined) throw new FirmwardError('invalid_input', 'This hub cannot make homes.');
    if (patch.homeId !== undefined) throw new FirmwardError('invalid_input', 'Give either "homeId" or "newHome", not both.');
    const made = await opts.setup.createHome(newHome, OWNER_ACTOR);
    try {
      return c.json(await opts.bridges.update(name as BridgeName, { ...patch, homeId: made.id }));
    } catch (error) {
      // A refused change leaves nothing behind: not even the home made for it.
      await opts.setup.deleteHome(made.id, OWNER_ACTOR).catch(() => undefined);
      throw error;
    }
  });

  if (opts.setup !== undefined) mountOnboardingRoutes(app, { setup: opts.setup, publicUrl: opts.publicUrl ?? '', actor: OWNER_ACTOR, read: readers });

  // --- staged rollouts across homes ---
  app.get('/api/v1/rollouts', async (c) => c.json(await service.listRollouts()));
  app.post('/api/v1/rollouts', async (c) => c.json(await service.startRollout(await readBody(c, StartRolloutSchema), OWNER_ACTOR), 201));
  app.get('/api/v1/rollouts/:id', async (c) => c.json(await service.getRollout(readId(c, 'id'))));
  for (const action of ['pause', 'resume', 'abort'] as const) {
    app.post(`/api/v1/rollouts/:id/${action}`, async (c) => {
      const rolloutId = readId(c, 'id');
      await readBody(c, EmptyBodySchema);
      return c.json(await service.actOnRollout(rolloutId, action, OWNER_ACTOR));
    });
  }

  app.get('/api/v1/events', async (c) => c.json(await service.listEvents(readQuery(c, EventsQuerySchema))));
  app.get('/api/v1/events/stream', (c) => {
    const filter = readQuery(c, EventStreamQuerySchema);
    return streamSSE(c, async (stream) => {
      let open = true;
      const aborted = new Promise<void>((resolve) => stream.onAbort(() => {
        open = false;
        resolve();
      }));
      const write = (message: { event: string; data: string; id?: string }): void => {
        if (!open) return;
        stream.writeSSE(message).catch((error: unknown) => {
          open = false;
          opts.onInternalError?.(error);
        });
      };
      const unsubscribe = service.subscribe((event) => {
        if (matches(event, filter)) write({ event: 'history', id: String(event.id), data: JSON.stringify(event) });
      });
      // A comment now and then keeps proxies from closing an idle stream.
      const keepAlive = setInterval(() => {
        if (open) stream.write(': keep-alive\n\n').catch(() => { open = false; });
      }, opts.streamKeepAliveMs ?? 15_000);
      // The open socket keeps a real server alive; the timer alone must not keep a process alive.
      keepAlive.unref();
      try {
        write({ event: 'ready', data: '{}' });
        await aborted;
      } finally {
        clearInterval(keepAlive);
        unsubscribe();
      }
    });
  });

  // --- firmware images for devices ---
  // No owner token: devices fetch these. Only images the service knows are reachable: the path
  // comes from imagePath(releaseId), never from the URL (invariant 2/4: only the maker's images).
  app.get('/firmware/:releaseId{.+}', async (c) => {
    const releaseId = c.req.param('releaseId');
    const path = opts.imagePath === undefined ? null : await opts.imagePath(releaseId);
    const missing = () => new FirmwardError('not_found', `The hub has no firmware image for "${releaseId}".`);
    if (path === null) throw missing();
    // With an image store that signs URLs, the bytes come from there; every resume asks again.
    const elsewhere = opts.imageRedirect === undefined ? null : await opts.imageRedirect(releaseId);
    if (elsewhere !== null) return c.redirect(elsewhere, 302);
    // Range lets a device resume an interrupted download, and several ranges at once (zchunk
    // delta updates) come back as multipart/byteranges: @firmward/http-common, as for DDI downloads.
    const found = await stat(path).catch(() => null);
    if (found === null || !found.isFile()) throw missing();
    return sendFile(c, {
      path, size: found.size, contentType: 'application/octet-stream', lastModified: found.mtime,
      // nginx's tag (mtime and length): a device resuming with If-Range gets the rest of the same file.
      etag: `"${Math.floor(found.mtimeMs / 1000).toString(16)}-${found.size.toString(16)}"`,
    });
  });

  // --- the makers' signed metadata, mirrored for devices ---
  // No owner token: devices verify every file with their own trusted root, so the hub vouches for
  // nothing here; it only saves each device a trip to the maker.
  app.get('/tuf/:repository/metadata/:file', async (c) => {
    const { repository, file } = c.req.param();
    let body: ReadableStream<Uint8Array> | null;
    try {
      body = opts.repositoryMetadata === undefined ? null : await opts.repositoryMetadata(repository, file);
    } catch (error) {
      // The maker's 404 ends a device's search for newer roots (TUF): pass it on as such.
      if (isFirmwardError(error, 'not_found') || (error instanceof Error && 'statusCode' in error && error.statusCode === 404)) body = null;
      else throw new FirmwardError('repository_unreachable', `The release repository ${repository} cannot be reached right now.`, { cause: error });
    }
    if (body === null) throw new FirmwardError('not_found', `The hub has no file ${file} of the repository "${repository}".`);
    return new Response(body, { headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' } });
  });

  return app;
}
