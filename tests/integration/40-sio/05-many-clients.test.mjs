// 1,000 concurrent official socket.io-client connections (800 over WebSocket, 200 over
// long-polling) exchanging events with the echo server in bounded time, plus one broadcast that
// must reach every one of them exactly once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, client, connected, emitAck, nextEvent, t, waitUntil } from './echo.mjs';

const N = 1000;
const POLLING = 200;

describe(`${N} concurrent clients`, () => {
  let srv;
  const sockets = [];
  before(async () => {
    srv = await startEcho();
  });
  after(async () => {
    for (const s of sockets) s.close();
    await srv?.stop(t(20000));
  });

  it('all connect, exchange events and acks, and receive one broadcast', { timeout: t(90000) }, async () => {
    const started = Date.now();
    for (let i = 0; i < N; i++) {
      sockets.push(client(srv.url, { transports: [i < POLLING ? 'polling' : 'websocket'] }));
    }
    await Promise.all(sockets.map((s) => connected(s, t(30000))));
    const connectedMs = Date.now() - started;
    assert.equal(new Set(sockets.map((s) => s.id)).size, N, 'socket ids are unique');

    // Every client: an event echoed back and an ack answered, all at once.
    await Promise.all(
      sockets.map(async (s, i) => {
        s.emit('message', 'n', i, { i });
        const back = await nextEvent(s, 'message-back', { timeoutMs: t(30000) });
        assert.deepEqual(back, ['n', i, { i }]);
        assert.equal(await s.timeout(t(30000)).emitWithAck('message-with-ack', `ack-${i}`), `ack-${i}`);
      }),
    );

    // One broadcast to the whole namespace, encoded once, received once by everyone.
    const n = await emitAck(sockets[0], 'room-emit', {}, 'news', 'everyone');
    assert.equal(n, N);
    await waitUntil(() => sockets.every((s) => s.events.some((e) => e.name === 'news')), {
      timeoutMs: t(30000),
      label: 'broadcast everywhere',
    });
    for (const s of sockets) assert.equal(s.events.filter((e) => e.name === 'news').length, 1);
    const totalMs = Date.now() - started;
    assert.ok(totalMs < t(60000), `took ${totalMs} ms (connect ${connectedMs} ms)`);
  });
});
