// Keyboard use, names for assistive technology, and a phone-sized screen in the dashboard:
// the Tab order of the sign-in form and of the signed-in shell (skip link first), the skip link
// moving focus to the content, the account menu (Enter opens, Escape closes and gives focus
// back, the sound switch), the conversation list (arrow keys move, Enter opens with focus in the
// reply box), every button and field has an accessible name; at 375x667 nothing scrolls
// sideways, the inbox shows one column at a time (list, conversation with a back button, the
// visitor panel over it, closed with Escape) and the settings fit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, shot } from './lib/browser.mjs';
import { startDashboard, openApp, signIn, visitor, waitUntil, t, PASSWORD } from './lib/dashboard.mjs';

let ctx;
let browser;
let pid;
const AGENT = 'ines@harbor.test';
const METADATA = {
  referrer: 'https://duckduckgo.com/',
  landingPage: 'http://localhost:3000/',
  urlHistory: ['http://localhost:3000/', 'http://localhost:3000/pricing'],
  language: 'pt-PT',
  timeZone: 'Europe/Lisbon',
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
};
const visitors = [];

before(async () => {
  ctx = await startDashboard({
    projects: [{ name: 'Harbor Coffee', domains: ['localhost'] }],
    agents: [{ email: AGENT, name: 'Inês Duarte', role: 'manager' }],
  });
  pid = ctx.projects[0].id;
  for (const [text, url] of [
    ['Hi, is the Lisbon roastery open on Sundays?', 'http://localhost:3000/pricing'],
    ['Can I change my subscription to decaf?', 'http://localhost:3000/account'],
    ['Do you deliver to Porto?', 'http://localhost:3000/shipping'],
  ]) {
    const v = await visitor(ctx, { projectId: pid });
    v.context(url);
    await v.send(text, METADATA);
    visitors.push(v);
  }
  browser = await launchBrowser();
});

after(async () => {
  for (const v of visitors) v.close();
  await browser?.close();
  if (ctx) await ctx.stop();
});

// The focused element described: its accessible name (aria-label, label, text) or placeholder.
async function focusName(page) {
  return page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return null;
    const label = e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`);
    return (e.getAttribute('aria-label') || (label && label.textContent) || e.textContent || e.getAttribute('placeholder') || e.tagName).trim().replace(/\s+/g, ' ');
  });
}

async function tabs(page, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    await page.keyboard.press('Tab');
    out.push(await focusName(page));
  }
  return out;
}

// Every button, link and form field on the page has an accessible name.
async function assertNames(page) {
  const nameless = await page.evaluate(() => {
    const bad = [];
    for (const e of document.querySelectorAll('button, a[href], input, textarea, select')) {
      if (e.closest('[hidden]') || e.type === 'hidden') continue;
      const label = e.id && document.querySelector(`label[for="${CSS.escape(e.id)}"]`);
      const name = e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || (label && label.textContent) || e.closest('label')?.textContent || e.textContent;
      if (!name || !name.trim()) bad.push(e.outerHTML.slice(0, 120));
    }
    return bad;
  });
  assert.deepEqual(nameless, [], 'controls without an accessible name');
}

test('keyboard: sign-in form order, shell order with the skip link, account menu, list arrows', { timeout: t(60000) }, async () => {
  await browser.context.clearCookies();
  const page = await openApp(browser, ctx, { viewport: { width: 1440, height: 900 } });
  await page.locator('.auth-form').waitFor();
  await assertNames(page);
  assert.equal(await focusName(page), 'Work e-mail', 'the e-mail field has focus first');
  assert.deepEqual(await tabs(page, 3), ['Password', 'Sign in', 'Create an account']);
  await page.getByLabel('Work e-mail').fill(AGENT);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Password').press('Enter');
  await page.locator('.conv-item').first().waitFor();
  await assertNames(page);

  // from the top of the document (the first page after signing in keeps the natural start)
  const order = await tabs(page, 9);
  assert.deepEqual(order.slice(0, 9), ['Skip to content', 'Parley home', 'Inbox, 3 unread', 'Projects', 'Settings', 'Account: Inês Duarte', 'Open', 'Resolved', 'All']);
  assert.match((await tabs(page, 1))[0], /^[A-Z][a-z]+ [A-Z][a-z]+, online, 1 unread, “Do you deliver to Porto\?”, now$/, 'then the first conversation');

  // the skip link
  await page.locator('.skip').focus();
  assert.equal(await page.locator('.skip').evaluate((e) => e.getBoundingClientRect().top >= 0), true, 'the skip link shows when focused');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main', 'focus moved to the content');

  // the account menu
  const acct = page.getByRole('button', { name: 'Account: Inês Duarte' });
  await acct.focus();
  await page.keyboard.press('Enter');
  assert.equal(await acct.getAttribute('aria-expanded'), 'true');
  assert.equal(await focusName(page), 'Sound for new messages', 'focus moves into the menu');
  const sw = page.getByRole('switch', { name: 'Sound for new messages' });
  assert.equal(await sw.getAttribute('aria-checked'), 'true');
  await page.keyboard.press('Space');
  assert.equal(await sw.getAttribute('aria-checked'), 'false');
  assert.equal(await page.evaluate(() => localStorage.getItem('parley.sound')), '0');
  await page.keyboard.press('Space');
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#account-menu').isHidden(), true);
  assert.equal(await focusName(page), 'Account: Inês Duarte', 'focus is back on the account button');

  // the conversation list: arrows move, Enter opens, focus lands in the reply box
  await page.locator('.conv-item').first().focus();
  await page.keyboard.press('ArrowDown');
  const second = await page.evaluate(() => document.activeElement.dataset.id);
  assert.equal(second, await page.locator('.conv-item').nth(1).getAttribute('data-id'));
  await page.keyboard.press('End');
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.id), second);
  await page.keyboard.press('Enter');
  await page.waitForURL(new RegExp(`#/inbox/${pid}/${second}$`));
  await waitUntil(() => page.evaluate(() => document.activeElement?.tagName === 'TEXTAREA'), { timeoutMs: t(5000), label: 'focus in the reply box' });
  await page.locator('.bubble').first().waitFor();
  await assertNames(page);
  // the reply box's own order: the message list, the reply box, then the send button
  assert.equal(await focusName(page), 'Reply');
  await page.close();
});

