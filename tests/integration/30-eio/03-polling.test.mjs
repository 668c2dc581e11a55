// HTTP long-polling, byte for byte: the held GET, POST bodies (packets joined by 0x1e, binary as
// "b<base64>"), the answers the reference gives ("ok" as text/html), the refusals that close the
// session (octet-stream body CVE-2026-59725, undecodable body, oversized body, a second GET at
// once), the close packet, and CORS for polling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, req, handshake, poll, post, assertEioError, ERR, sleep, SLOW, RawConn } from './eio-echo.mjs';

let srv;
const ORIGIN = 'http://allowed.example';
before(async () => {
  srv = await startEcho(['--cors-origin', ORIGIN, '--max-payload', '10000']);
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

test('a GET with nothing to send is held until a message arrives', async () => {
  const { sid } = await handshake(srv.port);
  const held = poll(srv.port, sid);
  let answered = false;
  held.then(() => (answered = true));
  await sleep(200);
  assert.equal(answered, false, 'the poll is held');
  const p = await post(srv.port, sid, '4hello');
  assert.equal(p.status, 200);
  assert.equal(p.body, 'ok');
  assert.equal(p.headers['content-type'], 'text/html');
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; charset=UTF-8');
  assert.equal(r.body, '4hello');
});

test('several packets in one POST come back joined by 0x1e; binary as b<base64>', async () => {
  const { sid } = await handshake(srv.port);
  const body = ['4one', '4two', 'bAQID', '4thr\u00e9e'].join('\x1e');
  assert.equal((await post(srv.port, sid, body)).body, 'ok');
  const r = await poll(srv.port, sid);
  assert.equal(r.body, body);
  // Pong and noop packets are accepted and produce nothing.
  assert.equal((await post(srv.port, sid, '3\x1e6\x1e4x')).body, 'ok');
  assert.equal((await poll(srv.port, sid)).body, '4x');
});

test('a close packet in a POST ends the session', async () => {
  const { sid } = await handshake(srv.port);
  assert.equal((await post(srv.port, sid, '1')).body, 'ok');
  assertEioError(await poll(srv.port, sid), ERR.sid);
  // With a held GET: the echo of "bye" answers it at once; nothing after the close packet is
  // processed.
  const s2 = (await handshake(srv.port)).sid;
  const held = poll(srv.port, s2);
  await sleep(50);
  assert.equal((await post(srv.port, s2, '4bye\x1e1\x1e4after')).body, 'ok');
  assert.equal((await held).body, '4bye');
  assertEioError(await poll(srv.port, s2), ERR.sid);
  // A held GET with nothing else to say gets the close packet itself.
  const s3 = (await handshake(srv.port)).sid;
  const held3 = poll(srv.port, s3);
  await sleep(50);
  assert.equal((await post(srv.port, s3, '1')).body, 'ok');
  assert.equal((await held3).body, '1');
});

test('a second concurrent GET: 400 code 3, the session closes and the held GET gets the close packet', async () => {
  const { sid } = await handshake(srv.port);
  const first = poll(srv.port, sid);
  await sleep(50);
  assertEioError(await poll(srv.port, sid), ERR.bad);
  const r = await first;
  assert.equal(r.status, 200);
  assert.equal(r.body, '1');
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('POST with Content-Type application/octet-stream: 400 code 3, session closed, connection answered (CVE-2026-59725)', async () => {
  for (const body of [Buffer.from([0xff, 0x00, 0x01]), Buffer.from('4valid text'), Buffer.alloc(0)]) {
    const { sid } = await handshake(srv.port);
    const r = await req(srv.port, {
      method: 'POST',
      path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`,
      headers: { 'Content-Type': 'application/octet-stream' },
      body,
      timeoutMs: 2000,
    });
    assertEioError(r, ERR.bad);
    assertEioError(await poll(srv.port, sid), ERR.sid);
  }
});

test('an undecodable POST body: 400 code 3 and the session closes ("parse error")', async () => {
  const bodies = ['', 'x', '9', '4a\x1e\x1e4b', '2:42 2:42 2:42', 'b!!!', Buffer.from([0x34, 0xff, 0xfe]), '7', '2ping', '99999991:4222'];
  for (const body of bodies) {
    const { sid } = await handshake(srv.port);
    assertEioError(await post(srv.port, sid, body), ERR.bad);
    assertEioError(await poll(srv.port, sid), ERR.sid);
  }
});

test('a POST over maxPayload or with too many packets: 413 and the session closes', async () => {
  let { sid } = await handshake(srv.port);
  let r = await post(srv.port, sid, '4' + 'a'.repeat(10000));
  assert.equal(r.status, 413);
  assert.deepEqual(JSON.parse(r.body), { code: 3, message: 'Payload too large' });
  assertEioError(await poll(srv.port, sid), ERR.sid);
  // Exactly maxPayload is fine.
  ({ sid } = await handshake(srv.port));
  assert.equal((await post(srv.port, sid, '4' + 'a'.repeat(9999))).body, 'ok');
  assert.equal((await poll(srv.port, sid)).body.length, 10000);
  // Thousands of tiny packets (CVE-2020-36048): refused quickly.
  ({ sid } = await handshake(srv.port));
  const t0 = Date.now();
  r = await post(srv.port, sid, Array(2000).fill('6').join('\x1e'));
  assert.equal(r.status, 413);
  assert.ok(Date.now() - t0 < 1000 * SLOW);
  // A body over the HTTP layer's limit is refused by it.
  ({ sid } = await handshake(srv.port));
  r = await post(srv.port, sid, '4' + 'a'.repeat(20000));
  assert.equal(r.status, 413);
});

test('the held GET connection closing ends the session ("transport error")', async () => {
  const { sid } = await handshake(srv.port);
  const c = await RawConn.open(srv.port);
  await c.write(`GET /engine.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: x\r\n\r\n`);
  await sleep(100);
  c.destroy();
  await sleep(100);
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('messages queued while no GET is held are delivered together by the next GET', async () => {
  const { sid } = await handshake(srv.port);
  for (let i = 0; i < 5; i++) await post(srv.port, sid, `4m${i}`);
  assert.equal((await poll(srv.port, sid)).body, ['4m0', '4m1', '4m2', '4m3', '4m4'].join('\x1e'));
});

test('CORS: an allowed origin is reflected with credentials; others get no CORS headers', async () => {
  let r = await req(srv.port, { path: '/engine.io/?EIO=4&transport=polling', headers: { Origin: ORIGIN } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers.vary, 'Origin');
  const sid = JSON.parse(r.body.slice(1)).sid;
  r = await req(srv.port, { method: 'POST', path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`, headers: { Origin: ORIGIN }, body: '4x' });
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  // Errors carry them too, so the browser can read the refusal.
  r = await req(srv.port, { path: '/engine.io/?EIO=4&transport=nope', headers: { Origin: ORIGIN } });
  assert.equal(r.status, 400);
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  for (const origin of ['http://evil.example', 'http://allowed.example.evil', 'null', 'HTTP://ALLOWED.EXAMPLE']) {
    r = await req(srv.port, { path: '/engine.io/?EIO=4&transport=polling', headers: { Origin: origin } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined, origin);
    assert.equal(r.headers['access-control-allow-credentials'], undefined, origin);
  }
});

test('CORS preflight: OPTIONS answered 204 with the methods and the requested headers', async () => {
  let r = await req(srv.port, {
    method: 'OPTIONS',
    path: '/engine.io/?EIO=4&transport=polling',
    headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type, x-custom' },
  });
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-allow-methods'], 'GET, POST');
  assert.equal(r.headers['access-control-allow-headers'], 'content-type, x-custom');
  r = await req(srv.port, { method: 'OPTIONS', path: '/engine.io/?EIO=4&transport=polling', headers: { Origin: 'http://evil.example' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});

test('without a CORS policy no CORS header is ever sent, and OPTIONS is not a handshake', async () => {
  const plain = await startEcho();
  try {
    const r = await req(plain.port, { path: '/engine.io/?EIO=4&transport=polling', headers: { Origin: ORIGIN } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
    assertEioError(await req(plain.port, { method: 'OPTIONS', path: '/engine.io/?EIO=4&transport=polling', headers: { Origin: ORIGIN } }), ERR.method);
  } finally {
    assert.equal(await plain.stop(), 0);
  }
});

test('after every refusal above, no descriptor is left behind', async () => {
  const base = srv.fdCount();
  for (let i = 0; i < 20; i++) {
    const { sid } = await handshake(srv.port);
    const held = poll(srv.port, sid);
    await sleep(10);
    await req(srv.port, {
      method: 'POST',
      path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`,
      headers: { 'Content-Type': 'application/octet-stream' },
      body: Buffer.from([0xde, 0xad]),
    });
    assert.equal((await held).body, '1');
    await post(srv.port, 'nosuchsid', '4x');
  }
  let now = srv.fdCount();
  for (let i = 0; i < 40 && now > base; i++) {
    await sleep(50);
    now = srv.fdCount();
  }
  assert.ok(now <= base, `descriptors ${base} -> ${now}`);
});
