// Static files from --web-root: types, ETag and 304, Cache-Control, /app/ → app/index.html,
// HEAD, and every way of reaching outside the root refused with 404 (a file `secret` lies next
// to the root, and a symbolic link inside the root points at it), NUL → 400.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopAll, httpRequest, rawRequest, assertJsonError, WEB_FILES, SECRET_TEXT,
} from '../lib/server.mjs';

let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

// Sends the target exactly as written (no client-side normalisation of `..` or escapes).
async function rawGet(target, headers = '') {
  const res = await rawRequest(srv.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers}\r\n`);
  const rs = res.responses();
  assert.equal(rs.length, 1, `${target}: ${JSON.stringify(res.text.slice(0, 300))}`);
  return rs[0];
}

test('GET /widget.js: JavaScript, ETag, public max-age=300', async () => {
  const r = await httpRequest(srv.port, { path: '/widget.js' });
  assert.equal(r.status, 200);
  assert.equal(r.text, WEB_FILES['widget.js']);
  assert.equal(r.headers['content-type'], 'application/javascript; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'public, max-age=300');
  assert.match(r.headers.etag || '', /^"[^"]+"$/, `strong ETag: ${r.headers.etag}`);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(WEB_FILES['widget.js']));
  // The same bytes get the same ETag.
  const again = await httpRequest(srv.port, { path: '/widget.js' });
  assert.equal(again.headers.etag, r.headers.etag);
});

test('If-None-Match with the ETag: 304 without a body', async () => {
  const { headers } = await httpRequest(srv.port, { path: '/widget.js' });
  const r = await rawGet('/widget.js', `If-None-Match: ${headers.etag}\r\n`);
  assert.equal(r.status, 304);
  assert.equal(r.body.length, 0);
  assert.equal(r.headers.etag, headers.etag);
  // The 304 carries no body bytes at all: nothing follows the head on the wire.
  const res = await rawRequest(srv.port, `GET /widget.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: ${headers.etag}\r\nConnection: close\r\n\r\n`);
  assert.ok(res.text.endsWith('\r\n\r\n'), JSON.stringify(res.text));
  // In a list, too.
  const listed = await rawGet('/widget.js', `If-None-Match: "nope", ${headers.etag}\r\n`);
  assert.equal(listed.status, 304);
  // Another ETag: the file.
  const other = await rawGet('/widget.js', 'If-None-Match: "something-else"\r\n');
  assert.equal(other.status, 200);
  assert.equal(other.text, WEB_FILES['widget.js']);
  // Another file's ETag does not match this one.
  const html = await httpRequest(srv.port, { path: '/index.html' });
  const cross = await rawGet('/widget.js', `If-None-Match: ${html.headers.etag}\r\n`);
  assert.equal(cross.status, 200);
});

test('content types by extension; HTML is no-cache', async () => {
  const rows = [
    ['/index.html', 'text/html; charset=utf-8', 'no-cache'],
    ['/app/index.html', 'text/html; charset=utf-8', 'no-cache'],
    ['/app/app.js', 'application/javascript; charset=utf-8', 'public, max-age=300'],
    ['/app/style.css', /^text\/css(; charset=utf-8)?$/, 'public, max-age=300'],
    ['/logo.svg', /^image\/svg\+xml(; charset=utf-8)?$/, 'public, max-age=300'],
    ['/pixel.png', 'image/png', 'public, max-age=300'],
    ['/data.json', /^application\/json(; charset=utf-8)?$/, 'public, max-age=300'],
    ['/blob.xyz', 'application/octet-stream', 'public, max-age=300'],
  ];
  for (const [p, type, cache] of rows) {
    const r = await httpRequest(srv.port, { path: p });
    assert.equal(r.status, 200, p);
    if (type instanceof RegExp) assert.match(r.headers['content-type'], type, p);
    else assert.equal(r.headers['content-type'], type, p);
    assert.equal(r.headers['cache-control'], cache, p);
    const want = WEB_FILES[p.slice(1)];
    assert.deepEqual(r.body, Buffer.isBuffer(want) ? want : Buffer.from(want), `${p}: bytes`);
  }
});

test('/app/ serves app/index.html', async () => {
  const r = await httpRequest(srv.port, { path: '/app/' });
  assert.equal(r.status, 200);
  assert.equal(r.text, WEB_FILES['app/index.html']);
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-cache');
});

test('HEAD of a file: its headers, no body', async () => {
  const res = await rawRequest(srv.port, 'HEAD /widget.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { methods: 'HEAD' });
  assert.ok(res.text.endsWith('\r\n\r\n'), `bytes after the head: ${JSON.stringify(res.text)}`);
  const [r] = res.responses();
  assert.equal(r.status, 200);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(WEB_FILES['widget.js']));
  assert.equal(r.headers['content-type'], 'application/javascript; charset=utf-8');
  assert.ok(r.headers.etag);
});

test('files that do not exist: 404', async () => {
  for (const p of ['/nope.js', '/app/nope.html', '/widget.js/', '/WIDGET.JS', '/widget.js.bak']) {
    assertJsonError(await rawGet(p), 404);
  }
});

test('percent-encoded names are decoded before the lookup', async () => {
  const r = await rawGet('/%77idget.js');
  assert.equal(r.status, 200);
  assert.equal(r.text, WEB_FILES['widget.js']);
});

test('a query string does not change the file', async () => {
  const r = await rawGet('/widget.js?v=123&x=%zz');
  assert.equal(r.status, 200);
  assert.equal(r.text, WEB_FILES['widget.js']);
});

test('paths that leave the web root: 404, never the file', async () => {
  const targets = [
    '/../secret',
    '/%2e%2e/secret',
    '/%2E%2E/secret',
    '/.%2e/secret',
    '/app/../../secret',
    '/app/%2e%2e/%2e%2e/secret',
    '/..%2fsecret',
    '/..%2Fsecret',
    '/%2e%2e%2fsecret',
    '/app/..%2f..%2fsecret',
    '/..\\secret',
    '/..%5csecret',
    '/app/..%5c..%5csecret',
    '//secret',
    '/link-out',
    '/link-dir/secret',
    '/link-dir/web/widget.js',
    '/%2fsecret',
    '/.hidden',
    '/%2ehidden',
    '/app/./../../secret',
    '/./widget.js/../../secret',
    `/${'../'.repeat(50)}secret`,
  ];
  for (const t of targets) {
    const r = await rawGet(t);
    assert.ok(!r.text.includes(SECRET_TEXT), `${t} leaked the secret`);
    assert.ok(!r.text.includes('dot files are never served'), `${t} served a dot file`);
    assertJsonError(r, 404);
  }
  // An absolute-form target naming a file outside is not served either.
  const abs = await rawGet('http://x/../secret');
  assert.ok(!abs.text.includes(SECRET_TEXT));
  assert.ok(abs.status === 404 || abs.status === 400, `absolute-form: ${abs.status}`);
});

test('a symbolic link that stays inside the root is served', async () => {
  const r = await httpRequest(srv.port, { path: '/alias.js' });
  assert.equal(r.status, 200);
  assert.equal(r.text, WEB_FILES['widget.js']);
});

test('%00 in the path: 400', async () => {
  for (const t of ['/%00', '/widget.js%00', '/widget.js%00.html', '/app/%00/index.html']) {
    const r = await rawGet(t);
    assertJsonError(r, 400);
  }
});

test('malformed escapes in the path: 400 or 404, never a file', async () => {
  for (const t of ['/%', '/%zz', '/widget.js%', '/%2']) {
    const r = await rawGet(t);
    assert.ok(r.status === 400 || r.status === 404, `${t}: ${r.status}`);
    assertJsonError(r, r.status);
  }
});

test('static files over POST: not served', async () => {
  const r = await httpRequest(srv.port, { method: 'POST', path: '/widget.js', body: 'x' });
  assert.ok(r.status === 404 || r.status === 405, `POST /widget.js: ${r.status}`);
  assert.notEqual(r.text, WEB_FILES['widget.js']);
});
