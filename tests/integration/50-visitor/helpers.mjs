// Helpers for the widget connection flow tests (PROTOCOL.md sections 2-8): a chat server with
// projects and agents made through the CLI, visitor and agent clients on the official
// socket.io-client that record every event they receive (so a test can wait for an event that
// may already have arrived), a raw Socket.IO client over a plain `ws` WebSocket for packets
// socket.io-client would normalise, JWT forging with the server's secret, SQL queries on the
// server's database (SQLite, or PostgreSQL in scale mode), and the assertions for section 5
// refusals and section 8 payloads.
// Builds on ../lib/server.mjs (startServer, runCli, dbSql, ...): in scale mode
// (PARLEY_TEST_BACKEND=scale) every data directory is a PostgreSQL database and a Redis.
//
//   const ctx = await setup({ projects: [{ name: 'Site', domains: ['localhost'] }],
//                              agents: [{ email: 'a@x.test' }] });
//   const v = await visitor(ctx);            // connected and identified, v.uid, v.history
//   const fm = await sendOk(v, 'hello');     // ack == messageSent, returns finalMessage
//   ...
//   await teardown(ctx);                     // closes every client, stops the server (exit 0)
//
// Every wait has a timeout, scaled by SLOW for the sanitizer build.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startServer, runCli, tempDir, stopAll, sleep, waitUntil, dbSql, PARLEY_BIN } from '../lib/server.mjs';

export { sleep, waitUntil, stopAll };

// The sanitizer build is about 3x slower: every timeout below is multiplied by SLOW.
export const SLOW = process.env.PARLEY_SANITIZED || /asan|sanit/i.test(PARLEY_BIN) ? 3 : 1;
export const t = (ms) => Math.round(ms * SLOW);

export const ORIGIN = 'http://localhost:3000';
// createdAt: ISO-8601 UTC with milliseconds (PROTOCOL.md section 8).
export const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const REFUSAL_CODES = ['invalid_payload', 'not_identified', 'forbidden', 'rate_limited', 'too_large', 'unavailable'];

// Per-IP limits are raised for every server (PROTOCOL.md section 6 and protocol-decisions.md:
// they apply to loopback too, and these tests open many connections from 127.0.0.1); the
// rate-limit tests pass their own values, which come later on the command line and win.
export const GENEROUS_IP_LIMITS = ['--max-sockets-per-ip', '10000', '--max-connects-per-ip', '10000'];

// ---- identifiers -------------------------------------------------------------------------

let seq = 0;
// A fresh visitorUid: 8-64 characters of [A-Za-z0-9_-].
export function newUid(prefix = 'v') {
  return `${prefix}_${crypto.randomBytes(9).toString('base64url')}`;
}
// A fresh tempId (1-64 characters).
export function newTempId(prefix = 't') {
  seq += 1;
  return `${prefix}-${seq}-${crypto.randomBytes(4).toString('hex')}`;
}

// ---- CLI: projects and agents -------------------------------------------------------------

function cliJson(r, what) {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  try {
    return JSON.parse(lines[lines.length - 1]);
  } catch {
    assert.fail(`${what}: last stdout line is not JSON: ${JSON.stringify(r.stdout)}`);
  }
  return null;
}

// `parley project create` → {id, name, whitelistedDomains}.
export async function createProject(dataDir, { name = 'Site', domains = ['localhost'] } = {}) {
  const args = ['project', 'create', '--name', name, '--json'];
  for (const d of domains) args.push('--domain', d);
  return cliJson(await runCli(args, { dataDir }), `project create ${name}`);
}

// `parley project domains ID --add/--remove`.
export async function projectDomains(dataDir, id, { add = [], remove = [] } = {}) {
  const args = ['project', 'domains', String(id), '--json'];
  for (const d of add) args.push('--add', d);
  for (const d of remove) args.push('--remove', d);
  const r = await runCli(args, { dataDir });
  assert.equal(r.code, 0, `project domains: ${r.stderr}`);
}

// `parley agent create` → {id, email, fullName, projectId, role} (plus the password given).
export async function createAgent(dataDir, { email, password = 'correct horse battery', projectId, name, role } = {}) {
  const args = ['agent', 'create', '--email', email, '--password', password, '--project', String(projectId), '--json'];
  if (name) args.push('--name', name);
  if (role) args.push('--role', role);
  const a = cliJson(await runCli(args, { dataDir }), `agent create ${email}`);
  return { ...a, password };
}

