// The polling -> WebSocket upgrade as exact packets: probe, noop release of the held GET,
// the switch on "5" with the queue flushed on the WebSocket, and every way an upgrade can fail
// without harming the session (an invalid frame during the upgrade, CVE-2022-21676; a wrong
// packet; the probe closing; the upgrade timeout). Also Engine.IO packets on a WebSocket session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, handshake, poll, post, wsOpen, frame, closeFrame, OP, assertEioError, ERR, sleep } from './eio-echo.mjs';

let srv;
before(async () => {
  srv = await startEcho(['--upgrade-timeout', '400']);
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

const wsPath = (sid) => `/engine.io/?EIO=4&transport=websocket&sid=${sid}`;

test('the full upgrade: 2probe/3probe, held GET released with a noop, 5, queue flushed on the WebSocket', async () => {
  const { sid } = await handshake(srv.port);
  const held = poll(srv.port, sid);
  await sleep(50);
  const ws = await wsOpen(srv.port, wsPath(sid));
  await ws.send(frame({ payload: '2probe' }));
  const pong = await ws.next();
  assert.equal(pong.text, '3probe');
  assert.equal((await held).body, '6');
  // Still polling until "5": this echo waits in the polling queue...
  assert.equal((await post(srv.port, sid, '4queued\x1ebAQI=')).body, 'ok');
  await ws.send(frame({ payload: '5' }));
  // ... and goes out on the WebSocket after the switch, in order, binary as a binary frame.
  const a = await ws.next();
  assert.equal(a.text, '4queued');
  const b = await ws.next();
  assert.equal(b.opcode, OP.BINARY);
  assert.deepEqual(b.payload, Buffer.from([1, 2]));
  await ws.send(frame({ payload: '4on websocket' }));
  assert.equal((await ws.next()).text, '4on websocket');
  assertEioError(await poll(srv.port, sid), ERR.bad);
  await ws.send(closeFrame(1000));
  assert.equal((await ws.closeFrame()).code, 1000);
  await ws.waitClose();
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('a GET that arrives after the probe is answered with a noop at once', async () => {
  const { sid } = await handshake(srv.port);
  const ws = await wsOpen(srv.port, wsPath(sid));
  await ws.send(frame({ payload: '2probe' }));
  assert.equal((await ws.next()).text, '3probe');
  assert.equal((await poll(srv.port, sid)).body, '6');
  await ws.send(frame({ payload: '5' }));
  await ws.send(frame({ payload: '4x' }));
  assert.equal((await ws.next()).text, '4x');
  ws.destroy();
});

async function expectPollingAlive(sid) {
  const held = poll(srv.port, sid);
  await sleep(30);
  assert.equal((await post(srv.port, sid, '4alive')).body, 'ok');
  assert.equal((await held).body, '4alive');
}

test('RSV bits on the probe WebSocket (CVE-2022-21676): probe closed 1002, session stays on polling', async () => {
  for (const when of ['before probe', 'after probe']) {
    const { sid } = await handshake(srv.port);
    const ws = await wsOpen(srv.port, wsPath(sid));
    if (when === 'after probe') {
      await ws.send(frame({ payload: '2probe' }));
      assert.equal((await ws.next()).text, '3probe');
    }
    await ws.send(frame({ rsv: 2, payload: '5' }));
    assert.equal((await ws.closeFrame()).code, 1002);
    await ws.waitClose();
    await expectPollingAlive(sid);
  }
});

test('other probe failures leave the session on polling, and a later upgrade still works', async () => {
  const failures = [
    ['a message before the upgrade', async (ws) => ws.send(frame({ payload: '4too early' }))],
    ['an undecodable packet', async (ws) => ws.send(frame({ payload: '9' }))],
    ['an unmasked frame', async (ws) => ws.send(frame({ mask: false, payload: '2probe' }))],
    ['the probe closing', async (ws) => ws.send(closeFrame(1001))],
    ['the probe TCP reset', async (ws) => ws.destroy()],
    ['the upgrade timeout (400 ms)', async () => sleep(700)],
  ];
  for (const [name, act] of failures) {
    const { sid } = await handshake(srv.port);
    const ws = await wsOpen(srv.port, wsPath(sid));
    await ws.send(frame({ payload: '2probe' }));
    assert.equal((await ws.next()).text, '3probe', name);
    await act(ws);
    if (!ws.conn.socket.destroyed) await ws.waitClose();
    await expectPollingAlive(sid);
    // A new upgrade goes through.
    const ws2 = await wsOpen(srv.port, wsPath(sid));
    await ws2.send(frame({ payload: '2probe' }));
    assert.equal((await ws2.next()).text, '3probe', name);
    await ws2.send(frame({ payload: '5' }));
    await ws2.send(frame({ payload: '4upgraded' }));
    assert.equal((await ws2.next()).text, '4upgraded', name);
    ws2.destroy();
  }
});

test('an upgrade request for a WebSocket session, or with a bad WebSocket handshake, is refused', async () => {
  const { sid } = await handshake(srv.port);
  await assert.rejects(wsOpen(srv.port, wsPath(sid), { version: '12' }), (e) => e.response.status === 400);
  await expectPollingAlive(sid);
});

test('WebSocket session: close packet, client ping, bad packets', async () => {
  // "1" closes the session; the server closes the WebSocket with 1000.
  let ws = await wsOpen(srv.port);
  let sid = JSON.parse((await ws.next()).text.slice(1)).sid;
  await ws.send(frame({ payload: '1' }));
  assert.equal((await ws.closeFrame()).code, 1000);
  await ws.waitClose();
  assertEioError(await poll(srv.port, sid), ERR.sid);
  // A ping from the client is the wrong direction in v4: the session ends.
  ws = await wsOpen(srv.port);
  await ws.next();
  await ws.send(frame({ payload: '2' }));
  assert.equal((await ws.closeFrame()).code, 1000);
  await ws.waitClose();
  // An undecodable packet: 1003 and the session ends ("parse error").
  for (const bad of ['9', 'x', '', 'b!!', '5extra', '6data', '3pong']) {
    ws = await wsOpen(srv.port);
    sid = JSON.parse((await ws.next()).text.slice(1)).sid;
    await ws.send(frame({ payload: bad }));
    assert.equal((await ws.closeFrame()).code, 1003, JSON.stringify(bad));
    await ws.waitClose();
  }
  // Noop, upgrade and pong packets on an established WebSocket are harmless.
  ws = await wsOpen(srv.port);
  await ws.next();
  await ws.send(Buffer.concat([frame({ payload: '6' }), frame({ payload: '5' }), frame({ payload: '3' }), frame({ payload: '4ok' })]));
  assert.equal((await ws.next()).text, '4ok');
  ws.destroy();
});

test('binary as base64 text frames for a b64=1 WebSocket client', async () => {
  const ws = await wsOpen(srv.port, '/engine.io/?EIO=4&transport=websocket&b64=1');
  await ws.next();
  await ws.send(frame({ opcode: OP.BINARY, payload: Buffer.from([9, 8, 7]) }));
  const f = await ws.next();
  assert.equal(f.opcode, OP.TEXT);
  assert.equal(f.text, 'bCQgH');
  await ws.send(frame({ payload: 'bAAEC' }));
  assert.equal((await ws.next()).text, 'bAAEC');
  ws.destroy();
});
