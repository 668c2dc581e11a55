// The HTTP API client (docs/http-api.md) and the agent's session.
//
// The access token lives in this module's memory only (never in storage, so a script injected
// into another page of the origin cannot read it from there). The refresh token is the HttpOnly
// cookie `parley_refresh` (Path=/api/v1/auth) that the browser sends by itself. A token is got
// with GET /auth/refresh at start-up, renewed a minute before its 15 minutes end, and renewed
// again when a request answers 401 (the request is then retried once). Refreshing rotates the
// cookie and the server treats a replayed cookie as theft (it revokes the whole family), so
// refreshes never overlap: within a tab they share one promise, and across tabs of the same
// browser they take the Web Lock "parley-refresh" where the browser offers it.
import type { User } from './types';

const BASE = '/api/v1';
const RENEW_BEFORE_MS = 60_000;

export class ApiError extends Error {
  status: number;
  field: string | null;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
    // "email: must be a valid e-mail address" → field "email"
    const m = /^([A-Za-z][A-Za-z0-9]*): /.exec(message);
    this.field = status === 400 && m ? m[1] : null;
  }
  // The message without its "field: " prefix.
  get detail(): string {
    return this.field ? this.message.slice(this.field.length + 2) : this.message;
  }
}

let token: string | null = null;
let tokenExp = 0; // ms since the epoch
let renewTimer: ReturnType<typeof setTimeout> | undefined;
let inflight: Promise<string | null> | null = null;
let lostHandler: () => void = () => {};

export function onSessionLost(fn: () => void): void {
  lostHandler = fn;
}

interface Claims {
  sub: number;
  email: string;
  exp: number;
}

function claims(t: string): Claims | null {
  try {
    const part = t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '==='.slice((part.length + 3) % 4))) as Claims;
  } catch {
    return null;
  }
}

function setToken(t: string | null): void {
  token = t;
  clearTimeout(renewTimer);
  if (!t) {
    tokenExp = 0;
    return;
  }
  const c = claims(t);
  tokenExp = c ? c.exp * 1000 : Date.now() + 14 * 60_000;
  const wait = Math.max(5_000, tokenExp - Date.now() - RENEW_BEFORE_MS);
  renewTimer = setTimeout(() => {
    void refresh().then((ok) => {
      if (!ok) lostHandler();
    });
  }, wait);
}

export function currentUserId(): number | null {
  const c = token ? claims(token) : null;
  return c ? Number(c.sub) : null;
}

async function parse(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function errorOf(res: Response, body: unknown): ApiError {
  const msg =
    body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : `${res.status} ${res.statusText || 'error'}`;
  return new ApiError(res.status, msg);
}

const offline = (): ApiError => new ApiError(0, 'Cannot reach the server. Check your connection.');

async function doRefresh(): Promise<string | null> {
  let res: Response;
  try {
    res = await fetch(`${BASE}/auth/refresh`, { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw offline();
  }
  if (res.status === 401 || res.status === 403) {
    setToken(null);
    return null;
  }
  const body = await parse(res);
  if (!res.ok) throw errorOf(res, body);
  const t = (body as { accessToken?: string }).accessToken ?? null;
  setToken(t);
  return t;
}

// A fresh access token from the refresh cookie (null: there is no valid session). Throws
// ApiError status 0 when the server cannot be reached.
export function refresh(): Promise<string | null> {
  if (!inflight) {
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    const run = locks?.request ? () => locks.request('parley-refresh', doRefresh) : doRefresh;
    inflight = run().finally(() => {
      inflight = null;
    }) as Promise<string | null>;
  }
  return inflight;
}

// The current token, renewed first when it is about to expire.
export async function getToken(): Promise<string | null> {
  if (token && tokenExp - Date.now() > 30_000) return token;
  return refresh();
}

export const hasToken = (): boolean => token !== null;

// One API call. body is sent as JSON. A 401 refreshes the token and retries once; when that
// fails too the session is over (the sign-in screen is shown).
export async function api<T>(method: string, path: string, body?: unknown, retry = true): Promise<T> {
  const headers: Record<string, string> = {};
  const t = token && tokenExp - Date.now() > 10_000 ? token : await getToken().catch(() => token);
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw offline();
  }
  if (res.status === 401 && retry) {
    const fresh = await refresh().catch(() => null);
    if (fresh) return api<T>(method, path, body, false);
    lostHandler();
  }
  const data = await parse(res);
  if (!res.ok) throw errorOf(res, data);
  return data as T;
}

// ---- accounts ----

async function authPost(path: string, body: unknown): Promise<User> {
  let res: Response;
  try {
    res = await fetch(BASE + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
  } catch {
    throw offline();
  }
  const data = await parse(res);
  if (!res.ok) throw errorOf(res, data);
  const d = data as { accessToken: string; user: User };
  setToken(d.accessToken);
  return d.user;
}

export const login = (email: string, password: string): Promise<User> =>
  authPost('/auth/login', { email, password });

export const register = (fullName: string, email: string, password: string): Promise<User> =>
  authPost('/auth/register', { email, password, fullName });

// Ends this session on the server (the refresh cookie is revoked and cleared) and forgets the
// access token. Works even when the server cannot be reached (the token is forgotten anyway).
export async function logout(): Promise<void> {
  setToken(null);
  try {
    await fetch(`${BASE}/auth/logout`, { method: 'POST', credentials: 'same-origin' });
  } catch {
    // offline: the cookie stays until it is used or expires; this tab holds no token any more
  }
}

export const me = (): Promise<User> => api<User>('GET', '/user/me');
