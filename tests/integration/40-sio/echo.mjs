// Helpers for the Socket.IO suite: start the `echo` example server (examples/echo/echo.c, the
// conformance server; see its header for the events it answers), official socket.io-client
// sockets that record what they receive, and a raw Socket.IO client over a plain `ws`
// WebSocket for exact bytes (malformed packets, wire format checks).
//
// The binary is $ECHO_BIN, else <$PARLEY_BUILD or the directory of $PARLEY_BIN>/examples/echo
// (build/examples/echo by default), so `make test` runs these against both the release and the
// ASan build. stop() fails the test on a sanitizer report or a non-zero exit.
import { spawn } from 'node:child_process';
import path from 'node:path';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { REPO, PARLEY_BIN, START_TIMEOUT_MS, assertNoSanitizerReport, sleep, waitUntil } from '../lib/server.mjs';

export { sleep, waitUntil, io };

export const ECHO_BIN = process.env.ECHO_BIN
  ? path.resolve(REPO, process.env.ECHO_BIN)
  : path.join(process.env.PARLEY_BUILD ? path.resolve(REPO, process.env.PARLEY_BUILD) : path.dirname(PARLEY_BIN), 'examples', 'echo');

// The sanitizer build is slower: timeouts are multiplied by SLOW.
export const SLOW = process.env.PARLEY_SANITIZED || /asan|sanit/i.test(ECHO_BIN) ? 3 : 1;
export const t = (ms) => Math.round(ms * SLOW);

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

// Starts echo with args (e.g. ['--ping-interval', '300']) on port (0 = any) and waits for its
// `event=http.listen ... port=N` line. Returns {port, url, proc, stderr(), waitForStderr(re),
// stop(), kill(signal), exited}.
export async function startEcho({ args = [], port = 0 } = {}) {
  const proc = spawn(ECHO_BIN, ['--port', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  exited.then(() => live.delete(proc));
  let err = '';
  let done = false;
  exited.then(() => {
    done = true;
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    err += d;
    if (process.env.PARLEY_TEST_VERBOSE) process.stderr.write(d);
  });
  proc.on('error', (e) => {
    err += `[spawn error] ${e.message}\n`;
  });
  const waitForStderr = (re, timeoutMs = t(5000)) =>
    waitUntil(() => re.exec(err) || (done && Promise.reject(new Error(`echo exited before ${re}:\n${err}`))), {
      timeoutMs,
      intervalMs: 20,
      label: `echo stderr ${re}`,
    });
  let m;
  try {
    m = await waitForStderr(/event=http\.listen\b[^\n]*\bport=(\d+)/, START_TIMEOUT_MS);
  } catch (e) {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}\nstderr:\n${err}`);
  }
  const boundPort = Number(m[1]);
  let stopped = null;
  return {
    port: boundPort,
    url: `http://127.0.0.1:${boundPort}`,
    proc,
    exited,
    stderr: () => err,
    waitForStderr,
    // SIGTERM, wait for a clean exit (code 0, no sanitizer report).
    stop(timeoutMs = t(10000)) {
      stopped ??= (async () => {
        if (!done) proc.kill('SIGTERM');
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
          assert.fail(`echo did not stop within ${timeoutMs} ms\n${err.slice(-4000)}`);
        }
        await new Promise((resolve) => setImmediate(resolve));
        assertNoSanitizerReport(err, 'echo');
        assert.equal(r.code, 0, `echo exit ${r.code ?? r.signal}\n${err.slice(-4000)}`);
      })();
      return stopped;
    },
    kill(signal = 'SIGKILL') {
      if (!done) proc.kill(signal);
      return exited;
    },
  };
}

// A socket.io-client socket that records every event (so a test can wait for one that already
// arrived). opts are socket.io-client options; reconnection is off unless asked for.
export function client(url, opts = {}) {
  const s = io(url, { reconnection: false, forceNew: true, ...opts });
  s.events = [];
  s.onAny((name, ...args) => s.events.push({ name, args }));
  return s;
}

