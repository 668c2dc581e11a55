// Browser tests of what the visitor sees of an agent, driven through the real agents HTTP API
// (docs/http-api.md: POST .../inbox/conversations/:id/typing and .../messages with a CLI token):
// the typing indicator with the agent's name, replies on the agent's side of the list (as text,
// in every open tab), the unread badge and Parley.onUnread while the window is closed, read
// state kept across reloads, and agent messages in the history after a reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, w, shot, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startParley, agentApi, messageRows, sleep, waitUntil, t } from './lib/parley.mjs';

let ctx;
let site;
let browser;
let pid;
let agent;

before(async () => {
  site = await startSite({ host: '127.0.0.1', name: 'localhost' });
  ctx = await startParley({
    projects: [{ name: 'Northwind', domains: ['localhost'], settings: { headerText: 'Northwind help desk', primaryColor: '#0e7c66' } }],
    agents: [{ email: 'maya@northwind.test', name: 'Maya Lind' }],
  });
  pid = ctx.projects[0].id;
  site.widgetSrc = `${ctx.url}/widget.js`;
  site.projectId = pid;
  browser = await launchBrowser();
  agent = await agentApi(ctx);
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (ctx) await ctx.stop();
});

// A new visitor who has sent `text`; → {page, conversationId}.
async function visitorWithConversation(text) {
  const page = await browser.newPage();
  await page.goto(site.url('/host.html?nowidget=1'));
  await page.evaluate(() => {
    localStorage.clear();
    sessionStorage.clear();
  });
  await page.goto(site.url('/host.html'));
  await w(page, '.ln').waitFor({ state: 'visible' });
  await page.evaluate(() => {
    window.unread = [];
    window.Parley.onUnread((n) => window.unread.push(n));
  });
  await openChat(page);
  await send(page, text);
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { timeoutMs: t(5000), label: 'sent' });
  const [row] = await messageRows(ctx.dataDir, pid, text);
  return { page, conversationId: row.conversation_id };
}

const agentRows = async (page) => (await messages(page)).filter((m) => !m.mine);

test('agent typing shows "… is typing", the reply appears on the agent side as text and ends the indicator', async () => {
  const { page, conversationId } = await visitorWithConversation('Do you have the Ridge 2P in green?');
  await agent.typing(conversationId, true);
  await w(page, '.ty').waitFor({ state: 'visible', timeout: t(5000) });
  assert.equal(await w(page, '.ty').textContent(), 'Maya Lind is typing…');
  assert.equal(await w(page, '.ty').getAttribute('role'), 'status');
  await shot(page, 'widget-agent-typing');
  await agent.typing(conversationId, false);
  await w(page, '.ty').waitFor({ state: 'hidden', timeout: t(5000) });

  await agent.typing(conversationId, true);
  await w(page, '.ty').waitFor({ state: 'visible', timeout: t(5000) });
  const reply = 'We do! <b>Forest green</b> ships tomorrow: https://northwind.test/ridge-2p-green';
  await agent.reply(conversationId, reply);
  await waitUntil(async () => (await agentRows(page)).length === 1, { timeoutMs: t(5000), label: 'reply shown' });
  await w(page, '.ty').waitFor({ state: 'hidden', timeout: t(2000) });
  const [r] = await agentRows(page);
  assert.equal(r.text, reply);
  const bubble = w(page, '.m.th .b').last();
  assert.equal(await bubble.locator('b').count(), 0, 'HTML in a reply stays text');
  assert.equal(await bubble.locator('a').getAttribute('href'), 'https://northwind.test/ridge-2p-green');
  assert.equal(await w(page, '.m.th').last().locator('.wh').isVisible(), true, 'the agent name above a new group');
  assert.equal(await w(page, '.bd').isVisible(), false, 'no unread badge while the window is open');
  assert.deepEqual(await page.evaluate(() => window.unread), [0], 'nothing unread: it was read as it arrived');
  await shot(page, 'widget-agent-reply');
  await page.close();
});

test('replies while the window is closed: unread badge, launcher label and onUnread; opening reads them', async () => {
  const { page, conversationId } = await visitorWithConversation('Can I return a used tent?');
  await w(page, '.x').click();
  await w(page, '.win').waitFor({ state: 'hidden' });
  await agent.reply(conversationId, 'Yes, within 100 days.');
  await agent.reply(conversationId, 'Just bring the receipt.');
  await w(page, '.bd').waitFor({ state: 'visible', timeout: t(5000) });
  await waitUntil(async () => (await w(page, '.bd').textContent()) === '2', { label: 'badge 2' });
  assert.equal(await w(page, '.ln').getAttribute('aria-label'), 'Open chat, 2 unread messages');
  assert.deepEqual(await page.evaluate(() => window.unread), [0, 1, 2]);
  await shot(page, 'widget-unread');

  // Still unread after a reload (the window stays closed).
  await page.reload();
  await w(page, '.ln').waitFor({ state: 'visible' });
  await waitUntil(async () => (await w(page, '.bd').isVisible()) && (await w(page, '.bd').textContent()) === '2', { label: 'badge after reload' });

  await openChat(page);
  await w(page, '.bd').waitFor({ state: 'hidden' });
  assert.equal(await w(page, '.ln').getAttribute('aria-label'), 'Close chat');
  assert.deepEqual((await agentRows(page)).map((m) => m.text), ['Yes, within 100 days.', 'Just bring the receipt.'], 'history after the reload');
  await w(page, '.x').click();
  await page.reload();
  await w(page, '.ln').waitFor({ state: 'visible' });
  await sleep(800);
  assert.equal(await w(page, '.bd').isVisible(), false, 'read state kept across reloads');
  await page.close();
});

test('a reply reaches every open tab; reading it in one tab clears the badge in the others', async () => {
  const { page, conversationId } = await visitorWithConversation('Two tabs open here');
  await w(page, '.x').click();
  await w(page, '.win').waitFor({ state: 'hidden' });
  const tab2 = await browser.newPage();
  await tab2.goto(site.url('/host.html'));
  await w(tab2, '.ln').waitFor({ state: 'visible' });
  await sleep(300);
  await agent.reply(conversationId, 'Hello to both tabs');
  for (const p of [page, tab2]) {
    await waitUntil(async () => (await w(p, '.bd').isVisible()) && (await w(p, '.bd').textContent()) === '1', { timeoutMs: t(5000), label: 'unread in each tab' });
  }
  await openChat(tab2);
  assert.ok((await agentRows(tab2)).some((m) => m.text === 'Hello to both tabs'));
  await w(tab2, '.bd').waitFor({ state: 'hidden' });
  await w(page, '.bd').waitFor({ state: 'hidden', timeout: t(5000) }); // read in tab 2
  await openChat(page);
  assert.ok((await agentRows(page)).some((m) => m.text === 'Hello to both tabs'));
  await tab2.close();
  await page.close();
});
