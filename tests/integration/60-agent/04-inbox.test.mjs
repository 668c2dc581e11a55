// The inbox (docs/http-api.md "Inbox"): the full loop with socket.io-client (a visitor with two
// tabs sends; the agent, logged in over HTTP, lists the conversation and its messages, replies
// over HTTP; both tabs get `agentReplied`, the room `newMessage`; typing reaches the visitor
// with the agent's name, or the project's agentDisplayName once set; status and read changes
// reach the room as `conversationUpdated`); validation of every inbox body and query (400 naming
// the field); pagination of the list (status filter, page / limit, newest activity first) and of
// the messages (before / limit cursor, oldest first, hasMore); assignment (to the caller, to
// another member, 400 "userId: not a member" otherwise, unassign); DELETE (204,
// `conversationDeleted`, 404 afterwards on every route, the history gone); the visitor endpoint
// with isOnline following the visitor's sockets; a 100-character multi-byte agent name in typing;
// the conversation's metadata.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, waitUntil, api, ok, assertApiError, assertFieldError, assertConversation,
  assertVisitor, assertAgentMessage, assertWidgetMessage, loginAll, agentSocket, visitor, identify,
  connectVisitor, sendOk, newUid, getConversation, listInbox, listMessages, reply, convPath,
  inboxPath, register, runCli,
} from './helpers.mjs';

// A full name at the limit, 100 characters in 280 bytes of UTF-8.
const LONG_NAME = '\u00d6'.repeat(60) + '\u{1F600}'.repeat(40);

let ctx;
let room; // agent 0's socket, in the rooms of projects 1 and 3
before(async () => {
  ctx = await setup({
    projects: [
      { name: 'Inbox', domains: ['localhost'] }, // 1
      { name: 'Other', domains: ['localhost'] }, // 2
      { name: 'Paging', domains: ['localhost'] }, // 3
    ],
    agents: [
      { email: 'alice@inbox.test', name: 'Alice Agent', role: 'manager', project: 0 }, // 0
      { email: 'bob@inbox.test', name: 'Bob Agent', project: 0 }, // 1
      { email: 'carol@other.test', name: 'Carol Other', project: 1 }, // 2
      { email: 'pat@paging.test', name: 'Pat Pager', role: 'manager', project: 2 }, // 3
    ],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000', '--typing-per-second', '100000'],
  });
  await loginAll(ctx);
  room = await agentSocket(ctx, ctx.sessions[0].accessToken, [1], 'alice (room 1)');
  // ctx.sessions[4]: an agent of project 1 with a long multi-byte name, registered over HTTP and
  // made a member with the CLI (without --json: 03-projects covers the CLI's JSON output)
  const long = await register(ctx, { email: 'long@inbox.test', fullName: LONG_NAME });
  const r = await runCli(['agent', 'create', '--email', 'long@inbox.test', '--password', long.password, '--project', '1'], { dataDir: ctx.dataDir });
  assert.equal(r.code, 0, `agent create (membership): ${r.stderr}`);
  ctx.sessions.push(long);
});
after(() => teardown(ctx));

const tok = (i) => ctx.sessions[i].accessToken;
const byId = (id) => (p) => p?.id === id;
const forConv = (cid) => (p) => p?.conversationId === cid;

// A visitor of project pid who has sent `text`: {v, fm, cid}.
async function visitorWithConversation(text = 'Hello', { pid = 1, uid = newUid() } = {}) {
  const v = await visitor(ctx, { projectId: pid, uid });
  const fm = await sendOk(v, text);
  return { v, fm, cid: fm.conversationId };
}

