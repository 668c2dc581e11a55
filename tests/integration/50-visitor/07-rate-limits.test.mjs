// Rate limits (PROTOCOL.md section 6, protocol-decisions.md): per visitor 10 messages per 10 s
// burst and 60 per minute (here also with small configured values to see the per-minute limit),
// shared by every tab of the visitor and not affecting other visitors; a limited message is
// refused `rate_limited` (ack or exception with its tempId), stored nowhere, and the socket stays
// usable; typing and context events over 2 per second are dropped (rate_limited when an ack was
// asked); per IP, concurrent sockets and new connections per second are capped and recover.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, visitor, newUid, newTempId, sendOk, messageRows, agentInRoom,
  assertAckRefusal, assertException, openSocket, visitorOptions, closeAllClients,
} from './helpers.mjs';

let ctx; // defaults: burst 10 / 10 s, 60 per minute, typing 2/s
let agent;
before(async () => {
  ctx = await setup({ projects: [{ name: 'Limits', domains: ['localhost'] }], agents: [{ email: 'agent@limits.test' }] });
  agent = await agentInRoom(ctx, 0);
});
after(() => teardown(ctx));

const payloads = (n, prefix) => Array.from({ length: n }, (_, i) => ({ content: `${prefix} ${i}`, tempId: newTempId(prefix) }));

test('default burst: 10 messages at once pass, the 11th and 12th are rate_limited', { timeout: t(30000) }, async () => {
  const v = await visitor(ctx);
  const ps = payloads(12, 'burst');
  const answers = await Promise.all(ps.map((p) => v.ack('sendMessage', p, { timeoutMs: t(10000) })));
  for (let i = 0; i < 10; i++) {
    assert.ok(!answers[i].error, `message ${i} passes: ${JSON.stringify(answers[i])}`);
    assert.equal(answers[i].tempId, ps[i].tempId);
  }
  for (let i = 10; i < 12; i++) assertAckRefusal(answers[i], 'rate_limited', `message ${i}`);
  // without an ack: exception with the tempId
  const extra = { content: 'one more', tempId: newTempId('extra') };
  v.emit('sendMessage', extra);
  assertException(await v.next('exception'), 'rate_limited', 'sendMessage', { tempId: extra.tempId });

  const rows = await messageRows(ctx.dataDir, 1, v.uid);
  assert.deepEqual(rows.map((r) => r.temp_id), ps.slice(0, 10).map((p) => p.tempId), 'only the 10 accepted are stored');
  // no messageSent for the refused ones
  await v.none('messageSent', { pred: (p) => [ps[10].tempId, ps[11].tempId, extra.tempId].includes(p?.tempId), ms: t(200) });

  // the limit is per visitor: a second tab of the same visitor is limited too ...
  const tab = await visitor(ctx, { uid: v.uid, label: 'second tab' });
  assertAckRefusal(await tab.ack('sendMessage', { content: 'from tab 2', tempId: newTempId() }), 'rate_limited', 'second tab');
  // ... and another visitor is not
  const other = await visitor(ctx);
  await sendOk(other, 'not limited');
  // the limited sockets are still connected and answer other events
  assert.equal(v.disconnects.length + tab.disconnects.length, 0);
  assert.equal((await v.ack('identify', { projectId: 1, visitorUid: v.uid })).messages.length, 10);
  v.close();
  tab.close();
  other.close();
});

test('typing and context over 2 per second are dropped (rate_limited when acked), then pass again', { timeout: t(30000) }, async () => {
  for (const [event, payload, roomEvent] of [
    ['visitorIsTyping', (i) => ({ isTyping: i % 2 === 0 }), 'visitorIsTyping'],
    ['updateContext', (i) => ({ currentUrl: `http://localhost:3000/p${i}` }), 'visitorContextUpdated'],
  ]) {
    const v = await visitor(ctx);
    const mine = (p) => p?.visitorUid === v.uid;
    const N = 20;
    // a successful typing event may or may not be acked (the contract only fixes refusals)
    const results = await Promise.all(Array.from({ length: N }, (_, i) => v.socket.timeout(t(1500)).emitWithAck(event, payload(i)).then((r) => r, () => 'no answer')));
    const limited = results.filter((r) => r?.error?.code === 'rate_limited').length;
    const otherErrors = results.filter((r) => r?.error && r.error.code !== 'rate_limited');
    assert.deepEqual(otherErrors, [], `${event}: only rate_limited refusals`);
    const passed = N - limited;
    assert.ok(passed >= 1 && passed <= 4, `${event}: ${passed} of ${N} sent at once passed (2 per second)`);
    for (let i = 0; i < passed; i++) await agent.next(roomEvent, { pred: mine });
    await agent.none(roomEvent, { pred: mine, ms: t(500), why: `(${event}: only the ${passed} that passed reach the room)` });
    // a second later one passes again
    await sleep(1100);
    v.emit(event, payload(N));
    await agent.next(roomEvent, { pred: mine, timeoutMs: t(3000) });
    v.close();
  }
});

