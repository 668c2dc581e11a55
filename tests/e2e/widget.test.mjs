// Browser tests of the embeddable widget (web/widget → /widget.js) on a customer page served
// from a second origin (http://localhost:<port>, whitelisted) against the real server: loading
// without blocking the page and with no globals but window.Parley, the window with the
// project's settings, sending (sending → sent, one database row), text never parsed as HTML,
// the composer's keys and length counter, history after a reload and in a second tab,
// keyboard use, a phone-sized viewport, single-page-app navigation reported with updateContext,
// sessionMetadata on the first message, throttled typing events, the JavaScript API.
// Screenshots of the key states go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, w, shot, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startParley, agentSocket, messageRows, sql, sleep, waitUntil, t } from './lib/parley.mjs';

let ctx;
let site;
let browser;
let pid;

const SETTINGS = {
  headerText: 'Northwind help desk',
  welcomeMessage: 'Hi there! Questions about sizing, shipping or returns? Ask away.',
  agentDisplayName: 'Maya',
  primaryColor: '#0e7c66',
};

before(async () => {
  site = await startSite({ host: '127.0.0.1', name: 'localhost' });
  ctx = await startParley({
    projects: [{ name: 'Northwind', domains: ['localhost'], settings: { ...SETTINGS, companyLogoUrl: site.url('/logo.svg') } }],
    agents: [{ email: 'maya@northwind.test', name: 'Maya' }],
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

// A tab whose browser has never seen the widget (no visitor uid yet) on path.
async function freshVisitor(path = '/host.html', viewport) {
  const page = await browser.newPage(viewport);
  await page.goto(site.url('/host.html?nowidget=1'));
  await page.evaluate(() => {
    localStorage.clear();
    sessionStorage.clear();
  });
  await page.goto(site.url(path));
  await w(page, '.ln').waitFor({ state: 'visible' });
  return page;
}

const uidOf = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('parley:visitor_uid')));
const problems = (page) => page.consoleLog.filter((m) => ['error', 'warning', 'pageerror'].includes(m.type));
const focusedInWidget = (page) => page.evaluate(() => {
  const a = document.activeElement;
  if (!a || a.tagName !== 'PARLEY-WIDGET') return null;
  const f = a.shadowRoot.activeElement;
  return f ? f.tagName.toLowerCase() + (f.className ? `.${f.className}` : '') : null;
});

test('the widget loads on a whitelisted page: launcher visible, only window.Parley added, a clean console', async () => {
  const page = await browser.newPage();
  await page.goto(site.url('/host.html?nowidget=1'));
  const plain = await page.evaluate(() => Object.getOwnPropertyNames(window));
  await page.goto(site.url('/host.html'));
  await w(page, '.ln').waitFor({ state: 'visible' });
  await sleep(500); // let it connect and identify
  const withWidget = await page.evaluate(() => Object.getOwnPropertyNames(window));
  assert.deepEqual(withWidget.filter((k) => !plain.includes(k)), ['Parley'], 'the only new global');
  assert.deepEqual(await page.evaluate(() => Object.keys(window.Parley).sort()), ['close', 'onUnread', 'open', 'toggle']);
  assert.equal(await page.locator('parley-widget').count(), 1, 'one host element');
  assert.equal(await page.evaluate(() => document.querySelector('parley-widget').id), '', 'no id (ids become globals)');
  const ln = w(page, '.ln');
  assert.equal(await ln.getAttribute('aria-label'), 'Open chat');
  assert.equal(await ln.getAttribute('aria-expanded'), 'false');
  assert.equal(await w(page, '.win').isVisible(), false, 'the window starts closed');
  const box = await ln.boundingBox();
  assert.ok(box.x + box.width <= 1280 - 16 && box.y + box.height <= 800 - 16, `launcher at the bottom right: ${JSON.stringify(box)}`);
  assert.ok(box.x > 1280 - 100 && box.y > 800 - 100, `launcher at the bottom right: ${JSON.stringify(box)}`);
  assert.deepEqual(problems(page), [], 'no console errors or warnings');
  await shot(page, 'widget-closed');
  await page.close();
});

test('the page renders without waiting for widget.js (async, nothing blocking)', async () => {
  const page = await browser.newPage();
  let release;
  const held = new Promise((r) => {
    release = r;
  });
  await page.route('**/widget.js', async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(site.url('/host.html'), { waitUntil: 'domcontentloaded', timeout: t(5000) });
  await page.locator('#headline').waitFor({ state: 'visible', timeout: t(5000) });
  // The page has painted and finished parsing while widget.js is still on its way.
  await waitUntil(() => page.evaluate(() => performance.getEntriesByName('first-contentful-paint').length > 0), { label: 'first paint' });
  assert.equal(await page.evaluate(() => document.readyState !== 'loading'), true);
  assert.equal(await page.locator('parley-widget').count(), 0, 'no widget yet');
  release();
  await w(page, '.ln').waitFor({ state: 'visible' });
  await page.close();
});

test('opening the window shows the settings: header text, logo, colour, agent name, welcome message', async () => {
  const page = await freshVisitor();
  await w(page, '.ln').click();
  await w(page, '.win').waitFor({ state: 'visible' });
  assert.equal(await w(page, '.win').getAttribute('role'), 'dialog');
  assert.equal(await w(page, '.win').getAttribute('aria-label'), SETTINGS.headerText);
  assert.equal(await w(page, '.ti').textContent(), SETTINGS.headerText);
  assert.equal(await w(page, '.su').textContent(), SETTINGS.agentDisplayName);
  assert.equal(await w(page, '.ls .m .b').first().textContent(), SETTINGS.welcomeMessage);
  assert.equal(await w(page, '.ls .m .wh').first().textContent(), SETTINGS.agentDisplayName);
  assert.equal(await w(page, 'img.logo').getAttribute('src'), site.url('/logo.svg'));
  await waitUntil(() => w(page, 'img.logo').evaluate((i) => i.complete && i.naturalWidth > 0), { label: 'logo loaded' });
  const bg = (sel) => w(page, sel).evaluate((e) => getComputedStyle(e).backgroundColor);
  assert.equal(await bg('.ln'), 'rgb(14, 124, 102)', 'launcher in the primary colour');
  assert.match(await w(page, '.hd').evaluate((e) => getComputedStyle(e).backgroundImage), /gradient/);
  assert.equal(await bg('.sd'), 'rgb(14, 124, 102)', 'send button in the primary colour');
  assert.equal(await w(page, '.ln').getAttribute('aria-expanded'), 'true');
  assert.equal(await w(page, '.ln').getAttribute('aria-label'), 'Close chat');
  assert.equal(await focusedInWidget(page), 'textarea', 'focus moves to the composer');
  assert.deepEqual(await messages(page), [], 'a new visitor has no messages');
  await sleep(300);
  await shot(page, 'widget-open');
  await page.close();
});

test('the visitor sends a message: shown at once as sending, then sent; one row in the database', async () => {
  const page = await freshVisitor();
  await openChat(page);
  // Record every state the row goes through.
  await w(page, '.ls').evaluate((ls) => {
    window.rowStates = [];
    new MutationObserver(() => {
      for (const m of ls.querySelectorAll('.m.me')) window.rowStates.push(`${m.className}|${m.querySelector('.mt').textContent}`);
    }).observe(ls, { subtree: true, childList: true, attributes: true, characterData: true });
  });
  const text = 'Hello! Do you ship the Ridge 2P tent to Norway?';
  await send(page, text);
  assert.equal(await w(page, 'textarea').inputValue(), '', 'composer cleared');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { timeoutMs: t(5000), label: 'message sent' });
  const states = await page.evaluate(() => window.rowStates);
  const sendingAt = states.findIndex((s) => s.includes('sending') && s.endsWith('Sending…'));
  const sentAt = states.findIndex((s) => !s.includes('sending') && /^Sent · /.test(s.split('|')[1]));
  assert.ok(sendingAt >= 0, `shown as sending first: ${JSON.stringify(states)}`);
  assert.ok(sentAt > sendingAt, `then as sent: ${JSON.stringify(states)}`);
  const [m] = await messages(page);
  assert.deepEqual({ text: m.text, mine: m.mine }, { text, mine: true });
  assert.match(m.meta, /^Sent · \d{1,2}:\d{2}/);

  const uid = await uidOf(page);
  assert.match(uid, /^[A-Za-z0-9_-]{8,64}$/, 'visitor uid from crypto.randomUUID()');
  const rows = await messageRows(ctx.dataDir, pid, text);
  assert.equal(rows.length, 1, `one row: ${JSON.stringify(rows)}`);
  assert.equal(rows[0].uid, uid);
  assert.equal(rows[0].from_customer, 1);
  assert.equal(rows[0].status, 'sent');
  assert.match(rows[0].temp_id, /^[0-9a-f-]{36}$/);
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), `parley:${pid}:${uid}:outbox`), null, 'nothing left unacknowledged');
  await shot(page, 'widget-sent');
  await page.close();
});