// `parley agent token --email E`: a fresh access token (the last stdout line).
export async function agentToken(dataDir, email) {
  const r = await runCli(['agent', 'token', '--email', email], { dataDir });
  assert.equal(r.code, 0, `agent token: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  const tok = lines[lines.length - 1].trim();
  assert.match(tok, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, `agent token printed ${JSON.stringify(r.stdout)}`);
  return tok;
}

// `parley agent revoke --email E`.
export async function revokeAgent(dataDir, email) {
  const r = await runCli(['agent', 'revoke', '--email', email], { dataDir });
  assert.equal(r.code, 0, `agent revoke: ${r.stderr}`);
}

// ---- the database ------------------------------------------------------------------------

export function dbPath(dataDir) {
  return path.join(dataDir, 'parley.db');
}

// Runs one SQL statement on the server's database → the rows as objects ([] when none):
// sqlite3 on the SQLite file, or psql on the PostgreSQL database in scale mode (the harness's
// dbSql: the same row form in both; write SQL both understand, or pass {sqlite, postgres}).
export function sql(dataDir, query, { timeoutMs = t(15000) } = {}) {
  return dbSql(dataDir, query, { timeoutMs });
}

// SQL string literal.
export function q(s) {
  return `'${String(s).replace(/'/g, "''")}'`;
}

export async function setWidgetSettings(dataDir, projectId, settings) {
  await sql(dataDir, `update projects set widget_settings=${q(JSON.stringify(settings))} where id=${Number(projectId)}`);
}

export async function visitorRow(dataDir, projectId, uid) {
  const rows = await sql(dataDir, `select * from visitors where project_id=${Number(projectId)} and uid=${q(uid)}`);
  assert.ok(rows.length <= 1, `one visitor row per (project, uid): ${JSON.stringify(rows)}`);
  return rows[0];
}

// The messages of a visitor (by uid) in a project, oldest first.
export async function messageRows(dataDir, projectId, uid) {
  return sql(dataDir, `select m.* from messages m join visitors v on v.id = m.visitor_id
    where v.project_id=${Number(projectId)} and v.uid=${q(uid)} order by m.id`);
}

export async function conversationRows(dataDir, projectId, uid) {
  return sql(dataDir, `select c.* from conversations c join visitors v on v.id = c.visitor_id
    where v.project_id=${Number(projectId)} and v.uid=${q(uid)} order by c.id`);
}

export async function setConversationStatus(dataDir, conversationId, status) {
  await sql(dataDir, `update conversations set status=${q(status)} where id=${Number(conversationId)}`);
}

// ---- JWTs --------------------------------------------------------------------------------

export function jwtSecret(dataDir) {
  return fs.readFileSync(path.join(dataDir, 'jwt-secret'), 'utf8').split('\n')[0];
}

const b64u = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

