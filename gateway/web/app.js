// Township Gateway dashboard: a small single-page app, no build step.
// All text goes into the DOM through textContent (never innerHTML), the
// session cookie is HttpOnly, and mutating calls send the CSRF token the
// server gave at login (held in memory only).
'use strict';

const T = {
  'zh-CN': {
    title: '镇综治中心网关', login: '登录', user: '用户名', password: '密码', logout: '退出',
    badLogin: '用户名或密码错误', locked: '尝试次数过多，请稍后再试',
    overview: '总览', cameras: '摄像机', inbox: '待认领设备', speakers: '喇叭', audit: '审计日志', users: '用户',
    ok: '正常', degraded: '异常', offline: '离线', unknown: '未检测', total: '摄像机总数',
    byVillage: '各村/社区摄像机状态', alarms: '当前告警', transitions: '最近状态变化', noAlarms: '无告警',
    village: '村/社区', grid: '网格', verdict: '状态', vendor: '厂商', model: '型号', address: '地址', id: '编号',
    name: '名称', reasons: '原因', since: '起始', time: '时间', change: '变化', all: '全部', search: '搜索',
    unassigned: '未分配', prev: '上一页', next: '下一页', page: '第 {0} / {1} 页，共 {2} 台',
    detail: '摄像机详情', device: '设备信息', profiles: '媒体配置', health: '健康', history: '状态历史',
    snapshot: '快照', probe: '立即检测', probed: '已加入检测队列', firmware: '固件', serial: '序列号', mac: 'MAC',
    rung: '连通等级', lastSeen: '最后在线', lastError: '最近错误', resolution: '分辨率', fps: '帧率', bitrate: '码率', codec: '编码', stream: '码流地址',
    adopt: '认领到村/网格', ignore: '忽略', selectAll: '全选', credsOpt: '设备账号（可选）', probeResult: '探测结果',
    adopted: '已认领 {0} 台', ignored: '已忽略 {0} 台', noInbox: '没有待认领的设备', chooseVillage: '请选择村/社区',
    noSpeakers: '暂无喇叭（可用 tgw speakers import 导入）',
    kind: '类型', volume: '音量', lastTest: '最近测试', testTone: '测试音', tone: '频率 (Hz)', seconds: '时长 (秒)', testing: '正在播放测试音…',
    confirmTest: '确定在喇叭「{0}」上播放 {1} Hz 测试音 {2} 秒吗？附近的人会听到。', answered: '已应答', notAnswered: '未应答', packets: '已发送 {0} 个包', skew: '偏差 {0} ms', testOk: '测试成功', testFailed: '测试失败', busy: '该喇叭正在测试中', pwSet: '已设密码', never: '从未测试', actor: '操作人', source: '来源', action: '操作', target: '对象', outcome: '结果', before: '之前', after: '之后',
    role: '角色', created: '创建时间', disabled: '已停用', addUser: '添加用户', add: '添加', logLevel: '日志级别', apply: '应用',
    live: '实时', lang: 'English', inboxCount: '待认领', error: '错误', credsSet: '已设置账号', setCreds: '设置账号', save: '保存',
    viewer: '查看员', operator: '值班员', technician: '技术员', admin: '管理员', none: '无',
  },
  en: {
    title: 'Township Gateway', login: 'Log in', user: 'User name', password: 'Password', logout: 'Log out',
    badLogin: 'Wrong user name or password', locked: 'Too many attempts; try again later',
    overview: 'Overview', cameras: 'Cameras', inbox: 'Discovery inbox', speakers: 'Speakers', audit: 'Audit log', users: 'Users',
    ok: 'OK', degraded: 'Degraded', offline: 'Offline', unknown: 'Not checked', total: 'Cameras',
    byVillage: 'Cameras by village', alarms: 'Active alarms', transitions: 'Recent transitions', noAlarms: 'No alarms',
    village: 'Village', grid: 'Grid', verdict: 'Status', vendor: 'Vendor', model: 'Model', address: 'Address', id: 'ID',
    name: 'Name', reasons: 'Reasons', since: 'Since', time: 'Time', change: 'Change', all: 'All', search: 'Search',
    unassigned: 'Unassigned', prev: 'Previous', next: 'Next', page: 'Page {0} of {1}, {2} cameras',
    detail: 'Camera detail', device: 'Device', profiles: 'Media profiles', health: 'Health', history: 'History',
    snapshot: 'Snapshot', probe: 'Probe now', probed: 'Queued for probing', firmware: 'Firmware', serial: 'Serial', mac: 'MAC',
    rung: 'Ladder', lastSeen: 'Last seen', lastError: 'Last error', resolution: 'Resolution', fps: 'FPS', bitrate: 'Bitrate', codec: 'Codec', stream: 'Stream URI',
    adopt: 'Adopt into village/grid', ignore: 'Ignore', selectAll: 'Select all', credsOpt: 'Device login (optional)', probeResult: 'Probe result',
    adopted: 'Adopted {0}', ignored: 'Ignored {0}', noInbox: 'No devices waiting', chooseVillage: 'Choose a village',
    noSpeakers: 'No speakers yet (import them with tgw speakers import)',
    kind: 'Kind', volume: 'Volume', lastTest: 'Last test', testTone: 'Test tone', tone: 'Tone (Hz)', seconds: 'Seconds', testing: 'Playing the test tone…',
    confirmTest: 'Play a {1} Hz test tone for {2} s on speaker “{0}”? People nearby will hear it.', answered: 'answered', notAnswered: 'no answer', packets: '{0} packets sent', skew: 'skew {0} ms', testOk: 'Test OK', testFailed: 'Test failed', busy: 'This speaker is already being tested', pwSet: 'password set', never: 'never tested', actor: 'Who', source: 'From', action: 'Action', target: 'Target', outcome: 'Outcome', before: 'Before', after: 'After',
    role: 'Role', created: 'Created', disabled: 'Disabled', addUser: 'Add user', add: 'Add', logLevel: 'Log level', apply: 'Apply',
    live: 'Live', lang: '中文', inboxCount: 'Inbox', error: 'Error', credsSet: 'Login set', setCreds: 'Set login', save: 'Save',
    viewer: 'Viewer', operator: 'Operator', technician: 'Technician', admin: 'Admin', none: 'None',
  },
};
const ROLES = ['viewer', 'operator', 'technician', 'admin'];
let lang = document.documentElement.lang === 'en' ? 'en' : 'zh-CN';
let me = null;
let villages = [];
let es = null;
const t = (k, ...a) => (T[lang][k] || k).replace(/\{(\d)\}/g, (_, i) => a[i]);

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v; // CSSOM: allowed by the CSP, unlike style attributes
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(method, path, body) {
  const opt = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET' && me && me.csrf) opt.headers['X-CSRF-Token'] = me.csrf;
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  const r = await fetch(path, opt);
  if (r.status === 401 && path !== '/api/v1/login') { me = null; renderLogin(); throw new Error('unauthenticated'); }
  const ct = r.headers.get('content-type') || '';
  const data = ct.includes('json') ? await r.json() : null;
  if (!r.ok) { const e = new Error((data && data.error && data.error.message) || r.status); e.code = data && data.error && data.error.code; e.status = r.status; throw e; }
  return { data, total: Number(r.headers.get('x-total-count') || 0) };
}

