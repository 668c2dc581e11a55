// Headless Chromium for the browser tests, launched exactly as shared/MACHINE-NOTES.md says
// (playwright-core driving /usr/bin/chromium, a persistent context in a fresh temp profile),
// plus helpers for the widget's Shadow DOM, console capture and screenshots.
//
//   const b = await launchBrowser();
//   const page = await b.newPage({ width: 1280, height: 800 });
//   ... w(page, '.ln') is a locator inside the widget's shadow root ...
//   await shot(page, 'widget-open');         // tests/artifacts/widget-open.png
//   await b.close();
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { REPO } from '../../integration/lib/server.mjs';

export const CHROMIUM = process.env.PARLEY_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(REPO, 'tests', 'artifacts');

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// A fresh browser profile. close() ends the browser and removes the profile.
export async function launchBrowser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(15000);
  return {
    context,
    // A new tab with its own viewport; records its console in page.consoleLog.
    async newPage(viewport = { width: 1280, height: 800 }) {
      const page = await context.newPage();
      await page.setViewportSize(viewport);
      page.consoleLog = [];
      page.on('console', (m) => page.consoleLog.push({ type: m.type(), text: m.text() }));
      page.on('pageerror', (e) => page.consoleLog.push({ type: 'pageerror', text: String(e) }));
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A locator inside the widget's shadow root (playwright's CSS engine pierces open roots).
export function w(page, selector) {
  return page.locator('parley-widget').locator(selector);
}

// Saves a PNG of the page (or of a locator) in tests/artifacts/<name>.png.
export async function shot(target, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await target.screenshot({ path: file, animations: 'disabled' });
  return file;
}

// The widget's console warnings ("[Parley] ...").
export const parleyWarnings = (page) =>
  page.consoleLog.filter((m) => m.type === 'warning' && m.text.startsWith('[Parley]'));

// The message rows shown in the widget (the welcome message excluded), oldest first:
// [{text, mine, status: 'sending'|'failed'|'sent', meta}].
export function messages(page) {
  return w(page, '.ls').evaluate((ls) => [...ls.querySelectorAll('.m')].slice(1).map((m) => ({
    text: m.querySelector('.b').textContent,
    mine: m.classList.contains('me'),
    status: m.classList.contains('sending') ? 'sending' : m.classList.contains('failed') ? 'failed' : 'sent',
    meta: m.querySelector('.mt').textContent,
  })));
}

// Types text into the composer and presses Enter.
export async function send(page, text) {
  const ta = w(page, 'textarea');
  await ta.fill(text);
  await ta.press('Enter');
}

// Opens the window with the launcher (if closed) and waits for it to be visible.
export async function openChat(page) {
  if ((await w(page, '.ln').getAttribute('aria-expanded')) !== 'true') await w(page, '.ln').click();
  await w(page, '.win').waitFor({ state: 'visible' });
}
