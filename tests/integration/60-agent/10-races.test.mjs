// The account rules under concurrent requests (docs/http-api.md "Accounts"): the same request
// sent many times at once must not slip past a rule that holds for requests one after another.
// Registrations of one e-mail at once: one account (one 201, the rest 409). One refresh token
// presented many times at once: at most one new token, and when any was refused as a reuse the
// family is revoked (the new token fails too). Failed logins at once on one account: at most 5
// are answered 401, the rest 429; the same for 20 per client address, whatever
// X-Forwarded-For says. Each limits test runs its own server (per-address counters).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, ok, assertApiError, assertRefreshCookie, login, register, refreshWith,
  newEmail, stopAll, PASSWORD, BAD_LOGIN, TOO_MANY_LOGINS,
} from './helpers.mjs';

after(() => stopAll());

async function withServer(fn) {
  const ctx = await setup({
    projects: [{ name: 'Races', domains: ['localhost'] }],
    agents: [{ email: 'racer@races.test' }, { email: 'bystander@races.test' }],
  });
  try {
    await fn(ctx);
  } finally {
    await teardown(ctx, { all: false });
  }
}

const statuses = (rs) => rs.map((r) => r.status).sort((a, b) => a - b);

test('one e-mail registered 8 times at once: one account, the others 409', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    const email = newEmail('race');
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => api(ctx, 'POST', '/auth/register', {
      body: { email: i % 2 ? email.toUpperCase() : email, password: `password number ${i}`, fullName: `Racer ${i}` },
    })));
    const created = rs.filter((r) => r.status === 201);
    assert.equal(created.length, 1, `exactly one 201: ${statuses(rs)} ${rs.filter((r) => r.status !== 201 && r.status !== 409).map((r) => r.text).join(' ')}`);
    for (const r of rs) if (r.status !== 201) assertApiError(r, 409);
    // the account that exists is the one that was answered 201, with its password
    const i = rs.indexOf(created[0]);
    const l = await login(ctx, email, `password number ${i}`);
    assert.deepEqual(l.user, created[0].json.user);
  });
});

test('one refresh token presented 6 times at once: at most one new token; a reuse revokes the family', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    for (let round = 0; round < 3; round++) {
      const s = await login(ctx, ctx.agents[0].email);
      const rs = await Promise.all(Array.from({ length: 6 }, () => refreshWith(ctx, s.refresh)));
      const good = rs.filter((r) => r.status === 200);
      assert.ok(good.length <= 1, `round ${round}: at most one refresh succeeds: ${statuses(rs)}`);
      for (const r of rs) if (r.status !== 200) assertApiError(r, 401);
      if (good.length === 1) {
        const next = assertRefreshCookie(good[0]);
        // the other five were reuses of a used token: the family is revoked
        assertApiError(await refreshWith(ctx, next), 401);
      }
    }
    // another session is unaffected
    const other = await login(ctx, ctx.agents[1].email);
    ok(await refreshWith(ctx, other.refresh));
  });
});

test('12 wrong passwords at once on one account: at most 5 answered 401, the rest 429', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    const a = ctx.agents[0];
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => api(ctx, 'POST', '/auth/login', { body: { email: a.email, password: `guess ${i}` } })));
    const n401 = rs.filter((r) => r.status === 401).length;
    for (const r of rs) {
      if (r.status === 401) assertApiError(r, 401, BAD_LOGIN);
      else assertApiError(r, 429, TOO_MANY_LOGINS);
    }
    assert.ok(n401 <= 5, `at most 5 failed logins evaluated in the window, got ${n401} (${statuses(rs)})`);
    assertApiError(await api(ctx, 'POST', '/auth/login', { body: { email: a.email, password: a.password } }), 429, TOO_MANY_LOGINS);
    // the other account still logs in
    await login(ctx, ctx.agents[1].email);
  });
});

test('30 failed logins at once from one address (any X-Forwarded-For): at most 20 answered 401', { timeout: t(120000) }, async () => {
  await withServer(async (ctx) => {
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => api(ctx, 'POST', '/auth/login', {
      body: { email: newEmail(`spray${i}`), password: 'spray password' },
      headers: { 'X-Forwarded-For': `203.0.113.${i + 1}`, 'X-Real-IP': `198.51.100.${i + 1}`, Forwarded: `for=192.0.2.${i + 1}` },
    })));
    const n401 = rs.filter((r) => r.status === 401).length;
    for (const r of rs) {
      if (r.status === 401) assertApiError(r, 401, BAD_LOGIN);
      else assertApiError(r, 429, TOO_MANY_LOGINS);
    }
    assert.ok(n401 <= 20, `at most 20 failed logins per address, got ${n401} (${statuses(rs)})`);
    const r = await api(ctx, 'POST', '/auth/login', {
      body: { email: ctx.agents[0].email, password: PASSWORD },
      headers: { 'X-Forwarded-For': '203.0.113.250' },
    });
    assertApiError(r, 429, TOO_MANY_LOGINS);
  });
});

test('register at once with many different e-mails: every one is created once', { timeout: t(120000) }, async () => {
  await withServer(async (ctx) => {
    const emails = Array.from({ length: 10 }, () => newEmail('many'));
    const rs = await Promise.all(emails.map((email) => api(ctx, 'POST', '/auth/register', { body: { email, password: PASSWORD, fullName: email } })));
    for (const r of rs) ok(r, 201);
    const ids = new Set(rs.map((r) => r.json.user.id));
    assert.equal(ids.size, 10, 'ten distinct users');
    for (const r of rs) {
      const me = ok(await api(ctx, 'GET', '/user/me', { token: r.json.accessToken }));
      assert.deepEqual(me, r.json.user, 'each token is its own user');
    }
    await register(ctx); // and one more afterwards
  });
});