// Signs payload with secret (the key is the secret text, as the server uses it). alg HS256,
// HS384 or HS512; 'none' gives an unsigned token ("header.payload.").
export function signJwt(payload, secret, { alg = 'HS256', header } = {}) {
  const h = header ?? { alg, typ: 'JWT' };
  const input = `${b64u(h)}.${b64u(payload)}`;
  if (alg === 'none') return `${input}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  assert.ok(hash, `unknown alg ${alg}`);
  return `${input}.${crypto.createHmac(hash, secret).update(input).digest('base64url')}`;
}

export function decodeJwt(token) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
}

// ---- the server --------------------------------------------------------------------------

// A data directory with projects (and agents), and a running server on it.
//   projects: [{name, domains}]          created in order: ids 1, 2, ...
//   agents:   [{email, project: index into projects (default 0), name, role, password}]
//   settings: {projectIndex: widgetSettings} written with sql() before the server starts
//   args:     extra `parley serve` flags (after the generous per-IP limits, so they win)
// → ctx {srv, dataDir, url, port, projects: [...], agents: [...]}
export async function setup({ projects = [{ name: 'Site', domains: ['localhost'] }], agents = [], settings = {}, args = [], env = {} } = {}) {
  const dataDir = path.join(tempDir('parley-visitor-'), 'data');
  const ps = [];
  for (const p of projects) ps.push(await createProject(dataDir, p));
  const as = [];
  for (const a of agents) {
    as.push(await createAgent(dataDir, { ...a, projectId: ps[a.project ?? 0].id }));
  }
  for (const [i, s] of Object.entries(settings)) await setWidgetSettings(dataDir, ps[i].id, s);
  const srv = await startServer({ dataDir, args: [...GENEROUS_IP_LIMITS, ...args], env, startTimeoutMs: t(10000) });
  return { srv, dataDir, url: srv.url, port: srv.port, projects: ps, agents: as, args: [...GENEROUS_IP_LIMITS, ...args] };
}

// Closes the server's clients still open, then stops the server and checks it exits 0 with a clean
// sanitizer output. all (for `after` hooks): also kill whatever else this process started.
export async function teardown(ctx, { all = true } = {}) {
  try {
    await closeAllClients(ctx?.url);
    if (ctx?.srv) assert.equal(await ctx.srv.stop({ timeoutMs: t(15000) }), 0, 'parley serve exit status');
  } finally {
    if (all) {
      await closeAllClients();
      await stopAll();
    }
  }
}

// ---- socket.io-client wrapper -----------------------------------------------------------

const openClients = new Set();

// Closes the clients still open (those of one server when url is given).
export async function closeAllClients(url) {
  for (const c of [...openClients]) if (url === undefined || c.url === url) c.close();
  await sleep(20);
}

// A socket.io-client socket that records everything it receives. Events are consumed by
// next() in arrival order, so a test can wait for an event that already arrived.
export class Client {
  constructor(socket, label = 'client') {
    this.socket = socket;
    this.label = label;
    this.log = []; // {event, payload, args, used}
    this.connectErrors = [];
    this.disconnects = [];
    this.connects = 0;
    this.reconnectAttempts = 0;
    this._waiters = new Set();
    socket.onAny((event, ...args) => this._record(event, args));
    socket.on('connect', () => {
      this.connects += 1;
      this._wake();
    });
    socket.on('connect_error', (err) => {
      this.connectErrors.push(err);
      this._wake();
    });
    socket.on('disconnect', (reason) => {
      this.disconnects.push(reason);
      this._wake();
    });
    socket.io.on('reconnect_attempt', () => {
      this.reconnectAttempts += 1;
    });
    openClients.add(this);
  }

  get id() {
    return this.socket.id;
  }

  get connected() {
    return this.socket.connected;
  }

  _record(event, args) {
    this.log.push({ event, payload: args[0], args, used: false });
    this._wake();
  }

  _wake() {
    for (const w of [...this._waiters]) w();
  }

  // Resolves when check() returns a truthy value (re-checked on every event), rejects after
  // timeoutMs with a message naming what was awaited and what came.
  _until(check, timeoutMs, label) {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        let r;
        try {
          r = check();
        } catch (e) {
          done();
          reject(e);
          return;
        }
        if (r) {
          done();
          resolve(r);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: ${label} not received within ${timeoutMs} ms; received: ${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
      };
      this._waiters.add(waiter);
      waiter();
    });
  }

  // Short account of what arrived (for failure messages).
  describe() {
    const parts = this.log.map((e) => `${e.used ? '' : '*'}${e.event} ${JSON.stringify(e.args).slice(0, 200)}`);
    if (this.connectErrors.length) parts.push(`connect_error ${this.connectErrors.map((e) => e.message).join(', ')}`);
    if (this.disconnects.length) parts.push(`disconnect ${this.disconnects.join(', ')}`);
    return parts.length ? parts.join(' | ') : '(nothing)';
  }

  // The first payload of the first not yet consumed `event` for which pred(payload) holds;
  // consumes it.
  next(event, { pred = () => true, timeoutMs = t(5000) } = {}) {
    return this._until(() => {
      const e = this.log.find((x) => !x.used && x.event === event && pred(x.payload));
      if (!e) return null;
      e.used = true;
      return { value: e.payload };
    }, timeoutMs, `event "${event}"`).then((r) => r.value);
  }

  // Payloads of every `event` received so far (consumed or not).
  all(event, pred = () => true) {
    return this.log.filter((x) => x.event === event && pred(x.payload)).map((x) => x.payload);
  }

  // Payloads of the `event`s not yet consumed.
  unused(event, pred = () => true) {
    return this.log.filter((x) => !x.used && x.event === event && pred(x.payload)).map((x) => x.payload);
  }

  // Waits ms and asserts that no unconsumed `event` (matching pred) arrived.
  async none(event, { pred = () => true, ms = t(400), why = '' } = {}) {
    await sleep(ms);
    const got = this.unused(event, pred);
    assert.equal(got.length, 0, `${this.label}: unexpected "${event}" ${why}: ${JSON.stringify(got).slice(0, 1000)}`);
  }

  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  // Emits with an ack; resolves with the ack's first argument; rejects after timeoutMs.
  async ack(event, payload, { timeoutMs = t(5000) } = {}) {
    try {
      return await this.socket.timeout(timeoutMs).emitWithAck(event, payload);
    } catch (e) {
      throw new Error(`${this.label}: no ack for "${event}" ${JSON.stringify(payload)?.slice(0, 200)} within ${timeoutMs} ms (${e.message}); received: ${this.describe()}`);
    }
  }

  // Resolves once connected; rejects with the connect_error's message.
  waitConnected(timeoutMs = t(8000)) {
    return this._until(() => {
      if (this.socket.connected) return true;
      if (this.connectErrors.length) throw new Error(`${this.label}: connect_error "${this.connectErrors[0].message}"`);
      return null;
    }, timeoutMs, 'connect');
  }

  // Resolves with the first connect_error message; rejects if the socket connects instead.
  waitConnectError(timeoutMs = t(8000)) {
    return this._until(() => {
      if (this.connectErrors.length) return this.connectErrors[0].message;
      if (this.socket.connected) throw new Error(`${this.label}: connected, expected a connect_error`);
      return null;
    }, timeoutMs, 'connect_error');
  }

  // Resolves when the socket is disconnected (for whatever reason).
  waitDisconnected(timeoutMs = t(8000)) {
    return this._until(() => (this.disconnects.length && !this.socket.connected ? this.disconnects[this.disconnects.length - 1] : null), timeoutMs, 'disconnect');
  }

  close() {
    openClients.delete(this);
    this.socket.io.reconnection(false);
    this.socket.disconnect();
    this.socket.io.engine?.close();
  }
}

// Opens a socket (a new connection every time: forceNew). opts go to io(); reconnection is
// off unless opts say otherwise.
export function openSocket(url, opts = {}, label) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: t(10000), ...opts });
  const c = new Client(socket, label);
  c.url = url;
  return c;
}

// io() options of a visitor: projectId in the query, the Origin header (origin null: none),
// transports (default WebSocket only; null: socket.io-client's default, polling then upgrade).
export function visitorOptions({ projectId, origin = ORIGIN, transports = ['websocket'], query = {}, ...rest } = {}) {
  const o = { query: { ...(projectId === undefined ? {} : { projectId }), ...query }, ...rest };
  if (origin !== null) o.extraHeaders = { Origin: origin };
  if (transports) o.transports = transports;
  return o;
}

// A connected (not identified) visitor socket.
export async function connectVisitor(ctx, { projectId = ctx.projects[0].id, label = 'visitor', ...opts } = {}) {
  const c = openSocket(ctx.url, visitorOptions({ projectId, ...opts }), label);
  await c.waitConnected();
  return c;
}

// Sends identify with an ack and checks the answer: the ack and the conversationHistory event
// carry the same {messages: [...]}. Returns the messages.
export async function identify(c, { projectId, uid }) {
  const res = await c.ack('identify', { projectId, visitorUid: uid });
  assert.ok(res && typeof res === 'object' && !res.error, `${c.label}: identify refused: ${JSON.stringify(res)}`);
  assert.deepEqual(Object.keys(res), ['messages'], `identify ack is {messages}: ${JSON.stringify(res).slice(0, 500)}`);
  assert.ok(Array.isArray(res.messages), 'messages is an array');
  const ev = await c.next('conversationHistory');
  assert.deepEqual(ev, res, 'conversationHistory event equals the identify ack');
  c.uid = uid;
  c.projectId = projectId;
  c.history = res.messages;
  return res.messages;
}

// A connected and identified visitor: {uid, projectId, history} on the Client.
export async function visitor(ctx, { uid = newUid(), projectId = ctx.projects[0].id, label, ...opts } = {}) {
  const c = await connectVisitor(ctx, { projectId, label: label ?? `visitor ${uid}`, ...opts });
  await identify(c, { projectId, uid });
  return c;
}

// sendMessage with an ack; checks ack == messageSent event ({tempId, finalMessage}); returns
// the finalMessage.
export async function sendOk(c, content, { tempId = newTempId(), sessionMetadata, timeoutMs = t(8000) } = {}) {
  const payload = { content, tempId };
  if (sessionMetadata !== undefined) payload.sessionMetadata = sessionMetadata;
  const res = await c.ack('sendMessage', payload, { timeoutMs });
  assert.ok(res && typeof res === 'object' && !res.error, `${c.label}: sendMessage refused: ${JSON.stringify(res)}`);
  assert.deepEqual(Object.keys(res).sort(), ['finalMessage', 'tempId'], `sendMessage ack is {tempId, finalMessage}: ${JSON.stringify(res)}`);
  assert.equal(res.tempId, tempId);
  const ev = await c.next('messageSent', { pred: (p) => p?.tempId === tempId, timeoutMs });
  assert.deepEqual(ev, res, 'messageSent event equals the sendMessage ack');
  return res.finalMessage;
}

// An agent socket with the given token (connected).
export async function connectAgent(ctx, token, { label = 'agent', ...opts } = {}) {
  const c = openSocket(ctx.url, { auth: { token }, transports: ['websocket'], ...opts }, label);
  await c.waitConnected();
  return c;
}

// An agent (ctx.agents[i]) connected with a fresh CLI token and joined to its project room
// (or to `rooms`).
export async function agentInRoom(ctx, i = 0, { rooms } = {}) {
  const a = ctx.agents[i];
  const token = await agentToken(ctx.dataDir, a.email);
  const c = await connectAgent(ctx, token, { label: `agent ${a.email}` });
  for (const pid of rooms ?? [a.projectId]) await joinRoom(c, pid);
  return c;
}

export async function joinRoom(c, projectId) {
  const res = await c.ack('joinProjectRoom', { projectId });
  assert.deepEqual(res, { status: 'ok', roomName: `project:${projectId}` }, `joinProjectRoom ${projectId}`);
}

// ---- section 5 refusals ------------------------------------------------------------------

// An ack answer that is a refusal: exactly {error: {code, message}}.
export function assertAckRefusal(res, code, what = '') {
  assert.ok(res && typeof res === 'object' && res.error, `${what}: expected a refusal "${code}", got ${JSON.stringify(res)?.slice(0, 500)}`);
  assert.deepEqual(Object.keys(res), ['error'], `${what}: refusal ack has only "error": ${JSON.stringify(res)}`);
  assert.equal(res.error.code, code, `${what}: code (message: ${res.error.message})`);
  assert.equal(typeof res.error.message, 'string', `${what}: error.message is a string`);
  assert.ok(res.error.message.length > 0, `${what}: error.message is not empty`);
  return res.error;
}

// An `exception` event: {status: "error", code, message, event, tempId?}.
export function assertException(ex, code, event, { tempId, what = '' } = {}) {
  assert.ok(ex && typeof ex === 'object', `${what}: exception payload ${JSON.stringify(ex)}`);
  assert.equal(ex.status, 'error', `${what}: exception.status`);
  assert.equal(ex.code, code, `${what}: exception.code (message: ${ex.message})`);
  assert.equal(typeof ex.message, 'string', `${what}: exception.message`);
  assert.ok(ex.message.length > 0, `${what}: exception.message is not empty`);
  if (event !== undefined) assert.equal(ex.event, event, `${what}: exception.event`);
  if (tempId !== undefined) assert.equal(ex.tempId, tempId, `${what}: exception.tempId`);
  return ex;
}

// Sends `event` twice: with an ack (→ the ack is the refusal, and no exception comes) and
// without (→ an `exception` event). tempId: expected in the exception (sendMessage).
export async function assertRefusedBoth(c, event, payload, code, { tempId, what = `${event} ${JSON.stringify(payload)?.slice(0, 120)}` } = {}) {
  const res = await c.ack(event, payload);
  const err = assertAckRefusal(res, code, `${what} (ack)`);
  if (payload === undefined) c.emit(event);
  else c.emit(event, payload);
  const ex = await c.next('exception', { timeoutMs: t(5000) });
  assertException(ex, code, event, { tempId, what: `${what} (exception)` });
  return { err, ex };
}

// ---- section 8 payloads ------------------------------------------------------------------

const isId = (x) => Number.isSafeInteger(x) && x > 0;

// A WidgetMessage (section 8) checked field by field. exp: values it must have.
export function assertWidgetMessage(m, exp = {}) {
  assert.ok(m && typeof m === 'object' && !Array.isArray(m), `WidgetMessage is an object: ${JSON.stringify(m)}`);
  for (const k of ['id', 'conversationId', 'content', 'senderId', 'fromCustomer', 'status', 'createdAt']) {
    assert.ok(k in m, `WidgetMessage has ${k}: ${JSON.stringify(m)}`);
  }
  assert.ok(isId(m.id), `id is a positive integer: ${m.id}`);
  assert.ok(isId(m.conversationId), `conversationId is a positive integer: ${m.conversationId}`);
  assert.equal(typeof m.content, 'string');
  assert.equal(typeof m.senderId, 'string');
  assert.equal(typeof m.fromCustomer, 'boolean');
  assert.ok(['sending', 'sent', 'delivered', 'read', 'failed'].includes(m.status), `status ${m.status}`);
  assert.match(m.createdAt, ISO_MS, 'createdAt is ISO-8601 UTC with milliseconds');
  assert.equal(new Date(m.createdAt).toISOString(), m.createdAt, 'createdAt is a real date');
  if ('contentType' in m) assert.ok(m.contentType === null || typeof m.contentType === 'string', `contentType ${m.contentType}`);
  if ('metadata' in m) assert.ok(m.metadata === null || (typeof m.metadata === 'object' && !Array.isArray(m.metadata)), `metadata ${JSON.stringify(m.metadata)}`);
  for (const [k, v] of Object.entries(exp)) assert.deepEqual(m[k], v, `WidgetMessage.${k}`);
  return m;
}

// A Message for agents: WidgetMessage plus visitorId and userId; `widget` is the WidgetMessage
// the visitor got for the same message: every field of it must be equal here.
export function assertAgentMessage(m, widget, exp = {}) {
  assertWidgetMessage(m);
  assert.ok('visitorId' in m, `Message has visitorId: ${JSON.stringify(m)}`);
  assert.ok('userId' in m, `Message has userId: ${JSON.stringify(m)}`);
  assert.ok(isId(m.visitorId), `visitorId is a positive integer: ${m.visitorId}`);
  assert.ok(m.userId === null || isId(m.userId), `userId ${m.userId}`);
  if (widget) {
    for (const [k, v] of Object.entries(widget)) assert.deepEqual(m[k], v, `Message.${k} equals the WidgetMessage's`);
  }
  for (const [k, v] of Object.entries(exp)) assert.deepEqual(m[k], v, `Message.${k}`);
  return m;
}

