// Broadcast suite: Debian's Chromium driven by playwright-core against a
// running `tgw run` with simulated horns (started by tests/tests/browser.rs,
// test `broadcasts_in_chromium`). Never downloads a browser.
//
// Env: BASE (gateway URL), CONTROL (sim control host:port), USER_NAME and
// PASS (an operator), HORNS (comma-separated speaker ids), ARTIFACTS
// (screenshot dir).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing env ${k}`); return v; };
const BASE = env('BASE'), CONTROL = env('CONTROL'), USER = env('USER_NAME'), PASS = env('PASS'), ART = env('ARTIFACTS');
const HORNS = env('HORNS').split(',');
mkdirSync(ART, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'tgw-chromium-'));
const t0 = Date.now();
const step = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
// A mono 16-bit 8 kHz WAV with a sine tone.
function wav(seconds, hz) {
  const n = Math.round(8000 * seconds), b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0); b.writeUInt32LE(36 + 2 * n, 4); b.write('WAVEfmt ', 8); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(8000, 24); b.writeUInt32LE(16000, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34); b.write('data', 36); b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin(2 * Math.PI * hz * i / 8000)), 44 + 2 * i);
  return b;
}
const shot = (name) => page.screenshot({ path: join(ART, name), fullPage: true });

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  viewport: { width: 1366, height: 900 },
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
  await page.fill('#login-password', PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#nav-broadcasts', { timeout: 10000 });
  step('logged in as operator');

  // Broadcasts page: nothing live yet.
  await page.click('#nav-broadcasts');
  await page.waitForSelector('#live-broadcasts #no-live', { timeout: 10000 });
  if (await page.textContent('#nav-broadcasts') !== '广播') throw new Error('nav not in Chinese');
  // Record every state each horn shows, without reloading.
  await page.evaluate(() => {
    window.__noReload = true;
    window.__seen = {};
    window.__skew = {};
    const scan = () => { for (const e of document.querySelectorAll('#live-broadcasts .bcast.emergency .horn')) { const s = (window.__seen[e.dataset.speaker] ||= []); if (s[s.length - 1] !== e.dataset.state) s.push(e.dataset.state); if (/ ms$/.test(e.textContent)) window.__skew[e.dataset.speaker] = e.textContent; } };
    new MutationObserver(scan).observe(document.body, { subtree: true, childList: true, attributes: true });
  });

  // The EMERGENCY button asks for confirmation: targets, horn count, typed count.
  await page.click('#emergency-btn');
  await page.waitForSelector('#emergency-dialog #em-text');
  await page.fill('#em-text', '紧急通知：河水上涨，请沿河村民立即转移到高处。');
  await page.click('#em-next');
  await page.waitForSelector('#em-horns');
  const n = await page.textContent('#em-horns');
  if (n !== String(HORNS.length)) throw new Error(`confirmation shows ${n} horns, expected ${HORNS.length}`);
  const targets = await page.textContent('#em-targets');
  if (!targets.includes('全部喇叭')) throw new Error('confirmation does not show the targets: ' + targets);
  if (!await page.isDisabled('#em-confirm')) throw new Error('confirm enabled before typing the count');
  await page.fill('#em-typed', String(HORNS.length + 1));
  if (!await page.isDisabled('#em-confirm')) throw new Error('confirm enabled with a wrong count');
  await page.fill('#em-typed', String(HORNS.length));
  await shot('broadcasts-confirm-zh.png');
  step(`confirmation shows targets "${targets}" and ${n} horns`);
  await page.click('#em-confirm');
  await page.waitForSelector('#emergency-dialog', { state: 'detached', timeout: 10000 });
  step('emergency broadcast confirmed');

  // Live: every horn appears, goes to started, then done — no reload.
  await page.waitForFunction((ids) => ids.every((id) => ['started', 'done'].includes(document.querySelector(`#live-broadcasts .bcast.emergency .horn[data-speaker="${id}"]`)?.dataset.state)), HORNS, { timeout: 30000, polling: 50 });
  step('every horn started');
  await shot('broadcasts-zh.png');
  // Finished, the broadcast leaves "now playing" for the recent list (issue 14).
  await page.waitForSelector('#live-broadcasts .bcast.emergency', { state: 'detached', timeout: 60000 });
  await page.waitForSelector('#live-broadcasts #no-live', { timeout: 5000 });
  const seen = await page.evaluate(() => window.__seen);
  for (const id of HORNS) {
    if (!(seen[id] || []).includes('started')) throw new Error(`horn ${id} never showed started: ${JSON.stringify(seen)}`);
  }
  if (!await page.evaluate(() => window.__noReload === true)) throw new Error('page reloaded');
  await page.waitForFunction((k) => document.querySelector('#broadcast-table tr .counts [data-count="done"]')?.textContent.endsWith(' ' + k), HORNS.length, { timeout: 15000 });
  step('horn states seen live: ' + JSON.stringify(seen));
  // The measured start skew (from the horn's "started" report) stays on each chip.
  const chipSkews = await page.evaluate(() => window.__skew);
  // (checked after the drill-down: a skew shows on the live chip or in the horn table)

  // The simulated horns heard it.
  for (const id of HORNS) {
    const r = await (await fetch(`http://${CONTROL}/devices/${id}/report`)).json();
    if (!(r.audio_seconds > 1)) throw new Error(`horn ${id} heard no audio: ${JSON.stringify(r)}`);
  }
  step('every simulated horn received the audio');

  // Drill down: each horn's state, skew and reason.
  await page.click('#broadcast-table tr[data-id]');
  await page.waitForSelector('#horn-table');
  await page.waitForFunction((k) => document.querySelectorAll('#horn-table tr[data-state="done"]').length === k, HORNS.length, { timeout: 10000 });
  const skews = await page.$$eval('#horn-table tr[data-speaker] td:nth-child(5)', (tds) => tds.map((td) => td.textContent));
  const tableSkew = await page.$$eval('#horn-table tr[data-speaker]', (rs) => Object.fromEntries(rs.map((r) => [r.dataset.speaker, r.children[4].textContent])));
  const noSkew = HORNS.filter((id) => !chipSkews[id] && !/ ms$/.test(tableSkew[id] || ''));
  if (noSkew.length) throw new Error('no start skew shown for ' + noSkew.join(', ') + ': live ' + JSON.stringify(chipSkews) + ' table ' + JSON.stringify(tableSkew));
  await shot('broadcasts-detail-zh.png');
  // The stored skew depends on the runtime keeping the measured detail
  // past the final state; reported, not asserted.
  step('drill-down lists every horn done; stored skews: ' + skews.join(', '));

  // Asset upload: a file that is not audio is refused with the reason; a WAV is stored.
  await page.click('#nav-broadcasts');
  await page.waitForSelector('#asset-file');
  await page.setInputFiles('#asset-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not audio at all') });
  await page.click('#asset-upload');
  await page.waitForFunction(() => document.querySelector('#asset-result.err')?.textContent.includes('notes.txt'), null, { timeout: 10000 });
  step('non-audio upload refused: ' + await page.textContent('#asset-result'));
  await page.setInputFiles('#asset-file', { name: '防汛通知.wav', mimeType: 'audio/wav', buffer: wav(1.5, 440) });
  await page.click('#asset-upload');
  await page.waitForSelector('#asset-table td:text-is("防汛通知.wav")', { timeout: 15000 });
  if (!(await page.textContent('#an-asset')).includes('防汛通知.wav')) throw new Error('uploaded asset not offered for announcements');
  step('WAV uploaded and listed');

  // Timetable: build it in the JSON editors; a validation error is shown.
  await page.click('#nav-timetable');
  await page.waitForSelector('#timetable-week #week');
  await page.click('.new-btn[data-kind="programme"]');
  await page.fill('#programme-list .editor .edit-id', 'morning-news');
  await page.fill('#programme-list .editor textarea', JSON.stringify({ name: '早间政策广播', items: [{ tts: '各位村民早上好，现在播报今日政策信息。' }], priority: 'routine' }));
  await page.click('#programme-list .editor .edit-save');
  await page.waitForSelector('#programme-list tr[data-id="morning-news"]', { timeout: 10000 });
  step('programme created');
  await page.click('.new-btn[data-kind="schedule"]');
  await page.fill('#schedule-list .editor .edit-id', 'daily-morning');
  const sched = { programme: 'morning-newz', targets: ['village:dongcun'], at: ['07:30'], days: 'daily' };
  await page.fill('#schedule-list .editor textarea', JSON.stringify(sched));
  await page.click('#schedule-list .editor .edit-save');
  await page.waitForFunction(() => /schedule\[0\].*daily-morning.*programme/.test(document.querySelector('#schedule-list .edit-error')?.textContent || ''), null, { timeout: 10000 });
  step('validation error shown: ' + await page.textContent('#schedule-list .edit-error'));
  sched.programme = 'morning-news';
  await page.fill('#schedule-list .editor textarea', JSON.stringify(sched));
  await page.click('#schedule-list .editor .edit-save');
  await page.waitForFunction(() => document.querySelectorAll('#week .entry[data-schedule="daily-morning"]').length === 7, null, { timeout: 10000 });
  const entry = await page.textContent('#week .entry[data-schedule="daily-morning"]');
  if (!entry.includes('07:30') || !entry.includes('早间政策广播') || !entry.includes('东村') || !entry.includes('2 个喇叭')) throw new Error('week entry: ' + entry);
  await shot('broadcasts-timetable-zh.png');
  step('week view shows the entry: ' + entry);

  // Alerts page renders (none received).
  await page.click('#nav-alerts');
  await page.waitForSelector('#alerts');

  // Switch language: the pages follow.
  await page.click('#lang');
  await page.waitForFunction(() => document.documentElement.lang === 'en' && document.getElementById('nav-broadcasts')?.textContent === 'Broadcasts');
  await page.click('#nav-timetable');
  await page.waitForSelector('#week .entry[data-schedule="daily-morning"]');
  if (!(await page.textContent('#week .entry[data-schedule="daily-morning"]')).includes('2 horns')) throw new Error('week view not in English');
  await page.click('#nav-broadcasts');
  await page.waitForSelector('#broadcast-table');
  if (!(await page.textContent('#emergency-btn')).includes('EMERGENCY')) throw new Error('broadcasts page not in English');
  await shot('broadcasts-en.png');
  step('switched to English');
  const bad = consoleErrors.filter((e) => !/Failed to load resource|EventSource|net::ERR/.test(e));
  if (bad.length) throw new Error('console errors: ' + bad.join(' | '));
  ok = true;
} catch (e) {
  console.error('FAILED:', e && e.stack || e);
  await page.screenshot({ path: join(ART, 'broadcasts-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(ok ? `broadcast suite: 1 passed, 0 failed (${((Date.now() - t0) / 1000).toFixed(1)} s)` : 'broadcast suite: 0 passed, 1 failed');
process.exit(ok ? 0 : 1);
