// Request bodies on every route that takes one (docs/http-api.md: every body is JSON, else 415;
// JSON bodies up to 1 MiB, else 413): 415 for text/plain, form encoding, a look-alike media type
// or no Content-Type; 400 for JSON that does not parse, an empty body or a body that is not an
// object; 413 for a body over 1 MiB; `application/json; charset=utf-8` and any letter case of
// the media type accepted; hostile JSON shapes (deep nesting, many keys, huge numbers) answered
// 400 promptly. Nothing is changed by a refused body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, ok, assertApiError, loginAll, visitor, sendOk, newEmail, convPath,
  listMessages, rawRequest, buildRequest,
} from './helpers.mjs';

const MiB = 1024 * 1024;
let ctx;
let cid;
let v;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Bodies', domains: ['localhost'] }],
    agents: [{ email: 'bodies@bodies.test', name: 'Body Agent', role: 'manager' }],
  });
  await loginAll(ctx);
  v = await visitor(ctx);
  cid = (await sendOk(v, 'bodies')).conversationId;
});
after(() => teardown(ctx));

const tok = () => ctx.sessions[0].accessToken;

// [method, path, valid body, needs a token]
function bodyRoutes() {
  return [
    ['POST', '/auth/register', { email: newEmail('body'), password: 'long enough pw', fullName: 'Body' }, false],
    ['POST', '/auth/login', { email: ctx.agents[0].email, password: ctx.agents[0].password }, false],
    ['POST', '/projects', { name: 'Body project' }, true],
    ['PATCH', '/projects/1', { name: 'Bodies' }, true],
    ['PATCH', '/projects/1/widget-settings', { theme: 'dark' }, true],
    ['POST', convPath(1, cid, '/messages'), { text: 'body reply' }, true],
    ['PATCH', convPath(1, cid), { status: 'open' }, true],
    ['POST', convPath(1, cid, '/typing'), { isTyping: false }, true],
    ['POST', convPath(1, cid, '/assignments'), {}, true],
  ];
}

test('415 for a body that is not declared JSON, on every route', { timeout: t(60000) }, async () => {
  const before = (await listMessages(ctx, tok(), 1, cid)).data.length;
  for (const [method, path, body, auth] of bodyRoutes()) {
    const token = auth ? tok() : undefined;
    for (const contentType of [undefined, 'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json', 'application/xml']) {
      const r = await api(ctx, method, path, { token, raw: JSON.stringify(body), contentType });
      assertApiError(r, 415);
    }
  }
  assert.equal((await listMessages(ctx, tok(), 1, cid)).data.length, before, 'no refused reply was stored');
  await v.none('agentReplied', { why: '(415)' });
});

test('400 for JSON that does not parse, an empty body, or a body that is not an object', { timeout: t(60000) }, async () => {
  for (const [method, path, , auth] of bodyRoutes()) {
    const token = auth ? tok() : undefined;
    for (const raw of ['', ' ', '{', '{"a":}', '{"a":1,}', "{'a':1}", '{a:1}', 'nul', '[]', '[{}]', '"str"', '42', 'true', 'null', '{"a":1}{"b":2}', '{"a":1} x']) {
      assertApiError(await api(ctx, method, path, { token, raw, contentType: 'application/json' }), 400);
    }
  }
  await v.none('agentReplied', { why: '(400)' });
});

test('413 for a body over 1 MiB, on every route; 1 MiB bodies are not refused as too large', { timeout: t(120000) }, async () => {
  for (const [method, path, , auth] of bodyRoutes()) {
    const headers = { 'Content-Type': 'application/json' };
    if (auth) headers.Authorization = `Bearer ${tok()}`;
    const body = Buffer.from(`{"text":"${'x'.repeat(MiB)}"}`);
    const res = await rawRequest(ctx.port, buildRequest({ method, path: `/api/v1${path}`, headers, body }), { timeoutMs: t(15000) });
    const rs = res.responses();
    assert.ok(rs.length >= 1, `${method} ${path}: an answer (${res.text.slice(0, 200)})`);
    assert.equal(rs[0].status, 413, `${method} ${path}: ${rs[0].status} ${rs[0].text?.slice(0, 200)}`);
    const j = JSON.parse(rs[0].text);
    assert.equal(j.statusCode, 413);
  }
  // exactly 1 MiB of JSON is within the limit: refused for its content (400), not its size
  const head = '{"text":"';
  const tail = '"}';
  const exact = Buffer.from(head + 'y'.repeat(MiB - head.length - tail.length) + tail);
  assert.equal(exact.length, MiB);
  const r = await api(ctx, 'POST', convPath(1, cid, '/messages'), { token: tok(), raw: exact, contentType: 'application/json' });
  assert.equal(r.status, 400, `a 1 MiB reply of 1048565 characters is too long, not too large: ${r.status} ${r.text.slice(0, 200)}`);
});

