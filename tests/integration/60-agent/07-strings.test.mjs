// Hostile strings through the HTTP API: quotes, SQL fragments, HTML and script, template and
// format syntax, emoji and other multi-byte text, separators and control characters are stored
// and returned exactly (agent replies over HTTP, to the visitor and the room; visitor messages
// read back over HTTP; full names; project names; widget texts in the public settings), never
// executed (the data is all still there afterwards); bodies that are not valid UTF-8 (raw bytes,
// overlong forms, encoded surrogates, lone surrogate escapes) are refused with 400 and store
// nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, ok, assertApiError, loginAll, agentSocket, visitor, sendOk, register,
  listMessages, listInbox, reply, convPath, newEmail, ORIGIN,
} from './helpers.mjs';

let ctx;
let room;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Strings', domains: ['localhost'] }],
    agents: [{ email: 'strings@strings.test', name: 'String Agent', role: 'manager' }],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
  await loginAll(ctx);
  room = await agentSocket(ctx, ctx.sessions[0].accessToken, [1], 'room');
});
after(() => teardown(ctx));

const tok = () => ctx.sessions[0].accessToken;

const HOSTILE = [
  'O\'Reilly said "hello" \\ and `backticks`',
  "'; DROP TABLE messages; --",
  "' OR '1'='1",
  'Robert\'); DELETE FROM users WHERE (\'1\'=\'1',
  '1; UPDATE conversations SET status=\'spam\'',
  '<script>alert(document.cookie)</script>',
  '<img src=x onerror="alert(1)">&amp;&lt;&#x27;',
  '{{7*7}} ${7*7} <%= 7*7 %> #{7*7}',
  '%s%s%s%n%x %d %%',
  '\u{1F44B}\u{1F3FD} h\u00e9llo \u4e16\u754c \u{1F1EB}\u{1F1F7} \u{1F469}\u200d\u{1F4BB} \u{10FFFF}',
  'e\u0301 \u202eRTL override\u202c \u200b zero width \ufeff BOM',
  'line\nbreak\ttab\r\ncrlf \u2028 \u2029 end',
  '\\u0000 is not a NUL, \\n is not a newline',
  '{"json":"inside","n":[1,2]}',
  '../../etc/passwd %2e%2e%2f',
  'a'.repeat(10) + '\u{1F4A9}'.repeat(10) + '\u00ff'.repeat(10),
];

test('agent replies: hostile text stored and returned exactly (HTTP, the visitor, the room)', { timeout: t(90000) }, async () => {
  const v = await visitor(ctx);
  const fm = await sendOk(v, 'start');
  const cid = fm.conversationId;
  const sent = [];
  for (const text of HOSTILE) {
    const r = await reply(ctx, tok(), 1, cid, text);
    assert.equal(r.content, text, `201 body content for ${JSON.stringify(text)}`);
    assert.equal((await v.next('agentReplied', { pred: (p) => p?.id === r.id })).content, text, 'agentReplied content');
    assert.equal((await room.next('newMessage', { pred: (p) => p?.id === r.id })).content, text, 'newMessage content');
    sent.push(r);
  }
  const back = await listMessages(ctx, tok(), 1, cid, '?limit=100');
  assert.deepEqual(back.data.map((m) => m.content), ['start', ...HOSTILE], 'GET messages returns every text exactly');
  // nothing was executed: the conversation, its status and every message are still there
  const list = await listInbox(ctx, tok(), 1);
  const c = list.data.find((x) => x.id === cid);
  assert.equal(c.status, 'open');
  assert.equal(back.data.length, HOSTILE.length + 1);
  v.close();
});

test('visitor messages with hostile text read back exactly over HTTP (and as the snippet)', { timeout: t(90000) }, async () => {
  const v = await visitor(ctx);
  const fms = [];
  for (const text of HOSTILE) fms.push(await sendOk(v, text));
  const cid = fms[0].conversationId;
  const back = await listMessages(ctx, tok(), 1, cid, '?limit=100');
  assert.deepEqual(back.data.map((m) => m.content), HOSTILE);
  const last = HOSTILE[HOSTILE.length - 1];
  const c = (await listInbox(ctx, tok(), 1)).data.find((x) => x.id === cid);
  assert.ok(last.startsWith(c.lastMessageSnippet) && c.lastMessageSnippet.length > 0, `snippet is a prefix of the last message: ${JSON.stringify(c.lastMessageSnippet)}`);
  v.close();
});

