// Tokens (docs/http-api.md "Accounts"): forged access tokens (`alg: none`, HS512, HS384, a
// wrong secret, a tampered payload or signature, expired, no exp, an unknown user) are 401 on
// every authenticated route while the same claims signed right are accepted; refresh rotation
// (a new cookie each time, the new one works, presenting a used one revokes the whole family:
// the newest fails too, another login's family does not); logout (204, the cookie cleared,
// that token no longer refreshes, other sessions unaffected); logout-all (every access and
// refresh token issued before it refused, a new login works at once, and an agent Socket.IO
// connection with an old token is refused at its next connect with "Token revoked"); logout
// with a token already rotated away revokes its family; `parley agent revoke` refuses HTTP
// tokens too; an expired refresh token is 401; the cookie is Secure behind an https public URL;
// the database holds only hashes of refresh tokens and passwords.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { dbContents } from '../lib/server.mjs';
import {
  setup, teardown, t, sleep, api, ok, assertApiError, assertRefreshCookie, assertAccessToken,
  login, register, refreshWith, jwtSecret, signJwt, decodeJwt, openSocket, agentSocket, joinRoom,
  newEmail, revokeAgent, sql, REFRESH_COOKIE,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Tokens', domains: ['localhost'] }, { name: 'Other', domains: ['localhost'] }],
    agents: [
      { email: 'manager@tokens.test', name: 'Token Manager', role: 'manager' },
      { email: 'other@tokens.test', name: 'Other Agent', project: 1 },
    ],
  });
});
after(() => teardown(ctx));

// Routes every token check applies to (the user's own project 1).
const AUTH_ROUTES = [
  ['GET', '/user/me'],
  ['GET', '/projects'],
  ['GET', '/projects/1'],
  ['GET', '/projects/1/members'],
  ['GET', '/projects/1/inbox/conversations'],
];

async function expect401Everywhere(token, what) {
  for (const [method, path] of AUTH_ROUTES) {
    const r = await api(ctx, method, path, { token });
    assertApiError(r, 401);
    assert.ok(!r.text.includes('Tokens'), `${what}: ${path} reveals no project data`);
  }
}

async function expect200Everywhere(token, what) {
  for (const [method, path] of AUTH_ROUTES) {
    const r = await api(ctx, method, path, { token });
    assert.equal(r.status, 200, `${what}: ${method} ${path} → ${r.status} ${r.text.slice(0, 300)}`);
  }
}

test('forged access tokens are 401 on every route; the same claims signed right are accepted', { timeout: t(60000) }, async () => {
  const s = await login(ctx, ctx.agents[0].email);
  const real = s.accessToken;
  const secret = jwtSecret(ctx.dataDir);
  const { header, payload } = decodeJwt(real);
  assertAccessToken(real, s.user);
  const now = Math.floor(Date.now() / 1000);
  const nowMs = Date.now();

  await expect200Everywhere(real, 'the login token');
  const resigned = signJwt({ ...payload, iat: now, exp: now + 600, iatMs: nowMs }, secret);
  await expect200Everywhere(resigned, 'the same claims signed here (the forging is right)');

  const [h64, p64, s64] = real.split('.');
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const flip = (x) => (x[0] === 'A' ? 'B' : 'A') + x.slice(1);
  const cases = [
    ['alg none, no signature', signJwt(payload, secret, { alg: 'none' })],
    ['alg none, the real signature', `${b64({ alg: 'none', typ: 'JWT' })}.${p64}.${s64}`],
    ['alg "None"', signJwt(payload, secret, { header: { alg: 'None', typ: 'JWT' } })],
    ['HS512 with the right secret', signJwt(payload, secret, { alg: 'HS512' })],
    ['HS384 with the right secret', signJwt(payload, secret, { alg: 'HS384' })],
    ['header says HS512, HS256 signature', signJwt(payload, secret, { header: { ...header, alg: 'HS512' } })],
    ['RS256 header', signJwt(payload, secret, { header: { alg: 'RS256', typ: 'JWT' } })],
    ['no alg', signJwt(payload, secret, { header: { typ: 'JWT' } })],
    ['wrong secret', signJwt(payload, `${secret}x`)],
    ['empty secret', signJwt(payload, '')],
    ['tampered payload: another sub', `${h64}.${b64({ ...payload, sub: ctx.agents[1].id })}.${s64}`],
    ['tampered payload: sub as a number / string swapped', `${h64}.${b64({ ...payload, sub: typeof payload.sub === 'number' ? String(payload.sub) : Number(payload.sub) })}.${s64}`],
    ['tampered payload: later exp', `${h64}.${b64({ ...payload, exp: payload.exp + 86400 })}.${s64}`],
    ['tampered signature', `${h64}.${p64}.${flip(s64)}`],
    ['signature cut', `${h64}.${p64}.${s64.slice(0, 20)}`],
    ['no signature', `${h64}.${p64}.`],
    ['expired', signJwt({ ...payload, iat: now - 3600, exp: now - 10, iatMs: (now - 3600) * 1000 }, secret)],
    ['no exp', signJwt({ sub: payload.sub, email: payload.email, iat: now, iatMs: nowMs }, secret)],
    ['exp a string', signJwt({ ...payload, exp: String(now + 600) }, secret)],
    ['unknown user', signJwt({ ...payload, sub: typeof payload.sub === 'number' ? 999999 : '999999', iat: now, exp: now + 600, iatMs: nowMs }, secret)],
    ['sub missing', signJwt({ email: payload.email, iat: now, exp: now + 600, iatMs: nowMs }, secret)],
    ['payload not JSON', `${h64}.${Buffer.from('not json').toString('base64url')}.${s64}`],
    ['header not JSON', `${Buffer.from('{').toString('base64url')}.${p64}.${s64}`],
  ];
  for (const [what, token] of cases) await expect401Everywhere(token, what);
  // the user is still fine
  await expect200Everywhere(real, 'the login token after the attacks');
});

