// Broadcasts: now playing, announce, assets, recent ones, one broadcast's
// per-horn report, and the emergency dialog.
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';
import { pagingPanel } from './paging.js';

// ---------------------------------------------------------------- broadcasts (issue 7)
// Live broadcasts and per-horn states come from the same SSE stream as
// health: {"type":"broadcast"}, {"type":"horn"} and {"type":"alert"} events.

export const stateBadge = (s) => h('span', { class: 'st st-' + s, 'data-state': s }, t('st_' + s));
export const prioBadge = (p) => h('span', { class: 'prio prio-' + p, 'data-priority': p }, t('p_' + p));
const PRIORITIES = ['background', 'routine', 'township', 'superior'];
const HORN_STATES = ['queued', 'started', 'done', 'interrupted', 'failed', 'cancelled', 'dropped'];

export function daysText(d) {
  if (Array.isArray(d)) return d.map((x) => t('wd' + (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].indexOf(x) + 1))).join(S.lang === 'en' ? ', ' : '、');
  return t('days_' + (d || 'daily'));
}

export function targetText(list) {
  return (list || []).map((x) => {
    const s = String(x);
    if (s === 'all') return t('allHorns');
    const i = s.indexOf(':');
    const k = s.slice(0, i), v = s.slice(i + 1);
    if (k === 'village') return villageName(v);
    if (k === 'grid') return gridName(v);
    if (k === 'zone') return t('tpl_zone') + ' ' + v;
    if (k === 'group') return t('tpl_group') + ' ' + v;
    if (k === 'speaker') return t('speaker') + ' ' + v;
    return s;
  }).join(S.lang === 'en' ? ', ' : '、');
}

// A horn's `why` in the page's language: the engine's and the runtime's
// fixed texts translated; a driver's own error after a translated prefix.
const WHY = { 'expired': 'why_expired', 'quiet hours': 'why_quiet_hours', 'did not stop': 'why_did_not_stop' };
export function whyText(why) {
  const s = String(why);
  if (WHY[s]) return t(WHY[s]);
  const m = /^stopped unasked after (\d+) of (\d+) segments$/.exec(s);
  return m ? t('why_stopped_unasked', m[1], m[2]) : t('why_driver', s);
}

// Why a horn ended as it did: the runtime's detail (why / by / errors).
export function hornReason(d) {
  if (!d) return '';
  if (d.resumed) return t('st_resumed');
  if (d.by) return t('interruptedBy', d.by);
  // The gateway ran out of its own resources: nothing aired, not the horn.
  if (d.error_kind === 'local') return t('why_gateway_limit', d.errno || '?');
  if (d.why) return whyText(d.why);
  if (Array.isArray(d.errors) && d.errors.length) return d.errors.join('; ');
  return '';
}
// Uploaded assets only: TTS renders are cached in the same store as `tts`.
const uploads = (list) => (list || []).filter((a) => a.name !== 'tts' && a.name !== 'tts.wav');
const skewOf = (d) => (d && typeof d.skew_ms === 'number' ? d.skew_ms : null);
const FINAL = new Set(['done', 'interrupted', 'failed', 'cancelled', 'dropped']);
// The start skew of a horn: measured when it started, kept in its history.
const eventSkew = (events, speaker) => { let v = null; for (const e of events || []) if (e.speaker === speaker && skewOf(e.detail) !== null) v = skewOf(e.detail); return v; };

export function countsText(c) {
  return HORN_STATES.filter((k) => c && c[k]).map((k) => h('span', { class: 'cnt st-' + k, 'data-count': k }, t('st_' + k) + ' ' + c[k]));
}

