// Accounts (docs/http-api.md "Accounts"): registration (201, the user, an access token and the
// refresh cookie with its attributes; 409 for an e-mail taken, also when written differently;
// 400 naming the field for a bad e-mail, a short or long password, a missing or long fullName,
// with the limits themselves accepted), login (200; 401 "Invalid email or password" with the
// same status and body for a wrong password and an unknown e-mail, and no quicker for the
// unknown one: both verify a hash), GET /user/me, and 401 for every missing or malformed
// Authorization header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, ok, assertApiError, assertFieldError, assertUser, register, login,
  newEmail, PASSWORD, BAD_LOGIN,
} from './helpers.mjs';

let ctx;
before(async () => {
  ctx = await setup({
    projects: [{ name: 'Accounts', domains: ['localhost'] }],
    agents: [{ email: 'cli.agent@accounts.test', name: 'Cli Agent' }],
  });
});
after(() => teardown(ctx));

test('register: 201 {accessToken, user} + refresh cookie; the token works for /user/me', { timeout: t(30000) }, async () => {
  const email = newEmail('new');
  const s = await register(ctx, { email, fullName: 'Ada Lovelace' });
  assertUser(s.user, { email, fullName: 'Ada Lovelace' });
  const me = ok(await api(ctx, 'GET', '/user/me', { token: s.accessToken }));
  assert.deepEqual(me, s.user, '/user/me is the registered user');
  // a new account is a member of nothing
  assert.deepEqual(ok(await api(ctx, 'GET', '/projects', { token: s.accessToken })), []);
  // and can log in with its password
  const l = await login(ctx, email, s.password);
  assert.deepEqual(l.user, s.user);
  assert.notEqual(l.refresh, s.refresh, 'every login gets its own refresh token');
});

test('register: the e-mail is trimmed and lower-cased; login accepts any spelling of it', { timeout: t(30000) }, async () => {
  const local = `Mixed.Case-${Date.now()}`;
  const s = await register(ctx, { email: `  ${local}@Example.TEST \t`, fullName: 'Mixed Case' });
  assert.equal(s.user.email, `${local.toLowerCase()}@example.test`);
  const l = await login(ctx, ` ${local.toUpperCase()}@EXAMPLE.test `);
  assert.equal(l.user.id, s.user.id);
});

test('register: an e-mail already taken is 409, in any spelling; nothing is changed', { timeout: t(30000) }, async () => {
  const email = newEmail('dup');
  const first = await register(ctx, { email, fullName: 'First' });
  for (const again of [email, email.toUpperCase(), `  ${email}  `]) {
    const r = await api(ctx, 'POST', '/auth/register', { body: { email: again, password: 'another password', fullName: 'Second' } });
    assertApiError(r, 409);
    assert.equal(r.refreshCookie, undefined, '409 sets no refresh cookie');
  }
  // the CLI agent's address is taken too
  assertApiError(await api(ctx, 'POST', '/auth/register', { body: { email: ctx.agents[0].email, password: PASSWORD, fullName: 'X' } }), 409);
  // the first account is unchanged: its password still works, the second one does not
  const l = await login(ctx, email, first.password);
  assert.deepEqual(l.user, first.user);
  assertApiError(await api(ctx, 'POST', '/auth/login', { body: { email, password: 'another password' } }), 401, BAD_LOGIN);
});

