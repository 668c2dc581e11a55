// The scale-out configuration for the multi-node and fault tests (docs: scale-decisions of issue
// 7): one throwaway PostgreSQL cluster (scripts/pg.sh) with a fresh database per test file, one
// throwaway Redis (redis.mjs), serve nodes with `--worker false` and `parley worker` processes,
// all sharing the database, Redis and one JWT secret. Plus a widget-like burst sender that
// re-sends unacknowledged messages with the SAME tempId (after an `unavailable` refusal, an ack
// timeout or a reconnect, possibly to another node), and the checks of the database after a burst.
//
//   const c = await startCluster({ name: 'faults_worker' });   // nodes A and B, worker w1
//   c.nodes.A.url, c.nodes.B.url, c.worker('w1'), c.pg, c.redis, c.dbUrl, c.projectId
//   const w2 = await c.startWorker('w2');                         // another worker
//   const rows = await c.sql('select count(*)::int as n from messages');
//   await c.stop();                                               // everything, exit statuses checked
//
// Every wait is bounded; timeouts are multiplied by SLOW (t()) for the sanitizer build.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, runCli, tempDir, sleep, REPO, PARLEY_BIN, assertNoSanitizerReport } from '../lib/server.mjs';
import { startRedis } from './redis.mjs';
import {
  t, SLOW, openSocket, visitorOptions, identify, newUid, newTempId, GENEROUS_IP_LIMITS, joinRoom,
  connectAgent, closeAllClients,
} from '../50-visitor/helpers.mjs';

export { t, SLOW, sleep, newUid, newTempId };

export const PG_SH = path.join(REPO, 'scripts/pg.sh');
// Per-visitor limits out of the way: the bursts send 20 messages per visitor at once.
export const NO_VISITOR_LIMITS = ['--visitor-burst', '1000000', '--visitor-per-minute', '1000000', '--typing-per-second', '1000000'];

// ---- PostgreSQL ------------------------------------------------------------------------------

const pgDirs = new Set();
// A test process ended by a signal (node --test's timeout, Ctrl-C) runs no 'exit' handler: turn
// the signal into an exit so that the clusters, workers and Redis servers are cleaned up.
for (const [sig, n] of [['SIGINT', 2], ['SIGTERM', 15]]) {
  process.once(sig, () => process.exit(128 + n));
}
process.on('exit', () => {
  for (const d of pgDirs) {
    try {
      execFileSync(PG_SH, ['destroy', d], { stdio: 'ignore', timeout: 30000 });
    } catch {
      // best effort
    }
  }
});

