// Projects and their settings in the dashboard (/app/): a new account creates its first project
// from the keyboard in the "New project" dialog (Enter opens and submits, Escape cancels and
// gives focus back; a pasted address becomes its host name); the embed snippet is copied to the
// clipboard; allowed domains are added (normalised, invalid ones refused at the field) and
// removed as chips and saved; the widget settings drive the live preview before anything is
// saved (header, agent name, welcome and away messages, colour, theme, position, logo), a bad
// colour is refused at its field, and saving reaches the server and the widget's public settings;
// an agent who is not a manager sees the settings read-only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, shot } from './lib/browser.mjs';
import { startDashboard, openApp, signIn, waitUntil, t, PASSWORD } from './lib/dashboard.mjs';

let ctx;
let browser;
let page;
const OWNER = 'lena@fjord.test';
const HELPER = 'tom@fjord.test';
let pid;

before(async () => {
  ctx = await startDashboard({
    projects: [{ name: 'Placeholder', domains: ['localhost'] }],
    agents: [{ email: HELPER, name: 'Tom Agent', role: 'agent' }],
  });
  const r = await ctx.api('POST', '/auth/register', { body: { email: OWNER, password: PASSWORD, fullName: 'Lena Fjord' } });
  assert.equal(r.status, 201, r.text);
  browser = await launchBrowser();
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ctx.url });
  page = await openApp(browser, ctx, { viewport: { width: 1440, height: 900 } });
  await signIn(page, OWNER);
});

after(async () => {
  await browser?.close();
  if (ctx) await ctx.stop();
});

const focused = () => page.evaluate(() => {
  const e = document.activeElement;
  return e ? (e.getAttribute('aria-label') || e.textContent || e.getAttribute('placeholder') || e.tagName).trim() : null;
});

test('first project from the keyboard: the dialog opens with Enter, Escape cancels, Enter creates', { timeout: t(60000) }, async () => {
  await page.waitForURL(/#\/projects$/);
  const newBtn = page.getByRole('button', { name: 'New project' });
  await newBtn.focus();
  await page.keyboard.press('Enter');
  const dlg = page.getByRole('dialog', { name: 'New project' });
  await dlg.waitFor();
  assert.equal(await focused(), 'e.g. Northwind store', 'focus starts in the name field');
  // Tab stays inside the dialog
  for (let i = 0; i < 6; i++) {
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => !!document.activeElement.closest('dialog')), 'focus stays in the dialog');
  }
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal(await focused(), 'New project', 'focus is back on the button that opened it');

  await page.keyboard.press('Enter');
  await dlg.waitFor();
  await page.keyboard.type('Fjord Outfitters');
  // an empty name is refused at the field
  await page.getByLabel('Project name').fill('');
  await page.keyboard.press('Enter');
  assert.equal(await page.getByLabel('Project name').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Project name').fill('Fjord Outfitters');
  await page.getByLabel('Website domains').fill('https://Shop.Fjord.test/cart?x=1, localhost');
  await shot(page, 'dashboard-new-project-dialog');
  await page.getByLabel('Website domains').press('Enter');
  await page.waitForURL(/#\/settings\/\d+$/);
  pid = Number(/#\/settings\/(\d+)$/.exec(page.url())[1]);
  const p = await ctx.get(OWNER, `/projects/${pid}`);
  assert.equal(p.name, 'Fjord Outfitters');
  assert.deepEqual(p.whitelistedDomains, ['shop.fjord.test', 'localhost']);
  assert.equal(p.role, 'manager');
});

test('embed snippet: shown and copied to the clipboard', { timeout: t(30000) }, async () => {
  const expected = `<script src="${ctx.url}/widget.js" data-project-id="${pid}" async></script>`;
  await page.locator('#embed-code').waitFor();
  assert.equal(await page.locator('#embed-code').textContent(), expected);
  await page.getByRole('button', { name: 'Copy embed code' }).click();
  await page.locator('.copy-btn.copied').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), expected);
});

test('allowed domains: add (normalised), refuse invalid, remove, save', { timeout: t(30000) }, async () => {
  const input = page.getByLabel('Add a domain');
  await input.fill('*.Fjord.test');
  await input.press('Enter');
  await input.fill('http://127.0.0.1:8080/');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await input.fill('bad_domain!');
  await input.press('Enter');
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.match(await page.locator('.add-row .field-error').textContent(), /bad_domain!/);
  await input.fill('');
  assert.equal(await input.getAttribute('aria-invalid'), null, 'editing the field clears its error');
  await page.getByRole('button', { name: 'Remove localhost' }).click();
  const chips = await page.locator('.chips .chip').allTextContents();
  assert.deepEqual(chips, ['shop.fjord.test', '*.fjord.test', '127.0.0.1']);
  const card = page.locator('section.card', { has: page.locator('#set-domains') });
  await card.locator('.save-note').waitFor();
  await card.getByRole('button', { name: 'Save changes' }).click();
  await waitUntil(async () => (await ctx.get(OWNER, `/projects/${pid}`)).whitelistedDomains.length === 3, { timeoutMs: t(5000), label: 'domains saved' });
  assert.deepEqual((await ctx.get(OWNER, `/projects/${pid}`)).whitelistedDomains, ['shop.fjord.test', '*.fjord.test', '127.0.0.1']);
  await card.locator('.save-note').waitFor({ state: 'hidden' });
});

