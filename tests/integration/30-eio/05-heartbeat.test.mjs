// Heartbeat (Engine.IO v4: the server pings every pingInterval, the client must pong within
// pingTimeout): detected by the server for a WebSocket client that stops answering (the `ws`
// package, which knows nothing of Engine.IO pings) and for a polling client that stops polling;
// detected by the client (engine.io-client) when the server process is stopped with SIGSTOP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Socket } from 'engine.io-client';
import { startEcho, handshake, poll, post, assertEioError, ERR, sleep, SLOW } from './eio-echo.mjs';

const INTERVAL = 300;
const TIMEOUT = 300;
let srv;
before(async () => {
  srv = await startEcho(['--ping-interval', String(INTERVAL), '--ping-timeout', String(TIMEOUT)]);
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

function wsClient(answerPings) {
  const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/engine.io/?EIO=4&transport=websocket`);
  const events = [];
  const t0 = Date.now();
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    events.push({ at: Date.now() - t0, text });
    if (answerPings && text === '2') ws.send('3');
  });
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve({ code, at: Date.now() - t0 })));
  return { ws, events, closed };
}

test('a WebSocket client that never answers pings is closed after pingInterval + pingTimeout', async () => {
  const c = wsClient(false);
  const { code, at } = await c.closed;
  assert.equal(code, 1000);
  const pings = c.events.filter((e) => e.text === '2');
  assert.equal(pings.length, 1, 'one ping, then the timeout');
  assert.ok(pings[0].at >= INTERVAL - 50, `ping at ${pings[0].at}`);
  assert.ok(at >= INTERVAL + TIMEOUT - 50 && at < (INTERVAL + TIMEOUT) * 3 * SLOW, `closed at ${at} ms`);
  await srv.waitStderr(/event=eio\.ping_timeout sid=\S+ transport=websocket/);
});

test('a client that answers stays connected over many intervals, and keeps echoing', async () => {
  const c = wsClient(true);
  await new Promise((r) => c.ws.once('open', r));
  await sleep(INTERVAL * 5);
  assert.equal(c.ws.readyState, WebSocket.OPEN);
  assert.ok(c.events.filter((e) => e.text === '2').length >= 3);
  const echo = new Promise((r) => c.ws.on('message', (d) => d.toString() === '4still' && r()));
  c.ws.send('4still');
  await echo;
  c.ws.close();
  await c.closed;
});

test('any packet while a pong is due extends the wait once (as the reference)', async () => {
  const c = wsClient(false);
  await new Promise((r) => c.ws.once('open', r));
  // Wait for the ping, then keep sending messages but never pong.
  while (!c.events.some((e) => e.text === '2')) await sleep(10);
  const pingAt = Date.now();
  // The first message 150 ms after the ping moves the deadline to 150 + TIMEOUT; the later
  // ones do not move it again.
  let sender;
  const starter = setTimeout(() => {
    sender = setInterval(() => c.ws.readyState === WebSocket.OPEN && c.ws.send('4busy'), 50);
  }, 150);
  const { code } = await c.closed;
  clearTimeout(starter);
  clearInterval(sender);
  const after = Date.now() - pingAt;
  assert.equal(code, 1000);
  assert.ok(after >= 150 + TIMEOUT - 20, `extended: closed ${after} ms after the ping`);
  assert.ok(after < (150 + TIMEOUT + 200) * SLOW, `extended only once: ${after} ms`);
});

test('a polling client that stops polling is dropped by the ping timeout', async () => {
  const { sid } = await handshake(srv.port);
  await sleep((INTERVAL + TIMEOUT) * 2);
  assertEioError(await poll(srv.port, sid), ERR.sid);
});

test('a polling client that answers the ping with a POST stays', async () => {
  const { sid } = await handshake(srv.port);
  for (let i = 0; i < 3; i++) {
    const r = await poll(srv.port, sid);
    assert.equal(r.body, '2');
    assert.equal((await post(srv.port, sid, '3')).body, 'ok');
  }
  const held = poll(srv.port, sid);
  await post(srv.port, sid, '4alive');
  assert.equal((await held).body, '4alive');
  await post(srv.port, sid, '1');
});

test('engine.io-client detects a server that stopped answering (SIGSTOP) as "ping timeout"', async () => {
  const stopped = await startEcho(['--ping-interval', '200', '--ping-timeout', '200']);
  for (const transports of [['websocket'], ['polling']]) {
    const s = new Socket(stopped.url, { transports, reconnection: false });
    await new Promise((resolve, reject) => {
      s.once('open', resolve);
      s.once('error', reject);
    });
    const t0 = Date.now();
    stopped.proc.kill('SIGSTOP');
    const reason = await new Promise((r) => s.once('close', (why) => r(why)));
    const took = Date.now() - t0;
    stopped.proc.kill('SIGCONT');
    assert.equal(reason, 'ping timeout');
    assert.ok(took < 2000, `detected after ${took} ms`);
    await sleep(100);
  }
  assert.equal(await stopped.stop(), 0);
});
