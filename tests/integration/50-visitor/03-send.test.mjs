// sendMessage (PROTOCOL.md sections 3 and 8): the visitor gets `messageSent` {tempId,
// finalMessage} (and the same as the ack) only after the commit, the project room gets
// `newMessage` (the Message: the WidgetMessage plus visitorId and userId), checked field by
// field and against the stored rows (message, conversation with metadata = sessionMetadata,
// last-message fields, unread count); agents outside the room or in another project's room get
// nothing; content is trimmed and counted in code points; idempotency on (project, visitorUid,
// tempId): a retry after a reconnect, on the same socket, or racing the original returns the
// original message and stores one row; long-polling works as well as WebSocket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, connectVisitor, identify, visitor, newUid, newTempId, sendOk, sql,
  visitorRow, conversationRows, messageRows, assertWidgetMessage, assertAgentMessage, agentInRoom,
  connectAgent, agentToken,
} from './helpers.mjs';

let ctx;
let agent; // member of project 1, in its room
let otherAgent; // member of project 2, in its room
let idleAgent; // member of project 1, not in the room
before(async () => {
  ctx = await setup({
    projects: [{ name: 'One', domains: ['localhost'] }, { name: 'Two', domains: ['localhost'] }],
    agents: [
      { email: 'one@p1.test', project: 0, name: 'Agent One' },
      { email: 'two@p2.test', project: 1 },
      { email: 'idle@p1.test', project: 0 },
    ],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
  agent = await agentInRoom(ctx, 0);
  otherAgent = await agentInRoom(ctx, 1);
  idleAgent = await connectAgent(ctx, await agentToken(ctx.dataDir, 'idle@p1.test'), { label: 'idle agent' });
});
after(() => teardown(ctx));

const isMsg = (id) => (p) => p && p.id === id;

test('send → messageSent (the final message) → newMessage in the room, field by field', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const v = await visitor(ctx, { uid, projectId: 1 });
  const tempId = newTempId();
  const sessionMetadata = { browser: 'node', screen: { w: 1280, h: 800 }, referrer: 'https://search.test/?q=parley', tags: ['a', 'b'] };
  const t0 = Date.now();
  const fm = await sendOk(v, '  Hello, world!\n', { tempId, sessionMetadata });
  const t1 = Date.now();

  // the WidgetMessage of section 8
  assertWidgetMessage(fm, { content: 'Hello, world!', senderId: uid, fromCustomer: true, status: 'sent' });
  const created = Date.parse(fm.createdAt);
  assert.ok(created >= t0 - 1000 && created <= t1 + 1000, `createdAt ${fm.createdAt} is the time of sending`);

  // stored (messageSent only after the commit: the row is there now)
  const vrow = await visitorRow(ctx.dataDir, 1, uid);
  const rows = await messageRows(ctx.dataDir, 1, uid);
  assert.equal(rows.length, 1, 'one row');
  const r = rows[0];
  assert.equal(r.id, fm.id);
  assert.equal(r.conversation_id, fm.conversationId);
  assert.equal(r.project_id, 1);
  assert.equal(r.visitor_id, vrow.id);
  assert.equal(r.content, 'Hello, world!');
  assert.equal(r.sender_id, uid);
  assert.equal(r.from_customer, 1);
  assert.equal(r.user_id, null);
  assert.equal(r.status, 'sent');
  assert.equal(r.temp_id, tempId);
  assert.equal(r.created_at, created, 'created_at (ms) is createdAt');

  const [conv] = await conversationRows(ctx.dataDir, 1, uid);
  assert.equal(conv.id, fm.conversationId);
  assert.equal(conv.project_id, 1);
  assert.equal(conv.visitor_id, vrow.id);
  assert.equal(conv.status, 'open');
  assert.deepEqual(JSON.parse(conv.metadata), sessionMetadata, 'conversation metadata = sessionMetadata');
  assert.equal(conv.last_message_snippet, 'Hello, world!');
  assert.equal(conv.last_message_timestamp, created);
  assert.equal(conv.unread_count, 1);

  // the room: newMessage = WidgetMessage + visitorId + userId (null: not an agent's)
  const nm = await agent.next('newMessage', { pred: isMsg(fm.id) });
  assertAgentMessage(nm, fm, { visitorId: vrow.id, userId: null });
  // nobody else
  await otherAgent.none('newMessage', { pred: isMsg(fm.id), why: '(another project\'s room)' });
  await idleAgent.none('newMessage', { why: '(member, but not in the room)' });
  // the visitor gets messageSent only on its own socket: no newMessage
  await v.none('newMessage');

  // a second message: same conversation, last-message fields and unread count follow
  // (its sessionMetadata does not replace the conversation's: metadata is set at creation)
  const fm2 = await sendOk(v, 'second', { sessionMetadata: { browser: 'other', page: 2 } });
  assert.equal(fm2.conversationId, fm.conversationId);
  assert.ok(fm2.id > fm.id, 'ids grow');
  const [conv2] = await conversationRows(ctx.dataDir, 1, uid);
  assert.equal(conv2.unread_count, 2);
  assert.equal(conv2.last_message_snippet, 'second');
  assert.equal(conv2.last_message_timestamp, Date.parse(fm2.createdAt));
  assert.deepEqual(JSON.parse(conv2.metadata), sessionMetadata, 'metadata is the first message\'s');
  assertAgentMessage(await agent.next('newMessage', { pred: isMsg(fm2.id) }), fm2, { visitorId: vrow.id, userId: null });
  v.close();
});

test('content: Unicode kept exactly, trimmed, limits counted in code points after trimming', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const v = await visitor(ctx, { uid, projectId: 1 });
  const cases = [
    ['héllo wörld — 日本語 🎉', 'héllo wörld — 日本語 🎉'],
    ['<b>bold</b> & <script>x</script>', '<b>bold</b> & <script>x</script>'],
    ['\t\n  padded \u00a0text \r\n', 'padded \u00a0text'], // inner non-ASCII space kept
    ['x', 'x'],
    ['a'.repeat(5000), 'a'.repeat(5000)],
    [`   ${'b'.repeat(5000)}   `, 'b'.repeat(5000)],
    ['😀'.repeat(5000), '😀'.repeat(5000)], // 5000 code points, 10000 UTF-16 units, 20000 bytes
  ];
  for (const [content, expected] of cases) {
    const fm = await sendOk(v, content);
    assert.equal(fm.content, expected, `content ${JSON.stringify(content).slice(0, 60)}`);
    const [row] = await sql(ctx.dataDir, `select content from messages where id=${fm.id}`);
    assert.equal(row.content, fm.content, 'stored as sent back');
    const nm = await agent.next('newMessage', { pred: isMsg(fm.id) });
    assert.equal(nm.content, fm.content);
  }
  v.close();
});

