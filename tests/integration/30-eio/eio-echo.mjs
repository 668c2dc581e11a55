// Helpers for the WebSocket (20-ws) and Engine.IO (30-eio) suites: start the eio_echo example
// server (a plain Engine.IO echo at /engine.io/), speak raw WebSocket frames over a TCP socket,
// and do raw Engine.IO polling requests.
//
// The binary is $EIO_ECHO_BIN, else $PARLEY_BUILD/examples/eio_echo, else
// build/examples/eio_echo. With PARLEY_SANITIZED=1 (the ASan run), stop() fails the test when the
// server printed a sanitizer report, and time limits are more generous.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { assertNoSanitizerReport, RawConn, rawRequest, parseResponses } from '../lib/server.mjs';

export { RawConn, rawRequest, parseResponses };

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const ECHO_BIN = process.env.EIO_ECHO_BIN
  ? path.resolve(REPO, process.env.EIO_ECHO_BIN)
  : path.resolve(REPO, process.env.PARLEY_BUILD || 'build', 'examples/eio_echo');
export const SANITIZED = !!process.env.PARLEY_SANITIZED || /asan/.test(ECHO_BIN);
// A multiplier for time limits: sanitizer builds run slower.
export const SLOW = SANITIZED ? 3 : 1;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      // gone
    }
  }
});

// Starts eio_echo with extra args; resolves once it listens.
export async function startEcho(args = [], { logLevel = 'info', timeoutMs = 10000 } = {}) {
  const proc = spawn(ECHO_BIN, ['--port', '0', '--log-level', logLevel, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(proc);
  let err = '';
  const watchers = new Set();
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    err += d;
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(d);
    for (const w of watchers) w();
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let hasExited = false;
  exited.then(() => {
    hasExited = true;
    live.delete(proc);
    for (const w of watchers) w();
  });
  const waitStderr = (re, ms = 5000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(err);
        if (m) {
          done();
          resolve(m);
        } else if (hasExited) {
          done();
          reject(new Error(`eio_echo exited before ${re} appeared:\n${err}`));
        }
      };
      const t = setTimeout(() => {
        done();
        reject(new Error(`${re} did not appear within ${ms} ms:\n${err.slice(-3000)}`));
      }, ms * SLOW);
      function done() {
        clearTimeout(t);
        watchers.delete(check);
      }
      watchers.add(check);
      check();
    });
  const m = await waitStderr(/event=http\.listen\b[^\n]*\bport=(\d+)/, timeoutMs);
  const port = Number(m[1]);
  let stopped = null;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    pid: proc.pid,
    exited,
    stderr: () => err,
    waitStderr,
    fdCount: () => fs.readdirSync(`/proc/${proc.pid}/fd`).length,
    // Resident memory of the server in KiB.
    rssKiB() {
      const s = fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
    },
    // SIGTERM (graceful), wait for exit 0, and check the sanitizer output.
    async stop({ timeoutMs = 15000 } = {}) {
      if (!stopped) {
        stopped = (async () => {
          if (!hasExited) proc.kill('SIGTERM');
          let timer;
          const r = await Promise.race([
            exited,
            new Promise((resolve) => {
              timer = setTimeout(() => resolve(null), timeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (r === null) {
            proc.kill('SIGKILL');
            await exited;
            assert.fail(`eio_echo did not exit within ${timeoutMs} ms of SIGTERM:\n${err.slice(-4000)}`);
          }
          await new Promise((resolve) => setImmediate(resolve));
          assertNoSanitizerReport(err, 'eio_echo');
          return r.code ?? r.signal;
        })();
      }
      return stopped;
    },
  };
}

// ---- raw WebSocket ----------------------------------------------------------------------------

export const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };

// One client frame. payload: Buffer or string. mask: true (random key), false, or a 4-byte
// Buffer. len16/len64 force a longer length form than needed (non-minimal encoding).
// announce: a length to put in the header instead of the payload's own.
export function frame({ fin = true, rsv = 0, opcode = OP.TEXT, mask = true, payload = '', len16 = false, len64 = false, announce } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  const len = announce ?? data.length;
  const head = [((fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf))];
  const m = mask ? 0x80 : 0;
  let ext;
  if (len64 || len > 0xffff) {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  } else if (len16 || len >= 126) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(m | len);
    ext = Buffer.alloc(0);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, data]);
  const key = Buffer.isBuffer(mask) ? mask : crypto.randomBytes(4);
  const masked = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i] ^ key[i % 4];
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

export function closeFrame(code, reason = '', opts = {}) {
  let payload;
  if (code === undefined) payload = Buffer.alloc(0);
  else {
    const r = Buffer.isBuffer(reason) ? reason : Buffer.from(reason, 'utf8');
    payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), r]);
  }
  return frame({ opcode: OP.CLOSE, payload, ...opts });
}

// Parses server frames (unmasked) from buf. Returns {frames, rest}.
export function parseFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length - p < 2) break;
      len = buf.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      if (buf.length - p < 8) break;
      len = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    const masked = !!(b1 & 0x80);
    if (masked) p += 4;
    if (buf.length - p < len) break;
    const payload = buf.subarray(p, p + len);
    const f = { fin: !!(b0 & 0x80), rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload };
    if (f.opcode === OP.CLOSE) {
      f.code = payload.length >= 2 ? payload.readUInt16BE(0) : undefined;
      f.reason = payload.subarray(2).toString('utf8');
    }
    if (f.opcode === OP.TEXT) f.text = payload.toString('utf8');
    frames.push(f);
    off = p + len;
  }
  return { frames, rest: buf.subarray(off) };
}

