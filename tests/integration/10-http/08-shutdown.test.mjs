// Graceful shutdown on SIGTERM and SIGINT: exit code 0 within --shutdown-timeout, also with an
// idle keep-alive connection open and with a slow request in progress (which is answered or
// closed, never left hanging); no new request is served once shutdown began.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, stopAll, RawConn, sleep } from '../lib/server.mjs';

const SHUTDOWN_TIMEOUT = 2000;
const SLACK = 3000;

after(stopAll);

async function stopTimed(srv, signal) {
  const t0 = Date.now();
  const code = await srv.stop({ signal, timeoutMs: SHUTDOWN_TIMEOUT + SLACK + 5000 });
  return { code, ms: Date.now() - t0 };
}

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal} right after the listen line: exit 0 (handlers installed before ready)`, async () => {
    // Supervisors and test harnesses treat the listen line as "ready": a signal from then on
    // must take the graceful path, not the default action.
    for (let i = 0; i < 3; i++) {
      const srv = await startServer();
      const { code } = await stopTimed(srv, signal);
      assert.equal(code, 0, `attempt ${i}: ended by ${code}`);
    }
  });

  test(`${signal} with no connections: exit 0 promptly`, async () => {
    const srv = await startServer({ args: ['--shutdown-timeout', String(SHUTDOWN_TIMEOUT)] });
    const { code, ms } = await stopTimed(srv, signal);
    assert.equal(code, 0, srv.stderr().slice(-2000));
    assert.ok(ms < SHUTDOWN_TIMEOUT + SLACK, `exit took ${ms} ms`);
  });

  test(`${signal} with an idle keep-alive connection: exit 0, the connection closed`, async () => {
    const srv = await startServer({ args: ['--shutdown-timeout', String(SHUTDOWN_TIMEOUT), '--idle-timeout', '60000'] });
    const c = await RawConn.open(srv.port);
    try {
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.readResponse()).status, 200);
      const { code, ms } = await stopTimed(srv, signal);
      assert.equal(code, 0, srv.stderr().slice(-2000));
      assert.ok(ms < SHUTDOWN_TIMEOUT + SLACK, `exit took ${ms} ms`);
      const { closed, data } = await c.waitClose(2000);
      assert.equal(closed, true);
      assert.equal(data.length, 0, `an idle connection is closed without bytes: ${data}`);
    } finally {
      c.destroy();
    }
  });

  test(`${signal} while a slow request is in progress: exit 0 within the timeout, request answered or closed`, async () => {
    const srv = await startServer({ args: ['--shutdown-timeout', String(SHUTDOWN_TIMEOUT), '--header-timeout', '60000'] });
    const head = await RawConn.open(srv.port);
    const body = await RawConn.open(srv.port);
    try {
      await head.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      await body.write('POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc');
      await sleep(100);
      // Keep both trickling while the server shuts down.
      let trickling = true;
      const trickle = (async () => {
        while (trickling) {
          if (!head.closed) await head.write('a');
          if (!body.closed) await body.write('b');
          await sleep(200);
        }
      })();
      const { code, ms } = await stopTimed(srv, signal);
      trickling = false;
      await trickle;
      assert.equal(code, 0, srv.stderr().slice(-2000));
      assert.ok(ms < SHUTDOWN_TIMEOUT + SLACK, `exit took ${ms} ms`);
      for (const c of [head, body]) {
        const { closed, data } = await c.waitClose(2000);
        assert.equal(closed, true, 'the in-progress connection is closed');
        // If anything was sent, it is one whole HTTP response.
        if (data.length) assert.match(data.toString('latin1'), /^HTTP\/1\.1 \d{3} [^\r\n]*\r\n[\s\S]*\r\n\r\n/);
      }
    } finally {
      head.destroy();
      body.destroy();
    }
  });
}

test('no new request is served once shutdown began', async () => {
  const srv = await startServer({ args: ['--shutdown-timeout', '3000', '--header-timeout', '60000'] });
  const slow = await RawConn.open(srv.port);
  try {
    await slow.write('GET /health HTTP/1.1\r\nHost: x\r\n'); // keeps the server in shutdown
    await sleep(100);
    srv.kill('SIGTERM');
    await srv.waitForStderr(/shutdown/, 2000).catch(() => sleep(300));
    const served = await new Promise((resolve) => {
      const s = net.connect({ port: srv.port, host: '127.0.0.1' });
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('connect', () => s.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('error', () => resolve(got));
      s.on('close', () => resolve(got));
      setTimeout(() => {
        s.destroy();
        resolve(got);
      }, 2000);
    });
    assert.doesNotMatch(served, /^HTTP\/1\.1 200/, 'a request on a new connection was served during shutdown');
    assert.equal(await srv.stop(), 0);
  } finally {
    slow.destroy();
  }
});
