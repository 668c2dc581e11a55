// Timeouts and connection limits: a head or body that does not arrive within --header-timeout
// gets 408 and a close (slowloris); an idle keep-alive connection is closed silently after
// --idle-timeout; beyond --max-connections a new connection gets 503 and a close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopAll, RawConn, rawRequest, httpRequest, assertJsonError, waitUntil, sleep,
} from '../lib/server.mjs';

const HEADER_TIMEOUT = 1000;
const IDLE_TIMEOUT = 1000;
const SLACK = 4000; // scheduling slack (sanitizer builds, a loaded machine)

let srv;
before(async () => {
  srv = await startServer({ args: ['--header-timeout', String(HEADER_TIMEOUT), '--idle-timeout', String(IDLE_TIMEOUT)] });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

// Writes bytes one at a time every intervalMs until the server answers or closes.
async function trickle(c, text, intervalMs, limitMs) {
  const start = Date.now();
  for (let i = 0; Date.now() - start < limitMs; i++) {
    if (c.closed || c.buf.length > 0) return;
    await c.write(text[i % text.length]);
    await c._waitEvent(intervalMs);
  }
}

test('slow head (one byte every 300 ms): 408 and close after --header-timeout', async () => {
  const c = await RawConn.open(srv.port);
  const t0 = Date.now();
  try {
    await trickle(c, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(1000), 300, HEADER_TIMEOUT + SLACK);
    const r = await c.readResponse({ timeoutMs: 1000 });
    const dt = Date.now() - t0;
    assertJsonError(r, 408);
    assert.equal(r.headers.connection.toLowerCase(), 'close');
    assert.equal((await c.waitClose(3000)).closed, true);
    assert.ok(dt >= HEADER_TIMEOUT - 100, `408 after ${dt} ms, before the timeout`);
    assert.ok(dt < HEADER_TIMEOUT + SLACK, `408 after ${dt} ms`);
  } finally {
    c.destroy();
  }
});

test('slow body: 408 and close after --header-timeout', async () => {
  const c = await RawConn.open(srv.port);
  try {
    await c.write('POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
    const t0 = Date.now();
    const r = await c.readResponse({ timeoutMs: HEADER_TIMEOUT + SLACK });
    const dt = Date.now() - t0;
    assertJsonError(r, 408);
    assert.equal((await c.waitClose(3000)).closed, true);
    assert.ok(dt >= HEADER_TIMEOUT - 100, `408 after ${dt} ms`);
  } finally {
    c.destroy();
  }
});

test('slow chunked body: 408 and close', async () => {
  const c = await RawConn.open(srv.port);
  try {
    await c.write('POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    await trickle(c, '1\r\nx\r\n', 200, HEADER_TIMEOUT + SLACK);
    const r = await c.readResponse({ timeoutMs: 1000 });
    assertJsonError(r, 408);
    assert.equal((await c.waitClose(3000)).closed, true);
  } finally {
    c.destroy();
  }
});

test('head and body each get their own timeout', async () => {
  const c = await RawConn.open(srv.port);
  try {
    // The head takes about 60% of the timeout, then the body another 60%: each within it.
    const head = 'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n';
    const step = Math.floor((HEADER_TIMEOUT * 0.6) / 3);
    await c.write(head.slice(0, 10));
    await sleep(step);
    await c.write(head.slice(10, 30));
    await sleep(step);
    await c.write(head.slice(30));
    await sleep(step);
    await c.write('abc');
    await sleep(step * 2);
    await c.write('def');
    const r = await c.readResponse();
    assert.equal(r.status, 405);
    assert.equal(c.closed, false);
  } finally {
    c.destroy();
  }
});

test('an idle keep-alive connection is closed silently after --idle-timeout', async () => {
  const c = await RawConn.open(srv.port);
  try {
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    const t0 = Date.now();
    const { closed, data } = await c.waitClose(IDLE_TIMEOUT + SLACK);
    const dt = Date.now() - t0;
    assert.equal(closed, true, 'closed');
    assert.equal(data.length, 0, `silently: got ${JSON.stringify(data.toString('latin1'))}`);
    assert.ok(dt >= IDLE_TIMEOUT - 100, `closed after ${dt} ms`);
  } finally {
    c.destroy();
  }
});

test('a busy keep-alive connection outlives the idle timeout', async () => {
  const c = await RawConn.open(srv.port);
  try {
    const t0 = Date.now();
    while (Date.now() - t0 < IDLE_TIMEOUT * 2.5) {
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
      await sleep(IDLE_TIMEOUT / 3);
    }
    assert.equal(c.closed, false);
  } finally {
    c.destroy();
  }
});

test('a connection that never sends a byte is closed (408 or silently)', async () => {
  const c = await RawConn.open(srv.port);
  try {
    const { closed, data } = await c.waitClose(Math.max(HEADER_TIMEOUT, IDLE_TIMEOUT) + SLACK);
    assert.equal(closed, true);
    if (data.length) assert.match(data.toString('latin1'), /^HTTP\/1\.1 408 /);
  } finally {
    c.destroy();
  }
});

test('--max-connections: beyond N open connections a new one gets 503 and close', async () => {
  const s = await startServer({ args: ['--max-connections', '3'] });
  const held = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = await RawConn.open(s.port);
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200, `connection ${i}`);
      held.push(c);
    }
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 5000 });
      assert.equal(res.closed, true, 'the extra connection is closed');
      const rs = res.responses();
      assert.equal(rs.length, 1, JSON.stringify(res.text));
      assertJsonError(rs[0], 503);
      assert.equal(rs[0].headers.connection.toLowerCase(), 'close');
    }
    // The held connections still work.
    for (const c of held) {
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
    }
    // Once one closes, a new connection is served again.
    held.pop().destroy();
    await waitUntil(async () => {
      const res = await rawRequest(s.port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      return res.responses()[0]?.status === 200;
    }, { timeoutMs: 5000, label: 'a free slot after a close' });
  } finally {
    for (const c of held) c.destroy();
    assert.equal(await s.stop(), 0);
  }
});

test('the server still answers normally after all this', async () => {
  const r = await httpRequest(srv.port, { path: '/health' });
  assert.equal(r.status, 200);
});