function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (isNaN(d)) return s;
  try {
    return new Intl.DateTimeFormat(lang, { timeZone: (me && me.timezone) || 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
  } catch (_) { return d.toISOString(); }
}
const verdictBadge = (v) => h('span', { class: 'v ' + (v || 'unknown'), 'data-verdict': v || 'unknown' }, t(v || 'unknown'));
const villageName = (code) => { const v = villages.find((x) => x.code === code); return v ? v.name : (code || t('unassigned')); };
const gridName = (code) => { for (const v of villages) for (const g of v.grids) if (g[0] === code) return g[1]; return code || '—'; };
function toast(msg) { const e = h('div', { class: 'toast', role: 'status' }, msg); document.body.append(e); setTimeout(() => e.remove(), 3500); }

function setLang(l) {
  lang = l;
  document.documentElement.lang = l;
  document.cookie = 'tgw_lang=' + (l === 'en' ? 'en' : 'zh-CN') + '; Path=/; SameSite=Strict; Max-Age=31536000';
  if (me) shell(); else renderLogin();
}

function renderLogin(msg) {
  if (es) { es.close(); es = null; }
  const user = h('input', { id: 'login-user', autocomplete: 'username', required: true });
  const pw = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const out = h('p', { class: 'err', id: 'login-error' }, msg || '');
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/api/v1/login', { user: user.value, password: pw.value });
      me = r.data;
      await start();
    } catch (e) { out.textContent = e.code === 'locked' || e.code === 'rate_limited' ? t('locked') : t('badLogin'); }
  } },
    h('h1', {}, t('title')),
    h('label', { for: 'login-user' }, t('user')), user,
    h('label', { for: 'login-password' }, t('password')), pw,
    h('button', { type: 'submit', id: 'login-submit' }, t('login')), out,
    h('p', { class: 'small' }, h('a', { href: '#', id: 'lang', onclick: (e) => { e.preventDefault(); setLang(lang === 'en' ? 'zh-CN' : 'en'); } }, t('lang'))));
  document.getElementById('app').replaceChildren(form);
  document.title = t('title');
}