test('full loop: visitor sends, agent lists and replies over HTTP, both tabs and the room get it', { timeout: t(60000) }, async () => {
  const uid = newUid();
  const tabA = await visitor(ctx, { uid, label: 'tab A' });
  const tabB = await visitor(ctx, { uid, label: 'tab B (polling)', transports: ['polling'] });

  const fm = await sendOk(tabA, 'Hello, I need help with my order');
  const cid = fm.conversationId;
  const nm = await room.next('newMessage', { pred: byId(fm.id) });
  assertAgentMessage(nm, fm, { fromCustomer: true, userId: null });

  // the inbox lists it, with the visitor online
  const list = await listInbox(ctx, tok(0), 1);
  const item = list.data.find((c) => c.id === cid);
  assert.ok(item, `the conversation ${cid} is listed: ${JSON.stringify(list).slice(0, 500)}`);
  assertConversation(item, { projectId: 1, visitorId: nm.visitorId, status: 'open', unreadCount: 1, assigneeId: null, lastMessageSnippet: 'Hello, I need help with my order' });
  assert.deepEqual({ id: item.visitor.id, uid: item.visitor.uid, isOnline: item.visitor.isOnline }, { id: nm.visitorId, uid, isOnline: true });
  assert.equal(list.data[0].id, cid, 'newest activity first');
  assert.deepEqual(await getConversation(ctx, tok(0), 1, cid), item, 'GET conversation equals the list item');
  // any member may read it (Bob is an agent, not a manager)
  assert.equal((await getConversation(ctx, tok(1), 1, cid)).id, cid);

  const msgs = await listMessages(ctx, tok(0), 1, cid);
  assert.deepEqual(msgs, { data: [nm], hasMore: false }, 'the messages are the room\'s Messages');

  // the reply
  const r = await reply(ctx, tok(0), 1, cid, 'Hi! Happy to help.');
  assertAgentMessage(r, undefined, { conversationId: cid, content: 'Hi! Happy to help.', fromCustomer: false, userId: ctx.agents[0].id, visitorId: nm.visitorId });
  assert.ok(r.id > fm.id);
  for (const tab of [tabA, tabB]) {
    const w = await tab.next('agentReplied', { pred: byId(r.id) });
    assertWidgetMessage(w);
    assertAgentMessage(r, w);
    assert.ok(!('userId' in w) && !('visitorId' in w), `the widget gets a WidgetMessage: ${JSON.stringify(w)}`);
    await tab.none('agentReplied', { pred: byId(r.id), ms: t(200), why: '(once per tab)' });
  }
  assert.deepEqual(await room.next('newMessage', { pred: byId(r.id) }), r, 'the room gets the reply as a Message');
  assert.deepEqual((await listMessages(ctx, tok(1), 1, cid)).data, [nm, r]);
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).unreadCount, 1, 'an agent\'s reply is not unread for the agents');

  // typing reaches both tabs with the agent's full name
  ok(await api(ctx, 'POST', convPath(1, cid, '/typing'), { token: tok(0), body: { isTyping: true } }), 204);
  for (const tab of [tabA, tabB]) assert.deepEqual(await tab.next('agentIsTyping'), { agentName: 'Alice Agent', isTyping: true });
  ok(await api(ctx, 'POST', convPath(1, cid, '/typing'), { token: tok(1), body: { isTyping: false } }), 204);
  for (const tab of [tabA, tabB]) assert.deepEqual(await tab.next('agentIsTyping'), { agentName: 'Bob Agent', isTyping: false });

  // status changes reach the room
  const p1 = assertConversation(ok(await api(ctx, 'PATCH', convPath(1, cid), { token: tok(1), body: { status: 'pending' } })), { id: cid, status: 'pending' });
  const u1 = await room.next('conversationUpdated', { pred: forConv(cid) });
  assert.deepEqual(Object.keys(u1).sort(), ['conversationId', 'fields']);
  assert.equal(u1.fields.status, 'pending', `fields holds the status: ${JSON.stringify(u1)}`);
  assert.equal(p1.unreadCount, 1);

  // a second visitor message; read: true → unreadCount 0, reported to the room
  const fm2 = await sendOk(tabB, 'Are you there?');
  assert.equal(fm2.conversationId, cid, 'a pending conversation is still the visitor\'s');
  await room.next('newMessage', { pred: byId(fm2.id) });
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).unreadCount, 2);
  const p2 = assertConversation(ok(await api(ctx, 'PATCH', convPath(1, cid), { token: tok(0), body: { read: true } })), { id: cid, unreadCount: 0, status: 'pending' });
  const u2 = await room.next('conversationUpdated', { pred: forConv(cid) });
  assert.equal(u2.fields.unreadCount, 0, `fields holds unreadCount: ${JSON.stringify(u2)}`);
  assert.ok(!('status' in u2.fields) || u2.fields.status === 'pending', 'only what changed');
  assert.equal(p2.status, 'pending');
  assert.equal((await listInbox(ctx, tok(0), 1)).data.find((c) => c.id === cid).unreadCount, 0);
  const p3 = ok(await api(ctx, 'PATCH', convPath(1, cid), { token: tok(0), body: { status: 'solved', read: true } }));
  assert.equal(p3.status, 'solved');
  assert.equal((await room.next('conversationUpdated', { pred: forConv(cid) })).fields.status, 'solved');

  // a reply while the visitor is away is kept: a new tab gets it in its history
  tabA.close();
  tabB.close();
  ok(await api(ctx, 'PATCH', convPath(1, cid), { token: tok(0), body: { status: 'open' } }));
  const r2 = await reply(ctx, tok(0), 1, cid, 'We shipped it today.');
  const tabC = await connectVisitor(ctx, { label: 'tab C' });
  const hist = await identify(tabC, { projectId: 1, uid });
  assert.deepEqual(hist.map((m) => m.id), [fm.id, r.id, fm2.id, r2.id]);
  assert.deepEqual(hist[3].content, 'We shipped it today.');
  assert.equal(hist[3].fromCustomer, false);
  tabC.close();
});