test('application/json with parameters and in any letter case is accepted', { timeout: t(60000) }, async () => {
  for (const contentType of ['application/json; charset=utf-8', 'application/json;charset=UTF-8', 'Application/JSON', 'APPLICATION/JSON; charset="utf-8"']) {
    const r = await api(ctx, 'POST', convPath(1, cid, '/messages'), { token: tok(), raw: JSON.stringify({ text: `typed ${contentType}` }), contentType });
    assert.equal(ok(r, 201).content, `typed ${contentType}`);
    assert.equal((await v.next('agentReplied', { pred: (p) => p?.id === r.json.id })).content, `typed ${contentType}`);
    const reg = await api(ctx, 'POST', '/auth/register', { raw: JSON.stringify({ email: newEmail('ct'), password: 'long enough pw', fullName: 'CT' }), contentType });
    ok(reg, 201);
  }
});

test('hostile JSON shapes within the size limit: a prompt 400, and the server carries on', { timeout: t(120000) }, async () => {
  const deepArr = '['.repeat(200000) + ']'.repeat(200000);
  const deepObj = '{"a":'.repeat(100000) + '1' + '}'.repeat(100000);
  const manyKeys = `{${Array.from({ length: 40000 }, (_, i) => `"k${i}":0`).join(',')}}`;
  const bodies = [
    ['deeply nested arrays', deepArr],
    ['deeply nested objects', deepObj],
    ['text nested 40 deep', `{"text":${'['.repeat(40)}"x"${']'.repeat(40)}}`],
    ['40000 unknown keys', manyKeys],
    ['a number beyond 2^53', '{"text":"x","n":123456789012345678901234567890}'],
    ['a huge exponent', '{"isTyping":1e999999}'],
    ['an unterminated string', `{"text":"${'z'.repeat(500000)}`],
    ['a million-digit number', `{"text":${'9'.repeat(1000000)}}`],
  ];
  for (const [what, raw] of bodies) {
    for (const [method, path] of [['POST', convPath(1, cid, '/messages')], ['PATCH', '/projects/1/widget-settings'], ['POST', convPath(1, cid, '/typing')]]) {
      const started = performance.now();
      const r = await api(ctx, method, path, { token: tok(), raw, contentType: 'application/json', timeoutMs: t(10000) });
      const ms = performance.now() - started;
      assertApiError(r, 400);
      assert.ok(ms < t(3000), `${what} on ${path}: answered in ${ms.toFixed(0)} ms`);
    }
  }
  await v.none('agentReplied', { why: '(hostile bodies)' });
  await v.none('agentIsTyping', { ms: 50, why: '(hostile bodies)' });
  // still serving
  assert.equal(ok(await api(ctx, 'POST', convPath(1, cid, '/messages'), { token: tok(), body: { text: 'after the storm' } }), 201).content, 'after the storm');
});

test('requests without a body need no Content-Type (GET, DELETE, logout, logout-all, refresh)', { timeout: t(60000) }, async () => {
  const s = ctx.sessions[0];
  assert.equal((await api(ctx, 'GET', '/projects', { token: s.accessToken })).status, 200);
  assert.equal((await api(ctx, 'DELETE', convPath(1, cid, '/assignments'), { token: s.accessToken })).status, 200);
  const r = await api(ctx, 'GET', '/auth/refresh', { refresh: s.refresh });
  ok(r);
  ok(await api(ctx, 'POST', '/auth/logout', { refresh: r.refreshCookie.value }), 204);
  ok(await api(ctx, 'POST', '/auth/logout-all', { token: r.json.accessToken }), 204);
});
