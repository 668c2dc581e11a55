// The Parley side of the browser tests: the web root with a freshly built widget.js, a real
// `parley serve` (tests/integration/lib/server.mjs) with projects, widget settings and agents
// made through the CLI, restarts on the same port and data, the database through the sqlite3
// CLI, and agent sockets (Node's socket.io-client) that record what their project room gets.
//
// Environment: PARLEY_BIN (the server binary, default build/parley), PARLEY_WEB_ROOT (a web
// root that already holds widget.js; default: build web/widget into a temp dir once per test
// file, so the tests always run the current sources).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, runCli, tempDir, sleep, waitUntil, REPO, PARLEY_BIN } from '../../integration/lib/server.mjs';

export { sleep, waitUntil };

// Sanitizer builds are slower: every wait below is scaled.
export const SLOW = process.env.PARLEY_SANITIZED || /asan|sanit/i.test(PARLEY_BIN) ? 3 : 1;
export const t = (ms) => Math.round(ms * SLOW);

let webRootPromise;
// The web root with widget.js (built once per process unless PARLEY_WEB_ROOT is set).
export function webRoot() {
  if (!webRootPromise) {
    webRootPromise = (async () => {
      if (process.env.PARLEY_WEB_ROOT) {
        const dir = path.resolve(REPO, process.env.PARLEY_WEB_ROOT);
        assert.ok(fs.existsSync(path.join(dir, 'widget.js')), `PARLEY_WEB_ROOT=${dir} has no widget.js`);
        return dir;
      }
      const { buildWidget } = await import('../../../web/build.mjs');
      const dir = path.join(tempDir('parley-e2e-web-'), 'web');
      fs.mkdirSync(dir, { recursive: true });
      await buildWidget(dir);
      return dir;
    })();
  }
  return webRootPromise;
}

function cliJson(r, what) {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

// Per-IP limits are generous: every browser tab and agent connects from 127.0.0.1.
const SERVE_ARGS = ['--max-sockets-per-ip', '10000', '--max-connects-per-ip', '10000'];

// A data directory with projects ([{name, domains, settings}]) and agents
// ([{email, project: index}]), and a server on it serving the widget.
// → ctx {srv, url, dataDir, projects, agents, restart(), stop()}
export async function startParley({ projects = [{ name: 'Shop', domains: ['localhost'] }], agents = [], args = [] } = {}) {
  const dataDir = path.join(tempDir('parley-e2e-'), 'data');
  const ps = [];
  for (const p of projects) {
    const argv = ['project', 'create', '--name', p.name, '--json'];
    for (const d of p.domains ?? []) argv.push('--domain', d);
    const proj = cliJson(await runCli(argv, { dataDir }), `project create ${p.name}`);
    if (p.settings) await sql(dataDir, `update projects set widget_settings=${q(JSON.stringify(p.settings))} where id=${proj.id}`);
    ps.push(proj);
  }
  const as = [];
  for (const a of agents) {
    const projectId = ps[a.project ?? 0].id;
    const argv = ['agent', 'create', '--email', a.email, '--password', 'correct horse battery', '--project', String(projectId), '--json'];
    if (a.name) argv.push('--name', a.name);
    as.push({ ...cliJson(await runCli(argv, { dataDir }), `agent create ${a.email}`), projectId });
  }
  const root = await webRoot();
  const serveArgs = [...SERVE_ARGS, ...args];
  const ctx = {
    dataDir,
    projects: ps,
    agents: as,
    srv: await startServer({ dataDir, webRoot: root, args: serveArgs, startTimeoutMs: t(10000) }),
    get url() {
      return this.srv.url;
    },
    // Stops the server (SIGTERM) and returns once it has exited cleanly.
    async stop() {
      assert.equal(await ctx.srv.stop({ timeoutMs: t(15000) }), 0, 'parley serve exit status');
    },
    // Starts it again on the same port and data.
    async start() {
      ctx.srv = await startServer({ dataDir, webRoot: root, port: ctx.srv.port, args: serveArgs, startTimeoutMs: t(10000) });
    },
  };
  return ctx;
}

// ---- the database ----

export const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

// Rows of one SQL statement (sqlite3 -json on <dataDir>/parley.db).
export function sql(dataDir, query) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-json', '-bail', '-cmd', '.timeout 10000', path.join(dataDir, 'parley.db'), query],
      { timeout: t(15000) }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`sqlite3 "${query}": ${err.message}\n${stderr}`));
        const s = stdout.trim();
        resolve(s ? JSON.parse(s) : []);
      });
  });
}

// Messages of project pid, oldest first (optionally only those whose content is `content`).
export function messageRows(dataDir, pid, content) {
  const where = content === undefined ? '' : ` and content=${q(content)}`;
  return sql(dataDir, `select m.id, m.content, m.from_customer, m.status, m.temp_id, m.sender_id,
    m.conversation_id, v.uid from messages m join visitors v on v.id = m.visitor_id
    where m.project_id=${Number(pid)}${where} order by m.id`);
}

// ---- agents ----

async function cliToken(ctx, i) {
  const r = await runCli(['agent', 'token', '--email', ctx.agents[i].email], { dataDir: ctx.dataDir });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').pop().trim();
}

// An agent on the HTTP API (docs/http-api.md) with a fresh CLI token:
// reply(conversationId, text) → the stored message; typing(conversationId, isTyping).
export async function agentApi(ctx, i = 0) {
  const a = ctx.agents[i];
  const token = await cliToken(ctx, i);
  const call = async (method, p, body, expect) => {
    const res = await fetch(`${ctx.url}/api/v1/projects/${a.projectId}/inbox/conversations/${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    assert.equal(res.status, expect, `${method} ${p}: ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    reply: (conversationId, text) => call('POST', `${conversationId}/messages`, { text }, 201),
    typing: (conversationId, isTyping) => call('POST', `${conversationId}/typing`, { isTyping }, 204),
  };
}

// An agent socket (fresh CLI token) joined to its project room; `events` records
// [name, payload] of everything the room sends; next(name, pred) waits for one.
export async function agentSocket(ctx, i = 0) {
  const a = ctx.agents[i];
  const token = await cliToken(ctx, i);
  const socket = io(ctx.url, { auth: { token }, transports: ['websocket'], reconnection: false });
  const events = [];
  socket.onAny((name, payload) => events.push([name, payload]));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const ack = await socket.timeout(t(5000)).emitWithAck('joinProjectRoom', { projectId: a.projectId });
  assert.deepEqual(ack, { status: 'ok', roomName: `project:${a.projectId}` });
  const used = new Set();
  return {
    socket,
    events,
    // The first not yet consumed `name` event whose payload satisfies pred (waits for it);
    // consumes it.
    async next(name, pred = () => true, timeoutMs = t(8000)) {
      const i = await waitUntil(() => {
        const k = events.findIndex(([n, p], j) => !used.has(j) && n === name && pred(p));
        return k >= 0 ? k + 1 : 0;
      }, { timeoutMs, label: `agent event ${name} (got ${JSON.stringify(events).slice(-1500)})` });
      used.add(i - 1);
      return events[i - 1][1];
    },
    // Payloads of every `name` event so far.
    all: (name, pred = () => true) => events.filter(([n, p]) => n === name && pred(p)).map(([, p]) => p),
    close: () => socket.close(),
  };
}
