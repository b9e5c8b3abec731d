/**
 * The dashboard's files (apps/hub/src/web: plain ES modules, no build step), listed once when the
 * dashboard is mounted: every .html, .css and .js file in the folder and its subfolders, each under
 * a fixed route of its own (index.html under `/`). Requests are matched against this list and never
 * joined onto the filesystem, so `..`, an encoded slash or a file outside the list is a 404.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface WebAsset {
  /** The URL path it is served under, e.g. `/js/views/overview.js`. */
  route: string;
  /** The Content-Type it is served with. */
  type: string;
  body: string;
}

/** The only kinds of file served; anything else in the folder (notes, editor files) is not. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

/** One path segment: no leading dot (hidden files), nothing a router reads as a pattern (`:id`, `*`, `{}`). */
const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Reads the folder once. A symbolic link is not followed (it could point out of the folder), nor is
 * a folder whose name does not fit a route.
 *
 * @example
 * const assets = listWebAssets(fileURLToPath(new URL('../web/', import.meta.url)));
 * // [{ route: '/', type: 'text/html; charset=utf-8', body: '<!doctype html>…' }, { route: '/app.js', … }, …]
 */
export function listWebAssets(dir: string): WebAsset[] {
  const assets: WebAsset[] = [];
  // Walked by hand: readdirSync's own `recursive` descends into linked folders.
  const walk = (folder: string, segments: string[]): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      if (!SEGMENT.test(entry.name)) continue;
      const at = [...segments, entry.name];
      if (entry.isDirectory()) walk(path.join(folder, entry.name), at);
      if (!entry.isFile()) continue;
      const type = TYPES[path.extname(entry.name)];
      if (type === undefined) continue;
      const route = at.join('/') === 'index.html' ? '/' : `/${at.join('/')}`;
      assets.push({ route, type, body: readFileSync(path.join(folder, entry.name), 'utf8') });
    }
  };
  walk(dir, []);
  return assets.sort((a, b) => a.route.localeCompare(b.route));
}
