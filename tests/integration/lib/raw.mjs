// Raw HTTP over TCP for the integration tests: exact request bytes in, exact response bytes
// out. rawRequest() sends bytes and collects everything until the server closes (or a
// timeout); RawConn keeps one connection open to read responses one at a time (keep-alive,
// pipelining, slow clients); parseResponses() splits a byte stream into responses. Also a small
// client on node:http (httpRequest) for ordinary requests, whose strict response parser is a
// check of its own.
import net from 'node:net';
import http from 'node:http';

const CRLF2 = Buffer.from('\r\n\r\n');

function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data);
  return Buffer.from(String(data), 'latin1');
}

// Parses one response at buf[offset...]. Returns {response, next} or null when incomplete.
// method: the request method it answers (HEAD responses have no body). eof: the connection
// has closed, so a body without a length ends here.
export function parseOne(buf, offset = 0, { method = 'GET', eof = false } = {}) {
  const headEnd = buf.indexOf(CRLF2, offset);
  if (headEnd < 0) return null;
  const head = buf.subarray(offset, headEnd).toString('latin1');
  const lines = head.split('\r\n');
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!m) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`);
  const headerList = [];
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`bad response header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    headerList.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  const status = Number(m[2]);
  let pos = headEnd + 4;
  let body;
  const noBody = method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
  if (noBody) {
    body = Buffer.alloc(0);
  } else if (/\bchunked\b/i.test(headers['transfer-encoding'] || '')) {
    const parts = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', pos, 'latin1');
      if (lineEnd < 0) return null;
      const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16);
      if (Number.isNaN(size)) throw new Error('bad chunk size in response');
      pos = lineEnd + 2;
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n', pos, 'latin1');
        if (trailerEnd < 0) return null;
        pos = trailerEnd + 2; // (no trailers expected)
        break;
      }
      if (buf.length < pos + size + 2) return null;
      parts.push(buf.subarray(pos, pos + size));
      pos += size + 2;
    }
    body = Buffer.concat(parts);
  } else if ('content-length' in headers) {
    const len = Number(headers['content-length']);
    if (!Number.isInteger(len) || len < 0) throw new Error(`bad Content-Length ${headers['content-length']}`);
    if (buf.length < pos + len) return null;
    body = buf.subarray(pos, pos + len);
    pos += len;
  } else {
    // No length: the body runs to the end of the connection.
    if (!eof) return null;
    body = buf.subarray(pos);
    pos = buf.length;
  }
  const text = body.toString('utf8');
  const response = {
    httpVersion: m[1],
    status,
    reason: m[3] ?? '',
    headers,
    headerList,
    body: Buffer.from(body),
    text,
    raw: Buffer.from(buf.subarray(offset, pos)),
    json() {
      return JSON.parse(text);
    },
  };
  return { response, next: pos };
}

// Splits a byte stream into the responses it holds. methods: the request methods in order
// (for HEAD), or one method for all. Throws on bytes that are not a response; an incomplete
// tail is returned as `rest` on the array.
export function parseResponses(buf, { methods = 'GET', eof = true } = {}) {
  buf = toBuffer(buf);
  const out = [];
  let offset = 0;
  while (offset < buf.length) {
    const method = Array.isArray(methods) ? methods[out.length] ?? 'GET' : methods;
    const r = parseOne(buf, offset, { method, eof });
    if (!r) break;
    out.push(r.response);
    offset = r.next;
  }
  out.rest = buf.subarray(offset);
  return out;
}

