// Helpers for the agents HTTP API tests (docs/http-api.md, PROTOCOL.md section 9): requests to
// `/api/v1` with Node's global fetch (bearer tokens, the refresh cookie read from `set-cookie`
// by hand), the error-shape assertion with every status the API uses (401, 409, 415, 429 too),
// field-named 400s, accounts (register, login, refresh, logout), and checks of the payloads the
// API answers with (user, project, conversation, visitor, message). Everything of the widget
// flow suite (../50-visitor/helpers.mjs: setup / teardown with projects and agents made through
// the CLI, socket.io-client visitors and agents, JWT forging, SQL) is re-exported unchanged.
//
//   const ctx = await setup({ projects: [{ name: 'Site' }], agents: [{ email: 'a@x.test' }] });
//   const s = await login(ctx, 'a@x.test', ctx.agents[0].password);   // {accessToken, user, refresh}
//   const r = await api(ctx, 'GET', '/projects', { token: s.accessToken });
//   assert.equal(r.status, 200); r.json ...
//   assertApiError(await api(ctx, 'GET', '/projects'), 401);
//
// Every request has a timeout (scaled by SLOW for the sanitizer build).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { t, ISO_MS, connectAgent, joinRoom } from '../50-visitor/helpers.mjs';

export * from '../50-visitor/helpers.mjs';
export { runCli, rawRequest, buildRequest, httpRequest } from '../lib/server.mjs';

export const API = '/api/v1';
export const REFRESH_COOKIE = 'parley_refresh';
export const NOT_MEMBER = 'Forbidden: You are not a member of this project.';
export const NOT_MANAGER = 'Forbidden: Only managers can change this project.';
export const BAD_LOGIN = 'Invalid email or password';
export const TOO_MANY_LOGINS = 'Too many failed logins: try again later';
export const PASSWORD = 'correct horse battery'; // the CLI agents' password (50-visitor helpers)

// Reason phrases of every status the API answers with (413 has two names: RFC 7231's and
// RFC 9110's; 422 is not used).
export const REASONS = {
  400: ['Bad Request'],
  401: ['Unauthorized'],
  403: ['Forbidden'],
  404: ['Not Found'],
  405: ['Method Not Allowed'],
  409: ['Conflict'],
  413: ['Payload Too Large', 'Content Too Large'],
  415: ['Unsupported Media Type'],
  429: ['Too Many Requests'],
  500: ['Internal Server Error'],
  503: ['Service Unavailable'],
};

// Ids that are not positive integers (or are beyond 2^53-1): every route answers 404.
export const NOT_IDS = ['abc', '0', '-1', '1.5', '1e3', '0x1', '99999999999999999999', '9007199254740993', '%20'];

// ---- identifiers -------------------------------------------------------------------------

let seq = 0;
// A fresh, valid e-mail address.
export function newEmail(prefix = 'agent') {
  seq += 1;
  return `${prefix}-${seq}-${crypto.randomBytes(4).toString('hex')}@example.test`;
}

// ---- requests ----------------------------------------------------------------------------

// Parses one Set-Cookie value → {name, value, attrs} (attribute names lower-cased; flags true).
export function parseSetCookie(s) {
  const [pair, ...rest] = s.split(';');
  const eq = pair.indexOf('=');
  const attrs = {};
  for (const a of rest) {
    const i = a.indexOf('=');
    if (i < 0) attrs[a.trim().toLowerCase()] = true;
    else attrs[a.slice(0, i).trim().toLowerCase()] = a.slice(i + 1).trim();
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attrs, raw: s };
}

