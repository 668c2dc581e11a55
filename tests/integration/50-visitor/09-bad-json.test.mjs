// The JSON limits of BAD-INPUTS.md (its last list) on the event payloads, sent as raw Socket.IO
// packets over a plain WebSocket (socket.io-client would normalise them): nesting deeper than
// 32, NUL in strings and keys, integers beyond 2^53 - 1, duplicate keys, lone UTF-16 surrogate
// escapes, and strings over their limits. Each is refused with its code (protocol-decisions.md:
// malformed values are invalid_payload, strings over a length limit too_large) as an ack
// refusal or an `exception`, nothing is stored, and the connection stays usable: a valid event
// right after it gets its answer. The values at the limits pass.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, newUid, newTempId, RawSio, assertAckRefusal, messageRows, visitorRow, sql, q,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Bad JSON', domains: ['localhost'] }],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000', '--typing-per-second', '100000'],
  });
});
after(() => teardown(ctx));

let ackSeq = 0;
const nextId = () => {
  ackSeq += 1;
  return ackSeq;
};

// A raw visitor socket, identified as uid.
async function rawVisitor(uid = newUid()) {
  const r = await RawSio.visitor(ctx.port, { projectId: 1, label: `raw ${uid}` });
  const id = nextId();
  r.sendEventRaw('identify', JSON.stringify({ projectId: 1, visitorUid: uid }), id);
  const ack = await r.nextAck(id);
  assert.ok(ack && Array.isArray(ack.messages), `identify answered: ${JSON.stringify(ack)}`);
  await r.nextEvent('conversationHistory');
  r.uid = uid;
  return r;
}

// Sends a valid sendMessage and expects its ack: the connection is still usable.
async function validSend(r, what) {
  const id = nextId();
  const tempId = newTempId('ok');
  r.sendEventRaw('sendMessage', JSON.stringify({ content: `valid after ${what}`.slice(0, 200), tempId }), id);
  const ack = await r.nextAck(id, { timeoutMs: t(8000) });
  assert.ok(ack && !ack.error, `${what}: a valid message right after is answered: ${JSON.stringify(ack)}`);
  assert.equal(ack.tempId, tempId);
  await r.nextEvent('messageSent', { pred: (p) => p?.tempId === tempId });
  return ack.finalMessage;
}

// `event` with the raw JSON text argsJson refused with code, with an ack and without one, the
// connection open and usable after each.
async function refusedRaw(r, event, argsJson, code, what) {
  const id = nextId();
  r.sendEventRaw(event, argsJson, id);
  assertAckRefusal(await r.nextAck(id, { timeoutMs: t(8000) }), code, `${what} (ack)`);
  assert.equal(r.closed, null, `${what}: the connection is still open`);
  await validSend(r, what);

  r.sendEventRaw(event, argsJson);
  const ex = await r.nextEvent('exception', { timeoutMs: t(8000) });
  assert.equal(ex?.status, 'error', `${what}: exception.status`);
  assert.equal(ex.code, code, `${what}: exception.code (${ex.message})`);
  assert.equal(typeof ex.message, 'string', `${what}: exception.message`);
  // the packet is well framed with a plain event name first: the refusal names the event
  assert.equal(ex.event, event, `${what}: exception.event`);
  assert.equal(r.closed, null, `${what}: the connection is still open`);
  await validSend(r, `${what} (no ack)`);
}

// k nested arrays: depth k.
const nest = (k) => '['.repeat(k) + ']'.repeat(k);

test('nesting: a packet 32 deep passes; a payload 33 deep and a very deep one are refused', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  // packet: array (1) > payload object (2) > sessionMetadata object (3) > k arrays
  const msg = (k, tempId) => `{"content":"deep","tempId":"${tempId}","sessionMetadata":{"a":${nest(k)}}}`;
  const okId = nextId();
  r.sendEventRaw('sendMessage', msg(29, newTempId('d32')), okId); // whole packet depth 32
  const ok = await r.nextAck(okId);
  assert.ok(ok && !ok.error, `a packet of depth 32 is accepted: ${JSON.stringify(ok)}`);
  // payload depth 33 (packet 34)
  await refusedRaw(r, 'sendMessage', msg(31, newTempId('d33')), 'invalid_payload', 'payload nested 33 deep');
  // 200,000 levels: refused without recursion trouble
  await refusedRaw(r, 'sendMessage', msg(200000, newTempId('deep')), 'invalid_payload', 'payload nested 200,000 deep');
  // unbalanced deep nesting (not even JSON)
  await refusedRaw(r, 'sendMessage', `{"content":"x","tempId":"u","sessionMetadata":{"a":${'['.repeat(100000)}}}`, 'invalid_payload', 'unbalanced deep nesting');
  const rows = await messageRows(ctx.dataDir, 1, r.uid);
  assert.equal(rows.filter((m) => m.content === 'deep').length, 1, 'only the depth-32 message stored');
  r.close();
});