// One TCP connection to the server, read at the test's pace.
export class RawConn {
  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.closed = false; // the server closed (FIN or reset) or the socket failed
    this.error = null;
    this._waiters = [];
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this._wake();
    });
    const onClose = () => {
      this.closed = true;
      this._wake();
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', (e) => {
      this.error = e;
      onClose();
    });
  }

  static open(port, { host = '127.0.0.1', timeoutMs = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host });
      s.setNoDelay(true);
      const t = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeListener('error', reject);
        resolve(new RawConn(s));
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  _wake() {
    const w = this._waiters;
    this._waiters = [];
    for (const f of w) f();
  }

  // Resolves on the next data/close event, or after ms.
  _waitEvent(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(0, ms));
      function done() {
        clearTimeout(t);
        resolve();
      }
      this._waiters.push(done);
    });
  }

  // Writes bytes; resolves when handed to the kernel. Errors (the server already closed) are
  // recorded, not thrown: tests check what the server answered.
  write(data) {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(false);
      this.socket.write(toBuffer(data), (err) => resolve(!err));
    });
  }

  // Reads the next complete response. Throws if the connection closes first or timeoutMs
  // passes; err.partial holds what came.
  async readResponse({ timeoutMs = 5000, method = 'GET' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = parseOne(this.buf, 0, { method, eof: this.closed });
      if (r) {
        this.buf = this.buf.subarray(r.next);
        return r.response;
      }
      if (this.closed) {
        const e = new Error(`connection closed before a complete response (${this.buf.length} bytes: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))})`);
        e.partial = this.buf;
        throw e;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        const e = new Error(`no complete response within ${timeoutMs} ms (${this.buf.length} bytes: ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))})`);
        e.partial = this.buf;
        throw e;
      }
      await this._waitEvent(left);
    }
  }

  // Waits until the server closes; returns {closed, data} with the bytes not yet consumed.
  async waitClose(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this._waitEvent(deadline - Date.now());
    const data = this.buf;
    this.buf = Buffer.alloc(0);
    return { closed: this.closed, data };
  }

  // Waits for some bytes or a close, up to timeoutMs; returns the unconsumed bytes.
  async waitData(timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && this.buf.length === 0 && Date.now() < deadline) await this._waitEvent(deadline - Date.now());
    return this.buf;
  }

  destroy() {
    this.socket.destroy();
  }
}

// Sends bytes (a string is sent as latin1, a Buffer as is, an array as separate writes) and
// collects everything until the server closes or timeoutMs passes.
// → {data: Buffer, text, closed: bool (the server closed), error, responses() (parsed)}.
export async function rawRequest(port, bytes, { timeoutMs = 5000, host = '127.0.0.1', methods = 'GET' } = {}) {
  const c = await RawConn.open(port, { host, timeoutMs });
  try {
    const parts = Array.isArray(bytes) ? bytes : [bytes];
    for (const p of parts) await c.write(p);
    const { closed, data } = await c.waitClose(timeoutMs);
    return {
      data,
      text: data.toString('latin1'),
      closed,
      error: c.error,
      responses: () => parseResponses(data, { methods, eof: closed }),
    };
  } finally {
    c.destroy();
  }
}

// An ordinary request through node:http (a fresh connection each time).
// → {status, headers (lower-case names), body: Buffer, text, json()}.
export function httpRequest(port, { method = 'GET', path = '/', headers = {}, body, timeoutMs = 5000, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        resolve({
          status: res.statusCode,
          reason: res.statusMessage,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: buf,
          text,
          json: () => JSON.parse(text),
        });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// A request's bytes: request line, headers (an object or [name, value] pairs), body.
export function buildRequest({ method = 'GET', path = '/', version = '1.1', headers = {}, body } = {}) {
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  const hasHost = pairs.some(([n]) => n.toLowerCase() === 'host');
  let head = `${method} ${path} HTTP/${version}\r\n`;
  if (!hasHost) head += 'Host: 127.0.0.1\r\n';
  for (const [n, v] of pairs) head += `${n}: ${v}\r\n`;
  const b = body === undefined ? Buffer.alloc(0) : toBuffer(body);
  if (body !== undefined && !pairs.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) {
    head += `Content-Length: ${b.length}\r\n`;
  }
  return Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), b]);
}

// Chunked transfer encoding of the given pieces, with the final zero chunk.
export function chunked(pieces, { final = true } = {}) {
  const out = [];
  for (const p of pieces) {
    const b = toBuffer(p);
    out.push(Buffer.from(b.length.toString(16) + '\r\n', 'latin1'), b, Buffer.from('\r\n'));
  }
  if (final) out.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(out);
}
