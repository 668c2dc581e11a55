// The dashboard's side of the browser tests: a web root holding the freshly built dashboard
// (web/build-dashboard.mjs) and widget (web/build.mjs), a real `parley serve` on it (projects and
// agents made with the CLI, restarts on the same port and data), the HTTP API from Node, agents
// signed in to /app/ in Chromium, and visitors driven by Node's socket.io-client (with an Origin
// the project whitelists) that record everything the server sends them.
//
// Environment: PARLEY_BIN (server binary, default build/parley), PARLEY_WEB_ROOT (a web root that
// already holds app/index.html and widget.js, e.g. build/web after `make`; default: both are
// built into a temp dir once per test file, so the tests always run the current sources).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { io } from 'socket.io-client';
import { startServer, runCli, tempDir, sleep, waitUntil, REPO } from '../../integration/lib/server.mjs';
import { t, sql, q } from './parley.mjs';

export { sleep, waitUntil, t, sql, q };
export const PASSWORD = 'correct horse battery';

let webRootPromise;
// The web root with app/ (the dashboard) and widget.js.
export function dashboardWebRoot() {
  if (!webRootPromise) {
    webRootPromise = (async () => {
      if (process.env.PARLEY_WEB_ROOT) {
        const dir = path.resolve(REPO, process.env.PARLEY_WEB_ROOT);
        assert.ok(fs.existsSync(path.join(dir, 'app', 'index.html')), `PARLEY_WEB_ROOT=${dir} has no app/index.html`);
        assert.ok(fs.existsSync(path.join(dir, 'widget.js')), `PARLEY_WEB_ROOT=${dir} has no widget.js`);
        return dir;
      }
      const dir = path.join(tempDir('parley-dash-web-'), 'web');
      fs.mkdirSync(dir, { recursive: true });
      const { buildDashboard } = await import('../../../web/build-dashboard.mjs');
      const { buildWidget } = await import('../../../web/build.mjs');
      await buildDashboard(dir);
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

// Generous limits: every browser tab, agent and visitor connects from 127.0.0.1, and tests send
// bursts of messages.
const SERVE_ARGS = [
  '--max-sockets-per-ip', '10000', '--max-connects-per-ip', '10000',
  '--visitor-burst', '100000', '--visitor-per-minute', '100000', '--typing-per-second', '100000',
];

// A server on a fresh data directory.
//   projects: [{name, domains, settings}] made with the CLI (ids 1, 2, ... unless demo)
//   agents:   [{email, name, project: index, role}] made with the CLI (password PASSWORD)
//   demo:     pass --demo (project 1 "Demo" whitelisting localhost and 127.0.0.1)
// → ctx {srv, url, app, dataDir, projects, agents, api(), login(), stop(), start()}
export async function startDashboard({ projects = [], agents = [], demo = false, args = [] } = {}) {
  const dataDir = path.join(tempDir('parley-dash-'), 'data');
  const ps = [];
  if (demo) {
    // The demo project is made by `serve --demo` on an empty database: start once to make it.
    const first = await startServer({ dataDir, webRoot: await dashboardWebRoot(), args: [...SERVE_ARGS, '--demo'], startTimeoutMs: t(10000) });
    assert.equal(await first.stop({ timeoutMs: t(15000) }), 0);
    const list = await runCli(['project', 'list', '--json'], { dataDir });
    for (const line of list.stdout.trim().split('\n').filter(Boolean)) ps.push(JSON.parse(line));
  }
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
    const argv = ['agent', 'create', '--email', a.email, '--password', PASSWORD, '--project', String(projectId), '--json'];
    if (a.name) argv.push('--name', a.name);
    if (a.role) argv.push('--role', a.role);
    as.push({ ...cliJson(await runCli(argv, { dataDir }), `agent create ${a.email}`), projectId, name: a.name });
  }
  const root = await dashboardWebRoot();
  const serveArgs = [...SERVE_ARGS, ...args];
  const ctx = {
    dataDir,
    projects: ps,
    agents: as,
    srv: await startServer({ dataDir, webRoot: root, args: serveArgs, startTimeoutMs: t(10000) }),
    get url() {
      return this.srv.url;
    },
    get app() {
      return `${this.srv.url}/app/`;
    },
    // Stops the server (SIGTERM) and waits for a clean exit.
    async stop() {
      assert.equal(await ctx.srv.stop({ timeoutMs: t(15000) }), 0, 'parley serve exit status');
    },
    // Starts it again on the same port and data (extra: more arguments for this run).
    async start(extra = []) {
      ctx.srv = await startServer({ dataDir, webRoot: root, port: ctx.srv.port, args: [...serveArgs, ...extra], startTimeoutMs: t(10000) });
    },
    // A request to /api/v1 → {status, json, text}.
    async api(method, p, { token, body } = {}) {
      const headers = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(`${ctx.url}/api/v1${p}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(t(15000)),
      });
      const text = await res.text();
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text };
    },
    // Signs in over HTTP → the access token.
    async token(email) {
      const r = await ctx.api('POST', '/auth/login', { body: { email, password: PASSWORD } });
      assert.equal(r.status, 200, r.text);
      return r.json.accessToken;
    },
    // Signs in over HTTP and GETs path → the answer's JSON (asserts 200).
    async get(email, p) {
      const r = await ctx.api('GET', p, { token: await ctx.token(email) });
      assert.equal(r.status, 200, `GET ${p}: ${r.text}`);
      return r.json;
    },
  };
  return ctx;
}

// ---- the dashboard in Chromium ----

// Opens /app/ (optionally at a hash route) in a new tab of browser (lib/browser.mjs).
export async function openApp(browser, ctx, { hash = '', viewport } = {}) {
  const page = await browser.newPage(viewport);
  await page.goto(`${ctx.app}${hash}`);
  return page;
}

// Fills the sign-in form and waits for the signed-in shell.
export async function signIn(page, email, password = PASSWORD) {
  await page.locator('.auth-form input[type=email]').waitFor();
  await page.fill('.auth-form input[type=email]', email);
  await page.fill('.auth-form input[type=password]', password);
  await page.press('.auth-form input[type=password]', 'Enter');
  await page.locator('.shell').waitFor({ timeout: t(15000) });
}

// Makes the page believe its tab is hidden (or visible again) and tells it so.
export async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

// The conversation rows of the inbox list: [{id, name, snippet, unread, online, typing, active}].
export function inboxRows(page) {
  return page.locator('.conv-list').evaluate((ul) =>
    [...ul.querySelectorAll('.conv-item')].map((a) => ({
      id: Number(a.dataset.id),
      name: a.querySelector('.ci-name').textContent,
      snippet: a.querySelector('.ci-snippet').textContent,
      unread: Number(a.querySelector('.ci-badge')?.textContent ?? 0),
      online: a.querySelector('.presence').classList.contains('on'),
      typing: !!a.querySelector('.typing-text'),
      active: a.getAttribute('aria-current') === 'true',
    })),
  );
}

// The message bubbles of the open conversation: [{text, mine, state}] (the screen-reader prefix
// of each bubble left out).
export function bubbles(page) {
  return page.locator('.history-body').evaluate((el) =>
    [...el.querySelectorAll('.bubble')].map((b) => {
      const c = b.cloneNode(true);
      c.querySelector('.sr')?.remove();
      return {
        text: c.textContent,
        mine: !!b.closest('.mine'),
        state: b.classList.contains('failed') ? 'failed' : b.classList.contains('sending') ? 'sending' : 'sent',
      };
    }),
  );
}

// ---- visitors (Node's socket.io-client) ----

let uidSeq = 0;
export const newUid = () => `v-${process.pid}-${++uidSeq}-${crypto.randomBytes(4).toString('hex')}`;

// A visitor of project projectId connected from origin and identified; events holds
// [name, payload] of everything it receives.
export async function visitor(ctx, { projectId, uid = newUid(), origin = 'http://localhost:3000' } = {}) {
  const socket = io(ctx.url, { query: { projectId }, extraHeaders: { origin }, transports: ['websocket'], reconnection: false });
  const events = [];
  socket.onAny((name, payload) => events.push([name, payload]));
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  const history = await socket.timeout(t(5000)).emitWithAck('identify', { projectId, visitorUid: uid });
  assert.ok(Array.isArray(history?.messages), `identify answered ${JSON.stringify(history)}`);
  let seq = 0;
  const used = new Set();
  const v = {
    uid,
    socket,
    events,
    // Sends content; resolves with the stored message (messageSent.finalMessage).
    async send(content, sessionMetadata) {
      const body = { content, tempId: `t${++seq}-${crypto.randomBytes(3).toString('hex')}` };
      if (sessionMetadata) body.sessionMetadata = sessionMetadata;
      const r = await socket.timeout(t(10000)).emitWithAck('sendMessage', body);
      assert.ok(r?.finalMessage, `sendMessage answered ${JSON.stringify(r)}`);
      return r.finalMessage;
    },
    typing: (isTyping) => socket.emit('visitorIsTyping', { isTyping }),
    context: (currentUrl) => socket.emit('updateContext', { currentUrl }),
    // The first not yet consumed `name` event whose payload satisfies pred; consumes it.
    async next(name, pred = () => true, timeoutMs = t(10000)) {
      let found;
      await waitUntil(() => {
        const i = events.findIndex(([n, p], k) => !used.has(k) && n === name && pred(p));
        if (i < 0) return false;
        used.add(i);
        found = events[i][1];
        return true;
      }, { timeoutMs, label: `visitor event ${name}` });
      return found;
    },
    all: (name) => events.filter(([n]) => n === name).map(([, p]) => p),
    close: () => socket.close(),
  };
  return v;
}
