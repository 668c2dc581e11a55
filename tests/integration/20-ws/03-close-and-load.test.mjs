// Closing handshakes started by the server (a peer that never answers is cut after the close
// timeout; server shutdown closes with 1001), a slow consumer (never reads while the server
// sends: dropped, memory bounded), and 1,000 concurrent WebSocket clients echoing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startEcho, wsOpen, frame, closeFrame, SLOW, SANITIZED } from '../30-eio/eio-echo.mjs';

test('a close the peer never answers is cut after the close timeout (3 s)', async () => {
  // The ping timeout makes the server close; this raw client then ignores everything.
  const srv = await startEcho(['--ping-interval', '100', '--ping-timeout', '100']);
  try {
    const ws = await wsOpen(srv.port);
    await ws.next(); // open
    const close = await ws.closeFrame(3000);
    const t0 = Date.now();
    assert.equal(close.code, 1000);
    await ws.waitClose(6000);
    const waited = Date.now() - t0;
    assert.ok(waited >= 2500 && waited < 5000 * SLOW, `TCP closed ${waited} ms after the close frame`);
    await srv.waitStderr(/event=ws\.close_timeout/);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('a peer that answers the close promptly is closed at once', async () => {
  const srv = await startEcho(['--ping-interval', '100', '--ping-timeout', '100']);
  try {
    const ws = await wsOpen(srv.port);
    await ws.next();
    const close = await ws.closeFrame(3000);
    await ws.send(closeFrame(close.code));
    const t0 = Date.now();
    await ws.waitClose(2000);
    assert.ok(Date.now() - t0 < 1000 * SLOW);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('server shutdown closes WebSockets with 1001 and exits cleanly', async () => {
  const srv = await startEcho();
  const clients = [];
  for (let i = 0; i < 5; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/engine.io/?EIO=4&transport=websocket`);
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((r) => ws.once('open', r));
    clients.push(closed);
  }
  assert.equal(await srv.stop(), 0);
  for (const c of clients) assert.equal(await c, 1001);
});

test('a slow consumer is dropped once its pending output passes the bound; memory stays bounded', async () => {
  const srv = await startEcho(['--max-payload', '100000']);
  try {
    const rss0 = srv.rssKiB();
    const ws = await wsOpen(srv.port);
    await ws.next();
    ws.conn.socket.pause(); // never read
    const msg = frame({ payload: '4' + 'x'.repeat(65535) });
    let sent = 0;
    const deadline = Date.now() + 20000 * SLOW;
    // Write until the server gives up on us (it keeps reading while it can).
    while (!/slow_consumer/.test(srv.stderr()) && Date.now() < deadline) {
      const ok = await ws.send(msg);
      if (!ok) break;
      sent += msg.length;
    }
    await srv.waitStderr(/event=(eio|http)\.slow_consumer/, 10000);
    const rss1 = srv.rssKiB();
    // ASan keeps freed memory in quarantine, so its RSS says little; the release run checks it.
    const limitKiB = SANITIZED ? 256 * 1024 : 16 * 1024;
    assert.ok(rss1 - rss0 < limitKiB, `RSS grew by ${rss1 - rss0} KiB after ${(sent / 1048576).toFixed(1)} MiB sent`);
    ws.conn.socket.resume();
    await ws.waitClose(10000);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('1,000 concurrent WebSocket clients each echo 5 messages', async () => {
  const srv = await startEcho(['--max-connections', '5000']);
  try {
    const N = 1000;
    const rss0 = srv.rssKiB();
    const t0 = Date.now();
    const clients = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/engine.io/?EIO=4&transport=websocket`);
          ws.once('error', reject);
          ws.once('message', (d) => {
            assert.match(d.toString(), /^0\{"sid"/);
            resolve(ws);
          });
          ws.i = i;
        }),
      ),
    );
    const rss1 = srv.rssKiB();
    const perConn = ((rss1 - rss0) * 1024) / N;
    const results = await Promise.all(
      clients.map(
        (ws) =>
          new Promise((resolve, reject) => {
            const want = Array.from({ length: 5 }, (_, k) => `4c${ws.i}m${k}`);
            const got = [];
            ws.on('message', (d, bin) => {
              const t = d.toString();
              if (t === '2') return ws.send('3');
              got.push(t);
              if (got.length === want.length) {
                try {
                  assert.deepEqual(got, want);
                  resolve();
                } catch (e) {
                  reject(e);
                }
              }
            });
            for (const m of want) ws.send(m);
          }),
      ),
    );
    assert.equal(results.length, N);
    const took = Date.now() - t0;
    assert.ok(took < 30000 * SLOW, `took ${took} ms`);
    await Promise.all(clients.map((ws) => new Promise((r) => { ws.once('close', r); ws.close(); })));
    console.log(`# 1000 clients: ${took} ms, server RSS +${rss1 - rss0} KiB while connected (${perConn.toFixed(0)} bytes per idle connection)`);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});
