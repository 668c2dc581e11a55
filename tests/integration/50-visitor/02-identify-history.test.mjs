// identify and the conversation history (PROTOCOL.md section 3, protocol-decisions.md): the ack
// and the `conversationHistory` event carry the same {messages}; a new visitor's history is
// empty; the visitor row is found or created per (project, uid) with lastSeenAt updated; the
// history follows the project's historyVisibility: `limit_to_active` (default: the newest open
// or pending conversation) and `forever` (the newest not marked spam); a visitor message into a
// solved conversation found under `forever` reopens it; the history holds the newest 200
// messages, oldest first; a second identify with the same uid answers again, another uid or
// another project is refused `forbidden`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, connectVisitor, identify, visitor, newUid, sendOk, sql,
  setWidgetSettings, setConversationStatus, visitorRow, conversationRows, messageRows,
  assertWidgetMessage, assertAckRefusal, assertException,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [
      { name: 'Active', domains: ['localhost'] }, // 1: limit_to_active (default)
      { name: 'Forever', domains: ['localhost'] }, // 2: forever
      { name: 'Other', domains: ['localhost'] }, // 3
      { name: 'Switch', domains: ['localhost'] }, // 4: changed between connections
    ],
    settings: { 1: { historyVisibility: 'forever' } },
    // the 205-message history test sends quickly
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
});
after(() => teardown(ctx));

// Connects a new socket for uid and identifies; returns {client, messages}.
async function reconnect(uid, projectId) {
  const c = await connectVisitor(ctx, { projectId, label: `visitor ${uid}` });
  const messages = await identify(c, { projectId, uid });
  return { client: c, messages };
}

// The history as the list of (id, content), for comparisons.
const brief = (ms) => ms.map((m) => [m.id, m.content]);

test('a new visitor: identify answers {messages: []} and creates the visitor row', { timeout: t(20000) }, async () => {
  const uid = newUid();
  const before = Date.now();
  const c = await visitor(ctx, { uid, projectId: 1 });
  assert.deepEqual(c.history, []);
  const row = await visitorRow(ctx.dataDir, 1, uid);
  assert.ok(row, 'visitor row created by identify');
  assert.equal(row.project_id, 1);
  assert.equal(row.uid, uid);
  assert.ok(row.last_seen_at >= before - 1000 && row.last_seen_at <= Date.now() + 1000, `last_seen_at ${row.last_seen_at} is now`);
  assert.deepEqual(await conversationRows(ctx.dataDir, 1, uid), [], 'no conversation before the first message');
  c.close();

  // identify again later (new socket): same row, lastSeenAt moves forward
  await sleep(50);
  const { client, messages } = await reconnect(uid, 1);
  assert.deepEqual(messages, []);
  const row2 = await visitorRow(ctx.dataDir, 1, uid);
  assert.equal(row2.id, row.id, 'the same visitor row');
  assert.ok(row2.last_seen_at > row.last_seen_at, `last_seen_at updated (${row.last_seen_at} -> ${row2.last_seen_at})`);
  client.close();
});

test('the same uid in two projects is two visitors', { timeout: t(20000) }, async () => {
  const uid = newUid();
  const a = await visitor(ctx, { uid, projectId: 1 });
  await sendOk(a, 'in project one');
  const b = await visitor(ctx, { uid, projectId: 3 });
  assert.deepEqual(b.history, [], 'nothing of the other project');
  const ra = await visitorRow(ctx.dataDir, 1, uid);
  const rb = await visitorRow(ctx.dataDir, 3, uid);
  assert.ok(ra && rb && ra.id !== rb.id, 'one row per (project, uid)');
  a.close();
  b.close();
});

