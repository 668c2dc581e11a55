// Agents (PROTOCOL.md sections 2 and 4): joinProjectRoom / leaveProjectRoom with their acks and
// what the room then delivers; a user without membership is refused from a room ("Forbidden: You
// are not a member of this project.", code forbidden) and gets none of its events; and the agent
// token checks at connect: an expired, tampered, HS512, `alg: none`, wrongly signed token is
// "Invalid JWT", an unknown user "User not found", a revoked token "Token revoked", each as a
// connect_error after which the client does not retry; a fresh token after the revocation works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, sleep, visitor, sendOk, agentToken, revokeAgent, connectAgent, joinRoom,
  openSocket, jwtSecret, signJwt, decodeJwt, assertAckRefusal, assertException, assertRefusedBoth,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Mine', domains: ['localhost'] }, { name: 'Theirs', domains: ['localhost'] }],
    agents: [
      { email: 'agent@mine.test', project: 0, name: 'Mine Agent' }, // 0
      { email: 'manager@mine.test', project: 0, role: 'manager' }, // 1
      { email: 'agent@theirs.test', project: 1 }, // 2
      { email: 'revoked@mine.test', project: 0 }, // 3
    ],
    args: ['--visitor-burst', '100000', '--visitor-per-minute', '100000'],
  });
});
after(() => teardown(ctx));

const FORBIDDEN = 'Forbidden: You are not a member of this project.';
const isMsg = (id) => (p) => p?.id === id;

async function freshAgent(i) {
  return connectAgent(ctx, await agentToken(ctx.dataDir, ctx.agents[i].email), { label: ctx.agents[i].email });
}

test('joinProjectRoom / leaveProjectRoom: acks, and room events only while joined', { timeout: t(30000) }, async () => {
  const a = await freshAgent(0);
  const v = await visitor(ctx, { projectId: 1 });
  const before = await sendOk(v, 'before joining');
  await a.none('newMessage', { pred: isMsg(before.id), why: '(not in the room yet)' });

  assert.deepEqual(await a.ack('joinProjectRoom', { projectId: 1 }), { status: 'ok', roomName: 'project:1' });
  // joining twice is harmless: still one delivery per event
  assert.deepEqual(await a.ack('joinProjectRoom', { projectId: 1 }), { status: 'ok', roomName: 'project:1' });
  const inRoom = await sendOk(v, 'while joined');
  const nm = await a.next('newMessage', { pred: isMsg(inRoom.id) });
  assert.equal(nm.content, 'while joined');
  await a.none('newMessage', { pred: isMsg(inRoom.id), ms: t(300), why: '(delivered once)' });
  v.emit('visitorIsTyping', { isTyping: true });
  assert.equal((await a.next('visitorIsTyping', { pred: (p) => p?.visitorUid === v.uid })).isTyping, true);

  assert.deepEqual(await a.ack('leaveProjectRoom', { projectId: 1 }), { status: 'ok', roomName: 'project:1' });
  const after = await sendOk(v, 'after leaving');
  await a.none('newMessage', { pred: isMsg(after.id), why: '(left the room)' });
  v.close();
  a.close();
});

test('a manager joins like an agent', { timeout: t(20000) }, async () => {
  const m = await freshAgent(1);
  await joinRoom(m, 1);
  const v = await visitor(ctx, { projectId: 1 });
  const fm = await sendOk(v, 'for the manager');
  assert.equal((await m.next('newMessage', { pred: isMsg(fm.id) })).content, 'for the manager');
  v.close();
  m.close();
});

test('an agent without membership is refused from a room and gets none of its events', { timeout: t(30000) }, async () => {
  const a = await freshAgent(0);
  for (const projectId of [2, 999]) {
    const res = await a.ack('joinProjectRoom', { projectId });
    const err = assertAckRefusal(res, 'forbidden', `join project ${projectId}`);
    assert.equal(err.message, FORBIDDEN);
    a.emit('joinProjectRoom', { projectId });
    const ex = assertException(await a.next('exception'), 'forbidden', 'joinProjectRoom');
    assert.equal(ex.message, FORBIDDEN);
  }
  const theirs = await freshAgent(2);
  await joinRoom(theirs, 2);
  const v = await visitor(ctx, { projectId: 2 });
  const fm = await sendOk(v, 'project two only');
  await theirs.next('newMessage', { pred: isMsg(fm.id) });
  await a.none('newMessage', { pred: isMsg(fm.id), why: '(refused from project 2)' });
  await a.none('visitorStatusChanged', { pred: (p) => p?.visitorUid === v.uid, ms: t(100), why: '(refused from project 2)' });
  // and the other way round
  assertAckRefusal(await theirs.ack('joinProjectRoom', { projectId: 1 }), 'forbidden', 'project-2 agent into project 1');
  // the refused agent is still connected and can join its own room
  await joinRoom(a, 1);
  assert.equal(a.disconnects.length, 0);
  v.close();
  a.close();
  theirs.close();
});

test('room event payload refusals: invalid_payload', { timeout: t(20000) }, async () => {
  const a = await freshAgent(0);
  for (const payload of [{}, { projectId: '1' }, { projectId: null }, { projectId: 1.5 }, 'project:1', null]) {
    await assertRefusedBoth(a, 'joinProjectRoom', payload, 'invalid_payload');
    await assertRefusedBoth(a, 'leaveProjectRoom', payload, 'invalid_payload');
  }
  await joinRoom(a, 1);
  a.close();
});

