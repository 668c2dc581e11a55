// Browser tests of the widget's delivery guarantees against the real server: a message typed
// while the server restarts is shown as sending under a visible "Reconnecting…" banner and
// delivered exactly once when it returns; unacknowledged messages survive a page reload (in
// localStorage) even across a kill -9 of the server; a message re-sent with a tempId the server
// already stored appears once; a refusal (rate_limited) marks the message failed with a Retry
// button that works. The server runs with a small per-visitor burst (2 messages per 3 s) so
// the refusal is easy to provoke; each test is a new visitor, so the limits never meet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, w, shot, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startParley, messageRows, sleep, waitUntil, t } from './lib/parley.mjs';

let ctx;
let site;
let browser;
let pid;
const BURST_WINDOW_MS = 3000;

before(async () => {
  site = await startSite({ host: '127.0.0.1', name: 'localhost' });
  ctx = await startParley({
    projects: [{ name: 'Northwind', domains: ['localhost'], settings: { headerText: 'Northwind help desk', primaryColor: '#1d4ed8' } }],
    args: ['--visitor-burst', '2', '--visitor-burst-window', String(BURST_WINDOW_MS)],
  });
  pid = ctx.projects[0].id;
  site.widgetSrc = `${ctx.url}/widget.js`;
  site.projectId = pid;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (ctx) await ctx.stop();
});

async function freshVisitor() {
  const page = await browser.newPage();
  await page.goto(site.url('/host.html?nowidget=1'));
  await page.evaluate(() => {
    localStorage.clear();
    sessionStorage.clear();
  });
  await page.goto(site.url('/host.html'));
  await w(page, '.ln').waitFor({ state: 'visible' });
  await openChat(page);
  return page;
}

const outbox = (page) => page.evaluate((p) => {
  const uid = JSON.parse(localStorage.getItem('parley:visitor_uid'));
  return JSON.parse(localStorage.getItem(`parley:${p}:${uid}:outbox`) || '[]');
}, pid);

const statusOf = async (page, text) => (await messages(page)).filter((m) => m.text === text).map((m) => m.status);

async function sentOk(page, text) {
  await send(page, text);
  await waitUntil(async () => (await statusOf(page, text))[0] === 'sent', { timeoutMs: t(5000), label: `"${text}" sent` });
}

test('server restarted mid-conversation: "Reconnecting…", the message typed meanwhile is delivered once', async () => {
  const page = await freshVisitor();
  await sentOk(page, 'Before the restart');
  assert.equal(await w(page, '.bn').isVisible(), false, 'no banner while connected');

  await ctx.stop();
  await w(page, '.bn').waitFor({ state: 'visible', timeout: t(5000) });
  assert.equal(await w(page, '.bn').textContent(), 'Reconnecting…');
  assert.equal(await w(page, '.bn').getAttribute('role'), 'status', 'announced to screen readers');
  const text = 'Typed while the server was down';
  await send(page, text);
  await sleep(300);
  assert.deepEqual(await statusOf(page, text), ['sending'], 'kept as sending');
  assert.deepEqual((await outbox(page)).map((p) => p.text), [text], 'kept in localStorage');
  await shot(page, 'widget-reconnecting');

  await ctx.start();
  await waitUntil(async () => (await statusOf(page, text))[0] === 'sent', { timeoutMs: t(20000), label: 'delivered after the restart' });
  await w(page, '.bn').waitFor({ state: 'hidden' });
  await sleep(500);
  assert.deepEqual(await statusOf(page, text), ['sent'], 'shown once');
  assert.deepEqual(await statusOf(page, 'Before the restart'), ['sent']);
  assert.equal((await messageRows(ctx.dataDir, pid, text)).length, 1, 'stored once');
  assert.equal((await messageRows(ctx.dataDir, pid, 'Before the restart')).length, 1);
  assert.deepEqual(await outbox(page), []);
  await page.close();
});

test('unacknowledged messages survive a page reload while the server is down (kill -9), then go out once', async () => {
  const page = await freshVisitor();
  await sentOk(page, 'First question');
  await ctx.srv.kill('SIGKILL');
  await w(page, '.bn').waitFor({ state: 'visible', timeout: t(5000) });
  const texts = ['Written before the reload', 'And a second one'];
  for (const text of texts) await send(page, text);
  assert.deepEqual((await outbox(page)).map((p) => p.text), texts);

  await page.reload();
  await sleep(1500); // the widget is now retrying its settings with backoff
  assert.equal(await page.locator('parley-widget').count(), 0, 'nothing shown while the server is unreachable');
  await ctx.start();
  await w(page, '.ln').waitFor({ state: 'visible', timeout: t(20000) });
  await w(page, '.win').waitFor({ state: 'visible' }); // it was open in this tab
  await waitUntil(async () => {
    const m = await messages(page);
    return m.length === 3 && m.every((x) => x.status === 'sent');
  }, { timeoutMs: t(20000), label: 'the kept messages delivered' });
  assert.deepEqual((await messages(page)).map((m) => m.text), ['First question', ...texts]);
  for (const text of texts) assert.equal((await messageRows(ctx.dataDir, pid, text)).length, 1, `"${text}" stored once`);
  assert.deepEqual(await outbox(page), []);
  assert.equal(page.consoleLog.filter((m) => m.type === 'warning').length, 0, 'no warning: the server came back in time');
  await page.close();
});

