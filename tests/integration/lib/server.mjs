// Integration-test harness: starts the real `parley` binary with a fresh data directory and web
// root on a free port, runs CLI commands, and checks the sanitizer output of everything it
// ran. Every suite (HTTP, WebSocket, Engine.IO, Socket.IO, ...) builds on this file.
//
//   const srv = await startServer({ args: ['--demo'] });
//   ... srv.port, srv.url, srv.dataDir, srv.webRoot, srv.stderr() ...
//   assert.equal(await srv.stop(), 0);
//
// The binary is $PARLEY_BIN (relative paths are taken from the repository root) or
// build/parley. The same tests run against a sanitizer build (PARLEY_BIN=build/asan/parley with
// ASAN_OPTIONS=detect_leaks=1 ...): start-up is given 10 s, and stop() fails the test when the
// server's stderr holds an AddressSanitizer, UBSan or LeakSanitizer report. Servers still
// running when the test process ends are killed, and the temp directories removed
// (PARLEY_KEEP_TMP=1 keeps them for a post-mortem).
//
// Two backends (issue 7), chosen by the environment, so that one test runs against both:
//   embedded (default)        SQLite in the data directory, presence/queue/bus in process.
//   PARLEY_TEST_BACKEND=scale PostgreSQL + Redis. Every data directory the tests use gets a
//     fresh database, created on the cluster of PARLEY_TEST_PG_URL (a running throwaway cluster,
//     e.g. `scripts/pg.sh start DIR`; tests/integration/run-scale.sh does it all) and dropped
//     when the test process exits; startServer() and runCli() on that data directory pass it as
//     --database. Every data directory also gets its own redis-server (startRedis() of
//     70-scale-out/redis.mjs: the stream and the pub/sub channels are global to a Redis server
//     and node --test runs files in parallel), passed to `serve` as --redis; a server restarted
//     on the same data directory finds the same database and the same Redis.
//     PARLEY_TEST_REDIS=off: PostgreSQL only (no --redis).
// Tests that read or change the database directly use dbSql(dataDir, query) / srv.sql(query):
// sqlite3 on the SQLite file, psql on the PostgreSQL database, rows as objects in the same form
// (booleans 0/1, JSON columns as their text); dbContents(dataDir) is every stored byte.
import { spawn, execFile, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

import { startRedis } from '../70-scale-out/redis.mjs';

export * from './raw.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const PARLEY_BIN = path.resolve(REPO, process.env.PARLEY_BIN || 'build/parley');
export const START_TIMEOUT_MS = Number(process.env.PARLEY_START_TIMEOUT_MS || 10000);
export const SANITIZER_PATTERNS = ['ERROR: AddressSanitizer', 'runtime error:', 'LeakSanitizer'];
// The backend the tests run against: 'embedded' or 'scale' (see the top of this file).
export const BACKEND = process.env.PARLEY_TEST_BACKEND === 'scale' ? 'scale' : 'embedded';
export const SCALE = BACKEND === 'scale';
export const SCALE_REDIS = SCALE && process.env.PARLEY_TEST_REDIS !== 'off';
const PG_URL = process.env.PARLEY_TEST_PG_URL || '';
if (SCALE && !/^postgres(ql)?:\/\//.test(PG_URL)) {
  throw new Error('PARLEY_TEST_BACKEND=scale needs PARLEY_TEST_PG_URL=postgres://... (a running cluster)');
}

const live = new Set(); // child processes not yet exited
const tempDirs = new Set(); // removed when the test process exits

process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  if (!process.env.PARLEY_KEEP_TMP) {
    for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
    dropDatabases();
  }
});

