// Access on every route (docs/http-api.md): 401 without a token; a valid token of another
// project's agent is 403 "not a member" on every route of a project it is not a member of, and
// 404 for another project's conversation or visitor id used under its own project, exactly as
// for an unknown id (the same body, nothing of the other project in it); ids that are not
// positive integers are 404 everywhere; the refused requests change nothing and send nothing;
// the member's own requests on the same routes succeed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, ok, assertApiError, loginAll, agentSocket, visitor, sendOk,
  listMessages, getConversation, NOT_MEMBER, NOT_IDS,
} from './helpers.mjs';

let ctx;
let A; // {pid, cid, vid, v, secret}: project 1, its visitor and conversation
let B; // the same in project 2
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Alpha Secret Project', domains: ['localhost'] }, { name: 'Beta', domains: ['localhost'] }],
    agents: [
      { email: 'a@alpha.test', name: 'Alpha Manager', role: 'manager', project: 0 },
      { email: 'b@beta.test', name: 'Beta Manager', role: 'manager', project: 1 },
    ],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
  await loginAll(ctx);
  const mk = async (pid, secret) => {
    const v = await visitor(ctx, { projectId: pid, uid: `uid_${secret}` });
    const fm = await sendOk(v, `message ${secret}`);
    const sock = await agentSocket(ctx, ctx.sessions[pid - 1].accessToken, [pid], `room ${pid}`);
    return { pid, cid: fm.conversationId, v, secret, sock };
  };
  A = await mk(1, 'alphaSECRET123');
  B = await mk(2, 'betaSECRET456');
  A.vid = (await getConversation(ctx, ctx.sessions[0].accessToken, 1, A.cid)).visitorId;
  B.vid = (await getConversation(ctx, ctx.sessions[1].accessToken, 2, B.cid)).visitorId;
});
after(() => teardown(ctx));

// Every route of a project, for project pid, conversation cid, visitor vid (DELETE last).
function routes(pid, cid, vid) {
  const c = `/projects/${pid}/inbox/conversations/${cid}`;
  return [
    ['GET', `/projects/${pid}`],
    ['PATCH', `/projects/${pid}`, { name: 'Renamed' }],
    ['PATCH', `/projects/${pid}/widget-settings`, { theme: 'dark' }],
    ['GET', `/projects/${pid}/members`],
    ['GET', `/projects/${pid}/inbox/conversations`],
    ['GET', `/projects/${pid}/inbox/conversations?status=open,pending,solved,spam&limit=100`],
    ['GET', c],
    ['GET', `${c}/messages`],
    ['GET', `${c}/messages?limit=1`],
    ['POST', `${c}/messages`, { text: 'injected reply' }],
    ['PATCH', c, { status: 'spam' }],
    ['PATCH', c, { read: true }],
    ['POST', `${c}/typing`, { isTyping: true }],
    ['POST', `${c}/assignments`, {}],
    ['DELETE', `${c}/assignments`],
    ['GET', `/projects/${pid}/inbox/visitors/${vid}`],
    ['DELETE', c],
  ];
}
// The routes naming a conversation or visitor (not the project alone).
const idRoutes = (pid, cid, vid) => routes(pid, cid, vid).filter(([, p]) => /\/(conversations|visitors)\/[^?]/.test(p));

const noLeak = (r, x, what) => {
  for (const s of [x.secret, 'Alpha Secret Project', String(x.v.uid)]) {
    assert.ok(!r.text.includes(s), `${what}: the answer reveals ${s}: ${r.text.slice(0, 300)}`);
  }
};

// The state of A that no refused request may change.
async function snapshotA() {
  const tok = ctx.sessions[0].accessToken;
  const p = ok(await api(ctx, 'GET', '/projects/1', { token: tok }));
  const conv = await getConversation(ctx, tok, 1, A.cid);
  delete conv.visitor;
  return { p, conv, msgs: (await listMessages(ctx, tok, 1, A.cid)).data };
}

test('401 on every route without a token', { timeout: t(30000) }, async () => {
  const all = [
    ['GET', '/user/me'], ['GET', '/projects'], ['POST', '/projects', { name: 'x' }], ['POST', '/auth/logout-all'],
    ...routes(A.pid, A.cid, A.vid),
  ];
  for (const [method, path, body] of all) {
    const r = await api(ctx, method, path, { body });
    assertApiError(r, 401);
    noLeak(r, A, `${method} ${path} without a token`);
  }
});

