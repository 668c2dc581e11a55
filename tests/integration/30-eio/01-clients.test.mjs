// The official engine.io-client (v6, Engine.IO protocol v4) against eio_echo with default
// options: polling only, WebSocket only, and the default polling -> WebSocket upgrade; text and
// binary round trips of many shapes and sizes, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'engine.io-client';
import { startEcho, SLOW } from './eio-echo.mjs';

let srv;
before(async () => {
  srv = await startEcho();
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

function connect(opts) {
  return new Promise((resolve, reject) => {
    const s = new Socket(srv.url, opts);
    const t = setTimeout(() => reject(new Error('open timed out')), 5000 * SLOW);
    s.once('open', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

// Sends every message and collects as many echoes; resolves with them.
function roundTrip(s, messages) {
  return new Promise((resolve, reject) => {
    const got = [];
    const t = setTimeout(() => reject(new Error(`only ${got.length}/${messages.length} echoes`)), 10000 * SLOW);
    const onMessage = (m) => {
      got.push(m);
      if (got.length === messages.length) {
        clearTimeout(t);
        s.off('message', onMessage);
        resolve(got);
      }
    };
    s.on('message', onMessage);
    for (const m of messages) s.send(m);
  });
}

// (An empty text message is not in the list: engine.io-client itself decodes "4" as undefined.)
const TEXTS = ['hello', 'héllo wörld ✓ 😀 中文', 'a'.repeat(100000), '{"json":[1,2,3]}', 'line\nbreak\ttab', '\u0000nul inside'];
const BINS = [Buffer.from([1, 2, 3]), Buffer.alloc(0), Buffer.alloc(70000, 0xab), Buffer.from('binary text')];

function checkEchoes(got) {
  const want = [...TEXTS, ...BINS];
  assert.equal(got.length, want.length);
  for (let i = 0; i < want.length; i++) {
    if (typeof want[i] === 'string') assert.equal(got[i], want[i], `message ${i}`);
    else assert.deepEqual(Buffer.from(got[i]), want[i], `message ${i}`);
  }
}

for (const transports of [['polling'], ['websocket']]) {
  test(`transports ${JSON.stringify(transports)}: text and binary round trips`, async () => {
    const s = await connect({ transports });
    assert.equal(s.transport.name, transports[0]);
    assert.match(s.id, /^[A-Za-z0-9_-]{20}$/);
    checkEchoes(await roundTrip(s, [...TEXTS, ...BINS]));
    // Nothing switched transport on the way.
    assert.equal(s.transport.name, transports[0]);
    s.close();
  });
}

test('default options: starts on polling, upgrades to WebSocket, messages flow throughout', async () => {
  const s = await connect({});
  assert.equal(s.transport.name, 'polling');
  const upgraded = new Promise((resolve) => s.once('upgrade', (t) => resolve(t.name)));
  // Messages sent during the upgrade arrive in order.
  const during = roundTrip(s, TEXTS.slice(0, 3));
  assert.deepEqual(await during, TEXTS.slice(0, 3));
  assert.equal(await upgraded, 'websocket');
  assert.equal(s.transport.name, 'websocket');
  checkEchoes(await roundTrip(s, [...TEXTS, ...BINS]));
  s.close();
});

test('binary with forceBase64 (b64=1) on both transports', async () => {
  for (const transports of [['polling'], ['websocket']]) {
    const s = await connect({ transports, forceBase64: true });
    const got = await roundTrip(s, [Buffer.from([0, 255, 10]), 'text']);
    assert.deepEqual(Buffer.from(got[0]), Buffer.from([0, 255, 10]));
    assert.equal(got[1], 'text');
    s.close();
  }
});

test('a client close reaches the server and frees the session', async () => {
  for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
    const s = await connect({ transports });
    if (transports.length === 2) await new Promise((r) => s.once('upgrade', r));
    const reason = new Promise((r) => s.once('close', (why) => r(why)));
    s.close();
    assert.equal(await reason, 'forced close');
  }
});

test('many messages in a burst arrive in order on every transport', async () => {
  for (const transports of [['polling'], ['websocket']]) {
    const s = await connect({ transports });
    const msgs = Array.from({ length: 500 }, (_, i) => `m${i}`);
    assert.deepEqual(await roundTrip(s, msgs), msgs);
    s.close();
  }
});