test('typing: a 100-character multi-byte agent name reaches the visitor whole', { timeout: t(30000) }, async () => {
  const long = ctx.sessions[4];
  assert.equal(long.user.fullName, LONG_NAME);
  assert.equal(ok(await api(ctx, 'GET', '/user/me', { token: long.accessToken })).fullName, LONG_NAME);
  const { v, cid } = await visitorWithConversation('long names');
  for (const isTyping of [true, false]) {
    ok(await api(ctx, 'POST', convPath(1, cid, '/typing'), { token: long.accessToken, body: { isTyping } }), 204);
    assert.deepEqual(await v.next('agentIsTyping'), { agentName: LONG_NAME, isTyping });
  }
  const r = await reply(ctx, long.accessToken, 1, cid, 'a reply from the long name');
  assert.equal(r.userId, long.user.id);
  assert.equal((await v.next('agentReplied', { pred: byId(r.id) })).content, 'a reply from the long name');
  v.close();
});

test('typing: agentName is the project\'s agentDisplayName once it is set', { timeout: t(30000) }, async () => {
  const { v, cid } = await visitorWithConversation('typing names');
  ok(await api(ctx, 'PATCH', '/projects/1/widget-settings', { token: tok(0), body: { agentDisplayName: 'Helpdesk' } }));
  ok(await api(ctx, 'POST', convPath(1, cid, '/typing'), { token: tok(1), body: { isTyping: true } }), 204);
  assert.deepEqual(await v.next('agentIsTyping'), { agentName: 'Helpdesk', isTyping: true });
  // only the visitor of that conversation gets it
  const other = await visitor(ctx);
  ok(await api(ctx, 'POST', convPath(1, cid, '/typing'), { token: tok(0), body: { isTyping: false } }), 204);
  assert.deepEqual(await v.next('agentIsTyping'), { agentName: 'Helpdesk', isTyping: false });
  await other.none('agentIsTyping', { why: '(another visitor)' });
  v.close();
  other.close();
});

test('the conversation\'s metadata is the first message\'s sessionMetadata, returned exactly', { timeout: t(30000) }, async () => {
  const v = await visitor(ctx);
  const meta = { plan: 'pro', cart: [{ sku: 'A-1', qty: 2 }], note: '<b>"quoted"</b> \u{1F6D2}', nested: { ok: true, n: null } };
  const fm = await sendOk(v, 'with metadata', { sessionMetadata: meta });
  const c = await getConversation(ctx, tok(0), 1, fm.conversationId);
  assert.deepEqual(c.metadata, meta);
  v.close();
});