test('message text is shown as text: HTML is not interpreted, links are plain anchors', async () => {
  const page = await freshVisitor();
  await openChat(page);
  const html = '<img src=x onerror="window.pwned=1"><b>bold</b> & <script>window.pwned=2</script>';
  await send(page, html);
  await send(page, 'Spec sheet: https://example.com/ridge-2p?ref=chat. Thanks');
  await waitUntil(async () => (await messages(page)).filter((m) => m.status === 'sent').length === 2, { label: 'both sent' });
  const [a, b] = await messages(page);
  assert.equal(a.text, html);
  const bubbles = w(page, '.ls .m.me .b');
  assert.equal(await bubbles.nth(0).evaluate((e) => e.children.length), 0, 'no elements made from the text');
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(b.text, 'Spec sheet: https://example.com/ridge-2p?ref=chat. Thanks');
  const link = bubbles.nth(1).locator('a');
  assert.equal(await link.getAttribute('href'), 'https://example.com/ridge-2p?ref=chat', 'trailing punctuation not in the link');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.equal(await link.getAttribute('rel'), 'noopener noreferrer nofollow');
  const rows = await messageRows(ctx.dataDir, pid, html);
  assert.equal(rows.length, 1, 'stored byte for byte');
  await page.close();
});

test('composer: Enter sends, Shift+Enter adds a line, a counter near the 5000-character limit, nothing sent over it', async () => {
  const page = await freshVisitor();
  await openChat(page);
  const ta = w(page, 'textarea');
  assert.equal(await w(page, '.sd').isDisabled(), true, 'send disabled while empty');
  await ta.press('Enter');
  await ta.type('first line');
  await ta.press('Shift+Enter');
  await ta.type('second line');
  assert.equal(await ta.inputValue(), 'first line\nsecond line');
  await ta.press('Enter');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
  assert.equal((await messages(page))[0].text, 'first line\nsecond line');
  assert.equal((await messageRows(ctx.dataDir, pid, 'first line\nsecond line')).length, 1);

  await ta.fill('x'.repeat(3999));
  assert.equal(await w(page, '.ct').textContent(), '', 'no counter far from the limit');
  await ta.fill('é'.repeat(4200)); // code points, as the server counts
  assert.equal(await w(page, '.ct').textContent(), '4200 / 5000');
  assert.equal(await w(page, '.sd').isDisabled(), false);
  await ta.fill('😀'.repeat(5001));
  assert.equal(await w(page, '.ct').textContent(), '5001 / 5000');
  assert.match(await w(page, '.ct').getAttribute('class'), /\bover\b/);
  assert.equal(await w(page, '.sd').isDisabled(), true, 'send disabled over the limit');
  await ta.press('Enter');
  await sleep(300);
  assert.equal((await messages(page)).length, 1, 'nothing sent over the limit');
  assert.equal(await ta.inputValue(), '😀'.repeat(5001), 'the text is kept for editing');
  await shot(w(page, '.win'), 'widget-counter');
  await ta.fill(' '.repeat(10));
  assert.equal(await w(page, '.sd').isDisabled(), true, 'blank text cannot be sent');
  await page.close();
});