// A token refusal: connect_error with exactly `message`, no retry (over transports).
async function expectTokenRefused(token, message, what, transports = ['websocket']) {
  const c = openSocket(ctx.url, { auth: { token }, transports, reconnection: true, reconnectionDelay: 100 }, what);
  try {
    assert.equal(await c.waitConnectError(), message, `${what}: connect_error message`);
    await sleep(t(800));
    assert.equal(c.connects, 0, `${what}: never connected`);
    assert.equal(c.socket.active, false, `${what}: no automatic retry`);
    assert.equal(c.reconnectAttempts, 0, `${what}: no reconnect attempt`);
  } finally {
    c.close();
  }
}

async function expectTokenAccepted(token, what) {
  const c = openSocket(ctx.url, { auth: { token }, transports: ['websocket'] }, what);
  try {
    await c.waitConnected();
    await joinRoom(c, 1);
  } finally {
    c.close();
  }
}

test('forged tokens: valid ones connect, expired / tampered / HS512 / alg none / wrong key are "Invalid JWT"', { timeout: t(60000) }, async () => {
  const secret = jwtSecret(ctx.dataDir);
  const real = await agentToken(ctx.dataDir, ctx.agents[0].email);
  const { header, payload } = decodeJwt(real);
  assert.equal(header.alg, 'HS256');
  assert.equal(String(payload.sub), String(ctx.agents[0].id), 'sub is the user id');
  const now = Math.floor(Date.now() / 1000);

  // control: the forging is right (the same claims, signed here, are accepted)
  await expectTokenAccepted(real, 'the CLI token');
  await expectTokenAccepted(signJwt({ ...payload, iat: now, exp: now + 600 }, secret), 'a token signed here');

  const [h64, , s64] = real.split('.');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const flip = (s) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  const cases = [
    ['expired', signJwt({ ...payload, iat: now - 3600, exp: now - 10 }, secret)],
    ['exp missing', signJwt({ sub: payload.sub, email: payload.email, iat: now }, secret)],
    ['tampered payload (another sub, old signature)', `${h64}.${b64({ ...payload, sub: ctx.agents[1].id })}.${s64}`],
    ['tampered payload (later exp, old signature)', `${h64}.${b64({ ...payload, exp: payload.exp + 86400 })}.${s64}`],
    ['tampered signature', `${h64}.${real.split('.')[1]}.${flip(s64)}`],
    ['HS512 with the right secret', signJwt({ ...payload, iat: now, exp: now + 600 }, secret, { alg: 'HS512' })],
    ['HS384 with the right secret', signJwt({ ...payload, iat: now, exp: now + 600 }, secret, { alg: 'HS384' })],
    ['alg none, no signature', signJwt({ ...payload, iat: now, exp: now + 600 }, secret, { alg: 'none' })],
    ['alg none with an HS256 signature', (() => {
      const input = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...payload, iat: now, exp: now + 600 })}`;
      const good = signJwt({ ...payload, iat: now, exp: now + 600 }, secret).split('.')[2];
      return `${input}.${good}`;
    })()],
    ['alg "hs256" (lower case)', signJwt({ ...payload, iat: now, exp: now + 600 }, secret, { header: { alg: 'hs256', typ: 'JWT' } })],
    ['signed with another secret', signJwt({ ...payload, iat: now, exp: now + 600 }, `${secret}x`)],
    ['not a JWT', 'not-a-jwt'],
    ['two segments', `${h64}.${real.split('.')[1]}`],
    ['sub not a number', signJwt({ ...payload, sub: 'abc', iat: now, exp: now + 600 }, secret)],
    ['a huge token', `${h64}.${'A'.repeat(20000)}.${s64}`],
  ];
  for (const [what, token] of cases) await expectTokenRefused(token, 'Invalid JWT', what);
  await expectTokenRefused(cases[0][1], 'Invalid JWT', 'expired, over long-polling', ['polling']);
  await expectTokenRefused(cases[7][1], 'Invalid JWT', 'alg none, over long-polling', ['polling']);
});

test('a valid signature for a user that does not exist: "User not found"', { timeout: t(20000) }, async () => {
  const secret = jwtSecret(ctx.dataDir);
  const now = Math.floor(Date.now() / 1000);
  const token = signJwt({ sub: 999999, email: 'ghost@nowhere.test', iat: now, exp: now + 600 }, secret);
  await expectTokenRefused(token, 'User not found', 'unknown user');
  await expectTokenRefused(token, 'User not found', 'unknown user over long-polling', ['polling']);
});

test('a revoked token is refused at the next connect ("Token revoked"); a fresh one works', { timeout: t(30000) }, async () => {
  const email = ctx.agents[3].email;
  const old = await agentToken(ctx.dataDir, email);
  await expectTokenAccepted(old, 'before the revocation');
  // iat has second resolution: make sure the revocation comes strictly after it
  await sleep(1100);
  await revokeAgent(ctx.dataDir, email);
  await expectTokenRefused(old, 'Token revoked', 'the old token');
  await expectTokenRefused(old, 'Token revoked', 'the old token over long-polling', ['polling']);
  // a token signed here with an iat before the revocation is refused the same way
  const { payload } = decodeJwt(old);
  const now = Math.floor(Date.now() / 1000);
  await expectTokenRefused(signJwt({ ...payload, iat: payload.iat, exp: now + 600 }, jwtSecret(ctx.dataDir)), 'Token revoked', 'an old iat');
  // a token issued after the revocation works
  await sleep(1100);
  const fresh = await agentToken(ctx.dataDir, email);
  await expectTokenAccepted(fresh, 'a token issued after the revocation');
  // other users are not affected
  await expectTokenAccepted(await agentToken(ctx.dataDir, ctx.agents[0].email), 'another agent');
});