test('inbox bodies and queries: 400 naming the field; nothing stored or sent', { timeout: t(60000) }, async () => {
  const { v, cid } = await visitorWithConversation('validation');
  const post = (body) => api(ctx, 'POST', convPath(1, cid, '/messages'), { token: tok(0), body });
  for (const body of [{}, { text: '' }, { text: ' \t\n ' }, { text: 'x'.repeat(5001) }, { text: '\u{1F600}'.repeat(5001) }, { text: null }, { text: 5 }, { text: ['a'] }, { content: 'wrong field' }]) {
    assertFieldError(await post(body), 'text', JSON.stringify(body).slice(0, 60));
  }
  for (const raw of ['[]', '"text"', '{"text":']) assertApiError(await api(ctx, 'POST', convPath(1, cid, '/messages'), { token: tok(0), raw, contentType: 'application/json' }), 400);
  assert.equal((await listMessages(ctx, tok(0), 1, cid)).data.length, 1, 'no refused reply was stored');
  await v.none('agentReplied', { why: '(every reply was refused)' });

  // the limits: 5000 characters (also as 4-byte characters), counted after trimming
  const big = await reply(ctx, tok(0), 1, cid, 'x'.repeat(5000));
  assert.equal(big.content.length, 5000);
  const emoji = await reply(ctx, tok(0), 1, cid, '\u{1F600}'.repeat(5000));
  assert.equal(emoji.content, '\u{1F600}'.repeat(5000));
  const padded = await reply(ctx, tok(0), 1, cid, `  ${'y'.repeat(5000)}  \n`);
  assert.equal(padded.content, 'y'.repeat(5000), 'the text is stored trimmed');
  for (const m of [big, emoji, padded]) assert.deepEqual(await v.next('agentReplied', { pred: byId(m.id) }).then((w) => w.content), m.content);

  const patch = (body) => api(ctx, 'PATCH', convPath(1, cid), { token: tok(0), body });
  for (const status of ['closed', '', 'OPEN', null, 1, ['open']]) assertFieldError(await patch({ status }), 'status', `status ${JSON.stringify(status)}`);
  for (const read of ['yes', 1, null]) assertFieldError(await patch({ read }), 'read', `read ${JSON.stringify(read)}`);
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).status, 'open', 'refused PATCHes changed nothing');

  const typing = (body) => api(ctx, 'POST', convPath(1, cid, '/typing'), { token: tok(0), body });
  for (const body of [{}, { isTyping: 'yes' }, { isTyping: 1 }, { isTyping: null }]) assertFieldError(await typing(body), 'isTyping', JSON.stringify(body));
  await v.none('agentIsTyping', { why: '(every typing request was refused)' });

  const assign = (body) => api(ctx, 'POST', convPath(1, cid, '/assignments'), { token: tok(0), body });
  for (const userId of ['1', 1.5, -1, 0, true]) assertFieldError(await assign({ userId }), 'userId', `userId ${JSON.stringify(userId)}`);

  const list = (q) => api(ctx, 'GET', `${inboxPath(1, '/conversations')}?${q}`, { token: tok(0) });
  for (const q of ['status=closed', 'status=open,closed', 'status=OPEN', "status=open'%20OR%201=1--"]) assertFieldError(await list(q), 'status', q);
  for (const q of ['page=0', 'page=-1', 'page=abc', 'page=1.5', 'page=99999999999999999999']) assertFieldError(await list(q), 'page', q);
  for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=-5', 'limit=2.5']) assertFieldError(await list(q), 'limit', q);
  const msgs = (q) => api(ctx, 'GET', `${convPath(1, cid, '/messages')}?${q}`, { token: tok(0) });
  for (const q of ['limit=0', 'limit=101', 'limit=x']) assertFieldError(await msgs(q), 'limit', q);
  for (const q of ['before=abc', 'before=-1', 'before=0', 'before=1.5']) assertFieldError(await msgs(q), 'before', q);
  v.close();
});

