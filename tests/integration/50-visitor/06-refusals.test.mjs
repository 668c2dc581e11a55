// Refusing an event (PROTOCOL.md section 5, codes and limits from protocol-decisions.md): with an
// ack the answer is exactly {error: {code, message}}, without one the socket gets `exception`
// {status: "error", code, message, event, tempId?}; never both. not_identified (sendMessage
// before identify), invalid_payload (wrong types, missing fields, empty or malformed values,
// unknown events with "Unknown event"), too_large (every string and object over its limit, with
// the limits themselves accepted), forbidden (agent events on a visitor socket and visitor
// events on an agent socket). A refused event stores nothing and never costs the connection.
// (rate_limited: 07-rate-limits; unavailable needs a dependency that is down, which the embedded
// backends do not have.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, connectVisitor, identify, visitor, newUid, newTempId, sendOk, sql,
  messageRows, visitorRow, agentToken, connectAgent, assertRefusedBoth, assertAckRefusal,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Refusals', domains: ['localhost'] }],
    agents: [{ email: 'agent@refusals.test' }],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000', '--typing-per-second', '100000'],
  });
});
after(() => teardown(ctx));

// After refusals: never disconnected, no stray exception, and a valid message goes through.
async function stillUsable(v) {
  assert.equal(v.disconnects.length, 0, `${v.label}: the refusals did not cost the connection`);
  assert.ok(v.connected);
  await v.none('exception', { ms: t(200), why: '(an ack refusal must not also emit exception)' });
  const fm = await sendOk(v, 'still usable');
  assert.equal(fm.content, 'still usable');
}

test('sendMessage before identify: not_identified (with the tempId), nothing stored', { timeout: t(20000) }, async () => {
  const c = await connectVisitor(ctx);
  const tempId = newTempId('early');
  await assertRefusedBoth(c, 'sendMessage', { content: 'too early', tempId }, 'not_identified', { tempId });
  const rows = await sql(ctx.dataDir, `select count(*) as n from messages where temp_id='${tempId}'`);
  assert.equal(rows[0].n, 0);
  await identify(c, { projectId: 1, uid: newUid() });
  await stillUsable(c);
  c.close();
});

test('identify payload refusals: invalid_payload, too_large; the limits themselves pass', { timeout: t(30000) }, async () => {
  const c = await connectVisitor(ctx);
  const uid = newUid();
  const rows = [
    [{}, 'invalid_payload'],
    [{ projectId: 1 }, 'invalid_payload'],
    [{ visitorUid: uid }, 'invalid_payload'],
    [{ projectId: '1', visitorUid: uid }, 'invalid_payload'],
    [{ projectId: 1.5, visitorUid: uid }, 'invalid_payload'],
    [{ projectId: null, visitorUid: uid }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 12345678 }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: null }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: '' }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 'abcdefg' }, 'invalid_payload'], // 7 characters
    [{ projectId: 1, visitorUid: 'has space' }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 'dots.not.ok' }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 'ünïcödé-uid' }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 'semi;colon' }, 'invalid_payload'],
    [{ projectId: 1, visitorUid: 'x'.repeat(65) }, 'too_large'],
    [{ projectId: 1, visitorUid: 'x'.repeat(100000) }, 'too_large'],
    ['just a string', 'invalid_payload'],
    [[1, 'abcdefgh'], 'invalid_payload'],
    [42, 'invalid_payload'],
    [null, 'invalid_payload'],
  ];
  for (const [payload, code] of rows) await assertRefusedBoth(c, 'identify', payload, code);
  await c.none('conversationHistory', { ms: t(100), why: '(refused identify)' });
  for (const bad of ['abcdefg', 'x'.repeat(65)]) assert.equal(await visitorRow(ctx.dataDir, 1, bad), undefined);
  // the boundaries pass (one identity per socket: a fresh socket for each)
  for (const ok of ['abcdefgh', 'A'.repeat(64), 'aZ09_-aZ09_-', '--------', '________']) {
    const v = await connectVisitor(ctx, { label: `uid ${ok.length}` });
    assert.deepEqual(await identify(v, { projectId: 1, uid: ok }), []);
    v.close();
  }
  // and the refused socket is still usable
  await identify(c, { projectId: 1, uid });
  await stillUsable(c);
  c.close();
});

