// Namespaces, connect middleware refusals, the exact bytes of CONNECT / CONNECT_ERROR /
// DISCONNECT, and rooms with broadcasts (union, except, socket ids as rooms, binary, namespace
// isolation), against the echo example server.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEcho, client, connected, nextEvent, emitAck, once, t, sleep, waitUntil, RawSio } from './echo.mjs';

describe('namespaces and connect middleware', () => {
  let srv;
  before(async () => {
    srv = await startEcho();
  });
  after(async () => {
    await srv?.stop();
  });

  for (const transports of [['polling'], ['websocket']]) {
    it(`unknown namespace -> connect_error "Invalid namespace" (${transports})`, async () => {
      const s = client(`${srv.url}/nope`, { transports });
      const [err] = await once(s, 'connect_error');
      assert.equal(err.message, 'Invalid namespace');
      assert.equal(s.connected, false);
      assert.equal(s.active, false); // the client gives up by itself
      s.close();
    });

    it(`middleware refusal -> connect_error with its message (${transports})`, async () => {
      const s = client(srv.url, { transports, auth: { refuse: 'Go away, übel 😀' } });
      const [err] = await once(s, 'connect_error');
      assert.equal(err.message, 'Go away, übel 😀');
      assert.equal(s.active, false);
      // The server closes the session as well (PROTOCOL.md section 2).
      await waitUntil(() => s.io.engine.readyState === 'closed', { timeoutMs: t(3000), label: 'engine closed' });
      s.close();
    });
  }

  it('the middleware of "/" does not apply to "/custom"', async () => {
    const s = await connected(client(`${srv.url}/custom`, { auth: { refuse: 'ignored here' } }));
    assert.deepEqual(await nextEvent(s, 'auth'), [{ refuse: 'ignored here' }]);
    s.close();
  });

  it('a refusal on one namespace leaves the other namespaces of the session alone', async () => {
    const main = await connected(client(srv.url, { transports: ['websocket'] }));
    const refused = main.io.socket('/', {}); // same nsp: reuses main
    assert.equal(refused, main);
    const bad = main.io.socket('/nope');
    const [err] = await once(bad, 'connect_error');
    assert.equal(err.message, 'Invalid namespace');
    assert.equal(await emitAck(main, 'message-with-ack', 'alive'), 'alive');
    main.close();
  });

  it('exact bytes: CONNECT answers, CONNECT_ERROR, DISCONNECT', async () => {
    const r = await RawSio.open(srv.port);
    assert.deepEqual(Object.keys(r.handshake).sort(), ['maxPayload', 'pingInterval', 'pingTimeout', 'sid', 'upgrades']);
    const main = await r.connect('');
    assert.match(main, /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    const sid = JSON.parse(main.slice(2)).sid;
    assert.notEqual(sid, r.handshake.sid); // never the Engine.IO sid
    assert.equal(await r.next((x) => x.startsWith('42')), '42["auth",{}]');
    const custom = await r.connect('/custom', { a: [1, 'é'] });
    assert.match(custom, /^40\/custom,\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
    assert.equal(await r.next((x) => x.startsWith('42/custom,')), '42/custom,["auth",{"a":[1,"é"]}]');
    assert.equal(await r.connect('/nope'), '44/nope,{"message":"Invalid namespace"}');
    // Events and acks, exact.
    r.send('42/custom,["message",1,"two",{"3":[4]}]');
    assert.equal(await r.next((x) => x.startsWith('42/custom,')), '42/custom,["message-back",1,"two",{"3":[4]}]');
    r.send('4217["message-with-ack","x"]');
    assert.equal(await r.next((x) => x.startsWith('43')), '4317["x"]');
    r.send('42/custom,18["message-with-ack"]');
    assert.equal(await r.next((x) => x.startsWith('43')), '43/custom,18[]');
    // A repeated CONNECT for a joined namespace is answered again with the same sid.
    assert.equal(await r.connect('/custom'), custom);
    // Binary echo: text then attachment frames.
    r.send('451-["message",{"_placeholder":true,"num":0}]');
    r.send(Buffer.from([1, 2, 3]));
    assert.equal(await r.next((x) => x.startsWith('45')), '451-["message-back",{"_placeholder":true,"num":0}]');
    await waitUntil(() => r.binaries.length === 1, { label: 'attachment' });
    assert.deepEqual([...r.binaries[0]], [1, 2, 3]);
    // Server-side disconnect of /custom, then of /: DISCONNECT packets.
    r.send('42/custom,["disconnect-me"]');
    assert.equal(await r.next((x) => x.startsWith('41')), '41/custom,');
    r.send('42["disconnect-me"]');
    assert.equal(await r.next((x) => x.startsWith('41')), '41');
    r.close();
  });

  it('refusal bytes, then the server closes the session', async () => {
    const r = await RawSio.open(srv.port);
    assert.equal(await r.connect('', { refuse: 'No "way"' }), '44{"message":"No \\"way\\""}');
    assert.ok(await r.closedWithin(t(3000)), 'session closed after the refusal');
  });

  it('a client DISCONNECT closes only that namespace', async () => {
    const r = await RawSio.open(srv.port);
    await r.connect('');
    await r.connect('/custom');
    r.send('41/custom,');
    await sleep(100);
    r.send('42["message","still"]');
    assert.equal(await r.next((x) => x.startsWith('42["message-back"')), '42["message-back","still"]');
    // Events for the namespace just left are now a protocol error: the session closes.
    r.send('42/custom,["message","gone"]');
    assert.ok(await r.closedWithin(t(3000)));
  });
});

describe('rooms and broadcasts', () => {
  let srv;
  let a;
  let b;
  let c;
  let other; // in /custom, joins the same room names
  before(async () => {
    srv = await startEcho();
    a = await connected(client(srv.url, { transports: ['websocket'] }));
    b = await connected(client(srv.url, { transports: ['polling'] }));
    c = await connected(client(srv.url, {}));
    other = await connected(client(`${srv.url}/custom`, { transports: ['websocket'] }));
    assert.equal(await emitAck(a, 'join', 'r1'), true);
    assert.equal(await emitAck(b, 'join', 'r1'), true);
    assert.equal(await emitAck(b, 'join', 'r2'), true);
    assert.equal(await emitAck(b, 'join', 'r2'), true); // joining twice is fine
    assert.equal(await emitAck(c, 'join', 'r2'), true);
    assert.equal(await emitAck(other, 'join', 'r1'), true);
    assert.equal(await emitAck(other, 'join', 'r2'), true);
  });
  after(async () => {
    for (const s of [a, b, c, other]) s?.close();
    await srv?.stop();
  });

  // Emits `room-emit` from `from` and returns [count acked, names of receivers of `tag`].
  async function broadcast(from, opts, tag, ...args) {
    const n = await emitAck(from, 'room-emit', opts, 'news', tag, ...args);
    await sleep(t(150));
    const got = [];
    for (const [name, s] of Object.entries({ a, b, c, other })) {
      const hits = s.events.filter((e) => e.name === 'news' && e.args[0] === tag);
      assert.ok(hits.length <= 1, `${name} got ${tag} ${hits.length} times`);
      if (hits.length) got.push(name);
    }
    return [n, got.sort()];
  }

  it('to several rooms: the union, each socket once', async () => {
    assert.deepEqual(await broadcast(a, { rooms: ['r1', 'r2'] }, 'u1'), [3, ['a', 'b', 'c']]);
  });

  it('to a room except the sender', async () => {
    assert.deepEqual(await broadcast(a, { rooms: ['r1'], exceptSelf: true }, 'u2'), [1, ['b']]);
  });

  it('to everyone in the namespace except a room', async () => {
    assert.deepEqual(await broadcast(c, { except: ['r1'] }, 'u3'), [1, ['c']]);
    assert.deepEqual(await broadcast(c, {}, 'u4'), [3, ['a', 'b', 'c']]);
  });

  it('a socket id works as a room, in rooms and in except', async () => {
    assert.deepEqual(await broadcast(a, { rooms: [c.id] }, 'u5'), [1, ['c']]);
    assert.deepEqual(await broadcast(a, { rooms: ['r2'], except: [b.id] }, 'u6'), [1, ['c']]);
    assert.deepEqual(await broadcast(a, { rooms: ['no-such-room', 'also-not'] }, 'u7'), [0, []]);
  });

  it('binary broadcast: the same attachments reach every receiver', async () => {
    const [n, got] = await broadcast(a, { rooms: ['r1', 'r2'] }, 'bin', Buffer.from('shared'), { deep: Buffer.from([0, 255]) });
    assert.deepEqual([n, got], [3, ['a', 'b', 'c']]);
    for (const s of [a, b, c]) {
      const e = s.events.find((x) => x.name === 'news' && x.args[0] === 'bin');
      assert.deepEqual(e.args, ['bin', Buffer.from('shared'), { deep: Buffer.from([0, 255]) }]);
    }
  });

  it('leave: true once, then false; the room no longer includes the socket', async () => {
    assert.equal(await emitAck(b, 'leave', 'r1'), true);
    assert.equal(await emitAck(b, 'leave', 'r1'), false);
    assert.deepEqual(await broadcast(c, { rooms: ['r1'] }, 'u8'), [1, ['a']]);
  });

  it('a disconnected socket leaves its rooms', async () => {
    const d = await connected(client(srv.url, { transports: ['websocket'] }));
    assert.equal(await emitAck(d, 'join', 'r1'), true);
    assert.equal((await broadcast(c, { rooms: ['r1'] }, 'u9'))[0], 2);
    d.close();
    await sleep(t(200));
    assert.deepEqual(await broadcast(c, { rooms: ['r1'] }, 'u10'), [1, ['a']]);
  });
});
