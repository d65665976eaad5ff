// What the fake-microphone cases share (record.mjs, paging.mjs): their
// environment (BASE, USER_NAME, PASS, TONE: a WAV Chromium plays as the
// microphone, HORN, ARTIFACTS), a timed step logger, and Chromium launched
// headless with a fresh profile and the fake microphone.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`missing env ${k}`); return v; };
export const BASE = env('BASE'), USER = env('USER_NAME'), PASS = env('PASS'), TONE = env('TONE'), HORN = env('HORN'), ART = env('ARTIFACTS');
mkdirSync(ART, { recursive: true });
export const profile = mkdtempSync(join(tmpdir(), 'tgw-chromium-'));
const t0 = Date.now();
export const step = (s) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${s}`);

export const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${TONE}`,
    '--autoplay-policy=no-user-gesture-required'],
  viewport: { width: 1366, height: 900 },
  locale: 'zh-CN',
  timezoneId: 'UTC',
});
export const page = ctx.pages()[0] || await ctx.newPage();