test('NUL bytes in strings and keys: invalid_payload', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  await refusedRaw(r, 'sendMessage', `{"content":"a\\u0000b","tempId":"${newTempId()}"}`, 'invalid_payload', 'NUL in content');
  await refusedRaw(r, 'sendMessage', `{"content":"\\u0000","tempId":"${newTempId()}"}`, 'invalid_payload', 'content only NUL');
  await refusedRaw(r, 'sendMessage', `{"content":"hello","tempId":"t\\u0000x"}`, 'invalid_payload', 'NUL in tempId');
  await refusedRaw(r, 'sendMessage', `{"content":"hello","tempId":"${newTempId()}","sessionMetadata":{"k\\u0000":1}}`, 'invalid_payload', 'NUL in a metadata key');
  await refusedRaw(r, 'sendMessage', `{"content":"hello","tempId":"${newTempId()}","sessionMetadata":{"k":"v\\u0000"}}`, 'invalid_payload', 'NUL in a metadata value');
  await refusedRaw(r, 'sendMessage', `{"con\\u0000tent":"hello","tempId":"${newTempId()}"}`, 'invalid_payload', 'NUL in a payload key');
  await refusedRaw(r, 'updateContext', '{"currentUrl":"http://localhost/\\u0000"}', 'invalid_payload', 'NUL in currentUrl');
  const rows = await messageRows(ctx.dataDir, 1, r.uid);
  assert.ok(rows.every((m) => m.content.startsWith('valid after')), 'nothing but the valid messages stored');
  r.close();

  // in identify, on an unidentified socket
  const u = await RawSio.visitor(ctx.port, { projectId: 1 });
  const id = nextId();
  const nulUid = newUid();
  u.sendEventRaw('identify', `{"projectId":1,"visitorUid":"${nulUid}\\u0000"}`, id);
  assertAckRefusal(await u.nextAck(id), 'invalid_payload', 'NUL in visitorUid');
  assert.equal(await visitorRow(ctx.dataDir, 1, nulUid), undefined);
  const [nul] = await sql(ctx.dataDir, {
    sqlite: 'select count(*) as n from visitors where instr(uid, char(0)) > 0',
    // PostgreSQL text cannot hold a NUL: no uid the NUL was cut from or replaced in either
    postgres: `select count(*) as n from visitors where uid like ${q(nulUid)} || '%'`,
  });
  assert.equal(nul.n, 0, 'no visitor uid with a NUL stored');
  const id2 = nextId();
  u.sendEventRaw('identify', JSON.stringify({ projectId: 1, visitorUid: newUid() }), id2);
  assert.deepEqual(await u.nextAck(id2), { messages: [] }, 'identify works after it');
  u.close();
});

test('integers beyond 2^53 - 1: invalid_payload; 2^53 - 1 itself passes', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  const meta = (n) => `{"content":"numbers","tempId":"${newTempId('n')}","sessionMetadata":{"n":${n}}}`;
  for (const n of ['9007199254740992', '-9007199254740992', '9007199254740993', '18446744073709551616', '123456789012345678901234567890']) {
    await refusedRaw(r, 'sendMessage', meta(n), 'invalid_payload', `integer ${n}`);
  }
  const okId = nextId();
  const tempId = newTempId('max');
  r.sendEventRaw('sendMessage', `{"content":"max safe","tempId":"${tempId}","sessionMetadata":{"n":9007199254740991,"m":-9007199254740991}}`, okId);
  const ok = await r.nextAck(okId);
  assert.ok(ok && !ok.error, `2^53 - 1 passes: ${JSON.stringify(ok)}`);
  r.close();

  // projectId beyond 2^53 in identify
  const u = await RawSio.visitor(ctx.port, { projectId: 1 });
  const id = nextId();
  u.sendEventRaw('identify', `{"projectId":9007199254740993,"visitorUid":"${newUid()}"}`, id);
  assertAckRefusal(await u.nextAck(id), 'invalid_payload', 'projectId beyond 2^53');
  const id2 = nextId();
  u.sendEventRaw('identify', JSON.stringify({ projectId: 1, visitorUid: newUid() }), id2);
  assert.deepEqual(await u.nextAck(id2), { messages: [] });
  u.close();
});

