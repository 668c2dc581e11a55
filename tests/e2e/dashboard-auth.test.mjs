// Accounts in the dashboard (/app/): sign up (the form's own checks, the server's 409), the
// empty projects page of a new account; the session survives a reload through the HttpOnly
// refresh cookie while the access token is kept in memory only (never in storage, never readable
// as a cookie); log out ends it (a reload stays signed out); a wrong password is refused with a
// clear message; a deep link opened while signed out is opened after signing in; a server
// restarted with a new JWT secret (every access token now invalid) is ridden through with the
// refresh cookie, for HTTP calls and the live socket; revoking every session (logout-all)
// returns the dashboard to the sign-in screen.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { launchBrowser, shot } from './lib/browser.mjs';
import { startDashboard, openApp, signIn, visitor, inboxRows, waitUntil, t, PASSWORD } from './lib/dashboard.mjs';

let ctx;
let browser;
const AGENT = 'ana@northwind.test';

before(async () => {
  ctx = await startDashboard({
    projects: [{ name: 'Northwind', domains: ['localhost'] }],
    agents: [{ email: AGENT, name: 'Ana Berg', role: 'manager' }],
  });
  browser = await launchBrowser();
});

// Every test starts signed out (the tabs share the browser's cookie jar).
beforeEach(async () => {
  await browser.context.clearCookies();
});

after(async () => {
  await browser?.close();
  if (ctx) await ctx.stop();
});

// Storage and readable cookies of the page hold no JWT.
async function assertNoTokenStored(page) {
  const stored = await page.evaluate(() => JSON.stringify({ l: { ...localStorage }, s: { ...sessionStorage }, c: document.cookie }));
  assert.doesNotMatch(stored, /eyJ/, `no access token in storage: ${stored}`);
  assert.doesNotMatch(stored, /parley_refresh/, 'the refresh cookie is HttpOnly');
}

test('sign up: field checks, a taken e-mail, then the new account lands on its empty projects page', { timeout: t(60000) }, async () => {
  const page = await openApp(browser, ctx);
  await page.waitForURL(/#\/login$/);
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.waitForURL(/#\/signup$/);
  await page.locator('h1', { hasText: 'Create your account' }).waitFor();

  // the browser-side checks, each at its field
  await page.getByRole('button', { name: 'Create account' }).click();
  assert.equal(await page.getByLabel('Full name').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Work e-mail').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('autocomplete')), 'name', 'focus on the first wrong field');
  await page.getByLabel('Full name').fill('Sam Rivera');
  await page.getByLabel('Work e-mail').fill('sam@northwind.test');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  assert.match(await page.locator('.field.invalid .field-error').textContent(), /at least 8 characters/);
  await shot(page, 'dashboard-signup-errors');

  // the server's answer: the e-mail is taken
  await page.getByLabel('Work e-mail').fill(AGENT);
  await page.getByLabel('Password').fill('a long enough password');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.form-alert:not([hidden])').waitFor();
  assert.match(await page.locator('.form-alert').textContent(), /already exists/);

  await page.getByLabel('Work e-mail').fill('Sam@Northwind.test');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.shell').waitFor();
  await page.waitForURL(/#\/projects$/);
  await page.locator('.empty-page h3', { hasText: 'Create your first project' }).waitFor();
  await shot(page, 'dashboard-projects-empty');
  await assertNoTokenStored(page);
  const me = await ctx.api('POST', '/auth/login', { body: { email: 'sam@northwind.test', password: 'a long enough password' } });
  assert.equal(me.status, 200, 'the account exists (e-mail lower-cased)');
  assert.equal(me.json.user.fullName, 'Sam Rivera');
  await page.close();
});

test('sign in, reload keeps the session, log out ends it', { timeout: t(60000) }, async () => {
  const page = await openApp(browser, ctx);
  await page.locator('.auth-form').waitFor();
  await shot(page, 'dashboard-login');

  // wrong password
  await page.getByLabel('Work e-mail').fill(AGENT);
  await page.getByLabel('Password').fill('not the password');
  await page.getByLabel('Password').press('Enter');
  await page.locator('.form-alert:not([hidden])').waitFor();
  assert.equal(await page.locator('.form-alert').textContent(), 'Invalid email or password');
  assert.equal(await page.evaluate(() => document.activeElement.type), 'password', 'focus back on the password');

  await signIn(page, AGENT);
  await page.waitForURL(new RegExp(`#/inbox/${ctx.projects[0].id}$`));
  await assertNoTokenStored(page);

  // a reload: the refresh cookie brings the session back
  await page.reload();
  await page.locator('.shell').waitFor();
  await page.locator('.inbox').waitFor();
  await assertNoTokenStored(page);

  // log out from the account menu
  await page.getByRole('button', { name: 'Account: Ana Berg' }).click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('.auth-form').waitFor();
  await page.waitForURL(/#\/login$/);
  await page.reload();
  await page.locator('.auth-form').waitFor();
  assert.equal(await page.locator('.shell').count(), 0, 'still signed out after a reload');
  await page.close();
});

test('a deep link opened while signed out is shown after signing in', { timeout: t(30000) }, async () => {
  const pid = ctx.projects[0].id;
  const page = await openApp(browser, ctx, { hash: `#/settings/${pid}` });
  await page.waitForURL(/#\/login$/);
  await signIn(page, AGENT);
  await page.waitForURL(new RegExp(`#/settings/${pid}$`));
  await page.locator('.page-settings').waitFor();
  await page.close();
});

test('new JWT secret after a restart: the refresh cookie keeps the dashboard working, HTTP and live', { timeout: t(120000) }, async () => {
  const pid = ctx.projects[0].id;
  const page = await openApp(browser, ctx);
  await signIn(page, AGENT);
  await page.locator('.inbox').waitFor();
  await ctx.stop();
  await ctx.start(['--jwt-secret', crypto.randomBytes(32).toString('hex')]);
  // The socket is refused with "Invalid JWT", refreshes and reconnects; HTTP calls get 401,
  // refresh and retry. Both without the agent noticing.
  const v = await visitor(ctx, { projectId: pid });
  const m = await v.send('Hello after the key rotation');
  await waitUntil(async () => (await inboxRows(page)).some((r) => r.id === m.conversationId), { timeoutMs: t(30000), label: 'live after the new secret' });
  await page.locator(`.conv-item[data-id="${m.conversationId}"]`).click();
  await page.locator('.bubble', { hasText: 'Hello after the key rotation' }).waitFor({ timeout: t(10000) });
  assert.equal(await page.locator('.auth-form').count(), 0, 'still signed in');
  v.close();
  await page.close();
});

test('logout-all elsewhere: the dashboard returns to the sign-in screen', { timeout: t(60000) }, async () => {
  const page = await openApp(browser, ctx);
  await signIn(page, AGENT);
  await page.locator('.inbox').waitFor();
  const token = await ctx.token(AGENT);
  const r = await ctx.api('POST', '/auth/logout-all', { token });
  assert.equal(r.status, 204, r.text);
  // the next API call is refused, the refresh too: back to sign in, with a notice
  await page.getByRole('link', { name: /Settings/ }).click();
  await page.locator('.auth-form').waitFor({ timeout: t(10000) });
  await page.locator('.toast', { hasText: 'Your session has ended' }).waitFor();
  // signing in again works and returns to where the agent was going
  await signIn(page, AGENT, PASSWORD);
  await page.locator('.shell').waitFor();
  await page.close();
});