async function start() {
  const s = await api('GET', '/api/v1/session');
  me = s.data;
  villages = (await api('GET', '/api/v1/villages')).data;
  connectLive();
  shell();
}

const listeners = new Set();
function connectLive() {
  if (es) es.close();
  es = new EventSource('/api/v1/events');
  es.addEventListener('hello', () => { const d = document.getElementById('live-dot'); if (d) d.classList.add('on'); });
  es.addEventListener('health', (ev) => { let d; try { d = JSON.parse(ev.data); } catch (_) { return; } for (const f of listeners) f(d); });
  es.addEventListener('lagged', () => { for (const f of listeners) f({ type: 'lagged' }); });
  es.onerror = () => { const d = document.getElementById('live-dot'); if (d) d.classList.remove('on'); };
}

function shell() {
  const pages = [['overview', 'overview'], ['cameras', 'cameras'], ['inbox', 'inbox'], ['speakers', 'speakers']];
  if (me.role === 'admin') pages.push(['audit', 'audit'], ['users', 'users']);
  const route = (location.hash.slice(1) || 'overview').split('/')[0].split('?')[0];
  const nav = h('nav', {}, pages.map(([p, k]) => h('a', { href: '#' + p, id: 'nav-' + p, class: route === p || (route === 'camera' && p === 'cameras') ? 'active' : null }, t(k))));
  const header = h('header', {},
    h('h1', {}, (me.township || '') + ' · ' + t('title')), nav,
    h('div', { class: 'me' },
      h('span', {}, h('span', { class: 'live' + (es && es.readyState === 1 ? ' on' : ''), id: 'live-dot' }), t('live')),
      h('span', {}, me.user + ' (' + t(me.role) + ')'),
      h('button', { id: 'lang', onclick: () => setLang(lang === 'en' ? 'zh-CN' : 'en') }, t('lang')),
      h('button', { id: 'logout', onclick: async () => { try { await api('POST', '/api/v1/logout'); } catch (_) { /* gone anyway */ } me = null; renderLogin(); } }, t('logout'))));
  const main = h('main', { id: 'main' });
  document.getElementById('app').replaceChildren(header, main);
  document.title = t('title');
  listeners.clear();
  const [page0, arg] = location.hash.slice(1).split('/');
  const page = page0.split('?')[0];
  const views = { overview, cameras, camera: cameraDetail, inbox, speakers, audit, users };
  (views[page] || overview)(main, arg ? decodeURIComponent(arg) : undefined).catch((e) => main.append(h('p', { class: 'err' }, String(e.message || e))));
}
window.addEventListener('hashchange', () => { if (me) shell(); });

function debounce(f, ms) { let id = null; return () => { if (id) return; id = setTimeout(() => { id = null; f(); }, ms); }; }

