// Fault: PostgreSQL restarts during a burst (issue 7). Nodes A and B (`--worker false`) and one
// worker share one database; PostgreSQL is crashed (scripts/pg.sh kill: an immediate shutdown)
// while 20 visitors x 20 messages are being sent, stays away for 2 s, and is started again on
// the same port (scripts/pg.sh start). Visitors re-send like the widget: the same tempId after an
// `unavailable` refusal, an ack timeout or a reconnect.
// What it checks:
//   - during the outage every node's /health answers 503 {"status":"unavailable"}, and after it
//     200 {"status":"ok"} again, without restarting anything;
//   - against the database: every message is acknowledged in the end, every acknowledged tempId
//     is stored exactly once as the message its ack announced (nothing acknowledged before the
//     crash was lost: an ack comes only after the commit), no (visitor, tempId) twice (the
//     GROUP BY ... HAVING count(*) > 1 query is empty), unread counts count each message once;
//   - every stored message reached the agent in the room on node B;
//   - the agents' HTTP API works again after the outage (the inbox lists the burst's
//     conversations), and a new visitor is served end to end on each node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster, agentOn, visitorOn, WidgetSender, runSenders, untilAcked, checkStored, checkAgentSaw,
  untilHealth, isUp, isDown, deliveryDiag, sleep, t,
} from './cluster.mjs';
import { api, ok, sendOk } from '../60-agent/helpers.mjs';

let c;
const AGENT = { email: 'alice@pg.test', name: 'Alice Agent' };
before(async () => {
  c = await startCluster({ name: 'faults_postgres', agents: [AGENT], workers: ['w1'], visibilityMs: 2000 });
});
after(() => c?.stop());

test('PostgreSQL restarts during a burst: nothing acknowledged lost or doubled, everything recovers by itself', { timeout: t(60000) }, async () => {
  const { A, B } = c.nodes;
  const pid = c.projectId;
  const token = await c.token(AGENT.email);
  const agent = await agentOn(B, token, pid, 'agent@B');
  for (const n of [A, B]) await untilHealth(n, isUp, { what: 'healthy before the outage' });
  const senders = [];
  for (let i = 0; i < 20; i++) senders.push(new WidgetSender({ urls: i % 2 ? [B.url, A.url] : [A.url, B.url], projectId: pid, count: 20, window: 5, intervalMs: 150, ackTimeoutMs: t(3000) }));
  const done = runSenders(senders, t(45000));

  await untilAcked(senders, 60);
  const ackedBefore = new Map(senders.map((s) => [s.uid, new Map(s.acked)]));
  await c.pg.kill();
  const downAt = Date.now();
  const ackedAtKill = senders.reduce((n, s) => n + s.acked.size, 0);
  assert.ok(ackedAtKill < 400, `the outage came during the burst (${ackedAtKill} of 400 acknowledged)`);
  for (const n of [A, B]) await untilHealth(n, isDown, { timeoutMs: t(5000), what: '503 unavailable while PostgreSQL is down' });
  await sleep(Math.max(0, 2000 - (Date.now() - downAt)));
  await c.pg.start();
  for (const n of [A, B]) await untilHealth(n, isUp, { timeoutMs: t(15000), what: 'healthy again after PostgreSQL came back' });

  const finished = await done;
  const { rows } = await checkStored(c, senders, { finished, what: 'PostgreSQL restarted' });
  assert.equal(rows.length, 400);
  // what was acknowledged before the crash is there, unchanged
  const byKey = new Map(rows.map((r) => [`${r.uid}\0${r.temp_id}`, r]));
  for (const [uid, acked] of ackedBefore) {
    for (const [tempId, fm] of acked) assert.equal(Number(byKey.get(`${uid}\0${tempId}`)?.id), fm.id, `${uid}/${tempId}, acknowledged before the crash, survived it`);
  }
  await checkAgentSaw(agent, rows, { what: 'PostgreSQL restarted', diag: (missing) => deliveryDiag(c, missing) });

  // the HTTP API and new visitors work again
  const list = ok(await api({ url: A.url }, 'GET', `/projects/${pid}/inbox/conversations?limit=100`, { token }));
  const listed = new Set(list.data.map((x) => x.visitor?.uid));
  for (const s of senders) assert.ok(listed.has(s.uid), `the inbox lists ${s.uid}'s conversation`);
  for (const n of [A, B]) {
    const v = await visitorOn(n, { projectId: pid });
    const fm = await sendOk(v, `after the outage on ${n.nodeId}`, { timeoutMs: t(8000) });
    assert.equal((await agent.next('newMessage', { pred: (p) => p?.id === fm.id, timeoutMs: t(5000) })).content, fm.content);
    v.close();
  }
  for (const s of senders) s.close();
  agent.close();
  const resends = senders.reduce((n, s) => n + s.stats.resends, 0);
  const dead = await c.redis.command('XLEN', 'live-chat-events-queue:dead');
  console.log(`# postgres restart: ${ackedAtKill} acknowledged at the kill, ${resends} re-sends, ${dead} entries dead-lettered`);
  // An outage is not a failure of the messages: the workers wait for the store instead of
  // spending the jobs' attempts, so nothing lands in the dead-letter stream.
  assert.equal(dead, 0, 'no queue entry dead-lettered because PostgreSQL was down for 2 s');
});
