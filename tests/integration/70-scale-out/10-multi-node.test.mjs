// Multi-node (issue 7): one PostgreSQL database, one Redis, nodes A and B with `--worker false`
// and one `parley worker`. Both nodes' /health name the store and Redis; the nodes really leave
// persisting to the worker (with it frozen nothing is stored or acknowledged). A visitor on node A and an agent on node B see each other's messages,
// typing and status (presence across nodes: online once, offline when the last tab is gone); a
// visitor's two tabs on different nodes both get `messageSent` and `agentReplied` (once each);
// room events caused on one node reach agents on both; a burst of 20 visitors x 20 messages
// spread over both nodes is stored exactly once per tempId and reaches agents on both nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster, agentOn, visitorOn, health, WidgetSender, runSenders, checkStored, checkAgentSaw,
  newUid, newTempId, t,
} from './cluster.mjs';
import {
  api, ok, sendOk, assertAgentMessage, assertWidgetMessage, assertConversation, convPath,
} from '../60-agent/helpers.mjs';

let c;
let A;
let B;
let token;
const AGENT = { email: 'alice@multi.test', name: 'Alice Agent', role: 'manager' };

before(async () => {
  c = await startCluster({ name: 'multi_node', agents: [AGENT] });
  A = c.nodes.A;
  B = c.nodes.B;
  token = await c.token(AGENT.email);
});
after(() => c?.stop());

const byUid = (uid) => (p) => p?.visitorUid === uid;
const byId = (id) => (p) => p?.id === id;

test('both nodes are healthy and report their store and Redis', { timeout: t(20000) }, async () => {
  for (const n of [A, B]) {
    const h = await health(n);
    assert.equal(h.status, 200, `node ${n.nodeId} /health: ${h.text ?? h.error}`);
    assert.equal(h.json?.status, 'ok', `node ${n.nodeId} /health: ${h.text}`);
    const checks = h.json.checks ?? h.json;
    assert.equal(checks.store, 'ok', `node ${n.nodeId} /health: store ok: ${h.text}`);
    assert.equal(checks.redis, 'ok', `node ${n.nodeId} /health: redis ok: ${h.text}`);
  }
});

test('the nodes (--worker false) leave persisting to the worker process: nothing is acknowledged while it is frozen', { timeout: t(30000) }, async () => {
  const v = await visitorOn(A, { projectId: c.projectId });
  const w = c.worker('w1');
  process.kill(w.pid, 'SIGSTOP');
  try {
    v.emit('sendMessage', { content: 'while the worker is frozen', tempId: 'frozen-1' });
    await v.none('messageSent', { ms: t(1000), why: '(the only worker is frozen)' });
    const rows = await c.sql(`SELECT m.id FROM messages m JOIN visitors x ON x.id = m.visitor_id WHERE x.uid = '${v.uid}'`);
    assert.deepEqual(rows, [], 'nothing stored while the worker is frozen');
  } finally {
    process.kill(w.pid, 'SIGCONT');
  }
  const fm = (await v.next('messageSent', { pred: (p) => p?.tempId === 'frozen-1', timeoutMs: t(5000) })).finalMessage;
  assertWidgetMessage(fm, { content: 'while the worker is frozen', senderId: v.uid, fromCustomer: true });
  v.close();
});