test('retrying a tempId after a reconnect returns the original message and stores one row', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const vrowOf = () => visitorRow(ctx.dataDir, 1, uid);
  let v = await visitor(ctx, { uid, projectId: 1 });
  const tempId = newTempId('retry');
  const fm = await sendOk(v, 'only once', { tempId });
  await agent.next('newMessage', { pred: isMsg(fm.id) });
  v.close();

  // the widget reconnects on a new socket and re-sends what it believes unacknowledged
  v = await connectVisitor(ctx, { projectId: 1 });
  const history = await identify(v, { projectId: 1, uid });
  assert.deepEqual(history, [fm], 'history has the message');
  const again = await sendOk(v, 'only once', { tempId });
  assert.deepEqual(again, fm, 'the original message (same id, createdAt, everything)');
  // on the same socket too, and even with other content: the tempId decides
  assert.deepEqual(await sendOk(v, 'only once', { tempId }), fm);
  assert.deepEqual(await sendOk(v, 'different text, same tempId', { tempId }), fm);

  const rows = await messageRows(ctx.dataDir, 1, uid);
  assert.equal(rows.length, 1, 'one row');
  const [conv] = await conversationRows(ctx.dataDir, 1, uid);
  assert.equal(conv.unread_count, 1, 'unread count not raised by retries');
  await agent.none('newMessage', { pred: isMsg(fm.id), why: '(a retry creates nothing new: no second newMessage)' });

  // another visitor may use the same tempId: that is a different message
  const w = await visitor(ctx, { projectId: 1 });
  const other = await sendOk(w, 'same tempId, other visitor', { tempId });
  assert.notEqual(other.id, fm.id);
  assert.equal(other.content, 'same tempId, other visitor');
  assert.equal((await messageRows(ctx.dataDir, 1, w.uid)).length, 1);
  assert.equal((await vrowOf()).id !== (await visitorRow(ctx.dataDir, 1, w.uid)).id, true);
  v.close();
  w.close();
});