test('refresh rotation: a new cookie every time; reusing a used one kills the family, not other logins', { timeout: t(60000) }, async () => {
  const s = await login(ctx, ctx.agents[0].email);
  const other = await login(ctx, ctx.agents[0].email); // another session of the same user
  const r1 = s.refresh;

  const a = await refreshWith(ctx, r1);
  const j = ok(a);
  assert.deepEqual(Object.keys(j), ['accessToken'], `refresh answer is {accessToken}: ${a.text}`);
  assertAccessToken(j.accessToken, s.user);
  const r2 = assertRefreshCookie(a);
  assert.notEqual(r2, r1, 'rotation: a new refresh token');
  assert.equal(ok(await api(ctx, 'GET', '/user/me', { token: j.accessToken })).id, s.user.id, 'the refreshed access token works');

  // the new one works (and rotates again)
  const b = await refreshWith(ctx, r2);
  ok(b);
  const r3 = assertRefreshCookie(b);
  assert.ok(r3 !== r2 && r3 !== r1);

  // the old one again: 401, and the whole family is revoked: the newest fails too
  assertApiError(await refreshWith(ctx, r1), 401);
  assertApiError(await refreshWith(ctx, r3), 401);
  assertApiError(await refreshWith(ctx, r2), 401);

  // another login of the same user is another family: unaffected
  const c = await refreshWith(ctx, other.refresh);
  ok(c);
  assertRefreshCookie(c);
});

test('refresh: 401 without the cookie or with a token that was never issued; other cookies are ignored', { timeout: t(30000) }, async () => {
  assertApiError(await api(ctx, 'GET', '/auth/refresh'), 401);
  for (const cookie of ['', 'x', 'A'.repeat(43), 'A'.repeat(5000), '%00', 'a b']) {
    assertApiError(await refreshWith(ctx, cookie), 401);
  }
  // a bearer access token is not a refresh token
  const s = await login(ctx, ctx.agents[0].email);
  assertApiError(await api(ctx, 'GET', '/auth/refresh', { token: s.accessToken }), 401);
  // the refresh cookie among others
  const r = await api(ctx, 'GET', '/auth/refresh', { headers: { Cookie: `theme=dark; ${REFRESH_COOKIE}=${s.refresh}; lang=en` } });
  ok(r);
  assertRefreshCookie(r);
});