test('per-minute limit (configured: burst 3 per 1 s, 5 per minute)', { timeout: t(30000) }, async () => {
  const c2 = await setup({
    projects: [{ name: 'Minute', domains: ['localhost'] }],
    args: ['--visitor-burst', '3', '--visitor-burst-window', '1000', '--visitor-per-minute', '5'],
  });
  try {
    const v = await visitor(c2);
    const first = await Promise.all(payloads(3, 'm1').map((p) => v.ack('sendMessage', p)));
    for (const a of first) assert.ok(!a.error, `within the burst: ${JSON.stringify(a)}`);
    await sleep(1300); // the burst window has passed
    for (const p of payloads(2, 'm2')) assert.ok(!(await v.ack('sendMessage', p)).error, 'messages 4 and 5 of the minute pass');
    assertAckRefusal(await v.ack('sendMessage', { content: 'sixth', tempId: newTempId() }), 'rate_limited', 'the 6th in a minute');
    await sleep(1300);
    assertAckRefusal(await v.ack('sendMessage', { content: 'seventh', tempId: newTempId() }), 'rate_limited', 'still over 5 per minute');
    assert.equal((await messageRows(c2.dataDir, 1, v.uid)).length, 5);
    const w = await visitor(c2);
    await sendOk(w, 'another visitor is not limited');
    await closeAllClients(c2.url);
  } finally {
    await teardown(c2, { all: false });
  }
});

// Opens a socket and resolves with 'connected' or 'refused' (connect_error, or nothing within
// the timeout).
async function tryConnect(c, timeoutMs = t(5000)) {
  try {
    await c.waitConnected(timeoutMs);
    return 'connected';
  } catch {
    return 'refused';
  }
}

test('per IP: concurrent sockets over --max-sockets-per-ip are refused until one closes', { timeout: t(30000) }, async () => {
  const c3 = await setup({ projects: [{ name: 'IP', domains: ['localhost'] }], args: ['--max-sockets-per-ip', '3'] });
  try {
    const open = [];
    for (let i = 0; i < 3; i++) {
      const s = openSocket(c3.url, visitorOptions({ projectId: 1 }), `socket ${i}`);
      assert.equal(await tryConnect(s), 'connected', `socket ${i} of 3`);
      open.push(s);
    }
    const fourth = openSocket(c3.url, visitorOptions({ projectId: 1 }), 'socket 4');
    assert.equal(await tryConnect(fourth, t(3000)), 'refused', 'the 4th concurrent socket');
    fourth.close();
    // the three are unaffected
    for (const s of open) assert.ok(s.connected);
    open[0].close();
    await sleep(t(500));
    const fifth = openSocket(c3.url, visitorOptions({ projectId: 1 }), 'socket 5');
    assert.equal(await tryConnect(fifth), 'connected', 'a socket after one closed');
    await closeAllClients(c3.url);
  } finally {
    await teardown(c3, { all: false });
  }
});

test('per IP: new connections over --max-connects-per-ip per second are refused, then allowed', { timeout: t(30000) }, async () => {
  const c4 = await setup({ projects: [{ name: 'Rate', domains: ['localhost'] }], args: ['--max-connects-per-ip', '5'] });
  try {
    const N = 20;
    const socks = Array.from({ length: N }, (_, i) => openSocket(c4.url, visitorOptions({ projectId: 1 }), `burst ${i}`));
    const results = await Promise.all(socks.map((s) => tryConnect(s)));
    const connected = results.filter((r) => r === 'connected').length;
    // 5 per second: within one second at most 5 (10 if the attempts straddle two windows)
    assert.ok(connected >= 1 && connected <= 10, `${connected} of ${N} simultaneous connections accepted`);
    await closeAllClients(c4.url);
    await sleep(1500);
    const later = openSocket(c4.url, visitorOptions({ projectId: 1 }), 'later');
    assert.equal(await tryConnect(later), 'connected', 'a connection a second later');
    await closeAllClients(c4.url);
  } finally {
    await teardown(c4, { all: false });
  }
});

test('every visitor from one address has its own message budget', { timeout: t(20000) }, async () => {
  // many visitors from one address each get their own message budget
  const vs = await Promise.all(Array.from({ length: 5 }, () => visitor(ctx, { uid: newUid() })));
  for (const v of vs) {
    const answers = await Promise.all(payloads(10, 'each').map((p) => v.ack('sendMessage', p, { timeoutMs: t(10000) })));
    for (const a of answers) assert.ok(!a.error, `each visitor has its own 10: ${JSON.stringify(a)}`);
    v.close();
  }
});