test('sendMessage payload refusals: invalid_payload and too_large, nothing stored', { timeout: t(60000) }, async () => {
  const v = await visitor(ctx);
  const tid = () => newTempId('bad');
  const cases = [
    // [what, payload builder(tempId), code, exception carries the tempId]
    ['no content', (id) => ({ tempId: id }), 'invalid_payload', true],
    ['empty content', (id) => ({ content: '', tempId: id }), 'invalid_payload', true],
    ['whitespace-only content', (id) => ({ content: ' \n\t  \r\n ', tempId: id }), 'invalid_payload', true],
    ['content a number', (id) => ({ content: 123, tempId: id }), 'invalid_payload', true],
    ['content null', (id) => ({ content: null, tempId: id }), 'invalid_payload', true],
    ['content an array', (id) => ({ content: ['hi'], tempId: id }), 'invalid_payload', true],
    ['content an object', (id) => ({ content: { text: 'hi' }, tempId: id }), 'invalid_payload', true],
    ['no tempId', () => ({ content: 'hello' }), 'invalid_payload', false],
    ['empty tempId', () => ({ content: 'hello', tempId: '' }), 'invalid_payload', false],
    ['tempId a number', () => ({ content: 'hello', tempId: 5 }), 'invalid_payload', false],
    ['sessionMetadata a string', (id) => ({ content: 'hello', tempId: id, sessionMetadata: 'meta' }), 'invalid_payload', true],
    ['sessionMetadata an array', (id) => ({ content: 'hello', tempId: id, sessionMetadata: [1, 2] }), 'invalid_payload', true],
    ['sessionMetadata a number', (id) => ({ content: 'hello', tempId: id, sessionMetadata: 7 }), 'invalid_payload', true],
    ['payload a string', () => 'hello', 'invalid_payload', false],
    ['payload an array', (id) => ['hello', id], 'invalid_payload', false],
    ['payload null', () => null, 'invalid_payload', false],
    ['content 5001 characters', (id) => ({ content: 'a'.repeat(5001), tempId: id }), 'too_large', true],
    ['content 5001 code points (emoji)', (id) => ({ content: '😀'.repeat(5001), tempId: id }), 'too_large', true],
    ['content 5001 characters inside padding', (id) => ({ content: ` ${'c'.repeat(5001)} `, tempId: id }), 'too_large', true],
    ['content 500,000 characters', (id) => ({ content: 'd'.repeat(500000), tempId: id }), 'too_large', true],
    ['tempId 65 characters', () => ({ content: 'hello', tempId: 't'.repeat(65) }), 'too_large', false],
    ['sessionMetadata over 16 KiB', (id) => ({ content: 'hello', tempId: id, sessionMetadata: { b: 'x'.repeat(16377) } }), 'too_large', true],
    ['sessionMetadata far over 16 KiB', (id) => ({ content: 'hello', tempId: id, sessionMetadata: { list: Array.from({ length: 5000 }, (_, i) => ({ i })) } }), 'too_large', true],
  ];
  for (const [what, build, code, withTempId] of cases) {
    const id = tid();
    const payload = build(id);
    const res = await v.ack('sendMessage', payload);
    assertAckRefusal(res, code, `${what} (ack)`);
    v.emit('sendMessage', payload);
    const ex = await v.next('exception', { timeoutMs: t(5000) });
    assert.equal(ex.status, 'error', what);
    assert.equal(ex.code, code, `${what}: exception.code (${ex.message})`);
    assert.equal(ex.event, 'sendMessage', `${what}: exception.event`);
    assert.equal(typeof ex.message, 'string');
    if (withTempId) assert.equal(ex.tempId, id, `${what}: exception.tempId`);
  }
  assert.equal((await messageRows(ctx.dataDir, 1, v.uid)).length, 0, 'nothing stored');
  await v.none('messageSent', { ms: t(100), why: '(refused)' });
  await stillUsable(v);
  v.close();
});

