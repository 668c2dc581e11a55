// The live inbox in the dashboard (/app/), against the real server, with visitors driven by
// Node's socket.io-client: a visitor's first message makes the conversation appear without a
// reload (unread badge, online dot, snippet), typing shows in the list, opening it loads the
// history and clears the unread count on the server, the visitor panel shows the current URL
// (following updateContext live) and the session metadata; the agent's typing reaches the visitor
// as agentIsTyping and the reply as agentReplied (shown once); resolve / reopen and assign to me
// change the server's conversation; a deleted conversation leaves the list; going offline clears
// the dot; scrolling up pages through a long history; the title shows a badge while the tab is
// hidden; HTML in a message is shown as text; the dashboard rejoins its room after a server
// restart and catches up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, shot } from './lib/browser.mjs';
import {
  startDashboard, openApp, signIn, visitor, inboxRows, bubbles, setHidden, waitUntil, sleep, t,
} from './lib/dashboard.mjs';

let ctx;
let browser;
let page;
let pid;
const AGENT = 'maya@northwind.test';
const BOB = 'bob@northwind.test';

const METADATA = {
  referrer: 'https://www.google.com/search?q=ultralight+tent',
  landingPage: 'http://localhost:3000/tents/ridge-2p',
  currentUrl: 'http://localhost:3000/tents/ridge-2p',
  urlHistory: ['http://localhost:3000/tents', 'http://localhost:3000/tents/ridge-2p'],
  language: 'nb-NO',
  timeZone: 'Europe/Oslo',
  userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
};

before(async () => {
  ctx = await startDashboard({
    projects: [{ name: 'Northwind', domains: ['localhost'] }],
    agents: [
      { email: AGENT, name: 'Maya Lindqvist', role: 'manager' },
      { email: BOB, name: 'Bob Okafor' },
    ],
  });
  pid = ctx.projects[0].id;
  browser = await launchBrowser();
  page = await openApp(browser, ctx, { viewport: { width: 1440, height: 900 } });
  await signIn(page, AGENT);
  await page.locator('.inbox').waitFor();
});

after(async () => {
  await browser?.close();
  if (ctx) await ctx.stop();
});

const convApi = (cid) => ctx.get(AGENT, `/projects/${pid}/inbox/conversations/${cid}`);
const rowOf = async (cid) => (await inboxRows(page)).find((r) => r.id === cid);

test('empty inbox: a clear empty state', { timeout: t(30000) }, async () => {
  await page.locator('.empty-list h3').waitFor();
  assert.equal(await page.locator('.empty-list h3').textContent(), 'All caught up');
  await page.locator('.empty-conv').waitFor();
  await shot(page, 'dashboard-inbox-empty');
});