// Targets: everywhere, S.villages, or other targets written out.
export function targetPicker(idp) {
  const all = h('input', { type: 'checkbox', id: idp + '-all', checked: true });
  const boxes = S.villages.map((v) => h('input', { type: 'checkbox', value: 'village:' + v.code, 'data-village': v.code }));
  const extra = h('input', { id: idp + '-extra', placeholder: 'grid:… zone:… group:… speaker:…', size: 26, autocomplete: 'off' });
  const sync = () => { for (const b of boxes) b.disabled = all.checked; extra.disabled = all.checked; };
  all.addEventListener('change', sync);
  sync();
  const el = h('div', { class: 'targets', id: idp + '-targets' },
    h('label', { class: 'chk' }, all, ' ', t('allHorns')),
    boxes.map((b, i) => h('label', { class: 'chk' }, b, ' ', S.villages[i].name)),
    h('label', { class: 'chk' }, t('otherTargets'), ' ', extra));
  const value = () => (all.checked ? ['all'] : boxes.filter((b) => b.checked).map((b) => b.value).concat(extra.value.split(/[\s,，、]+/).filter(Boolean)));
  return { el, value };
}

export function emergencyDialog() {
  const text = h('textarea', { id: 'em-text', rows: 3, maxlength: 2000 });
  const picker = targetPicker('em');
  const err = h('p', { class: 'err', id: 'em-error' });
  const body = h('div', {});
  const overlay = h('div', { class: 'modal', id: 'emergency-dialog', role: 'dialog', 'aria-modal': 'true' },
    h('div', { class: 'modal-box' }, h('h2', { class: 'danger-text' }, '⚠ ', t('emTitle')), h('p', { class: 'small' }, t('emWarn')), body, err));
  const onKey = (e) => { if (e.key === 'Escape') close(); };
  const close = () => { document.removeEventListener('keydown', onKey); overlay.remove(); };
  document.addEventListener('keydown', onKey);
  // A click on the dimmed backdrop (not the box) closes it too.
  overlay.addEventListener('click', (e) => { if (e.target === overlay) close(); });
  let step1 = null;
  const step2 = async () => {
    err.textContent = '';
    const msg = text.value.trim();
    const targets = picker.value();
    if (!msg) { err.textContent = t('needText'); return; }
    if (!targets.length) { err.textContent = t('needTargets'); return; }
    let r;
    try { r = (await api('GET', '/api/v1/targets/resolve?targets=' + enc(targets.join(',')))).data; } catch (e) { err.textContent = e.message; return; }
    if (!r.horns) { err.textContent = t('emNoHorns'); return; }
    const typed = h('input', { id: 'em-typed', inputmode: 'numeric', size: 6, autocomplete: 'off' });
    const go = h('button', { class: 'danger', id: 'em-confirm', disabled: true, onclick: async () => {
      go.disabled = true;
      try {
        const x = (await api('POST', '/api/v1/emergency', { text: msg, targets, confirm: true })).data;
        close();
        toast(t('emStarted', x.horns));
        if (location.hash !== '#broadcasts') location.hash = 'broadcasts';
      } catch (e) { err.textContent = e.message; go.disabled = false; }
    } }, t('emStart'));
    typed.addEventListener('input', () => { go.disabled = typed.value.trim() !== String(r.horns); });
    body.replaceChildren(
      h('dl', { class: 'kv', id: 'em-summary' },
        h('dt', {}, t('text')), h('dd', {}, msg),
        h('dt', {}, t('targets')), h('dd', { id: 'em-targets' }, targetText(targets)),
        h('dt', {}, t('horns')), h('dd', { id: 'em-horns', class: 'big' }, String(r.horns)),
        r.unknown && r.unknown.length ? [h('dt', {}, t('unknownTargets')), h('dd', { class: 'err' }, r.unknown.join(', '))] : null),
      h('p', {}, t('emTypeCount', r.horns)), typed,
      h('div', { class: 'actions' }, h('button', { class: 'secondary', id: 'em-back', onclick: step1 }, t('back')), go));
    typed.focus();
  };
  step1 = () => {
    err.textContent = '';
    body.replaceChildren(h('label', { for: 'em-text' }, t('text')), text, h('div', { class: 'lbl' }, t('targets')), picker.el,
      h('div', { class: 'actions' }, h('button', { class: 'secondary', id: 'em-cancel', onclick: close }, t('dismiss')), h('button', { class: 'danger', id: 'em-next', onclick: step2 }, t('continue'))));
  };
  step1();
  document.body.append(overlay);
  text.focus();
}

