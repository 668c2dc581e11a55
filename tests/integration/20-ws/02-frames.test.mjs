// WebSocket framing after the handshake (RFC 6455 section 5), as crafted bytes over a raw TCP
// socket against eio_echo (Engine.IO over WebSocket: "4<text>" is echoed back as is). Every
// protocol violation is asserted by the close code the server sends and by the TCP close.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, wsOpen, frame, closeFrame, OP, sleep } from '../30-eio/eio-echo.mjs';

let srv;
const MAX = 4096; // --max-payload: the largest message
before(async () => {
  srv = await startEcho(['--max-payload', String(MAX)]);
});
after(async () => {
  assert.equal(await srv.stop(), 0);
});

// An Engine.IO WebSocket session with the open packet already read.
async function open() {
  const ws = await wsOpen(srv.port);
  const f = await ws.next();
  assert.match(f.text, /^0\{/);
  return ws;
}

async function expectEcho(ws, sent, { binary = false } = {}) {
  const f = await ws.next({ skipPing: true });
  assert.equal(f.opcode, binary ? OP.BINARY : OP.TEXT);
  assert.equal(f.fin, true);
  assert.equal(f.rsv, 0);
  assert.equal(f.masked, false, 'server frames are never masked');
  assert.deepEqual(f.payload, Buffer.isBuffer(sent) ? sent : Buffer.from(sent));
}

// Sends bytes and expects a close frame with code, then the TCP close.
async function expectClose(ws, bytes, code) {
  await ws.send(bytes);
  const f = await ws.closeFrame();
  assert.equal(f.code, code, `close code (reason: ${f.reason})`);
  await ws.waitClose();
}

test('text and binary messages are echoed, in one frame, unmasked', async () => {
  const ws = await open();
  for (const text of ['4hello', '4', '4héllo wörld ✓ 😀', '4' + 'x'.repeat(125), '4' + 'y'.repeat(126), '4' + 'z'.repeat(MAX - 1)]) {
    await ws.send(frame({ payload: text }));
    await expectEcho(ws, text);
  }
  for (const bin of [Buffer.from([0, 1, 2, 255]), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.alloc(MAX, 9)]) {
    await ws.send(frame({ opcode: OP.BINARY, payload: bin }));
    await expectEcho(ws, bin, { binary: true });
  }
  ws.destroy();
});

test('many frames in one write, and one frame byte by byte', async () => {
  const ws = await open();
  const msgs = Array.from({ length: 50 }, (_, i) => `4m${i}`);
  await ws.send(Buffer.concat(msgs.map((m) => frame({ payload: m }))));
  for (const m of msgs) await expectEcho(ws, m);
  const one = frame({ payload: '4' + 'slow'.repeat(40) });
  for (const b of one) {
    await ws.send(Buffer.from([b]));
  }
  await expectEcho(ws, '4' + 'slow'.repeat(40));
  ws.destroy();
});

test('fragmented messages are joined, with control frames in between', async () => {
  const ws = await open();
  await ws.send(frame({ fin: false, payload: '4hel' }));
  await ws.send(frame({ opcode: OP.PING, payload: 'mid' }));
  const pong = await ws.next();
  assert.equal(pong.opcode, OP.PONG);
  assert.equal(pong.payload.toString(), 'mid');
  await ws.send(frame({ fin: false, opcode: OP.CONT, payload: 'lo ' }));
  await ws.send(frame({ opcode: OP.CONT, payload: 'world' }));
  await expectEcho(ws, '4hello world');
  // A UTF-8 character split across fragments is fine: the whole message is checked.
  const euro = Buffer.from('4€', 'utf8');
  await ws.send(frame({ fin: false, payload: euro.subarray(0, 2) }));
  await ws.send(frame({ opcode: OP.CONT, fin: false, payload: euro.subarray(2, 3) }));
  await ws.send(frame({ opcode: OP.CONT, payload: euro.subarray(3) }));
  await expectEcho(ws, euro);
  // Binary in fragments, including empty ones.
  await ws.send(frame({ opcode: OP.BINARY, fin: false, payload: Buffer.from([1]) }));
  await ws.send(frame({ opcode: OP.CONT, fin: false, payload: Buffer.alloc(0) }));
  await ws.send(frame({ opcode: OP.CONT, payload: Buffer.from([2, 3]) }));
  await expectEcho(ws, Buffer.from([1, 2, 3]), { binary: true });
  ws.destroy();
});

test('ping is answered with a pong carrying the same bytes; pongs are ignored', async () => {
  const ws = await open();
  for (const p of ['', 'x', 'p'.repeat(125)]) {
    await ws.send(frame({ opcode: OP.PING, payload: p }));
    const f = await ws.next();
    assert.equal(f.opcode, OP.PONG);
    assert.equal(f.payload.toString(), p);
  }
  await ws.send(frame({ opcode: OP.PONG, payload: 'unsolicited' }));
  await ws.send(frame({ payload: '4still here' }));
  await expectEcho(ws, '4still here');
  ws.destroy();
});

const violations = [
  ['an unmasked client frame', () => frame({ mask: false, payload: '4hi' }), 1002],
  ['RSV1 set', () => frame({ rsv: 4, payload: '4hi' }), 1002],
  ['RSV2 set', () => frame({ rsv: 2, payload: '4hi' }), 1002],
  ['RSV3 set', () => frame({ rsv: 1, payload: '4hi' }), 1002],
  ['reserved data opcode 3', () => frame({ opcode: 3, payload: '4hi' }), 1002],
  ['reserved control opcode 0xB', () => frame({ opcode: 0xb, payload: '' }), 1002],
  ['a ping of 126 bytes', () => frame({ opcode: OP.PING, payload: 'p'.repeat(126) }), 1002],
  ['a fragmented ping', () => frame({ opcode: OP.PING, fin: false, payload: 'p' }), 1002],
  ['a fragmented close', () => frame({ opcode: OP.CLOSE, fin: false, payload: Buffer.from([3, 232]) }), 1002],
  ['a continuation with no message', () => frame({ opcode: OP.CONT, payload: 'x' }), 1002],
  ['a new message inside a fragmented one', () => Buffer.concat([frame({ fin: false, payload: '4a' }), frame({ payload: '4b' })]), 1002],
  ['a 16-bit length for 5 bytes (non-minimal)', () => frame({ payload: '4abcd', len16: true }), 1002],
  ['a 64-bit length for 300 bytes (non-minimal)', () => frame({ payload: '4' + 'a'.repeat(299), len64: true }), 1002],
  ['a 64-bit length with the top bit set', () => Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]), 1002],
  ['text that is not UTF-8', () => frame({ payload: Buffer.from([0x34, 0xc3, 0x28]) }), 1007],
  ['text with a UTF-16 surrogate', () => frame({ payload: Buffer.from([0x34, 0xed, 0xa0, 0x80]) }), 1007],
  ['text with an overlong encoding', () => frame({ payload: Buffer.from([0x34, 0xc0, 0xaf]) }), 1007],
  ['fragmented text invalid only as a whole', () => Buffer.concat([frame({ fin: false, payload: Buffer.from([0x34, 0xe2, 0x82]) }), frame({ opcode: OP.CONT, payload: Buffer.from('x') })]), 1007],
  ['a message one byte over the limit', () => frame({ payload: '4' + 'a'.repeat(MAX) }), 1009],
  ['fragments adding up to more than the limit', () => Buffer.concat([frame({ fin: false, payload: '4' + 'a'.repeat(MAX - 10) }), frame({ opcode: OP.CONT, payload: 'b'.repeat(20) })]), 1009],
  // wslay reports a frame with its first payload byte: the limit is checked then, before any
  // byte is stored.
  ['a header announcing 2^40 bytes, then one byte', () => frame({ payload: Buffer.from('4'), announce: 2 ** 40 }), 1009],
  ['a close frame with a 1-byte payload', () => frame({ opcode: OP.CLOSE, payload: Buffer.from([3]) }), 1002],
  ['a close frame with code 1005', () => closeFrame(1005), 1002],
  ['a close frame with code 1006', () => closeFrame(1006), 1002],
  ['a close frame with code 999', () => closeFrame(999), 1002],
  ['a close frame with code 2000', () => closeFrame(2000), 1002],
  ['a close frame with code 5000', () => closeFrame(5000), 1002],
  ['a close frame whose reason is not UTF-8', () => closeFrame(1000, Buffer.from([0xff, 0xfe])), 1007],
];

