// Failed-login limits (docs/http-api.md "Accounts"): 5 failures per account in 15 minutes,
// then 429 "Too many failed logins: try again later" for every further attempt on that account,
// the right password included, for known and unknown e-mails alike; a successful login clears
// the account's counter; 20 failures from one client address, then 429 whatever the e-mail
// (X-Forwarded-For and similar headers do not change the address).
// Each test runs its own server (the per-address counter would otherwise be shared).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  setup, teardown, t, api, assertApiError, login, newEmail, BAD_LOGIN, TOO_MANY_LOGINS, stopAll,
} from './helpers.mjs';

after(() => stopAll());

async function withServer(fn) {
  const ctx = await setup({
    projects: [{ name: 'Limits', domains: ['localhost'] }],
    agents: [{ email: 'victim@limits.test' }, { email: 'bystander@limits.test' }],
  });
  try {
    await fn(ctx);
  } finally {
    await teardown(ctx, { all: false });
  }
}

const attempt = (ctx, email, password) => api(ctx, 'POST', '/auth/login', { body: { email, password } });

test('per account: 5 failures, then 429 for every attempt (the right password too); others unaffected', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    const victim = ctx.agents[0];
    for (let i = 1; i <= 5; i++) assertApiError(await attempt(ctx, victim.email, `guess ${i}`), 401, BAD_LOGIN);
    for (const password of ['guess 6', victim.password]) {
      const r = await attempt(ctx, victim.email, password);
      assertApiError(r, 429, TOO_MANY_LOGINS);
      assert.equal(r.refreshCookie, undefined, 'a 429 logs nobody in');
    }
    // any spelling of the address is the same account
    assertApiError(await attempt(ctx, `  ${victim.email.toUpperCase()} `, victim.password), 429, TOO_MANY_LOGINS);
    // another account from the same address still logs in
    await login(ctx, ctx.agents[1].email, ctx.agents[1].password);
  });
});

test('per account: an unknown e-mail is limited the same way (the answers do not tell it apart)', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    const ghost = newEmail('ghost');
    const victim = ctx.agents[0];
    const seq = [];
    for (let i = 1; i <= 6; i++) {
      const g = await attempt(ctx, ghost, `guess ${i}`);
      const v = await attempt(ctx, victim.email, `guess ${i}`);
      assert.equal(g.status, v.status, `attempt ${i}: the same status for an unknown and a known e-mail (${g.text} / ${v.text})`);
      assert.deepEqual(g.json, v.json, `attempt ${i}: the same body`);
      seq.push(g.status);
    }
    assert.deepEqual(seq, [401, 401, 401, 401, 401, 429]);
  });
});

test('a successful login clears the account\'s counter', { timeout: t(90000) }, async () => {
  await withServer(async (ctx) => {
    const a = ctx.agents[0];
    for (let i = 1; i <= 4; i++) assertApiError(await attempt(ctx, a.email, `guess ${i}`), 401, BAD_LOGIN);
    await login(ctx, a.email, a.password);
    for (let i = 1; i <= 5; i++) assertApiError(await attempt(ctx, a.email, `again ${i}`), 401, BAD_LOGIN);
    assertApiError(await attempt(ctx, a.email, 'again 6'), 429, TOO_MANY_LOGINS);
  });
});

test('per address: 20 failures on different accounts, then 429 for every e-mail', { timeout: t(120000) }, async () => {
  await withServer(async (ctx) => {
    // X-Forwarded-For and friends are the client's word, not its address: they change nothing
    const spoof = (i) => ({ 'X-Forwarded-For': `203.0.113.${i}`, 'X-Real-IP': `198.51.100.${i}`, Forwarded: `for=192.0.2.${i}` });
    for (let i = 1; i <= 20; i++) {
      const r = await api(ctx, 'POST', '/auth/login', { body: { email: newEmail(`spray${i}`), password: 'spray password' }, headers: spoof(i) });
      assertApiError(r, 401, BAD_LOGIN);
    }
    assertApiError(await api(ctx, 'POST', '/auth/login', { body: { email: newEmail('spray21'), password: 'spray password' }, headers: spoof(21) }), 429, TOO_MANY_LOGINS);
    assertApiError(await attempt(ctx, ctx.agents[0].email, 'wrong'), 429, TOO_MANY_LOGINS);
    const r = await attempt(ctx, ctx.agents[1].email, ctx.agents[1].password);
    assertApiError(r, 429, TOO_MANY_LOGINS);
    assert.equal(r.refreshCookie, undefined);
  });
});
