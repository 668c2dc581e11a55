// Typing and context events (PROTOCOL.md section 3, protocol-decisions.md): `visitorIsTyping`
// {isTyping} reaches the room as {conversationId, visitorUid, isTyping} (conversationId null
// before the first message); `updateContext` {currentUrl} reaches it as {conversationId,
// visitorUid, currentUrl} and grows the open conversation's URL history, which stays bounded;
// nothing reaches another project's room; the refusals of these events (not identified, bad
// payloads, an URL over 2048 characters). Throttling is in 07-rate-limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, connectVisitor, visitor, sendOk, sql, agentInRoom, assertRefusedBoth,
} from './helpers.mjs';

let ctx;
let agent;
let otherAgent;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Typing', domains: ['localhost'] }, { name: 'Else', domains: ['localhost'] }],
    agents: [{ email: 'agent@typing.test', project: 0 }, { email: 'agent@else.test', project: 1 }],
    // throttling (2/s by default) is tested in 07; here every event must pass
    args: ['--typing-per-second', '100000', '--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
  agent = await agentInRoom(ctx, 0);
  otherAgent = await agentInRoom(ctx, 1);
});
after(() => teardown(ctx));

const of = (uid) => (p) => p && p.visitorUid === uid;

// The URLs in a conversation's url_history (entries are strings or objects with a url).
async function urlHistory(conversationId) {
  const [row] = await sql(ctx.dataDir, `select url_history from conversations where id=${conversationId}`);
  assert.ok(row, 'conversation exists');
  if (row.url_history === null) return [];
  const arr = JSON.parse(row.url_history);
  assert.ok(Array.isArray(arr), `url_history is a JSON array: ${row.url_history.slice(0, 200)}`);
  return arr.map((e) => (typeof e === 'string' ? e : e?.url ?? e?.currentUrl));
}

test('visitorIsTyping reaches the room: conversationId null before the first message, then the id', { timeout: t(20000) }, async () => {
  const v = await visitor(ctx);
  v.emit('visitorIsTyping', { isTyping: true });
  assert.deepEqual(await agent.next('visitorIsTyping', { pred: of(v.uid) }), { conversationId: null, visitorUid: v.uid, isTyping: true });
  v.emit('visitorIsTyping', { isTyping: false });
  assert.deepEqual(await agent.next('visitorIsTyping', { pred: of(v.uid) }), { conversationId: null, visitorUid: v.uid, isTyping: false });

  const fm = await sendOk(v, 'now there is a conversation');
  v.emit('visitorIsTyping', { isTyping: true });
  assert.deepEqual(await agent.next('visitorIsTyping', { pred: of(v.uid) }), { conversationId: fm.conversationId, visitorUid: v.uid, isTyping: true });

  await otherAgent.none('visitorIsTyping', { pred: of(v.uid), why: '(another project\'s room)' });
  await v.none('visitorIsTyping', { why: '(the visitor does not get its own typing)' });
  v.close();
});

test('updateContext reaches the room and grows the conversation\'s URL history', { timeout: t(20000) }, async () => {
  const v = await visitor(ctx);
  v.emit('updateContext', { currentUrl: 'http://localhost:3000/' });
  assert.deepEqual(await agent.next('visitorContextUpdated', { pred: of(v.uid) }),
    { conversationId: null, visitorUid: v.uid, currentUrl: 'http://localhost:3000/' });

  const fm = await sendOk(v, 'hi');
  const urls = ['http://localhost:3000/pricing', 'http://localhost:3000/docs?x=1&y=ü#top', 'http://localhost:3000/contact'];
  for (const u of urls) {
    v.emit('updateContext', { currentUrl: u });
    assert.deepEqual(await agent.next('visitorContextUpdated', { pred: of(v.uid) }),
      { conversationId: fm.conversationId, visitorUid: v.uid, currentUrl: u });
  }
  const hist = await urlHistory(fm.conversationId);
  assert.deepEqual(hist.slice(-3), urls, `the URL history ends with the URLs in order: ${JSON.stringify(hist)}`);
  await otherAgent.none('visitorContextUpdated', { pred: of(v.uid), why: '(another project\'s room)' });
  v.close();
});

test('a 2048-character URL is accepted; the URL history stays bounded', { timeout: t(60000) }, async () => {
  const v = await visitor(ctx);
  const fm = await sendOk(v, 'hello');
  const long = `http://localhost:3000/${'p'.repeat(2048 - 'http://localhost:3000/'.length)}`;
  assert.equal(long.length, 2048);
  v.emit('updateContext', { currentUrl: long });
  assert.equal((await agent.next('visitorContextUpdated', { pred: of(v.uid) })).currentUrl, long);

  const N = 200;
  let last;
  for (let i = 0; i < N; i++) {
    last = `http://localhost:3000/page/${i}/${'q'.repeat(1500)}`;
    v.emit('updateContext', { currentUrl: last });
  }
  for (let i = 0; i < N; i++) await agent.next('visitorContextUpdated', { pred: of(v.uid), timeoutMs: t(10000) });
  const hist = await urlHistory(fm.conversationId);
  assert.equal(hist[hist.length - 1], last, 'the newest URL is last');
  assert.ok(hist.length < N, `bounded: ${hist.length} entries after ${N + 1} updates`);
  v.close();
});

test('typing and context before identify: not_identified', { timeout: t(20000) }, async () => {
  const c = await connectVisitor(ctx);
  const typing = agent.all('visitorIsTyping').length;
  const context = agent.all('visitorContextUpdated').length;
  await assertRefusedBoth(c, 'visitorIsTyping', { isTyping: true }, 'not_identified');
  await assertRefusedBoth(c, 'updateContext', { currentUrl: 'http://localhost:3000/' }, 'not_identified');
  await sleep(t(300));
  assert.equal(agent.all('visitorIsTyping').length, typing, 'nothing reached the room');
  assert.equal(agent.all('visitorContextUpdated').length, context, 'nothing reached the room');
  c.close();
});

test('typing and context payload refusals, and the socket still works afterwards', { timeout: t(30000) }, async () => {
  const v = await visitor(ctx);
  const bad = [
    ['visitorIsTyping', { isTyping: 'yes' }, 'invalid_payload'],
    ['visitorIsTyping', { isTyping: 1 }, 'invalid_payload'],
    ['visitorIsTyping', {}, 'invalid_payload'],
    ['visitorIsTyping', 'typing', 'invalid_payload'],
    ['visitorIsTyping', [true], 'invalid_payload'],
    ['updateContext', {}, 'invalid_payload'],
    ['updateContext', { currentUrl: '' }, 'invalid_payload'],
    ['updateContext', { currentUrl: 42 }, 'invalid_payload'],
    ['updateContext', { currentUrl: null }, 'invalid_payload'],
    ['updateContext', { currentUrl: `http://localhost/${'x'.repeat(2049)}` }, 'too_large'],
    ['updateContext', { currentUrl: 'x'.repeat(2049) }, 'too_large'],
  ];
  for (const [event, payload, code] of bad) await assertRefusedBoth(v, event, payload, code);
  await agent.none('visitorIsTyping', { pred: of(v.uid), ms: t(200), why: '(refused)' });
  await agent.none('visitorContextUpdated', { pred: of(v.uid), ms: t(200), why: '(refused)' });
  v.emit('visitorIsTyping', { isTyping: true });
  assert.equal((await agent.next('visitorIsTyping', { pred: of(v.uid) })).isTyping, true);
  v.close();
});
