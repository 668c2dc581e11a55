// GET /api/v1/public/projects/:id/settings (PROTOCOL.md section 9): project id validation,
// unknown projects, the Origin rule of section 2 in its order and with its messages, the
// widget settings with defaults, and CORS (Vary: Origin everywhere, the allowed Origin
// reflected exactly, never `*`, nothing for refusals; OPTIONS preflight).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  startServer, stopAll, runCli, tempDir, httpRequest, assertJsonError,
} from '../lib/server.mjs';

let srv;
const base = '/api/v1/public/projects';
before(async () => {
  const dataDir = path.join(tempDir(), 'data');
  const mk = async (...args) => {
    const r = await runCli(['project', 'create', ...args, '--json'], { dataDir });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.equal((await mk('--name', 'Local', '--domain', 'localhost', '--domain', '127.0.0.1')).id, 1);
  assert.equal((await mk('--name', 'Wild', '--domain', '*.example.com')).id, 2);
  assert.equal((await mk('--name', 'Empty')).id, 3);
  srv = await startServer({ dataDir });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

function get(id, origin, extra = {}) {
  const headers = { ...extra };
  if (origin !== undefined) headers.Origin = origin;
  return httpRequest(srv.port, { path: `${base}/${id}/settings`, headers });
}

function assertCorsRefusal(r) {
  assert.equal(r.headers['access-control-allow-origin'], undefined, 'no Access-Control-Allow-Origin on a refusal');
  assertVary(r);
}

function assertVary(r) {
  const vary = (r.headers.vary || '').split(',').map((s) => s.trim().toLowerCase());
  assert.ok(vary.includes('origin'), `Vary: ${r.headers.vary}`);
}

test('project id not a positive decimal integer <= 2^53-1: 400 "Invalid project id"', async () => {
  const ids = ['abc', '-1', '0', '1e3', '99999999999999999999', '9007199254740992', '1.0', '0x1', '1a', '+1', '00', '%20'];
  for (const id of ids) {
    for (const origin of [undefined, 'http://localhost']) {
      const r = await get(id, origin);
      assertJsonError(r, 400, 'Invalid project id');
      assertCorsRefusal(r);
    }
  }
});

test('unknown project: 404 "Project not found" (before any Origin check)', async () => {
  for (const id of ['4', '1000', '9007199254740991']) {
    for (const origin of [undefined, 'http://localhost', 'null']) {
      const r = await get(id, origin);
      assertJsonError(r, 404, 'Project not found');
      assertCorsRefusal(r);
    }
  }
});

test('no whitelisted domains: 403 "No whitelisted domains", whatever the Origin', async () => {
  for (const origin of [undefined, 'http://localhost', 'null', 'http://evil.com']) {
    const r = await get(3, origin);
    assertJsonError(r, 403, 'No whitelisted domains');
    assertCorsRefusal(r);
  }
});

test('no Origin header: 403 "Missing origin"', async () => {
  for (const id of [1, 2]) {
    const r = await get(id);
    assertJsonError(r, 403, 'Missing origin');
    assertCorsRefusal(r);
  }
});

test('Origin that is not a URL: 403 "Invalid origin"', async () => {
  for (const origin of ['null', 'foo', 'http://', 'localhost', 'http://localhost/path', 'http://a@localhost']) {
    const r = await get(1, origin);
    assertJsonError(r, 403, 'Invalid origin');
    assertCorsRefusal(r);
  }
});

test('hostname not whitelisted: 403 "Origin not whitelisted"', async () => {
  const rows = [
    [1, 'http://evil.com'],
    [1, 'http://localhost.evil.com'],
    [1, 'http://127.0.0.2:8080'],
    [1, 'https://sub.localhost'],
    [2, 'https://example.com'],
    [2, 'https://badexample.com'],
    [2, 'https://example.com.evil.org'],
  ];
  for (const [id, origin] of rows) {
    const r = await get(id, origin);
    assertJsonError(r, 403, 'Origin not whitelisted');
    assertCorsRefusal(r);
  }
});

const DEFAULT_KEYS = [
  'agentDisplayName', 'autoOpenDelay', 'companyLogoUrl', 'headerText', 'historyVisibility',
  'offlineMessage', 'position', 'primaryColor', 'theme', 'welcomeMessage',
];

test('whitelisted Origin: 200 with the settings and the Origin reflected exactly', async () => {
  const rows = [
    [1, 'http://localhost:3000'],
    [1, 'http://LOCALHOST:3000'], // case-insensitive, port ignored
    [1, 'https://localhost'],
    [1, 'http://localhost/'],
    [1, 'http://127.0.0.1:8080'],
    [2, 'https://a.example.com'],
    [2, 'https://a.b.example.com:8443'],
    [2, 'http://A.Example.COM'],
  ];
  for (const [id, origin] of rows) {
    const r = await get(id, origin);
    assert.equal(r.status, 200, `${id} ${origin}: ${r.text}`);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['access-control-allow-origin'], origin, 'the Origin as sent');
    assertVary(r);
    const s = r.json();
    assert.deepEqual(Object.keys(s).sort(), DEFAULT_KEYS);
  }
});

test('the settings have their defaults filled in', async () => {
  const s = (await get(1, 'http://localhost:3000')).json();
  assert.equal(s.theme, 'light');
  assert.equal(s.headerText, 'Chat with us');
  assert.equal(s.position, 'bottom-right');
  assert.equal(s.primaryColor, '#4f46e5');
  assert.equal(s.welcomeMessage, 'Hi! How can we help?');
  assert.equal(s.agentDisplayName, 'Support');
  assert.equal(s.offlineMessage, "We're away right now. Leave a message and we'll get back to you.");
  assert.equal(s.autoOpenDelay, 0);
  assert.equal(s.historyVisibility, 'limit_to_active');
  assert.equal(s.companyLogoUrl, null);
});

test('never Access-Control-Allow-Origin: *', async () => {
  const rs = await Promise.all([
    get(1, 'http://localhost'), get(1, undefined), get(1, 'null'), get(1, 'http://evil.com'),
    get(3, 'http://localhost'), get(9, 'http://localhost'), get('x', 'http://localhost'),
    httpRequest(srv.port, { path: '/health', headers: { Origin: 'http://evil.com' } }),
  ]);
  for (const r of rs) assert.notEqual(r.headers['access-control-allow-origin'], '*');
});

test('OPTIONS preflight: 204 for a whitelisted Origin, 403 otherwise', async () => {
  const pre = (id, origin) => httpRequest(srv.port, {
    method: 'OPTIONS',
    path: `${base}/${id}/settings`,
    headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' },
  });
  for (const [id, origin] of [[1, 'http://localhost:3000'], [2, 'https://a.example.com']]) {
    const r = await pre(id, origin);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    const methods = (r.headers['access-control-allow-methods'] || '').split(',').map((x) => x.trim());
    assert.deepEqual(methods.sort(), ['GET', 'OPTIONS']);
    assert.match(r.headers['access-control-max-age'] || '', /^\d+$/, 'Access-Control-Max-Age');
    assertVary(r);
  }
  for (const [id, origin] of [[1, 'http://evil.com'], [2, 'https://example.com'], [1, 'null']]) {
    const r = await pre(id, origin);
    assert.equal(r.status, 403, `${id} ${origin}: ${r.text}`);
    assertCorsRefusal(r);
  }
});