// Resolves with the args of the first recorded event `name` (matching pred) not yet consumed.
export async function nextEvent(s, name, { timeoutMs = t(5000), pred = () => true } = {}) {
  const found = await waitUntil(
    () => {
      const i = s.events.findIndex((e) => e.name === name && !e.used && pred(e.args));
      if (i < 0) return null;
      s.events[i].used = true;
      return { args: s.events[i].args };
    },
    { timeoutMs, intervalMs: 5, label: `event ${name}` },
  );
  return found.args;
}

export function once(emitter, event, timeoutMs = t(5000)) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

// Resolves with s once it is connected; rejects on connect_error or timeout.
export function connected(s, timeoutMs = t(5000)) {
  if (s.connected) return Promise.resolve(s);
  return new Promise((resolve, reject) => {
    const done = (err) => {
      clearTimeout(timer);
      s.off('connect', onConnect);
      s.off('connect_error', onError);
      if (err) reject(err);
      else resolve(s);
    };
    const onConnect = () => done(null);
    const onError = (e) => done(new Error(`connect_error: ${e.message}`));
    const timer = setTimeout(() => done(new Error(`not connected within ${timeoutMs} ms`)), timeoutMs);
    s.on('connect', onConnect);
    s.on('connect_error', onError);
  });
}

// Emits with an ack and resolves with the ack's arguments.
export function emitAck(s, event, ...args) {
  return s.timeout(t(5000)).emitWithAck(event, ...args);
}

// A raw Engine.IO + Socket.IO client over a WebSocket. Text frames are recorded in `texts`,
// binary ones in `binaries`; Engine.IO pings are answered unless autoPong is false.
export class RawSio {
  static async open(port, { pathName = '/socket.io/', autoPong = true } = {}) {
    const r = new RawSio();
    r.ws = new WebSocket(`ws://127.0.0.1:${port}${pathName}?EIO=4&transport=websocket`);
    r.texts = [];
    r.binaries = [];
    r.closedAt = null;
    r.closed = new Promise((resolve) => {
      r.ws.on('close', (code) => {
        r.closedAt = Date.now();
        resolve(code);
      });
    });
    r.ws.on('error', () => {});
    r.ws.on('message', (data, isBinary) => {
      if (isBinary) {
        r.binaries.push(Buffer.from(data));
        return;
      }
      const text = data.toString();
      if (autoPong && text === '2') r.ws.send('3');
      r.texts.push(text);
    });
    await once(r.ws, 'open');
    const open = await r.next((x) => x.startsWith('0'));
    r.handshake = JSON.parse(open.slice(1));
    return r;
  }

  // Resolves with the first unconsumed text frame matching pred.
  async next(pred = () => true, timeoutMs = t(5000)) {
    return waitUntil(
      () => {
        const i = this.texts.findIndex((x) => x !== null && pred(x));
        if (i < 0) return null;
        const x = this.texts[i];
        this.texts[i] = null;
        return x;
      },
      { timeoutMs, intervalMs: 5, label: 'raw frame' },
    );
  }

  send(data) {
    this.ws.send(data);
  }

  // Sends "40" (+nsp) and returns the CONNECT answer's text.
  async connect(nsp = '', auth) {
    this.send(`40${nsp}${nsp ? ',' : ''}${auth ? JSON.stringify(auth) : ''}`);
    return this.next((x) => x.startsWith(`40${nsp}`) || x.startsWith(`44${nsp}`));
  }

  // Resolves true if the server closes the WebSocket within timeoutMs.
  async closedWithin(timeoutMs = t(3000)) {
    let timer;
    const r = await Promise.race([
      this.closed.then(() => true),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return r;
  }

  close() {
    try {
      this.ws.terminate();
    } catch {
      // gone
    }
  }
}