// A fresh temporary directory, removed when the test process exits.
export function tempDir(prefix = 'parley-test-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

// Files the static-file tests rely on. `secret` is written NEXT TO the web root (outside it),
// with a symbolic link inside the root pointing at it, to prove it never leaks.
export const WEB_FILES = {
  'widget.js': "(function(){console.log('parley widget');})();\n",
  'index.html': '<!doctype html><title>Parley</title><p>home</p>\n',
  'app/index.html': '<!doctype html><title>Parley dashboard</title><div id="app"></div>\n',
  'app/app.js': "console.log('dashboard');\n",
  'app/style.css': 'body { margin: 0; }\n',
  'logo.svg': '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>\n',
  'pixel.png': Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201ffa10e3b0f0000000049454e44ae426082', 'hex'),
  'data.json': '{"hello":"world"}\n',
  'blob.xyz': 'opaque bytes\n',
  '.hidden': 'dot files are never served\n',
};
export const SECRET_TEXT = 'TOP-SECRET-OUTSIDE-THE-WEB-ROOT-7f3a';

// Creates <base>/web with WEB_FILES, <base>/secret, and the links web/link-out -> ../secret
// (outside), web/link-dir -> .. (outside), web/alias.js -> widget.js (inside).
export function makeWebRoot(base = tempDir('parley-web-')) {
  const root = path.join(base, 'web');
  for (const [name, content] of Object.entries(WEB_FILES)) {
    const p = path.join(root, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  fs.writeFileSync(path.join(base, 'secret'), SECRET_TEXT + '\n');
  fs.symlinkSync('../secret', path.join(root, 'link-out'));
  fs.symlinkSync('..', path.join(root, 'link-dir'));
  fs.symlinkSync('widget.js', path.join(root, 'alias.js'));
  return root;
}

// ---- backends -----------------------------------------------------------------------------

const backends = new Map(); // resolved data directory → Promise<{database, dbName, redis}>
const databases = new Set(); // names of the databases this process created

// The cluster URL with another database name.
function pgUrlOf(dbName) {
  const u = new URL(PG_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
}

function runPsql(url, argv, { input, timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...argv, url],
      { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`psql ${argv.join(' ')}: ${err.message}\n${stderr}`));
        resolve(stdout);
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

// Drops the databases this process created (at exit: synchronous; the servers are gone).
function dropDatabases() {
  if (!databases.size) return;
  const argv = ['-X', '-q'];
  for (const name of databases) argv.push('-c', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  spawnSync('psql', [...argv, pgUrlOf('postgres')], { stdio: 'ignore', timeout: 30000 });
  databases.clear();
}

// The backend of a data directory: in scale mode a fresh PostgreSQL database (created on first
// use) and, when withRedis and Redis is on, its own redis-server (started on first use).
// → {database: URL, dbName, redis: URL, redisServer (startRedis()'s handle)}; in embedded
// mode, and for what is not used, undefined.
export async function backendFor(dataDir, { withRedis = false } = {}) {
  if (!SCALE) return {};
  const key = path.resolve(dataDir);
  let b = backends.get(key);
  if (!b) {
    b = (async () => {
      const dbName = `parley_t_${crypto.randomBytes(8).toString('hex')}`;
      await runPsql(pgUrlOf('postgres'), ['-c', `CREATE DATABASE "${dbName}"`]);
      databases.add(dbName);
      return { database: pgUrlOf(dbName), dbName, redis: null };
    })();
    backends.set(key, b);
  }
  const r = await b;
  if (withRedis && SCALE_REDIS) {
    if (!r.redis) {
      r.redis = startRedis().then((redis) => {
        // Its process must not keep the test process alive (redis.mjs kills it at exit).
        redis.proc?.unref();
        return redis;
      });
    }
    const redis = await r.redis;
    return { database: r.database, dbName: r.dbName, redis: redis.url, redisServer: redis };
  }
  return { database: r.database, dbName: r.dbName };
}

// Runs one SQL statement on the database of dataDir → the rows as objects ([] when none, and
// for statements other than SELECT / WITH). Embedded: sqlite3 -json on <dataDir>/parley.db.
// Scale: psql on the data directory's PostgreSQL database, values in sqlite3's form: booleans
// as 0/1, JSON columns as their text. Write dialect-neutral SQL (subqueries in FROM need an
// alias in PostgreSQL; no instr/char, no `true`/`false` literals compared with integers). For
// the rare check only one dialect can express, query may be {sqlite: '...', postgres: '...'}.
export async function dbSql(dataDir, query, { timeoutMs = 60000 } = {}) {
  if (typeof query === 'object') query = SCALE ? query.postgres : query.sqlite;
  if (!SCALE) return sqliteQuery(path.join(dataDir, 'parley.db'), query, timeoutMs);
  const { database } = await backendFor(dataDir);
  const q = query.trim().replace(/;\s*$/, '');
  if (!/^(select|with)\b/i.test(q)) {
    await runPsql(database, ['-c', q], { timeoutMs });
    return [];
  }
  // The result's columns and their types (without running it), then the rows as one JSON
  // array of arrays, with the values converted to what sqlite3 prints.
  const desc = await runPsql(database, ['-A', '-t', '-F', '\x1f'], { input: `${q}\n\\gdesc\n`, timeoutMs });
  const cols = desc.split('\n').filter((l) => l.length).map((l) => {
    const i = l.lastIndexOf('\x1f');
    return { name: l.slice(0, i), type: l.slice(i + 1) };
  });
  const exprs = cols.map((c, i) => {
    if (c.type === 'boolean') return `(_c${i})::int`;
    if (c.type === 'json' || c.type === 'jsonb') return `(_c${i})::text`;
    return `_c${i}`;
  });
  const wrapped = `SELECT coalesce(json_agg(json_build_array(${exprs.join(', ')})), '[]'::json)
    FROM (${q}) AS _q(${cols.map((c, i) => `_c${i}`).join(', ')})`;
  const out = await runPsql(database, ['-A', '-t', '-c', wrapped], { timeoutMs });
  let arrays;
  try {
    arrays = JSON.parse(out);
  } catch (e) {
    throw new Error(`psql "${q}": output is not JSON (${e.message}): ${out.slice(0, 300)}`);
  }
  return arrays.map((a) => Object.fromEntries(cols.map((c, i) => [c.name, a[i]])));
}

function sqliteQuery(file, query, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile('sqlite3', ['-json', '-bail', '-cmd', '.timeout 10000', file, query],
      { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`sqlite3 "${query}": ${err.message}\n${stderr}`));
        const s = stdout.trim();
        if (!s) return resolve([]);
        try {
          resolve(JSON.parse(s));
        } catch (e) {
          reject(new Error(`sqlite3 "${query}": output is not JSON (${e.message}): ${s.slice(0, 300)}`));
        }
      });
  });
}

// Everything the database of dataDir stores, as bytes: [{name, bytes}]. Embedded: the SQLite
// files (parley.db, its -wal and -shm). Scale: a pg_dump of the database (schema and rows).
export async function dbContents(dataDir) {
  if (!SCALE) {
    return fs.readdirSync(dataDir).filter((f) => f.startsWith('parley.db'))
      .map((f) => ({ name: f, bytes: fs.readFileSync(path.join(dataDir, f)) }));
  }
  const { database, dbName } = await backendFor(dataDir);
  const bytes = await new Promise((resolve, reject) => {
    execFile('pg_dump', ['--no-owner', database], { encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024, timeout: 60000 },
      (err, stdout, stderr) => (err ? reject(new Error(`pg_dump: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  return [{ name: `pg_dump of ${dbName}`, bytes }];
}

// Fails (assert) if text holds a sanitizer report.
export function assertNoSanitizerReport(text, what = 'parley') {
  for (const pat of SANITIZER_PATTERNS) {
    const i = text.indexOf(pat);
    if (i >= 0) {
      assert.fail(`${what} printed a sanitizer report ("${pat}"):\n${text.slice(Math.max(0, i - 2000), i + 6000)}`);
    }
  }
}

function envFor(extra) {
  const env = { ...process.env };
  // Settings from the developer's shell must not leak into the tests.
  for (const k of Object.keys(env)) if (k.startsWith('PARLEY_') && k !== 'PARLEY_BIN') delete env[k];
  return { ...env, ...extra };
}

function exitPromise(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve({ code: proc.exitCode, signal: proc.signalCode });
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

// Starts `parley serve` and waits for its `event=http.listen` log line.
// Options:
//   args      extra arguments (after the defaults, so they override them)
//   env       extra environment variables
//   demo      pass --demo
//   dataDir   reuse a data directory (default: a fresh one)
//   webRoot   a web root (default: a fresh one from makeWebRoot())
//   port      the --port value (default 0; null leaves the flag out)
//   logLevel  --log-level (default info)
//   startTimeoutMs  how long to wait for the listen line (default 10 s)
// Returns {port, url, host, dataDir, webRoot, baseDir, proc, pid, stdout(), stderr(),
//   waitForStderr(re), waitForStdout(re), fdCount(), stop(), kill(signal), exited, sql(query),
//   backend ({database, redis}: the URLs passed in scale mode)}.
// In scale mode the data directory's database and Redis come before args on the command line
// (so a test's own --database / --redis wins).
export async function startServer({
  args = [],
  env = {},
  demo = false,
  dataDir,
  webRoot,
  port = 0,
  host = '127.0.0.1',
  logLevel = 'info',
  startTimeoutMs = START_TIMEOUT_MS,
} = {}) {
  const baseDir = tempDir('parley-srv-');
  dataDir = dataDir ?? path.join(baseDir, 'data');
  webRoot = webRoot ?? makeWebRoot(baseDir);
  const argv = ['serve', '--host', host];
  if (port !== null) argv.push('--port', String(port));
  argv.push('--data-dir', dataDir, '--web-root', webRoot, '--log-level', logLevel);
  if (demo) argv.push('--demo');
  const backend = await backendFor(dataDir, { withRedis: true });
  if (backend.database) argv.push('--database', backend.database);
  if (backend.redis) argv.push('--redis', backend.redis);
  argv.push(...args);

  const proc = spawn(PARLEY_BIN, argv, { env: envFor(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  const exited = exitPromise(proc);
  exited.then(() => live.delete(proc));
  let out = '';
  let err = '';
  const watchers = new Set();
  const notify = () => {
    for (const w of watchers) w();
  };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => {
    out += d;
    notify();
  });
  proc.stderr.on('data', (d) => {
    err += d;
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(d);
    notify();
  });
  proc.on('error', (e) => {
    err += `\n[harness] spawn error: ${e.message}\n`;
    notify();
  });
  let hasExited = false;
  exited.then(() => {
    hasExited = true;
    notify();
  });

  // Resolves with the match of re in the text source() once it appears; rejects on timeout or
  // when the process exits without it.
  function waitFor(source, re, timeoutMs, label) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(source());
        if (m) {
          finish();
          resolve(m);
        } else if (hasExited) {
          finish();
          reject(new Error(`parley exited (${proc.exitCode ?? proc.signalCode}) before ${label} matched ${re}\nstderr:\n${err}\nstdout:\n${out}`));
        }
      };
      const t = setTimeout(() => {
        finish();
        reject(new Error(`${label} did not match ${re} within ${timeoutMs} ms\nstderr:\n${err}\nstdout:\n${out}`));
      }, timeoutMs);
      function finish() {
        clearTimeout(t);
        watchers.delete(check);
      }
      watchers.add(check);
      check();
    });
  }

  let m;
  try {
    m = await waitFor(() => err, /event=http\.listen\b[^\n]*\bport=(\d+)/, startTimeoutMs, 'stderr');
  } catch (e) {
    proc.kill('SIGKILL');
    await exited;
    throw e;
  }
  const boundPort = Number(m[1]);
  let stopped = null;
  let signalled = false;

  const srv = {
    port: boundPort,
    host,
    url: `http://${host}:${boundPort}`,
    dataDir,
    webRoot,
    baseDir,
    proc,
    pid: proc.pid,
    backend,
    // One SQL statement on this server's database (dbSql).
    sql: (query, opts) => dbSql(dataDir, query, opts),
    exited,
    stdout: () => out,
    stderr: () => err,
    waitForStderr: (re, timeoutMs = 5000) => waitFor(() => err, re, timeoutMs, 'stderr'),
    waitForStdout: (re, timeoutMs = 5000) => waitFor(() => out, re, timeoutMs, 'stdout'),
    // Open file descriptors of the server process.
    fdCount: () => fs.readdirSync(`/proc/${proc.pid}/fd`).length,
    // Sends signal (SIGTERM by default; nothing if kill() already sent one: a second signal
    // forces an immediate exit) and waits for the exit (SIGKILL after timeoutMs, which fails
    // the test). Asserts the sanitizer output is clean. Returns the exit code, or the signal's
    // name if a signal ended it.
    async stop({ signal = 'SIGTERM', timeoutMs = 15000 } = {}) {
      if (!stopped) {
        stopped = (async () => {
          if (!hasExited && !signalled) proc.kill(signal);
          let timer;
          const r = await Promise.race([
            exited,
            new Promise((resolve) => {
              timer = setTimeout(() => resolve(null), timeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (r === null) {
            proc.kill('SIGKILL');
            await exited;
            assert.fail(`parley did not exit within ${timeoutMs} ms of ${signal}\nstderr:\n${err.slice(-4000)}`);
          }
          // Let the pipes drain so the whole report is in err.
          await new Promise((resolve) => setImmediate(resolve));
          assertNoSanitizerReport(err, 'parley serve');
          return r.code ?? r.signal;
        })();
      }
      return stopped;
    },
    // Sends a signal without waiting (SIGKILL by default); returns the exit promise.
    kill(signal = 'SIGKILL') {
      if (!hasExited) {
        signalled = true;
        proc.kill(signal);
      }
      return exited;
    },
  };
  return srv;
}

// Runs `parley ...args` to completion. dataDir (if given) is passed as --data-dir after args
// (in scale mode with --database, the data directory's PostgreSQL database, unless args hold
// one). → {code, signal, stdout, stderr}. Asserts the sanitizer output is clean.
export async function runCli(args, { dataDir, env = {}, timeoutMs = 15000 } = {}) {
  const argv = [...args];
  if (dataDir !== undefined) {
    argv.push('--data-dir', dataDir);
    const { database } = await backendFor(dataDir);
    if (database && !args.includes('--database')) argv.push('--database', database);
  }
  const proc = spawn(PARLEY_BIN, argv, { env: envFor(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => (stdout += d));
  proc.stderr.on('data', (d) => (stderr += d));
  const spawnError = new Promise((resolve) => proc.on('error', resolve));
  let timer;
  const r = await Promise.race([
    new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal }))),
    spawnError.then((e) => ({ error: e })),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  live.delete(proc);
  if (r === null) {
    proc.kill('SIGKILL');
    assert.fail(`parley ${args.join(' ')} did not finish within ${timeoutMs} ms\nstderr:\n${stderr}`);
  }
  if (r.error) throw r.error;
  assertNoSanitizerReport(stderr, `parley ${args.join(' ')}`);
  return { code: r.code, signal: r.signal, stdout, stderr };
}

// Stops every server this process started that is still running (for `after` hooks).
export async function stopAll() {
  const procs = [...live];
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map(exitPromise));
}

// A TCP port that was free a moment ago (for tests of --port and PARLEY_PORT).
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls fn until it returns a truthy value (returned) or timeoutMs passes (throws with label).
export async function waitUntil(fn, { timeoutMs = 5000, intervalMs = 50, label = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`${label} not reached within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(intervalMs);
  }
}

// Asserts an error in the API's shape: {"statusCode":N,"message":"...","error":"<reason>"}
// with Content-Type application/json; charset=utf-8. res: from httpRequest or parseResponses.
// message: exact string, RegExp, or undefined (any non-empty string).
// (413 has two names: RFC 7231's and RFC 9110's.)
const REASONS = {
  400: ['Bad Request'], 403: ['Forbidden'], 404: ['Not Found'], 405: ['Method Not Allowed'],
  408: ['Request Timeout'], 413: ['Payload Too Large', 'Content Too Large'],
  431: ['Request Header Fields Too Large'], 500: ['Internal Server Error'],
  501: ['Not Implemented'], 503: ['Service Unavailable'],
};
export function assertJsonError(res, status, message) {
  assert.equal(res.status, status, `status (body: ${res.text})`);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8', 'error Content-Type');
  let j;
  try {
    j = JSON.parse(res.text);
  } catch {
    assert.fail(`error body is not JSON: ${JSON.stringify(res.text)}`);
  }
  assert.deepEqual(Object.keys(j).sort(), ['error', 'message', 'statusCode'], `error body keys: ${res.text}`);
  assert.equal(j.statusCode, status);
  assert.equal(typeof j.message, 'string');
  assert.ok(j.message.length > 0, 'error message is empty');
  if (REASONS[status]) assert.ok(REASONS[status].includes(j.error), `error reason phrase ${JSON.stringify(j.error)}`);
  if (res.reason) assert.equal(j.error, res.reason, 'error field equals the status line reason');
  if (typeof message === 'string') assert.equal(j.message, message);
  else if (message instanceof RegExp) assert.match(j.message, message);
  return j;
}