test('a message re-sent after a lost acknowledgement (same tempId) appears once and is stored once', async () => {
  const page = await freshVisitor();
  const text = 'Exactly once, please';
  await sentOk(page, text);
  const [row] = await messageRows(ctx.dataDir, pid, text);
  // As if the page had been closed before the acknowledgement arrived: the message is still in
  // the outbox when the page loads again.
  await page.evaluate(([p, tempId, content]) => {
    const uid = JSON.parse(localStorage.getItem('parley:visitor_uid'));
    localStorage.setItem(`parley:${p}:${uid}:outbox`, JSON.stringify([{ t: tempId, text: content, at: new Date().toISOString() }]));
  }, [pid, row.temp_id, text]);
  await page.reload();
  await w(page, '.win').waitFor({ state: 'visible' });
  await waitUntil(async () => (await outbox(page)).length === 0, { timeoutMs: t(5000), label: 're-sent and acknowledged' });
  await sleep(300);
  assert.deepEqual(await statusOf(page, text), ['sent'], 'one row in the widget');
  assert.equal((await messageRows(ctx.dataDir, pid, text)).length, 1, 'one row in the database');
  await page.close();
});

test('a refusal (rate_limited) marks the message failed with a Retry button; Retry sends it', async () => {
  const page = await freshVisitor();
  await sentOk(page, 'one');
  await sentOk(page, 'two');
  const started = Date.now();
  await send(page, 'three');
  await waitUntil(async () => (await statusOf(page, 'three'))[0] === 'failed', { timeoutMs: t(5000), label: 'refused' });
  const [m] = (await messages(page)).filter((x) => x.text === 'three');
  assert.match(m.meta, /Too many messages/);
  const retry = w(page, '.m.failed .rt');
  assert.equal(await retry.textContent(), 'Retry');
  assert.equal(await retry.getAttribute('aria-label'), 'Retry sending this message');
  assert.equal((await messageRows(ctx.dataDir, pid, 'three')).length, 0, 'not stored');
  await shot(w(page, '.win'), 'widget-failed');

  // Failed messages are kept (across a reload too), but not re-sent by themselves.
  await page.reload();
  await w(page, '.win').waitFor({ state: 'visible' });
  await waitUntil(async () => (await messages(page)).length === 3, { label: 'history and the failed message' });
  assert.deepEqual(await statusOf(page, 'three'), ['failed']);
  await sleep(Math.max(0, started + BURST_WINDOW_MS + 300 - Date.now()));
  assert.equal((await messageRows(ctx.dataDir, pid, 'three')).length, 0, 'not re-sent without Retry');

  await w(page, '.m.failed .rt').click();
  await waitUntil(async () => (await statusOf(page, 'three'))[0] === 'sent', { timeoutMs: t(5000), label: 'sent on retry' });
  assert.equal((await messageRows(ctx.dataDir, pid, 'three')).length, 1);
  assert.deepEqual(await outbox(page), []);
  await page.close();
});

test('two tabs queue messages during an outage: both kept (shared outbox), each delivered once', async () => {
  const tab1 = await freshVisitor();
  await sentOk(tab1, 'Hello from tab one');
  const tab2 = await browser.newPage();
  await tab2.goto(site.url('/host.html'));
  await w(tab2, '.ln').waitFor({ state: 'visible' });
  await openChat(tab2);
  await waitUntil(async () => (await messages(tab2)).length === 1, { label: 'tab 2 history' });

  await ctx.stop();
  await w(tab1, '.bn').waitFor({ state: 'visible', timeout: t(5000) });
  await w(tab2, '.bn').waitFor({ state: 'visible', timeout: t(5000) });
  await send(tab1, 'Queued in tab one');
  await send(tab2, 'Queued in tab two');
  assert.deepEqual((await outbox(tab1)).map((p) => p.text).sort(), ['Queued in tab one', 'Queued in tab two'], 'one outbox for the browser');
  await tab1.close(); // tab one is gone before the server returns: tab two adopts its message on reload
  await ctx.start();
  await tab2.reload();
  await w(tab2, '.win').waitFor({ state: 'visible', timeout: t(20000) });
  await waitUntil(async () => {
    const m = await messages(tab2);
    return m.length === 3 && m.every((x) => x.status === 'sent');
  }, { timeoutMs: t(20000), label: 'both queued messages delivered' });
  for (const text of ['Queued in tab one', 'Queued in tab two']) {
    assert.equal((await messageRows(ctx.dataDir, pid, text)).length, 1, `"${text}" stored once`);
  }
  assert.deepEqual(await outbox(tab2), []);
  await tab2.close();
});