function run(cmd, args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${path.basename(cmd)} ${args.join(' ').slice(0, 300)}: ${err.message}\n${stderr}`));
      resolve(stdout);
    });
  });
}

// A throwaway PostgreSQL cluster: {dir, url (database parley), urlOf(db), kill(), start(),
// createDatabase(name) → url, sql(url, query) → rows, destroy()}.
export async function startPg() {
  // Not a tempDir(): the cluster must be shut down (pg.sh destroy) before its directory goes.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-st-pg-'));
  pgDirs.add(dir);
  const url = (await run(PG_SH, ['start', dir])).trim();
  assert.match(url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/parley$/, `pg.sh start printed ${url}`);
  const base = url.slice(0, url.lastIndexOf('/'));
  const pg = {
    dir,
    url,
    urlOf: (db) => `${base}/${db}`,
    // An immediate shutdown (a crash); start() brings it back on the same port.
    kill: () => run(PG_SH, ['kill', dir]),
    start: async () => assert.equal((await run(PG_SH, ['start', dir])).trim(), url),
    async createDatabase(name) {
      assert.match(name, /^[a-z_][a-z0-9_]*$/);
      await run('psql', ['-XtAq', '-v', 'ON_ERROR_STOP=1', pg.urlOf('postgres'), '-c', `CREATE DATABASE ${name}`]);
      return pg.urlOf(name);
    },
    async destroy() {
      await run(PG_SH, ['destroy', dir]);
      pgDirs.delete(dir);
    },
  };
  return pg;
}

// Runs one query with psql on dbUrl; → its rows as objects ([] when none).
export async function pgSql(dbUrl, query) {
  const out = await run('psql', ['-XtAq', '-v', 'ON_ERROR_STOP=1', dbUrl, '-c',
    `SELECT coalesce(json_agg(q), '[]'::json) FROM (${query}) q`]);
  return JSON.parse(out.trim());
}

// ---- processes ---------------------------------------------------------------------------------

const liveWorkers = new Set();
process.on('exit', () => {
  for (const p of liveWorkers) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function cleanEnv() {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('PARLEY_') && k !== 'PARLEY_BIN') delete env[k];
  return env;
}

// Starts `parley [settings] worker` and waits for `event=worker.ready`.
// → {id, proc, pid, stderr(), waitForStderr(re, ms), kill(signal) → exit promise, stop() → exit
//   code (SIGTERM, sanitizer output checked), exited}
export async function spawnWorker(settings, { id = 'worker', startTimeoutMs = t(10000) } = {}) {
  const proc = spawn(PARLEY_BIN, [...settings, '--log-level', 'info', 'worker'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  liveWorkers.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => liveWorkers.delete(proc));
  let err = '';
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  const watchers = new Set();
  proc.stdout.resume();
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    err += d;
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(`[${id}] ${d}`);
    for (const w of [...watchers]) w();
  });
  exited.then(() => {
    for (const w of [...watchers]) w();
  });
  const waitForStderr = (re, timeoutMs = t(5000)) => new Promise((resolve, reject) => {
    const check = () => {
      const m = re.exec(err);
      if (m) {
        done();
        resolve(m);
      } else if (gone) {
        done();
        reject(new Error(`parley worker ${id} exited (${proc.exitCode ?? proc.signalCode}) before ${re} appeared\nstderr:\n${err.slice(-6000)}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`parley worker ${id}: ${re} did not appear within ${timeoutMs} ms\nstderr:\n${err.slice(-6000)}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      watchers.delete(check);
    };
    watchers.add(check);
    check();
  });
  try {
    await waitForStderr(/event=worker\.ready\b/, startTimeoutMs);
  } catch (e) {
    proc.kill('SIGKILL');
    await exited;
    throw e;
  }
  let stopping = null;
  return {
    id,
    proc,
    pid: proc.pid,
    exited,
    stderr: () => err,
    waitForStderr,
    kill(signal = 'SIGKILL') {
      if (!gone) proc.kill(signal);
      return exited;
    },
    // SIGTERM: the worker drains and exits 0 (scale-decisions). → the exit code.
    stop({ timeoutMs = t(15000) } = {}) {
      stopping ??= (async () => {
        if (!gone) proc.kill('SIGTERM');
        let timer;
        const r = await Promise.race([exited, new Promise((resolve) => {
          timer = setTimeout(() => resolve(null), timeoutMs);
        })]);
        clearTimeout(timer);
        if (r === null) {
          proc.kill('SIGKILL');
          await exited;
          assert.fail(`parley worker ${id} did not exit within ${timeoutMs} ms of SIGTERM\nstderr:\n${err.slice(-4000)}`);
        }
        await new Promise((resolve) => setImmediate(resolve));
        assertNoSanitizerReport(err, `parley worker ${id}`);
        return r.code ?? r.signal;
      })();
      return stopping;
    },
  };
}

// ---- the cluster -------------------------------------------------------------------------------

// The database, the CLI's projects and agents, the workers and the nodes of startCluster().
async function setUp(c, { name, projects, agents, nodes, workers, visibilityMs, nodeArgs, workerArgs }) {
  const dbUrl = await c.pg.createDatabase(name);
  const secret = crypto.randomBytes(32).toString('base64url');
  const dataDir = path.join(tempDir('parley-st-'), 'data');
  const settings = ['--database', dbUrl, '--redis', c.redis.url, '--jwt-secret', secret,
    '--queue-visibility-timeout', String(visibilityMs)];

  Object.assign(c, { dbUrl, secret, settings, dataDir });

  const cli = async (args, what) => {
    const r = await runCli(['--database', dbUrl, '--jwt-secret', secret, ...args], { dataDir, timeoutMs: t(30000) });
    assert.equal(r.code, 0, `${what}: exit ${r.code ?? r.signal}\nstderr:\n${r.stderr}\nstdout:\n${r.stdout}`);
    return r.stdout.trim().split('\n').pop();
  };
  for (const p of projects) {
    const args = ['project', 'create', '--name', p.name, '--json'];
    for (const d of p.domains ?? ['localhost']) args.push('--domain', d);
    c.projects.push(JSON.parse(await cli(args, `project create ${p.name}`)));
  }
  for (const a of agents) {
    const args = ['agent', 'create', '--email', a.email, '--password', a.password ?? 'correct horse battery',
      '--project', String(c.projects[a.project ?? 0].id), '--json'];
    if (a.name) args.push('--name', a.name);
    if (a.role) args.push('--role', a.role);
    c.agents.push(JSON.parse(await cli(args, `agent create ${a.email}`)));
  }
  c.projectId = c.projects[0]?.id;
  // A fresh access token of an agent (`parley agent token`), valid on every node.
  c.token = (email) => cli(['agent', 'token', '--email', email], `agent token ${email}`);
  c.sql = (q) => pgSql(dbUrl, q);

  c.startNode = async (id) => {
    const srv = await startServer({
      dataDir,
      args: [...GENEROUS_IP_LIMITS, ...NO_VISITOR_LIMITS, ...settings, '--worker', 'false', '--node-id', `node-${id}`, ...nodeArgs],
      startTimeoutMs: t(15000),
    });
    srv.nodeId = id;
    c.nodes[id] = srv;
    return srv;
  };
  c.startWorker = async (id) => {
    const w = await spawnWorker([...settings, '--data-dir', dataDir, '--node-id', id, ...workerArgs], { id });
    c.workers.set(id, w);
    return w;
  };
  c.worker = (id) => c.workers.get(id);

  for (const id of workers) await c.startWorker(id);
  for (const id of nodes) await c.startNode(id);
}

// PostgreSQL (database `name`), Redis, projects and agents made with the CLI, nodes (serve
// --worker false) and workers. Options:
//   name         the database name ([a-z0-9_])
//   projects     [{name, domains}] (default one project for localhost)
//   agents       [{email, name, project (index), role}]
//   nodes        node ids to start (default ['A', 'B']), each with --node-id node-<id>
//   workers      worker ids to start (default ['w1']), each with --node-id <id>
//   visibilityMs --queue-visibility-timeout (how long a dead worker's entries stay pending)
//   nodeArgs / workerArgs  more settings
// → {pg, redis, dbUrl, secret, settings, dataDir, projects, agents, projectId, nodes: {A, B},
//    workers: Map, worker(id), startNode(id), startWorker(id), sql(q), token(email), stop()}
export async function startCluster({
  name,
  projects = [{ name: 'Site', domains: ['localhost'] }],
  agents = [],
  nodes = ['A', 'B'],
  workers = ['w1'],
  visibilityMs = 2000,
  nodeArgs = [],
  workerArgs = [],
} = {}) {
  const pg = await startPg();
  let redis;
  try {
    redis = await startRedis();
  } catch (e) {
    await pg.destroy();
    throw e;
  }
  const c = { pg, redis, projects: [], agents: [], nodes: {}, workers: new Map() };

  // Stops everything. check: the nodes and workers still running exit 0 on SIGTERM with a
  // clean sanitizer output (nodes and workers a test killed are skipped).
  c.stop = async ({ check = true } = {}) => {
    for (const s of liveSenders) s.abort();
    await closeAllClients();
    const problems = [];
    for (const srv of Object.values(c.nodes)) {
      if (srv.proc.exitCode !== null || srv.proc.signalCode !== null) {
        try {
          assertNoSanitizerReport(srv.stderr(), `node ${srv.nodeId} (killed by the test)`);
        } catch (e) {
          problems.push(e.message);
        }
        continue;
      }
      try {
        const code = await srv.stop({ timeoutMs: t(15000) });
        if (code !== 0) problems.push(`node ${srv.nodeId} exited with ${code}:\n${srv.stderr().slice(-3000)}`);
      } catch (e) {
        problems.push(`node ${srv.nodeId}: ${e.message}`);
      }
    }
    for (const w of c.workers.values()) {
      if (w.proc.exitCode !== null || w.proc.signalCode !== null) {
        try {
          assertNoSanitizerReport(w.stderr(), `worker ${w.id} (killed by the test)`);
        } catch (e) {
          problems.push(e.message);
        }
        continue;
      }
      try {
        const code = await w.stop();
        if (code !== 0) problems.push(`worker ${w.id} exited with ${code}:\n${w.stderr().slice(-3000)}`);
      } catch (e) {
        problems.push(`worker ${w.id}: ${e.message}`);
      }
    }
    await redis.stop();
    await pg.destroy();
    if (check && problems.length) assert.fail(problems.join('\n\n'));
  };

  try {
    await setUp(c, { name, projects, agents, nodes, workers, visibilityMs, nodeArgs, workerArgs });
  } catch (e) {
    await c.stop({ check: false });
    throw e;
  }
  return c;
}

// ---- Redis queue inspection ------------------------------------------------------------------------

export const STREAM = 'live-chat-events-queue';

// The consumer groups of the ingest stream: [{name, consumers, pending, ...}] ([] when the
// stream does not exist yet).
export async function streamGroups(redis) {
  const r = await redis.command('XINFO', 'GROUPS', STREAM);
  if (!Array.isArray(r)) return [];
  return r.map((flat) => {
    const o = {};
    for (let i = 0; i + 1 < flat.length; i += 2) o[flat[i]] = flat[i + 1];
    return o;
  });
}

// The entries pending in the group: [{id, consumer, idleMs, deliveries}].
export async function pendingEntries(redis, group) {
  const r = await redis.command('XPENDING', STREAM, group, '-', '+', '100000');
  if (!Array.isArray(r)) return [];
  return r.map(([id, consumer, idleMs, deliveries]) => ({ id, consumer, idleMs, deliveries }));
}

// The payload (`d` field) of a stream entry, parsed as JSON when it is; null when it is gone.
export async function streamEntry(redis, id) {
  const r = await redis.command('XRANGE', STREAM, id, id);
  if (!Array.isArray(r) || r.length === 0) return null;
  const fields = r[0][1];
  const o = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i]] = fields[i + 1];
  try {
    return { ...o, json: JSON.parse(o.d) };
  } catch {
    return o;
  }
}

// ---- clients -----------------------------------------------------------------------------------

// An agent socket on a node, joined to the project room.
export async function agentOn(node, token, projectId, label = `agent@${node.nodeId}`) {
  const a = await connectAgent({ url: node.url }, token, { label });
  await joinRoom(a, projectId);
  return a;
}

// A connected and identified visitor socket on a node (reconnection off).
export async function visitorOn(node, { projectId, uid = newUid(), label = `visitor ${uid}@${node.nodeId}`, ...opts } = {}) {
  const c = openSocket(node.url, visitorOptions({ projectId, ...opts }), label);
  await c.waitConnected();
  await identify(c, { projectId, uid });
  return c;
}

// GET /health of a node → {status, json} (status 0 when the request failed).
export async function health(node, timeoutMs = t(3000)) {
  try {
    const r = await fetch(`${node.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: r.status, json, text };
  } catch (e) {
    return { status: 0, error: e.message };
  }
}