async function overview(main) {
  const body = h('div', { id: 'overview' });
  main.append(body);
  const draw = async () => {
    const o = (await api('GET', '/api/v1/overview')).data;
    const card = (k, n) => h('div', { class: 'card ' + k, id: 'total-' + k }, h('div', { class: 'n' }, n), h('div', {}, t(k)));
    const cards = h('div', { class: 'cards' }, card('total', o.cameras), card('ok', o.totals.ok), card('degraded', o.totals.degraded), card('offline', o.totals.offline), card('unknown', o.totals.unknown),
      h('a', { href: '#inbox', class: 'card', style: 'text-decoration:none;color:inherit' }, h('div', { class: 'n', id: 'inbox-count' }, o.inbox), h('div', {}, t('inboxCount'))));
    const vrows = o.villages.map((v) => {
      const n = v.ok + v.degraded + v.offline + v.unknown;
      const bar = h('div', { class: 'bar' }, ['ok', 'degraded', 'offline', 'unknown'].map((k) => h('span', { class: k, style: 'width:' + (n ? (100 * v[k] / n) : 0) + '%' })));
      return h('tr', { class: 'click', 'data-village': v.code, onclick: () => { location.hash = 'cameras?village=' + encodeURIComponent(v.code); } },
        h('td', {}, v.name || t('unassigned')), h('td', {}, n), h('td', { class: 'c-ok' }, v.ok), h('td', { class: 'c-degraded' }, v.degraded), h('td', { class: 'c-offline' }, v.offline), h('td', {}, v.unknown), h('td', {}, bar));
    });
    const vt = h('table', { id: 'villages' }, h('tr', {}, [t('village'), t('total'), t('ok'), t('degraded'), t('offline'), t('unknown'), ''].map((x) => h('th', {}, x))), vrows);
    const alarms = o.alarms.length ? h('table', { id: 'alarms' }, h('tr', {}, [t('id'), t('village'), t('verdict'), t('reasons'), t('since')].map((x) => h('th', {}, x))),
      o.alarms.map((a) => h('tr', { class: 'click', 'data-id': a.id, onclick: () => { location.hash = 'camera/' + encodeURIComponent(a.id); } },
        h('td', {}, a.name || a.id), h('td', {}, villageName(a.village)), h('td', {}, verdictBadge(a.verdict)), h('td', { class: 'small' }, (a.reasons || []).join(', ') || a.last_error || ''), h('td', { class: 'small' }, fmtTime(a.since)))))
      : h('p', { class: 'muted', id: 'alarms' }, t('noAlarms'));
    const tr = h('table', { id: 'transitions' }, h('tr', {}, [t('time'), t('id'), t('change')].map((x) => h('th', {}, x))),
      o.transitions.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, e.device_id), h('td', {}, verdictBadge(e.verdict_from), ' → ', verdictBadge(e.verdict_to), (e.reasons && e.reasons.length) ? h('span', { class: 'small' }, ' ' + e.reasons.join(', ')) : null,
        e.verdict_from === e.verdict_to ? h('span', { class: 'small muted' }, ' ' + e.rung_from + ' → ' + e.rung_to) : null))));
    body.replaceChildren(cards, h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, t('byVillage')), vt),
      h('div', {}, h('section', { class: 'panel' }, h('h2', {}, t('alarms'), ' (', o.alarms.length, ')'), alarms), h('section', { class: 'panel' }, h('h2', {}, t('transitions')), tr))));
  };
  await draw();
  const redraw = debounce(() => draw().catch(() => {}), 400);
  let lastState = 0;
  listeners.add((ev) => {
    if (ev.type === 'transition' || ev.type === 'lagged') redraw();
    else if (Date.now() - lastState > 5000) { lastState = Date.now(); redraw(); }
  });
}

function villageSelect(id, value, withAll) {
  return h('select', { id }, withAll ? h('option', { value: '' }, t('all') + ' ' + t('village')) : h('option', { value: '' }, t('chooseVillage')),
    villages.map((v) => h('option', { value: v.code, selected: v.code === value }, v.name)));
}
function gridSelect(id, village, value) {
  const v = villages.find((x) => x.code === village);
  return h('select', { id }, h('option', { value: '' }, t('grid') + ': —'), (v ? v.grids : []).map((g) => h('option', { value: g[0], selected: g[0] === value }, g[1])));
}