test('limit_to_active: the open or pending conversation is the history; solved or spam is not', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 1 });
  const m1 = await sendOk(c, 'first');
  const m2 = await sendOk(c, 'second');
  c.close();

  let r = await reconnect(uid, 1);
  assert.deepEqual(brief(r.messages), [[m1.id, 'first'], [m2.id, 'second']], 'oldest first');
  assert.deepEqual(r.messages[0], m1, 'the history holds the same WidgetMessage as messageSent');
  assert.deepEqual(r.messages[1], m2);
  for (const m of r.messages) assertWidgetMessage(m, { conversationId: m1.conversationId, senderId: uid, fromCustomer: true });
  r.client.close();

  await setConversationStatus(ctx.dataDir, m1.conversationId, 'pending');
  r = await reconnect(uid, 1);
  assert.deepEqual(brief(r.messages), [[m1.id, 'first'], [m2.id, 'second']], 'pending counts as active');
  r.client.close();

  await setConversationStatus(ctx.dataDir, m1.conversationId, 'solved');
  r = await reconnect(uid, 1);
  assert.deepEqual(r.messages, [], 'a solved conversation is not shown under limit_to_active');

  // the next message starts a new conversation, and only it is the history
  const m3 = await sendOk(r.client, 'after solved');
  assert.notEqual(m3.conversationId, m1.conversationId, 'a new conversation');
  r.client.close();
  r = await reconnect(uid, 1);
  assert.deepEqual(brief(r.messages), [[m3.id, 'after solved']]);
  r.client.close();

  await setConversationStatus(ctx.dataDir, m3.conversationId, 'spam');
  r = await reconnect(uid, 1);
  assert.deepEqual(r.messages, [], 'spam is not shown');
  r.client.close();
  const convs = await conversationRows(ctx.dataDir, 1, uid);
  assert.deepEqual(convs.map((x) => [x.id, x.status]), [[m1.conversationId, 'solved'], [m3.conversationId, 'spam']]);
});

test('forever: a solved conversation is still the history; spam is not', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 2 });
  const m1 = await sendOk(c, 'hello forever');
  c.close();
  await setConversationStatus(ctx.dataDir, m1.conversationId, 'solved');

  let r = await reconnect(uid, 2);
  assert.deepEqual(brief(r.messages), [[m1.id, 'hello forever']], 'solved is shown under forever');

  // a message into it reopens it (protocol-decisions.md) and lands in the same conversation
  const m2 = await sendOk(r.client, 'back again');
  assert.equal(m2.conversationId, m1.conversationId, 'the solved conversation is continued');
  const [conv] = await conversationRows(ctx.dataDir, 2, uid);
  assert.equal(conv.status, 'open', 'reopened');
  r.client.close();

  await setConversationStatus(ctx.dataDir, m1.conversationId, 'spam');
  r = await reconnect(uid, 2);
  assert.deepEqual(r.messages, [], 'the only conversation is spam: empty history');
  r.client.close();
});

test('the mode is read at identify time; forever returns the newest conversation not marked spam', { timeout: t(30000) }, async () => {
  const uid = newUid();
  // under limit_to_active: conversation A, solved; then conversation B
  const c = await visitor(ctx, { uid, projectId: 4 });
  const a1 = await sendOk(c, 'A one');
  const a2 = await sendOk(c, 'A two');
  await setConversationStatus(ctx.dataDir, a1.conversationId, 'solved');
  c.close();
  let r = await reconnect(uid, 4);
  assert.deepEqual(r.messages, []);
  const b1 = await sendOk(r.client, 'B one');
  assert.notEqual(b1.conversationId, a1.conversationId);
  r.client.close();

  // B marked spam; switching the project to forever shows A (the newest not spam)
  await setConversationStatus(ctx.dataDir, b1.conversationId, 'spam');
  r = await reconnect(uid, 4);
  assert.deepEqual(r.messages, [], 'limit_to_active: nothing open');
  r.client.close();
  await setWidgetSettings(ctx.dataDir, 4, { historyVisibility: 'forever' });
  r = await reconnect(uid, 4);
  assert.deepEqual(brief(r.messages), [[a1.id, 'A one'], [a2.id, 'A two']], 'forever: the solved A');
  r.client.close();

  // B solved (not spam any more): it is newer than A, so it is the history now
  await setConversationStatus(ctx.dataDir, b1.conversationId, 'solved');
  r = await reconnect(uid, 4);
  assert.deepEqual(brief(r.messages), [[b1.id, 'B one']], 'forever: the newest conversation');
  r.client.close();

  // and back to limit_to_active: nothing open
  await setWidgetSettings(ctx.dataDir, 4, { historyVisibility: 'limit_to_active' });
  r = await reconnect(uid, 4);
  assert.deepEqual(r.messages, []);
  r.client.close();
});