// A raw WebSocket connection: handshake done by wsOpen(); frames read with next()/closeFrame().
export class RawWs {
  constructor(conn, head) {
    this.conn = conn; // RawConn
    this.head = head; // the 101 response
    this.frames = [];
  }

  _drain() {
    const { frames, rest } = parseFrames(this.conn.buf);
    this.conn.buf = Buffer.from(rest);
    this.frames.push(...frames);
  }

  send(bytes) {
    return this.conn.write(bytes);
  }

  // Next frame (optionally skipping pings/pongs), or throws on close/timeout.
  async next({ timeoutMs = 3000, skipPing = false } = {}) {
    const deadline = Date.now() + timeoutMs * SLOW;
    for (;;) {
      this._drain();
      while (this.frames.length) {
        const f = this.frames.shift();
        if (skipPing && f.opcode === OP.TEXT && f.text === '2') continue;
        return f;
      }
      if (this.conn.closed) throw new Error('connection closed while waiting for a frame');
      if (Date.now() > deadline) throw new Error('no frame within the time limit');
      await this.conn._waitEvent(deadline - Date.now());
    }
  }

  // Waits for the TCP connection to close; returns every frame received before that.
  async waitClose(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs * SLOW;
    while (!this.conn.closed) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await this.conn._waitEvent(deadline - Date.now());
    }
    this._drain();
    const all = this.frames;
    this.frames = [];
    return all;
  }

  // Reads frames until a close frame; returns it (throws if TCP closes without one).
  async closeFrame(timeoutMs = 5000) {
    for (;;) {
      const f = await this.next({ timeoutMs });
      if (f.opcode === OP.CLOSE) return f;
    }
  }

  destroy() {
    this.conn.destroy();
  }
}

export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export function wsRequest(path, { key = SAMPLE_KEY, headers = {}, version = '13' } = {}) {
  const h = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': version,
    ...headers,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) if (v !== null && v !== undefined) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

// Opens a WebSocket with a raw handshake; resolves with a RawWs after the 101 (and throws with
// the response when it is not 101).
export async function wsOpen(port, path = '/engine.io/?EIO=4&transport=websocket', opts = {}) {
  const conn = await RawConn.open(port);
  await conn.write(wsRequest(path, opts));
  const head = await readHead(conn);
  if (head.status !== 101) {
    conn.destroy();
    const e = new Error(`expected 101, got ${head.status}`);
    e.response = head;
    throw e;
  }
  return new RawWs(conn, head);
}

// Reads a response head (and, for non-101, its body by Content-Length).
async function readHead(conn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs * SLOW;
  for (;;) {
    const end = conn.buf.indexOf('\r\n\r\n');
    if (end >= 0) {
      const text = conn.buf.subarray(0, end).toString('latin1');
      const lines = text.split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let rest = conn.buf.subarray(end + 4);
      if (status !== 101) {
        const len = Number(headers['content-length'] || 0);
        while (rest.length < len && !conn.closed && Date.now() < deadline) {
          await conn._waitEvent(deadline - Date.now());
          rest = conn.buf.subarray(end + 4);
        }
        const body = rest.subarray(0, len).toString('utf8');
        conn.buf = Buffer.from(rest.subarray(len));
        return { status, headers, body, raw: text };
      }
      conn.buf = Buffer.from(rest);
      return { status, headers, raw: text };
    }
    if (conn.closed || Date.now() > deadline) throw new Error(`no response head: ${JSON.stringify(conn.buf.toString('latin1'))}`);
    await conn._waitEvent(deadline - Date.now());
  }
}

// Sends a raw WebSocket handshake and returns the response {status, headers, body, closed}.
export async function wsHandshake(port, request) {
  const conn = await RawConn.open(port);
  try {
    await conn.write(request);
    const r = await readHead(conn);
    const { closed } = await conn.waitClose(2000 * SLOW);
    return { ...r, closed };
  } finally {
    conn.destroy();
  }
}

// ---- raw Engine.IO over HTTP ------------------------------------------------------------------

// One HTTP request on a fresh connection (node:http, no agent pooling). Resolves
// {status, headers, body (string)}.
export function req(port, { method = 'GET', path = '/engine.io/?EIO=4&transport=polling', headers = {}, body, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.setTimeout(timeoutMs * SLOW, () => r.destroy(new Error(`${method} ${path} timed out`)));
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

// Polling handshake: returns the parsed open packet (sid, upgrades, ...).
export async function handshake(port, query = '') {
  const r = await req(port, { path: `/engine.io/?EIO=4&transport=polling${query}` });
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body[0], '0');
  return JSON.parse(r.body.slice(1));
}

export const poll = (port, sid, opts = {}) => req(port, { path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`, ...opts });
export const post = (port, sid, body, opts = {}) =>
  req(port, {
    method: 'POST',
    path: `/engine.io/?EIO=4&transport=polling&sid=${sid}`,
    headers: { 'Content-Type': 'text/plain;charset=UTF-8', ...(opts.headers || {}) },
    body,
    ...opts,
  });

// The exact error bodies of the reference server.
export const ERR = {
  transport: { code: 0, message: 'Transport unknown' },
  sid: { code: 1, message: 'Session ID unknown' },
  method: { code: 2, message: 'Bad handshake method' },
  bad: { code: 3, message: 'Bad request' },
  forbidden: { code: 4, message: 'Forbidden' },
  version: { code: 5, message: 'Unsupported protocol version' },
};

export function assertEioError(res, err, status = 400) {
  assert.equal(res.status, status, `status of ${JSON.stringify(res.body)}`);
  assert.match(res.headers['content-type'], /^application\/json/);
  assert.deepEqual(JSON.parse(res.body), err);
}