test('inbox list: status filter (default all but spam), page / limit, newest activity first', { timeout: t(90000) }, async () => {
  const pat = tok(3);
  const cs = [];
  for (let i = 0; i < 5; i++) {
    const x = await visitorWithConversation(`paging ${i}`, { pid: 3 });
    cs.push(x.cid);
    x.v.close();
    await sleep(5);
  }
  // newest activity first
  let all = await listInbox(ctx, pat, 3);
  assert.deepEqual(all.data.map((c) => c.id), [...cs].reverse());
  assert.equal(all.total, 5);
  assert.equal(all.page, 1);
  assert.equal(all.limit, 20);

  // a new message moves a conversation to the top
  const again = await visitor(ctx, { projectId: 3, uid: all.data.find((c) => c.id === cs[1]).visitor.uid });
  await sendOk(again, 'bump');
  again.close();
  all = await listInbox(ctx, pat, 3);
  assert.deepEqual(all.data.map((c) => c.id), [cs[1], cs[4], cs[3], cs[2], cs[0]]);
  const order = all.data.map((c) => c.id);

  // page / limit
  const p1 = await listInbox(ctx, pat, 3, '?page=1&limit=2');
  assert.deepEqual({ ids: p1.data.map((c) => c.id), total: p1.total, page: p1.page, limit: p1.limit }, { ids: order.slice(0, 2), total: 5, page: 1, limit: 2 });
  const p2 = await listInbox(ctx, pat, 3, '?page=2&limit=2');
  assert.deepEqual({ ids: p2.data.map((c) => c.id), total: p2.total, page: p2.page }, { ids: order.slice(2, 4), total: 5, page: 2 });
  const p3 = await listInbox(ctx, pat, 3, '?limit=2&page=3');
  assert.deepEqual(p3.data.map((c) => c.id), order.slice(4));
  const p4 = await listInbox(ctx, pat, 3, '?limit=2&page=4');
  assert.deepEqual({ data: p4.data, total: p4.total }, { data: [], total: 5 });
  assert.deepEqual((await listInbox(ctx, pat, 3, '?limit=100')).data.map((c) => c.id), order);
  assert.deepEqual((await listInbox(ctx, pat, 3, '?limit=1')).data.map((c) => c.id), order.slice(0, 1));

  // the status filter
  const setStatus = async (cid, status) => ok(await api(ctx, 'PATCH', convPath(3, cid), { token: pat, body: { status } }));
  await setStatus(cs[0], 'solved');
  await setStatus(cs[2], 'pending');
  await setStatus(cs[3], 'spam');
  const ids = async (q) => {
    const j = await listInbox(ctx, pat, 3, q);
    assert.equal(j.total, j.data.length);
    return j.data.map((c) => c.id).sort((a, b) => a - b);
  };
  const sorted = (...xs) => xs.sort((a, b) => a - b);
  assert.deepEqual(await ids(''), sorted(cs[0], cs[1], cs[2], cs[4]), 'default: all but spam');
  assert.deepEqual(await ids('?status=spam'), [cs[3]]);
  assert.deepEqual(await ids('?status=solved'), [cs[0]]);
  assert.deepEqual(await ids('?status=open'), sorted(cs[1], cs[4]));
  assert.deepEqual(await ids('?status=open,pending'), sorted(cs[1], cs[2], cs[4]));
  assert.deepEqual(await ids('?status=open,pending,solved,spam'), sorted(...cs));
  const f = await listInbox(ctx, pat, 3, '?status=open,pending&limit=1&page=2');
  assert.equal(f.total, 3);
  assert.equal(f.data.length, 1);
  // other projects' conversations are never listed
  assert.ok(!(await listInbox(ctx, tok(0), 1, '?limit=100&status=open,pending,solved,spam')).data.some((c) => cs.includes(c.id)));
});

