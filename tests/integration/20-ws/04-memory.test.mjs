// Memory per idle connected WebSocket client (DESIGN.md budget: 2 KiB for all layers together).
// eio_echo logs malloc's bytes in use on SIGUSR1; the difference with N idle Engine.IO WebSocket
// sessions open, divided by N, is what this layer stack (HTTP connection, WebSocket, Engine.IO
// session) costs. Set EIO_MEMORY_CLIENTS to measure with more (the report used 10,000).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startEcho, sleep, SANITIZED } from '../30-eio/eio-echo.mjs';

const N = Number(process.env.EIO_MEMORY_CLIENTS || 2000);

async function stats(srv) {
  const before = srv.stderr().length;
  srv.proc.kill('SIGUSR1');
  for (let i = 0; i < 100; i++) {
    const m = /event=echo\.stats sessions=(\d+) connections=(\d+) heap_in_use=(\d+)/.exec(srv.stderr().slice(before));
    if (m) return { sessions: Number(m[1]), connections: Number(m[2]), heap: Number(m[3]) };
    await sleep(20);
  }
  throw new Error('no stats line');
}

test(`${N} idle Engine.IO WebSocket sessions cost at most 1.5 KiB each in ws+eio+http`, async () => {
  const srv = await startEcho(['--max-connections', String(N + 100)]);
  const clients = [];
  try {
    // Warm up allocator and code paths with a few connections first.
    const warm = [];
    for (let i = 0; i < 20; i++) warm.push(await open(srv.port));
    for (const ws of warm) ws.close();
    await sleep(200);
    const s0 = await stats(srv);
    for (let i = 0; i < N; i += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, N - i) }, () => open(srv.port)));
      clients.push(...batch);
    }
    await sleep(300); // every write of the handshake has completed
    const s1 = await stats(srv);
    assert.equal(s1.sessions, N);
    const per = (s1.heap - s0.heap) / N;
    console.log(`# ${N} idle sessions: ${per.toFixed(0)} bytes of heap each (ws+eio+http), RSS ${srv.rssKiB()} KiB`);
    if (!SANITIZED) {
      // ASan replaces malloc, so its numbers mean nothing there; the release build checks them.
      assert.ok(per > 0 && per <= 1536, `${per} bytes per connection`);
    }
  } finally {
    await Promise.all(clients.map((ws) => new Promise((r) => { ws.once('close', r); ws.close(); })));
    assert.equal(await srv.stop(), 0);
  }
});

function open(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`);
    ws.once('error', reject);
    ws.once('message', () => resolve(ws));
    ws.on('message', (d) => d.toString() === '2' && ws.send('3'));
  });
}
