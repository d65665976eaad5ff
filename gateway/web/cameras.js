// Cameras: the filtered list and one camera's page (health, login, history).
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';

export async function cameras(main) {
  const params = new URLSearchParams((location.hash.split('?')[1]) || '');
  let page = 1;
  const per = 50;
  const vsel = villageSelect('f-village', params.get('village'), true);
  const verdict = h('select', { id: 'f-verdict' }, h('option', { value: '' }, t('all') + ' ' + t('verdict')), ['ok', 'degraded', 'offline', 'unknown'].map((v) => h('option', { value: v, selected: params.get('verdict') === v }, t(v))));
  const vendor = h('input', { id: 'f-vendor', placeholder: t('vendor'), size: 10 });
  const q = h('input', { id: 'f-q', placeholder: t('search'), size: 14 });
  const gsel = h('span', {}, gridSelect('f-grid', params.get('village')));
  const table = h('div', { id: 'camera-table' });
  const pager = h('div', { class: 'pager' });
  const boxes = new Map();
  const pick = (id) => { const b = h('input', { type: 'checkbox', class: 'pick', value: id, onclick: (e) => e.stopPropagation() }); boxes.set(id, b); return b; };
  const load = async () => {
    const p = new URLSearchParams({ page, per_page: per });
    if (vsel.value) p.set('village', vsel.value);
    const g = document.getElementById('f-grid');
    if (g && g.value) p.set('grid', g.value);
    if (verdict.value) p.set('verdict', verdict.value);
    if (vendor.value.trim()) p.set('vendor', vendor.value.trim());
    if (q.value.trim()) p.set('q', q.value.trim());
    const r = await api('GET', '/api/v1/cameras?' + p);
    const tech = canTech();
    boxes.clear();
    table.replaceChildren(h('table', {}, h('tr', {}, tech ? h('th', {}) : null, [t('id'), t('name'), t('village'), t('grid'), t('address'), t('vendor'), t('model'), t('verdict'), t('reasons')].map((x) => h('th', {}, x))),
      r.data.map((c) => h('tr', { class: 'click', 'data-id': c.id, onclick: () => { location.hash = 'camera/' + encodeURIComponent(c.id); } },
        tech ? h('td', {}, pick(c.id)) : null, h('td', {}, c.id), h('td', {}, c.name || '—'), h('td', {}, villageName(c.village)), h('td', {}, gridName(c.grid)), h('td', {}, c.address || '—'), h('td', {}, c.manufacturer || '—'), h('td', {}, c.model || '—'),
        h('td', {}, verdictBadge(c.health ? c.health.verdict : 'unknown')), h('td', { class: 'small' }, reasonsText(c.health && c.health.reasons))))));
    const pages = Math.max(1, Math.ceil(r.total / per));
    pager.replaceChildren(h('button', { class: 'secondary', disabled: page <= 1, onclick: () => { page--; load(); } }, t('prev')), h('span', {}, t('page', page, pages, r.total)), h('button', { class: 'secondary', disabled: page >= pages, onclick: () => { page++; load(); } }, t('next')));
  };
  vsel.addEventListener('change', () => { gsel.replaceChildren(gridSelect('f-grid', vsel.value)); document.getElementById('f-grid').addEventListener('change', () => { page = 1; load(); }); page = 1; load(); });
  for (const e of [verdict]) e.addEventListener('change', () => { page = 1; load(); });
  for (const e of [vendor, q]) e.addEventListener('input', debounce(() => { page = 1; load(); }, 300));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('cameras')), h('div', { class: 'filters' }, vsel, gsel, verdict, vendor, q), canTech() ? bulkLogin(boxes) : null, table, pager));
  const g0 = document.getElementById('f-grid');
  if (g0) g0.addEventListener('change', () => { page = 1; load(); });
  await load();
  listeners.add(debounce(() => load().catch(() => {}), 2000));
}

