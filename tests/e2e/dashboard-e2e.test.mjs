// End to end, two browsers: a customer page served from a second local origin
// (http://localhost:<port>) that the demo project (`serve --demo`: localhost and 127.0.0.1)
// whitelists embeds the real widget.js; an agent is signed in to the dashboard
// (http://127.0.0.1:<port>/app/) in another browser. The visitor sends a message, the agent sees
// the conversation appear live with the page the visitor is on, types (the visitor sees the
// typing indicator) and replies (the visitor sees the reply); the visitor reloads the page and
// keeps the history; the server is restarted mid-conversation and a message typed while it was
// down is delivered once after it returns: one row in the database, one bubble in the dashboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, w, shot, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startDashboard, openApp, signIn, inboxRows, bubbles, sql, q, waitUntil, t } from './lib/dashboard.mjs';

let ctx;
let site;
let visitorBrowser;
let agentBrowser;
let vpage;
let apage;
const AGENT = 'maya@northwind.test';

before(async () => {
  ctx = await startDashboard({ demo: true, agents: [{ email: AGENT, name: 'Maya Lindqvist', role: 'manager' }] });
  assert.equal(ctx.projects[0].id, 1, 'the demo project');
  site = await startSite({ host: '127.0.0.1', name: 'localhost', widgetSrc: `${ctx.url}/widget.js`, projectId: 1 });
  visitorBrowser = await launchBrowser();
  agentBrowser = await launchBrowser();
  apage = await openApp(agentBrowser, ctx, { viewport: { width: 1440, height: 900 } });
  await signIn(apage, AGENT);
  await apage.locator('.inbox').waitFor();
});

after(async () => {
  await visitorBrowser?.close();
  await agentBrowser?.close();
  await site?.close();
  if (ctx) await ctx.stop();
});

const rowCount = async (content) =>
  (await sql(ctx.dataDir, `select count(*) as n from messages where content=${q(content)}`))[0].n;

let cid;

test('the visitor writes from the customer site; the agent sees it live, types and replies', { timeout: t(90000) }, async () => {
  vpage = await visitorBrowser.newPage({ width: 1280, height: 800 });
  await vpage.goto(site.url('/host.html'));
  await w(vpage, '.ln').waitFor({ state: 'visible' });
  await openChat(vpage);
  await send(vpage, 'Hi! Do you ship the Ridge 2P tent to Norway?');
  await waitUntil(async () => (await messages(vpage)).some((m) => m.text === 'Hi! Do you ship the Ridge 2P tent to Norway?' && m.status === 'sent'), { timeoutMs: t(10000), label: 'sent' });

  // the agent's inbox: the conversation appears without a reload
  await waitUntil(async () => (await inboxRows(apage)).length === 1, { timeoutMs: t(10000), label: 'conversation appears live' });
  const [row] = await inboxRows(apage);
  cid = row.id;
  assert.equal(row.snippet, 'Hi! Do you ship the Ridge 2P tent to Norway?');
  assert.equal(row.unread, 1);
  assert.equal(row.online, true);

  await apage.locator(`.conv-item[data-id="${cid}"]`).click();
  await apage.locator('.bubble', { hasText: 'Ridge 2P' }).waitFor();
  // the visitor panel: the page the visitor is on, and the metadata the widget sent
  const current = apage.locator('#visitor-panel [data-testid=current-url] a');
  await current.waitFor();
  assert.equal(await current.getAttribute('href'), site.url('/host.html'));
  assert.match(await apage.locator('#visitor-panel').textContent(), /Landing page/);

  // the agent types: the visitor sees the typing indicator with the agent's name
  await apage.locator('.composer textarea').focus();
  await apage.keyboard.type('Yes! We ship to Norway in 3', { delay: 15 });
  await waitUntil(() => w(vpage, '.ty').isVisible(), { timeoutMs: t(5000), label: 'typing indicator in the widget' });
  assert.match(await w(vpage, '.ty').textContent(), /Maya Lindqvist/);
  await shot(vpage, 'e2e-visitor-sees-typing');
  await shot(apage, 'e2e-agent-typing');

  // the reply
  await apage.keyboard.type('–5 days, free over 100 €.');
  await apage.keyboard.press('Enter');
  const reply = 'Yes! We ship to Norway in 3–5 days, free over 100 €.';
  await waitUntil(async () => (await messages(vpage)).some((m) => m.text === reply && !m.mine), { timeoutMs: t(10000), label: 'reply in the widget' });
  await waitUntil(async () => !(await w(vpage, '.ty').isVisible()), { timeoutMs: t(5000), label: 'typing indicator gone' });
  await shot(vpage, 'e2e-visitor-sees-reply');
  assert.equal(await rowCount(reply), 1);
});

test('the visitor reloads the page and keeps the history', { timeout: t(60000) }, async () => {
  await vpage.reload();
  await w(vpage, '.ln').waitFor({ state: 'visible' });
  await openChat(vpage);
  await waitUntil(async () => (await messages(vpage)).length >= 2, { timeoutMs: t(10000), label: 'history after reload' });
  const ms = await messages(vpage);
  assert.deepEqual(ms.map((m) => [m.text, m.mine]), [
    ['Hi! Do you ship the Ridge 2P tent to Norway?', true],
    ['Yes! We ship to Norway in 3–5 days, free over 100 €.', false],
  ]);
});

test('server restarted mid-conversation: a message typed while it is down is delivered once', { timeout: t(120000) }, async () => {
  await ctx.stop();
  const text = 'Great, and can I return it if it does not fit?';
  await send(vpage, text);
  await waitUntil(async () => (await messages(vpage)).some((m) => m.text === text && m.status === 'sending'), { timeoutMs: t(5000), label: 'sending while down' });
  await apage.locator('.conn-banner:not([hidden])').waitFor({ timeout: t(10000) });
  await shot(apage, 'e2e-agent-server-down');
  await shot(vpage, 'e2e-visitor-server-down');

  await ctx.start();
  await waitUntil(async () => (await messages(vpage)).some((m) => m.text === text && m.status === 'sent'), { timeoutMs: t(30000), label: 'delivered after the restart' });
  assert.equal(await rowCount(text), 1, 'stored once');
  // the dashboard reconnects, rejoins and shows it once
  await apage.locator('.conn-banner').waitFor({ state: 'hidden', timeout: t(20000) });
  await waitUntil(async () => (await bubbles(apage)).some((b) => b.text === text), { timeoutMs: t(20000), label: 'the agent sees it' });
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await bubbles(apage)).filter((b) => b.text === text).length, 1, 'shown once in the dashboard');
  assert.equal((await messages(vpage)).filter((m) => m.text === text).length, 1, 'shown once in the widget');

  // and the conversation goes on
  await apage.locator('.composer textarea').fill('Of course: 100 days, free returns.');
  await apage.locator('.composer textarea').press('Enter');
  await waitUntil(async () => (await messages(vpage)).some((m) => m.text === 'Of course: 100 days, free returns.'), { timeoutMs: t(10000), label: 'reply after restart' });
  await shot(apage, 'e2e-agent-conversation');
  await shot(vpage, 'e2e-visitor-conversation');
  assert.equal((await inboxRows(apage)).length, 1, 'still one conversation');
});
