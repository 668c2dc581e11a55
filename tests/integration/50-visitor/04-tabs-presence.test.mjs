// Several tabs of one visitor and reconnects (PROTOCOL.md section 3): every open socket of the
// visitor gets `messageSent`; the room gets `visitorStatusChanged` {visitorUid, projectId,
// isOnline: true} only when the visitor was offline (not for a second tab) and isOnline: false
// only when the last socket closes, whatever the order the tabs close in (presence is
// compare-and-delete: a socket only removes the entry that points at it); a visitor reconnecting
// on a new socket gets its history and its later messages, including a message it sent just
// before the old socket went away.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, waitUntil, connectVisitor, identify, visitor, newUid, newTempId, sendOk,
  messageRows, agentInRoom,
} from './helpers.mjs';

let ctx;
let agent;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Tabs', domains: ['localhost'] }],
    agents: [{ email: 'agent@tabs.test' }],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
  agent = await agentInRoom(ctx, 0);
});
after(() => teardown(ctx));

const status = (uid, isOnline) => (p) => p && p.visitorUid === uid && p.isOnline === isOnline;
const anyStatus = (uid) => (p) => p && p.visitorUid === uid;

async function expectStatus(uid, isOnline) {
  const p = await agent.next('visitorStatusChanged', { pred: anyStatus(uid), timeoutMs: t(5000) });
  assert.deepEqual(p, { visitorUid: uid, projectId: 1, isOnline }, `visitorStatusChanged for ${uid}`);
}

async function expectNoStatus(uid, why) {
  await agent.none('visitorStatusChanged', { pred: anyStatus(uid), ms: t(600), why });
}

test('two tabs: both get messageSent; online once; offline only when the last tab closes', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const a = await visitor(ctx, { uid, label: 'tab A' });
  await expectStatus(uid, true);
  const b = await visitor(ctx, { uid, label: 'tab B (polling)', transports: ['polling'] });
  assert.deepEqual(b.history, []);
  await expectNoStatus(uid, '(a second tab is not a status change)');

  // A sends: A's ack and messageSent, and B's messageSent, carry the same final message
  const t1 = newTempId();
  const fmA = await sendOk(a, 'from A', { tempId: t1 });
  assert.deepEqual(await b.next('messageSent', { pred: (p) => p?.tempId === t1 }), { tempId: t1, finalMessage: fmA });
  // B sends: A gets it too
  const t2 = newTempId();
  const fmB = await sendOk(b, 'from B', { tempId: t2 });
  assert.equal(fmB.conversationId, fmA.conversationId, 'one conversation for the visitor');
  assert.deepEqual(await a.next('messageSent', { pred: (p) => p?.tempId === t2 }), { tempId: t2, finalMessage: fmB });

  a.close();
  await expectNoStatus(uid, '(tab B is still open)');
  // B still works and is still this visitor
  const t3 = newTempId();
  const fm3 = await sendOk(b, 'B after A closed', { tempId: t3 });
  assert.equal(fm3.conversationId, fmA.conversationId);
  b.close();
  await expectStatus(uid, false);
  await expectNoStatus(uid, '(exactly one offline event)');
});

test('the tab that identified last closes first: still online until the other closes', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const first = await visitor(ctx, { uid, label: 'first tab' });
  await expectStatus(uid, true);
  const second = await visitor(ctx, { uid, label: 'second tab' }); // presence now points at it
  second.close();
  await expectNoStatus(uid, '(the first tab is still open)');
  // the first tab still gets its messageSent
  const fm = await sendOk(first, 'still here');
  assert.equal(fm.senderId, uid);
  // a third tab now: the visitor was online all along, so no new online event
  const third = await visitor(ctx, { uid, label: 'third tab' });
  assert.deepEqual(third.history.map((m) => m.id), [fm.id]);
  await expectNoStatus(uid, '(still online: no status change)');
  first.close();
  await expectNoStatus(uid, '(the third tab is still open)');
  third.close();
  await expectStatus(uid, false);
});