// A visitor that sends like the widget: up to `window` messages awaiting their ack at once;
// a message is acknowledged by its sendMessage ack or by a `messageSent` event with its tempId;
// it is re-sent with the SAME tempId after an `unavailable` refusal, an ack timeout, or a
// reconnect. When the socket drops, it connects again (to the next of `urls` that accepts,
// like a load balancer skipping a dead node) and identifies again before re-sending. New
// messages are sent at most one per intervalMs (a person typing), so that a burst lasts long
// enough for a fault to land in its middle; re-sends are not paced.
//   const s = new WidgetSender({ urls, projectId, count: 20, intervalMs: 150 });
//   await s.run(deadline);  // resolves when every message is acknowledged or at the deadline
//   s.acked: Map tempId → finalMessage, s.messages: [{tempId, content}], s.stats, s.errors
const liveSenders = new Set(); // stopped by the cluster's stop() (a failed test's burst)

export class WidgetSender {
  constructor({ urls, projectId, uid = newUid('w'), count = 20, window = 5, ackTimeoutMs = t(4000), intervalMs = 0, label, urlIndex = 0 }) {
    this.urls = urls;
    this.urlIndex = urlIndex;
    this.projectId = projectId;
    this.uid = uid;
    this.label = label ?? `sender ${uid}`;
    this.window = window;
    this.ackTimeoutMs = ackTimeoutMs;
    this.intervalMs = intervalMs;
    this.nextNewAt = 0; // Date.now() value before which no new (never sent) message goes out
    this.messages = [];
    for (let i = 0; i < count; i++) this.messages.push({ tempId: newTempId(uid.slice(-6)), content: `${uid} message ${i}` });
    this.pending = this.messages.map((m) => m.tempId); // not yet in flight, oldest first
    this.inflight = new Map(); // tempId → generation of the socket it was sent on
    this.acked = new Map(); // tempId → finalMessage
    this.byTempId = new Map(this.messages.map((m) => [m.tempId, m]));
    this.errors = []; // problems the test must fail on (conflicting finalMessages, odd refusals)
    this.stats = { sends: 0, resends: 0, unavailable: 0, timeouts: 0, disconnects: 0, connects: 0, connectFailures: 0, ackAfterDisconnect: 0 };
    this.sentOnce = new Set();
    this.sendCounts = new Map(); // tempId → how many times it was sent
    this.gen = 0;
    this.socket = null; // the Client
    this.urlsUsed = [];
    this._wake = null;
    this.aborted = false;
    liveSenders.add(this);
  }