test('history survives a reload and shows in a second tab of the same browser', async () => {
  const page = await freshVisitor();
  await openChat(page);
  for (const text of ['Is the Cirrus 45 waterproof?', 'And does it fit a bear canister?']) await send(page, text);
  await waitUntil(async () => (await messages(page)).filter((m) => m.status === 'sent').length === 2, { label: 'two sent' });
  const shown = (await messages(page)).map(({ text, mine }) => ({ text, mine }));
  await page.reload();
  await w(page, '.win').waitFor({ state: 'visible' }); // it was open: it stays open in this tab
  await waitUntil(async () => (await messages(page)).length === 2, { label: 'history after reload' });
  assert.deepEqual((await messages(page)).map(({ text, mine }) => ({ text, mine })), shown);
  assert.deepEqual((await messages(page)).map((m) => m.status), ['sent', 'sent']);

  const tab2 = await browser.newPage();
  await tab2.goto(site.url('/host.html'));
  await w(tab2, '.ln').waitFor({ state: 'visible' });
  assert.equal(await w(tab2, '.win').isVisible(), false, 'a new tab starts closed');
  await openChat(tab2);
  await waitUntil(async () => (await messages(tab2)).length === 2, { label: 'history in tab 2' });
  assert.deepEqual((await messages(tab2)).map(({ text, mine }) => ({ text, mine })), shown);
  assert.equal(await uidOf(tab2), await uidOf(page), 'one visitor per browser');
  // A message from tab 2 reaches tab 1 too (messageSent goes to every socket of the visitor).
  await send(tab2, 'Sent from the second tab');
  await waitUntil(async () => (await messages(page)).some((m) => m.text === 'Sent from the second tab' && m.status === 'sent'),
    { label: 'tab 1 shows the message of tab 2' });
  assert.equal((await messageRows(ctx.dataDir, pid, 'Sent from the second tab')).length, 1);
  await tab2.close();
  await page.close();
});