test('a visitor on node A and an agent on node B see each other\'s messages, typing and status', { timeout: t(45000) }, async () => {
  const pid = c.projectId;
  const agentB = await agentOn(B, token, pid, 'agent@B');
  const agentA = await agentOn(A, token, pid, 'agent@A');
  const uid = newUid();
  const v = await visitorOn(A, { projectId: pid, uid });

  // status: online, announced to the room on both nodes
  for (const ag of [agentB, agentA]) {
    assert.deepEqual(await ag.next('visitorStatusChanged', { pred: byUid(uid), timeoutMs: t(5000) }), { visitorUid: uid, projectId: pid, isOnline: true }, ag.label);
  }

  // visitor → agent: the message, on both nodes
  const fm = await sendOk(v, 'hello from node A');
  const cid = fm.conversationId;
  for (const ag of [agentB, agentA]) {
    assertAgentMessage(await ag.next('newMessage', { pred: byId(fm.id) }), fm, { fromCustomer: true, userId: null });
  }

  // visitor → agent: typing and context
  v.emit('visitorIsTyping', { isTyping: true });
  assert.deepEqual(await agentB.next('visitorIsTyping', { pred: byUid(uid) }), { conversationId: cid, visitorUid: uid, isTyping: true });
  v.emit('visitorIsTyping', { isTyping: false });
  assert.deepEqual(await agentA.next('visitorIsTyping', { pred: (p) => p?.visitorUid === uid && p.isTyping === false }), { conversationId: cid, visitorUid: uid, isTyping: false });
  v.emit('updateContext', { currentUrl: 'http://localhost:3000/pricing' });
  assert.deepEqual(await agentB.next('visitorContextUpdated', { pred: byUid(uid) }), { conversationId: cid, visitorUid: uid, currentUrl: 'http://localhost:3000/pricing' });

  // the agent's HTTP API on node B sees the visitor (connected to node A) online
  const conv = assertConversation(ok(await api({ url: B.url }, 'GET', convPath(pid, cid), { token })), { id: cid, projectId: pid }, { withVisitor: true });
  assert.equal(conv.visitor.uid, uid);
  assert.equal(conv.visitor.isOnline, true, 'node B knows the visitor on node A is online');

  // agent (HTTP on node B) → visitor on node A: the reply and typing
  const r = ok(await api({ url: B.url }, 'POST', convPath(pid, cid, '/messages'), { token, body: { text: 'hello from node B' } }), 201);
  const w = assertWidgetMessage(await v.next('agentReplied', { pred: byId(r.id) }), { content: 'hello from node B', fromCustomer: false, conversationId: cid });
  assertAgentMessage(r, w);
  for (const ag of [agentB, agentA]) assert.deepEqual(await ag.next('newMessage', { pred: byId(r.id) }), r, `${ag.label}: the reply`);
  ok(await api({ url: B.url }, 'POST', convPath(pid, cid, '/typing'), { token, body: { isTyping: true } }), 204);
  assert.deepEqual(await v.next('agentIsTyping'), { agentName: AGENT.name, isTyping: true });
  ok(await api({ url: A.url }, 'POST', convPath(pid, cid, '/typing'), { token, body: { isTyping: false } }), 204);
  assert.deepEqual(await v.next('agentIsTyping'), { agentName: AGENT.name, isTyping: false });

  // conversation status changed over HTTP on node A reaches the agent on node B
  ok(await api({ url: A.url }, 'PATCH', convPath(pid, cid), { token, body: { status: 'pending' } }));
  const u = await agentB.next('conversationUpdated', { pred: (p) => p?.conversationId === cid });
  assert.equal(u.fields?.status, 'pending', JSON.stringify(u));

  // the history on node B holds both messages
  const tab = await visitorOn(B, { projectId: pid, uid });
  assert.deepEqual(tab.history.map((m) => m.id), [fm.id, r.id], 'history read on node B');
  await agentB.none('visitorStatusChanged', { pred: byUid(uid), why: '(a second tab is not a status change)' });
  tab.close();
  await agentB.none('visitorStatusChanged', { pred: byUid(uid), ms: t(500), why: '(the tab on node A is still open)' });

  // status: offline when the visitor leaves node A, on both nodes
  v.close();
  for (const ag of [agentB, agentA]) {
    assert.deepEqual(await ag.next('visitorStatusChanged', { pred: byUid(uid), timeoutMs: t(5000) }), { visitorUid: uid, projectId: pid, isOnline: false }, ag.label);
  }
  const gone = ok(await api({ url: B.url }, 'GET', convPath(pid, cid), { token }));
  assert.equal(gone.visitor.isOnline, false, 'node B knows the visitor left node A');
  agentA.close();
  agentB.close();
});