test('live inbox: new conversation, typing, open, visitor panel, agent typing and reply, resolve, assign', { timeout: t(90000) }, async () => {
  const v = await visitor(ctx, { projectId: pid });
  v.context('http://localhost:3000/tents/ridge-2p');
  const first = await v.send('Hi! Does the Ridge 2P fit two people with their packs inside?', METADATA);
  const cid = first.conversationId;

  // appears without a reload, with the unread badge and the online dot
  await waitUntil(() => rowOf(cid), { timeoutMs: t(5000), label: 'the conversation appears live' });
  let row = await rowOf(cid);
  assert.equal(row.unread, 1);
  assert.equal(row.online, true);
  assert.equal(row.snippet, 'Hi! Does the Ridge 2P fit two people with their packs inside?');
  assert.equal(await page.locator('.rail-badge').textContent(), '1', 'the rail counts unread conversations');

  // a second visitor, so the list has more than one row
  const v2 = await visitor(ctx, { projectId: pid });
  const other = await v2.send('Do you have the Cirrus 45 in green?', { ...METADATA, language: 'en-GB', timeZone: 'Europe/London' });
  await waitUntil(() => rowOf(other.conversationId), { timeoutMs: t(5000), label: 'second conversation' });
  assert.equal((await inboxRows(page))[0].id, other.conversationId, 'newest activity first');

  // typing shows in the list, and stops
  v.typing(true);
  await waitUntil(async () => (await rowOf(cid)).typing, { timeoutMs: t(5000), label: 'typing in the list' });
  await shot(page, 'dashboard-inbox-live');
  v.typing(false);
  await waitUntil(async () => !(await rowOf(cid)).typing, { timeoutMs: t(5000), label: 'typing cleared' });

  // open it: history, unread cleared on the server
  await page.locator(`.conv-item[data-id="${cid}"]`).click();
  await page.waitForURL(new RegExp(`#/inbox/${pid}/${cid}$`));
  await waitUntil(async () => (await bubbles(page)).length === 1, { timeoutMs: t(5000), label: 'history loaded' });
  assert.deepEqual(await bubbles(page), [{ text: first.content, mine: false, state: 'sent' }]);
  await waitUntil(async () => (await convApi(cid)).unreadCount === 0, { timeoutMs: t(5000), label: 'read on the server' });
  row = await rowOf(cid);
  assert.equal(row.active, true);
  assert.equal(row.unread, 0);

  // the visitor panel: current URL and session metadata
  const panel = page.locator('#visitor-panel');
  await panel.locator('[data-testid=current-url] a').waitFor();
  assert.equal(await panel.locator('[data-testid=current-url] a').getAttribute('href'), 'http://localhost:3000/tents/ridge-2p');
  const panelText = await panel.textContent();
  for (const s of ['Online now', 'nb-NO', 'Europe/Oslo', 'Chrome 124 on macOS', 'google.com/search?q=ultralight+tent', 'localhost:3000/tents', 'Pages visited', v.uid]) {
    assert.ok(panelText.includes(s), `the visitor panel shows ${s}: ${panelText}`);
  }
  // the current URL follows the visitor live
  await sleep(600); // the server throttles context events to 2 per second
  v.context('http://localhost:3000/checkout?step=2');
  await waitUntil(async () => (await panel.locator('[data-testid=current-url] a').getAttribute('href')) === 'http://localhost:3000/checkout?step=2', { timeoutMs: t(5000), label: 'current URL updated live' });
  assert.match(await page.locator('.conv-sub').textContent(), /Online · localhost:3000\/checkout\?step=2/);

  // the visitor types: the conversation shows it
  v.typing(true);
  await page.locator('.typing:not([hidden])').waitFor({ timeout: t(5000) });
  assert.match(await page.locator('.typing').textContent(), /is typing/);
  v.typing(false);

  // the agent types: the visitor gets agentIsTyping (with the agent's name), then stops
  const ta = page.locator('.composer textarea');
  await ta.focus();
  await page.keyboard.type('It does: two vest', { delay: 20 });
  assert.deepEqual(await v.next('agentIsTyping', (p) => p.isTyping === true), { agentName: 'Maya Lindqvist', isTyping: true });
  await shot(page, 'dashboard-conversation-typing');
  await page.keyboard.type('ibules, one for each pack.', { delay: 5 });
  await page.keyboard.down('Shift');
  await page.keyboard.press('Enter');
  await page.keyboard.up('Shift');
  await page.keyboard.type('Want the size chart?');
  assert.equal(await ta.inputValue(), 'It does: two vestibules, one for each pack.\nWant the size chart?', 'Shift+Enter breaks the line');
  await page.keyboard.press('Enter');
  const replied = await v.next('agentReplied');
  assert.equal(replied.content, 'It does: two vestibules, one for each pack.\nWant the size chart?');
  assert.equal(replied.fromCustomer, false);
  assert.deepEqual(await v.next('agentIsTyping', (p) => p.isTyping === false), { agentName: 'Maya Lindqvist', isTyping: false });
  assert.equal(await ta.inputValue(), '', 'the composer is emptied');
  await waitUntil(async () => (await bubbles(page)).filter((b) => b.mine && b.state === 'sent').length === 1, { timeoutMs: t(5000), label: 'reply shown as sent' });
  await sleep(300);
  assert.equal((await bubbles(page)).filter((b) => b.mine).length, 1, 'the reply is shown once (POST answer and room event)');

  // the visitor answers while the conversation is open: it appears, and stays read
  const thanks = await v.send('Yes please! And is it free-standing?');
  await waitUntil(async () => (await bubbles(page)).some((b) => b.text === thanks.content), { timeoutMs: t(5000), label: 'live message in the open conversation' });
  await waitUntil(async () => (await convApi(cid)).unreadCount === 0, { timeoutMs: t(5000), label: 'read while open' });
  await shot(page, 'dashboard-conversation');

  // assign to me
  await page.getByRole('button', { name: 'Assign to me' }).click();
  await waitUntil(async () => (await convApi(cid)).assigneeId === ctx.agents[0].id, { timeoutMs: t(5000), label: 'assigned on the server' });
  await page.locator('.assignee.mine').waitFor();
  assert.equal(await page.locator('.act-assign').getAttribute('aria-label'), 'Assigned to you. Unassign');

  // another agent takes it (over HTTP): the header follows conversationUpdated
  const bobToken = await ctx.token(BOB);
  const taken = await ctx.api('POST', `/projects/${pid}/inbox/conversations/${cid}/assignments`, { token: bobToken, body: {} });
  assert.equal(taken.status, 200, taken.text);
  await page.locator('.assignee', { hasText: 'Bob Okafor' }).waitFor({ timeout: t(5000) });
  await page.getByRole('button', { name: 'Assign to me' }).click();
  await waitUntil(async () => (await convApi(cid)).assigneeId === ctx.agents[0].id, { timeoutMs: t(5000), label: 'assigned back' });

  // resolve: the status changes on the server, the row leaves the Open list; reopen
  await page.getByRole('button', { name: 'Resolve', exact: true }).click();
  await waitUntil(async () => (await convApi(cid)).status === 'solved', { timeoutMs: t(5000), label: 'solved on the server' });
  await page.locator('.conv-head .pill-solved').waitFor();
  await page.getByRole('button', { name: 'Resolved', exact: true }).click();
  await waitUntil(async () => (await rowOf(cid)) && (await inboxRows(page)).every((r) => r.id === cid || r.id !== other.conversationId), { timeoutMs: t(5000), label: 'Resolved filter' });
  await shot(page, 'dashboard-conversation-resolved');
  await page.getByRole('button', { name: 'Reopen' }).click();
  await waitUntil(async () => (await convApi(cid)).status === 'open', { timeoutMs: t(5000), label: 'reopened on the server' });
  await page.getByRole('button', { name: 'Open', exact: true }).click();
  await waitUntil(async () => (await inboxRows(page)).length === 2, { timeoutMs: t(5000), label: 'Open filter' });

  // the visitor leaves: the dot goes grey, in the list and the panel
  v.close();
  await waitUntil(async () => !(await rowOf(cid)).online, { timeoutMs: t(5000), label: 'offline dot' });
  await page.locator('.vp-status:not(.on)').waitFor();

  // a conversation deleted by someone else leaves the list
  const del = await ctx.api('DELETE', `/projects/${pid}/inbox/conversations/${other.conversationId}`, { token: bobToken });
  assert.equal(del.status, 204);
  await waitUntil(async () => !(await rowOf(other.conversationId)), { timeoutMs: t(5000), label: 'deleted row removed' });
  v2.close();
});