test('sendMessage limits themselves pass: 64-character tempId, 16 KiB sessionMetadata', { timeout: t(20000) }, async () => {
  const v = await visitor(ctx);
  const tempId = 'T'.repeat(64);
  const fm = await sendOk(v, 'long tempId', { tempId });
  assert.equal(fm.content, 'long tempId');
  const meta = { b: 'x'.repeat(16384 - '{"b":""}'.length) };
  assert.equal(JSON.stringify(meta).length, 16384);
  const w = await visitor(ctx);
  const fm2 = await sendOk(w, 'exactly 16 KiB of metadata', { sessionMetadata: meta });
  const [conv] = await sql(ctx.dataDir, `select metadata from conversations where id=${fm2.conversationId}`);
  assert.deepEqual(JSON.parse(conv.metadata), meta);
  v.close();
  w.close();
});

test('unknown events: invalid_payload "Unknown event", on visitor and agent sockets', { timeout: t(20000) }, async () => {
  const v = await visitor(ctx);
  const a = await connectAgent(ctx, await agentToken(ctx.dataDir, 'agent@refusals.test'));
  for (const c of [v, a]) {
    for (const event of ['hello', 'sendmessage', 'SendMessage', 'agentIsTyping', 'messageSent', 'exception', '', 'x'.repeat(300)]) {
      const { err, ex } = await assertRefusedBoth(c, event, { any: 1 }, 'invalid_payload');
      assert.equal(err.message, 'Unknown event', `ack message for ${event.slice(0, 20)}`);
      assert.equal(ex.message, 'Unknown event', `exception message for ${event.slice(0, 20)}`);
    }
    assert.equal(c.disconnects.length, 0);
  }
  await stillUsable(v);
  v.close();
  a.close();
});

test('forbidden: agent events on a visitor socket, visitor events on an agent socket', { timeout: t(30000) }, async () => {
  const v = await visitor(ctx);
  await assertRefusedBoth(v, 'joinProjectRoom', { projectId: 1 }, 'forbidden');
  await assertRefusedBoth(v, 'leaveProjectRoom', { projectId: 1 }, 'forbidden');
  // an unidentified visitor socket too
  const u = await connectVisitor(ctx);
  await assertRefusedBoth(u, 'joinProjectRoom', { projectId: 1 }, 'forbidden');

  const a = await connectAgent(ctx, await agentToken(ctx.dataDir, 'agent@refusals.test'));
  const uid = newUid();
  await assertRefusedBoth(a, 'identify', { projectId: 1, visitorUid: uid }, 'forbidden');
  const tempId = newTempId();
  await assertRefusedBoth(a, 'sendMessage', { content: 'agent pretending', tempId }, 'forbidden');
  await assertRefusedBoth(a, 'visitorIsTyping', { isTyping: true }, 'forbidden');
  await assertRefusedBoth(a, 'updateContext', { currentUrl: 'http://localhost/' }, 'forbidden');
  assert.equal(await visitorRow(ctx.dataDir, 1, uid), undefined, 'no visitor created from an agent socket');
  const rows = await sql(ctx.dataDir, `select count(*) as n from messages where temp_id='${tempId}'`);
  assert.equal(rows[0].n, 0);
  // the agent socket still works: it can join its room
  assert.deepEqual(await a.ack('joinProjectRoom', { projectId: 1 }), { status: 'ok', roomName: 'project:1' });
  await a.none('exception', { ms: t(100) });
  await stillUsable(v);
  v.close();
  u.close();
  a.close();
});

test('many refusals in a row never cost the connection', { timeout: t(30000) }, async () => {
  const v = await visitor(ctx);
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => v.ack('sendMessage', { content: '', tempId: `r${i}` })));
  for (const res of answers) assertAckRefusal(res, 'invalid_payload', 'empty content');
  await stillUsable(v);
  v.close();
});