test('keyboard: Tab reaches the launcher, Enter opens, typing and Enter send, Escape closes and returns focus', async () => {
  const page = await freshVisitor();
  let found = false;
  for (let i = 0; i < 25 && !found; i++) {
    await page.keyboard.press('Tab');
    found = (await focusedInWidget(page)) === 'button.ln';
  }
  assert.ok(found, 'the launcher is in the tab order');
  assert.equal(await w(page, '.ln').evaluate((e) => e.matches(':focus-visible')), true);
  assert.notEqual(await w(page, '.ln').evaluate((e) => getComputedStyle(e).outlineStyle), 'none', 'a visible focus ring');
  await page.keyboard.press('Enter');
  await w(page, '.win').waitFor({ state: 'visible' });
  assert.equal(await focusedInWidget(page), 'textarea');
  await page.keyboard.type('Typed with the keyboard only');
  await page.keyboard.press('Enter');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent from the keyboard' });
  await page.keyboard.press('Escape');
  await w(page, '.win').waitFor({ state: 'hidden' });
  assert.equal(await focusedInWidget(page), 'button.ln', 'focus back on the launcher');
  assert.equal(await w(page, '.ln').getAttribute('aria-expanded'), 'false');
  await page.keyboard.press('Space');
  await w(page, '.win').waitFor({ state: 'visible' });
  // The header's close button is reachable and labelled.
  const x = w(page, '.x');
  assert.equal(await x.getAttribute('aria-label'), 'Close chat');
  await x.focus();
  await page.keyboard.press('Enter');
  await w(page, '.win').waitFor({ state: 'hidden' });
  assert.equal(await focusedInWidget(page), 'button.ln');
  // Labels for assistive technology.
  assert.equal(await w(page, 'textarea').getAttribute('aria-label'), 'Message');
  assert.equal(await w(page, '.sd').getAttribute('aria-label'), 'Send message');
  assert.equal(await w(page, '.ls').getAttribute('role'), 'log');
  await page.close();
});

test('a phone-sized viewport (375x667): the window fills the screen and everything fits', async () => {
  const vp = { width: 375, height: 667 };
  const page = await freshVisitor('/host.html', vp);
  const ln = await w(page, '.ln').boundingBox();
  assert.ok(ln.x >= 0 && ln.y >= 0 && ln.x + ln.width <= vp.width && ln.y + ln.height <= vp.height, `launcher on screen: ${JSON.stringify(ln)}`);
  await shot(page, 'widget-mobile-closed');
  await w(page, '.ln').click();
  await w(page, '.win').waitFor({ state: 'visible' });
  await sleep(300);
  const win = await w(page, '.win').boundingBox();
  assert.deepEqual(win, { x: 0, y: 0, width: vp.width, height: vp.height }, 'full screen');
  for (const sel of ['.hd', '.x', 'textarea', '.sd', '.ls']) {
    const b = await w(page, sel).boundingBox();
    assert.ok(b && b.x >= 0 && b.y >= 0 && b.x + b.width <= vp.width + 0.5 && b.y + b.height <= vp.height + 0.5, `${sel} fits: ${JSON.stringify(b)}`);
  }
  assert.equal(await w(page, '.ln').isVisible(), false, 'the launcher hides under the full-screen window');
  assert.equal(await w(page, 'textarea').evaluate((e) => getComputedStyle(e).fontSize), '16px', 'no zoom-on-focus on phones');
  await send(page, 'Writing from my phone');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), vp.width, 'no horizontal scrolling');
  await shot(page, 'widget-mobile-open');
  await w(page, '.x').click();
  await w(page, '.ln').waitFor({ state: 'visible' });
  await page.close();
});

