// Every refusal of the Engine.IO prefix, with the reference server's exact JSON body
// {"code","message"}: unknown transport (also on upgrade requests, CVE-2023-31125), unknown sid
// (`__proto__` too, CVE-2026-59724), bad EIO, bad handshake method, transport mismatches, an
// upgrade whose EIO differs from its session's (CVE-2026-102599), refused second WebSockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, req, handshake, poll, post, wsHandshake, wsRequest, wsOpen, assertEioError, ERR } from './eio-echo.mjs';

let srv;
before(async () => {
  srv = await startEcho();
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

const get = (path, opts = {}) => req(srv.port, { path, ...opts });

test('unknown or missing transport -> 400 code 0', async () => {
  for (const q of ['EIO=4', 'EIO=4&transport=', 'EIO=4&transport=foo', 'EIO=4&transport=webtransport', 'EIO=4&transport=Polling',
    'EIO=4&transport=polling%00', 'EIO=4&transport=' + 'p'.repeat(5000), 'EIO=4&transport=constructor', 'EIO=4&transport=__proto__']) {
    assertEioError(await get(`/engine.io/?${q}`), ERR.transport);
  }
  // Also with a sid, and on POST.
  const { sid } = await handshake(srv.port);
  assertEioError(await get(`/engine.io/?EIO=4&transport=xhr&sid=${sid}`), ERR.transport);
  assertEioError(await req(srv.port, { method: 'POST', path: `/engine.io/?EIO=4&sid=${sid}`, body: '4x' }), ERR.transport);
});

test('unknown sid -> 400 code 1, including __proto__ and look-alikes', async () => {
  const { sid } = await handshake(srv.port);
  for (const bad of ['nope', '__proto__', 'constructor', 'hasOwnProperty', 'toString', sid.slice(0, 19), sid + 'x',
    sid.toLowerCase() === sid ? sid.toUpperCase() : sid.toLowerCase(), 'A'.repeat(20), '%00'.repeat(20), 'x'.repeat(3000)]) {
    assertEioError(await get(`/engine.io/?EIO=4&transport=polling&sid=${bad}`), ERR.sid);
    assertEioError(await req(srv.port, { method: 'POST', path: `/engine.io/?EIO=4&transport=polling&sid=${bad}`, body: '4x' }), ERR.sid);
  }
  // An empty sid is a sid too (not a handshake).
  assertEioError(await get('/engine.io/?EIO=4&transport=polling&sid='), ERR.sid);
});

test('a handshake that is not a GET -> 400 code 2', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    assertEioError(await req(srv.port, { method, path: '/engine.io/?EIO=4&transport=polling', body: '' }), ERR.method);
  }
});

test('missing, old or odd EIO on a handshake -> 400 code 5', async () => {
  for (const q of ['', '&EIO=3', '&EIO=5', '&EIO=abc', '&EIO=', '&EIO=4.0', '&EIO=04', '&EIO=%34x']) {
    assertEioError(await get(`/engine.io/?transport=polling${q}`), ERR.version);
  }
  // %34 is "4": percent-decoding applies as in the reference (URLSearchParams).
  const r = await get('/engine.io/?transport=polling&EIO=%34');
  assert.equal(r.status, 200);
});

test('transport=websocket without an upgrade -> 400 code 3 (handshake and with a sid)', async () => {
  assertEioError(await get('/engine.io/?EIO=4&transport=websocket'), ERR.bad);
  const ws = await wsOpen(srv.port);
  const open = JSON.parse((await ws.next()).text.slice(1));
  assertEioError(await get(`/engine.io/?EIO=4&transport=websocket&sid=${open.sid}`), ERR.bad);
  ws.destroy();
});

test('a polling request for a WebSocket session -> 400 code 3', async () => {
  const ws = await wsOpen(srv.port);
  const open = JSON.parse((await ws.next()).text.slice(1));
  assertEioError(await poll(srv.port, open.sid), ERR.bad);
  assertEioError(await post(srv.port, open.sid, '4hi'), ERR.bad);
  ws.destroy();
});

