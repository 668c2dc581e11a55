// Malformed Socket.IO packets as exact bytes over a raw WebSocket (and polling) after a correct
// Engine.IO handshake and Socket.IO CONNECT: each one must close that session (no answer, no
// crash, no leak under ASan), while the server keeps serving everyone else. The rows are the
// Socket.IO rows of BAD-INPUTS.md plus the malformed-packet list of the sio brief. Frames are
// Engine.IO message packets: a leading '4', then the Socket.IO packet.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, client, connected, emitAck, t, sleep, RawSio } from './echo.mjs';

const deep = (n) => '['.repeat(n) + ']'.repeat(n);

// [label, frames after CONNECT (strings are text frames, Buffers binary frames), the answers
// expected before the close (none unless a valid packet precedes the bad part)]
const ROWS = [
  ['CVE-2022-2421 placeholder num "splice"', ['451-["hello",{"_placeholder":true,"num":"splice"}]']],
  ['placeholder num out of range', ['451-["hello",{"_placeholder":true,"num":1}]']],
  ['placeholder num negative', ['451-["hello",{"_placeholder":true,"num":-1}]']],
  ['placeholder num fractional', ['452-["hello",{"_placeholder":true,"num":0.5}]']],
  ['CVE-2023-32695 event name is an object', ['42[{"toString":"foo"}]']],
  ['event name is a number', ['42[1,"a"]']],
  ['event name is null', ['42[null]']],
  ['event payload is an object', ['42{"a":1}']],
  ['event payload is a string', ['42"hello"']],
  ['event payload is an empty array', ['42[]']],
  ['event without payload', ['42']],
  ['CVE-2026-69185 zero attachments', ['450-["hello"]']],
  ['CVE-2026-33151 attachments over the cap', ['4511-["hello",{"_placeholder":true,"num":0}]']],
  ['huge attachment count', ['4599999999999999999999999-["hello"]']],
  ['attachment count without dash', ['451["hello",{"_placeholder":true,"num":0}]']],
  ['reserved event connect', ['42["connect"]']],
  ['reserved event connect_error', ['42["connect_error",{}]']],
  ['reserved event disconnect', ['42["disconnect","x"]']],
  ['reserved event disconnecting', ['42["disconnecting"]']],
  ['reserved event newListener', ['42["newListener","message"]']],
  ['reserved event removeListener', ['42["removeListener","message"]']],
  ['reserved event in a binary event', ['451-["disconnect",{"_placeholder":true,"num":0}]', Buffer.from([1])]],
  ['ack id over 2^53-1', ['429007199254740992["message"]']],
  ['ack id absurdly long', [`42${'9'.repeat(400)}["message"]`]],
  ['ACK without id', ['43["x"]']],
  ['ACK payload not an array', ['431{"a":1}']],
  ['JSON cut short', ['42["message","x"']],
  ['JSON trailing comma', ['42["message",]']],
  ['JSON garbage', ['42}{']],
  ['JSON single quotes', ["42['message']"]],
  ['JSON nested too deep', [`42["message",${deep(200)}]`]],
  ['NUL in a string', ['42["message","a\\u0000b"]']],
  ['lone surrogate escape', ['42["message","\\ud800"]']],
  ['number beyond 2^53', ['42["message",9007199254740993]']],
  ['duplicate keys', ['42["message",{"a":1,"a":2}]']],
  ['unknown packet type 7', ['47["message"]']],
  ['unknown packet type 9', ['49']],
  ['non-digit packet type', ['4x["message"]']],
  ['empty Socket.IO packet', ['4']],
  ['DISCONNECT with data', ['41["x"]']],
  ['CONNECT_ERROR sent by a client', ['44{"message":"x"}']],
  ['CONNECT with an array payload', ['40/custom,["x"]']],
  ['event for a namespace not joined', ['42/custom,["message","x"]']],
  ['namespace with a control character', ['42/a\u0001b,["message"]']],
  ['namespace too long', [`40/${'n'.repeat(300)},`]],
  ['binary frame without a binary packet', [Buffer.from('surprise')]],
  ['text frame while attachments are awaited', ['451-["message",{"_placeholder":true,"num":0}]', '42["message","x"]']],
  [
    'one attachment too many',
    ['451-["message",{"_placeholder":true,"num":0}]', Buffer.from([1]), Buffer.from([2])],
    ['451-["message-back",{"_placeholder":true,"num":0}]'],
  ],
];

