// `parley serve` start-up: the generated JWT secret (mode 0600, reused, none when
// PARLEY_JWT_SECRET is set), the demo project and its embed snippet, and PARLEY_PORT versus
// --port.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, stopAll, runCli, tempDir, httpRequest, rawRequest, freePort,
} from '../lib/server.mjs';

after(stopAll);

const freshDir = () => path.join(tempDir(), 'data');

test('serve generates <data-dir>/jwt-secret (0600) on first start and reuses it', async () => {
  const dataDir = freshDir();
  const first = await startServer({ dataDir });
  assert.equal(await first.stop(), 0);
  const file = path.join(dataDir, 'jwt-secret');
  assert.ok(fs.existsSync(file), 'jwt-secret created');
  const st = fs.statSync(file);
  assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
  const secret = fs.readFileSync(file, 'utf8');
  assert.ok(secret.trim().length >= 32, 'at least 32 characters (256 bits as base64url is 43)');
  const second = await startServer({ dataDir });
  assert.equal(await second.stop(), 0);
  assert.equal(fs.readFileSync(file, 'utf8'), secret, 'unchanged on the next start');
  // Two data directories get two different secrets.
  const otherDir = freshDir();
  const third = await startServer({ dataDir: otherDir });
  assert.equal(await third.stop(), 0);
  assert.notEqual(fs.readFileSync(path.join(otherDir, 'jwt-secret'), 'utf8'), secret);
});

test('serve creates no jwt-secret when PARLEY_JWT_SECRET is set', async () => {
  const dataDir = freshDir();
  const srv = await startServer({ dataDir, env: { PARLEY_JWT_SECRET: 'x'.repeat(48) } });
  assert.equal((await httpRequest(srv.port, { path: '/health' })).status, 200);
  assert.equal(await srv.stop(), 0);
  assert.ok(!fs.existsSync(path.join(dataDir, 'jwt-secret')));
});

test('serve --demo on an empty store: project 1 "Demo" for localhost and 127.0.0.1, with the embed snippet', async () => {
  const dataDir = freshDir();
  const srv = await startServer({ dataDir, demo: true });
  const snippet = `<script src="http://localhost:${srv.port}/widget.js" data-project-id="1"></script>`;
  await srv.waitForStdout(new RegExp(snippet.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  // The demo project answers the widget from both whitelisted hosts.
  for (const origin of [`http://localhost:${srv.port}`, 'http://127.0.0.1:5173']) {
    const r = await httpRequest(srv.port, { path: '/api/v1/public/projects/1/settings', headers: { Origin: origin } });
    assert.equal(r.status, 200, `${origin}: ${r.text}`);
    assert.equal(r.headers['access-control-allow-origin'], origin);
  }
  assert.equal(await srv.stop(), 0);
  const list = await runCli(['project', 'list', '--json'], { dataDir });
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout, '{"id":1,"name":"Demo","whitelistedDomains":["localhost","127.0.0.1"]}\n');

  // A second start does not create another.
  const again = await startServer({ dataDir, demo: true });
  assert.equal(await again.stop(), 0);
  const list2 = await runCli(['project', 'list', '--json'], { dataDir });
  assert.equal(list2.stdout, list.stdout);
});

test('serve --demo does nothing when the store already has a project', async () => {
  const dataDir = freshDir();
  const made = await runCli(['project', 'create', '--name', 'Mine', '--domain', 'mine.example', '--json'], { dataDir });
  assert.equal(made.code, 0, made.stderr);
  const srv = await startServer({ dataDir, demo: true });
  assert.equal(await srv.stop(), 0);
  const list = await runCli(['project', 'list', '--json'], { dataDir });
  assert.equal(list.stdout, made.stdout);
});

test('serve without --demo creates no project', async () => {
  const dataDir = freshDir();
  const srv = await startServer({ dataDir });
  assert.equal(await srv.stop(), 0);
  const list = await runCli(['project', 'list', '--json'], { dataDir });
  assert.equal(list.stdout, '');
});

test('PARLEY_DEMO=1 works like --demo', async () => {
  const dataDir = freshDir();
  const srv = await startServer({ dataDir, env: { PARLEY_DEMO: '1' } });
  assert.equal(await srv.stop(), 0);
  const list = await runCli(['project', 'list', '--json'], { dataDir });
  assert.match(list.stdout, /"name":"Demo"/);
});

test('PARLEY_PORT sets the port; --port wins over it', async () => {
  const p1 = await freePort();
  const byEnv = await startServer({ port: null, env: { PARLEY_PORT: String(p1) } });
  try {
    assert.equal(byEnv.port, p1);
    assert.equal((await httpRequest(p1, { path: '/health' })).status, 200);
  } finally {
    assert.equal(await byEnv.stop(), 0);
  }
  const p2 = await freePort();
  const p3 = await freePort();
  const flagWins = await startServer({ port: p3, env: { PARLEY_PORT: String(p2) } });
  try {
    assert.equal(flagWins.port, p3);
  } finally {
    assert.equal(await flagWins.stop(), 0);
  }
});

test('HTTP limits from the environment; the flag wins over them', async () => {
  let h = 'Host: x\r\nConnection: close\r\n';
  for (let i = 0; i < 10; i++) h += `X-${i}: 1\r\n`; // 12 fields
  const req = `GET /health HTTP/1.1\r\n${h}\r\n`;
  const byEnv = await startServer({ env: { PARLEY_MAX_HEADERS: '10' } });
  try {
    const r = await rawRequest(byEnv.port, req);
    assert.equal(r.responses()[0].status, 431, r.text);
  } finally {
    assert.equal(await byEnv.stop(), 0);
  }
  const flagWins = await startServer({ env: { PARLEY_MAX_HEADERS: '10' }, args: ['--max-headers', '20'] });
  try {
    const r = await rawRequest(flagWins.port, req);
    assert.equal(r.responses()[0].status, 200, r.text);
  } finally {
    assert.equal(await flagWins.stop(), 0);
  }
});

test('a port already in use: serve exits non-zero with a message', async () => {
  const srv = await startServer();
  try {
    const r = await runCli(['serve', '--host', '127.0.0.1', '--port', String(srv.port), '--web-root', srv.webRoot], { dataDir: freshDir(), timeoutMs: 10000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /in use|EADDRINUSE|address/i);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
