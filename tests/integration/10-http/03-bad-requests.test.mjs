// Malformed and oversized request heads: each gets its status (400, 431) in the error shape,
// `Connection: close`, and the connection closed; the server keeps serving, and no file
// descriptor is left behind (BAD-INPUTS.md: every error path answers and closes).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopAll, rawRequest, httpRequest, RawConn, assertJsonError, waitUntil, sleep,
} from '../lib/server.mjs';

let srv;
let baselineFds;
before(async () => {
  srv = await startServer();
  // Warm up every path the tests use, then take the descriptor baseline.
  await httpRequest(srv.port, { path: '/health' });
  await httpRequest(srv.port, { path: '/nope' });
  await sleep(200);
  baselineFds = srv.fdCount();
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  await stopAll();
});

// Sends bytes and expects exactly one error response with status, Connection: close, and the
// connection closed by the server.
async function refused(bytes, status, label) {
  const res = await rawRequest(srv.port, bytes, { timeoutMs: 5000 });
  assert.equal(res.closed, true, `${label}: the server closes the connection`);
  let rs;
  try {
    rs = res.responses();
  } catch (e) {
    assert.fail(`${label}: answer is not HTTP: ${JSON.stringify(res.text.slice(0, 300))} (${e.message})`);
  }
  assert.equal(rs.length, 1, `${label}: exactly one response, got ${JSON.stringify(res.text.slice(0, 500))}`);
  assertJsonError(rs[0], status);
  assert.equal((rs[0].headers.connection || '').toLowerCase(), 'close', `${label}: Connection: close`);
  return rs[0];
}

async function stillServing() {
  const r = await httpRequest(srv.port, { path: '/health' });
  assert.equal(r.status, 200);
}

const BAD_400 = [
  ['garbage request line', 'GARBAGE\r\n\r\n'],
  ['method only', 'GET\r\n\r\n'],
  ['no version', 'GET /health\r\nHost: x\r\n\r\n'],
  ['bad protocol name', 'GET /health FOO/1.1\r\nHost: x\r\n\r\n'],
  ['lower-case protocol', 'GET /health http/1.1\r\nHost: x\r\n\r\n'],
  ['space in the target', 'GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['control character in the method', 'G\x01T /health HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['TLS hello on the plain port', Buffer.from('16030100a5010000a10303' + '00'.repeat(40) + '0d0a0d0a', 'hex')],
  ['binary junk', Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x0d, 0x0a, 0x0d, 0x0a])],
  ['header without colon', 'GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n'],
  ['space in a header name', 'GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n'],
  ['space before the colon', 'GET /health HTTP/1.1\r\nHost: x\r\nX-Thing : 1\r\n\r\n'],
  ['control byte in a header name', 'GET /health HTTP/1.1\r\nHost: x\r\nBad\x01Name: 1\r\n\r\n'],
  ['separator in a header name', 'GET /health HTTP/1.1\r\nHost: x\r\nBad(Name): 1\r\n\r\n'],
  ['quote in a header name', 'GET /health HTTP/1.1\r\nHost: x\r\nBad"Name: 1\r\n\r\n'],
  ['non-ASCII in a header name', Buffer.concat([Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nX-'), Buffer.from([0xc3, 0xa9]), Buffer.from(': 1\r\n\r\n')])],
  ['empty header name', 'GET /health HTTP/1.1\r\nHost: x\r\n: value\r\n\r\n'],
  ['NUL in the path', 'GET /hea\0lth HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['NUL in the method', 'GE\0T /health HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['NUL after the version', 'GET /health HTTP/1.1\0\r\nHost: x\r\n\r\n'],
  ['NUL at the start', '\0GET /health HTTP/1.1\r\nHost: x\r\n\r\n'],
];

for (const [label, bytes] of BAD_400) {
  test(`400 + close: ${label}`, async () => {
    await refused(bytes, 400, label);
    await stillServing();
  });
}

test('400 also when the bad bytes arrive one at a time', async () => {
  // The request is invalid as soon as its last byte (a control byte in a header name) is
  // read, whatever would follow; nothing is sent after it.
  const c = await RawConn.open(srv.port);
  try {
    for (const ch of 'GET /health HTTP/1.1\r\nHost: x\r\nBad\x01') await c.write(ch);
    const r = await c.readResponse();
    assertJsonError(r, 400);
    assert.equal((await c.waitClose(3000)).closed, true);
  } finally {
    c.destroy();
  }
});

test('a client still sending after its bad request still gets the 400 (staged close)', async () => {
  // RFC 9112 section 9.6: a server that closes while request bytes are still arriving makes
  // the kernel reset the connection, and the client may never read the response. The server
  // must close its side for writing first and drain what keeps coming for a while.
  let lost = 0;
  const runs = 20;
  for (let i = 0; i < runs; i++) {
    const c = await RawConn.open(srv.port);
    try {
      // The head arrives line by line, as over a slow network; the bad line comes early.
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n');
      for (let k = 0; k < 30 && !c.closed; k++) await c.write(`X-More-${k}: 1\r\n`);
      const r = await c.readResponse().catch(() => null);
      if (!r) lost++;
      else assertJsonError(r, 400);
    } finally {
      c.destroy();
    }
  }
  assert.equal(lost, 0, `${lost} of ${runs} clients never received the 400 (connection reset)`);
  await stillServing();
});

test('a head just under 16 KiB is served', async () => {
  const pad = 'a'.repeat(16 * 1024 - 300);
  const res = await rawRequest(srv.port, `GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ${pad}\r\n\r\n`);
  assert.equal(res.responses()[0].status, 200);
});

test('431 + close: one header over 16 KiB', async () => {
  await refused(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431, 'big header');
  await stillServing();
});

test('431 + close: many headers adding up to more than 16 KiB', async () => {
  let h = '';
  for (let i = 0; i < 40; i++) h += `X-H${i}: ${'b'.repeat(500)}\r\n`;
  await refused(`GET /health HTTP/1.1\r\nHost: x\r\n${h}\r\n`, 431, 'many headers');
  await stillServing();
});

test('431 + close: a request line over 16 KiB', async () => {
  await refused(`GET /${'c'.repeat(17 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431, 'long target');
  await stillServing();
});

test('431 + close: an endless head, sent in pieces, is cut at the limit', async () => {
  const c = await RawConn.open(srv.port);
  try {
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ');
    let sent = 0;
    // Up to 1 MiB, 4 KiB at a time: the answer must come long before.
    while (!c.closed && c.buf.length === 0 && sent < 1024 * 1024) {
      await c.write('d'.repeat(4096));
      sent += 4096;
      await sleep(1);
    }
    assert.ok(sent <= 64 * 1024, `server read ${sent} bytes of head before refusing`);
    const r = await c.readResponse();
    assertJsonError(r, 431);
    assert.equal((await c.waitClose(3000)).closed, true);
  } finally {
    c.destroy();
  }
});

test('100 header fields are served, 101 get 431 + close', async () => {
  const fields = (n) => {
    let h = 'Host: x\r\n';
    for (let i = 1; i < n; i++) h += `X-F${i}: ${i}\r\n`;
    return h;
  };
  const ok = await rawRequest(srv.port, `GET /health HTTP/1.1\r\n${fields(99)}Connection: close\r\n\r\n`);
  assert.equal(ok.responses()[0].status, 200, '100 fields');
  await refused(`GET /health HTTP/1.1\r\n${fields(101)}\r\n`, 431, '101 fields');
  await refused(`GET /health HTTP/1.1\r\n${fields(5000)}\r\n`, 431, '5000 fields');
  await stillServing();
});

test('--max-header-bytes and --max-headers are honoured', async () => {
  const s = await startServer({ args: ['--max-header-bytes', '2048', '--max-headers', '10'] });
  try {
    const send = (bytes) => rawRequest(s.port, bytes);
    let r = await send(`GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: ${'e'.repeat(1500)}\r\n\r\n`);
    assert.equal(r.responses()[0].status, 200);
    r = await send(`GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'e'.repeat(2100)}\r\n\r\n`);
    assert.equal(r.closed, true);
    assertJsonError(r.responses()[0], 431);
    let h = 'Host: x\r\nConnection: close\r\n';
    for (let i = 0; i < 8; i++) h += `X-${i}: 1\r\n`;
    r = await send(`GET /health HTTP/1.1\r\n${h}\r\n`);
    assert.equal(r.responses()[0].status, 200, '10 fields');
    r = await send(`GET /health HTTP/1.1\r\n${h}X-Eleventh: 1\r\n\r\n`);
    assert.equal(r.closed, true);
    assertJsonError(r.responses()[0], 431);
  } finally {
    assert.equal(await s.stop(), 0);
  }
});

test('the limits apply per request on a kept-alive connection', async () => {
  const c = await RawConn.open(srv.port);
  try {
    // Many requests, each with a 10 KiB header: together far over 16 KiB, each under it.
    for (let i = 0; i < 5; i++) {
      await c.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ${'f'.repeat(10 * 1024)}\r\n\r\n`);
      assert.equal((await c.readResponse()).status, 200, `request ${i}`);
    }
  } finally {
    c.destroy();
  }
});