async function cameras(main) {
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
  const load = async () => {
    const p = new URLSearchParams({ page, per_page: per });
    if (vsel.value) p.set('village', vsel.value);
    const g = document.getElementById('f-grid');
    if (g && g.value) p.set('grid', g.value);
    if (verdict.value) p.set('verdict', verdict.value);
    if (vendor.value.trim()) p.set('vendor', vendor.value.trim());
    if (q.value.trim()) p.set('q', q.value.trim());
    const r = await api('GET', '/api/v1/cameras?' + p);
    table.replaceChildren(h('table', {}, h('tr', {}, [t('id'), t('name'), t('village'), t('grid'), t('address'), t('vendor'), t('model'), t('verdict'), t('reasons')].map((x) => h('th', {}, x))),
      r.data.map((c) => h('tr', { class: 'click', 'data-id': c.id, onclick: () => { location.hash = 'camera/' + encodeURIComponent(c.id); } },
        h('td', {}, c.id), h('td', {}, c.name || '—'), h('td', {}, villageName(c.village)), h('td', {}, gridName(c.grid)), h('td', {}, c.address || '—'), h('td', {}, c.manufacturer || '—'), h('td', {}, c.model || '—'),
        h('td', {}, verdictBadge(c.health ? c.health.verdict : 'unknown')), h('td', { class: 'small' }, (c.health && c.health.reasons || []).join(', '))))));
    const pages = Math.max(1, Math.ceil(r.total / per));
    pager.replaceChildren(h('button', { class: 'secondary', disabled: page <= 1, onclick: () => { page--; load(); } }, t('prev')), h('span', {}, t('page', page, pages, r.total)), h('button', { class: 'secondary', disabled: page >= pages, onclick: () => { page++; load(); } }, t('next')));
  };
  vsel.addEventListener('change', () => { gsel.replaceChildren(gridSelect('f-grid', vsel.value)); document.getElementById('f-grid').addEventListener('change', () => { page = 1; load(); }); page = 1; load(); });
  for (const e of [verdict]) e.addEventListener('change', () => { page = 1; load(); });
  for (const e of [vendor, q]) e.addEventListener('input', debounce(() => { page = 1; load(); }, 300));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('cameras')), h('div', { class: 'filters' }, vsel, gsel, verdict, vendor, q), table, pager));
  const g0 = document.getElementById('f-grid');
  if (g0) g0.addEventListener('change', () => { page = 1; load(); });
  await load();
  listeners.add(debounce(() => load().catch(() => {}), 2000));
}