test('messages: before / limit cursor, oldest first, hasMore', { timeout: t(60000) }, async () => {
  const pat = tok(3);
  const v = await visitor(ctx, { projectId: 3 });
  const ms = [];
  for (let i = 1; i <= 7; i++) ms.push(await sendOk(v, `message ${i}`));
  const cid = ms[0].conversationId;
  const ids = (j) => j.data.map((m) => m.id);
  const all = await listMessages(ctx, pat, 3, cid);
  assert.deepEqual(ids(all), ms.map((m) => m.id));
  assert.equal(all.hasMore, false);
  for (let i = 0; i < 7; i++) assertAgentMessage(all.data[i], ms[i], { fromCustomer: true });

  const last3 = await listMessages(ctx, pat, 3, cid, '?limit=3');
  assert.deepEqual({ ids: ids(last3), hasMore: last3.hasMore }, { ids: ms.slice(4).map((m) => m.id), hasMore: true });
  const mid3 = await listMessages(ctx, pat, 3, cid, `?before=${last3.data[0].id}&limit=3`);
  assert.deepEqual({ ids: ids(mid3), hasMore: mid3.hasMore }, { ids: ms.slice(1, 4).map((m) => m.id), hasMore: true });
  const first = await listMessages(ctx, pat, 3, cid, `?limit=3&before=${mid3.data[0].id}`);
  assert.deepEqual({ ids: ids(first), hasMore: first.hasMore }, { ids: [ms[0].id], hasMore: false });
  const none = await listMessages(ctx, pat, 3, cid, `?before=${ms[0].id}`);
  assert.deepEqual(none, { data: [], hasMore: false });
  const six = await listMessages(ctx, pat, 3, cid, '?limit=6');
  assert.deepEqual({ ids: ids(six), hasMore: six.hasMore }, { ids: ms.slice(1).map((m) => m.id), hasMore: true });
  const seven = await listMessages(ctx, pat, 3, cid, '?limit=7');
  assert.equal(seven.hasMore, false);
  const one = await listMessages(ctx, pat, 3, cid, `?before=${ms[6].id}&limit=1`);
  assert.deepEqual(ids(one), [ms[5].id]);
  // a reply joins the end
  const r = await reply(ctx, pat, 3, cid, 'agent at the end');
  assert.deepEqual(ids(await listMessages(ctx, pat, 3, cid, '?limit=2')), [ms[6].id, r.id]);
  v.close();
});

test('assignments: to the caller, to another member, 400 for a non-member; unassign; the room hears it', { timeout: t(60000) }, async () => {
  const { v, cid } = await visitorWithConversation('assign me');
  const path = convPath(1, cid, '/assignments');
  const a = assertConversation(ok(await api(ctx, 'POST', path, { token: tok(1), body: {} })), { id: cid, assigneeId: ctx.agents[1].id });
  assert.equal(a.id, cid);
  assert.equal((await room.next('conversationUpdated', { pred: forConv(cid) })).fields.assigneeId, ctx.agents[1].id);

  assertConversation(ok(await api(ctx, 'POST', path, { token: tok(1), body: { userId: ctx.agents[0].id } })), { assigneeId: ctx.agents[0].id });
  assert.equal((await room.next('conversationUpdated', { pred: forConv(cid) })).fields.assigneeId, ctx.agents[0].id);
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).assigneeId, ctx.agents[0].id);

  // not a member: Carol (project 2), Pat (project 3), nobody
  for (const userId of [ctx.agents[2].id, ctx.agents[3].id, 999999]) {
    assertApiError(await api(ctx, 'POST', path, { token: tok(0), body: { userId } }), 400, /^userId: not a member/);
  }
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).assigneeId, ctx.agents[0].id, 'refused assignments changed nothing');
  await room.none('conversationUpdated', { pred: forConv(cid), why: '(refused assignments)' });

  const u = assertConversation(ok(await api(ctx, 'DELETE', path, { token: tok(1) })), { id: cid, assigneeId: null });
  assert.equal(u.assigneeId, null);
  const ev = await room.next('conversationUpdated', { pred: forConv(cid) });
  assert.ok('assigneeId' in ev.fields && ev.fields.assigneeId === null, `unassigned in the event: ${JSON.stringify(ev)}`);
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).assigneeId, null);
  // unassigning again is harmless
  assertConversation(ok(await api(ctx, 'DELETE', path, { token: tok(0) })), { assigneeId: null });
  v.close();
});

