// Durability (DESIGN.md "Guarantees", PROTOCOL.md section 3): 20 visitors each send 30 messages
// (a few in flight at a time, as a widget does) while the server is killed with SIGKILL — once a
// third of the messages are acknowledged, and again at two thirds — and restarted on the same port
// and data directory. The clients reconnect by themselves, identify again and re-send every
// message they have no acknowledgement for, with the same tempId. Afterwards: every message is
// acknowledged, every acknowledged message is in the database exactly once with the id it was
// acknowledged with (a retry of a committed message returns the original), no (visitor, tempId)
// is stored twice, and each visitor's conversation is consistent (one conversation, unread
// count = messages, last-message time = newest message).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { startServer, assertNoSanitizerReport } from '../lib/server.mjs';
import { setup, teardown, t, sleep, waitUntil, ORIGIN, newUid, sql } from './helpers.mjs';

const V = 20; // visitors
const M = 30; // messages each
const WINDOW = 3; // unacknowledged messages a visitor keeps in flight
const KILL_AT = [Math.round((V * M) / 3), Math.round((2 * V * M) / 3)];

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Durable', domains: ['localhost'] }],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
});
after(() => teardown(ctx));

// One widget: identifies on every (re)connect, then re-sends everything unacknowledged with the
// same tempId, and keeps up to WINDOW messages in flight.
class Widget {
  constructor(url, uid, onFirstAck) {
    this.uid = uid;
    this.onFirstAck = onFirstAck;
    this.contents = new Map(); // tempId → content, in sending order
    this.pending = new Set(); // sent (maybe again), not acknowledged
    this.acked = new Map(); // tempId → finalMessage of the first acknowledgement
    this.next = 0;
    this.ready = false;
    this.epoch = 0;
    this.sends = 0;
    this.resends = 0;
    this.connects = 0;
    this.errors = [];
    this.socket = io(url, {
      forceNew: true,
      transports: ['websocket'],
      query: { projectId: 1 },
      extraHeaders: { Origin: ORIGIN },
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      timeout: t(5000),
    });
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('disconnect', () => {
      this.ready = false;
      this.epoch += 1;
    });
    this.socket.on('messageSent', (p) => this.onAck(p?.tempId, p?.finalMessage, 'messageSent'));
    this.socket.on('exception', (p) => this.errors.push(`exception ${JSON.stringify(p)}`));
  }

  async onConnect() {
    this.connects += 1;
    this.epoch += 1;
    const epoch = this.epoch;
    let res;
    try {
      res = await this.socket.timeout(t(5000)).emitWithAck('identify', { projectId: 1, visitorUid: this.uid });
    } catch {
      return; // disconnected again or no answer: the next connect identifies again
    }
    if (epoch !== this.epoch || !this.socket.connected) return;
    if (!res || res.error || !Array.isArray(res.messages)) {
      this.errors.push(`identify answered ${JSON.stringify(res)}`);
      return;
    }
    this.ready = true;
    for (const tempId of this.pending) {
      this.resends += 1;
      this.emitMessage(tempId);
    }
    this.pump();
  }

  pump() {
    while (this.ready && this.pending.size < WINDOW && this.next < M) {
      const tempId = `${this.uid}-${this.next}`;
      this.contents.set(tempId, `message ${this.next} of ${this.uid}`);
      this.next += 1;
      this.pending.add(tempId);
      this.emitMessage(tempId);
    }
  }

  emitMessage(tempId) {
    this.sends += 1;
    const epoch = this.epoch;
    this.socket.timeout(t(10000)).emit('sendMessage', { content: this.contents.get(tempId), tempId }, (err, res) => {
      if (err) {
        // no answer: after a disconnect the next identify re-sends it; on a live connection
        // that did not answer in time, re-send now (same tempId: at most one row)
        if (this.ready && epoch === this.epoch && this.pending.has(tempId)) this.emitMessage(tempId);
        return;
      }
      if (res?.error) {
        if (res.error.code === 'unavailable') {
          setTimeout(() => {
            if (this.ready && this.pending.has(tempId)) this.emitMessage(tempId);
          }, 200);
        } else {
          this.errors.push(`sendMessage ${tempId} refused: ${JSON.stringify(res)}`);
        }
        return;
      }
      this.onAck(res?.tempId, res?.finalMessage, 'ack');
    });
  }

  onAck(tempId, fm, how) {
    if (!this.contents.has(tempId)) {
      this.errors.push(`${how} for a tempId never sent: ${JSON.stringify(tempId)}`);
      return;
    }
    if (!fm || !Number.isSafeInteger(fm.id) || fm.content !== this.contents.get(tempId)) {
      this.errors.push(`${how} for ${tempId} with a wrong finalMessage: ${JSON.stringify(fm)}`);
      return;
    }
    const first = this.acked.get(tempId);
    if (first) {
      if (first.id !== fm.id) this.errors.push(`${tempId} acknowledged as message ${first.id} and as ${fm.id}`);
    } else {
      this.acked.set(tempId, fm);
      this.onFirstAck();
    }
    this.pending.delete(tempId);
    this.pump();
  }

  close() {
    this.socket.io.reconnection(false);
    this.socket.disconnect();
  }
}

async function restart(old) {
  // the same port (the clients reconnect to it) and data directory
  let lastErr;
  for (let i = 0; i < 20; i++) {
    try {
      return await startServer({ dataDir: old.dataDir, webRoot: old.webRoot, port: old.port, args: ctx.args, startTimeoutMs: t(10000) });
    } catch (e) {
      lastErr = e; // the port may still be held for a moment
      await sleep(250);
    }
  }
  throw lastErr;
}

