// Fault: node A is killed (SIGKILL) during a burst (issue 7). Nodes A and B (`--worker false`)
// and one worker; 20 visitors x 20 messages, half connected to each node. Node A first hangs for
// 300 ms (SIGSTOP: what its visitors send meanwhile is never read, the acks the worker publishes
// for it are never delivered), then is killed. Its visitors' sockets drop; like the widget
// behind a load balancer they connect again (to B, the node that still answers), identify again
// and re-send every unacknowledged message with the SAME tempId.
// What it checks:
//   - A's visitors did lose their connection, re-sent, and finished on node B;
//   - against the database: every message is acknowledged in the end, every acknowledged tempId
//     is stored exactly once as the message its ack announced (messages acknowledged by A before
//     it died included), no (visitor, tempId) twice (the GROUP BY ... HAVING count(*) > 1 query
//     is empty), unread counts count each message once;
//   - every stored message reached the agent in the room on node B (also those A had queued);
//   - presence after the death of A: the visitors that moved to B are online while connected to
//     B, and offline once they leave it, at the latest when A's heartbeat has expired (15 s) and
//     a sweep (every 5 s) has run: a dead node's sockets do not keep them online for good.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster, agentOn, WidgetSender, runSenders, untilAcked, checkStored, checkAgentSaw, deliveryDiag, sleep, t,
} from './cluster.mjs';
import { api, ok, convPath } from '../60-agent/helpers.mjs';

let c;
let token;
const AGENT = { email: 'alice@node.test', name: 'Alice Agent' };
const movers = []; // senders that started on A (and moved to B), kept open for the presence test
let agent;
let killedAt;

before(async () => {
  c = await startCluster({ name: 'faults_node', agents: [AGENT], workers: ['w1'], visibilityMs: 2000 });
  token = await c.token(AGENT.email);
});
after(() => c?.stop());

test('SIGKILL of node A during a burst: its visitors reconnect to node B and re-send; nothing acknowledged lost or doubled', { timeout: t(60000) }, async () => {
  const { A, B } = c.nodes;
  const pid = c.projectId;
  agent = await agentOn(B, token, pid, 'agent@B');
  const senders = [];
  for (let i = 0; i < 20; i++) senders.push(new WidgetSender({ urls: i % 2 ? [B.url] : [A.url, B.url], projectId: pid, count: 20, window: 5, intervalMs: 150, ackTimeoutMs: t(3000) }));
  const onA = senders.filter((s, i) => i % 2 === 0);
  const done = runSenders(senders, t(40000));

  await untilAcked(onA, 40);
  const ackedOnA = new Map(onA.map((s) => [s.uid, new Map(s.acked)]));
  process.kill(A.pid, 'SIGSTOP');
  await sleep(300);
  const r = await A.kill('SIGKILL');
  killedAt = Date.now();
  const ackedAtKill = senders.reduce((n, s) => n + s.acked.size, 0);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(ackedAtKill < 400, `the kill came during the burst (${ackedAtKill} of 400 acknowledged)`);

  const finished = await done;
  const { rows } = await checkStored(c, senders, { finished, what: 'node A killed' });
  assert.equal(rows.length, 400);
  for (const s of onA) {
    assert.ok(s.stats.disconnects >= 1, `${s.label} lost its connection to A: ${s.summary()}`);
    assert.equal(s.urlsUsed.at(-1), B.url, `${s.label} finished on node B: ${s.urlsUsed}`);
  }
  const byKey = new Map(rows.map((x) => [`${x.uid}\0${x.temp_id}`, x]));
  for (const [uid, acked] of ackedOnA) {
    for (const [tempId, fm] of acked) assert.equal(Number(byKey.get(`${uid}\0${tempId}`)?.id), fm.id, `${uid}/${tempId}, acknowledged by A before it died, is stored`);
  }
  await checkAgentSaw(agent, rows, { what: 'node A killed', diag: (missing) => deliveryDiag(c, missing) });
  for (const s of senders) if (!onA.includes(s)) s.close();
  movers.push(...onA);
  const resends = senders.reduce((n, s) => n + s.stats.resends, 0);
  assert.ok(onA.some((s) => s.stats.resends > 0), `A's visitors had messages in flight when it died, and re-sent them:\n${onA.map((s) => s.summary()).join('\n')}`);
  console.log(`# node kill: ${ackedAtKill} acknowledged at the kill, ${resends} re-sends`);
});

test('presence after node A died: its visitors are online on B, and offline once they leave B', { timeout: t(40000) }, async () => {
  const { B } = c.nodes;
  const pid = c.projectId;
  assert.ok(movers.length > 0, 'the previous test left the visitors that moved to B');
  const convs = new Map();
  for (const s of movers) {
    const fm = s.acked.values().next().value;
    convs.set(s.uid, fm.conversationId);
    const cv = ok(await api({ url: B.url }, 'GET', convPath(pid, fm.conversationId), { token }));
    assert.equal(cv.visitor.isOnline, true, `${s.uid} is online (connected to B)`);
  }
  // only what comes after they leave counts
  for (const e of agent.log) if (e.event === 'visitorStatusChanged') e.used = true;
  for (const s of movers) s.close();
  // each of them goes offline: the event to the room and the HTTP API agree
  // A's heartbeat lives 15 s after its death, and a sweep runs every 5 s
  const deadline = Math.max(Date.now() + t(5000), killedAt + 15000 + 5000 + t(3000));
  for (const s of movers) {
    await agent.next('visitorStatusChanged', { pred: (p) => p?.visitorUid === s.uid && p.isOnline === false, timeoutMs: Math.max(1, deadline - Date.now()) });
  }
  for (const s of movers) {
    const cv = ok(await api({ url: B.url }, 'GET', convPath(pid, convs.get(s.uid)), { token }));
    assert.equal(cv.visitor.isOnline, false, `${s.uid} is offline once its socket on B is closed`);
  }
  await sleep(10);
  agent.close();
});