test('another project\'s agent: 403 "not a member" on every route of project 1; nothing changes or is sent', { timeout: t(60000) }, async () => {
  const before = await snapshotA();
  const tok = ctx.sessions[1].accessToken;
  for (const [method, path, body] of routes(A.pid, A.cid, A.vid)) {
    const r = await api(ctx, method, path, { token: tok, body });
    assertApiError(r, 403, NOT_MEMBER);
    noLeak(r, A, `${method} ${path} by project 2's agent`);
  }
  // with an unknown conversation / visitor id under project 1: still 403 (membership first)
  for (const [method, path, body] of idRoutes(A.pid, 999999, 999999)) {
    assertApiError(await api(ctx, method, path, { token: tok, body }), 403, NOT_MEMBER);
  }
  assert.deepEqual(await snapshotA(), before, 'project 1 is unchanged');
  await A.v.none('agentReplied', { why: '(refused reply)' });
  await A.v.none('agentIsTyping', { ms: 50, why: '(refused typing)' });
  await A.sock.none('conversationUpdated', { ms: 50, why: '(refused changes)' });
  await A.sock.none('conversationDeleted', { ms: 50, why: '(refused delete)' });
  await A.sock.none('newMessage', { ms: 50, pred: (m) => m?.content === 'injected reply', why: '(refused reply)' });
});

test('another project\'s conversation or visitor id under one\'s own project: 404, the same as an unknown id', { timeout: t(60000) }, async () => {
  const before = await snapshotA();
  const tok = ctx.sessions[1].accessToken;
  const foreign = idRoutes(B.pid, A.cid, A.vid);
  const unknown = idRoutes(B.pid, 999999, 999999);
  assert.equal(foreign.length, unknown.length);
  for (let i = 0; i < foreign.length; i++) {
    const [method, path, body] = foreign[i];
    const r = await api(ctx, method, path, { token: tok, body });
    const j = assertApiError(r, 404);
    noLeak(r, A, `${method} ${path}`);
    const u = await api(ctx, unknown[i][0], unknown[i][1], { token: tok, body: unknown[i][2] });
    assertApiError(u, 404);
    assert.deepEqual(j, u.json, `${method} ${path}: the same answer as for an unknown id`);
  }
  // and the other way round: B's ids under project 1, asked by A's manager
  for (const [method, path, body] of idRoutes(A.pid, B.cid, B.vid)) {
    assertApiError(await api(ctx, method, path, { token: ctx.sessions[0].accessToken, body }), 404);
  }
  assert.deepEqual(await snapshotA(), before, 'project 1 is unchanged');
  assert.equal((await getConversation(ctx, ctx.sessions[1].accessToken, 2, B.cid)).id, B.cid, 'project 2\'s conversation is still there');
  await A.v.none('agentReplied', { why: '(refused reply)' });
  await B.v.none('agentReplied', { ms: 50, why: '(refused reply)' });
  await A.sock.none('conversationDeleted', { ms: 50, why: '(refused delete)' });
  await B.sock.none('conversationDeleted', { ms: 50, why: '(refused delete)' });
});

test('ids that are not positive integers: 404 on every route', { timeout: t(120000) }, async () => {
  const tok = ctx.sessions[0].accessToken;
  for (const bad of NOT_IDS) {
    const cases = [
      ...routes(bad, A.cid, A.vid).filter(([, p]) => p.startsWith(`/projects/${bad}`)),
      ...idRoutes(A.pid, bad, bad),
    ];
    for (const [method, path, body] of cases) assertApiError(await api(ctx, method, path, { token: tok, body }), 404);
  }
  for (const [method, path, body] of routes(999999, A.cid, A.vid)) assertApiError(await api(ctx, method, path, { token: tok, body }), 404);
});

test('the member\'s own requests on the same routes succeed', { timeout: t(60000) }, async () => {
  const tok = ctx.sessions[0].accessToken;
  const expected = { GET: 200, PATCH: 200, POST: 200, DELETE: 200 };
  for (const [method, path, body] of routes(A.pid, A.cid, A.vid)) {
    let status = expected[method];
    if (path.endsWith('/messages') && method === 'POST') status = 201;
    if (path.endsWith('/typing')) status = 204;
    if (method === 'DELETE' && !path.endsWith('/assignments')) status = 204;
    const r = await api(ctx, method, path, { token: tok, body });
    assert.equal(r.status, status, `${method} ${path}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  assert.equal((await A.v.next('agentReplied')).content, 'injected reply');
  assert.deepEqual(await A.sock.next('conversationDeleted', { pred: (p) => p?.conversationId === A.cid }), { conversationId: A.cid });
  // project 2's room and visitor heard nothing of it
  const ofA = (p) => p?.conversationId === A.cid || p?.id === A.cid;
  for (const ev of ['newMessage', 'conversationUpdated', 'conversationDeleted']) await B.sock.none(ev, { pred: ofA, ms: 50, why: '(project 1\'s events)' });
  await B.v.none('agentReplied', { ms: 50, why: '(project 1\'s reply)' });
  await B.v.none('agentIsTyping', { ms: 50, why: '(project 1\'s typing)' });
});