  _kick() {
    const w = this._wake;
    this._wake = null;
    if (w) w();
  }

  _acknowledge(tempId, fm, how) {
    if (!this.byTempId.has(tempId)) return;
    if (!fm || typeof fm !== 'object' || !Number.isSafeInteger(fm.id)) {
      this.errors.push(`${this.label}: ${how} for ${tempId} without a finalMessage: ${JSON.stringify(fm)}`);
      return;
    }
    const prev = this.acked.get(tempId);
    if (prev && prev.id !== fm.id) {
      this.errors.push(`${this.label}: tempId ${tempId} acknowledged as message ${prev.id} and as ${fm.id} (${how})`);
      return;
    }
    if (fm.content !== this.byTempId.get(tempId).content) {
      this.errors.push(`${this.label}: ${tempId} acknowledged with content ${JSON.stringify(fm.content)}`);
    }
    if (!prev) this.acked.set(tempId, fm);
    this.inflight.delete(tempId);
    this._kick();
  }

  async _connect() {
    for (let i = 0; i < this.urls.length; i++) {
      const url = this.urls[(this.urlIndex + i) % this.urls.length];
      const c = openSocket(url, visitorOptions({ projectId: this.projectId, timeout: t(3000) }), `${this.label}@${url}`);
      try {
        await c.waitConnected(t(3000));
        await identify(c, { projectId: this.projectId, uid: this.uid });
      } catch (e) {
        c.close();
        this.stats.connectFailures += 1;
        this.lastConnectError = e.message;
        continue;
      }
      if (this.aborted) {
        c.close();
        return false;
      }
      this.urlIndex = (this.urlIndex + i) % this.urls.length;
      this.urlsUsed.push(url);
      this.gen += 1;
      const gen = this.gen;
      this.stats.connects += 1;
      c.socket.on('messageSent', (p) => this._acknowledge(p?.tempId, p?.finalMessage, 'messageSent'));
      c.socket.on('disconnect', () => {
        if (this.gen !== gen) return;
        this.stats.disconnects += 1;
        this.socket = null;
        // the acks of this connection never come: re-send those messages after reconnecting
        for (const [tempId, g] of [...this.inflight]) {
          if (g === gen) {
            this.inflight.delete(tempId);
            this.pending.unshift(tempId);
          }
        }
        this._kick();
      });
      this.socket = c;
      return true;
    }
    return false;
  }