test('a client that disconnects mid-head or mid-body is released promptly', async () => {
  // The default header timeout is 10 s: the descriptor must go with the peer, not with it.
  await sleep(100);
  const before = srv.fdCount();
  const partials = [
    'GET /health HTTP/1.1\r\nHost: x\r\n',
    'GET /hea',
    'POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
    'POST /nope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab',
  ];
  const conns = [];
  for (const p of partials) {
    for (let i = 0; i < 5; i++) {
      const c = await RawConn.open(srv.port);
      await c.write(p);
      conns.push(c);
    }
  }
  await waitUntil(() => srv.fdCount() >= before + conns.length, { timeoutMs: 3000, label: 'connections accepted' });
  for (const c of conns) c.socket.end(); // FIN: nothing more will come
  const t0 = Date.now();
  const n = await waitUntil(() => {
    const k = srv.fdCount();
    return k <= before ? k : false;
  }, { timeoutMs: 2000, label: 'descriptors released' }).catch(() => srv.fdCount());
  for (const c of conns) c.destroy();
  assert.ok(n <= before, `${n - before} of ${conns.length} connections whose client left mid-request still open ${Date.now() - t0} ms later`);
});

test('a client that half-closes after a complete request still gets its answer', async () => {
  const c = await RawConn.open(srv.port);
  try {
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    c.socket.end();
    const r = await c.readResponse();
    assert.equal(r.status, 200);
    assert.equal((await c.waitClose(3000)).closed, true);
  } finally {
    c.destroy();
  }
});

test('no descriptor is left behind by the refused requests', async () => {
  // Another burst of every refusal, in parallel.
  await Promise.all(BAD_400.map(([, bytes]) => rawRequest(srv.port, bytes)));
  await stillServing();
  const now = await waitUntil(() => {
    const n = srv.fdCount();
    return n <= baselineFds ? n : false;
  }, { timeoutMs: 5000, label: `fd count back to ${baselineFds}` }).catch(() => srv.fdCount());
  assert.ok(now <= baselineFds, `server has ${now} descriptors open, ${baselineFds} before the bad requests`);
});