test('message text with HTML is shown as text, never run', { timeout: t(30000) }, async () => {
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const v = await visitor(ctx, { projectId: pid });
  const evil = '<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold</b>';
  const m = await v.send(evil);
  await waitUntil(() => rowOf(m.conversationId), { timeoutMs: t(5000), label: 'row' });
  assert.equal((await rowOf(m.conversationId)).snippet, evil);
  await page.locator(`.conv-item[data-id="${m.conversationId}"]`).click();
  await waitUntil(async () => (await bubbles(page)).length === 1, { timeoutMs: t(5000), label: 'bubble' });
  assert.equal((await bubbles(page))[0].text, evil);
  assert.equal(await page.locator('.history img, .history script, .history b, .conv-list img').count(), 0, 'no element was made from the text');
  // the agent's own reply with HTML is text too, and so is a link-like text (only http(s) links)
  await page.locator('.composer textarea').fill('<i>no</i> javascript:alert(3) https://northwind.test/size-chart');
  await page.locator('.composer textarea').press('Enter');
  await waitUntil(async () => (await bubbles(page)).some((b) => b.mine && b.state === 'sent'), { timeoutMs: t(5000), label: 'reply' });
  assert.equal(await page.locator('.history i').count(), 0);
  const links = await page.locator('.history-body a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(links, ['https://northwind.test/size-chart']);
  await sleep(300);
  assert.deepEqual(dialogs, [], 'no script ran');
  await shot(page, 'dashboard-html-as-text');
  v.close();
});

test('long history: the newest page first, scrolling up loads older pages in place', { timeout: t(120000) }, async () => {
  const v = await visitor(ctx, { projectId: pid });
  const N = 95;
  let cid;
  for (let i = 1; i <= N; i++) {
    const m = await v.send(`Message number ${i} of a long conversation`);
    cid = m.conversationId;
  }
  await page.locator(`.conv-item[data-id="${cid}"]`).click();
  await waitUntil(async () => (await bubbles(page)).length === 40, { timeoutMs: t(5000), label: 'newest 40' });
  let bs = await bubbles(page);
  assert.equal(bs[0].text, 'Message number 56 of a long conversation');
  assert.equal(bs[39].text, `Message number ${N} of a long conversation`);
  // scrolled to the end at first
  const atEnd = await page.locator('.history').evaluate((h) => h.scrollHeight - h.scrollTop - h.clientHeight < 5);
  assert.ok(atEnd, 'opened at the newest message');

  // scroll to the top: the next 40 load and the message that was on top stays in view
  const anchor = page.locator('.bubble', { hasText: 'Message number 56 of a long conversation' });
  await page.locator('.history').evaluate((h) => {
    h.scrollTop = 0;
  });
  await waitUntil(async () => (await bubbles(page)).length === 80, { timeoutMs: t(5000), label: 'second page' });
  const box = await anchor.boundingBox();
  const hist = await page.locator('.history').boundingBox();
  assert.ok(box.y >= hist.y - 5 && box.y < hist.y + hist.height, `the anchor message stays in view (${box.y} in ${hist.y}..${hist.y + hist.height})`);
  await page.locator('.history').evaluate((h) => {
    h.scrollTop = 0;
  });
  await waitUntil(async () => (await bubbles(page)).length === N, { timeoutMs: t(5000), label: 'all pages' });
  bs = await bubbles(page);
  assert.deepEqual(bs.map((b) => b.text), Array.from({ length: N }, (_, i) => `Message number ${i + 1} of a long conversation`));
  await page.locator('.history-start').waitFor();
  v.close();
});

test('title badge and favicon dot while the tab is hidden', { timeout: t(30000) }, async () => {
  await page.goto(`${ctx.app}#/inbox/${pid}`);
  await page.locator('.inbox').waitFor();
  const base = await page.title();
  assert.equal(base, 'Inbox · Northwind · Parley');
  await setHidden(page, true);
  const v = await visitor(ctx, { projectId: pid });
  const m = await v.send('Anyone there?');
  await waitUntil(async () => (await page.title()) === `(1) ${base}`, { timeoutMs: t(5000), label: 'title badge' });
  await v.send('Hello?');
  await waitUntil(async () => (await page.title()) === `(2) ${base}`, { timeoutMs: t(5000), label: 'title badge 2' });
  // two messages in quick succession into a new conversation: the row has the newest and both unread
  await waitUntil(async () => {
    const r = await rowOf(m.conversationId);
    return r && r.snippet === 'Hello?' && r.unread === 2;
  }, { timeoutMs: t(5000), label: 'row with the newest message and 2 unread' });
  assert.match(await page.locator('link[rel=icon]').getAttribute('href'), /ef4444/, 'the favicon has the red dot');
  await setHidden(page, false);
  await waitUntil(async () => (await page.title()) === base, { timeoutMs: t(5000), label: 'badge cleared' });
  assert.doesNotMatch(await page.locator('link[rel=icon]').getAttribute('href'), /ef4444/);
  v.close();
});

test('server restart: the dashboard shows it is reconnecting, rejoins the room and catches up', { timeout: t(90000) }, async () => {
  await page.goto(`${ctx.app}#/inbox/${pid}`);
  await page.locator('.inbox').waitFor();
  await ctx.stop();
  await page.locator('.conn-banner:not([hidden])').waitFor({ timeout: t(10000) });
  await shot(page, 'dashboard-reconnecting');
  await ctx.start();
  await page.locator('.conn-banner').waitFor({ state: 'hidden', timeout: t(20000) });
  // live again: a new visitor's message appears without a reload
  const v = await visitor(ctx, { projectId: pid });
  const m = await v.send('Back after the restart');
  await waitUntil(() => rowOf(m.conversationId), { timeoutMs: t(10000), label: 'live after restart' });
  v.close();
});
