// Closing from the server side (eio_socket_close, triggered in eio_echo by the message
// "__close__"): on polling the close packet goes out with the held GET or the next one, on
// WebSocket as the packet "1" then close code 1000; the client sees an orderly close. And an
// owner refusing a handshake in on_open: 403 {"code":4,"message":"Forbidden"}, no session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'engine.io-client';
import { startEcho, req, handshake, poll, post, wsOpen, wsHandshake, wsRequest, frame, assertEioError, ERR, sleep, SLOW } from './eio-echo.mjs';

let srv;
before(async () => {
  srv = await startEcho(['--ping-timeout', '1000']);
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

test('polling: what was sent before the close is delivered, then the close packet with the next GET', async () => {
  const { sid } = await handshake(srv.port);
  const held = poll(srv.port, sid);
  await sleep(50);
  assert.equal((await post(srv.port, sid, '4before\x1e4__close__\x1e4after')).body, 'ok');
  // "before" was echoed at once (answering the held GET); the close waits for the next GET.
  assert.equal((await held).body, '4before');
  assert.equal((await poll(srv.port, sid)).body, '1');
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('polling, GET held with nothing queued: it gets the close packet at once', async () => {
  const { sid } = await handshake(srv.port);
  const held = poll(srv.port, sid);
  await sleep(50);
  assert.equal((await post(srv.port, sid, '4__close__')).body, 'ok');
  assert.equal((await held).body, '1');
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('polling, no GET held: the close packet goes with the next GET', async () => {
  const { sid } = await handshake(srv.port);
  assert.equal((await post(srv.port, sid, '4__close__')).body, 'ok');
  assert.equal((await poll(srv.port, sid)).body, '1');
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('polling, no GET comes: the session ends after pingTimeout anyway', async () => {
  const { sid } = await handshake(srv.port);
  assert.equal((await post(srv.port, sid, '4__close__')).body, 'ok');
  // Meanwhile the session takes no more messages, but POSTs are still answered.
  assert.equal((await post(srv.port, sid, '4ignored')).body, 'ok');
  await sleep(1300 * SLOW);
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('WebSocket: the close packet, then close code 1000', async () => {
  const ws = await wsOpen(srv.port);
  await ws.next();
  await ws.send(frame({ payload: '4__close__' }));
  assert.equal((await ws.next()).text, '1');
  const f = await ws.next();
  assert.equal(f.code, 1000);
});

test('engine.io-client sees the server close as "transport close"', async () => {
  for (const transports of [['polling'], ['websocket']]) {
    const s = new Socket(srv.url, { transports });
    await new Promise((resolve, reject) => {
      s.once('open', resolve);
      s.once('error', reject);
    });
    const closed = new Promise((r) => s.once('close', (why) => r(why)));
    s.send('__close__');
    assert.equal(await closed, 'transport close', transports[0]);
  }
});

test('on_open refusing the handshake: 403 code 4 and no session', async () => {
  const r = await req(srv.port, { path: '/engine.io/?EIO=4&transport=polling&refuse=1' });
  assertEioError(r, ERR.forbidden, 403);
  const w = await wsHandshake(srv.port, wsRequest('/engine.io/?EIO=4&transport=websocket&refuse=1'));
  assert.equal(w.status, 403);
  assert.deepEqual(JSON.parse(w.body), ERR.forbidden);
  assert.ok(w.closed);
});