export async function uploadAsset(file) {
  const r = await fetch('/api/v1/audio-assets?name=' + enc(file.name), { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': S.me.csrf || '', 'Content-Type': file.type || 'application/octet-stream' }, body: file });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error && data.error.message) || String(r.status));
  return data;
}

export async function broadcasts(main) {
  const rows = new Map();
  const hornsOf = new Map();
  const fresh = (b) => b.state === 'queued' || b.state === 'playing' || (b.ended_at && Date.now() - new Date(b.ended_at).getTime() < 120000);
  // Live events apply in arrival order, except that the measured
  // "started" report (it carries the skew and may come last) never undoes
  // a final state; a fetched snapshot applies only where it is newer.
  const hornMap = (id) => { let m = hornsOf.get(id); if (!m) { m = new Map(); hornsOf.set(id, m); } return m; };
  const mergeLive = (id, x) => {
    const m = hornMap(id), old = m.get(x.speaker);
    const skew = skewOf(x.detail) ?? (old ? old.skew : null);
    if (old && FINAL.has(old.state) && x.state === 'started') { old.skew = skew; return; }
    m.set(x.speaker, { ...x, skew });
  };
  const loadHorns = async (id) => {
    const d = (await api('GET', '/api/v1/broadcasts/' + enc(id))).data;
    const m = hornMap(id);
    for (const x of d.horns) {
      const old = m.get(x.speaker);
      if (!old || String(x.at) > String(old.at)) m.set(x.speaker, { ...x, skew: skewOf(x.detail) ?? eventSkew(d.events, x.speaker) ?? (old ? old.skew : null) });
    }
  };
  const liveBox = h('div', { id: 'live-broadcasts' });
  const recentBox = h('div', { id: 'recent-broadcasts' });
  const cancel = (id) => h('button', { class: 'secondary cancel-btn', 'data-id': id, onclick: async (ev) => {
    ev.stopPropagation();
    try { await api('POST', '/api/v1/broadcasts/' + enc(id) + '/cancel'); } catch (e) { toast(e.message); }
  } }, t('stop'));
  const draw = () => {
    // Horn events arrive before the broadcast's row changes: derive the
    // state and counts from the horns where they are known.
    const live = (b) => {
      const m = hornsOf.get(b.id);
      if (!m || !m.size) return b;
      const counts = {};
      for (const x of m.values()) counts[x.state] = (counts[x.state] || 0) + 1;
      const state = b.state === 'queued' && counts.started ? 'playing' : b.state;
      return { ...b, state, counts };
    };
    const all = [...rows.values()].map(live).sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    // Now playing: only what is queued or playing; finished ones are in the recent list.
    const now = all.filter((b) => b.state === 'queued' || b.state === 'playing');
    liveBox.replaceChildren(...(now.length ? now.map((b) => {
      const horns = [...(hornsOf.get(b.id) || new Map()).values()].sort((x, y) => x.speaker.localeCompare(y.speaker));
      const running = b.state === 'queued' || b.state === 'playing';
      return h('div', { class: 'bcast' + (b.priority === 'emergency' ? ' emergency' : ''), 'data-id': b.id, 'data-state': b.state },
        h('div', { class: 'bhead' }, prioBadge(b.priority), ' ', h('a', { href: '#broadcast/' + enc(b.id) }, h('strong', {}, b.title)), ' ', stateBadge(b.state),
          h('span', { class: 'small muted' }, ' ', targetText(b.targets), ' · ', t('hornsN', b.horns), ' · ', fmtTime(b.t0 || b.created_at)),
          running && canOper() ? [' ', cancel(b.id)] : null),
        h('div', { class: 'horns' }, horns.map((x) => {
          const sk = x.skew ?? null, why = hornReason(x.detail);
          return h('span', { class: 'horn st-' + x.state, 'data-speaker': x.speaker, 'data-state': x.state, title: why || '' },
            x.speaker, ' ', h('b', {}, t('st_' + x.state)), sk !== null ? h('span', { class: 'small' }, ' ' + sk.toFixed(1) + ' ms') : null);
        })));
    }) : [h('p', { class: 'muted', id: 'no-live' }, t('noLive'))]));
    recentBox.replaceChildren(all.length ? h('table', { id: 'broadcast-table' },
      h('tr', {}, [t('time'), t('bTitle'), t('origin'), t('priority'), t('targets'), t('horns'), t('state'), t('byState')].map((x) => h('th', {}, x))),
      all.map((b) => h('tr', { class: 'click', 'data-id': b.id, onclick: () => { location.hash = 'broadcast/' + enc(b.id); } },
        h('td', { class: 'small' }, fmtTime(b.created_at)), h('td', {}, b.title), h('td', { class: 'small' }, b.origin), h('td', {}, prioBadge(b.priority)),
        h('td', { class: 'small' }, targetText(b.targets)), h('td', {}, b.horns), h('td', {}, stateBadge(b.state)), h('td', { class: 'counts' }, countsText(b.counts)))))
      : h('p', { class: 'muted' }, t('noBroadcasts')));
  };
  const redraw = debounce(draw, 80);
  const list = (await api('GET', '/api/v1/broadcasts?limit=50')).data;
  for (const b of list) rows.set(b.id, b);
  await Promise.all(list.filter(fresh).map((b) => loadHorns(b.id).catch(() => {})));

  const actions = canOper() ? h('div', { class: 'filters' },
    h('button', { class: 'danger big', id: 'emergency-btn', onclick: emergencyDialog }, '⚠ ', t('emergency')),
    h('button', { class: 'secondary', id: 'stop-all', onclick: async () => {
      if (!window.confirm(t('confirmStopAll'))) return;
      try { const x = (await api('POST', '/api/v1/broadcasts/stop-all')).data; toast(t('stoppedN', x.stopped)); } catch (e) { toast(e.message); }
    } }, '■ ', t('stopAll'))) : null;
  main.append(actions,
    h('section', { class: 'panel' }, h('h2', {}, t('liveBroadcasts')), liveBox),
    canOper() ? await announcePanel() : null,
    pagingPanel(),
    h('section', { class: 'panel' }, h('h2', {}, t('recent')), recentBox),
    await assetsPanel());
  draw();
  listeners.add((ev) => {
    if (ev.type === 'broadcast' && ev.broadcast) {
      const b = ev.broadcast;
      if (!hornsOf.has(b.id)) { hornsOf.set(b.id, new Map()); loadHorns(b.id).then(redraw).catch(() => {}); }
      rows.set(b.id, b);
      redraw();
    } else if (ev.type === 'horn') {
      mergeLive(ev.broadcast, { speaker: ev.speaker, state: ev.state, detail: ev.detail, at: ev.at });
      redraw();
    } else if (ev.type === 'lagged') hooks.shell();
  });
  // Finished broadcasts leave the live panel after two minutes.
  const tick = setInterval(() => { if (!document.body.contains(liveBox)) clearInterval(tick); else draw(); }, 30000);
}

export async function announcePanel() {
  let assets = [];
  try { assets = uploads((await api('GET', '/api/v1/audio-assets')).data); } catch (_) { /* no asset store */ }
  const text = h('textarea', { id: 'an-text', rows: 2, maxlength: 2000 });
  const asset = h('select', { id: 'an-asset' }, h('option', { value: '' }, t('useText')), assets.map((a) => h('option', { value: 'sha256:' + a.sha256 }, a.name + ' (' + (a.duration_ms / 1000).toFixed(1) + ' s)')));
  const picker = targetPicker('an');
  const prio = h('select', { id: 'an-priority' }, PRIORITIES.map((p) => h('option', { value: p, selected: p === 'township' }, t('p_' + p))));
  const repeat = h('input', { id: 'an-repeat', type: 'number', min: 1, max: 20, value: 1, size: 3 });
  const out = h('p', { class: 'small', id: 'an-result' });
  const go = h('button', { id: 'an-start', onclick: async () => {
    out.className = 'small'; out.textContent = '';
    const body = { targets: picker.value(), priority: prio.value, repeat: Number(repeat.value) || 1 };
    if (asset.value) body.asset = asset.value; else body.text = text.value.trim();
    if (!body.asset && !body.text) { out.className = 'err'; out.textContent = t('needText'); return; }
    if (!body.targets.length) { out.className = 'err'; out.textContent = t('needTargets'); return; }
    go.disabled = true;
    try { const x = (await api('POST', '/api/v1/broadcasts', body)).data; out.textContent = t('startedN', x.horns) + (x.quiet ? ' · ' + t('quietN', x.quiet) : ''); text.value = ''; } catch (e) { out.className = 'err'; out.textContent = e.message; } finally { go.disabled = false; }
  } }, t('startBroadcast'));
  return h('section', { class: 'panel', id: 'announce' }, h('h2', {}, t('announce')),
    h('label', { for: 'an-text', class: 'lbl' }, t('text')), text,
    h('div', { class: 'filters' }, h('label', { for: 'an-asset' }, t('orAsset')), asset),
    h('div', { class: 'lbl' }, t('targets')), picker.el,
    h('div', { class: 'filters' }, h('label', { for: 'an-priority' }, t('priority')), prio, h('label', { for: 'an-repeat' }, t('repeat')), repeat, go), out);
}

export async function assetsPanel() {
  let list = [];
  let err = '';
  try { list = uploads((await api('GET', '/api/v1/audio-assets')).data); } catch (e) { err = e.message; }
  const file = h('input', { type: 'file', id: 'asset-file', accept: 'audio/*,.mp3,.wav,.ogg,.flac,.opus,.webm,.m4a,.mp4,.aac' });
  const out = h('p', { class: 'small', id: 'asset-result' }, err);
  const up = h('button', { id: 'asset-upload', disabled: !!err, onclick: async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    up.disabled = true; out.className = 'small'; out.textContent = '…';
    try { const a = await uploadAsset(f); toast(t('uploadedN', a.name)); hooks.shell(); } catch (e) { out.className = 'err'; out.textContent = e.message; up.disabled = false; }
  } }, t('upload'));
  return h('section', { class: 'panel', id: 'assets' }, h('h2', {}, t('assets')),
    canOper() ? h('div', { class: 'filters' }, file, up) : null, canOper() ? recorder(out) : null, out,
    list.length ? h('table', { id: 'asset-table' }, h('tr', {}, [t('name'), t('format'), t('duration'), 'sha256'].map((x) => h('th', {}, x))),
      list.map((a) => h('tr', {}, h('td', {}, a.name), h('td', {}, a.format), h('td', {}, (a.duration_ms / 1000).toFixed(1) + ' s'), h('td', { class: 'small mono' }, a.sha256.slice(0, 16) + '…'))))
      : h('p', { class: 'muted' }, t('noAssets')));
}

// In-browser recording (MediaRecorder: Opus in WebM on Chromium, AAC in
// MP4 on Safari): record, listen back, upload as an asset. Microphones open
// only on HTTPS or localhost.
function recorder(out) {
  let rec = null, blob = null, url = '';
  const player = h('audio', { id: 'rec-player', controls: true, hidden: true });
  const state = h('span', { class: 'small', id: 'rec-state' });
  const send = h('button', { id: 'rec-upload', disabled: true, onclick: async () => {
    if (!blob) return;
    send.disabled = true; out.className = 'small'; out.textContent = '…';
    const ext = /mp4|aac/.test(blob.type) ? 'm4a' : /ogg/.test(blob.type) ? 'ogg' : 'webm';
    const stamp = new Date().toLocaleString('sv-SE', { timeZone: 'Asia/Shanghai' }).replace(/[: ]/g, '-');
    const f = new File([blob], t('recordingName') + '-' + stamp + '.' + ext, { type: blob.type });
    try { const a = await uploadAsset(f); toast(t('uploadedN', a.name)); hooks.shell(); } catch (e) { out.className = 'err'; out.textContent = e.message; send.disabled = false; }
  } }, t('uploadRecording'));
  const stop = h('button', { id: 'rec-stop', class: 'secondary', disabled: true, onclick: () => { if (rec && rec.state !== 'inactive') rec.stop(); } }, t('stopRecording'));
  const start = h('button', { id: 'rec-start', class: 'secondary', onclick: async () => {
    if (!window.MediaRecorder || !navigator.mediaDevices) { out.className = 'err'; out.textContent = t('noRecorder'); return; }
    let stream;
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch (e) { out.className = 'err'; out.textContent = t('micDenied') + ': ' + e.message; return; }
    const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4'].find((x) => MediaRecorder.isTypeSupported(x));
    rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
    const parts = [];
    rec.ondataavailable = (e) => { if (e.data.size) parts.push(e.data); };
    rec.onstop = () => {
      stream.getTracks().forEach((x) => x.stop());
      blob = new Blob(parts, { type: rec.mimeType || type || 'audio/webm' });
      if (url) URL.revokeObjectURL(url);
      url = URL.createObjectURL(blob); player.src = url; player.hidden = false;
      state.textContent = t('recordedBytes', blob.size); start.disabled = false; stop.disabled = true; send.disabled = false;
    };
    rec.start(250);
    blob = null; send.disabled = true; player.hidden = true; start.disabled = true; stop.disabled = false; state.textContent = t('recordingNow');
  } }, t('record'));
  return h('div', { class: 'filters', id: 'recorder' }, start, stop, state, player, send);
}

export async function broadcastDetail(main, id) {
  const [r, spk] = await Promise.all([api('GET', '/api/v1/broadcasts/' + enc(id)), api('GET', '/api/v1/speakers').catch(() => ({ data: [] }))]);
  const names = new Map((spk.data || []).map((s) => [s.id, s.name]));
  const b = r.data.broadcast;
  const running = b.state === 'queued' || b.state === 'playing';
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
  main.append(h('p', {}, h('a', { href: '#broadcasts' }, '← ' + t('broadcasts'))),
    h('section', { class: 'panel', id: 'broadcast-detail', 'data-state': b.state }, h('h2', {}, t('broadcastDetail'), ' ', b.title, ' ',
      running && canOper() ? h('button', { class: 'secondary', id: 'cancel-broadcast', onclick: async () => { try { await api('POST', '/api/v1/broadcasts/' + enc(id) + '/cancel'); } catch (e) { toast(e.message); } } }, t('stop')) : null),
    kv([[t('id'), b.id], [t('state'), stateBadge(b.state)], [t('priority'), prioBadge(b.priority)], [t('origin'), b.origin], [t('targets'), targetText(b.targets)], [t('horns'), b.horns],
      [t('t0'), fmtTime(b.t0)], [t('created'), fmtTime(b.created_at)], [t('ended'), fmtTime(b.ended_at)], [t('byState'), h('span', { class: 'counts' }, countsText(b.counts))],
      [t('airedRec'), b.priority === 'emergency' && !running ? h('a', { id: 'aired-download', href: '/api/v1/recordings/' + enc(b.id), download: b.id + '.wav' }, t('airedDownload')) : null]])),
    h('section', { class: 'panel' }, h('h2', {}, t('horns')), h('table', { id: 'horn-table' },
      h('tr', {}, [t('speaker'), t('name'), t('state'), t('time'), t('skewMs'), t('reason')].map((x) => h('th', {}, x))),
      r.data.horns.map((x) => {
        const sk = skewOf(x.detail) ?? eventSkew(r.data.events, x.speaker);
        return h('tr', { 'data-speaker': x.speaker, 'data-state': x.state }, h('td', {}, x.speaker), h('td', {}, names.get(x.speaker) || '—'), h('td', {}, stateBadge(x.state)), h('td', { class: 'small' }, fmtTime(x.at)),
          h('td', {}, sk === null ? '—' : sk.toFixed(1) + ' ms'), h('td', { class: 'small' }, hornReason(x.detail)));
      }))),
    h('section', { class: 'panel' }, h('h2', {}, t('events')), h('table', { id: 'event-table' },
      h('tr', {}, [t('time'), t('speaker'), t('state'), t('reason')].map((x) => h('th', {}, x))),
      r.data.events.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, e.speaker || '—'), h('td', {}, stateBadge(e.state)), h('td', { class: 'small' }, hornReason(e.detail)))))));
  const again = debounce(() => { if (location.hash === '#broadcast/' + enc(id)) hooks.shell(); }, 500);
  listeners.add((ev) => { if ((ev.type === 'horn' && ev.broadcast === id) || (ev.type === 'broadcast' && ev.broadcast && ev.broadcast.id === id)) again(); });
}

