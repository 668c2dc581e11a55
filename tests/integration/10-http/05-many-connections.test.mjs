// 1000 idle connections held open while another client is served normally and fast; all of
// them released afterwards (descriptor count back to the baseline).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, stopAll, httpRequest, RawConn, waitUntil, sleep } from '../lib/server.mjs';

const N = 1000;
let srv;
before(async () => {
  srv = await startServer();
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

function connectIdle(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function timedHealth() {
  const t0 = process.hrtime.bigint();
  const r = await httpRequest(srv.port, { path: '/health', timeoutMs: 5000 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.equal(r.status, 200);
  return ms;
}

test(`${N} idle connections do not slow down another client`, async () => {
  await timedHealth();
  await sleep(100);
  const baseline = srv.fdCount();
  const idle = [];
  const closedEarly = [];
  try {
    // Open them in batches of 100.
    for (let i = 0; i < N; i += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => connectIdle(srv.port)));
      for (const s of batch) {
        s.on('close', () => closedEarly.push(s));
        s.on('error', () => {});
        idle.push(s);
      }
    }
    // Some of them have sent half a request; the rest nothing at all.
    for (let i = 0; i < N; i += 4) idle[i].write('GET /health HTTP/1.1\r\nHost: x\r\n');
    await waitUntil(() => srv.fdCount() >= baseline + N, { timeoutMs: 10000, label: `server holding ${N} more descriptors` });

    const times = [];
    for (let i = 0; i < 20; i++) times.push(await timedHealth());
    times.sort((a, b) => a - b);
    assert.ok(times[times.length - 1] < 1000, `slowest /health took ${times[times.length - 1].toFixed(1)} ms with ${N} idle connections`);
    assert.ok(times[10] < 200, `median /health took ${times[10].toFixed(1)} ms`);

    // A kept-alive client doing 200 requests in a row.
    const c = await RawConn.open(srv.port);
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
    }
    const dt = Date.now() - t0;
    c.destroy();
    assert.ok(dt < 5000, `200 keep-alive requests took ${dt} ms`);
    assert.equal(closedEarly.length, 0, 'no idle connection was dropped (the timeouts are longer than this test)');
  } finally {
    for (const s of idle) s.destroy();
  }
  // Every descriptor is released. (Prompt release of connections closed mid-request is
  // checked on its own in 03-bad-requests; here the header timeout, 10 s, is the bound.)
  await waitUntil(() => srv.fdCount() <= baseline, { timeoutMs: 15000, label: `descriptors back to ${baseline}` });
});