  _send(tempId) {
    const c = this.socket;
    const gen = this.gen;
    const m = this.byTempId.get(tempId);
    this.inflight.set(tempId, gen);
    if (this.sentOnce.has(tempId)) this.stats.resends += 1;
    this.sentOnce.add(tempId);
    this.sendCounts.set(tempId, (this.sendCounts.get(tempId) ?? 0) + 1);
    this.stats.sends += 1;
    const requeue = (delayMs) => {
      if (this.inflight.get(tempId) !== gen) return; // acknowledged, or requeued by a disconnect
      this.inflight.delete(tempId);
      setTimeout(() => {
        if (!this.acked.has(tempId) && !this.pending.includes(tempId) && !this.inflight.has(tempId)) {
          this.pending.unshift(tempId);
          this._kick();
        }
      }, delayMs);
    };
    c.socket.timeout(this.ackTimeoutMs).emitWithAck('sendMessage', { content: m.content, tempId }).then((res) => {
      if (res && res.error) {
        if (res.error.code === 'unavailable') {
          this.stats.unavailable += 1;
          requeue(100 + Math.floor(Math.random() * 200));
        } else {
          this.errors.push(`${this.label}: sendMessage ${tempId} refused with ${JSON.stringify(res.error)}`);
          this.inflight.delete(tempId);
          this.refused = (this.refused ?? 0) + 1;
          this._kick();
        }
        return;
      }
      if (this.gen !== gen) this.stats.ackAfterDisconnect += 1;
      if (!res || res.tempId !== tempId) {
        this.errors.push(`${this.label}: sendMessage ${tempId} answered ${JSON.stringify(res)?.slice(0, 300)}`);
        return;
      }
      this._acknowledge(tempId, res.finalMessage, 'ack');
    }, (e) => {
      if (/disconnected/.test(e.message)) return; // the disconnect handler re-queued it
      this.stats.timeouts += 1;
      requeue(0);
    });
  }

