// HTTP basics against the real server: start-up output, /health, the error shape, 404/405,
// HEAD, keep-alive and Connection: close, HTTP/1.0, and pipelined requests answered in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopAll, runCli, httpRequest, rawRequest, RawConn, parseResponses, buildRequest,
  assertJsonError,
} from '../lib/server.mjs';

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

test('start-up: one listen line on stderr, the URL on stdout', async () => {
  const lines = srv.stderr().split('\n').filter((l) => l.includes('event=http.listen'));
  assert.equal(lines.length, 1, srv.stderr());
  assert.match(lines[0], /^\S+ level=info event=http\.listen host=127\.0\.0\.1 port=\d+\b/);
  assert.match(lines[0], new RegExp(`\\bport=${srv.port}\\b`));
  // The timestamp is ISO-8601 UTC with milliseconds.
  assert.match(lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
  await srv.waitForStdout(new RegExp(`http://(127\\.0\\.0\\.1|localhost):${srv.port}\\b`));
});

test('GET /health: 200 with status, version and store check', async () => {
  const { stdout } = await runCli(['--version']);
  const version = stdout.trim().replace(/^parley /, '');
  const r = await httpRequest(srv.port, { path: '/health' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const j = r.json();
  assert.equal(j.status, 'ok');
  assert.equal(j.version, version);
  assert.match(j.version, /^\d+\.\d+\.\d+$/);
  assert.deepEqual(j.checks, { store: 'ok' });
  assert.equal(Number(r.headers['content-length']), r.body.length);
  assert.ok(r.headers.date, 'Date header');
});

test('unknown route: 404 in the error shape', async () => {
  for (const path of ['/nope', '/api/v1/nope', '/api/v1/public/projects/1/nope', '/health/x']) {
    const r = await httpRequest(srv.port, { path });
    assertJsonError(r, 404);
  }
});

test('known path, other method: 405 with Allow', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await httpRequest(srv.port, { method, path: '/health', body: method === 'DELETE' ? undefined : '{}' });
    assertJsonError(r, 405);
    assert.ok(r.headers.allow, `${method}: Allow header`);
    const allowed = r.headers.allow.split(',').map((s) => s.trim());
    assert.ok(allowed.includes('GET'), `Allow: ${r.headers.allow}`);
    assert.ok(!allowed.includes(method), `Allow: ${r.headers.allow}`);
  }
  const r = await httpRequest(srv.port, { method: 'DELETE', path: '/api/v1/public/projects/1/settings' });
  assertJsonError(r, 405);
  const allowed = r.headers.allow.split(',').map((s) => s.trim());
  assert.ok(allowed.includes('GET') && allowed.includes('OPTIONS'), `Allow: ${r.headers.allow}`);
});

test('HEAD: the headers of GET, no body', async () => {
  const get = await rawRequest(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const head = await rawRequest(srv.port, 'HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { methods: 'HEAD' });
  const [g] = get.responses();
  assert.equal(g.status, 200);
  assert.equal(head.closed, true);
  // Exactly one response head and nothing after it.
  const end = head.data.indexOf('\r\n\r\n');
  assert.ok(end > 0, head.text);
  assert.equal(head.data.length, end + 4, `bytes after the HEAD response head: ${JSON.stringify(head.text)}`);
  const [h] = parseResponses(head.data, { methods: 'HEAD' });
  assert.equal(h.status, 200);
  assert.equal(h.headers['content-type'], g.headers['content-type']);
  assert.equal(h.headers['content-length'], g.headers['content-length']);
  // HEAD of an unknown path: 404 head, no body.
  const nf = await rawRequest(srv.port, 'HEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { methods: 'HEAD' });
  assert.match(nf.text, /^HTTP\/1\.1 404 /);
  assert.ok(nf.text.endsWith('\r\n\r\n'), JSON.stringify(nf.text));
});

test('HTTP/1.1 keeps the connection open by default; Connection: close closes it', async () => {
  const c = await RawConn.open(srv.port);
  try {
    for (let i = 0; i < 5; i++) {
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      const r = await c.readResponse();
      assert.equal(r.status, 200);
      assert.notEqual((r.headers.connection || '').toLowerCase(), 'close');
      assert.equal(c.closed, false);
    }
    // Errors that are not about the framing keep the connection too.
    await c.write('GET /nope HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal((await c.readResponse()).status, 404);
    await c.write('DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal((await c.readResponse()).status, 405);
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const last = await c.readResponse();
    assert.equal(last.status, 200);
    assert.equal(last.headers.connection.toLowerCase(), 'close');
    const { closed, data } = await c.waitClose(3000);
    assert.equal(closed, true, 'server closes after Connection: close');
    assert.equal(data.length, 0, `bytes after the last response: ${data}`);
  } finally {
    c.destroy();
  }
});

test('HTTP/1.0 closes unless keep-alive is asked', async () => {
  const plain = await rawRequest(srv.port, 'GET /health HTTP/1.0\r\n\r\n', { timeoutMs: 3000 });
  assert.equal(plain.closed, true, 'HTTP/1.0 without keep-alive is closed');
  const [r] = plain.responses();
  assert.equal(r.status, 200);
  assert.equal(r.json().status, 'ok');

  const c = await RawConn.open(srv.port);
  try {
    for (let i = 0; i < 3; i++) {
      await c.write('GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      const k = await c.readResponse();
      assert.equal(k.status, 200);
      assert.equal((k.headers.connection || '').toLowerCase(), 'keep-alive');
      assert.ok('content-length' in k.headers, 'a kept-alive HTTP/1.0 response needs a length');
    }
    assert.equal(c.closed, false);
  } finally {
    c.destroy();
  }
});

test('pipelined requests are answered in order on one connection', async () => {
  const reqs = [
    'GET /health HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /nope-1 HTTP/1.1\r\nHost: x\r\n\r\n',
    'HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n',
    'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
    'GET /api/v1/public/projects/abc/settings HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ];
  const methods = ['GET', 'GET', 'HEAD', 'POST', 'GET', 'GET'];
  // All in one write, then the same split at awkward places.
  const whole = Buffer.from(reqs.join(''), 'latin1');
  for (const parts of [[whole], [whole.subarray(0, 7), whole.subarray(7, 50), whole.subarray(50, 51), whole.subarray(51)]]) {
    const res = await rawRequest(srv.port, parts, { methods });
    assert.equal(res.closed, true);
    const rs = res.responses();
    assert.deepEqual(rs.map((r) => r.status), [200, 404, 200, 405, 400, 200], res.text);
    assert.equal(rs.rest.length, 0, `trailing bytes: ${rs.rest}`);
    assert.equal(rs[2].body.length, 0);
    assert.equal(rs[4].json().message, 'Invalid project id');
  }
});

test('many pipelined requests in one write', async () => {
  const n = 200;
  const bytes = 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n - 1) + 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
  const res = await rawRequest(srv.port, bytes, { timeoutMs: 10000 });
  assert.equal(res.closed, true);
  const rs = res.responses();
  assert.equal(rs.length, n);
  assert.ok(rs.every((r) => r.status === 200));
});

test('a pipelined bad request after good ones: the good ones are answered, then 400 and close', async () => {
  const res = await rawRequest(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n');
  assert.equal(res.closed, true);
  const rs = res.responses();
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 400]);
  assert.equal(rs[2].headers.connection.toLowerCase(), 'close');
});

test('every response carries Date, Content-Length and no duplicate framing headers', async () => {
  const res = await rawRequest(srv.port, buildRequest({ path: '/health', headers: { Connection: 'close' } }));
  const [r] = res.responses();
  assert.ok(r.headers.date);
  const names = r.headerList.map(([n]) => n.toLowerCase());
  assert.equal(names.filter((n) => n === 'content-length').length, 1);
  assert.equal(names.filter((n) => n === 'connection').length, 1);
  assert.ok(!names.includes('transfer-encoding') || !names.includes('content-length'));
});
