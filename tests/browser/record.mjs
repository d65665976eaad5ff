// Recorded clip suite: Debian's Chromium (fake microphone playing TONE, a
// WAV) records an Opus clip on the broadcasts page with MediaRecorder,
// listens back, uploads it as an asset, then broadcasts the asset to one
// horn. Started by tests/tests/browser.rs (test
// `clip_recorded_in_chromium_plays_on_an_ffmpeg_horn`), which checks the
// horn (ffmpeg) heard the tone. Never downloads a browser.
//
// Env: BASE, USER_NAME, PASS (an operator), TONE (WAV path), HORN (speaker
// id), ARTIFACTS (screenshot dir). Prints `ASSET <json>` and `BROADCAST <id>`.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { BASE, USER, PASS, HORN, ART, profile, step, ctx, page } from './mic.mjs';
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));
let ok = false;
try {
  await page.goto(BASE + '/');
  await page.waitForSelector('#login-user', { timeout: 10000 });
  await page.fill('#login-user', USER);
  await page.fill('#login-password', PASS);
  await page.click('#login-submit');
  await page.waitForSelector('#nav-broadcasts', { timeout: 10000 });
  await page.click('#nav-broadcasts');
  await page.waitForSelector('#recorder #rec-start', { timeout: 10000 });
  if (await page.textContent('#rec-start') !== '录音') throw new Error('record button not in Chinese');
  step('broadcasts page with the recorder');

  await page.click('#rec-start');
  await page.waitForFunction(() => !document.querySelector('#rec-stop').disabled, null, { timeout: 10000 });
  step('recording');
  // The clip's length: 3 s of the fake microphone's tone.
  await page.waitForTimeout(3000);
  await page.click('#rec-stop');
  await page.waitForSelector('#rec-player:not([hidden])', { timeout: 10000 });
  step('recorder says: ' + await page.textContent('#rec-state'));
  // Listen back: the player holds the recorded clip and plays it (the
  // dashboard's CSP allows blob: media).
  const back = await page.evaluate(async () => {
    const a = document.querySelector('#rec-player');
    await a.play();
    await new Promise((r) => setTimeout(r, 500));
    const played = a.currentTime > 0;
    a.pause();
    return { controls: a.controls, blob: a.src.startsWith('blob:'), played };
  });
  if (!back.played) throw new Error('listen-back does not play: ' + JSON.stringify(back));
  if (!back.controls || !back.blob) throw new Error('listen-back player: ' + JSON.stringify(back));
  step('recorded and played back: ' + await page.textContent('#rec-state'));
  await page.screenshot({ path: join(ART, 'record-recorded.png'), fullPage: true });

  await page.click('#rec-upload');
  await page.waitForFunction(() => [...document.querySelectorAll('#asset-table td')].some((td) => td.textContent === 'webm/opus'), null, { timeout: 20000 });
  step('uploaded: the asset table lists a webm/opus asset');
  await page.screenshot({ path: join(ART, 'record-uploaded.png'), fullPage: true });

  const res = await page.evaluate(async (horn) => {
    const s = await (await fetch('/api/v1/session')).json();
    const csrf = s.csrf || (s.data && s.data.csrf);
    const list = await (await fetch('/api/v1/audio-assets')).json();
    const assets = Array.isArray(list) ? list : (list.data || list.assets || []);
    const a = assets.find((x) => x.format === 'webm/opus');
    const r = await fetch('/api/v1/broadcasts', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: JSON.stringify({ targets: ['speaker:' + horn], asset: 'sha256:' + a.sha256, chime: false, title: 'recorded clip' }) });
    return { asset: a, status: r.status, body: await r.json() };
  }, HORN);
  console.log('ASSET ' + JSON.stringify(res.asset));
  if (![200, 201, 202].includes(res.status)) throw new Error('broadcast refused: ' + JSON.stringify(res));
  console.log('BROADCAST ' + JSON.stringify(res.body));
  step('broadcast the clip to ' + HORN);
  // (The 401 of the session check before login is a failed resource, not a script error.)
  const bad = consoleErrors.filter((e) => !/Failed to load resource|EventSource|net::ERR/.test(e));
  if (bad.length) throw new Error('console errors: ' + bad.join(' | '));
  ok = true;
} catch (e) {
  console.error(String(e && e.stack || e));
  await page.screenshot({ path: join(ART, 'record-failure.png'), fullPage: true }).catch(() => {});
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