for (const [name, bytes, code] of violations) {
  test(`${name} -> close ${code}`, async () => {
    const ws = await open();
    await expectClose(ws, bytes(), code);
  });
}

test('a failing frame mid-stream: earlier messages are still answered', async () => {
  const ws = await open();
  await ws.send(Buffer.concat([frame({ payload: '4first' }), frame({ rsv: 4, payload: '4bad' }), frame({ payload: '4never' })]));
  const frames = await ws.waitClose();
  assert.equal(frames[0].text, '4first');
  assert.equal(frames[1].opcode, OP.CLOSE);
  assert.equal(frames[1].code, 1002);
  assert.equal(frames.length, 2, 'nothing after the close frame');
});

test('the peer closing: its close is echoed with the same code and the server closes TCP', async () => {
  for (const [code, reason] of [[1000, ''], [1001, 'bye'], [3000, 'app'], [4999, 'x'.repeat(123)], [1003, ''], [1011, 'oops']]) {
    const ws = await open();
    await ws.send(closeFrame(code, reason));
    const f = await ws.closeFrame();
    assert.equal(f.code, code);
    await ws.waitClose();
  }
  // An empty close frame is answered with an empty close frame.
  const ws = await open();
  await ws.send(closeFrame(undefined));
  const f = await ws.closeFrame();
  assert.equal(f.payload.length, 0);
  await ws.waitClose();
});

test('bytes after a close frame are ignored', async () => {
  const ws = await open();
  await ws.send(Buffer.concat([closeFrame(1000), frame({ payload: '4ignored' }), Buffer.from('garbage')]));
  const frames = await ws.waitClose();
  assert.deepEqual(frames.map((f) => f.opcode), [OP.CLOSE]);
});

test('abrupt TCP close and half frames cost nothing (descriptors come back)', async () => {
  const before = srv.fdCount();
  for (let i = 0; i < 30; i++) {
    const ws = await open();
    const f = frame({ payload: '4' + 'a'.repeat(1000) });
    await ws.send(f.subarray(0, 1 + (i % 20)));
    ws.destroy();
  }
  let now = srv.fdCount();
  for (let i = 0; i < 40 && now > before; i++) {
    await sleep(50);
    now = srv.fdCount();
  }
  assert.ok(now <= before, `descriptors ${before} -> ${now}`);
});