async function cameraDetail(main, id) {
  const r = (await api('GET', '/api/v1/cameras/' + encodeURIComponent(id))).data;
  const d = r.device;
  const hl = r.health;
  const inv = d.inventory || {};
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
  const info = kv([[t('id'), d.id], [t('name'), d.name], [t('vendor'), d.manufacturer], [t('model'), d.model], [t('firmware'), d.firmware], [t('serial'), d.serial], [t('mac'), d.mac], [t('address'), d.address],
    [t('village'), villageName(d.village)], [t('grid'), gridName(d.grid)], [t('credsSet'), d.has_credentials ? '✓' : '—'], [t('probeResult'), d.probe_error_kind ? d.probe_error_kind + ': ' + (d.probe_error || '') : (d.inventory_at ? fmtTime(d.inventory_at) : '—')]]);
  const health = hl ? kv([[t('verdict'), verdictBadge(hl.verdict)], [t('reasons'), (hl.reasons || []).join(', ')], [t('since'), fmtTime(hl.verdict_since)], [t('rung'), hl.rung], [t('lastSeen'), fmtTime(hl.last_seen)],
    [t('lastError'), hl.last_error_kind ? hl.last_error_kind + ': ' + (hl.last_error || '') : ''], ['clock offset', hl.clock_offset_ms !== null && hl.clock_offset_ms !== undefined ? hl.clock_offset_ms + ' ms' : ''],
    [t('fps'), hl.last_sample ? hl.last_sample.fps.toFixed(1) : ''], [t('bitrate'), hl.last_sample ? Math.round(hl.last_sample.bitrate_kbps) + ' kbit/s' : ''], [t('codec'), hl.last_sample ? hl.last_sample.codec : '']])
    : h('p', { class: 'muted' }, t('unknown'));
  const profiles = h('table', { id: 'profiles' }, h('tr', {}, [t('name'), t('codec'), t('resolution'), t('fps'), t('bitrate'), t('stream')].map((x) => h('th', {}, x))),
    (inv.profiles || []).map((p) => { const v = (p.profile && p.profile.video) || {}; return h('tr', {}, h('td', {}, p.profile ? p.profile.name : ''), h('td', {}, v.encoding || ''), h('td', {}, v.width ? v.width + '×' + v.height : ''), h('td', {}, v.fps || ''), h('td', {}, v.bitrate_kbps ? v.bitrate_kbps + ' kbit/s' : ''), h('td', { class: 'small' }, p.stream_uri || '')); }));
  const img = h('img', { class: 'snap', id: 'snapshot', alt: t('snapshot') });
  const snapErr = h('p', { class: 'small muted' });
  fetch('/api/v1/cameras/' + encodeURIComponent(id) + '/snapshot', { credentials: 'same-origin' }).then(async (s) => {
    if (s.ok && (s.headers.get('content-type') || '').startsWith('image/')) img.src = URL.createObjectURL(await s.blob());
    else { const j = await s.json().catch(() => null); snapErr.textContent = (j && j.error && j.error.message) || String(s.status); }
  }).catch(() => {});
  const ev = (await api('GET', '/api/v1/cameras/' + encodeURIComponent(id) + '/events?limit=50')).data;
  const hist = h('table', { id: 'history' }, h('tr', {}, [t('time'), t('change'), t('rung')].map((x) => h('th', {}, x))),
    ev.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, verdictBadge(e.verdict_from), ' → ', verdictBadge(e.verdict_to), ' ', h('span', { class: 'small' }, (e.reasons || []).join(', '))), h('td', { class: 'small' }, e.rung_from + ' → ' + e.rung_to))));
  const canTech = ROLES.indexOf(me.role) >= 2;
  const probe = canTech ? h('button', { id: 'probe-now', onclick: async () => { try { await api('POST', '/api/v1/cameras/' + encodeURIComponent(id) + '/probe'); toast(t('probed')); } catch (e) { toast(e.message); } } }, t('probe')) : null;
  main.append(h('p', {}, h('a', { href: '#cameras' }, '← ' + t('cameras'))),
    h('div', { class: 'grid2' },
      h('div', {}, h('section', { class: 'panel', id: 'camera-device' }, h('h2', {}, t('device'), ' ', probe), info), h('section', { class: 'panel' }, h('h2', {}, t('profiles')), profiles), h('section', { class: 'panel' }, h('h2', {}, t('history')), hist)),
      h('div', {}, h('section', { class: 'panel' }, h('h2', {}, t('snapshot')), img, snapErr), h('section', { class: 'panel', id: 'camera-health' }, h('h2', {}, t('health')), health))));
  listeners.add((e) => { if (e.id === id && e.type === 'transition') shell(); });
}