test(`${V} visitors × ${M} messages across SIGKILL and restart: every acknowledged message stored exactly once`, { timeout: t(240000) }, async (tc) => {
  let acked = 0;
  let killing = null;
  const kills = [];
  const widgets = [];
  const onFirstAck = () => {
    acked += 1;
    if (!killing && kills.length < KILL_AT.length && acked >= KILL_AT[kills.length]) {
      const pendingAtKill = widgets.reduce((n, w) => n + w.pending.size, 0);
      const ackedAtKill = acked;
      killing = ctx.srv.kill('SIGKILL').then(() => {
        kills.push({ ackedAtKill, pendingAtKill });
      });
    }
  };
  for (let i = 0; i < V; i++) widgets.push(new Widget(ctx.url, newUid(`d${i}`), onFirstAck));
  const progress = () => widgets.map((w) => `${w.uid}: acked ${w.acked.size} pending ${[...w.pending].join(',')} connected ${w.socket.connected} ready ${w.ready} connects ${w.connects} errors ${w.errors.length}`).join('\n');

  try {
    for (let k = 0; k < KILL_AT.length; k++) {
      await waitUntil(() => killing !== null, { timeoutMs: t(60000), label: `${KILL_AT[k]} messages acknowledged (kill ${k + 1})` }).catch((e) => {
        throw new Error(`${e.message}\n${progress()}`);
      });
      await killing;
      assertNoSanitizerReport(ctx.srv.stderr(), 'parley serve before SIGKILL');
      await waitUntil(() => widgets.every((w) => !w.socket.connected), { timeoutMs: t(10000), label: 'every client saw the server go' });
      ctx.srv = await restart(ctx.srv);
      killing = null;
    }
    await waitUntil(() => widgets.every((w) => w.acked.size === M), { timeoutMs: t(120000), label: 'every message acknowledged' }).catch((e) => {
      throw new Error(`${e.message}\n${progress()}`);
    });
  } finally {
    for (const w of widgets) w.close();
  }

  tc.diagnostic(`kills: ${JSON.stringify(kills)}; sends ${widgets.reduce((n, w) => n + w.sends, 0)}, re-sends after reconnect ${widgets.reduce((n, w) => n + w.resends, 0)}, connects ${widgets.reduce((n, w) => n + w.connects, 0)}`);
  const errors = widgets.flatMap((w) => w.errors.map((e) => `${w.uid}: ${e}`));
  assert.deepEqual(errors, [], 'no client saw a refusal or an inconsistent acknowledgement');
  assert.equal(kills.length, 2, 'the server was killed twice');
  for (const k of kills) assert.ok(k.pendingAtKill > 0, `messages were in flight at the kill (${JSON.stringify(k)})`);
  assert.ok(widgets.reduce((n, w) => n + w.resends, 0) > 0, 'some messages were re-sent after a reconnect');

  // the database, read directly (sqlite3, or psql in scale mode)
  const rows = await sql(ctx.dataDir, `select m.id, m.temp_id, m.content, m.conversation_id, m.created_at, v.uid
    from messages m join visitors v on v.id = m.visitor_id where m.project_id = 1`);
  const byKey = new Map();
  for (const r of rows) {
    const key = `${r.uid}\n${r.temp_id}`;
    assert.ok(!byKey.has(key), `stored twice: ${r.uid} ${r.temp_id}`);
    byKey.set(key, r);
  }
  for (const w of widgets) {
    for (const [tempId, fm] of w.acked) {
      const r = byKey.get(`${w.uid}\n${tempId}`);
      assert.ok(r, `acknowledged message ${tempId} (id ${fm.id}) is in the database`);
      assert.equal(r.id, fm.id, `${tempId}: stored under the id it was acknowledged with`);
      assert.equal(r.content, w.contents.get(tempId));
      assert.equal(r.conversation_id, fm.conversationId);
      assert.equal(r.created_at, Date.parse(fm.createdAt));
    }
  }
  assert.equal(rows.length, V * M, 'exactly the messages sent, no more');
  const [dup] = await sql(ctx.dataDir, `select count(*) as n,
    (select count(*) from (select distinct visitor_id, temp_id from messages) as pairs) as d from messages`);
  assert.equal(dup.n, dup.d, 'count(*) = count(distinct visitor_id, temp_id)');

  // each visitor: one row, one conversation holding its M messages, with consistent counters
  const visitors = await sql(ctx.dataDir, 'select id, uid from visitors where project_id = 1');
  assert.equal(visitors.length, V, 'one visitor row per visitor');
  const convs = await sql(ctx.dataDir, `select c.id, c.status, c.unread_count, c.last_message_timestamp, v.uid,
    (select count(*) from messages m where m.conversation_id = c.id) as n,
    (select max(created_at) from messages m where m.conversation_id = c.id) as newest
    from conversations c join visitors v on v.id = c.visitor_id where c.project_id = 1`);
  assert.equal(convs.length, V, 'one conversation per visitor');
  for (const c of convs) {
    assert.equal(c.n, M, `${c.uid}: ${M} messages in the conversation`);
    assert.equal(c.unread_count, M, `${c.uid}: unread_count counts every message once`);
    assert.equal(c.last_message_timestamp, c.newest, `${c.uid}: last_message_timestamp is the newest message's`);
    assert.equal(c.status, 'open');
  }
});
