// The dashboard walk (tests/tests/browser.rs `dashboard_walk_in_chromium`):
// every page in zh-CN and English with no missing key (the page logs one)
// and no raw code in the rendered text; an alarm acknowledged with a note;
// a camera dragged onto the map stays there after a reload; a user's role
// edited and the user disabled; the emergency dialog closes on Escape and
// leaves nothing that blocks clicks; on the GB/T 28181 page a platform's
// state reads in words and a camera's GB id is edited (a bad one refused). Screenshots of every page (zh-CN) and
// the overview (English) go to SHOTS (target/browser-artifacts/screenshots, or
// docs/screenshots/ when the suite is run with TGW_SHOTS=docs/screenshots).
//
// Env: BASE, CONTROL (sim control), USER_NAME, PASS (an admin), SIM_IDS
// (simulated cameras, comma-separated), ARTIFACTS, SHOTS.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing env ${k}`); return v; };
const BASE = env('BASE'), CONTROL = env('CONTROL'), USER = env('USER_NAME'), PASS = env('PASS');
const SIM_IDS = env('SIM_IDS').split(','), ART = env('ARTIFACTS'), SHOTS = env('SHOTS');
mkdirSync(ART, { recursive: true }); mkdirSync(SHOTS, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'tgw-chromium-'));
const t0 = Date.now();
const step = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);
// Codes that must never reach the page as text: health reasons and rungs,
// audit actions, and JavaScript leftovers.
const RAW = [
  /\b(credentials-rejected|clock-drift|rtp-loss|low-fps|low-bitrate|stream-unavailable|codec-mismatch|snapshot-unavailable|video-loss|inventory-failed|tcp-reachable|onvif-up|never-fires|calendar-gap|quiet-hours|no-horns|unknown-target)\b/,
  /\b(camera|device|user|broadcast|speaker|alarm|timetable|log_level|credential_group|asset)\.[a-z_]+\b/,
  /\bundefined\b|\bNaN\b|\[object Object\]/,
];
const PAGES = ['overview', 'cameras', 'camera', 'inbox', 'places', 'trends', 'speakers', 'broadcasts', 'timetable', 'alerts', 'gb28181', 'audit', 'users'];

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  viewport: { width: 1360, height: 900 },
  locale: 'zh-CN',
  timezoneId: 'Asia/Shanghai',
});
const page = ctx.pages()[0] || await ctx.newPage();
// Count the page's fetches in flight, so a page is scanned once it has loaded everything.
await ctx.addInitScript(() => {
  let n = 0; const f = window.fetch.bind(window);
  Object.defineProperty(window, '__pending', { get: () => n });
  window.fetch = (...a) => { n++; const p = f(...a); p.then((r) => r.clone().arrayBuffer()).catch(() => {}).finally(() => setTimeout(() => { n--; }, 0)); return p; };
});
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const api = (method, path, body) => page.evaluate(async ([m, p, b]) => {
  const r = await fetch(p, { method: m, credentials: 'same-origin', headers: b ? { 'Content-Type': 'application/json' } : {}, body: b ? JSON.stringify(b) : undefined });
  return { status: r.status, body: await r.json().catch(() => null) };
}, [method, path, body]);
let ok = false;
try {
  await page.goto(BASE + '/');
  await page.waitForSelector('#login-user', { timeout: 10000 });
  await page.fill('#login-user', USER);
  await page.fill('#login-password', PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#overview .cards', { timeout: 10000 });
  // Wait until the simulated cameras are adopted (auto-adopt rule) and checked.
  let cams = [];
  for (const deadline = Date.now() + 40000; ; await page.waitForTimeout(300)) {
    cams = (await api('GET', '/api/v1/cameras')).body || [];
    if (cams.length === SIM_IDS.length && cams.every((c) => c.health && c.health.verdict === 'ok')) break;
    if (Date.now() > deadline) throw new Error('cameras never all ok: ' + JSON.stringify(cams.map((c) => [c.id, c.health && c.health.verdict])));
  }
  cams.sort((a, b) => String(a.address).localeCompare(String(b.address), undefined, { numeric: true }));
  const camId = cams[0].id;
  step(`${cams.length} cameras adopted and ok`);

  // An alarm: the simulator takes the first camera offline; the overview
  // shows it live (with the cue) and an operator acknowledges it with a note.
  await page.goto(BASE + '/#overview');
  await page.waitForSelector('#overview .cards');
  const r = await fetch(`http://${CONTROL}/devices/${SIM_IDS[0]}/fault`, { method: 'POST', body: 'offline' });
  if (!r.ok) throw new Error('fault injection failed: ' + r.status);
  const row = `#alarms tr[data-id="${camId}"]`;
  await page.waitForSelector(row, { timeout: 30000 });
  await page.waitForSelector('#alarm-banner', { timeout: 5000 });
  if ((await page.textContent(`${row} td:first-child strong`)) !== camId) throw new Error('alarm row does not name the camera first');
  await page.fill(`${row} .ack-note-in`, '已派人检查电源');
  await page.click(`${row} .ack-btn`);
  await page.waitForSelector(`${row}[data-acked="true"]`, { timeout: 10000 });
  if (!(await page.textContent(row)).includes('已派人检查电源')) throw new Error('ack note not shown');
  step('offline alarm shown live with a cue and acknowledged with a note');

  // Every page, both languages: no missing key, no raw code.
  for (const lang of ['zh-CN', 'en']) {
    await ctx.addCookies([{ name: 'tgw_lang', value: lang, url: BASE }]);
    for (const p of PAGES) {
      const hash = p === 'camera' ? 'camera/' + camId : p;
      consoleErrors.length = 0;
      await page.goto(BASE + '/?lang=' + lang + '#' + hash);
      await page.waitForSelector('#main > *', { timeout: 10000 });
      await page.waitForFunction(() => window.__pending === 0, null, { timeout: 10000, polling: 50 });
      const text = await page.evaluate(() => document.body.innerText);
      for (const re of RAW) { const m = text.match(re); if (m) throw new Error(`${lang} #${hash}: raw code "${m[0]}" on the page`); }
      if (await page.$('#main > p.err')) throw new Error(`${lang} #${hash}: ${await page.textContent('#main > p.err')}`);
      const missing = consoleErrors.filter((e) => /missing i18n key|TypeError|ReferenceError|SyntaxError/.test(e));
      if (missing.length) throw new Error(`${lang} #${hash}: ${missing.join(' | ')}`);
      if (lang === 'zh-CN' || p === 'overview') await page.screenshot({ path: join(SHOTS, `${p}-${lang === 'en' ? 'en' : 'zh'}.png`) });
    }
    step(`every page in ${lang}: no missing key, no raw code`);
  }
  await ctx.addCookies([{ name: 'tgw_lang', value: 'zh-CN', url: BASE }]);

  // The camera's login from its page: the test answers in words (or says the
  // gateway does not offer the test yet); saving is write-only and audited.
  await page.goto(BASE + '/?lang=zh-CN#camera/' + cams[2].id);
  await page.waitForSelector('#camera-login');
  await page.fill('#login-user-in', 'admin');
  await page.fill('#login-pw-in', 'wrong-Walk-pw');
  await page.click('#login-test');
  await page.waitForFunction(() => { const e = document.getElementById('login-test-result'); return e && e.textContent && !e.textContent.includes('正在测试'); }, null, { timeout: 15000 });
  const verdict = await page.textContent('#login-test-result');
  if (!/密码错误|登录成功|无法连接|超时|不是 ONVIF|尚不支持/.test(verdict)) throw new Error('login test shows: ' + verdict);
  await page.fill('#login-pw-in', 'pw-walk');
  await page.click('#login-save');
  await page.waitForFunction(() => document.getElementById('login-test-result')?.textContent === '账号已保存', null, { timeout: 5000 });
  if ((await page.content()).includes('pw-walk') || (await page.inputValue('#login-pw-in')) !== '') throw new Error('password left on the page');
  step('camera login tested (' + verdict + ') and saved write-only');

  // The GB/T 28181 page: the silent platform is listed with its state in
  // words; a technician's (here admin's) new id for a camera is kept, a
  // malformed one is refused on the page before it reaches the API.
  await page.goto(BASE + '/?lang=zh-CN#gb28181');
  await page.waitForSelector('#gb-platforms tr[data-platform="county"]');
  const gbState = await page.textContent('#gb-platforms tr[data-platform="county"] .gb-state');
  if (!/注册中|平台无应答|未注册/.test(gbState)) throw new Error('GB platform state shows: ' + gbState);
  const gbRow = `#gb-cameras tr[data-id="${camId}"]`;
  await page.waitForSelector(gbRow);
  await page.fill(`${gbRow} .gb-id-in`, '3402000000132');
  await page.click(`${gbRow} .gb-id-save`);
  await page.waitForSelector('.toast >> text=国标编号须为 20 位数字', { timeout: 5000 });
  await page.fill(`${gbRow} .gb-id-in`, '34020000001320000077');
  await page.click(`${gbRow} .gb-id-save`);
  for (const deadline = Date.now() + 10000; ; await page.waitForTimeout(200)) {
    const list = (await api('GET', '/api/v1/gb28181/cameras')).body || [];
    if (list.some((c) => c.id === camId && c.gb_id === '34020000001320000077')) break;
    if (Date.now() > deadline) throw new Error('GB id not saved: ' + JSON.stringify(list));
  }
  step('GB/T 28181 page: platform state in words, camera id edited (bad id refused)');

  // The map: drag the second camera from the list onto the map, reload, it stays.
  const moveId = cams[1].id;
  await page.goto(BASE + '/?lang=zh-CN#places');
  await page.waitForSelector('#map');
  const item = page.locator(`#unplaced li[data-id="${moveId}"]`);
  const from = await item.boundingBox();
  const to = await page.locator('#map').boundingBox();
  await page.mouse.move(from.x + 10, from.y + 8);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width * 0.3, to.y + to.height * 0.4, { steps: 8 });
  await page.mouse.up();
  await page.waitForSelector(`#map-markers g[data-id="${moveId}"]`, { timeout: 5000 });
  await page.reload();
  await page.waitForSelector(`#map-markers g[data-id="${moveId}"]`, { timeout: 5000 });
  if (await page.locator(`#unplaced li[data-id="${moveId}"]`).count()) throw new Error('placed camera still listed as unplaced');
  const placed = (await api('GET', '/api/v1/places')).body.find((p) => p.id === moveId);
  if (!placed || Math.abs(placed.x - 0.3) > 0.03 || Math.abs(placed.y - 0.4) > 0.03) throw new Error('placed at ' + JSON.stringify(placed));
  // The marker reads the camera's own name, or its id when its name is only
  // its model (every simulated camera announces its model as its name).
  const cam = cams[1];
  const want = cam.name && cam.name !== cam.model ? cam.name : cam.id;
  const label = await page.textContent(`#map-markers g[data-id="${moveId}"] text`);
  if (label !== want) throw new Error(`map label ${JSON.stringify(label)}, want ${JSON.stringify(want)} (model ${cam.model})`);
  // The tree counts the cameras and shows the worst verdict (one is offline).
  const rootText = await page.textContent('#place-tree > details > summary');
  if (!rootText.includes(String(cams.length)) || !(await page.$('#place-tree > details > summary [data-verdict="offline"]'))) throw new Error('tree root: ' + rootText);
  await page.screenshot({ path: join(SHOTS, 'places-zh.png') });
  // A click on the marker opens the camera.
  await page.click(`#map-markers g[data-id="${moveId}"] circle`);
  await page.waitForFunction((id) => location.hash === '#camera/' + id, moveId, { timeout: 5000 });
  step('camera dragged onto the map, still there after a reload; tree counts; marker opens the camera');

  // Users: add one, change the role, disable.
  await page.goto(BASE + '/?lang=zh-CN#users');
  await page.waitForSelector('#add-user');
  await page.fill('#new-user', 'walker');
  await page.fill('#new-password', 'walker-Pass-123456');
  await page.click('#add-user');
  await page.waitForSelector('#users tr[data-user="walker"]');
  await page.selectOption('#users tr[data-user="walker"] .role-select', 'technician');
  await page.waitForFunction(() => document.querySelector('#users tr[data-user="walker"] .role-select')?.value === 'technician');
  await page.click('#users tr[data-user="walker"] .toggle-btn');
  await page.waitForSelector('#users tr[data-user="walker"][data-disabled="true"]');
  const walker = (await api('GET', '/api/v1/users')).body.find((u) => u.name === 'walker');
  if (walker.role !== 'technician' || !walker.disabled) throw new Error('user edit not saved: ' + JSON.stringify(walker));
  const lvText = await page.$eval('#log-level', (e) => e.selectedOptions[0].textContent);
  if (lvText !== '信息（默认）') throw new Error('log level shown as ' + lvText);
  await page.screenshot({ path: join(SHOTS, 'users-zh.png') });
  step('user added, role changed, disabled');

  // The emergency dialog closes on Escape and nothing blocks a click after.
  await page.goto(BASE + '/?lang=zh-CN#broadcasts');
  await page.click('#emergency-btn');
  await page.waitForSelector('#emergency-dialog');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#emergency-dialog', { state: 'detached', timeout: 2000 });
  await page.click('#nav-overview', { timeout: 2000 });
  await page.waitForSelector('#overview .cards');
  step('emergency dialog closed on Escape; clicks reach the page');

  const audit = (await api('GET', '/api/v1/audit?limit=100')).body.map((e) => e.action);
  for (const a of ['alarm.ack', 'device.place', 'user.update', 'device.credentials']) if (!audit.includes(a)) throw new Error('no audit entry ' + a);
  await fetch(`http://${CONTROL}/devices/${SIM_IDS[0]}/fault`, { method: 'POST', body: 'none' }).catch(() => {});
  ok = true;
} catch (e) {
  console.error('FAILED:', e && e.stack || e);
  await page.screenshot({ path: join(ART, 'walk-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(ok ? `walk suite: 1 passed, 0 failed (${((Date.now() - t0) / 1000).toFixed(1)} s)` : 'walk suite: 0 passed, 1 failed');
process.exit(ok ? 0 : 1);