test('phone 375x667: one column at a time, nothing scrolls sideways', { timeout: t(90000) }, async () => {
  await browser.context.clearCookies();
  const page = await openApp(browser, ctx, { viewport: { width: 375, height: 667 } });
  await page.locator('.auth-form').waitFor();
  await shot(page, 'dashboard-mobile-login');
  await signIn(page, AGENT);
  const noSideScroll = async (what) => {
    const r = await page.evaluate(() => {
      const m = document.querySelector('.main');
      return { doc: document.documentElement.scrollWidth, main: m ? m.scrollWidth - m.clientWidth : 0 };
    });
    assert.ok(r.doc <= 375 && r.main <= 0, `${what}: no horizontal scrolling (${JSON.stringify(r)})`);
  };
  const inView = async (sel) => {
    // the conversation's head and actions render after its messages: wait for the element
    await page.locator(sel).first().waitFor();
    const b = await page.locator(sel).first().boundingBox();
    assert.ok(b && b.x >= 0 && b.x + b.width <= 375.5 && b.y >= 0 && b.y + b.height <= 667.5, `${sel} fits the screen: ${JSON.stringify(b)}`);
  };

  await page.locator('.conv-item').first().waitFor();
  assert.equal(await page.locator('.inbox-conv').isVisible(), false, 'only the list');
  await inView('.rail');
  await noSideScroll('inbox list');
  await shot(page, 'dashboard-mobile-inbox');

  await page.locator('.conv-item').first().click();
  await page.locator('.bubble').first().waitFor();
  assert.equal(await page.locator('.inbox-list').isVisible(), false, 'only the conversation');
  await inView('.composer');
  await inView('.conv-head');
  await inView('.act-status');
  await noSideScroll('conversation');
  await page.locator('.composer textarea').fill('Yes, 9:00 to 13:00 on Sundays.');
  await page.locator('.composer textarea').press('Enter');
  await page.locator('.bubble', { hasText: '9:00 to 13:00' }).waitFor();
  await shot(page, 'dashboard-mobile-conversation');

  await page.getByRole('button', { name: 'Visitor details' }).click();
  await page.locator('#visitor-panel .vp-id').waitFor();
  await inView('#visitor-panel');
  assert.match(await page.locator('#visitor-panel').textContent(), /Safari 17 on iOS/);
  await shot(page, 'dashboard-mobile-visitor');
  await page.keyboard.press('Escape');
  await page.locator('#visitor-panel').waitFor({ state: 'hidden' });

  await page.getByRole('button', { name: 'Back to conversations' }).click();
  await page.locator('.inbox-list').waitFor();
  await page.waitForURL(new RegExp(`#/inbox/${pid}$`));

  await page.getByRole('link', { name: 'Settings' }).click();
  await page.locator('.page-settings').waitFor();
  await page.locator('.preview').waitFor();
  await noSideScroll('settings');
  await shot(page, 'dashboard-mobile-settings');
  await page.locator('.preview').scrollIntoViewIfNeeded();
  const pv = await page.locator('.preview').boundingBox();
  assert.ok(pv.x >= 0 && pv.x + pv.width <= 375.5, `the preview fits: ${JSON.stringify(pv)}`);

  await page.getByRole('link', { name: 'Projects' }).click();
  await page.locator('.project-card').waitFor();
  await noSideScroll('projects');
  await page.close();
});