test('EIO mismatch on requests of a session -> 400 code 3 (CVE-2026-102599)', async () => {
  const { sid } = await handshake(srv.port);
  for (const q of ['', '&EIO=3', '&EIO=5', '&EIO=x']) {
    assertEioError(await get(`/engine.io/?transport=polling&sid=${sid}${q}`), ERR.bad);
    const r = await wsHandshake(srv.port, wsRequest(`/engine.io/?transport=websocket&sid=${sid}${q}`));
    assert.equal(r.status, 400);
    assert.deepEqual(JSON.parse(r.body), ERR.bad);
    assert.ok(r.closed);
  }
  // The session is intact: it still works with EIO=4.
  const p = post(srv.port, sid, '4still');
  assert.equal((await poll(srv.port, sid)).body, '4still');
  assert.equal((await p).body, 'ok');
});

test('an upgrade request with a transport other than websocket (CVE-2023-31125)', async () => {
  const { sid } = await handshake(srv.port);
  const cases = [
    [`/engine.io/?EIO=4&transport=polling&sid=${sid}`, ERR.bad],
    [`/engine.io/?EIO=4&transport=foo&sid=${sid}`, ERR.transport],
    [`/engine.io/?EIO=4&transport=&sid=${sid}`, ERR.transport],
    [`/engine.io/?EIO=4&sid=${sid}`, ERR.transport],
    ['/engine.io/?EIO=4&transport=polling', ERR.bad],
    ['/engine.io/?EIO=4&transport=bogus', ERR.transport],
  ];
  for (const [path, err] of cases) {
    const r = await wsHandshake(srv.port, wsRequest(path));
    assert.equal(r.status, 400, path);
    assert.deepEqual(JSON.parse(r.body), err, path);
    assert.ok(r.closed);
  }
  // Still alive.
  const p = post(srv.port, sid, '4alive');
  assert.equal((await poll(srv.port, sid)).body, '4alive');
  await p;
});

test('a request with a sid and a method other than GET/POST -> 400 code 3', async () => {
  const { sid } = await handshake(srv.port);
  for (const method of ['PUT', 'DELETE', 'PATCH']) {
    assertEioError(await req(srv.port, { method, path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`, body: '' }), ERR.bad);
  }
});

test('a malformed query -> 400 code 3', async () => {
  assertEioError(await get('/engine.io/?EIO=4&transport=polling&sid=%zz'), ERR.bad);
  assertEioError(await get('/engine.io/?EIO=%4&transport=polling'), ERR.bad);
});

test('a second WebSocket for an upgraded or upgrading session is refused before the 101', async () => {
  const { sid } = await handshake(srv.port);
  const path = `/engine.io/?EIO=4&transport=websocket&sid=${sid}`;
  const probe = await wsOpen(srv.port, path);
  // Upgrading: another one is refused.
  let r = await wsHandshake(srv.port, wsRequest(path));
  assert.equal(r.status, 400);
  assert.deepEqual(JSON.parse(r.body), ERR.bad);
  const { frame } = await import('./eio-echo.mjs');
  await probe.send(frame({ payload: '2probe' }));
  assert.equal((await probe.next()).text, '3probe');
  await probe.send(frame({ payload: '5' }));
  await probe.send(frame({ payload: '4on ws' }));
  assert.equal((await probe.next({ skipPing: true })).text, '4on ws');
  // Upgraded: again refused, and polling is refused.
  r = await wsHandshake(srv.port, wsRequest(path));
  assert.equal(r.status, 400);
  assert.deepEqual(JSON.parse(r.body), ERR.bad);
  assertEioError(await poll(srv.port, sid), ERR.bad);
  probe.destroy();
});

test('on_open is reached only by valid handshakes: the polling handshake answer', async () => {
  const r = await get('/engine.io/?EIO=4&transport=polling&t=abc');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.body, /^0\{"sid":"[A-Za-z0-9_-]{20}","upgrades":\["websocket"\],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000\}$/);
  // sids are distinct.
  const sids = new Set();
  for (let i = 0; i < 50; i++) sids.add((await handshake(srv.port)).sid);
  assert.equal(sids.size, 50);
});