test('names: hostile full names and project names stored and returned exactly', { timeout: t(90000) }, async () => {
  const names = HOSTILE.filter((s) => [...s].length <= 100);
  for (const fullName of names.slice(0, 6)) {
    const s = await register(ctx, { email: newEmail('hostile'), fullName });
    assert.equal(s.user.fullName, fullName);
    assert.equal(ok(await api(ctx, 'GET', '/user/me', { token: s.accessToken })).fullName, fullName);
    const p = ok(await api(ctx, 'POST', '/projects', { token: s.accessToken, body: { name: fullName } }), 201);
    assert.equal(p.name, fullName);
    assert.equal(ok(await api(ctx, 'GET', `/projects/${p.id}`, { token: s.accessToken })).name, fullName);
    const m = ok(await api(ctx, 'GET', `/projects/${p.id}/members`, { token: s.accessToken }));
    assert.equal(m[0].fullName, fullName);
  }
  for (const name of names.slice(6)) {
    const p = ok(await api(ctx, 'PATCH', '/projects/1', { token: tok(), body: { name } }));
    assert.equal(p.name, name);
    assert.equal(ok(await api(ctx, 'GET', '/projects/1', { token: tok() })).name, name);
  }
});

test('widget texts: hostile text reaches the public settings exactly', { timeout: t(30000) }, async () => {
  const headerText = '<b>"Hi"</b> \u{1F44B}';
  const welcomeMessage = "'; DROP TABLE projects; -- <script>alert(1)</script>\n\u2028{{x}}";
  ok(await api(ctx, 'PATCH', '/projects/1/widget-settings', { token: tok(), body: { headerText, welcomeMessage, agentDisplayName: 'O\'Brien & "Co"' } }));
  const pub = ok(await api(ctx, 'GET', '/public/projects/1/settings', { headers: { Origin: ORIGIN } }));
  assert.equal(pub.headerText, headerText);
  assert.equal(pub.welcomeMessage, welcomeMessage);
  assert.equal(pub.agentDisplayName, 'O\'Brien & "Co"');
});

// A JSON body as bytes, with `bytes` spliced into a string value.
const jsonWithBytes = (prefix, bytes, suffix) => Buffer.concat([Buffer.from(prefix), Buffer.from(bytes), Buffer.from(suffix)]);

const INVALID_UTF8 = [
  ['a lone 0xff', [0xff]],
  ['a lone continuation byte', [0x80]],
  ['a truncated 2-byte sequence', [0xc3, 0x28]],
  ['an overlong slash', [0xc0, 0xaf]],
  ['an overlong NUL', [0xc0, 0x80]],
  ['an encoded surrogate', [0xed, 0xa0, 0x80]],
  ['beyond U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ['a truncated 4-byte sequence at the end of the string', [0xf0, 0x9f, 0x98]],
  ['0xfe', [0xfe]],
];

test('invalid UTF-8 and lone surrogates are refused with 400 and store nothing', { timeout: t(90000) }, async () => {
  const v = await visitor(ctx);
  const fm = await sendOk(v, 'utf-8 start');
  const cid = fm.conversationId;
  const path = convPath(1, cid, '/messages');
  const post = (raw) => api(ctx, 'POST', path, { token: tok(), raw, contentType: 'application/json' });
  for (const [what, bytes] of INVALID_UTF8) {
    assertApiError(await post(jsonWithBytes('{"text":"bad ', bytes, ' text"}')), 400);
    // in a key too
    assertApiError(await post(jsonWithBytes('{"te', bytes, 'xt":"x","text":"y"}')), 400);
    // in the other bodies
    assertApiError(await api(ctx, 'POST', '/auth/register', { raw: jsonWithBytes(`{"email":"${newEmail('utf')}","password":"long enough pw","fullName":"bad `, bytes, '"}'), contentType: 'application/json' }), 400);
    assertApiError(await api(ctx, 'PATCH', '/projects/1', { token: tok(), raw: jsonWithBytes('{"name":"bad ', bytes, '"}'), contentType: 'application/json' }), 400);
    assertApiError(await api(ctx, 'PATCH', '/projects/1/widget-settings', { token: tok(), raw: jsonWithBytes('{"headerText":"bad ', bytes, '"}'), contentType: 'application/json' }), 400);
  }
  for (const esc of ['\\ud800', '\\udfff', '\\ud83d', '\\ude00\\ud83d', '\\ud800\\u0041']) {
    assertApiError(await post(`{"text":"lone ${esc} surrogate"}`), 400);
  }
  // a NUL character: refused, or stored and returned exactly
  const nul = await post('{"text":"nul \\u0000 inside"}');
  if (nul.status === 201) assert.equal(nul.json.content, 'nul \u0000 inside');
  else assertApiError(nul, 400);

  const back = await listMessages(ctx, tok(), 1, cid, '?limit=100');
  const expected = ['utf-8 start', ...(nul.status === 201 ? ['nul \u0000 inside'] : [])];
  assert.deepEqual(back.data.map((m) => m.content), expected, 'no refused body stored anything');
  await v.none('agentReplied', { pred: (p) => p?.content !== 'nul \u0000 inside', why: '(refused replies)' });
  // a valid surrogate pair escape is fine
  const pair = await post('{"text":"pair \\ud83d\\ude00 ok"}');
  assert.equal(ok(pair, 201).content, 'pair \u{1F600} ok');
  // the name of project 1 is unchanged by the refused PATCHes
  const p = ok(await api(ctx, 'GET', '/projects/1', { token: tok() }));
  assert.ok(!p.name.includes('bad '), `project name unchanged: ${p.name}`);
  v.close();
});