  get done() {
    return this.acked.size + (this.refused ?? 0) >= this.messages.length;
  }

  // Sends until every message is acknowledged or the deadline (Date.now() value) passes.
  async run(deadline) {
    while (!this.done && !this.aborted && Date.now() < deadline) {
      if (!this.socket) {
        if (!(await this._connect())) {
          await sleep(200);
          continue;
        }
      }
      while (this.socket && this.inflight.size < this.window && this.pending.length) {
        const tempId = this.pending[0];
        if (this.acked.has(tempId)) {
          this.pending.shift();
          continue;
        }
        const fresh = !this.sentOnce.has(tempId);
        if (fresh && Date.now() < this.nextNewAt) break;
        this.pending.shift();
        if (fresh) this.nextNewAt = Date.now() + this.intervalMs;
        this._send(tempId);
      }
      if (this.done) break;
      await new Promise((resolve) => {
        this._wake = resolve;
        setTimeout(resolve, Math.max(1, Math.min(250, this.nextNewAt - Date.now())));
      });
    }
    return this.done;
  }

  close() {
    this.gen += 1;
    this.socket?.close();
    this.socket = null;
    liveSenders.delete(this);
  }

  // Ends run() at once (for the cleanup after a failed test).
  abort() {
    this.aborted = true;
    this.close();
    this._kick();
  }

  summary() {
    return `${this.label}: ${this.acked.size}/${this.messages.length} acknowledged, ${JSON.stringify(this.stats)}, ` +
      `inflight ${this.inflight.size}, pending ${this.pending.length}${this.lastConnectError ? `, last connect error: ${this.lastConnectError.slice(0, 300)}` : ''}`;
  }
}

