// Browser tests of the widget's Shadow DOM isolation and theming: a hostile host page (`* {
// all: unset }`, !important overrides on every element type, a 5px root font size) changes
// nothing in how the widget looks (its computed styles equal those on an ordinary page); the
// widget changes nothing on the host page (every computed style and box of the host's elements,
// the document's size and its style sheets are the same with and without it); the dark theme
// and the left position follow the settings, with readable text on a light primary colour;
// autoOpenDelay opens the window once per browsing session; a browser context without
// crypto.randomUUID (plain-http sites) still gets a valid visitor uid and tempIds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, w, shot, messages, send, openChat } from './lib/browser.mjs';
import { startSite } from './lib/pages.mjs';
import { startParley, messageRows, waitUntil } from './lib/parley.mjs';

let ctx;
let site;
let browser;

before(async () => {
  site = await startSite({ host: '127.0.0.1', name: 'localhost' });
  ctx = await startParley({
    projects: [
      { name: 'Light', domains: ['localhost'], settings: { headerText: 'Northwind help desk', primaryColor: '#7c3aed' } },
      {
        name: 'Dark',
        domains: ['localhost'],
        settings: {
          theme: 'dark', position: 'bottom-left', primaryColor: '#fbbf24', headerText: 'Night owls support',
          agentDisplayName: 'Sam', welcomeMessage: 'Working late? So are we. How can we help?',
        },
      },
      { name: 'Eager', domains: ['localhost'], settings: { autoOpenDelay: 1, headerText: 'Need a hand?' } },
    ],
  });
  site.widgetSrc = `${ctx.url}/widget.js`;
  site.projectId = ctx.projects[0].id;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
  if (ctx) await ctx.stop();
});

const WIDGET_PARTS = ['.ln', '.ln svg', '.win', '.hd', '.av', '.ti', '.su', '.x', '.ls', '.m .b', '.m .wh', 'textarea', '.sd', '.sd svg', '.mt'];
const PROPS = [
  'display', 'position', 'box-sizing', 'width', 'height', 'margin-top', 'margin-left', 'padding-top', 'padding-left',
  'border-top-width', 'border-top-style', 'border-top-color', 'border-top-left-radius', 'background-color',
  'background-image', 'color', 'font-family', 'font-size', 'font-style', 'font-weight', 'line-height',
  'letter-spacing', 'word-spacing', 'text-transform', 'text-align', 'opacity', 'visibility', 'cursor', 'fill',
  'stroke', 'box-shadow', 'z-index', 'bottom', 'right',
];

// Computed styles of the widget's parts (first match of each) with the window open and one
// message sent.
async function widgetStyles(page) {
  return w(page, '.pw').evaluate((pw, [parts, props]) => {
    const out = {};
    for (const sel of parts) {
      const e = pw.querySelector(sel) || pw.parentNode.querySelector(sel);
      if (!e) {
        out[sel] = null;
        continue;
      }
      const cs = getComputedStyle(e);
      out[sel] = Object.fromEntries(props.map((p) => [p, cs.getPropertyValue(p)]));
    }
    return out;
  }, [WIDGET_PARTS, PROPS]);
}

async function openWithMessage(path) {
  const page = await browser.newPage();
  await page.goto(site.url(path));
  await w(page, '.ln').waitFor({ state: 'visible' });
  await openChat(page);
  if ((await messages(page)).length === 0) {
    await send(page, 'Does the widget survive hostile CSS?');
    await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
  }
  await w(page, 'textarea').evaluate((e) => e.blur());
  await page.mouse.move(0, 0);
  await page.waitForTimeout(400); // transitions
  return page;
}

test('host page CSS (all: unset, !important everywhere, tiny rem) does not change the widget', async () => {
  const normal = await openWithMessage('/host.html');
  const hostile = await openWithMessage('/aggressive.html');
  const a = await widgetStyles(normal);
  const b = await widgetStyles(hostile);
  for (const sel of WIDGET_PARTS) {
    assert.ok(a[sel], `${sel} exists`);
    assert.deepEqual(b[sel], a[sel], `${sel} looks the same on the hostile page`);
  }
  // And it still works there.
  const box = await w(hostile, '.win').boundingBox();
  assert.deepEqual({ w: box.width, h: box.height }, { w: 376, h: 600 });
  const ln = await w(hostile, '.ln').boundingBox();
  assert.deepEqual({ w: ln.width, h: ln.height }, { w: 60, h: 60 });
  assert.equal(await w(hostile, '.ln').evaluate((e) => getComputedStyle(e.getRootNode().host).display), 'block', 'the host element itself resists `all: unset`');
  await shot(hostile, 'widget-hostile-page');
  await normal.close();
  await hostile.close();
});

// Everything observable about the host page's own elements.
function hostSnapshot(page, selectors) {
  return page.evaluate((sels) => {
    const out = {
      scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
      sheets: document.styleSheets.length,
      head: document.head.innerHTML,
      htmlAttrs: [...document.documentElement.attributes].map((a) => `${a.name}=${a.value}`),
      bodyAttrs: [...document.body.attributes].map((a) => `${a.name}=${a.value}`),
    };
    for (const sel of sels) {
      const e = document.querySelector(sel);
      const cs = getComputedStyle(e);
      const styles = {};
      for (let i = 0; i < cs.length; i++) styles[cs[i]] = cs.getPropertyValue(cs[i]);
      const r = e.getBoundingClientRect();
      out[sel] = { styles, box: [r.x, r.y, r.width, r.height] };
    }
    return out;
  }, selectors);
}