async function inbox(main) {
  const r = await api('GET', '/api/v1/inbox');
  const canTech = ROLES.indexOf(me.role) >= 2;
  if (!r.data.length) { main.append(h('section', { class: 'panel' }, h('h2', {}, t('inbox')), h('p', { class: 'muted', id: 'inbox-empty' }, t('noInbox')))); return; }
  const boxes = [];
  const rows = r.data.map((d) => {
    const cb = h('input', { type: 'checkbox', value: d.id, class: 'pick', 'data-id': d.id });
    boxes.push(cb);
    const res = d.probe_error_kind ? h('span', { class: 'err' }, d.probe_error_kind) : d.inventory_at ? '✓ ' + [d.manufacturer, d.model].filter(Boolean).join(' ') : '—';
    return h('tr', { 'data-id': d.id }, h('td', {}, canTech ? cb : ''), h('td', {}, d.id), h('td', { class: 'kind' }, d.kind || '—'), h('td', {}, d.address || '—'), h('td', {}, d.manufacturer || d.name || '—'), h('td', {}, d.model || '—'), h('td', {}, d.mac || '—'), h('td', { class: 'small' }, res), h('td', { class: 'small' }, fmtTime(d.first_seen)));
  });
  const all = h('input', { type: 'checkbox', id: 'pick-all', onchange: () => { for (const b of boxes) b.checked = all.checked; } });
  const vsel = villageSelect('adopt-village', '', false);
  const gspan = h('span', {}, gridSelect('adopt-grid', ''));
  vsel.addEventListener('change', () => gspan.replaceChildren(gridSelect('adopt-grid', vsel.value)));
  const user = h('input', { id: 'adopt-user', placeholder: t('user'), autocomplete: 'off', size: 10 });
  const pw = h('input', { id: 'adopt-password', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 10 });
  const picked = () => boxes.filter((b) => b.checked).map((b) => b.value);
  const adopt = h('button', { id: 'adopt', onclick: async () => {
    const ids = picked(); if (!ids.length) return;
    if (!vsel.value) { toast(t('chooseVillage')); return; }
    const body = { ids, village: vsel.value, grid: document.getElementById('adopt-grid').value || null };
    if (user.value) { body.username = user.value; body.password = pw.value; }
    try { const x = (await api('POST', '/api/v1/inbox/adopt', body)).data; toast(t('adopted', x.adopted.length) + (x.errors.length ? ' · ' + x.errors.map((e) => e.message).join('; ') : '')); shell(); } catch (e) { toast(e.message); }
  } }, t('adopt'));
  const ignore = h('button', { class: 'secondary', id: 'ignore', onclick: async () => {
    const ids = picked(); if (!ids.length) return;
    try { const x = (await api('POST', '/api/v1/inbox/ignore', { ids })).data; toast(t('ignored', x.ignored.length)); shell(); } catch (e) { toast(e.message); }
  } }, t('ignore'));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('inbox'), ' (', r.data.length, ')'),
    canTech ? h('div', { class: 'filters' }, vsel, gspan, h('span', { class: 'small muted' }, t('credsOpt')), user, pw, adopt, ignore) : null,
    h('table', { id: 'inbox-table' }, h('tr', {}, h('th', {}, canTech ? all : ''), [t('id'), t('kind'), t('address'), t('vendor'), t('model'), t('mac'), t('probeResult'), t('since')].map((x) => h('th', {}, x))), rows)));
}

function testSummary(x) {
  if (!x) return h('span', { class: 'muted' }, t('never'));
  const bits = [x.ok ? t('testOk') : t('testFailed'), x.answered ? t('answered') : t('notAnswered'), t('packets', x.packets)];
  if (typeof x.skew_ms === 'number') bits.push(t('skew', x.skew_ms.toFixed(1)));
  return h('span', { class: x.ok ? 'ok-text' : 'err', 'data-ok': String(!!x.ok) },
    bits.join(' · '), x.errors && x.errors.length ? h('br') : null, x.errors && x.errors.length ? h('span', { class: 'small' }, (x.error_kind || '') + ': ' + x.errors[0]) : null,
    h('br'), h('span', { class: 'small muted' }, fmtTime(x.at) + ' · ' + x.by + ' · ' + x.tone_hz + ' Hz / ' + x.seconds + ' s'));
}

