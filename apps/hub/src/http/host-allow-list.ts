/**
 * The DNS rebinding guard (audit, issue 14 item 7). A web page on evil.example can make its own
 * name resolve to the hub's address; the browser then lets that page read the hub's answers as its
 * own (health, enrollment, images, the dashboard's sign-in). What gives it away is the Host: the
 * attacker's name, not one of the hub's. So the hub answers only requests that name it by:
 *
 * - an IP address (`http://192.168.1.10:8080`, `http://[::1]:8080`): rebinding needs a DNS name, so
 *   an address typed as numbers is always fine — this is how devices and a hub on 0.0.0.0 with no
 *   configured name are reached;
 * - `localhost`, this machine's host name and `<hostname>.local` (mDNS on the home network);
 * - the host of `http.publicUrl`, the listen address when it is a name, and every name in
 *   `http.allowedHosts` (`"*"` there turns the guard off, for a proxy that rewrites names).
 *
 * Any other name is refused with 421 Misdirected Request and the setting that would let it in.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { MiddlewareHandler } from 'hono';
import { errorBody } from './errors.ts';

export interface HostAllowListOptions {
  /** `http.publicUrl` ('' when not set): its host is one of the hub's names. */
  publicUrl: string;
  /** More names the hub answers to: the listen address and `http.allowedHosts`. */
  allowedHosts: readonly string[];
  /** This machine's name; default os.hostname(). */
  machineName?: string;
}

/** The name that turns the guard off. */
export const ANY_HOST = '*';

/**
 * A host name as the WHATWG URL parser writes it (lower case, punycode, IPv6 in brackets), without
 * a final dot; null when it is none.
 */
export function canonicalHost(name: string): string | null {
  const trimmed = name.trim();
  if (trimmed === ANY_HOST) return ANY_HOST;
  const bracketed = isIP(trimmed) === 6 ? `[${trimmed}]` : trimmed;
  try {
    const url = new URL(`http://${bracketed}/`);
    // Only a name: no scheme, port, user, path or query around it.
    if (url.href !== `http://${url.hostname}/`) return null;
    return url.hostname.replace(/\.$/, '');
  } catch {
    return null;
  }
}

/**
 * Every name the hub answers to, canonical.
 *
 * @example
 * hubHostNames({ publicUrl: 'https://firmward.example', allowedHosts: ['hub.lan'], machineName: 'pi' });
 * // Set { 'localhost', 'pi', 'pi.local', 'firmward.example', 'hub.lan' }
 */
export function hubHostNames(o: HostAllowListOptions): Set<string> {
  const machine = o.machineName ?? hostname();
  const names = ['localhost', machine, ...(machine.includes('.') ? [] : [`${machine}.local`]), ...o.allowedHosts];
  if (o.publicUrl !== '') names.push(new URL(o.publicUrl).hostname);
  return new Set(names.map(canonicalHost).filter((n): n is string => n !== null));
}

/**
 * Whether a request whose URL names `host` is for this hub.
 *
 * @example
 * hostAllowed('192.168.1.10', names); // true: an address, no DNS involved
 * hostAllowed('evil.example', names); // false
 */
export function hostAllowed(host: string, names: ReadonlySet<string>): boolean {
  if (names.has(ANY_HOST)) return true;
  const canonical = canonicalHost(host);
  if (canonical === null) return false;
  if (isIP(canonical.replace(/^\[(.*)\]$/, '$1')) !== 0) return true;
  return names.has(canonical);
}

/** Refused names told to the log, at most this many different ones (a scan must not flood it). */
const REPORTED_NAMES = 100;

/**
 * Middleware that refuses requests naming another host, before anything else reads them.
 *
 * @example
 * app.use('*', hostAllowList({ publicUrl: '', allowedHosts: ['hub.lan'] }, (host) => log.warn('refused', { host })));
 */
export function hostAllowList(o: HostAllowListOptions, onRefused?: (host: string) => void): MiddlewareHandler {
  const names = hubHostNames(o);
  const reported = new Set<string>();
  return async (c, next) => {
    // The URL's host: what @hono/node-server built from the Host header (or from an absolute
    // request target, which RFC 9112 §3.2.2 says wins over Host).
    const host = new URL(c.req.url).hostname;
    if (hostAllowed(host, names)) {
      await next();
      return undefined;
    }
    const shown = host.slice(0, 100);
    if (!reported.has(shown) && reported.size < REPORTED_NAMES) {
      reported.add(shown);
      onRefused?.(shown);
    }
    return c.json(errorBody('host_not_allowed',
      `The hub does not answer to the name "${shown}" (a guard against other web sites reaching it through their own names). `
      + 'If that is the hub\'s own name, add it to the setting http.allowedHosts (FIRMWARD_ALLOWED_HOSTS, or --allowed-hosts) and restart the hub.'), 421);
  };
}