// Runs senders to completion (bounded by timeoutMs); returns whether all finished.
export async function runSenders(senders, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const r = await Promise.all(senders.map((s) => s.run(deadline)));
  return r.every(Boolean);
}

export const ackedCount = (senders) => senders.reduce((n, s) => n + s.acked.size, 0);

// Waits until at least n messages of senders are acknowledged (bounded).
export async function untilAcked(senders, n, timeoutMs = t(20000)) {
  const deadline = Date.now() + timeoutMs;
  while (ackedCount(senders) < n) {
    if (Date.now() > deadline) assert.fail(`only ${ackedCount(senders)} of ${n} messages acknowledged within ${timeoutMs} ms:\n${senders.map((s) => s.summary()).join('\n')}`);
    await sleep(5);
  }
}

// The checks every burst ends with, against the database:
//   - every sender finished: every message was acknowledged in the end (the widget keeps
//     re-sending, so once the fault is over everything gets through), with no sender error;
//   - no (visitor, tempId) is stored twice (the GROUP BY ... HAVING count(*) > 1 query is empty);
//   - every acknowledged tempId is stored exactly once, as the message (id, content,
//     conversation) its acknowledgement announced;
//   - nothing else is stored for these visitors (no message without a tempId we sent);
//   - each visitor has one conversation whose unread count is the number of its messages
//     (a re-sent message is not counted twice).
// → the stored rows.
export async function checkStored(c, senders, { finished, what = 'burst' } = {}) {
  const errors = senders.flatMap((s) => s.errors);
  assert.deepEqual(errors, [], `${what}: client-side errors`);
  if (finished !== undefined) {
    assert.ok(finished, `${what}: not every message was acknowledged in time:\n${senders.map((s) => s.summary()).join('\n')}`);
  }
  const dups = await c.sql(`SELECT visitor_id, temp_id, count(*)::int AS n FROM messages
    WHERE temp_id IS NOT NULL GROUP BY visitor_id, temp_id HAVING count(*) > 1`);
  assert.deepEqual(dups, [], `${what}: a (visitor, tempId) is stored more than once`);
  const uids = senders.map((s) => `'${s.uid}'`).join(',');
  const rows = await c.sql(`SELECT v.uid, m.id::bigint AS id, m.temp_id, m.content, m.conversation_id::bigint AS conversation_id
    FROM messages m JOIN visitors v ON v.id = m.visitor_id WHERE v.uid IN (${uids}) AND m.from_customer ORDER BY m.id`);
  const stored = new Map(); // uid\0tempId → [rows]
  for (const r of rows) {
    const k = `${r.uid}\0${r.temp_id}`;
    if (!stored.has(k)) stored.set(k, []);
    stored.get(k).push(r);
  }
  let acked = 0;
  for (const s of senders) {
    for (const [tempId, fm] of s.acked) {
      acked += 1;
      const got = stored.get(`${s.uid}\0${tempId}`) ?? [];
      assert.equal(got.length, 1, `${what}: acknowledged ${s.uid}/${tempId} (message ${fm.id}) is stored ${got.length} times`);
      assert.deepEqual({ id: Number(got[0].id), content: got[0].content, conversationId: Number(got[0].conversation_id) },
        { id: fm.id, content: fm.content, conversationId: fm.conversationId }, `${what}: the stored row of ${s.uid}/${tempId} is the acknowledged message`);
    }
    const mine = rows.filter((r) => r.uid === s.uid);
    for (const r of mine) assert.ok(s.byTempId.has(r.temp_id), `${what}: ${s.uid} has a stored message with a tempId it never sent: ${JSON.stringify(r)}`);
  }
  const convs = await c.sql(`SELECT v.uid, c.id::bigint AS id, c.unread_count::int AS unread,
      (SELECT count(*)::int FROM messages m WHERE m.conversation_id = c.id) AS n
    FROM conversations c JOIN visitors v ON v.id = c.visitor_id WHERE v.uid IN (${uids})`);
  for (const s of senders) {
    const mine = convs.filter((x) => x.uid === s.uid);
    const n = rows.filter((r) => r.uid === s.uid).length;
    if (n === 0) continue;
    assert.equal(mine.length, 1, `${what}: ${s.uid} has one conversation: ${JSON.stringify(mine)}`);
    assert.equal(mine[0].n, n, `${what}: ${s.uid}'s messages are all in its conversation`);
    assert.equal(mine[0].unread, n, `${what}: ${s.uid}'s conversation counts each stored message once as unread`);
  }
  return { rows, acked };
}

