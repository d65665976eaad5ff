// Browser suite: Debian's Chromium driven by playwright-core against a
// running `tgw run` + `tgw sim` (started by tests/tests/browser.rs).
// Never downloads a browser: executablePath is the system Chromium.
//
// Env: BASE (gateway URL), CONTROL (sim control host:port), USER, PASS,
// SIM_ID / SIM_ADDR (the simulated camera to adopt), ARTIFACTS (screenshot dir).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing env ${k}`); return v; };
const BASE = env('BASE'), CONTROL = env('CONTROL'), USER = env('USER_NAME'), PASS = env('PASS');
const SIM_ID = env('SIM_ID'), SIM_ADDR = env('SIM_ADDR'), ART = env('ARTIFACTS');
mkdirSync(ART, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'tgw-chromium-'));
const t0 = Date.now();
const step = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 860 },
  locale: 'zh-CN',
  timezoneId: 'UTC',
});
const page = ctx.pages()[0] || await ctx.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
let ok = false;
try {
  await page.goto(BASE + '/');
  if (await page.getAttribute('html', 'lang') !== 'zh-CN') throw new Error('default language is not zh-CN');
  await page.waitForSelector('#login-user', { timeout: 10000 });
  await page.fill('#login-user', USER);
  await page.fill('#login-password', 'wrong-password');
  await page.click('#login-submit');
  await page.waitForFunction(() => document.getElementById('login-error')?.textContent.length > 0);
  step('wrong password refused: ' + await page.textContent('#login-error'));
  await page.fill('#login-password', PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#overview .cards', { timeout: 10000 });
  step('logged in, overview shown');
  await page.screenshot({ path: join(ART, '01-overview-zh.png'), fullPage: true });

  // Discovery inbox: wait for the simulated camera to be discovered.
  await page.goto(BASE + '/#inbox');
  const row = `#inbox-table tr:has(td:text-is("${SIM_ADDR}"))`;
  for (let i = 0; ; i++) {
    if (await page.locator(row).count() > 0) break;
    if (i > 60) throw new Error('camera never reached the inbox');
    await page.waitForTimeout(500);
    await page.reload();
    await page.waitForSelector('#main > *');
  }
  const gwId = await page.getAttribute(row, 'data-id');
  step(`discovered ${SIM_ID} (${SIM_ADDR}) as ${gwId}`);
  await page.check(`${row} input.pick`);
  const village = await page.$eval('#adopt-village option:nth-child(2)', (o) => o.value);
  await page.selectOption('#adopt-village', village);
  await page.screenshot({ path: join(ART, '02-inbox.png'), fullPage: true });
  await page.click('#adopt');
  await page.waitForSelector(`${row}`, { state: 'detached', timeout: 10000 });
  step(`adopted ${gwId} into ${village}`);

  // The camera appears in the list and becomes ok.
  await page.goto(BASE + '/#cameras');
  await page.waitForSelector(`#camera-table tr[data-id="${gwId}"]`, { timeout: 10000 });
  await page.goto(BASE + '/#overview');
  await page.waitForSelector('#overview .cards');
  await page.waitForFunction(() => document.querySelector('#total-ok .n')?.textContent === '1', null, { timeout: 30000, polling: 250 });
  step('camera is ok');
  // No reload from here on: the change must arrive live (SSE).
  await page.evaluate(() => { window.__noReload = true; });
  const r = await fetch(`http://${CONTROL}/devices/${SIM_ID}/fault`, { method: 'POST', body: 'offline' });
  if (!r.ok) throw new Error('fault injection failed: ' + r.status);
  step('simulator stopped the camera');
  await page.waitForFunction(() => document.querySelector('#total-offline .n')?.textContent === '1', null, { timeout: 30000, polling: 250 });
  if (!await page.evaluate(() => window.__noReload === true)) throw new Error('page reloaded');
  await page.waitForSelector(`#alarms tr[data-id="${gwId}"]`, { timeout: 5000 });
  step('offline shown live, with an alarm');
  await page.screenshot({ path: join(ART, '03-offline-live.png'), fullPage: true });

  // Camera detail.
  await page.click(`#alarms tr[data-id="${gwId}"]`);
  await page.waitForSelector('#camera-health [data-verdict="offline"]', { timeout: 10000 });
  await page.screenshot({ path: join(ART, '04-camera-detail.png'), fullPage: true });
  step('camera detail shows offline');

  // Speakers: listed, tested with a tone after a confirmation.
  await page.goto(BASE + '/#speakers');
  await page.waitForSelector('#speakers tr[data-id="spk-browser"]', { timeout: 10000 });
  page.once('dialog', (d) => d.accept());
  await page.click('#speakers tr[data-id="spk-browser"] .test-btn');
  // The test horn is a UDP socket that sends no RTCP receiver report: the
  // tone is played but cannot be confirmed, and the page must not say ok.
  const res = await page.waitForSelector('#speakers tr[data-id="spk-browser"] .test-result [data-result]', { timeout: 15000 });
  const shown = { result: await res.getAttribute('data-result'), ok: await res.getAttribute('data-ok'), text: await res.textContent() };
  if (shown.result !== 'unknown' || shown.ok !== 'false' || !shown.text.includes('已播放，未确认')) {
    throw new Error('silent horn test shown as ' + JSON.stringify(shown));
  }
  if ((await page.content()).includes('spk-browser-Secret')) throw new Error('speaker password on the page');
  await page.screenshot({ path: join(ART, '05-speakers.png'), fullPage: true });
  step('speaker listed and tested with a tone');

  // Switch language.
  await page.goto(BASE + '/#overview');
  await page.waitForSelector('#overview .cards');
  await page.click('#lang');
  await page.waitForFunction(() => document.documentElement.lang === 'en' && document.getElementById('nav-overview')?.textContent === 'Overview');
  await page.reload();
  await page.waitForSelector('#nav-overview');
  if (await page.textContent('#nav-overview') !== 'Overview') throw new Error('language did not persist');
  await page.screenshot({ path: join(ART, '06-overview-en.png'), fullPage: true });
  step('switched to English (persists across reload)');
  await fetch(`http://${CONTROL}/devices/${SIM_ID}/fault`, { method: 'POST', body: 'none' }).catch(() => {});
  const bad = consoleErrors.filter((e) => !/Failed to load resource|snapshot|EventSource|net::ERR/.test(e));
  if (bad.length) throw new Error('console errors: ' + bad.join(' | '));
  ok = true;
} catch (e) {
  console.error('FAILED:', e && e.stack || e);
  await page.screenshot({ path: join(ART, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(ok ? `browser suite: 1 passed, 0 failed (${((Date.now() - t0) / 1000).toFixed(1)} s)` : 'browser suite: 0 passed, 1 failed');
process.exit(ok ? 0 : 1);