test('DELETE a conversation: 204, conversationDeleted to the room, 404 on every route afterwards', { timeout: t(60000) }, async () => {
  const { v, cid, fm } = await visitorWithConversation('delete me');
  ok(await api(ctx, 'DELETE', convPath(1, cid), { token: tok(1) }), 204);
  assert.deepEqual(await room.next('conversationDeleted', { pred: forConv(cid) }), { conversationId: cid });
  for (const [method, rest, body] of [
    ['GET', ''], ['GET', '/messages'], ['POST', '/messages', { text: 'too late' }], ['PATCH', '', { status: 'solved' }],
    ['POST', '/typing', { isTyping: true }], ['POST', '/assignments', {}], ['DELETE', '/assignments'], ['DELETE', ''],
  ]) {
    assertApiError(await api(ctx, method, convPath(1, cid, rest), { token: tok(0), body }), 404);
  }
  const listed = await listInbox(ctx, tok(0), 1, '?limit=100&status=open,pending,solved,spam');
  assert.ok(!listed.data.some((c) => c.id === cid), 'no longer listed');
  await v.none('agentReplied', { why: '(the reply to a deleted conversation was refused)' });
  await v.none('agentIsTyping', { why: '(typing to a deleted conversation was refused)' });
  // a new tab of the visitor no longer sees the deleted conversation's messages
  const tab = await visitor(ctx, { uid: v.uid, label: 'new tab after delete' });
  assert.deepEqual(tab.history, [], 'the history of a deleted conversation is gone');
  tab.close();
  // the visitor's next message starts a new conversation
  const next = await sendOk(v, 'hello again');
  assert.notEqual(next.conversationId, cid);
  assert.ok(next.id > fm.id);
  v.close();
});

test('GET /inbox/visitors/:id: isOnline true while the socket is connected, false after', { timeout: t(60000) }, async () => {
  const { v, cid } = await visitorWithConversation('who am I');
  const vid = (await getConversation(ctx, tok(0), 1, cid)).visitorId;
  const path = inboxPath(1, `/visitors/${vid}`);
  const online = assertVisitor(ok(await api(ctx, 'GET', path, { token: tok(1) })), { id: vid, uid: v.uid, isOnline: true });
  assert.ok(online.lastSeenAt === null || Date.parse(online.lastSeenAt) <= Date.now() + 1000);
  v.close();
  await waitUntil(async () => ok(await api(ctx, 'GET', path, { token: tok(1) })).isOnline === false, { timeoutMs: t(8000), label: 'visitor offline' });
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).visitor.isOnline, false, 'the conversation\'s visitor is offline too');
  // and online again on a new socket; with two tabs, online until the last one closes
  const back = await visitor(ctx, { uid: v.uid, label: 'back, tab 1' });
  const tab2 = await visitor(ctx, { uid: v.uid, label: 'back, tab 2' });
  assertVisitor(ok(await api(ctx, 'GET', path, { token: tok(0) })), { id: vid, uid: v.uid, isOnline: true });
  back.close();
  await sleep(t(300));
  assert.equal(ok(await api(ctx, 'GET', path, { token: tok(0) })).isOnline, true, 'still online: tab 2 is open');
  assert.equal((await getConversation(ctx, tok(0), 1, cid)).visitor.isOnline, true);
  tab2.close();
  await waitUntil(async () => ok(await api(ctx, 'GET', path, { token: tok(1) })).isOnline === false, { timeoutMs: t(8000), label: 'visitor offline after the last tab' });
  for (const id of ['999999', ...['abc', '0', '-1', '1.5']]) assertApiError(await api(ctx, 'GET', inboxPath(1, `/visitors/${id}`), { token: tok(0) }), 404);
});
