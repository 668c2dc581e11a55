// Fault: the worker is killed with SIGKILL during a burst (issue 7). Nodes A and B (`--worker
// false`), one worker w1, the queue's visibility timeout set to 2 s (--queue-visibility-timeout).
// 20 visitors x 20 messages, half on each node, re-sending like the widget (same tempId after an
// `unavailable` refusal, an ack timeout or a reconnect). w1 is frozen (SIGSTOP) at a moment when
// it holds entries it has read but not finished, those entries are recorded (XPENDING + XRANGE),
// then it is killed with SIGKILL; a new worker w2 starts half a second later. The visitors' ack
// timeout (8 s) is longer than it takes w2 to take the entries over.
// What it checks, against the database and Redis:
//   - every message is acknowledged in the end, and every acknowledged tempId is stored exactly
//     once as the message its ack announced; no (visitor, tempId) is stored twice (the GROUP BY
//     ... HAVING count(*) > 1 query is empty); each visitor's unread count counts each once;
//   - the entries w1 held when it died are picked up by w2: their messages are stored once and
//     acknowledged to the visitor without a re-send, the group has no pending entry left (w2
//     claimed and finished them), nothing was dead-lettered;
//   - every stored message reached the agent in the room on node B (a commit whose publication
//     died with w1 is published anyway: the transactional outbox, whose orphans a worker
//     re-publishes once they are 10 s old).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startCluster, agentOn, WidgetSender, runSenders, untilAcked, checkStored, checkAgentSaw,
  streamGroups, pendingEntries, streamEntry, STREAM, deliveryDiag, sleep, t, logLines,
} from './cluster.mjs';

let c;
const AGENT = { email: 'alice@worker.test', name: 'Alice Agent' };
before(async () => {
  c = await startCluster({ name: 'faults_worker', agents: [AGENT], workers: ['w1'], visibilityMs: 2000 });
});
after(() => c?.stop());

// Freezes the worker at a moment when it holds pending entries; → those entries (with the
// visitorUid and tempId of each job). Bounded: 400 tries.
async function freezeHoldingEntries(w, group) {
  for (let i = 0; i < 400; i++) {
    process.kill(w.pid, 'SIGSTOP');
    const held = (await pendingEntries(c.redis, group)).filter((e) => e.consumer !== 'parley-retry');
    if (held.length > 0) {
      for (const e of held) {
        const entry = await streamEntry(c.redis, e.id);
        // the job: {"p": projectId, "u": visitorUid, "t": tempId, "c": content, ...}
        e.uid = entry?.json?.u;
        e.tempId = entry?.json?.t;
      }
      return held;
    }
    process.kill(w.pid, 'SIGCONT');
    await sleep(3);
  }
  assert.fail('the worker never held a pending entry during the burst');
  return [];
}

test('SIGKILL of the worker during a burst: nothing acknowledged lost or doubled, its pending entries picked up by a new worker', { timeout: t(60000) }, async () => {
  const { A, B } = c.nodes;
  const pid = c.projectId;
  const agent = await agentOn(B, await c.token(AGENT.email), pid, 'agent@B');
  const senders = [];
  for (let i = 0; i < 20; i++) senders.push(new WidgetSender({ urls: i % 2 ? [B.url, A.url] : [A.url, B.url], projectId: pid, count: 20, window: 5, intervalMs: 150, ackTimeoutMs: t(8000) }));
  const done = runSenders(senders, t(40000));

  await untilAcked(senders, 60);
  const groups = await streamGroups(c.redis);
  assert.equal(groups.length, 1, `one consumer group on ${STREAM}: ${JSON.stringify(groups)}`);
  const group = groups[0].name;
  const w1 = c.worker('w1');
  const held = await freezeHoldingEntries(w1, group);
  const ackedAtKill = senders.reduce((n, s) => n + s.acked.size, 0);
  const consumers = new Set(held.map((e) => e.consumer));
  const r = await w1.kill('SIGKILL');
  const killedAt = Date.now();
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(ackedAtKill < 400, `the kill came during the burst (${ackedAtKill} of 400 acknowledged)`);

  await sleep(500); // no worker at all for a moment: messages wait in the stream
  const w2 = await c.startWorker('w2');

  const finished = await done;
  const { rows } = await checkStored(c, senders, { finished, what: 'worker killed' });
  assert.equal(rows.length, 400);

  // the entries w1 held: stored once (checkStored), and no longer pending anywhere
  const stored = new Set(rows.map((x) => `${x.uid}\0${x.temp_id}`));
  for (const e of held) {
    assert.ok(typeof e.uid === 'string' && typeof e.tempId === 'string', `the entry ${e.id} w1 held is a job naming a visitor and a tempId`);
    assert.ok(stored.has(`${e.uid}\0${e.tempId}`), `the entry ${e.id} w1 held (${e.uid}/${e.tempId}) is stored`);
  }
  // ... and acknowledged by w2 without the visitor sending them again (the ack timeout, 8 s, is
  // longer than w2's start plus the 2 s visibility timeout)
  for (const e of held) {
    const s = senders.find((x) => x.uid === e.uid);
    assert.ok(s?.acked.has(e.tempId), `${e.uid}/${e.tempId} (held by w1) was acknowledged`);
    assert.equal(s.sendCounts.get(e.tempId), 1, `${e.uid}/${e.tempId} (held by w1) was acknowledged without a re-send: ${s.summary()}`);
  }
  let left;
  const until = Date.now() + t(15000);
  do {
    left = await pendingEntries(c.redis, group);
    if (left.length === 0) break;
    await sleep(100);
  } while (Date.now() < until);
  assert.deepEqual(left, [], `every pending entry was picked up and finished (w1 held ${held.length}: ${JSON.stringify(held.slice(0, 5))}; consumers ${[...consumers]})\nw2 log:\n${logLines(w2.stderr(), /queue|claim|worker|error|warn/i)}`);
  const dead = await c.redis.command('XLEN', `${STREAM}:dead`);
  assert.equal(dead, 0, 'nothing was dead-lettered because a worker died');

  // every stored message reached the agent on node B; a delivery w1 committed but did not
  // publish is an outbox orphan, re-published once 10 s old by a scan every 5 s
  const waitMs = Math.max(t(10000), killedAt + 10000 + 5000 + t(3000) - Date.now());
  await checkAgentSaw(agent, rows, { what: 'worker killed', timeoutMs: waitMs, diag: (missing) => deliveryDiag(c, missing) });
  for (const s of senders) s.close();
  agent.close();
  // diagnostic: how the burst went
  const resends = senders.reduce((n, s) => n + s.stats.resends, 0);
  const timeouts = senders.reduce((n, s) => n + s.stats.timeouts, 0);
  console.log(`# worker kill: w1 held ${held.length} entries, ${ackedAtKill} acknowledged at the kill, ${resends} re-sends, ${timeouts} ack timeouts`);
});
