// Throwaway Redis servers for the scale-out tests (MACHINE-NOTES.md "Redis"): each runs in the
// foreground as a child of the test process, on 127.0.0.1 and a free port, without persistence,
// in its own temp directory, and is killed when the test process exits.
//
//   const redis = await startRedis();          // {port, url, dir}
//   await redis.command('SET', 'k', 'v');       // one command, its reply (RESP2 parsed)
//   await redis.kill();                         // an outage: SIGKILL
//   await redis.restart();                      // the same port again (empty: no persistence)
//   await redis.stop();                         // SIGTERM, wait, remove the directory
//
// Replies: simple strings and bulk strings as strings, integers as numbers, nil as null, arrays
// as arrays, error replies as {error: 'ERR ...'}.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const live = new Set();
process.on('exit', () => {
  for (const r of live) {
    try {
      r.proc?.kill('SIGKILL');
    } catch {
      // already gone
    }
    try {
      fs.rmSync(r.dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
});

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function encode(args) {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(`$${b.length}\r\n`, b, '\r\n');
  }
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}

// Parses one RESP2 value at buf[pos]; returns {value, next} or null when incomplete.
export function parseReply(buf, pos = 0) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return null;
  const kind = String.fromCharCode(buf[pos]);
  const line = buf.subarray(pos + 1, eol).toString();
  const next = eol + 2;
  switch (kind) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: { error: line }, next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const n = Number(line);
      if (n < 0) return { value: null, next };
      if (buf.length < next + n + 2) return null;
      return { value: buf.subarray(next, next + n).toString(), next: next + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, next };
      const out = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return null;
        out.push(r.value);
        p = r.next;
      }
      return { value: out, next: p };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buf.subarray(pos, pos + 20).toString())}`);
  }
}

// Sends one command to 127.0.0.1:port and resolves with its reply.
export function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis on ${port}: no answer to ${args[0]}`));
    }, 5000);
    sock.on('connect', () => sock.write(encode(args)));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseReply(buf);
      if (r) {
        clearTimeout(timer);
        sock.end();
        resolve(r.value);
      }
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function waitReady(port, ms = 5000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await redisCommand(port, 'PING')) === 'PONG') return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Starts a server; options: port (default: a free one), args (extra redis-server arguments).
export async function startRedis({ port, args = [] } = {}) {
  const r = {
    port: port ?? (await freePort()),
    dir: fs.mkdtempSync(path.join(os.tmpdir(), 'parley-redis-')),
    proc: null,
    exited: null,
  };
  r.url = `redis://127.0.0.1:${r.port}`;

  const launch = async () => {
    const proc = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(r.port), '--save', '', '--appendonly', 'no',
        '--daemonize', 'no', '--dir', r.dir, '--logfile', path.join(r.dir, 'redis.log'), ...args],
      { stdio: 'ignore' },
    );
    r.proc = proc;
    r.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    await waitReady(r.port);
  };

  const halt = async (signal) => {
    if (!r.proc) return;
    const { proc, exited } = r;
    r.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };

  r.command = (...a) => redisCommand(r.port, ...a);
  r.kill = () => halt('SIGKILL');
  r.restart = async () => {
    await halt('SIGKILL');
    await launch();
  };
  r.stop = async () => {
    await halt('SIGTERM');
    live.delete(r);
    fs.rmSync(r.dir, { recursive: true, force: true });
  };
  live.add(r);
  await launch();
  return r;
}