for (const [path, sels] of [
  ['/host.html', ['html', 'body', 'header', 'nav a', '#headline', '.hero p', '#cta', '.card', '.card h3']],
  ['/aggressive.html', ['html', 'body', '#headline', '#para', '#box', '#btn', '#link', '#span']],
]) {
  test(`the widget leaks no styles into the host page (${path}): computed styles and boxes unchanged`, async () => {
    const page = await browser.newPage();
    await page.goto(site.url(`${path}?nowidget=1`));
    const without = await hostSnapshot(page, sels);
    await page.goto(site.url(path));
    await w(page, '.ln').waitFor({ state: 'visible' });
    const closed = await hostSnapshot(page, sels);
    await openChat(page);
    await page.waitForTimeout(300);
    const open = await hostSnapshot(page, sels);
    for (const key of Object.keys(without)) {
      assert.deepEqual(closed[key], without[key], `${key} unchanged by the widget (closed)`);
      assert.deepEqual(open[key], without[key], `${key} unchanged by the widget (open)`);
    }
    await page.close();
  });
}

test('dark theme on the left with a light primary colour: settings applied, text readable', async () => {
  const page = await browser.newPage();
  await page.goto(site.url(`/host.html?pid=${ctx.projects[1].id}`));
  await w(page, '.ln').waitFor({ state: 'visible' });
  const ln = await w(page, '.ln').boundingBox();
  assert.ok(ln.x <= 24, `launcher on the left: ${JSON.stringify(ln)}`);
  await openChat(page);
  await send(page, 'Is the store open on Sundays?');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
  await w(page, 'textarea').evaluate((e) => e.blur());
  await page.waitForTimeout(400);
  const win = await w(page, '.win').boundingBox();
  assert.ok(win.x <= 24, `window on the left: ${JSON.stringify(win)}`);
  const cs = (sel, p) => w(page, sel).first().evaluate((e, prop) => getComputedStyle(e).getPropertyValue(prop), p);
  assert.equal(await w(page, '.pw').getAttribute('data-theme'), 'dark');
  assert.equal(await cs('.ls', 'background-color'), 'rgb(17, 19, 23)', 'dark message list');
  assert.equal(await cs('.win', 'background-color'), 'rgb(22, 24, 29)', 'dark window');
  assert.equal(await cs('.m.th .b', 'color'), 'rgb(232, 234, 239)', 'light text on dark bubbles');
  assert.equal(await cs('.ln', 'background-color'), 'rgb(251, 191, 36)');
  assert.equal(await cs('.hd', 'color'), 'rgb(17, 24, 39)', 'dark text on a light primary colour');
  assert.equal(await cs('.m.me .b', 'color'), 'rgb(17, 24, 39)');
  assert.equal(await w(page, '.ti').textContent(), 'Night owls support');
  await shot(page, 'widget-dark');
  await page.close();
});

test('autoOpenDelay: the window opens by itself after the delay, once per browsing session', async () => {
  const page = await browser.newPage();
  await page.goto(site.url(`/host.html?pid=${ctx.projects[2].id}`));
  await w(page, '.ln').waitFor({ state: 'visible' });
  const shown = Date.now();
  assert.equal(await w(page, '.win').isVisible(), false, 'closed at first');
  await w(page, '.win').waitFor({ state: 'visible', timeout: 5000 });
  const after = Date.now() - shown;
  assert.ok(after >= 700 && after < 3000, `opened after about 1 s: ${after} ms`);
  assert.notEqual(await page.evaluate(() => document.activeElement?.tagName), 'PARLEY-WIDGET', 'does not steal the focus');
  await w(page, '.x').click();
  await w(page, '.win').waitFor({ state: 'hidden' });
  await page.reload();
  await w(page, '.ln').waitFor({ state: 'visible' });
  await page.waitForTimeout(2000);
  assert.equal(await w(page, '.win').isVisible(), false, 'closed by the visitor: not opened again in this session');
  await page.close();
});

test('without crypto.randomUUID (plain-http sites): random hex ids from getRandomValues, chat works', async () => {
  // Loopback pages are secure contexts, so remove the method as an insecure context would lack it.
  const page = await browser.newPage();
  await page.addInitScript(() => {
    delete Crypto.prototype.randomUUID;
  });
  await page.goto(site.url('/host.html?nowidget=1'));
  await page.evaluate(() => {
    localStorage.clear();
    sessionStorage.clear();
  });
  await page.goto(site.url('/host.html'));
  assert.equal(await page.evaluate(() => typeof crypto.randomUUID), 'undefined');
  await w(page, '.ln').waitFor({ state: 'visible' });
  await openChat(page);
  await send(page, 'Hello over plain http');
  await waitUntil(async () => (await messages(page))[0]?.status === 'sent', { label: 'sent' });
  const uid = await page.evaluate(() => JSON.parse(localStorage.getItem('parley:visitor_uid')));
  assert.match(uid, /^[0-9a-f]{32}$/);
  const [row] = await messageRows(ctx.dataDir, ctx.projects[0].id, 'Hello over plain http');
  assert.equal(row.uid, uid);
  assert.match(row.temp_id, /^[0-9a-f]{32}$/);
  await page.close();
});
