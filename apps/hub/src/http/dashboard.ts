/**
 * The dashboard's edge: its static page (apps/hub/src/web, plain ES modules, no build step), the
 * sign-in routes, and the session check that lets a signed-in page use the same JSON API the CLI
 * uses with its bearer token. Cookie-authenticated writes need the session's CSRF token in
 * X-CSRF-Token and a same-origin Origin (double submit bound to the session); the cookie itself is
 * HttpOnly and SameSite=Strict, Secure over https.
 */
import { timingSafeEqual } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { z } from 'zod';
import { FirmwardError } from '@firmward/core';
import type { DashboardAuth } from '../dashboard-auth.ts';
import { errorBody } from './errors.ts';
import { remoteAddress } from './remote-address.ts';
import { listWebAssets } from './web-assets.ts';

export const SESSION_COOKIE = 'firmward_session';
export const CSRF_HEADER = 'X-CSRF-Token';

const WEB_DIR = fileURLToPath(new URL('../web/', import.meta.url));

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

const SetupSchema = z.strictObject({ username: z.string().max(200), password: z.string().max(1024), ownerToken: z.string().max(1024) });
const LoginSchema = z.strictObject({ username: z.string().max(200), password: z.string().max(1024) });

function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:';
}

/** A browser always sends Origin on a cross-site write; when present it must be this hub. */
function sameOrigin(c: Context): boolean {
  const origin = c.req.header('Origin');
  if (origin !== undefined) return origin === new URL(c.req.url).origin;
  const site = c.req.header('Sec-Fetch-Site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

function equalSecrets(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** JSON only: a cross-site form cannot send application/json without a preflight this hub never allows. */
async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  if (!(c.req.header('Content-Type') ?? '').startsWith('application/json')) {
    throw new FirmwardError('invalid_input', 'Send the form as JSON (Content-Type: application/json).');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await c.req.text()) as unknown;
  } catch {
    throw new FirmwardError('invalid_input', 'The request body is not valid JSON.');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new FirmwardError('invalid_input', 'The sign-in form is not complete: it needs a user name and a password.');
  return parsed.data;
}

function startSession(c: Context, auth: DashboardAuth, username: string): Response {
  const { sessionId, session } = auth.startSession(username);
  setCookie(c, SESSION_COOKIE, sessionId, {
    httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/', maxAge: Math.floor((session.expiresAt - Date.now()) / 1000),
  });
  return c.json({ account: true, signedIn: true, username: session.username, csrfToken: session.csrfToken });
}

/**
 * For /api/*: a request with the session cookie (and no Authorization header) is the signed-in
 * page. Reads need a live session; writes also need the CSRF token and a same-origin Origin.
 */
export function sessionGuard(auth: DashboardAuth): MiddlewareHandler {
  return async (c, next) => {
    const session = auth.session(getCookie(c, SESSION_COOKIE) ?? '');
    if (session === null) {
      return c.json(errorBody('unauthorized', 'Your sign-in has ended; sign in again.'), 401);
    }
    if (!['GET', 'HEAD', 'OPTIONS'].includes(c.req.method)) {
      const token = c.req.header(CSRF_HEADER) ?? '';
      if (!sameOrigin(c) || !equalSecrets(token, session.csrfToken)) {
        return c.json(errorBody('forbidden', 'This change did not come from the hub\'s own page; reload the dashboard and try again.'), 403);
      }
    }
    await next();
    return undefined;
  };
}

/** True when the request should be checked as the signed-in page rather than with the bearer token. */
export function usesSession(c: Context): boolean {
  return c.req.header('Authorization') === undefined && getCookie(c, SESSION_COOKIE) !== undefined;
}

/**
 * Mounts the page and /auth/*. `ownerToken` is asked for when the owner account is created, so a
 * stranger on the LAN who reaches the page first cannot claim the hub.
 */
export function mountDashboard(app: Hono, auth: DashboardAuth, ownerToken: string): void {
  // The only files served: the web folder as listed now, one fixed route each, never a path from the URL.
  for (const asset of listWebAssets(WEB_DIR)) {
    app.get(asset.route, (c) => c.body(asset.body, 200, { ...SECURITY_HEADERS, 'Content-Type': asset.type }));
  }

  // Browsers ask for it on every page; there is none, and a 404 would only fill the log.
  app.get('/favicon.ico', (c) => c.body(null, 204, SECURITY_HEADERS));

  // What the page needs to decide which form to show; says nothing about the devices.
  app.get('/auth/session', (c) => {
    const session = auth.session(getCookie(c, SESSION_COOKIE) ?? '');
    if (session === null) return c.json({ account: auth.hasAccount(), signedIn: false });
    return c.json({ account: true, signedIn: true, username: session.username, csrfToken: session.csrfToken });
  });

  const crossSite = (c: Context) => c.json(errorBody('forbidden', 'Sign-in only works from the hub\'s own page.'), 403);

  app.post('/auth/setup', async (c) => {
    if (!sameOrigin(c)) return crossSite(c);
    const body = await readJsonBody(c, SetupSchema);
    // Once the hub has its owner the form has nothing to do, and the token is not even compared:
    // it must not stay open as a place to guess the owner token (whether there is an account is
    // no secret: /auth/session says so).
    if (auth.hasAccount()) throw new FirmwardError('conflict', 'This hub already has an owner account; sign in with it.');
    // Counted per address before the compare, like a password (dashboard-auth.ts).
    const attempt = auth.ownerTokenAttempt(remoteAddress(c));
    if (!equalSecrets(body.ownerToken.trim(), ownerToken)) {
      throw new FirmwardError('unauthorized', 'The owner token is wrong; the hub printed it when it first started and keeps it in its data folder (owner-token).');
    }
    attempt.succeeded();
    await auth.createOwner(body.username.trim(), body.password);
    return startSession(c, auth, body.username.trim());
  });

  app.post('/auth/login', async (c) => {
    if (!sameOrigin(c)) return crossSite(c);
    const body = await readJsonBody(c, LoginSchema);
    if (!(await auth.verify(body.username.trim(), body.password, remoteAddress(c)))) {
      throw new FirmwardError('unauthorized', 'That user name and password do not match the owner account.');
    }
    return startSession(c, auth, body.username.trim());
  });

  app.post('/auth/logout', (c) => {
    const sessionId = getCookie(c, SESSION_COOKIE) ?? '';
    const session = auth.session(sessionId);
    if (session !== null) {
      if (!sameOrigin(c) || !equalSecrets(c.req.header(CSRF_HEADER) ?? '', session.csrfToken)) {
        return c.json(errorBody('forbidden', 'This change did not come from the hub\'s own page; reload the dashboard and try again.'), 403);
      }
      auth.endSession(sessionId);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: isHttps(c), httpOnly: true, sameSite: 'Strict' });
    return c.json({ account: auth.hasAccount(), signedIn: false });
  });
}