// A request to `${ctx.url}/api/v1${path}`.
//   token      bearer token
//   body       a value sent as JSON (Content-Type application/json) unless raw is given
//   raw        the body as is (string or Buffer); contentType then says its type (no
//              Content-Type header when undefined)
//   refresh    the refresh token, sent as `Cookie: parley_refresh=<it>`
//   headers    more request headers
// → {status, statusText, headers (Headers), text, json (parsed, or undefined), cookies
//   ([parsed Set-Cookie]), refreshCookie (the parley_refresh one, or undefined), ms (time taken)}
export async function api(ctx, method, path, { token, body, raw, contentType, refresh, headers = {}, timeoutMs = t(15000) } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.Authorization = `Bearer ${token}`;
  if (refresh !== undefined) h.Cookie = `${REFRESH_COOKIE}=${refresh}`;
  let payload;
  if (raw !== undefined) {
    // As bytes: fetch adds `Content-Type: text/plain` to a string body, never to bytes.
    payload = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8');
    if (contentType !== undefined) h['Content-Type'] = contentType;
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['Content-Type'] = contentType ?? 'application/json';
  }
  const started = performance.now();
  let res;
  try {
    res = await fetch(`${ctx.url}${API}${path}`, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (e) {
    throw new Error(`${method} ${API}${path}: ${e.message}${e.cause ? ` (${e.cause.message ?? e.cause})` : ''}`);
  }
  const text = await res.text();
  const ms = performance.now() - started;
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  const cookies = res.headers.getSetCookie().map(parseSetCookie);
  return {
    method,
    path,
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
    text,
    json,
    cookies,
    refreshCookie: cookies.find((c) => c.name === REFRESH_COOKIE),
    ms,
  };
}

const show = (r) => `${r.method} ${API}${r.path} → ${r.status} ${r.text.slice(0, 600)}`;

// Asserts a success status and a JSON body (unless 204); returns the parsed body.
export function ok(r, status = 200) {
  assert.equal(r.status, status, `expected ${status}: ${show(r)}`);
  if (status === 204) {
    assert.equal(r.text, '', `204 has no body: ${show(r)}`);
    return undefined;
  }
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/, `JSON Content-Type: ${show(r)}`);
  assert.notEqual(r.json, undefined, `JSON body: ${show(r)}`);
  return r.json;
}

// Asserts an error in the API's shape: {"statusCode":N,"message":"…","error":"<reason phrase>"},
// Content-Type application/json; charset=utf-8. message: exact string, RegExp, or undefined (any
// non-empty string).
export function assertApiError(r, status, message) {
  assert.equal(r.status, status, `status: ${show(r)}`);
  assert.equal(r.headers.get('content-type'), 'application/json; charset=utf-8', `error Content-Type: ${show(r)}`);
  assert.ok(r.json && typeof r.json === 'object' && !Array.isArray(r.json), `error body is a JSON object: ${show(r)}`);
  const j = r.json;
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message', 'statusCode'], `error body keys: ${show(r)}`);
  assert.equal(j.statusCode, status, `statusCode: ${show(r)}`);
  assert.equal(typeof j.message, 'string');
  assert.ok(j.message.length > 0, `error message is empty: ${show(r)}`);
  if (REASONS[status]) assert.ok(REASONS[status].includes(j.error), `error reason phrase ${JSON.stringify(j.error)}: ${show(r)}`);
  if (r.statusText) assert.equal(j.error, r.statusText, `error field equals the status line's reason: ${show(r)}`);
  if (typeof message === 'string') assert.equal(j.message, message, `message: ${show(r)}`);
  else if (message instanceof RegExp) assert.match(j.message, message, `message: ${show(r)}`);
  return j;
}

// A 400 that names the field: message "<field>: <why>".
export function assertFieldError(r, field, what = '') {
  const esc = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  try {
    return assertApiError(r, 400, new RegExp(`^${esc}: \\S`));
  } catch (e) {
    e.message = `${what ? `${what}: ` : ''}${e.message}`;
    throw e;
  }
}

// ---- accounts ----------------------------------------------------------------------------

// Checks the refresh cookie of a login / register / refresh answer and returns its value.
export function assertRefreshCookie(r) {
  const c = r.refreshCookie;
  assert.ok(c, `a ${REFRESH_COOKIE} cookie is set: ${show(r)} set-cookie ${JSON.stringify(r.cookies.map((x) => x.raw))}`);
  assert.match(c.value, /^[A-Za-z0-9_-]{43}$/, `refresh token: 32 random bytes in base64url (${c.value})`);
  assert.equal(c.attrs.httponly, true, `HttpOnly: ${c.raw}`);
  assert.equal(String(c.attrs.samesite).toLowerCase(), 'strict', `SameSite=Strict: ${c.raw}`);
  assert.equal(c.attrs.path, '/api/v1/auth', `Path=/api/v1/auth: ${c.raw}`);
  assert.equal(c.attrs['max-age'], '2592000', `Max-Age=2592000: ${c.raw}`);
  assert.equal(c.attrs.secure, undefined, `no Secure flag over http: ${c.raw}`);
  return c.value;
}

// A user object: exactly {id, email, fullName, createdAt}.
export function assertUser(u, exp = {}) {
  assert.ok(u && typeof u === 'object', `user: ${JSON.stringify(u)}`);
  assert.deepEqual(Object.keys(u).sort(), ['createdAt', 'email', 'fullName', 'id'], `user keys (no password hash, nothing else): ${JSON.stringify(u)}`);
  assert.ok(Number.isSafeInteger(u.id) && u.id > 0, `user.id ${u.id}`);
  assert.equal(typeof u.email, 'string');
  assert.equal(typeof u.fullName, 'string');
  assert.match(u.createdAt, ISO_MS, 'user.createdAt is ISO-8601 UTC with milliseconds');
  for (const [k, v] of Object.entries(exp)) assert.deepEqual(u[k], v, `user.${k}`);
  return u;
}

// Checks an access token's header and claims against the user.
export function assertAccessToken(token, user) {
  assert.equal(typeof token, 'string');
  const parts = token.split('.');
  assert.equal(parts.length, 3, `a JWT: ${token}`);
  const header = JSON.parse(Buffer.from(parts[0], 'base64url'));
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  assert.equal(header.alg, 'HS256', 'alg HS256');
  assert.equal(String(claims.sub), String(user.id), 'sub is the user id');
  assert.equal(claims.email, user.email, 'email claim');
  const now = Date.now() / 1000;
  assert.ok(Math.abs(claims.iat - now) < 120, `iat is now: ${claims.iat}`);
  assert.equal(claims.exp - claims.iat, 15 * 60, 'valid for 15 minutes');
  assert.ok(Number.isSafeInteger(claims.iatMs) && Math.abs(claims.iatMs / 1000 - now) < 120, `iatMs: ${claims.iatMs}`);
  return claims;
}

// POST /auth/register; asserts 201 and the answer's shape. → {accessToken, user, refresh, res}.
export async function register(ctx, { email = newEmail(), password = PASSWORD, fullName = 'Test Agent' } = {}) {
  const r = await api(ctx, 'POST', '/auth/register', { body: { email, password, fullName } });
  const j = ok(r, 201);
  assert.deepEqual(Object.keys(j).sort(), ['accessToken', 'user'], `register answer keys: ${r.text}`);
  assertUser(j.user, { fullName });
  assertAccessToken(j.accessToken, j.user);
  return { accessToken: j.accessToken, user: j.user, refresh: assertRefreshCookie(r), password, res: r };
}

// POST /auth/login; asserts 200. → {accessToken, user, refresh, res}.
export async function login(ctx, email, password = PASSWORD) {
  const r = await api(ctx, 'POST', '/auth/login', { body: { email, password } });
  const j = ok(r, 200);
  assert.deepEqual(Object.keys(j).sort(), ['accessToken', 'user'], `login answer keys: ${r.text}`);
  assertUser(j.user);
  assertAccessToken(j.accessToken, j.user);
  return { accessToken: j.accessToken, user: j.user, refresh: assertRefreshCookie(r), password, res: r };
}

// GET /auth/refresh with a refresh token (raw answer).
export function refreshWith(ctx, refresh) {
  return api(ctx, 'GET', '/auth/refresh', { refresh });
}

// Logs each CLI agent of ctx in over HTTP: ctx.sessions[i] = {accessToken, user, refresh}.
export async function loginAll(ctx) {
  ctx.sessions = [];
  for (const a of ctx.agents) ctx.sessions.push(await login(ctx, a.email, a.password));
  return ctx.sessions;
}

// An agent Socket.IO connection with an access token, joined to the rooms of projectIds.
export async function agentSocket(ctx, token, projectIds = [], label = 'agent') {
  const c = await connectAgent(ctx, token, { label });
  for (const pid of projectIds) await joinRoom(c, pid);
  return c;
}

// ---- payloads ----------------------------------------------------------------------------

export const WIDGET_SETTING_KEYS = ['agentDisplayName', 'autoOpenDelay', 'companyLogoUrl', 'headerText', 'historyVisibility', 'offlineMessage', 'position', 'primaryColor', 'theme', 'welcomeMessage'];

// A project: {id, name, whitelistedDomains, widgetSettings, role, createdAt, updatedAt}.
export function assertProject(p, exp = {}) {
  assert.ok(p && typeof p === 'object' && !Array.isArray(p), `project: ${JSON.stringify(p)}`);
  assert.deepEqual(Object.keys(p).sort(), ['createdAt', 'id', 'name', 'role', 'updatedAt', 'whitelistedDomains', 'widgetSettings'], `project keys: ${JSON.stringify(p)}`);
  assert.ok(Number.isSafeInteger(p.id) && p.id > 0, `project.id ${p.id}`);
  assert.equal(typeof p.name, 'string');
  assert.ok(Array.isArray(p.whitelistedDomains) && p.whitelistedDomains.every((d) => typeof d === 'string'), `whitelistedDomains ${JSON.stringify(p.whitelistedDomains)}`);
  assert.ok(p.widgetSettings && typeof p.widgetSettings === 'object' && !Array.isArray(p.widgetSettings), `widgetSettings ${JSON.stringify(p.widgetSettings)}`);
  for (const k of Object.keys(p.widgetSettings)) assert.ok(WIDGET_SETTING_KEYS.includes(k), `widgetSettings.${k} is a widget setting`);
  assert.ok(['manager', 'agent'].includes(p.role), `role ${p.role}`);
  assert.match(p.createdAt, ISO_MS, 'project.createdAt');
  assert.match(p.updatedAt, ISO_MS, 'project.updatedAt');
  for (const [k, v] of Object.entries(exp)) assert.deepEqual(p[k], v, `project.${k}`);
  return p;
}

const isId = (x) => Number.isSafeInteger(x) && x > 0;
export const STATUSES = ['open', 'pending', 'solved', 'spam'];

// The visitor summary inside a conversation: {id, uid, name, email, currentUrl, isOnline}.
export function assertVisitorSummary(v, exp = {}) {
  assert.ok(v && typeof v === 'object', `conversation.visitor: ${JSON.stringify(v)}`);
  for (const k of ['id', 'uid', 'name', 'email', 'currentUrl', 'isOnline']) assert.ok(k in v, `visitor has ${k}: ${JSON.stringify(v)}`);
  assert.ok(isId(v.id), `visitor.id ${v.id}`);
  assert.equal(typeof v.uid, 'string');
  assert.equal(typeof v.isOnline, 'boolean', 'visitor.isOnline');
  for (const k of ['name', 'email', 'currentUrl']) assert.ok(v[k] === null || typeof v[k] === 'string', `visitor.${k}: ${v[k]}`);
  for (const [k, val] of Object.entries(exp)) assert.deepEqual(v[k], val, `visitor.${k}`);
  return v;
}

// A conversation (PROTOCOL.md section 8). withVisitor: the `visitor` summary must be there.
export function assertConversation(c, exp = {}, { withVisitor = false } = {}) {
  assert.ok(c && typeof c === 'object' && !Array.isArray(c), `conversation: ${JSON.stringify(c)}`);
  for (const k of ['id', 'projectId', 'visitorId', 'assigneeId', 'lastMessageSnippet', 'lastMessageTimestamp', 'status', 'unreadCount', 'createdAt', 'updatedAt', 'metadata']) {
    assert.ok(k in c, `conversation has ${k}: ${JSON.stringify(c)}`);
  }
  assert.ok(isId(c.id) && isId(c.projectId) && isId(c.visitorId), `conversation ids: ${JSON.stringify(c)}`);
  assert.ok(c.assigneeId === null || isId(c.assigneeId), `assigneeId ${c.assigneeId}`);
  assert.ok(STATUSES.includes(c.status), `status ${c.status}`);
  assert.ok(Number.isSafeInteger(c.unreadCount) && c.unreadCount >= 0, `unreadCount ${c.unreadCount}`);
  assert.match(c.createdAt, ISO_MS, 'conversation.createdAt');
  assert.match(c.updatedAt, ISO_MS, 'conversation.updatedAt');
  assert.ok(c.lastMessageTimestamp === null || ISO_MS.test(c.lastMessageTimestamp), `lastMessageTimestamp ${c.lastMessageTimestamp}`);
  assert.ok(c.lastMessageSnippet === null || typeof c.lastMessageSnippet === 'string', `lastMessageSnippet ${c.lastMessageSnippet}`);
  if (withVisitor) assert.ok('visitor' in c, `conversation has visitor: ${JSON.stringify(c)}`);
  if ('visitor' in c) assertVisitorSummary(c.visitor);
  for (const [k, v] of Object.entries(exp)) assert.deepEqual(c[k], v, `conversation.${k}`);
  return c;
}

// The full visitor of GET /inbox/visitors/:id.
export function assertVisitor(v, exp = {}) {
  assert.ok(v && typeof v === 'object', `visitor: ${JSON.stringify(v)}`);
  for (const k of ['id', 'uid', 'name', 'email', 'currentUrl', 'lastSeenAt', 'createdAt', 'isOnline']) assert.ok(k in v, `visitor has ${k}: ${JSON.stringify(v)}`);
  assertVisitorSummary(v);
  assert.match(v.createdAt, ISO_MS, 'visitor.createdAt');
  assert.ok(v.lastSeenAt === null || ISO_MS.test(v.lastSeenAt), `visitor.lastSeenAt ${v.lastSeenAt}`);
  for (const [k, val] of Object.entries(exp)) assert.deepEqual(v[k], val, `visitor.${k}`);
  return v;
}

// ---- inbox shortcuts ---------------------------------------------------------------------

export const inboxPath = (pid, rest = '') => `/projects/${pid}/inbox${rest}`;
export const convPath = (pid, cid, rest = '') => `/projects/${pid}/inbox/conversations/${cid}${rest}`;

// GET a conversation (200) → the conversation.
export async function getConversation(ctx, token, pid, cid) {
  return assertConversation(ok(await api(ctx, 'GET', convPath(pid, cid), { token })), { id: cid, projectId: pid }, { withVisitor: true });
}

// GET the inbox list (200) → {data, total, page, limit}.
export async function listInbox(ctx, token, pid, query = '') {
  const j = ok(await api(ctx, 'GET', `${inboxPath(pid, '/conversations')}${query}`, { token }));
  assert.deepEqual(Object.keys(j).sort(), ['data', 'limit', 'page', 'total'], `inbox answer keys: ${JSON.stringify(j).slice(0, 300)}`);
  assert.ok(Array.isArray(j.data));
  for (const c of j.data) assertConversation(c, { projectId: pid }, { withVisitor: true });
  return j;
}

// GET the messages (200) → {data, hasMore}.
export async function listMessages(ctx, token, pid, cid, query = '') {
  const j = ok(await api(ctx, 'GET', `${convPath(pid, cid, '/messages')}${query}`, { token }));
  assert.deepEqual(Object.keys(j).sort(), ['data', 'hasMore'], `messages answer keys: ${JSON.stringify(j).slice(0, 300)}`);
  assert.ok(Array.isArray(j.data));
  assert.equal(typeof j.hasMore, 'boolean');
  for (let i = 1; i < j.data.length; i++) assert.ok(j.data[i - 1].id < j.data[i].id, 'messages oldest first');
  return j;
}

// POST an agent reply (201) → the message.
export async function reply(ctx, token, pid, cid, text) {
  return ok(await api(ctx, 'POST', convPath(pid, cid, '/messages'), { token, body: { text } }), 201);
}