test('a reconnect on a new socket before the old one is gone does not make the visitor offline', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const old = await visitor(ctx, { uid, label: 'old socket' });
  await expectStatus(uid, true);
  // the new socket identifies first (presence → new), then the old one closes: the old
  // socket's disconnect must not delete the entry that now points at the new socket
  const fresh = await visitor(ctx, { uid, label: 'new socket' });
  old.close();
  await expectNoStatus(uid, '(the new socket is open)');
  const fm = await sendOk(fresh, 'on the new socket');
  assert.equal(fm.senderId, uid);
  // closing and reopening a few times in overlapping order keeps the status consistent
  let cur = fresh;
  for (let i = 0; i < 4; i++) {
    const next = await visitor(ctx, { uid, label: `socket ${i}` });
    cur.close();
    cur = next;
  }
  await expectNoStatus(uid, '(always at least one socket open)');
  cur.close();
  await expectStatus(uid, false);
  await expectNoStatus(uid, '(one offline event)');
});

test('a visitor reconnecting on a new socket gets its history and later messages', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const s1 = await visitor(ctx, { uid, label: 'socket 1' });
  await expectStatus(uid, true);
  const m1 = await sendOk(s1, 'one');
  const m2 = await sendOk(s1, 'two');
  s1.close();
  await expectStatus(uid, false);

  const s2 = await visitor(ctx, { uid, label: 'socket 2' });
  await expectStatus(uid, true);
  assert.deepEqual(s2.history, [m1, m2], 'the history on the new socket');
  const m3 = await sendOk(s2, 'three');
  assert.equal(m3.conversationId, m1.conversationId, 'the same conversation continues');
  await s1.none('messageSent', { pred: (p) => p?.tempId && p.finalMessage?.id === m3.id, why: '(closed socket)' });
  s2.close();
  await expectStatus(uid, false);
});

test('a message sent just before the socket closes reaches the visitor on its new socket', { timeout: t(30000) }, async () => {
  for (let round = 0; round < 3; round++) {
    const uid = newUid();
    const s1 = await visitor(ctx, { uid, label: `round ${round} old` });
    const tempId = newTempId('inflight');
    s1.emit('sendMessage', { content: `in flight ${round}`, tempId });
    s1.close();
    const s2 = await connectVisitor(ctx, { label: `round ${round} new` });
    const history = await identify(s2, { projectId: 1, uid });
    // stored exactly once ...
    const rows = await waitUntil(async () => {
      const r = await messageRows(ctx.dataDir, 1, uid);
      return r.length ? r : null;
    }, { timeoutMs: t(5000), label: 'the in-flight message stored' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].temp_id, tempId);
    // ... and the visitor learns about it: in the history (committed before identify) or as
    // messageSent on the new socket (committed after)
    const inHistory = history.find((m) => m.id === rows[0].id);
    if (!inHistory) {
      const ev = await s2.next('messageSent', { pred: (p) => p?.tempId === tempId, timeoutMs: t(5000) });
      assert.equal(ev.finalMessage.id, rows[0].id);
      assert.equal(ev.finalMessage.content, `in flight ${round}`);
    }
    // either way a retry (the widget did not see the ack on the old socket) gives the original
    const again = await sendOk(s2, `in flight ${round}`, { tempId });
    assert.equal(again.id, rows[0].id);
    assert.equal((await messageRows(ctx.dataDir, 1, uid)).length, 1);
    s2.close();
  }
});

test('tabs of different visitors are independent', { timeout: t(30000) }, async () => {
  const u1 = newUid();
  const u2 = newUid();
  const a = await visitor(ctx, { uid: u1 });
  const b = await visitor(ctx, { uid: u2 });
  await expectStatus(u1, true);
  await expectStatus(u2, true);
  const t1 = newTempId();
  await sendOk(a, 'mine', { tempId: t1 });
  await b.none('messageSent', { why: '(another visitor\'s message)' });
  a.close();
  await expectStatus(u1, false);
  await expectNoStatus(u2, '(the other visitor is still online)');
  await sleep(10);
  b.close();
  await expectStatus(u2, false);
});
