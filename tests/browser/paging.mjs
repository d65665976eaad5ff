// Live paging suite: Debian's Chromium (fake microphone playing TONE, a
// WAV) pages one horn, or two with SIP_HORN (a SIP horn), from the
// push-to-talk control on the broadcasts page (hold to talk) for about 3 s. While it is live, a second tab on the phone
// page (#paging, toggle mode) tries to page the same horn and must show the busy error
// naming who is live. Started by tests/tests/browser.rs (test
// `live_page_from_chromium_plays_on_ffmpeg_and_baresip_horns`), which
// checks both horns (ffmpeg, baresip) heard the tone. Never downloads a browser.
//
// Env: BASE, USER_NAME, PASS (an operator), TONE (WAV path), HORN (speaker
// id), SIP_HORN (optional: a second speaker id, paged too), ADMIN_USER and
// ADMIN_PASS (optional: an admin who then downloads the recording of what
// aired from the page's audit entry), ARTIFACTS (screenshot dir). Prints `PAGE <json>` (the page's id,
// frames sent, the ended text).
import { rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, USER, PASS, HORN, ART, profile, step, ctx, page } from './mic.mjs';
const consoleErrors = [];
const watch = (p) => { p.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); }); p.on('pageerror', (e) => consoleErrors.push(String(e))); };
watch(page);
const SIP_HORN = process.env.SIP_HORN || '';
const ADMIN_USER = process.env.ADMIN_USER || '', ADMIN_PASS = process.env.ADMIN_PASS || '';
const stateOf = (p) => p.getAttribute('#pg-status', 'data-state');
let ok = false;
try {
  await page.goto(BASE + '/');
  await page.waitForSelector('#login-user', { timeout: 10000 });
  await page.fill('#login-user', USER);
  await page.fill('#login-password', PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#nav-broadcasts', { timeout: 10000 });
  await page.click('#nav-broadcasts');
  await page.waitForSelector('#paging #pg-talk', { timeout: 10000 });
  if (await page.textContent('#paging h2 >> nth=0') === null || !(await page.textContent('#paging h2')).includes('实时喊话')) throw new Error('paging panel not in Chinese');
  step('broadcasts page with the push-to-talk control');

  // Target the one horn, township priority, hold to talk (the default):
  // the mouse stays down until the end.
  await page.uncheck('#pg-all');
  await page.fill('#pg-extra', ['speaker:' + HORN, ...(SIP_HORN ? ['speaker:' + SIP_HORN] : [])].join(' '));
  await page.selectOption('#pg-priority', 'township');
  if (await page.inputValue('#pg-mode') !== 'hold') throw new Error('hold to talk is not the default');
  await page.hover('#pg-talk');
  await page.mouse.down();
  await page.waitForSelector('#pg-status[data-state="live"]', { timeout: 15000 });
  step('live: ' + await page.textContent('#pg-status'));
  await page.waitForSelector(`#pg-horns [data-speaker="${HORN}"][data-state="started"]`, { timeout: 10000 });
  step('the horn is live in the horn list');
  if (SIP_HORN) {
    // The SIP horn is called when the page starts: live once it answered.
    await page.waitForSelector(`#pg-horns [data-speaker="${SIP_HORN}"][data-state="started"]`, { timeout: 15000 });
    step('the SIP horn answered and is live');
  }
  const peak = Number(await page.getAttribute('#pg-level', 'data-peak'));
  if (!(peak > 0.05)) throw new Error('level meter shows no sound: ' + peak);
  await page.screenshot({ path: join(ART, 'paging-live.png'), fullPage: true });

  // A second tab (the phone page, toggle mode) pages the same horn: refused, busy, naming the page and who speaks.
  const phone = await ctx.newPage();
  watch(phone);
  await phone.setViewportSize({ width: 390, height: 800 });
  await phone.goto(BASE + '/#paging');
  await phone.waitForSelector('#paging #pg-talk.big', { timeout: 10000 });
  await phone.uncheck('#pg-all');
  await phone.selectOption('#pg-mode', 'toggle');
  // First a horn that does not exist: refused with its code in words.
  await phone.fill('#pg-extra', 'speaker:no-such-horn');
  await phone.click('#pg-talk');
  await phone.waitForSelector('#pg-error[data-code]:not([data-code=""])', { timeout: 15000 });
  const nohorn = { code: await phone.getAttribute('#pg-error', 'data-code'), text: await phone.textContent('#pg-error') };
  if (nohorn.code !== 'invalid' || !nohorn.text.includes('没有喇叭')) throw new Error('unknown horn not refused as invalid: ' + JSON.stringify(nohorn));
  if (await stateOf(phone) !== 'idle') throw new Error('refused page not idle: ' + await stateOf(phone));
  step('unknown horn refused: ' + nohorn.text);
  await phone.fill('#pg-extra', 'speaker:' + HORN);
  await phone.click('#pg-talk');
  await phone.waitForSelector('#pg-error[data-code="busy"]', { timeout: 15000 });
  const busy = await phone.textContent('#pg-error');
  if (!busy.includes('占用') || !busy.includes(USER)) throw new Error('busy error does not say who is live: ' + busy);
  if (await stateOf(phone) !== 'idle') throw new Error('refused page not idle: ' + await stateOf(phone));
  step('second page refused: ' + busy);
  await phone.screenshot({ path: join(ART, 'paging-phone-busy.png'), fullPage: true });
  await phone.close();

  // About 3 s of tone in all, then release the button.
  await page.waitForFunction(() => Number(document.querySelector('#pg-status').dataset.frames || 0) >= 150, null, { timeout: 15000 });
  await page.mouse.up();
  await page.waitForSelector('#pg-status[data-state="ended"]', { timeout: 15000 });
  const ended = await page.textContent('#pg-status');
  step('ended: ' + ended);
  const info = await page.evaluate(() => { const s = document.querySelector('#pg-status'); return { id: s.dataset.id, frames: Number(s.dataset.frames || 0) }; });
  console.log('PAGE ' + JSON.stringify({ ...info, ended }));
  if (!ended.includes('正常结束')) throw new Error('page did not end normally: ' + ended);
  await page.screenshot({ path: join(ART, 'paging-ended.png'), fullPage: true });
  if (ADMIN_USER) {
    // What aired, from the page's audit entry: an admin (who reads the
    // audit log) downloads the recording by its link; the download is
    // audited in turn.
    await page.click('#logout');
    await page.waitForSelector('#login-user', { timeout: 10000 });
    await page.fill('#login-user', ADMIN_USER);
    await page.fill('#login-password', ADMIN_PASS);
    await page.click('#login-submit');
    await page.waitForSelector('#nav-audit', { timeout: 10000 });
    await page.click('#nav-audit');
    const link = `#audit tr[data-action="paging.end"] a.audit-recording[data-recording="${info.id}"]`;
    await page.waitForSelector(link, { timeout: 10000 });
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click(link)]);
    const wav = readFileSync(await dl.path());
    const rec = { id: info.id, file: dl.suggestedFilename(), bytes: wav.length, riff: wav.toString('latin1', 0, 4) };
    console.log('RECORDING ' + JSON.stringify(rec));
    if (rec.riff !== 'RIFF' || rec.bytes < 58 + 16000) throw new Error('the recording is not a WAV of at least 2 s: ' + JSON.stringify(rec));
    step('recording downloaded from the audit entry: ' + rec.bytes + ' bytes');
    await page.click('#nav-overview').catch(() => {});
    await page.click('#nav-audit');
    await page.waitForSelector(`#audit tr[data-action="recording.download"]`, { timeout: 10000 });
    await page.screenshot({ path: join(ART, 'paging-audit.png'), fullPage: true });
  }
  // (The 401 of the session check before login is a failed resource, not a script error.)
  const bad = consoleErrors.filter((e) => !/Failed to load resource|EventSource|net::ERR/.test(e));
  if (bad.length) throw new Error('console errors: ' + bad.join(' | '));
  ok = true;
} catch (e) {
  console.error(String(e && e.stack || e));
  await page.screenshot({ path: join(ART, 'paging-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