async function speakers(main) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const village = q.get('village') || '';
  const r = await api('GET', '/api/v1/speakers' + (village ? '?village=' + encodeURIComponent(village) : ''));
  const canTech = ROLES.indexOf(me.role) >= ROLES.indexOf('technician');
  const vsel = h('select', { id: 'speaker-village', onchange: () => { location.hash = 'speakers' + (vsel.value ? '?village=' + encodeURIComponent(vsel.value) : ''); } },
    h('option', { value: '' }, t('all')), villages.map((v) => h('option', { value: v.code, selected: v.code === village }, v.name)));
  const tone = h('input', { id: 'test-tone', type: 'number', min: 400, max: 3000, step: 10, value: 1000, size: 5 });
  const secs = h('input', { id: 'test-seconds', type: 'number', min: 1, max: 10, value: 2, size: 3 });
  const row = (s) => {
    const result = h('td', { class: 'test-result' }, testSummary(s.last_test));
    const btn = canTech ? h('button', { class: 'secondary test-btn', 'data-id': s.id, disabled: s.kind === 'cloud', onclick: async () => {
      const hz = Number(tone.value), sec = Number(secs.value);
      if (!window.confirm(t('confirmTest', s.name || s.id, hz, sec))) return;
      btn.disabled = true;
      result.replaceChildren(h('span', { class: 'muted' }, t('testing')));
      try {
        const x = (await api('POST', '/api/v1/speakers/' + encodeURIComponent(s.id) + '/test', { tone_hz: hz, seconds: sec })).data;
        result.replaceChildren(testSummary(x));
        toast((x.ok ? t('testOk') : t('testFailed')) + ' · ' + (s.name || s.id));
      } catch (e) {
        result.replaceChildren(h('span', { class: 'err' }, e.code === 'busy' ? t('busy') : e.message));
      } finally { btn.disabled = false; }
    } }, t('testTone')) : null;
    return h('tr', { 'data-id': s.id },
      h('td', {}, s.id), h('td', {}, s.name || '—'), h('td', {}, villageName(s.village), s.grid ? h('span', { class: 'small muted' }, ' / ' + gridName(s.grid)) : null, s.zone ? h('div', { class: 'small muted' }, s.zone) : null),
      h('td', {}, s.kind), h('td', { class: 'small' }, s.address, h('div', { class: 'muted' }, s.codec + (s.has_password ? ' · ' + t('pwSet') : ''))),
      h('td', {}, s.volume === null || s.volume === undefined ? '—' : s.volume), result, canTech ? h('td', {}, btn) : null);
  };
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('speakers'), ' (', r.data.length, ')'),
    h('div', { class: 'filters' }, h('label', { for: 'speaker-village' }, t('village')), vsel,
      canTech ? [h('label', { for: 'test-tone' }, t('tone')), tone, h('label', { for: 'test-seconds' }, t('seconds')), secs] : null),
    r.data.length ? h('table', { id: 'speakers' }, h('tr', {}, [t('id'), t('name'), t('village'), t('kind'), t('address'), t('volume'), t('lastTest')].concat(canTech ? [''] : []).map((x) => h('th', {}, x))), r.data.map(row))
      : h('p', { class: 'muted', id: 'speakers-empty' }, t('noSpeakers'))));
}

async function audit(main) {
  const r = await api('GET', '/api/v1/audit?limit=200');
  const j = (v) => (v === null || v === undefined ? '' : JSON.stringify(v));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('audit')), h('table', { id: 'audit' },
    h('tr', {}, [t('time'), t('actor'), t('source'), t('action'), t('target'), t('before'), t('after'), t('outcome')].map((x) => h('th', {}, x))),
    r.data.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, e.actor), h('td', { class: 'small' }, e.source), h('td', {}, e.action), h('td', {}, e.target || ''), h('td', { class: 'small' }, j(e.before)), h('td', { class: 'small' }, j(e.after)), h('td', {}, e.outcome))))));
}

async function users(main) {
  const r = await api('GET', '/api/v1/users');
  const name = h('input', { id: 'new-user', placeholder: t('user'), size: 10, autocomplete: 'off' });
  const role = h('select', { id: 'new-role' }, ROLES.map((x) => h('option', { value: x }, t(x))));
  const pw = h('input', { id: 'new-password', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 12 });
  const add = h('button', { id: 'add-user', onclick: async () => { try { await api('POST', '/api/v1/users', { name: name.value, role: role.value, password: pw.value }); shell(); } catch (e) { toast(e.message); } } }, t('add'));
  const lv = (await api('GET', '/api/v1/log-level')).data;
  const level = h('input', { id: 'log-level', value: lv.filter || '', size: 24 });
  const apply = h('button', { id: 'set-log-level', disabled: !lv.changeable, onclick: async () => { try { await api('PUT', '/api/v1/log-level', { filter: level.value }); toast('✓'); } catch (e) { toast(e.message); } } }, t('apply'));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('users')), h('table', { id: 'users' }, h('tr', {}, [t('user'), t('role'), t('created'), t('disabled')].map((x) => h('th', {}, x))),
    r.data.map((u) => h('tr', {}, h('td', {}, u.name), h('td', {}, t(u.role)), h('td', { class: 'small' }, fmtTime(u.created_at)), h('td', {}, u.disabled ? '✓' : '')))),
    h('h2', {}, t('addUser')), h('div', { class: 'filters' }, name, role, pw, add)),
  h('section', { class: 'panel' }, h('h2', {}, t('logLevel')), h('div', { class: 'filters' }, level, apply)));
}

(async () => {
  try { await start(); } catch (e) { if (!me) renderLogin(); }
})();