test('single-page-app navigation is reported with updateContext; the first message carries sessionMetadata', async () => {
  const agent = await agentSocket(ctx);
  try {
    const page = await browser.newPage();
    await page.goto(site.url('/host.html?nowidget=1'));
    await page.evaluate(() => {
      localStorage.clear();
      sessionStorage.clear();
    });
    await page.goto(site.url('/app/start'), { referer: 'https://search.example/?q=ultralight+tents' });
    await w(page, '.ln').waitFor({ state: 'visible' });
    const uid = await waitUntil(() => uidOf(page), { label: 'uid' });
    const ctxEvent = (suffix) => agent.next('visitorContextUpdated', (p) => p.visitorUid === uid && p.currentUrl.endsWith(suffix));
    const first = await ctxEvent('/app/start');
    assert.equal(first.currentUrl, site.url('/app/start'));
    assert.equal(first.conversationId, null, 'no conversation yet');

    await page.click('#to-pricing'); // history.pushState
    await ctxEvent('/app/pricing?plan=team');
    await page.click('#to-docs'); // history.replaceState
    await ctxEvent('/app/docs');
    await page.goBack(); // popstate
    await ctxEvent('/app/start');
    await page.click('#to-hash'); // hashchange
    await ctxEvent('/app/start#faq');
    assert.equal(await page.evaluate(() => document.getElementById('view').textContent), 'Page: /app/start#faq', 'the app still routes');

    await openChat(page);
    await send(page, 'Which plan includes the API?');
    await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
    const [conv] = await sql(ctx.dataDir, `select c.metadata from conversations c join visitors v on v.id = c.visitor_id where v.uid = '${uid}'`);
    const meta = JSON.parse(conv.metadata);
    assert.equal(meta.referrer, 'https://search.example/?q=ultralight+tents');
    assert.equal(meta.landingPage, site.url('/app/start'));
    assert.equal(meta.currentUrl, site.url('/app/start#faq'));
    assert.deepEqual(meta.urlHistory, [
      site.url('/app/start'), site.url('/app/pricing?plan=team'), site.url('/app/docs'),
      site.url('/app/start'), site.url('/app/start#faq'),
    ]);
    assert.equal(typeof meta.language, 'string');
    assert.equal(typeof meta.userAgent, 'string');
    assert.ok(JSON.stringify(meta).length < 16384);

    // Later navigation names the conversation.
    await page.click('#to-pricing');
    const later = await ctxEvent('/app/pricing?plan=team');
    assert.ok(Number.isInteger(later.conversationId), `conversationId now: ${JSON.stringify(later)}`);
    await page.close();
  } finally {
    agent.close();
  }
});

test('typing events reach the agents, throttled, and stop after a pause or on send', async () => {
  const agent = await agentSocket(ctx);
  try {
    const page = await freshVisitor();
    const uid = await uidOf(page);
    await openChat(page);
    await sleep(300);
    const ta = w(page, 'textarea');
    const started = Date.now();
    while (Date.now() - started < 3000) await ta.type('a', { delay: 0 }).then(() => sleep(100));
    const on = () => agent.all('visitorIsTyping', (p) => p.visitorUid === uid && p.isTyping === true);
    await agent.next('visitorIsTyping', (p) => p.visitorUid === uid && p.isTyping === true);
    assert.ok(on().length >= 1 && on().length <= 2, `isTyping:true throttled over 3 s of typing: ${on().length}`);
    await agent.next('visitorIsTyping', (p) => p.visitorUid === uid && p.isTyping === false, t(6000));
    const count = on().length;
    await sleep(1100); // the server takes 2 typing events a second
    await ta.type('b');
    await waitUntil(() => on().length === count + 1, { label: 'isTyping:true again after the pause' });
    await ta.press('Enter');
    await agent.next('visitorIsTyping', (p) => p.visitorUid === uid && p.isTyping === false, t(1500));
    await agent.next('newMessage', (m) => /^a+b$/.test(m.content));
    await page.close();
  } finally {
    agent.close();
  }
});

test('the JavaScript API: Parley.open(), close(), toggle(), onUnread(cb)', async () => {
  const page = await freshVisitor();
  const calls = await page.evaluate(() => {
    const seen = [];
    const off = window.Parley.onUnread((n) => seen.push(n));
    window.unreadSeen = seen;
    window.offUnread = off;
    return seen.slice();
  });
  assert.deepEqual(calls, [0], 'the callback gets the current count at once');
  assert.equal(await page.evaluate(() => typeof window.offUnread), 'function', 'onUnread returns an unsubscribe function');
  await page.evaluate(() => window.Parley.open());
  await w(page, '.win').waitFor({ state: 'visible' });
  await page.evaluate(() => window.Parley.toggle());
  await w(page, '.win').waitFor({ state: 'hidden' });
  await page.evaluate(() => window.Parley.toggle());
  await w(page, '.win').waitFor({ state: 'visible' });
  await page.evaluate(() => window.Parley.close());
  await w(page, '.win').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => {
    try {
      window.Parley.open = null;
    } catch {
      // strict mode would throw: the object is frozen either way
    }
    return typeof window.Parley.open;
  }), 'function', 'the API object cannot be tampered with');
  assert.deepEqual(problems(page), []);
  await page.close();
});