test('the same tempId sent twice at once: both answers are the one stored message', { timeout: t(30000) }, async () => {
  const uid = newUid();
  const v = await visitor(ctx, { uid, projectId: 1 });
  for (let round = 0; round < 5; round++) {
    const tempId = newTempId('race');
    const payload = { content: `race ${round}`, tempId };
    const [a, b, c] = await Promise.all([v.ack('sendMessage', payload), v.ack('sendMessage', payload), v.ack('sendMessage', payload)]);
    assert.ok(!a.error && !b.error && !c.error, `no refusal: ${JSON.stringify([a, b, c])}`);
    assert.deepEqual(b, a);
    assert.deepEqual(c, a);
    const rows = await sql(ctx.dataDir, `select count(*) as n from messages where temp_id='${tempId}'`);
    assert.equal(rows[0].n, 1, `one row for ${tempId}`);
    await agent.next('newMessage', { pred: isMsg(a.finalMessage.id) });
    await agent.none('newMessage', { pred: isMsg(a.finalMessage.id), ms: t(200), why: '(once per stored message)' });
  }
  const [conv] = await conversationRows(ctx.dataDir, 1, uid);
  assert.equal(conv.unread_count, 5);
  v.close();
});

for (const [name, transports] of [['long-polling only', ['polling']], ['default transports (polling, then upgrade)', undefined]]) {
  test(`identify and send over ${name}`, { timeout: t(30000) }, async () => {
    const uid = newUid();
    const v = await visitor(ctx, { uid, projectId: 1, transports: transports ?? null });
    for (let i = 0; i < 5; i++) {
      const fm = await sendOk(v, `over ${name} ${i}`);
      assertWidgetMessage(fm, { content: `over ${name} ${i}`, senderId: uid });
      assertAgentMessage(await agent.next('newMessage', { pred: isMsg(fm.id) }), fm, { userId: null });
    }
    assert.equal((await messageRows(ctx.dataDir, 1, uid)).length, 5);
    v.close();
  });
}

test('many visitors at once: every message acknowledged, delivered to the room once, stored once', { timeout: t(60000) }, async () => {
  const V = 8;
  const M = 6;
  const vs = await Promise.all(Array.from({ length: V }, () => visitor(ctx, { projectId: 1 })));
  const fms = (await Promise.all(vs.map((v) => Promise.all(Array.from({ length: M }, (_, i) => sendOk(v, `${v.uid} #${i}`, { timeoutMs: t(15000) })))))).flat();
  const ids = new Set(fms.map((m) => m.id));
  assert.equal(ids.size, V * M, 'distinct ids');
  for (const m of fms) await agent.next('newMessage', { pred: isMsg(m.id), timeoutMs: t(10000) });
  await agent.none('newMessage', { pred: (p) => ids.has(p?.id), ms: t(300), why: '(duplicate delivery)' });
  for (const v of vs) {
    const rows = await messageRows(ctx.dataDir, 1, v.uid);
    assert.equal(rows.length, M);
    const convs = await conversationRows(ctx.dataDir, 1, v.uid);
    assert.equal(convs.length, 1, 'one conversation per visitor');
    assert.equal(convs[0].unread_count, M);
    v.close();
  }
});

test('a visitor of another project is invisible to this room and vice versa', { timeout: t(20000) }, async () => {
  const v2 = await visitor(ctx, { projectId: 2 });
  const fm = await sendOk(v2, 'project two');
  assertAgentMessage(await otherAgent.next('newMessage', { pred: isMsg(fm.id) }), fm, { userId: null });
  await agent.none('newMessage', { pred: isMsg(fm.id), why: '(project 1 room)' });
  await sleep(10);
  v2.close();
});