describe('malformed Socket.IO packets close the session', () => {
  let srv;
  let bystander; // connected before and checked after every row
  before(async () => {
    srv = await startEcho();
    bystander = await connected(client(srv.url, { transports: ['websocket'] }));
  });
  after(async () => {
    bystander?.close();
    await srv?.stop();
  });

  for (const [label, frames, expected = []] of ROWS) {
    it(label, async () => {
      const r = await RawSio.open(srv.port);
      assert.match(await r.connect(''), /^40\{"sid":/);
      await r.next((x) => x.startsWith('42["auth"'));
      const seen = r.texts.length;
      for (const f of frames) r.send(f);
      assert.ok(await r.closedWithin(t(3000)), `${label}: session not closed`);
      // Nothing but the Engine.IO close packet may have been sent in answer.
      const answers = r.texts.slice(seen).filter((x) => x !== null && x !== '2' && x !== '1');
      assert.deepEqual(answers, expected, `${label}: unexpected answer`);
      assert.equal(await emitAck(bystander, 'message-with-ack', label), label);
    });
  }

  it('attachments spread over several frames still make one valid packet', async () => {
    const r = await RawSio.open(srv.port);
    await r.connect('');
    r.send('452-["message",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]');
    await sleep(50);
    r.send(Buffer.from('first'));
    await sleep(50);
    r.send(Buffer.from('second'));
    assert.equal(
      await r.next((x) => x.startsWith('45')),
      '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
    );
    // renumbered in tree order: attachment 0 is what placeholder num 1 stood for
    await sleep(100);
    assert.deepEqual(r.binaries.map((b) => b.toString()), ['second', 'first']);
    r.close();
  });

  it('malformed packet over polling closes the session', async () => {
    const base = `${srv.url}/socket.io/?EIO=4&transport=polling`;
    const hs = await fetch(base).then((res) => res.text());
    const sid = JSON.parse(hs.slice(1)).sid;
    const post = (body) => fetch(`${base}&sid=${sid}`, { method: 'POST', body }).then((res) => res.status);
    assert.equal(await post('40'), 200);
    const got = await fetch(`${base}&sid=${sid}`).then((res) => res.text());
    assert.match(got, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}/);
    await post('42[{"toString":"foo"}]');
    // The next poll gets the close packet, or the session is already gone (400).
    const res = await fetch(`${base}&sid=${sid}`);
    const body = await res.text();
    assert.ok(res.status === 400 || body.split('\x1e').includes('1'), `${res.status} ${body}`);
    assert.equal(await emitAck(bystander, 'message-with-ack', 'polling row'), 'polling row');
  });

  it('with an invalid-event handler (echo\'s /custom) bad arguments are refused, the session stays', async () => {
    const r = await RawSio.open(srv.port);
    await r.connect('/custom');
    const bad = [
      ['"a\\u0000b"', 'NUL'],
      ['"\\ud800"', 'surrogate'],
      ['9007199254740993', 'number'],
      ['{"a":1,"a":2}', 'duplicate'],
      [deep(200), 'deep'],
    ];
    let id = 100;
    for (const [arg] of bad) {
      r.send(`42/custom,${id}["message",${arg}]`);
      const ack = await r.next((x) => x.startsWith(`43/custom,${id}`));
      const [answer] = JSON.parse(ack.slice(`43/custom,${id}`.length));
      assert.equal(answer.error.code, 'invalid_payload');
      assert.equal(typeof answer.error.message, 'string');
      id++;
    }
    r.send('42/custom,["message","cut short"');
    const ex = await r.next((x) => x.startsWith('42/custom,["exception"'));
    const [, payload] = JSON.parse(ex.slice('42/custom,'.length));
    assert.equal(payload.status, 'error');
    assert.equal(payload.event, 'message');
    // Still connected: a valid event is echoed.
    r.send('42/custom,["message","fine"]');
    assert.equal(await r.next((x) => x.startsWith('42/custom,["message-back"')), '42/custom,["message-back","fine"]');
    // A packet that is not a well-framed EVENT still closes, handler or not.
    r.send('42/custom,[{"toString":"foo"}]');
    assert.ok(await r.closedWithin(t(3000)));
    assert.match(srv.stderr(), /event=sio\.invalid_payload/);
  });

  it('the server still accepts new clients after every row', async () => {
    const s = await connected(client(srv.url, {}));
    assert.equal(await emitAck(s, 'message-with-ack', 'fresh'), 'fresh');
    s.close();
    assert.match(srv.stderr(), /event=sio\.malformed/);
  });
});

describe('attachment bytes are capped per packet', () => {
  it('attachments adding up past --max-payload close the session', async () => {
    const srv = await startEcho({ args: ['--max-payload', '1000'] });
    try {
      const ok = await RawSio.open(srv.port);
      await ok.connect('');
      // 2 x 400 bytes: within the cap, echoed.
      ok.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      ok.send(Buffer.alloc(400, 1));
      ok.send(Buffer.alloc(400, 2));
      assert.match(await ok.next((x) => x.startsWith('452-')), /^452-\["message-back"/);
      // 2 x 700 bytes: each message fits Engine.IO's limit, together they do not.
      const r = await RawSio.open(srv.port);
      await r.connect('');
      r.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
      r.send(Buffer.alloc(700, 1));
      r.send(Buffer.alloc(700, 2));
      assert.ok(await r.closedWithin(t(3000)));
      assert.equal(ok.closedAt, null);
      ok.close();
    } finally {
      await srv.stop();
    }
  });
});
