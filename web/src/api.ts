// The REST client: every call goes to /api/v1/<path> with the bearer token and the CLI's
// flag names as query parameters; a 401 sends the user back to the sign-in screen.

const kTokenKey = 'aifinops.token';

export type Params = Record<string, string | number | boolean | string[] | undefined | null>;

/** An API error with the HTTP status and the server's message (which names the parameter). */
export class ApiError extends Error {
  constructor(public status: number, message: string) { super(message); }
}

export function getToken(): string | null {
  try { return localStorage.getItem(kTokenKey); } catch { return null; }
}

export function setToken(token: string | null): void {
  try {
    if (token) localStorage.setItem(kTokenKey, token);
    else localStorage.removeItem(kTokenKey);
  } catch { /* storage disabled: the token lives only as long as the page */ }
  memoryToken = token;
}

let memoryToken: string | null = null;
let onUnauthorized: () => void = () => {};

/** Called on any 401, after the stored token has been dropped. */
export function setUnauthorizedHandler(fn: () => void): void { onUnauthorized = fn; }

/** Reads `#token=...` from the address, stores it and removes it from the address bar. */
export function takeTokenFromFragment(): void {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  setToken(decodeURIComponent(m[1]));
  history.replaceState(null, '', location.pathname + location.search + '#/overview');
}

export function buildQuery(params: Params = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) { for (const x of v) q.append(k, x); }
    else q.append(k, v === true ? 'true' : String(v));
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// Responses are cached for the page's lifetime per URL and token: switching pages or the
// language re-renders from memory instead of asking the server again.
const cache = new Map<string, Promise<unknown>>();

export function clearCache(): void { cache.clear(); }

export async function api<T = any>(path: string, params: Params = {}): Promise<T> {
  const url = '/api/v1/' + path + buildQuery(params);
  const token = getToken() ?? memoryToken;
  const key = (token ?? '') + ' ' + url;
  const hit = cache.get(key);
  if (hit) return hit as Promise<T>;
  const p = (async () => {
    const res = await fetch(url, {
      headers: token ? { Authorization: 'Bearer ' + token, Accept: 'application/json' } : {},
      cache: 'no-store',
    });
    if (res.status === 401) {
      setToken(null);
      cache.clear();
      onUnauthorized();
      throw new ApiError(401, 'unauthorized');
    }
    const text = await res.text();
    let body: any = null;
    try { body = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
    if (!res.ok) {
      const msg = (body && (body.error?.message ?? body.message ?? body.error)) || text || res.statusText;
      throw new ApiError(res.status, typeof msg === 'string' ? msg : JSON.stringify(msg));
    }
    if (body === null) throw new ApiError(res.status, url + ': the answer is not JSON');
    return body as T;
  })();
  cache.set(key, p);
  p.catch(() => cache.delete(key));
  return p;
}

/** The body as text (the CSV downloads: `format=csv` keeps every decimal the ledger has). */
export async function apiText(path: string, params: Params = {}): Promise<string> {
  const token = getToken() ?? memoryToken;
  const res = await fetch('/api/v1/' + path + buildQuery(params), {
    headers: token ? { Authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
  if (res.status === 401) { setToken(null); cache.clear(); onUnauthorized(); throw new ApiError(401, 'unauthorized'); }
  const text = await res.text();
  if (!res.ok) throw new ApiError(res.status, text || res.statusText);
  return text;
}

/** Like api(), but resolves to null when the endpoint does not exist (404/501) yet. */
export async function apiOptional<T = any>(path: string, params: Params = {}): Promise<T | null> {
  try { return await api<T>(path, params); } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 501)) return null;
    throw e;
  }
}
