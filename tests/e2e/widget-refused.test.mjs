// Browser tests of the widget where it must not run: a page on an origin the project does not
// whitelist (http://127.0.0.2:<port>; the project whitelists only `localhost`), an unknown
// project, a malformed data-project-id. Each time nothing appears on the page, exactly one
// console warning explains why, there is no retry storm, and no message can be sent. Also the
// other side: a server that cannot be reached is retried with growing delays, and the widget
// appears once it answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { io } from 'socket.io-client';
import { launchBrowser, w, shot, parleyWarnings, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startParley, sql, messageRows, sleep, waitUntil, t } from './lib/parley.mjs';

let ctx;
let site; // whitelisted: http://localhost:<port>
let evil; // not whitelisted: http://127.0.0.2:<port>
let browser;
const SECRET = 'northwind-identity-secret';

before(async () => {
  site = await startSite({ host: '127.0.0.1', name: 'localhost' });
  evil = await startSite({ host: '127.0.0.2' });
  ctx = await startParley({ projects: [{ name: 'Northwind', domains: ['localhost'] }, { name: 'Verified', domains: ['localhost'] }] });
  // Project 2 verifies identities (PROTOCOL.md section 7); set before the server starts.
  await ctx.stop();
  await sql(ctx.dataDir, `update projects set identity_verification=1, identity_secret='${SECRET}' where id=${ctx.projects[1].id}`);
  await ctx.start();
  for (const s of [site, evil]) {
    s.widgetSrc = `${ctx.url}/widget.js`;
    s.projectId = ctx.projects[0].id;
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  await evil?.close();
  if (ctx) await ctx.stop();
});

// Opens url and records the requests the page makes to the Parley server.
async function load(url) {
  const page = await browser.newPage();
  const requests = [];
  page.on('request', (r) => {
    if (r.url().startsWith(ctx.url)) requests.push({ url: r.url().slice(ctx.url.length), at: Date.now() });
  });
  await page.goto(url);
  return { page, requests };
}

async function assertNothingShown(page) {
  assert.equal(await page.locator('parley-widget').count(), 0, 'no widget element');
  assert.equal(await page.locator('parley-widget').locator('.ln').count(), 0, 'no launcher');
  await page.evaluate(() => window.Parley.open());
  await sleep(200);
  assert.equal(await page.locator('parley-widget').count(), 0, 'Parley.open() shows nothing');
}

test('a page on a non-whitelisted origin: the widget stays hidden, warns once, never retries, cannot send', async () => {
  const { page, requests } = await load(evil.url('/host.html'));
  await waitUntil(() => parleyWarnings(page).length > 0, { timeoutMs: t(5000), label: 'the warning' });
  await sleep(4000); // several backoff periods: nothing more may happen
  const warnings = parleyWarnings(page);
  assert.equal(warnings.length, 1, `one warning: ${JSON.stringify(page.consoleLog)}`);
  assert.match(warnings[0].text, /refused project 1 for http:\/\/127\.0\.0\.2:\d+/);
  assert.match(warnings[0].text, /whitelisted domains/);
  await assertNothingShown(page);
  const settings = requests.filter((r) => r.url === '/api/v1/public/projects/1/settings');
  assert.equal(settings.length, 2, 'the settings request and one no-cors probe, no retries');
  assert.ok(settings[1].at - settings[0].at < 1000, 'the probe follows at once');
  assert.equal(requests.filter((r) => r.url.startsWith('/socket.io/')).length, 0, 'no Socket.IO connection attempted');
  await shot(page, 'widget-refused-origin');

  // Nothing can be sent from this origin: the browser may not even read a Socket.IO handshake,
  const fromPage = await page.evaluate(async (base) => {
    try {
      const r = await fetch(`${base}/socket.io/?EIO=4&transport=polling&projectId=1`);
      return `read ${r.status}`;
    } catch (e) {
      return `blocked: ${e.name}`;
    }
  }, ctx.url);
  assert.equal(fromPage, 'blocked: TypeError');
  // and the server refuses the connection for this Origin (a non-browser client could send it).
  const socket = io(ctx.url, { query: { projectId: '1' }, extraHeaders: { Origin: evil.origin }, transports: ['websocket'], reconnection: false });
  const err = await new Promise((resolve) => {
    socket.on('connect', () => resolve(null));
    socket.on('connect_error', resolve);
  });
  socket.close();
  assert.equal(err?.message, 'Origin not whitelisted');
  assert.deepEqual(await sql(ctx.dataDir, 'select count(*) as n from visitors'), [{ n: 0 }], 'no visitor was created');
  await page.close();
});

test('an unknown project id: nothing shown, one warning', async () => {
  const { page, requests } = await load(site.url('/host.html?pid=999'));
  await waitUntil(() => parleyWarnings(page).length > 0, { timeoutMs: t(5000), label: 'the warning' });
  await sleep(2500);
  assert.equal(parleyWarnings(page).length, 1);
  assert.match(parleyWarnings(page)[0].text, /project 999/);
  await assertNothingShown(page);
  assert.equal(requests.filter((r) => r.url.includes('/settings')).length, 2, 'no retries');
  await page.close();
});

test('a malformed data-project-id: nothing shown, one warning naming the attribute, no request', async () => {
  const { page, requests } = await load(site.url('/host.html?pid=12abc'));
  await waitUntil(() => parleyWarnings(page).length > 0, { timeoutMs: t(5000), label: 'the warning' });
  await sleep(500);
  assert.equal(parleyWarnings(page).length, 1);
  assert.match(parleyWarnings(page)[0].text, /data-project-id/);
  assert.deepEqual(requests.map((r) => r.url), ['/widget.js'], 'only the script itself');
  await assertNothingShown(page);
  await page.close();
});

test('an unreachable server is retried with growing delays; the widget appears once it answers', async () => {
  const page = await browser.newPage();
  // Each attempt is the settings request and, once it fails, a no-cors probe right after it.
  const attempts = [];
  let last = 0;
  await page.route('**/api/v1/public/projects/*/settings', (route) => {
    const now = Date.now();
    if (now - last > 400) attempts.push(now);
    last = now;
    return route.abort('connectionrefused');
  });
  await page.goto(site.url('/host.html'));
  await waitUntil(() => attempts.length >= 4, { timeoutMs: t(15000), label: 'four attempts' });
  const gaps = attempts.slice(1).map((a, i) => a - attempts[i]);
  assert.ok(gaps[0] >= 600 && gaps[0] <= 1600, `first retry after about 1 s: ${gaps}`);
  assert.ok(gaps[1] > gaps[0] * 1.2 && gaps[2] > gaps[1] * 1.2, `growing delays: ${gaps}`);
  assert.equal(await page.locator('parley-widget').count(), 0);
  assert.equal(parleyWarnings(page).length, 0, 'no warning while still retrying');
  await page.unroute('**/api/v1/public/projects/*/settings');
  await w(page, '.ln').waitFor({ state: 'visible', timeout: t(20000) });
  assert.equal(parleyWarnings(page).length, 0);
  await page.close();
});

test('identity verification: data-visitor-uid with a valid data-user-hash chats; a wrong hash is refused', async () => {
  const pid = ctx.projects[1].id;
  const uid = 'customer_4711';
  const hash = crypto.createHmac('sha256', SECRET).update(uid).digest('hex');
  const ok = await browser.newPage();
  await ok.goto(site.url(`/host.html?pid=${pid}&uid=${uid}&hash=${hash}`));
  await w(ok, '.ln').waitFor({ state: 'visible' });
  await openChat(ok);
  await send(ok, 'Hello as a signed-in customer');
  await waitUntil(async () => (await messages(ok))[0]?.status === 'sent', { timeoutMs: t(5000), label: 'sent' });
  const rows = await messageRows(ctx.dataDir, pid, 'Hello as a signed-in customer');
  assert.equal(rows.length, 1);
  assert.equal(rows[0].uid, uid, 'the uid given by the site, not a random one');
  await ok.close();

  const bad = await browser.newPage();
  await bad.goto(site.url(`/host.html?pid=${pid}&uid=${uid}&hash=${'0'.repeat(64)}`));
  await w(bad, '.ln').waitFor({ state: 'visible' });
  await waitUntil(() => parleyWarnings(bad).length > 0, { timeoutMs: t(5000), label: 'the warning' });
  assert.match(parleyWarnings(bad)[0].text, /refused this visitor: Identity verification failed/);
  await openChat(bad);
  assert.equal(await w(bad, '.bn').textContent(), 'Chat is unavailable right now.');
  await sleep(1500);
  assert.equal(parleyWarnings(bad).length, 1, 'no reconnect loop');
  await bad.close();
});
