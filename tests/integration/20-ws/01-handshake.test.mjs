// WebSocket opening handshake (RFC 6455 section 4.2) against eio_echo's /engine.io/ endpoint:
// the accept key, the refusals as exact bytes (400 + JSON reason, Sec-WebSocket-Version: 13 for
// a wrong version, connection closed), extensions never negotiated (GHSA-5v72-xg48-5rpm),
// Sec-WebSocket-Protocol parsed in linear time (CVE-2021-32640), non-WebSocket upgrades torn
// down (CVE-2022-41940).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, wsHandshake, wsRequest, wsOpen, SAMPLE_KEY, OP, SLOW } from '../30-eio/eio-echo.mjs';

const PATH = '/engine.io/?EIO=4&transport=websocket';
let srv;
before(async () => {
  srv = await startEcho();
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

test('the RFC sample key gets the RFC accept value, and the open packet follows', async () => {
  const ws = await wsOpen(srv.port, PATH, { key: SAMPLE_KEY });
  assert.equal(ws.head.status, 101);
  assert.equal(ws.head.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(ws.head.headers.upgrade.toLowerCase(), 'websocket');
  assert.equal(ws.head.headers.connection.toLowerCase(), 'upgrade');
  assert.equal(ws.head.headers['sec-websocket-extensions'], undefined);
  assert.equal(ws.head.headers['sec-websocket-protocol'], undefined);
  const open = await ws.next();
  assert.equal(open.opcode, OP.TEXT);
  assert.equal(open.masked, false);
  assert.match(open.text, /^0\{"sid":"[A-Za-z0-9_-]{20}","upgrades":\[\],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000\}$/);
  ws.destroy();
});

test('header tokens are matched case-insensitively inside comma lists', async () => {
  const ws = await wsOpen(srv.port, PATH, {
    headers: { Upgrade: 'WebSocket', Connection: 'keep-alive, Upgrade', 'Sec-WebSocket-Protocol': 'chat, superchat' },
  });
  assert.equal(ws.head.status, 101);
  assert.equal(ws.head.headers['sec-websocket-protocol'], undefined, 'no subprotocol is selected');
  ws.destroy();
});

test('extensions are ignored, whatever their names (no permessage-deflate, no lookups)', async () => {
  for (const ext of ['permessage-deflate; client_max_window_bits', 'constructor', '__proto__', 'toString; hasOwnProperty=1']) {
    const ws = await wsOpen(srv.port, PATH, { headers: { 'Sec-WebSocket-Extensions': ext } });
    assert.equal(ws.head.headers['sec-websocket-extensions'], undefined, ext);
    const open = await ws.next();
    assert.equal(open.rsv, 0);
    ws.destroy();
  }
});

const refusals = [
  ['wrong version', { version: '8' }, 'Unsupported WebSocket version', true],
  ['missing version', { version: null }, 'Unsupported WebSocket version', true],
  ['two version headers', { version: '13\r\nSec-WebSocket-Version: 13' }, 'Unsupported WebSocket version', true],
  ['missing key', { key: null }, 'Missing or invalid Sec-WebSocket-Key header', false],
  ['key of 15 bytes', { key: Buffer.alloc(15, 1).toString('base64') }, 'Missing or invalid Sec-WebSocket-Key header', false],
  ['key of 17 bytes', { key: Buffer.alloc(17, 1).toString('base64') }, 'Missing or invalid Sec-WebSocket-Key header', false],
  ['key not base64', { key: '!!!!!!!!!!!!!!!!!!!!!!==' }, 'Missing or invalid Sec-WebSocket-Key header', false],
  ['two keys', { key: `${SAMPLE_KEY}\r\nSec-WebSocket-Key: ${SAMPLE_KEY}` }, 'Missing or invalid Sec-WebSocket-Key header', false],
  ['upgrade to h2c', { headers: { Upgrade: 'h2c' } }, 'Missing or invalid Upgrade header', false],
  ['upgrade list without websocket', { headers: { Upgrade: 'foo, websocketx' } }, 'Missing or invalid Upgrade header', false],
  ['empty protocol list', { headers: { 'Sec-WebSocket-Protocol': ',' } }, 'Invalid Sec-WebSocket-Protocol header', false],
  ['protocol with a space inside', { headers: { 'Sec-WebSocket-Protocol': 'a b' } }, 'Invalid Sec-WebSocket-Protocol header', false],
  ['protocol with a trailing comma', { headers: { 'Sec-WebSocket-Protocol': 'chat,' } }, 'Invalid Sec-WebSocket-Protocol header', false],
];

for (const [name, opts, message, versionHeader] of refusals) {
  test(`refused: ${name} -> 400 with the reason, connection closed`, async () => {
    const r = await wsHandshake(srv.port, wsRequest(PATH, opts));
    assert.equal(r.status, 400);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { statusCode: 400, message, error: 'Bad Request' });
    assert.equal(r.headers['sec-websocket-version'], versionHeader ? '13' : undefined);
    assert.equal(r.headers.connection, 'close');
    assert.ok(r.closed, 'the refused upgrade is torn down');
  });
}

test('HTTP/1.0 upgrade is refused', async () => {
  const r = await wsHandshake(srv.port, wsRequest(PATH).replace('HTTP/1.1', 'HTTP/1.0'));
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).message, 'WebSocket handshake needs HTTP/1.1');
  assert.ok(r.closed);
});