export async function cameraDetail(main, id) {
  const r = (await api('GET', '/api/v1/cameras/' + encodeURIComponent(id))).data;
  const d = r.device;
  const hl = r.health;
  const inv = d.inventory || {};
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
  const info = kv([[t('id'), d.id], [t('name'), d.name], [t('vendor'), d.manufacturer], [t('model'), d.model], [t('firmware'), d.firmware], [t('serial'), d.serial], [t('mac'), d.mac], [t('address'), d.address],
    [t('village'), villageName(d.village)], [t('grid'), gridName(d.grid)], [t('probeResult'), d.probe_error_kind ? kindText(d.probe_error_kind) + (d.probe_error ? ' · ' + d.probe_error : '') : (d.inventory_at ? fmtTime(d.inventory_at) : '—')]]);
  const health = hl ? kv([[t('verdict'), verdictBadge(hl.verdict)], [t('reasons'), reasonsText(hl.reasons) + (hl.inventory_error_kind ? ' (' + kindText(hl.inventory_error_kind) + ')' : '')], [t('since'), fmtTime(hl.verdict_since)], [t('rung'), rungText(hl.rung)], [t('lastSeen'), fmtTime(hl.last_seen)],
    [t('lastError'), hl.last_error_kind ? kindText(hl.last_error_kind) + (hl.last_error ? ' · ' + hl.last_error : '') : ''], [t('clockOffset'), hl.clock_offset_ms !== null && hl.clock_offset_ms !== undefined ? hl.clock_offset_ms + ' ms' : ''],
    [t('fps'), hl.last_sample ? hl.last_sample.fps.toFixed(1) : ''], [t('bitrate'), hl.last_sample ? Math.round(hl.last_sample.bitrate_kbps) + ' kbit/s' : ''], [t('codec'), hl.last_sample ? hl.last_sample.codec : '']])
    : h('p', { class: 'muted' }, t('unknown'));
  const profiles = h('table', { id: 'profiles' }, h('tr', {}, [t('name'), t('codec'), t('resolution'), t('fps'), t('bitrate'), t('stream')].map((x) => h('th', {}, x))),
    (inv.profiles || []).map((p) => { const v = (p.profile && p.profile.video) || {}; return h('tr', {}, h('td', {}, p.profile ? p.profile.name : ''), h('td', {}, v.encoding || ''), h('td', {}, v.width ? v.width + '×' + v.height : ''), h('td', {}, v.fps || ''), h('td', {}, v.bitrate_kbps ? v.bitrate_kbps + ' kbit/s' : ''), h('td', { class: 'small' }, p.stream_uri || '')); }));
  const img = h('img', { class: 'snap', id: 'snapshot', alt: t('snapshot'), hidden: true, onload: () => { img.hidden = false; } });
  const snapErr = h('p', { class: 'small muted' });
  fetch('/api/v1/cameras/' + encodeURIComponent(id) + '/snapshot', { credentials: 'same-origin' }).then(async (s) => {
    if (s.ok && (s.headers.get('content-type') || '').startsWith('image/')) img.src = URL.createObjectURL(await s.blob());
    else { const j = await s.json().catch(() => null); snapErr.textContent = errText(j && j.error && j.error.code, (j && j.error && j.error.message) || String(s.status)); }
  }).catch(() => {});
  const ev = (await api('GET', '/api/v1/cameras/' + encodeURIComponent(id) + '/events?limit=50')).data;
  const hist = h('table', { id: 'history' }, h('tr', {}, [t('time'), t('change'), t('rung')].map((x) => h('th', {}, x))),
    ev.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, verdictBadge(e.verdict_from), ' → ', verdictBadge(e.verdict_to), ' ', h('span', { class: 'small' }, reasonsText(e.reasons))), h('td', { class: 'small' }, rungText(e.rung_from) + ' → ' + rungText(e.rung_to)))));
  const probe = canTech() ? h('button', { id: 'probe-now', onclick: async () => { try { await api('POST', '/api/v1/cameras/' + encodeURIComponent(id) + '/probe'); toast(t('probed')); } catch (e) { toast(e.message); } } }, t('probe')) : null;
  main.append(h('p', {}, h('a', { href: '#cameras' }, '← ' + t('cameras'))),
    h('div', { class: 'grid2' },
      h('div', {}, h('section', { class: 'panel', id: 'camera-device' }, h('h2', {}, t('device'), ' ', probe), info), h('section', { class: 'panel' }, h('h2', {}, t('profiles')), profiles), h('section', { class: 'panel' }, h('h2', {}, t('history')), hist)),
      h('div', {}, h('section', { class: 'panel' }, h('h2', {}, t('snapshot')), img, snapErr), h('section', { class: 'panel', id: 'camera-health' }, h('h2', {}, t('health'), ' ', h('a', { class: 'small', href: '#trends?camera=' + enc(id), id: 'camera-trends' }, t('trends'))), health), canTech() ? loginPanel(d, hl) : null)));
  // The verdict changes live; the page redraws unless a login is being typed.
  const typing = () => [...document.querySelectorAll('#login-user-in,#login-pw-in')].some((i) => i.value);
  listeners.add((e) => { if (e.id === id && (e.type === 'transition' || e.type === 'state' && hl && e.verdict !== hl.verdict) && !typing()) hooks.shell(); });
}


