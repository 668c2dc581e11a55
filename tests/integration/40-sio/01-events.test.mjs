// Socket.IO events, acknowledgements and binary attachments with the official socket.io-client,
// over each transport alone and over the default polling -> WebSocket upgrade, against the echo
// example server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, client, connected, nextEvent, emitAck, once, t, waitUntil } from './echo.mjs';

// Argument lists of many shapes: each is sent as `message` and must come back unchanged.
const SHAPES = [
  [],
  ['plain'],
  ['héllo wörld', '日本語', 'emoji 😀🎉 and a flag 🇫🇷', 'quote " backslash \\ slash / tab \t nl \n'],
  [0, -1, 42, 3.5, -0.25, 1e21, 2 ** 53 - 1, -(2 ** 53 - 1)],
  [{ a: 1, nested: { deep: { deeper: [1, 2, { x: 'y' }] } }, empty: {}, list: [] }],
  [[1, [2, [3, [4]]]], []],
  [null, true, false],
  [null],
  ['x'.repeat(100000)],
  Array.from({ length: 40 }, (_, i) => (i % 2 ? `arg${i}` : i)),
  [{ _placeholder: true, num: 0 }], // looks like a placeholder, but in a plain EVENT it is data
  [{ toString: 'not a function', __proto__x: 1, constructor: 'c' }],
];

const MODES = [
  { name: 'polling only', opts: { transports: ['polling'] }, final: 'polling' },
  { name: 'websocket only', opts: { transports: ['websocket'] }, final: 'websocket' },
  { name: 'default (polling, then upgrade)', opts: {}, final: 'websocket' },
];

for (const mode of MODES) {
  describe(`events over ${mode.name}`, () => {
    let srv;
    let s;
    before(async () => {
      srv = await startEcho();
      s = await connected(client(srv.url, { ...mode.opts, auth: { token: 'abc', n: 1 } }));
      if (mode.final === 'websocket' && !mode.opts.transports) {
        await waitUntil(() => s.io.engine.transport.name === 'websocket', { timeoutMs: t(5000), label: 'upgrade' });
      }
    });
    after(async () => {
      s?.close();
      await srv?.stop();
    });

    it('connects with a 20-character id and receives its auth object', async () => {
      assert.match(s.id, /^[A-Za-z0-9_-]{20}$/);
      assert.deepEqual(await nextEvent(s, 'auth'), [{ token: 'abc', n: 1 }]);
      assert.equal(s.io.engine.transport.name, mode.final);
    });

    it('echoes `message` with every argument shape', async () => {
      for (const args of SHAPES) {
        s.emit('message', ...args);
        const back = await nextEvent(s, 'message-back');
        assert.deepEqual(back, JSON.parse(JSON.stringify(args)));
      }
    });

    it('answers a client ack with the same arguments', async () => {
      for (const args of SHAPES) {
        const r = await new Promise((resolve) => s.emit('message-with-ack', ...args, (...a) => resolve(a)));
        assert.deepEqual(r, JSON.parse(JSON.stringify(args)));
      }
      assert.deepEqual(await emitAck(s, 'message-with-ack', 'one'), 'one');
    });

    it('asks the client for an ack and reports the answer (server-side emit with ack)', async () => {
      const asked = once(s, 'ask');
      s.emit('ping-me', 'question', { n: 7 });
      const [q, n, cb] = await asked;
      assert.equal(q, 'question');
      assert.deepEqual(n, { n: 7 });
      assert.equal(typeof cb, 'function');
      cb('reply', Buffer.from([9, 8, 7]), { ok: true });
      const answer = await nextEvent(s, 'answer');
      assert.equal(answer[0], 'reply');
      assert.ok(Buffer.isBuffer(answer[1]));
      assert.deepEqual([...answer[1]], [9, 8, 7]);
      assert.deepEqual(answer[2], { ok: true });
    });

    it('echoes binary attachments: one, several, nested, empty, large', async () => {
      const big = Buffer.alloc(200000, 0xab);
      const cases = [
        [Buffer.from('hello')],
        [Buffer.from([0]), Buffer.from([1, 2]), Buffer.from([3, 4, 5])],
        ['text', { file: Buffer.from('in an object'), list: [Buffer.from([255]), 'x', { deep: Buffer.from('deep') }] }],
        [Buffer.alloc(0)],
        [big, 'after'],
      ];
      for (const args of cases) {
        s.emit('message', ...args);
        const back = await nextEvent(s, 'message-back');
        assert.deepEqual(back, args);
        const acked = await emitAck(s, 'message-with-ack', ...args);
        assert.deepEqual(acked, args[0]);
      }
    });

    it('acks with binary as BINARY_ACK', async () => {
      const r = await new Promise((resolve) =>
        s.emit('message-with-ack', Buffer.from('b1'), { b: Buffer.from('b2') }, (...a) => resolve(a)),
      );
      assert.deepEqual(r, [Buffer.from('b1'), { b: Buffer.from('b2') }]);
    });

    it('works on the /custom namespace over the same connection', async () => {
      // A second socket of the same Manager: multiplexed over the same Engine.IO session.
      const custom = s.io.socket('/custom', { auth: { ns: 'custom' } });
      custom.events = [];
      custom.onAny((name, ...args) => custom.events.push({ name, args }));
      custom.connect(); // already connecting: the client sends a second CONNECT, answered once
      await connected(custom);
      assert.notEqual(custom.id, s.id);
      assert.deepEqual(await nextEvent(custom, 'auth'), [{ ns: 'custom' }]);
      custom.emit('message', 'to custom', Buffer.from('cb'));
      assert.deepEqual(await nextEvent(custom, 'message-back'), ['to custom', Buffer.from('cb')]);
      // Leaving /custom keeps / working.
      custom.disconnect();
      assert.deepEqual(await emitAck(s, 'message-with-ack', 'still here'), 'still here');
    });
  });
}

describe('server-side ack timeout and disconnect', () => {
  let srv;
  before(async () => {
    srv = await startEcho();
  });
  after(async () => {
    await srv?.stop();
  });

  it('reports a timeout when the client never acks (5 s in echo)', async () => {
    const s = await connected(client(srv.url, { transports: ['websocket'] }));
    s.on('ask', () => {}); // takes the ack callback and never calls it
    s.emit('ping-me', 'no answer');
    const r = await nextEvent(s, 'answer-error', { timeoutMs: t(9000) });
    assert.deepEqual(r, ['timeout']);
    s.close();
  });

  it('a pending server ack is cancelled cleanly when the client goes away', async () => {
    const s = await connected(client(srv.url, { transports: ['websocket'] }));
    const asked = once(s, 'ask');
    s.emit('ping-me', 'then leave');
    await asked;
    s.close();
    // The server must survive it (and the ASan run checks nothing leaks): another client works.
    const s2 = await connected(client(srv.url, { transports: ['polling'] }));
    assert.equal(await emitAck(s2, 'message-with-ack', 'ok'), 'ok');
    s2.close();
  });

  it('disconnects a socket from the server side: the client sees "io server disconnect"', async () => {
    const s = await connected(client(srv.url, { transports: ['websocket'] }));
    const reason = once(s, 'disconnect');
    s.emit('disconnect-me');
    assert.deepEqual((await reason)[0], 'io server disconnect');
    s.close();
  });
});