// ---- raw Socket.IO over a plain WebSocket ------------------------------------------------

// Engine.IO v4 / Socket.IO v5 by hand: the open packet, CONNECT, pings answered, every other
// packet recorded as text. For inputs socket.io-client would normalise (duplicate keys, NUL
// escapes, big numbers, deep nesting).
export class RawSio {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    this.packets = []; // {text, used}
    this.closed = null; // {code, reason} once closed
    this._waiters = new Set();
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : data.toString('utf8');
      if (text === '2') {
        if (ws.readyState === WebSocket.OPEN) ws.send('3');
        return;
      }
      this.packets.push({ text, binary: isBinary ? data : null, used: false });
      this._wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this._wake();
    });
    ws.on('error', (e) => {
      this.error = e;
      this._wake();
    });
  }

  _wake() {
    for (const w of [...this._waiters]) w();
  }

  _until(check, timeoutMs, label) {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const r = check();
        if (r) {
          done();
          resolve(r);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: ${label} not received within ${timeoutMs} ms; received: ${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
      };
      this._waiters.add(waiter);
      waiter();
    });
  }

  // Opens the WebSocket (Engine.IO handshake over it) and reads the open packet.
  //   query: extra query parameters (projectId), headers: request headers (Origin)
  static async open(port, { query = {}, headers = {}, label = 'raw', timeoutMs = t(5000) } = {}) {
    const qs = new URLSearchParams({ EIO: '4', transport: 'websocket', ...query }).toString();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?${qs}`, { headers, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const r = new RawSio(ws, label);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label}: WebSocket open timed out`)), timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('unexpected-response', (req, res) => {
        clearTimeout(timer);
        reject(new Error(`${label}: WebSocket upgrade refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const open = await r.nextPacket((s) => s.startsWith('0'), { timeoutMs, label: 'Engine.IO open packet' });
    r.handshake = JSON.parse(open.slice(1));
    return r;
  }

  // A visitor: open, CONNECT to "/", and expect the CONNECT answer `40{"sid":...}`.
  static async visitor(port, { projectId = 1, origin = ORIGIN, label = 'raw visitor' } = {}) {
    const r = await RawSio.open(port, { query: { projectId: String(projectId) }, headers: origin === null ? {} : { Origin: origin }, label });
    r.send('40');
    const ans = await r.nextPacket((s) => s.startsWith('40') || s.startsWith('44'), { label: 'CONNECT answer' });
    assert.match(ans, /^40\{"sid":"[^"]+"/, `${label}: CONNECT accepted: ${ans}`);
    return r;
  }

  send(text) {
    this.ws.send(text);
  }

  // Sends `42<ackId>[event, ...]` built from raw JSON text (argsJson: the text after the event
  // name, e.g. '{"a":1}'); ackId undefined sends no ack id.
  sendEventRaw(event, argsJson, ackId) {
    const head = `42${ackId === undefined ? '' : ackId}`;
    this.send(argsJson === undefined ? `${head}[${JSON.stringify(event)}]` : `${head}[${JSON.stringify(event)},${argsJson}]`);
  }

  // The next unconsumed text packet for which pred holds; rejects at once when the server has
  // closed the connection without sending one.
  nextPacket(pred = () => true, { timeoutMs = t(5000), label = 'packet' } = {}) {
    return this._until(() => {
      const p = this.packets.find((x) => !x.used && x.text !== null && pred(x.text));
      if (p) {
        p.used = true;
        return { text: p.text };
      }
      if (this.closed) return { closed: true };
      return null;
    }, timeoutMs, label).then((r) => {
      if (r.closed) throw new Error(`${this.label}: the server closed the connection (${this.closed.code}) instead of sending ${label}; received: ${this.describe()}`);
      return r.text;
    });
  }

  describe() {
    return this.packets.map((p) => `${p.used ? '' : '*'}${p.text?.slice(0, 200)}`).join(' | ') + (this.closed ? ` | closed ${this.closed.code}` : '');
  }

  // The answer to ack id `id`: the first argument of `43<id>[...]`.
  async nextAck(id, { timeoutMs = t(5000) } = {}) {
    const re = new RegExp(`^43${id}\\[`);
    const text = await this.nextPacket((s) => re.test(s), { timeoutMs, label: `ack ${id}` });
    const args = JSON.parse(text.slice(`43${id}`.length));
    assert.ok(Array.isArray(args), 'ack data is an array');
    return args[0];
  }

  // The next event `name`: its first argument.
  async nextEvent(name, { timeoutMs = t(5000), pred = () => true } = {}) {
    const text = await this.nextPacket((s) => {
      if (!s.startsWith('42[')) return false;
      try {
        const a = JSON.parse(s.slice(2));
        return a[0] === name && pred(a[1]);
      } catch {
        return false;
      }
    }, { timeoutMs, label: `event ${name}` });
    return JSON.parse(text.slice(2))[1];
  }

  // Asserts that no unconsumed event `name` came within ms.
  async noEvent(name, ms = t(300)) {
    await sleep(ms);
    const bad = this.packets.filter((p) => !p.used && p.text?.startsWith(`42[${JSON.stringify(name)}`));
    assert.equal(bad.length, 0, `${this.label}: unexpected ${name}: ${bad.map((p) => p.text).join(' | ')}`);
  }

  waitClose(timeoutMs = t(5000)) {
    return this._until(() => this.closed, timeoutMs, 'close');
  }

  close() {
    try {
      this.ws.terminate();
    } catch {
      // already closed
    }
  }
}