test('Sec-WebSocket-Protocol "b" + many spaces + "x" is refused in linear time (CVE-2021-32640)', async () => {
  const value = 'b' + ' '.repeat(15000) + 'x';
  const t0 = Date.now();
  const r = await wsHandshake(srv.port, wsRequest(PATH, { headers: { 'Sec-WebSocket-Protocol': value } }));
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).message, 'Invalid Sec-WebSocket-Protocol header');
  assert.ok(Date.now() - t0 < 1000 * SLOW, `took ${Date.now() - t0} ms`);
  // A long valid list is fine too, and also fast.
  const list = Array.from({ length: 1500 }, (_, i) => `p${i}`).join(', ');
  const ws = await wsOpen(srv.port, PATH, { headers: { 'Sec-WebSocket-Protocol': list } });
  assert.equal(ws.head.status, 101);
  ws.destroy();
});

test('a refused upgrade followed by a reset leaves nothing behind (CVE-2022-41940)', async () => {
  const fds = srv.fdCount();
  for (let i = 0; i < 20; i++) {
    const r = await wsHandshake(srv.port, wsRequest(PATH, { headers: { Upgrade: 'h2c', 'HTTP2-Settings': 'AAMAAABkAARAAAAAAAIAAAAA' } }) + 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    assert.equal(r.status, 400);
    assert.ok(r.closed);
  }
  // Descriptors return to where they were (allow the listener's churn to settle).
  let now = srv.fdCount();
  for (let i = 0; i < 20 && now > fds; i++) {
    await new Promise((r) => setTimeout(r, 50));
    now = srv.fdCount();
  }
  assert.ok(now <= fds, `descriptors ${fds} -> ${now}`);
});

test('frames sent in the same packet as the handshake are read after the 101', async () => {
  const { RawConn, frame, parseFrames } = await import('../30-eio/eio-echo.mjs');
  const c = await RawConn.open(srv.port);
  await c.write(Buffer.concat([Buffer.from(wsRequest(PATH)), frame({ payload: '4early' }), frame({ payload: '4bird' })]));
  const deadline = Date.now() + 3000 * SLOW;
  let texts = [];
  while (Date.now() < deadline) {
    const i = c.buf.indexOf('\r\n\r\n');
    if (i >= 0) {
      texts = parseFrames(c.buf.subarray(i + 4)).frames.map((f) => f.text);
      if (texts.length >= 3) break;
    }
    await c._waitEvent(50);
  }
  c.destroy();
  assert.match(texts[0], /^0\{/);
  assert.deepEqual(texts.slice(1), ['4early', '4bird']);
});