function assertCookieCleared(r) {
  const c = r.refreshCookie;
  assert.ok(c, `logout clears the ${REFRESH_COOKIE} cookie: set-cookie ${JSON.stringify(r.cookies.map((x) => x.raw))}`);
  assert.equal(c.attrs.path, '/api/v1/auth', `the cleared cookie has the same Path: ${c.raw}`);
  const expired = c.attrs['max-age'] === '0' || (c.attrs.expires && Date.parse(c.attrs.expires) < Date.now());
  assert.ok(expired, `the cookie is expired (Max-Age=0 or Expires in the past): ${c.raw}`);
}

test('logout: 204, the cookie cleared, that token no longer refreshes; other sessions keep working', { timeout: t(30000) }, async () => {
  const s = await login(ctx, ctx.agents[0].email);
  const other = await login(ctx, ctx.agents[0].email);
  const r = await api(ctx, 'POST', '/auth/logout', { refresh: s.refresh });
  ok(r, 204);
  assertCookieCleared(r);
  assertApiError(await refreshWith(ctx, s.refresh), 401);
  // a second logout with the same token changes nothing for the other session
  await api(ctx, 'POST', '/auth/logout', { refresh: s.refresh });
  const o = await refreshWith(ctx, other.refresh);
  ok(o);
  assertRefreshCookie(o);
  // the other session's access token is untouched too
  assert.equal(ok(await api(ctx, 'GET', '/user/me', { token: other.accessToken })).id, s.user.id);
});

test('logout with a refresh token already rotated away: the family is revoked (a stolen old token ends the session)', { timeout: t(30000) }, async () => {
  const s = await login(ctx, ctx.agents[0].email);
  const a = await refreshWith(ctx, s.refresh);
  ok(a);
  const r2 = a.refreshCookie.value;
  const out = await api(ctx, 'POST', '/auth/logout', { refresh: s.refresh });
  assert.ok(out.status === 204 || out.status === 401, `logout with a used token: ${out.status} ${out.text}`);
  assertApiError(await refreshWith(ctx, r2), 401);
});

test('logout-all: every access and refresh token issued before it is refused; a new login works at once', { timeout: t(60000) }, async () => {
  const s = await register(ctx, { email: newEmail('all'), fullName: 'Everywhere' });
  const s2 = await login(ctx, s.user.email, s.password);
  const refreshed = ok(await refreshWith(ctx, s2.refresh));
  await expectUserOk(s.accessToken, s.user.id);

  assertApiError(await api(ctx, 'POST', '/auth/logout-all'), 401, undefined);
  ok(await api(ctx, 'POST', '/auth/logout-all', { token: s.accessToken }), 204);

  for (const tok of [s.accessToken, s2.accessToken, refreshed.accessToken]) {
    assertApiError(await api(ctx, 'GET', '/user/me', { token: tok }), 401);
    assertApiError(await api(ctx, 'GET', '/projects', { token: tok }), 401);
  }
  assertApiError(await refreshWith(ctx, s.refresh), 401);
  assertApiError(await refreshWith(ctx, s2.refresh), 401);
  // logout-all again with a revoked token: refused
  assertApiError(await api(ctx, 'POST', '/auth/logout-all', { token: s.accessToken }), 401);

  // a login right after works, and so does its refresh token
  await sleep(5);
  const again = await login(ctx, s.user.email, s.password);
  await expectUserOk(again.accessToken, s.user.id);
  const ar = ok(await refreshWith(ctx, again.refresh));
  await expectUserOk(ar.accessToken, s.user.id);
  // other users are untouched
  const m = await login(ctx, ctx.agents[1].email);
  await expectUserOk(m.accessToken, ctx.agents[1].id);
});

async function expectUserOk(token, id) {
  assert.equal(ok(await api(ctx, 'GET', '/user/me', { token })).id, id);
}

test('logout-all: an open agent socket\'s token is refused at its next connect ("Token revoked")', { timeout: t(60000) }, async () => {
  const a = ctx.agents[0];
  const s = await login(ctx, a.email, a.password);
  const sock = await agentSocket(ctx, s.accessToken, [1], 'agent before logout-all');

  ok(await api(ctx, 'POST', '/auth/logout-all', { token: s.accessToken }), 204);
  sock.close();

  const again = openSocket(ctx.url, { auth: { token: s.accessToken }, transports: ['websocket'] }, 'agent reconnecting with the old token');
  assert.equal(await again.waitConnectError(), 'Token revoked');
  again.close();

  // a fresh login's token connects
  await sleep(5);
  const fresh = await login(ctx, a.email, a.password);
  const ok2 = await agentSocket(ctx, fresh.accessToken, [], 'agent after a new login');
  await joinRoom(ok2, 1);
  ok2.close();
});