test('register: 400 names the invalid field; the limits themselves are accepted', { timeout: t(120000) }, async () => {
  const good = () => ({ email: newEmail('val'), password: PASSWORD, fullName: 'Valid Name' });
  const long = (n, c = 'a') => c.repeat(n);
  const domain = '@example.test';
  const rows = [
    // [field, change]
    ['email', { email: undefined }],
    ['email', { email: '' }],
    ['email', { email: '   ' }],
    ['email', { email: 'plainaddress' }],
    ['email', { email: 'no-dot@localhost' }],
    ['email', { email: 'two@@example.test' }],
    ['email', { email: 'two@at@example.test' }],
    ['email', { email: '@example.test' }],
    ['email', { email: 'nodomain@' }],
    ['email', { email: 'sp ace@example.test' }],
    ['email', { email: 'ctl\u0001@example.test' }],
    ['email', { email: `${long(255 - domain.length)}${domain}` }], // 255 bytes
    ['email', { email: 42 }],
    ['email', { email: null }],
    ['email', { email: ['a@example.test'] }],
    ['password', { password: undefined }],
    ['password', { password: '' }],
    ['password', { password: 'seven77' }],
    ['password', { password: '\u00e9'.repeat(7) }], // 7 characters, 14 bytes
    ['password', { password: '\u{1F511}'.repeat(7) }], // 7 characters, 28 bytes
    ['password', { password: '\u00e9'.repeat(257) }],
    ['password', { password: long(257) }],
    ['password', { password: 12345678 }],
    ['password', { password: null }],
    ['fullName', { fullName: undefined }],
    ['fullName', { fullName: '' }],
    ['fullName', { fullName: long(101) }],
    ['fullName', { fullName: '\u{1F600}'.repeat(101) }],
    ['fullName', { fullName: 7 }],
    ['fullName', { fullName: null }],
  ];
  for (const [field, change] of rows) {
    const body = { ...good(), ...change };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    const r = await api(ctx, 'POST', '/auth/register', { body });
    assertFieldError(r, field, `register ${JSON.stringify(change).slice(0, 80)}`);
    assert.equal(r.refreshCookie, undefined, 'a refused registration sets no cookie');
    // nothing was created: the same address registers fine afterwards
    if (field !== 'email') await register(ctx, { email: body.email });
  }
  // bodies that are not an object of fields
  for (const raw of ['[]', '"text"', 'null', '42', '{"email":', '{email: "x"}', '', "{'a':1}"]) {
    assertApiError(await api(ctx, 'POST', '/auth/register', { raw, contentType: 'application/json' }), 400);
  }
  // the limits themselves
  await register(ctx, { email: `${long(254 - domain.length)}${domain}` }); // 254 bytes
  await register(ctx, { password: long(8, 'p') });
  await register(ctx, { password: long(256, 'p') });
  await register(ctx, { password: '\u00e9'.repeat(8) }); // 8 characters, 16 bytes
  await register(ctx, { fullName: 'X' });
  await register(ctx, { fullName: long(100, 'n') });
  await register(ctx, { fullName: '\u{1F600}'.repeat(100) }); // 100 characters, 400 bytes
  // characters, not bytes: 256 multi-byte characters are a valid password, and log in
  for (const password of ['\u00e9'.repeat(256), '\u{1F511}'.repeat(256)]) { // 512 and 1024 bytes
    const s = await register(ctx, { password });
    await login(ctx, s.user.email, password);
  }
});

test('login: 200 for a CLI-made agent; wrong password and unknown e-mail: the same 401, no cookie', { timeout: t(30000) }, async () => {
  const a = ctx.agents[0];
  const l = await login(ctx, a.email, a.password);
  assertUser(l.user, { id: a.id, email: a.email, fullName: 'Cli Agent' });

  const wrong = await api(ctx, 'POST', '/auth/login', { body: { email: a.email, password: 'not the password' } });
  const unknown = await api(ctx, 'POST', '/auth/login', { body: { email: 'nobody@accounts.test', password: 'not the password' } });
  for (const r of [wrong, unknown]) {
    assertApiError(r, 401, BAD_LOGIN);
    assert.equal(r.refreshCookie, undefined, 'a refused login sets no refresh cookie');
  }
  assert.deepEqual(unknown.json, wrong.json, 'the same body for an unknown e-mail and a wrong password');
  assert.equal(unknown.headers.get('content-type'), wrong.headers.get('content-type'));
  assert.equal(unknown.headers.get('www-authenticate'), wrong.headers.get('www-authenticate'));
});