// Every stored message of the senders reached the agent socket as `newMessage` (DESIGN.md
// "Guarantees": every committed message reaches the agents connected in the room, on any node).
// diag: async () => text added to the failure message (server logs, the outbox, ...).
export async function checkAgentSaw(agent, rows, { timeoutMs = t(10000), what = 'burst', diag } = {}) {
  const want = new Set(rows.map((r) => Number(r.id)));
  const deadline = Date.now() + timeoutMs;
  let missing;
  for (;;) {
    const seen = new Set(agent.all('newMessage').map((m) => m?.id));
    missing = [...want].filter((id) => !seen.has(id));
    if (missing.length === 0 || Date.now() > deadline) break;
    await sleep(50);
  }
  if (missing.length) {
    const extra = diag ? await diag(missing) : '';
    assert.fail(`${what}: ${missing.length} of the ${want.size} stored messages never reached the agent (${agent.label}) as newMessage: ids ${JSON.stringify(missing)}\n${extra}`);
  }
  const counts = new Map();
  for (const m of agent.all('newMessage')) if (want.has(m?.id)) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
  return [...counts.values()].filter((n) => n > 1).length; // how many arrived more than once
}

// The last lines of a process's stderr that match re (for failure messages).
export function logLines(text, re, n = 30) {
  return text.split('\n').filter((l) => re.test(l)).slice(-n).join('\n');
}

// Polls GET /health of a node until pred(answer) holds (bounded); → the answer. Fails with the
// last answer otherwise.
export async function untilHealth(node, pred, { timeoutMs = t(10000), what = 'health' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let h;
  for (;;) {
    h = await health(node);
    if (pred(h)) return h;
    if (Date.now() > deadline) assert.fail(`node ${node.nodeId}: ${what} not reached within ${timeoutMs} ms; last /health: ${h.status} ${h.text ?? h.error}`);
    await sleep(100);
  }
}
export const isUp = (h) => h.status === 200 && h.json?.status === 'ok';
export const isDown = (h) => h.status === 503 && h.json?.status === 'unavailable';

// What the logs and the database say about the delivery of messages (for failure messages):
// the outbox rows left, and the log lines of every node and worker about the bus, the outbox,
// Redis and errors.
export async function deliveryDiag(c, missing = []) {
  const parts = [];
  try {
    const ob = await c.sql('SELECT count(*)::int AS n, min(id)::bigint AS first, max(id)::bigint AS last FROM outbox');
    parts.push(`outbox rows left: ${JSON.stringify(ob)}`);
    if (missing.length) {
      const m = await c.sql(`SELECT id::bigint AS id, created_at::bigint AS created_at FROM messages WHERE id IN (${missing.slice(0, 200).join(',')}) ORDER BY id`);
      parts.push(`missing messages created at (ms): ${m.map((x) => `${x.id}@${x.created_at}`).slice(0, 50).join(' ')}`);
    }
  } catch (e) {
    parts.push(`(database: ${e.message})`);
  }
  const re = /outbox|bus|publish|redis|claim|warn|error/i;
  for (const [id, n] of Object.entries(c.nodes)) parts.push(`--- node ${id}:\n${logLines(n.stderr(), re, 25)}`);
  for (const w of c.workers.values()) parts.push(`--- worker ${w.id}:\n${logLines(w.stderr(), re, 25)}`);
  return parts.join('\n');
}
