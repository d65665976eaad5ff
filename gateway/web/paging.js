// Live paging (实时喊话, issue 14): a push-to-talk control on the
// broadcasts page and a phone-sized page (#paging). The microphone goes
// through an AudioWorklet (paging-worklet.js: 20 ms pcm16 frames at
// 16 kHz) to the WebSocket at /api/v1/paging/live (docs/paging.md): a JSON
// start, binary frames, {"end": true} on release; the server answers
// `live`, `horns` (per-horn states), `ended` and `error` (with a code).
import { S, t, h, has, enc, canOper } from './core.js';
import { targetPicker, targetText } from './broadcasts.js';

const PRIORITIES = ['township', 'superior', 'emergency'];
// Frames waiting in the socket beyond this are dropped (a stalled link
// must not grow memory; the server's jitter buffer copes with the gap).
const MAX_BACKLOG = 32 * 1024;

/** An error from the paging socket in the page's language, with the server's message. */
function pageError(code, message) {
  const w = has('pg_e_' + code) ? t('pg_e_' + code) : t('pgError', code || '?');
  return message ? w + (S.lang === 'en' ? ': ' + message : '（' + message + '）') : w;
}

// One push-to-talk control; `idp` prefixes its element ids, `big` makes
// the phone layout.
function pttControl(idp, big) {
  const picker = targetPicker(idp);
  const prio = h('select', { id: idp + '-priority' }, PRIORITIES.map((p) => h('option', { value: p }, t('p_' + p))));
  const mode = h('select', { id: idp + '-mode' }, h('option', { value: 'hold' }, t('pgHold')), h('option', { value: 'toggle' }, t('pgToggle')));
  const talk = h('button', { id: idp + '-talk', class: 'ptt' + (big ? ' big' : ''), type: 'button' }, t('pgTalk'));
  const meter = h('meter', { id: idp + '-level', min: 0, max: 1, low: 0.5, high: 0.9, optimum: 0.3, value: 0 });
  const status = h('p', { id: idp + '-status', class: 'small', 'data-state': 'idle' }, t('pgIdle'));
  const err = h('p', { id: idp + '-error', class: 'err' });
  const hornsBox = h('div', { id: idp + '-horns', class: 'horns' });
  let cur = null;

  const setState = (state, text) => { status.dataset.state = state; status.textContent = text; talk.classList.toggle('on', state === 'connecting' || state === 'live'); talk.textContent = state === 'connecting' || state === 'live' ? t('pgTalking') : t('pgTalk'); };
  const drawHorns = (list) => hornsBox.replaceChildren(...list.map((x) => h('span', { class: 'horn st-' + x.state, 'data-speaker': x.speaker, 'data-state': x.state }, x.speaker, ' ', h('b', {}, has('st_' + x.state) ? t('st_' + x.state) : x.state))));

  // Microphone and audio graph off; the socket stays until the server says `ended`.
  const release = (c) => {
    if (c.mic) c.mic.getTracks().forEach((x) => x.stop());
    if (c.node) c.node.port.onmessage = null;
    if (c.ctx) c.ctx.close().catch(() => {});
    c.mic = null; c.node = null; c.ctx = null;
    meter.value = 0;
  };
  const stop = () => {
    const c = cur;
    if (!c) return;
    cur = null;
    release(c);
    if (c.ws && c.ws.readyState === 1 && !c.done) { c.ws.send(JSON.stringify({ end: true })); setState('ending', t('pgEnding')); } else if (c.ws && !c.done) { c.ws.close(); setState('idle', t('pgIdle')); }
  };
  const start = async () => {
    if (cur) return;
    err.textContent = ''; err.dataset.code = '';
    const targets = picker.value();
    if (!targets.length) { err.textContent = t('needTargets'); return; }
    if (!navigator.mediaDevices || !window.AudioWorkletNode) { err.textContent = t('pgNoMic'); return; }
    const c = { ws: null, mic: null, ctx: null, node: null, done: false, live: false, frames: 0, dropped: 0 };
    cur = c;
    setState('connecting', t('pgConnecting'));
    try {
      c.mic = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: true } });
      c.ctx = new AudioContext();
      await c.ctx.audioWorklet.addModule('/assets/paging-worklet.js');
      c.node = new AudioWorkletNode(c.ctx, 'tgw-paging-frames', { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: 'explicit' });
      c.ctx.createMediaStreamSource(c.mic).connect(c.node);
      c.node.connect(c.ctx.destination); // silent: the processor writes nothing
    } catch (e) {
      release(c);
      if (cur !== c) return; // released while the microphone opened
      cur = null;
      setState('idle', t('pgIdle')); err.textContent = t('micDenied') + ': ' + (e.message || e);
      return;
    }
    if (cur !== c) { release(c); return; } // released while the microphone opened
    c.node.port.onmessage = (ev) => {
      // The page was redrawn under us (a reload of the view): end the page.
      if (!talk.isConnected) { stop(); return; }
      meter.value = ev.data.peak;
      meter.dataset.peak = ev.data.peak.toFixed(3);
      if (!c.live || c.ws.readyState !== 1) return;
      if (c.ws.bufferedAmount > MAX_BACKLOG) { c.dropped++; return; }
      c.ws.send(ev.data.pcm);
      c.frames++;
      status.dataset.frames = String(c.frames);
    };
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    c.ws = new WebSocket(proto + '//' + location.host + '/api/v1/paging/live?csrf=' + enc((S.me && S.me.csrf) || ''));
    c.ws.binaryType = 'arraybuffer';
    c.ws.onopen = () => c.ws.send(JSON.stringify({ targets, priority: prio.value, codec: 'pcm16', rate: 16000 }));
    c.ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m.type === 'live') {
        c.live = true; status.dataset.id = m.id;
        if (cur === c) setState('live', t('pgLive', m.horns, targetText(targets)) + (m.quiet ? ' · ' + t('quietN', m.quiet) : ''));
      } else if (m.type === 'horns' && Array.isArray(m.horns)) {
        drawHorns(m.horns);
      } else if (m.type === 'ended') {
        c.done = true; status.dataset.id = m.id;
        setState('ended', t('pgEnded', ((m.duration_ms || 0) / 1000).toFixed(1), has('pg_r_' + m.reason) ? t('pg_r_' + m.reason) : m.reason));
        if (cur === c) { cur = null; release(c); }
      } else if (m.type === 'error') {
        err.textContent = pageError(m.code, m.message);
        err.dataset.code = m.code || '';
        if (!c.live || m.code !== 'bad-frame') { c.done = true; if (cur === c) { cur = null; release(c); } setState('idle', t('pgIdle')); }
      }
    };
    c.ws.onclose = () => {
      if (cur === c) { cur = null; release(c); }
      if (!c.done) { c.done = true; setState('idle', t('pgIdle')); if (!err.textContent) err.textContent = t('pgClosed'); }
    };
  };

  // Hold: speak while pressed (mouse, touch or the space bar). Toggle: a
  // press starts, the next one stops.
  talk.addEventListener('pointerdown', (e) => { if (e.button !== 0) return; e.preventDefault(); if (mode.value === 'hold') { talk.setPointerCapture && talk.setPointerCapture(e.pointerId); start(); } else if (cur) stop(); else start(); });
  for (const ev of ['pointerup', 'pointercancel']) talk.addEventListener(ev, () => { if (mode.value === 'hold') stop(); });
  talk.addEventListener('keydown', (e) => { if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) { e.preventDefault(); if (mode.value === 'hold') start(); else if (cur) stop(); else start(); } });
  talk.addEventListener('keyup', (e) => { if ((e.key === ' ' || e.key === 'Enter') && mode.value === 'hold') stop(); });
  talk.addEventListener('contextmenu', (e) => e.preventDefault());
  // Leaving the page ends the page (the server would end it within 2 s anyway).
  window.addEventListener('hashchange', stop, { once: true });

  const el = h('div', { class: 'ptt-box' + (big ? ' mobile' : ''), id: idp + '-box' },
    h('div', { class: 'lbl' }, t('targets')), picker.el,
    h('div', { class: 'filters' }, h('label', { for: idp + '-priority' }, t('priority')), prio, h('label', { for: idp + '-mode' }, t('pgMode')), mode),
    h('div', { class: 'filters' }, talk, h('label', { for: idp + '-level' }, t('pgLevel')), meter),
    status, err, h('div', { class: 'lbl' }, t('pgHornsLive')), hornsBox);
  return el;
}

/** The push-to-talk panel of the broadcasts page (operators). */
export function pagingPanel() {
  if (!canOper()) return null;
  return h('section', { class: 'panel', id: 'paging' }, h('h2', {}, t('pgTitle'), ' ', h('a', { href: '#paging', class: 'small', id: 'paging-mobile' }, t('pgMobile'))), pttControl('pg', false));
}

/** #paging: the phone page, big buttons. */
export async function paging(main) {
  if (!canOper()) { main.append(h('p', { class: 'err' }, t('e_forbidden'))); return; }
  main.append(h('section', { class: 'panel paging-mobile', id: 'paging' }, h('h2', {}, t('pgTitle')), pttControl('pg', true)));
}
