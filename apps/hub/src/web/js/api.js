// The hub's JSON API as the page calls it: same-origin, the session's CSRF token on writes, and
// a refusal thrown as an HttpError carrying the hub's own sentence.

import { state } from './state.js';
import { showSignIn } from './screen.js';

class HttpError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Writes carry the session's CSRF token (double submit); the cookie alone is not enough.
  if (method !== 'GET' && state.session?.csrfToken) headers['X-CSRF-Token'] = state.session.csrfToken;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401 && path.startsWith('/api/')) {
      state.session = null;
      void showSignIn();
    }
    throw new HttpError(res.status, data?.error?.message ?? `The hub answered ${res.status}.`, data?.error?.code);
  }
  return data;
}

export const enc = encodeURIComponent;