test('two active conversations: the newest is the history and receives the next message', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 1 });
  const a = await sendOk(c, 'in A');
  await setConversationStatus(ctx.dataDir, a.conversationId, 'solved');
  c.close();
  let r = await reconnect(uid, 1);
  const b = await sendOk(r.client, 'in B');
  assert.notEqual(b.conversationId, a.conversationId);
  r.client.close();
  // A reopened behind the widget's back (as an agent would): both are active, B is newer
  await setConversationStatus(ctx.dataDir, a.conversationId, 'pending');
  r = await reconnect(uid, 1);
  assert.deepEqual(brief(r.messages), [[b.id, 'in B']], 'the newest active conversation');
  const b2 = await sendOk(r.client, 'still B');
  assert.equal(b2.conversationId, b.conversationId, 'the message goes where the history came from');
  r.client.close();
  // B solved: A (pending) is the active one now
  await setConversationStatus(ctx.dataDir, b.conversationId, 'solved');
  r = await reconnect(uid, 1);
  assert.deepEqual(brief(r.messages), [[a.id, 'in A']]);
  const a2 = await sendOk(r.client, 'back in A');
  assert.equal(a2.conversationId, a.conversationId);
  r.client.close();
});

test('the history holds the newest 200 messages, oldest first', { timeout: t(120000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 3 });
  const N = 205;
  const sent = [];
  for (let i = 0; i < N; i += 15) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 15); j++) batch.push(sendOk(c, `message ${j}`, { timeoutMs: t(20000) }));
    sent.push(...(await Promise.all(batch)));
  }
  c.close();
  const rows = await messageRows(ctx.dataDir, 3, uid);
  assert.equal(rows.length, N);
  const { client, messages } = await reconnect(uid, 3);
  assert.equal(messages.length, 200, 'at most 200 messages');
  const ids = rows.map((x) => x.id).slice(N - 200);
  assert.deepEqual(messages.map((m) => m.id), ids, 'the newest 200 by id, oldest first');
  const byId = new Map(sent.map((m) => [m.id, m]));
  for (const m of messages) assert.deepEqual(m, byId.get(m.id), 'each equal to its messageSent finalMessage');
  client.close();
});

test('a second identify with the same uid answers again; another uid is forbidden', { timeout: t(20000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 1 });
  const m = await sendOk(c, 'before the second identify');
  const again = await identify(c, { projectId: 1, uid });
  assert.deepEqual(brief(again), [[m.id, 'before the second identify']], 'the history again');

  const other = newUid();
  const res = await c.ack('identify', { projectId: 1, visitorUid: other });
  assertAckRefusal(res, 'forbidden', 'identify with another uid');
  c.emit('identify', { projectId: 1, visitorUid: other });
  assertException(await c.next('exception'), 'forbidden', 'identify', { what: 'identify with another uid' });
  assert.equal(await visitorRow(ctx.dataDir, 1, other), undefined, 'no visitor row for the refused uid');

  // the socket is still the first visitor
  const m2 = await sendOk(c, 'still me');
  assert.equal(m2.senderId, uid);
  assert.equal(m2.conversationId, m.conversationId);
  await c.none('conversationHistory', { why: 'after a refused identify' });
  c.close();
});

test('identify for another project than the socket\'s is forbidden (the socket is bound to its project)', { timeout: t(20000) }, async () => {
  const c = await connectVisitor(ctx, { projectId: 1 });
  const uid = newUid();
  for (const projectId of [3, 999]) {
    const res = await c.ack('identify', { projectId, visitorUid: uid });
    assertAckRefusal(res, 'forbidden', `identify for project ${projectId} on a project-1 socket`);
    c.emit('identify', { projectId, visitorUid: uid });
    assertException(await c.next('exception'), 'forbidden', 'identify');
  }
  assert.equal(await visitorRow(ctx.dataDir, 3, uid), undefined, 'nothing created in project 3');
  // still usable, as a visitor of project 1
  assert.deepEqual(await identify(c, { projectId: 1, uid }), []);
  c.close();
});

test('conversation rows: one per visitor until solved, created by the first message', { timeout: t(20000) }, async () => {
  const uid = newUid();
  const c = await visitor(ctx, { uid, projectId: 1 });
  assert.deepEqual(await conversationRows(ctx.dataDir, 1, uid), []);
  const m = await sendOk(c, 'creates the conversation');
  const convs = await conversationRows(ctx.dataDir, 1, uid);
  assert.equal(convs.length, 1);
  assert.equal(convs[0].id, m.conversationId);
  assert.equal(convs[0].status, 'open');
  const n = await sql(ctx.dataDir, `select count(*) as n from visitors where project_id=1 and uid='${uid}'`);
  assert.equal(n[0].n, 1);
  c.close();
});