test('duplicate keys: invalid_payload (never "the last one wins")', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  const tid = newTempId('dup');
  await refusedRaw(r, 'sendMessage', `{"content":"first","content":"second","tempId":"${tid}"}`, 'invalid_payload', 'duplicate content');
  await refusedRaw(r, 'sendMessage', `{"content":"x","tempId":"${tid}","tempId":"${newTempId()}"}`, 'invalid_payload', 'duplicate tempId');
  await refusedRaw(r, 'sendMessage', `{"content":"x","tempId":"${newTempId()}","sessionMetadata":{"a":1,"b":{"c":1,"c":2}}}`, 'invalid_payload', 'duplicate nested key');
  await refusedRaw(r, 'updateContext', '{"currentUrl":"http://localhost/a","currentUrl":"http://localhost/b"}', 'invalid_payload', 'duplicate currentUrl');
  const rows = await sql(ctx.dataDir, `select count(*) as n from messages where temp_id='${tid}'`);
  assert.equal(rows[0].n, 0, 'nothing stored under the duplicated message\'s tempId');
  r.close();

  const u = await RawSio.visitor(ctx.port, { projectId: 1 });
  const uid = newUid();
  const other = newUid();
  const id = nextId();
  u.sendEventRaw('identify', `{"projectId":1,"visitorUid":"${uid}","visitorUid":"${other}"}`, id);
  assertAckRefusal(await u.nextAck(id), 'invalid_payload', 'duplicate visitorUid');
  assert.equal(await visitorRow(ctx.dataDir, 1, uid), undefined);
  assert.equal(await visitorRow(ctx.dataDir, 1, other), undefined);
  u.close();
});

test('lone UTF-16 surrogate escapes: invalid_payload; a proper pair passes', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  for (const s of ['\\ud800', 'x\\udc00y', '\\ud83d', '\\ude00\\ud83d']) {
    await refusedRaw(r, 'sendMessage', `{"content":"${s}","tempId":"${newTempId()}"}`, 'invalid_payload', `content "${s}"`);
  }
  const id = nextId();
  r.sendEventRaw('sendMessage', `{"content":"smile \\ud83d\\ude00","tempId":"${newTempId()}"}`, id);
  const ok = await r.nextAck(id);
  assert.equal(ok?.finalMessage?.content, 'smile 😀');
  r.close();
});

test('strings over their limits: too_large, the connection still usable', { timeout: t(60000) }, async () => {
  const r = await rawVisitor();
  const cases = [
    ['content 5001', `{"content":"${'a'.repeat(5001)}","tempId":"${newTempId()}"}`],
    ['content 900,000 (under maxPayload)', `{"content":"${'b'.repeat(900000)}","tempId":"${newTempId()}"}`],
    ['content 5001 escaped code points', `{"content":"${'\\u00e9'.repeat(5001)}","tempId":"${newTempId()}"}`],
    ['tempId 65', `{"content":"x","tempId":"${'t'.repeat(65)}"}`],
    ['sessionMetadata 16 KiB + 1', `{"content":"x","tempId":"${newTempId()}","sessionMetadata":{"b":"${'m'.repeat(16377)}"}}`],
  ];
  for (const [what, json] of cases) await refusedRaw(r, 'sendMessage', json, 'too_large', what);
  await refusedRaw(r, 'updateContext', `{"currentUrl":"http://localhost/${'u'.repeat(2040)}"}`, 'too_large', 'currentUrl over 2048');
  // exactly at the limit: 5000 escaped code points
  const id = nextId();
  r.sendEventRaw('sendMessage', `{"content":"${'\\u00e9'.repeat(5000)}","tempId":"${newTempId()}"}`, id);
  const ok = await r.nextAck(id);
  assert.equal(ok?.finalMessage?.content, 'é'.repeat(5000));
  const rows = await messageRows(ctx.dataDir, 1, r.uid);
  assert.ok(rows.every((m) => m.content.length <= 5000), 'nothing over the limit stored');
  r.close();

  // a visitorUid over 64 in identify
  const u = await RawSio.visitor(ctx.port, { projectId: 1 });
  const id2 = nextId();
  u.sendEventRaw('identify', `{"projectId":1,"visitorUid":"${'v'.repeat(5000)}"}`, id2);
  assertAckRefusal(await u.nextAck(id2), 'too_large', 'visitorUid of 5000');
  const id3 = nextId();
  u.sendEventRaw('identify', JSON.stringify({ projectId: 1, visitorUid: newUid() }), id3);
  assert.deepEqual(await u.nextAck(id3), { messages: [] });
  u.close();
});