test('`parley agent revoke` refuses the HTTP-issued access tokens too', { timeout: t(60000) }, async () => {
  const email = ctx.agents[1].email;
  const s = await login(ctx, email);
  await expectUserOk(s.accessToken, ctx.agents[1].id);
  await revokeAgent(ctx.dataDir, email);
  assertApiError(await api(ctx, 'GET', '/user/me', { token: s.accessToken }), 401);
  assertApiError(await api(ctx, 'GET', '/projects', { token: s.accessToken }), 401);
  await sleep(5);
  const again = await login(ctx, email);
  await expectUserOk(again.accessToken, ctx.agents[1].id);
});

test('an expired refresh token is 401', { timeout: t(30000) }, async () => {
  const s = await register(ctx, { email: newEmail('expiry'), fullName: 'Expiry' });
  await sql(ctx.dataDir, `update refresh_tokens set expires_at = 1 where user_id = ${Number(s.user.id)}`);
  assertApiError(await refreshWith(ctx, s.refresh), 401);
  // a new login gets a new, working one
  const l = await login(ctx, s.user.email, s.password);
  ok(await refreshWith(ctx, l.refresh));
});

test('the refresh cookie is Secure when PARLEY_PUBLIC_URL is https', { timeout: t(60000) }, async () => {
  const c2 = await setup({ projects: [{ name: 'Secure' }], env: { PARLEY_PUBLIC_URL: 'https://chat.example.test' } });
  try {
    const r = await api(c2, 'POST', '/auth/register', { body: { email: newEmail('secure'), password: 'long enough pw', fullName: 'Secure' } });
    ok(r, 201);
    const c = r.refreshCookie;
    assert.ok(c, 'a refresh cookie');
    assert.equal(c.attrs.secure, true, `Secure: ${c.raw}`);
    assert.equal(c.attrs.httponly, true, `HttpOnly: ${c.raw}`);
    assert.equal(String(c.attrs.samesite).toLowerCase(), 'strict');
    assert.equal(c.attrs.path, '/api/v1/auth');
    const again = await refreshWith(c2, c.value);
    ok(again);
    assert.equal(again.refreshCookie.attrs.secure, true, `Secure after rotation: ${again.refreshCookie.raw}`);
  } finally {
    await teardown(c2, { all: false });
  }
});

test('the database holds only the SHA-256 of refresh tokens and an Argon2id hash of passwords', { timeout: t(30000) }, async () => {
  const password = `plain-${crypto.randomBytes(6).toString('hex')}`;
  const s = await register(ctx, { email: newEmail('stored'), password, fullName: 'Stored' });
  ok(await refreshWith(ctx, s.refresh)); // s.refresh is now a used token
  const l = await login(ctx, s.user.email, password);
  const rows = await sql(ctx.dataDir, `select * from refresh_tokens where user_id = ${Number(s.user.id)}`);
  assert.ok(rows.length >= 2, `refresh tokens stored: ${JSON.stringify(rows)}`);
  for (const tok of [s.refresh, l.refresh]) {
    const d = crypto.createHash('sha256').update(tok).digest();
    const forms = [d.toString('hex'), d.toString('base64'), d.toString('base64url')];
    assert.ok(rows.some((row) => forms.includes(row.token_hash)), `the SHA-256 of ${tok} is stored`);
  }
  const [u] = await sql(ctx.dataDir, `select password_hash from users where id = ${Number(s.user.id)}`);
  assert.match(u.password_hash, /^\$argon2id\$/, 'an Argon2id hash');
  // neither the refresh tokens nor the password appear anywhere in the database (its files,
  // or a dump of the PostgreSQL database in scale mode)
  const contents = await dbContents(ctx.dataDir);
  assert.ok(contents.some((c) => c.bytes.indexOf(Buffer.from(u.password_hash)) >= 0), 'the database contents read hold the password hash');
  for (const { name, bytes } of contents) {
    for (const secret of [s.refresh, l.refresh, password]) {
      assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `${name} holds ${secret} in the clear`);
    }
  }
});