test('login: an unknown e-mail is not answered quicker than a wrong password (a hash is verified)', { timeout: t(60000) }, async (tc) => {
  // 4 of each, interleaved (the limit is 5 failures per account); the fastest answers are
  // compared, as the least disturbed by other work on the machine. Verifying an Argon2id hash
  // takes tens of milliseconds; skipping it for unknown addresses takes ~1 ms.
  const s = await register(ctx, { email: newEmail('timing') });
  const unknownEmail = newEmail('unknown-timing');
  const known = [];
  const unknown = [];
  for (let i = 0; i < 4; i++) {
    const a = await api(ctx, 'POST', '/auth/login', { body: { email: s.user.email, password: `wrong password ${i}` } });
    assertApiError(a, 401, BAD_LOGIN);
    known.push(a.ms);
    const b = await api(ctx, 'POST', '/auth/login', { body: { email: unknownEmail, password: `wrong password ${i}` } });
    assertApiError(b, 401, BAD_LOGIN);
    unknown.push(b.ms);
  }
  const mk = Math.min(...known);
  const mu = Math.min(...unknown);
  tc.diagnostic(`fastest: unknown e-mail ${mu.toFixed(1)} ms, wrong password ${mk.toFixed(1)} ms`);
  assert.ok(mu >= mk * 0.4, `unknown e-mail answered in ${mu.toFixed(1)} ms, wrong password in ${mk.toFixed(1)} ms (${unknown.map((x) => x.toFixed(1))} vs ${known.map((x) => x.toFixed(1))})`);
});

test('login: a body without e-mail or password is 400 naming the field', { timeout: t(30000) }, async () => {
  const a = ctx.agents[0];
  assertFieldError(await api(ctx, 'POST', '/auth/login', { body: { password: a.password } }), 'email');
  assertFieldError(await api(ctx, 'POST', '/auth/login', { body: { email: 7, password: a.password } }), 'email');
  assertFieldError(await api(ctx, 'POST', '/auth/login', { body: { email: a.email } }), 'password');
  assertFieldError(await api(ctx, 'POST', '/auth/login', { body: { email: a.email, password: null } }), 'password');
  assertApiError(await api(ctx, 'POST', '/auth/login', { raw: '[1,2]', contentType: 'application/json' }), 400);
  assertApiError(await api(ctx, 'POST', '/auth/login', { raw: '{"email":"a@b.test",', contentType: 'application/json' }), 400);
  // still able to log in
  await login(ctx, a.email, a.password);
});

test('GET /user/me: 401 without a usable bearer token', { timeout: t(30000) }, async () => {
  const s = await login(ctx, ctx.agents[0].email);
  const tok = s.accessToken;
  const bad = [
    {},
    { Authorization: '' },
    { Authorization: 'Bearer' },
    { Authorization: 'Bearer ' },
    { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    { Authorization: `Token ${tok}` },
    { Authorization: `${tok}` },
    { Authorization: 'Bearer not-a-jwt' },
    { Authorization: 'Bearer a.b.c' },
    { Authorization: 'Bearer ..' },
    { Authorization: `Bearer ${tok}x` },
    { Authorization: `Bearer ${tok.slice(0, -2)}` },
    { Authorization: `Bearer ${tok}.${tok.split('.')[2]}` },
    { Authorization: `Bearer ${'A'.repeat(8000)}` },
    { Authorization: `Bearer ${tok.split('.').slice(0, 2).join('.')}` },
  ];
  for (const headers of bad) {
    const r = await api(ctx, 'GET', '/user/me', { headers });
    assertApiError(r, 401);
    assert.ok(!r.text.includes(ctx.agents[0].email), 'a 401 reveals nothing about the user');
  }
  // control: the real token; the scheme is case-insensitive (RFC 9110 section 11.1)
  assert.equal(ok(await api(ctx, 'GET', '/user/me', { token: tok })).id, ctx.agents[0].id);
  for (const scheme of ['bearer', 'BEARER']) {
    assert.equal(ok(await api(ctx, 'GET', '/user/me', { headers: { Authorization: `${scheme} ${tok}` } })).id, ctx.agents[0].id, `scheme ${scheme}`);
  }
});