test('a visitor\'s two tabs on different nodes both get messageSent and agentReplied', { timeout: t(45000) }, async () => {
  const pid = c.projectId;
  const agent = await agentOn(B, token, pid, 'agent@B (tabs)');
  const uid = newUid();
  const tabA = await visitorOn(A, { projectId: pid, uid, label: 'tab on A' });
  const tabB = await visitorOn(B, { projectId: pid, uid, label: 'tab on B' });
  assert.deepEqual(await agent.next('visitorStatusChanged', { pred: byUid(uid) }), { visitorUid: uid, projectId: pid, isOnline: true });

  // a message sent from the tab on A: both tabs get messageSent
  const tempId = newTempId();
  const fm = await sendOk(tabA, 'sent from the tab on A', { tempId });
  assert.deepEqual(await tabB.next('messageSent', { pred: (p) => p?.tempId === tempId }), { tempId, finalMessage: fm }, 'the tab on B gets messageSent');
  const cid = fm.conversationId;
  // and one from the tab on B: the tab on A gets it too
  const fm2 = await sendOk(tabB, 'sent from the tab on B');
  assert.equal(fm2.conversationId, cid, 'one conversation for both tabs');
  assert.equal((await tabA.next('messageSent', { pred: (p) => p?.finalMessage?.id === fm2.id })).finalMessage.content, 'sent from the tab on B');

  // replies posted on either node reach both tabs, once each
  for (const node of [A, B]) {
    const r = ok(await api({ url: node.url }, 'POST', convPath(pid, cid, '/messages'), { token, body: { text: `reply via node ${node.nodeId}` } }), 201);
    for (const tab of [tabA, tabB]) {
      const w = await tab.next('agentReplied', { pred: byId(r.id), timeoutMs: t(5000) });
      assertAgentMessage(r, assertWidgetMessage(w));
    }
    for (const tab of [tabA, tabB]) await tab.none('agentReplied', { pred: byId(r.id), ms: t(200), why: '(once per tab)' });
  }
  ok(await api({ url: A.url }, 'POST', convPath(pid, cid, '/typing'), { token, body: { isTyping: true } }), 204);
  for (const tab of [tabA, tabB]) assert.deepEqual(await tab.next('agentIsTyping'), { agentName: AGENT.name, isTyping: true }, tab.label);

  // offline only once the last tab is gone
  tabA.close();
  await agent.none('visitorStatusChanged', { pred: byUid(uid), ms: t(600), why: '(the tab on B is still open)' });
  tabB.close();
  assert.deepEqual(await agent.next('visitorStatusChanged', { pred: byUid(uid), timeoutMs: t(5000) }), { visitorUid: uid, projectId: pid, isOnline: false });
  agent.close();
});

test('a burst over both nodes (20 visitors x 20 messages): every ack stored once, every message seen on both nodes', { timeout: t(60000) }, async () => {
  const pid = c.projectId;
  const agentA = await agentOn(A, token, pid, 'agent@A (burst)');
  const agentB = await agentOn(B, token, pid, 'agent@B (burst)');
  const senders = [];
  for (let i = 0; i < 20; i++) senders.push(new WidgetSender({ urls: i % 2 ? [B.url] : [A.url], projectId: pid, count: 20, window: 5 }));
  const finished = await runSenders(senders, t(40000));
  const { rows, acked } = await checkStored(c, senders, { finished, what: 'two-node burst' });
  assert.equal(acked, 400);
  assert.equal(rows.length, 400);
  const resends = senders.reduce((n, s) => n + s.stats.resends, 0);
  assert.equal(resends, 0, `nothing needed a re-send without a fault:\n${senders.map((s) => s.summary()).join('\n')}`);
  await checkAgentSaw(agentA, rows, { what: 'agent on A' });
  await checkAgentSaw(agentB, rows, { what: 'agent on B' });
  for (const s of senders) s.close();
  agentA.close();
  agentB.close();
});
