// Screenshot of the dashboard overview (docs/screenshots/overview-zh.png):
//   TGW_DEMO_ADMIN_PASSWORD=demo-admin-pw tgw demo --http 127.0.0.1:8090 &
//   BASE=http://127.0.0.1:8090 PASS=demo-admin-pw OUT=docs/screenshots/overview-zh.png \
//     node tests/browser/screenshot.mjs
// Waits until health has settled (90 % of cameras ok) before shooting.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BASE = process.env.BASE || 'http://127.0.0.1:8080';
const profile = mkdtempSync(join(tmpdir(), 'tgw-chromium-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: Number(process.env.WIDTH || 1366), height: Number(process.env.HEIGHT || 900) }, locale: 'zh-CN',
});
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(BASE + '/?lang=' + (process.env.LANG_UI || 'zh-CN'));
  await page.fill('#login-user', process.env.USER_NAME || 'admin');
  await page.fill('#login-password', process.env.PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#overview .cards');
  // Settled: at least MIN_OK cameras (default 90 %) have a verdict of ok.
  await page.waitForFunction((minOk) => { const n = (id) => Number(document.querySelector(id + ' .n')?.textContent || 0); return n('#total-total') > 0 && n('#total-ok') >= (minOk || 0.9 * n('#total-total')); }, Number(process.env.MIN_OK || 0), { timeout: Number(process.env.SETTLE_MS || 120000), polling: 1000 });
  await page.waitForTimeout(1500);
  await page.screenshot({ path: process.env.OUT || 'overview.png', fullPage: true });
  console.log('saved', process.env.OUT || 'overview.png');
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
