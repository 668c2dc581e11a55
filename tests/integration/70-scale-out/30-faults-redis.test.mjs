// Fault: Redis restarts during a burst (issue 7). Nodes A and B (`--worker false`) and one
// worker share one Redis, which is killed (SIGKILL) while 20 visitors x 20 messages are being
// sent, stays away for 2 s, and comes back on the same port EMPTY (no persistence: the stream,
// the consumer group, presence and the bus subscriptions are gone). Visitors re-send like the
// widget: the same tempId after an `unavailable` refusal, an ack timeout or a reconnect.
// What it checks:
//   - during the outage every node's /health answers 503 {"status":"unavailable"}, and after it
//     200 {"status":"ok"} again, without restarting anything;
//   - the burst was hit by the outage (some sends were refused `unavailable` or timed out);
//   - against the database: every message is acknowledged in the end, every acknowledged tempId
//     is stored exactly once as the message its ack announced, no (visitor, tempId) twice (the
//     GROUP BY ... HAVING count(*) > 1 query is empty), unread counts count each message once;
//   - every stored message reached the agent in the room on node B;
//   - after the outage a new visitor on each node is served end to end (identify, send, ack).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster, agentOn, visitorOn, WidgetSender, runSenders, untilAcked, checkStored, checkAgentSaw,
  untilHealth, isUp, isDown, deliveryDiag, sleep, t,
} from './cluster.mjs';
import { sendOk, assertWidgetMessage } from '../50-visitor/helpers.mjs';

let c;
const AGENT = { email: 'alice@redis.test', name: 'Alice Agent' };
before(async () => {
  c = await startCluster({ name: 'faults_redis', agents: [AGENT], workers: ['w1'], visibilityMs: 2000 });
});
after(() => c?.stop());

test('Redis restarts (empty) during a burst: nothing acknowledged lost or doubled, everything recovers by itself', { timeout: t(60000) }, async () => {
  const { A, B } = c.nodes;
  const pid = c.projectId;
  const agent = await agentOn(B, await c.token(AGENT.email), pid, 'agent@B');
  for (const n of [A, B]) await untilHealth(n, isUp, { what: 'healthy before the outage' });
  const senders = [];
  for (let i = 0; i < 20; i++) senders.push(new WidgetSender({ urls: i % 2 ? [B.url, A.url] : [A.url, B.url], projectId: pid, count: 20, window: 5, intervalMs: 150, ackTimeoutMs: t(3000) }));
  const done = runSenders(senders, t(45000));

  await untilAcked(senders, 60);
  await c.redis.kill();
  const downAt = Date.now();
  const ackedAtKill = senders.reduce((n, s) => n + s.acked.size, 0);
  assert.ok(ackedAtKill < 400, `the outage came during the burst (${ackedAtKill} of 400 acknowledged)`);
  for (const n of [A, B]) await untilHealth(n, isDown, { timeoutMs: t(5000), what: '503 unavailable while Redis is down' });
  await sleep(Math.max(0, 2000 - (Date.now() - downAt)));
  await c.redis.restart();
  for (const n of [A, B]) await untilHealth(n, isUp, { timeoutMs: t(15000), what: 'healthy again after Redis came back' });

  const finished = await done;
  const { rows } = await checkStored(c, senders, { finished, what: 'Redis restarted' });
  assert.equal(rows.length, 400);
  const hit = senders.reduce((n, s) => n + s.stats.unavailable + s.stats.timeouts, 0);
  assert.ok(hit > 0, `the outage hit the burst (some sends refused or timed out):\n${senders.map((s) => s.summary()).join('\n')}`);
  // (a delivery committed but not published during the outage stays in the outbox and is
  // re-published once 10 s old, by a scan every 5 s: wait for that too)
  const waitMs = Math.max(t(10000), downAt + 10000 + 5000 + t(3000) - Date.now());
  await checkAgentSaw(agent, rows, { what: 'Redis restarted', timeoutMs: waitMs, diag: (missing) => deliveryDiag(c, missing) });

  // served end to end on both nodes after the outage
  for (const n of [A, B]) {
    const v = await visitorOn(n, { projectId: pid });
    const fm = await sendOk(v, `after the outage on ${n.nodeId}`, { timeoutMs: t(8000) });
    assertWidgetMessage(fm, { content: `after the outage on ${n.nodeId}` });
    assert.equal((await agent.next('newMessage', { pred: (p) => p?.id === fm.id, timeoutMs: t(5000) })).content, fm.content);
    v.close();
  }
  for (const s of senders) s.close();
  agent.close();
  console.log(`# redis restart: ${ackedAtKill} acknowledged at the kill; ${senders.map((s) => JSON.stringify(s.stats)).slice(0, 2).join(' ')} ...`);
});