test('widget settings: the preview follows every edit, a bad colour is refused, saving reaches the widget', { timeout: t(60000) }, async () => {
  const pv = page.locator('.preview');
  await page.getByLabel('Header text').fill('Fjord help desk');
  assert.equal(await pv.locator('.pv-ti').textContent(), 'Fjord help desk', 'header text, live');
  await page.getByLabel('Agent name').fill('Lena');
  assert.equal(await pv.locator('.pv-su').textContent(), 'Lena');
  assert.equal(await pv.locator('.pv-av').textContent(), 'L', 'the initial of the agent name without a logo');
  await page.getByLabel('Welcome message').fill('Hei! Questions about sizing or returns?');
  assert.equal(await pv.locator('.pv-them').first().textContent(), 'Hei! Questions about sizing or returns?');
  await page.getByLabel('Brand colour').fill('#0f766e');
  assert.equal(await pv.locator('.pv-hd').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(15, 118, 110)');
  assert.equal(await pv.locator('.pv-ln').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(15, 118, 110)');
  await page.getByLabel('Away message').fill('We are out on the fjord. Leave a note!');
  await pv.getByRole('button', { name: 'Away' }).click();
  assert.equal(await pv.locator('.pv-off').textContent(), 'We are out on the fjord. Leave a note!');
  await pv.getByRole('button', { name: 'Online' }).click();
  await page.locator('label.choice-opt', { hasText: 'Bottom left' }).click();
  assert.equal(await pv.locator('.pv-widget').getAttribute('data-side'), 'left');
  const win = await pv.locator('.pv-win').boundingBox();
  const site = await pv.locator('.pv-site').boundingBox();
  assert.ok(win.x - site.x < 30, 'the window sits on the left');
  await shot(pv, 'dashboard-widget-preview-left');
  await page.locator('label.choice-opt', { hasText: 'Dark' }).click();
  assert.equal(await pv.locator('.pv-widget').getAttribute('data-theme'), 'dark');
  assert.equal(await pv.locator('.pv-win').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(22, 24, 29)');
  await page.getByLabel('Logo URL').fill(`${ctx.url}/logo-that-does-not-exist.png`);
  await waitUntil(async () => (await pv.locator('.pv-av').evaluate((e) => e.tagName)) === 'SPAN', { timeoutMs: t(5000), label: 'a broken logo falls back to the initial' });
  await page.getByLabel('Logo URL').fill('');
  await shot(pv, 'dashboard-widget-preview-dark');
  assert.equal((await ctx.get(OWNER, `/projects/${pid}`)).widgetSettings.headerText, 'Chat with us', 'nothing saved yet');

  // a colour the server would refuse
  await page.getByLabel('Brand colour').fill('#12');
  const card = page.locator('section.card', { has: page.locator('#set-widget') });
  await card.getByRole('button', { name: 'Save changes' }).click();
  assert.equal(await page.getByLabel('Brand colour').getAttribute('aria-invalid'), 'true');
  await page.getByLabel('Brand colour').fill('#0f766e');

  await card.getByRole('button', { name: 'Save changes' }).click();
  await page.locator('.toast', { hasText: 'Widget settings saved' }).waitFor();
  const ws = (await ctx.get(OWNER, `/projects/${pid}`)).widgetSettings;
  assert.deepEqual(
    { h: ws.headerText, a: ws.agentDisplayName, w: ws.welcomeMessage, o: ws.offlineMessage, c: ws.primaryColor, t: ws.theme, p: ws.position, l: ws.companyLogoUrl },
    { h: 'Fjord help desk', a: 'Lena', w: 'Hei! Questions about sizing or returns?', o: 'We are out on the fjord. Leave a note!', c: '#0f766e', t: 'dark', p: 'bottom-left', l: null },
  );
  const pub = await fetch(`${ctx.url}/api/v1/public/projects/${pid}/settings`, { headers: { Origin: 'http://shop.fjord.test' } });
  assert.equal(pub.status, 200);
  const pj = await pub.json();
  assert.equal(pj.headerText, 'Fjord help desk', 'the widget gets the saved settings');
  assert.equal(pj.primaryColor, '#0f766e');
  await card.locator('.save-note').waitFor({ state: 'hidden' });

  // the whole page, for the artifacts
  await page.setViewportSize({ width: 1440, height: 2300 });
  await page.locator('.page-settings').evaluate((e) => e.closest('.main').scrollTo(0, 0));
  await shot(page, 'dashboard-settings');
  await page.setViewportSize({ width: 1440, height: 900 });
});

test('projects page lists the project; an agent who is not a manager sees settings read-only', { timeout: t(60000) }, async () => {
  await page.getByRole('link', { name: 'Projects' }).click();
  await page.locator('.project-card', { hasText: 'Fjord Outfitters' }).waitFor();
  await shot(page, 'dashboard-projects');

  const b2 = await launchBrowser();
  try {
    const p2 = await openApp(b2, ctx, { hash: `#/settings/${ctx.projects[0].id}` });
    await signIn(p2, HELPER);
    await p2.locator('.page-settings').waitFor();
    assert.match(await p2.locator('.notice').first().textContent(), /read-only/);
    assert.equal(await p2.getByLabel('Header text').isDisabled(), true);
    assert.equal(await p2.getByRole('button', { name: 'Save changes' }).count(), 0);
    assert.equal(await p2.getByRole('button', { name: 'Copy embed code' }).isEnabled(), true, 'agents can still copy the snippet');
  } finally {
    await b2.close();
  }
});