// The camera's own login: write-only (never shown), set, clear, and test
// at once with the camera's answer in words.
export function loginPanel(d, hl) {
  const base = '/api/v1/devices/' + enc(d.id) + '/credentials';
  const user = h('input', { id: 'login-user-in', placeholder: t('user'), autocomplete: 'off', size: 12 });
  const pw = h('input', { id: 'login-pw-in', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 12 });
  const out = h('div', { id: 'login-test-result', class: 'small' });
  const state = h('span', { id: 'login-state', class: 'small' }, d.has_credentials ? '✓ ' + t('credsSet') : t('credsNone'));
  const fail = (e, what) => { out.className = 'err small'; out.textContent = e.status === 404 && e.code !== 'not_found' ? t('notYet', what) : e.status === 404 ? t('notYet', what) : e.message; };
  const save = h('button', { id: 'login-save', onclick: async () => {
    if (!user.value || !pw.value) { out.className = 'err small'; out.textContent = t('user') + ' / ' + t('password'); return; }
    try { await api('PUT', base, { username: user.value, password: pw.value }); user.value = ''; pw.value = ''; state.textContent = '✓ ' + t('credsSet'); out.className = 'ok-text small'; out.textContent = t('credsSaved'); } catch (e) { fail(e, 'credentials'); }
  } }, t('save'));
  const clear = h('button', { class: 'secondary', id: 'login-clear', onclick: async () => {
    try { await api('DELETE', base); state.textContent = t('credsNone'); out.className = 'small'; out.textContent = t('credsCleared'); } catch (e) { fail(e, 'credentials'); }
  } }, t('clearCreds'));
  const test = h('button', { class: 'secondary', id: 'login-test', onclick: async () => {
    out.className = 'small muted'; out.textContent = t('testingLogin'); test.disabled = true;
    const body = user.value && pw.value ? { username: user.value, password: pw.value } : undefined;
    try { out.replaceChildren(testVerdict((await api('POST', base + '/test', body)).data)); out.className = 'small'; } catch (e) { fail(e, 'credentials/test'); } finally { test.disabled = false; }
  } }, t('testLogin'));
  const sync = h('button', { class: 'secondary', id: 'sync-time', onclick: async () => {
    try { await api('POST', '/api/v1/cameras/' + enc(d.id) + '/sync-time'); toast(t('synced')); } catch (e) { fail(e, 'sync-time'); }
  } }, t('syncTime'));
  return h('section', { class: 'panel', id: 'camera-login' }, h('h2', {}, t('cameraLogin'), ' ', state),
    h('div', { class: 'filters' }, user, pw, save, clear, test, sync), out,
    hl && typeof hl.clock_offset_ms === 'number' ? h('div', { class: 'small muted' }, t('clockOffset') + ': ' + hl.clock_offset_ms + ' ms') : null);
}

/** A login test's answer: 登录成功 / 密码错误 / 无法连接 / 超时, the camera's message, its clock offset. */
export function testVerdict(x) {
  const ok = x.result === 'ok';
  return h('span', { class: ok ? 'ok-text' : 'err', 'data-result': x.result },
    word('ct_', x.result), x.message ? ' · ' + x.message : '', typeof x.clock_offset_ms === 'number' ? ' · ' + t('clockOffset') + ' ' + x.clock_offset_ms + ' ms' : '');
}

// One login for the selected cameras (POST /api/v1/devices/credentials).
function bulkLogin(boxes) {
  const user = h('input', { id: 'bulk-user', placeholder: t('user'), autocomplete: 'off', size: 10 });
  const pw = h('input', { id: 'bulk-password', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 10 });
  const out = h('span', { id: 'bulk-result', class: 'small' });
  const ids = () => [...boxes.values()].filter((b) => b.checked).map((b) => b.value);
  const go = async (body) => {
    const list = ids();
    if (!list.length) { out.className = 'err small'; out.textContent = t('needPick'); return; }
    try {
      const r = (await api('POST', '/api/v1/devices/credentials', { ids: list, ...body })).data;
      const rows = Array.isArray(r) ? r : (r.results || []);
      const bad = rows.filter((x) => !x.ok);
      out.className = bad.length ? 'err small' : 'ok-text small';
      out.textContent = t('appliedN', rows.length - bad.length, bad.length) + (bad.length ? ' · ' + bad.map((x) => x.id + ': ' + (x.error && x.error.message || x.error || '')).join('; ') : '');
      pw.value = '';
    } catch (e) { out.className = 'err small'; out.textContent = e.status === 404 ? t('notYet', 'devices/credentials') : e.message; }
  };
  return h('div', { class: 'filters', id: 'bulk-login' }, h('span', { class: 'small muted' }, t('bulkLogin')), user, pw,
    h('button', { id: 'bulk-apply', onclick: () => { if (user.value && pw.value) go({ username: user.value, password: pw.value }); } }, t('save')),
    h('button', { class: 'secondary', id: 'bulk-clear', onclick: () => go({ clear: true }) }, t('clearCreds')), out);
}
