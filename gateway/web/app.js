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
    broadcasts: '广播', timetable: '时间表', alerts: '预警', emergency: '紧急广播', stopAll: '全部停止', confirmStopAll: '确定停止所有正在播放和排队的广播吗？', stoppedN: '已停止 {0} 个广播',
    liveBroadcasts: '正在播放', noLive: '当前没有广播', recent: '最近广播', noBroadcasts: '暂无广播记录', announce: '发布广播', text: '广播内容（文字转语音）', orAsset: '或播放素材',
    useText: '— 使用文字 —', targets: '广播范围', allHorns: '全镇（全部喇叭）', otherTargets: '其他范围', priority: '优先级', repeat: '重复次数', startBroadcast: '开始广播',
    startedN: '广播已开始：{0} 个喇叭', bTitle: '标题', origin: '发起', horns: '喇叭', state: '状态', byState: '各状态', stop: '停止', back: '返回', skewMs: '起播偏差',
    reason: '原因', speaker: '喇叭', t0: '开始时间', ended: '结束时间', interruptedBy: '被 {0} 打断', broadcastDetail: '广播详情', events: '过程',
    st_queued: '排队中', st_playing: '播放中', st_started: '已开播', st_done: '完成', st_interrupted: '被打断', st_failed: '失败', st_cancelled: '已取消', st_dropped: '未播放',
    p_background: '背景', p_routine: '常规', p_township: '乡镇', p_superior: '上级', p_emergency: '紧急',
    emTitle: '紧急广播', emWarn: '紧急广播会打断所有正在播放的广播，忽略静音时段，并以强制音量播放。', dismiss: '取消', continue: '下一步',
    emTypeCount: '请核对以上范围，并输入喇叭数量 {0} 以确认。', emStart: '确认开始紧急广播', emNoHorns: '所选范围内没有喇叭', emStarted: '紧急广播已开始：{0} 个喇叭', needText: '请输入广播内容', needTargets: '请选择广播范围', unknownTargets: '不存在的范围',
    assets: '音频素材', upload: '上传', uploadedN: '已上传：{0}', duration: '时长', format: '格式', noAssets: '暂无素材',
    week: '一周节目', preview: '预览', thisWeek: '本周', prevWeek: '上一周', nextWeek: '下一周', workday: '工作日', restday: '休息日', hornsN: '{0} 个喇叭', quietN: '{0} 个在静音时段', nothing: '无节目',
    days_daily: '每天', days_workdays: '工作日', 'days_rest-days': '休息日', wd1: '周一', wd2: '周二', wd3: '周三', wd4: '周四', wd5: '周五', wd6: '周六', wd7: '周日',
    schemes: '作息方案', activeScheme: '当前方案', activate: '启用', programmes: '节目', schedules: '播出计划', edit: '编辑', del: '删除', confirmDelete: '确定删除「{0}」吗？', newItem: '新建',
    savedV: '已保存（版本 {0}）', deleted: '已删除', managedInFile: '时间表由文件 {0} 管理，请在文件中修改后重新加载。', version: '版本', timezone: '时区', warnings: '提示', noWarnings: '没有提示',
    items: '内容', when: '播出时间', storeSource: '网关数据库', fileSource: '文件', identifier: '标识', msgType: '类型', capStatus: '状态', headline: '标题', decision: '处理结果', via: '渠道',
    dec_play: '已播发', dec_cancel: '已停止广播', dec_ignore: '已忽略', dec_reject: '已拒绝', noAlerts: '尚未收到预警', broadcast: '广播', received: '接收时间', tpl_zone: '区域', tpl_group: '分组', cancel: '取消',
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
    broadcasts: 'Broadcasts', timetable: 'Timetable', alerts: 'Alerts', emergency: 'EMERGENCY', stopAll: 'Stop all', confirmStopAll: 'Stop every broadcast playing or queued?', stoppedN: 'Stopped {0} broadcasts',
    liveBroadcasts: 'Live broadcasts', noLive: 'Nothing is playing', recent: 'Recent broadcasts', noBroadcasts: 'No broadcasts yet', announce: 'Announce', text: 'Text (spoken by TTS)', orAsset: 'or play an asset',
    useText: '— use the text —', targets: 'Targets', allHorns: 'Everywhere (all horns)', otherTargets: 'Other targets', priority: 'Priority', repeat: 'Repeats', startBroadcast: 'Start broadcast',
    startedN: 'Broadcast started on {0} horns', bTitle: 'Title', origin: 'Origin', horns: 'Horns', state: 'State', byState: 'By state', stop: 'Stop', back: 'Back', skewMs: 'Start skew',
    reason: 'Reason', speaker: 'Speaker', t0: 'Start', ended: 'Ended', interruptedBy: 'interrupted by {0}', broadcastDetail: 'Broadcast', events: 'History',
    st_queued: 'queued', st_playing: 'playing', st_started: 'started', st_done: 'done', st_interrupted: 'interrupted', st_failed: 'failed', st_cancelled: 'cancelled', st_dropped: 'dropped',
    p_background: 'background', p_routine: 'routine', p_township: 'township', p_superior: 'superior', p_emergency: 'emergency',
    emTitle: 'Emergency broadcast', emWarn: 'An emergency broadcast interrupts everything, ignores quiet hours and plays at the forced volume.', dismiss: 'Cancel', continue: 'Continue',
    emTypeCount: 'Check the targets above and type the number of horns ({0}) to confirm.', emStart: 'Start the emergency broadcast', emNoHorns: 'No horn in these targets', emStarted: 'Emergency broadcast started on {0} horns', needText: 'Enter the text', needTargets: 'Choose the targets', unknownTargets: 'Unknown targets',
    assets: 'Audio assets', upload: 'Upload', uploadedN: 'Uploaded: {0}', duration: 'Duration', format: 'Format', noAssets: 'No assets yet',
    week: 'Week', preview: 'Preview', thisWeek: 'This week', prevWeek: 'Previous week', nextWeek: 'Next week', workday: 'working day', restday: 'rest day', hornsN: '{0} horns', quietN: '{0} in quiet hours', nothing: 'nothing',
    days_daily: 'daily', days_workdays: 'working days', 'days_rest-days': 'rest days', wd1: 'Mon', wd2: 'Tue', wd3: 'Wed', wd4: 'Thu', wd5: 'Fri', wd6: 'Sat', wd7: 'Sun',
    schemes: 'Schemes', activeScheme: 'active', activate: 'Activate', programmes: 'Programmes', schedules: 'Schedules', edit: 'Edit', del: 'Delete', confirmDelete: 'Delete “{0}”?', newItem: 'New',
    savedV: 'Saved (version {0})', deleted: 'Deleted', managedInFile: 'The timetable is managed in the file {0}; edit it there and reload.', version: 'Version', timezone: 'Time zone', warnings: 'Warnings', noWarnings: 'No warnings',
    items: 'Items', when: 'When', storeSource: 'gateway database', fileSource: 'file', identifier: 'Identifier', msgType: 'Type', capStatus: 'Status', headline: 'Headline', decision: 'Decision', via: 'Via',
    dec_play: 'played', dec_cancel: 'stopped the broadcast', dec_ignore: 'ignored', dec_reject: 'rejected', noAlerts: 'No alerts received', broadcast: 'Broadcast', received: 'Received', tpl_zone: 'zone', tpl_group: 'group', cancel: 'Cancel',
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
    } catch (e) { out.textContent = e.code === 'locked' || e.code === 'rate_limited' || e.code === 'busy' ? t('locked') : t('badLogin'); }
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
  const pages = [['overview', 'overview'], ['cameras', 'cameras'], ['inbox', 'inbox'], ['speakers', 'speakers'], ['broadcasts', 'broadcasts'], ['timetable', 'timetable'], ['alerts', 'alerts']];
  if (me.role === 'admin') pages.push(['audit', 'audit'], ['users', 'users']);
  const route = (location.hash.slice(1) || 'overview').split('/')[0].split('?')[0];
  const nav = h('nav', {}, pages.map(([p, k]) => h('a', { href: '#' + p, id: 'nav-' + p, class: route === p || (route === 'camera' && p === 'cameras') || (route === 'broadcast' && p === 'broadcasts') ? 'active' : null }, t(k))));
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
  const views = { overview, cameras, camera: cameraDetail, inbox, speakers, broadcasts, broadcast: broadcastDetail, timetable, alerts, audit, users };
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
    // Refused logins are counted: one row per user, address, outcome and minute.
    r.data.map((e) => h('tr', {}, h('td', { class: 'small' }, fmtTime(e.at), e.last_at && e.last_at !== e.at ? ' – ' + fmtTime(e.last_at) : ''), h('td', {}, e.actor), h('td', { class: 'small' }, e.source), h('td', {}, e.action), h('td', {}, e.target || ''), h('td', { class: 'small' }, j(e.before)), h('td', { class: 'small' }, j(e.after)),
      h('td', {}, e.outcome, e.count > 1 ? h('span', { class: 'audit-count' }, ' ×' + e.count) : ''))))));
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

// ---------------------------------------------------------------- broadcasts (issue 7)
// Live broadcasts and per-horn states come from the same SSE stream as
// health: {"type":"broadcast"}, {"type":"horn"} and {"type":"alert"} events.

const canOper = () => ROLES.indexOf(me.role) >= ROLES.indexOf('operator');
const enc = encodeURIComponent;
const stateBadge = (s) => h('span', { class: 'st st-' + s, 'data-state': s }, t('st_' + s));
const prioBadge = (p) => h('span', { class: 'prio prio-' + p, 'data-priority': p }, t('p_' + p));
const PRIORITIES = ['background', 'routine', 'township', 'superior'];
const HORN_STATES = ['queued', 'started', 'done', 'interrupted', 'failed', 'cancelled', 'dropped'];

function daysText(d) {
  if (Array.isArray(d)) return d.map((x) => t('wd' + (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].indexOf(x) + 1))).join(lang === 'en' ? ', ' : '、');
  return t('days_' + (d || 'daily'));
}

function targetText(list) {
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
  }).join(lang === 'en' ? ', ' : '、');
}

// Why a horn ended as it did: the runtime's detail (why / by / errors).
function hornReason(d) {
  if (!d) return '';
  if (d.why) return String(d.why);
  if (d.by) return t('interruptedBy', d.by);
  if (Array.isArray(d.errors) && d.errors.length) return d.errors.join('; ');
  return '';
}
// Uploaded assets only: TTS renders are cached in the same store as `tts`.
const uploads = (list) => (list || []).filter((a) => a.name !== 'tts' && a.name !== 'tts.wav');
const skewOf = (d) => (d && typeof d.skew_ms === 'number' ? d.skew_ms : null);
const FINAL = new Set(['done', 'interrupted', 'failed', 'cancelled', 'dropped']);
// The start skew of a horn: measured when it started, kept in its history.
const eventSkew = (events, speaker) => { let v = null; for (const e of events || []) if (e.speaker === speaker && skewOf(e.detail) !== null) v = skewOf(e.detail); return v; };

function countsText(c) {
  return HORN_STATES.filter((k) => c && c[k]).map((k) => h('span', { class: 'cnt st-' + k, 'data-count': k }, t('st_' + k) + ' ' + c[k]));
}

// Targets: everywhere, villages, or other targets written out.
function targetPicker(idp) {
  const all = h('input', { type: 'checkbox', id: idp + '-all', checked: true });
  const boxes = villages.map((v) => h('input', { type: 'checkbox', value: 'village:' + v.code, 'data-village': v.code }));
  const extra = h('input', { id: idp + '-extra', placeholder: 'grid:… zone:… group:… speaker:…', size: 26, autocomplete: 'off' });
  const sync = () => { for (const b of boxes) b.disabled = all.checked; extra.disabled = all.checked; };
  all.addEventListener('change', sync);
  sync();
  const el = h('div', { class: 'targets', id: idp + '-targets' },
    h('label', { class: 'chk' }, all, ' ', t('allHorns')),
    boxes.map((b, i) => h('label', { class: 'chk' }, b, ' ', villages[i].name)),
    h('label', { class: 'chk' }, t('otherTargets'), ' ', extra));
  const value = () => (all.checked ? ['all'] : boxes.filter((b) => b.checked).map((b) => b.value).concat(extra.value.split(/[\s,，、]+/).filter(Boolean)));
  return { el, value };
}

function emergencyDialog() {
  const text = h('textarea', { id: 'em-text', rows: 3, maxlength: 2000 });
  const picker = targetPicker('em');
  const err = h('p', { class: 'err', id: 'em-error' });
  const body = h('div', {});
  const overlay = h('div', { class: 'modal', id: 'emergency-dialog', role: 'dialog', 'aria-modal': 'true' },
    h('div', { class: 'modal-box' }, h('h2', { class: 'danger-text' }, '⚠ ', t('emTitle')), h('p', { class: 'small' }, t('emWarn')), body, err));
  const close = () => overlay.remove();
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

async function uploadAsset(file) {
  const r = await fetch('/api/v1/audio-assets?name=' + enc(file.name), { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF-Token': me.csrf || '', 'Content-Type': 'application/octet-stream' }, body: file });
  const data = await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error && data.error.message) || String(r.status));
  return data;
}

async function broadcasts(main) {
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
    const now = all.filter(fresh);
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
    } else if (ev.type === 'lagged') shell();
  });
  // Finished broadcasts leave the live panel after two minutes.
  const tick = setInterval(() => { if (!document.body.contains(liveBox)) clearInterval(tick); else draw(); }, 30000);
}

async function announcePanel() {
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

async function assetsPanel() {
  let list = [];
  let err = '';
  try { list = uploads((await api('GET', '/api/v1/audio-assets')).data); } catch (e) { err = e.message; }
  const file = h('input', { type: 'file', id: 'asset-file', accept: 'audio/*,.mp3,.wav,.ogg,.flac' });
  const out = h('p', { class: 'small', id: 'asset-result' }, err);
  const up = h('button', { id: 'asset-upload', disabled: !!err, onclick: async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    up.disabled = true; out.className = 'small'; out.textContent = '…';
    try { const a = await uploadAsset(f); toast(t('uploadedN', a.name)); shell(); } catch (e) { out.className = 'err'; out.textContent = e.message; up.disabled = false; }
  } }, t('upload'));
  return h('section', { class: 'panel', id: 'assets' }, h('h2', {}, t('assets')),
    canOper() ? h('div', { class: 'filters' }, file, up) : null, out,
    list.length ? h('table', { id: 'asset-table' }, h('tr', {}, [t('name'), t('format'), t('duration'), 'sha256'].map((x) => h('th', {}, x))),
      list.map((a) => h('tr', {}, h('td', {}, a.name), h('td', {}, a.format), h('td', {}, (a.duration_ms / 1000).toFixed(1) + ' s'), h('td', { class: 'small mono' }, a.sha256.slice(0, 16) + '…'))))
      : h('p', { class: 'muted' }, t('noAssets')));
}

async function broadcastDetail(main, id) {
  const [r, spk] = await Promise.all([api('GET', '/api/v1/broadcasts/' + enc(id)), api('GET', '/api/v1/speakers').catch(() => ({ data: [] }))]);
  const names = new Map((spk.data || []).map((s) => [s.id, s.name]));
  const b = r.data.broadcast;
  const running = b.state === 'queued' || b.state === 'playing';
  const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));
  main.append(h('p', {}, h('a', { href: '#broadcasts' }, '← ' + t('broadcasts'))),
    h('section', { class: 'panel', id: 'broadcast-detail', 'data-state': b.state }, h('h2', {}, t('broadcastDetail'), ' ', b.title, ' ',
      running && canOper() ? h('button', { class: 'secondary', id: 'cancel-broadcast', onclick: async () => { try { await api('POST', '/api/v1/broadcasts/' + enc(id) + '/cancel'); } catch (e) { toast(e.message); } } }, t('stop')) : null),
    kv([[t('id'), b.id], [t('state'), stateBadge(b.state)], [t('priority'), prioBadge(b.priority)], [t('origin'), b.origin], [t('targets'), targetText(b.targets)], [t('horns'), b.horns],
      [t('t0'), fmtTime(b.t0)], [t('created'), fmtTime(b.created_at)], [t('ended'), fmtTime(b.ended_at)], [t('byState'), h('span', { class: 'counts' }, countsText(b.counts))]])),
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
  const again = debounce(() => { if (location.hash === '#broadcast/' + enc(id)) shell(); }, 500);
  listeners.add((ev) => { if ((ev.type === 'horn' && ev.broadcast === id) || (ev.type === 'broadcast' && ev.broadcast && ev.broadcast.id === id)) again(); });
}

// ---------------------------------------------------------------- timetable

function isoDay(s, add) {
  const d = new Date(s + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + add);
  return d.toISOString().slice(0, 10);
}

function jsonEditor(kind, id, value, isNew) {
  const idIn = isNew ? h('input', { class: 'edit-id', placeholder: 'id', size: 20, autocomplete: 'off' }) : null;
  const area = h('textarea', { class: 'json', rows: Math.min(24, JSON.stringify(value, null, 2).split('\n').length + 1), spellcheck: 'false' }, JSON.stringify(value, null, 2));
  const err = h('pre', { class: 'err edit-error' });
  const save = h('button', { class: 'edit-save', onclick: async () => {
    err.textContent = '';
    let v;
    try { v = JSON.parse(area.value); } catch (e) { err.textContent = 'JSON: ' + e.message; return; }
    const key = isNew ? idIn.value.trim() : id;
    if (!key) { err.textContent = 'id'; return; }
    try { const r = (await api('PUT', '/api/v1/' + kind + 's/' + enc(key), v)).data; toast(t('savedV', r.version)); shell(); } catch (e) { err.textContent = e.message; }
  } }, t('save'));
  return h('div', { class: 'editor', 'data-kind': kind, 'data-id': id || '' }, idIn, area, h('div', { class: 'actions' }, save), err);
}

async function timetable(main) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const wq = new URLSearchParams();
  for (const k of ['from', 'scheme']) if (q.get(k)) wq.set(k, q.get(k));
  const [docR, wkR] = await Promise.all([api('GET', '/api/v1/timetable'), api('GET', '/api/v1/timetable/week' + (String(wq) ? '?' + wq : ''))]);
  const doc = docR.data, wk = wkR.data, parts = doc.parts || {};
  const editable = doc.editable && canOper();
  const progName = (id) => { const p = (parts.programme || []).find((x) => x.id === id); return p && p.name ? p.name : id; };
  const head = h('div', { class: 'small muted', id: 'timetable-source' },
    t('source'), ': ', doc.source === 'file' ? t('fileSource') + ' ' + doc.file : t('storeSource'),
    doc.version ? ' · ' + t('version') + ' ' + doc.version : '', ' · ', t('timezone'), ': ', doc.timezone);
  const go = (f) => { const x = new URLSearchParams(); if (f) x.set('from', f); if (q.get('scheme')) x.set('scheme', q.get('scheme')); location.hash = 'timetable' + (String(x) ? '?' + x : ''); };
  const nav = h('div', { class: 'filters' },
    h('button', { class: 'secondary', id: 'week-prev', onclick: () => go(isoDay(wk.from, -7)) }, '← ', t('prevWeek')),
    h('button', { class: 'secondary', id: 'week-this', onclick: () => go(null) }, t('thisWeek')),
    h('button', { class: 'secondary', id: 'week-next', onclick: () => go(isoDay(wk.from, 7)) }, t('nextWeek'), ' →'),
    h('strong', {}, wk.from + ' – ' + isoDay(wk.from, 6)), wk.scheme ? h('span', { class: 'small', id: 'week-scheme' }, (wk.scheme === doc.active_scheme ? t('activeScheme') : t('preview')) + ': ' + wk.scheme) : null,
    h('span', { class: 'small muted' }, '(' + wk.timezone + ')'));
  const week = h('div', { class: 'week', id: 'week' }, wk.days.map((d) => h('div', { class: 'day' + (d.workday ? '' : ' rest'), 'data-date': d.date },
    h('div', { class: 'dhead' }, h('strong', {}, t('wd' + d.weekday)), ' ', d.date.slice(5), h('div', { class: 'small' }, d.workday ? t('workday') : t('restday'), d.note ? ' · ' + d.note : '')),
    d.entries.length ? d.entries.map((e) => h('div', { class: 'entry prio-' + e.priority, 'data-schedule': e.schedule, 'data-programme': e.programme },
      h('div', {}, h('strong', { class: 'etime' }, e.time), ' ', h('span', { class: 'ename' }, e.programme_name || e.programme)),
      h('div', { class: 'small' }, targetText(e.targets)),
      h('div', { class: 'small' }, h('span', { class: 'ehorns' }, t('hornsN', e.horns)), e.quiet ? h('span', { class: 'quiet' }, ' · 🔇 ' + t('quietN', e.quiet)) : null)))
      : h('div', { class: 'small muted' }, t('nothing')))));
  const warns = (wk.warnings || []).length ? h('ul', { id: 'week-warnings' }, wk.warnings.map((w) => h('li', { class: 'small', 'data-kind': w.kind }, h('strong', {}, w.kind), ' ', w.message, w.count > 1 ? ' (×' + w.count + ')' : '')))
    : h('p', { class: 'small muted' }, t('noWarnings'));
  const note = doc.source === 'file' ? h('p', { class: 'small muted', id: 'managed-in-file' }, t('managedInFile', doc.file)) : null;

  // Editable lists: a row per entry, the JSON editor under it on demand.
  const list = (kind, items, cols, cells, template) => {
    const body = h('tbody', {});
    for (const it of items) {
      const row = h('tr', { 'data-id': it.id }, cells(it).map((c) => h('td', {}, c)));
      if (editable) {
        const holder = h('tr', { class: 'edit-row' });
        row.append(h('td', { class: 'nowrap' },
          h('button', { class: 'secondary edit-btn', onclick: () => { if (holder.firstChild) holder.replaceChildren(); else holder.replaceChildren(h('td', { colspan: cols.length + 1 }, jsonEditor(kind, it.id, it, false))); } }, t('edit')), ' ',
          h('button', { class: 'secondary del-btn', onclick: async () => {
            if (!window.confirm(t('confirmDelete', it.name || it.id))) return;
            try { await api('DELETE', '/api/v1/' + kind + 's/' + enc(it.id)); toast(t('deleted')); shell(); } catch (e) { toast(e.message); }
          } }, t('del'))));
        body.append(row, holder);
      } else body.append(row);
    }
    const newHolder = h('div', {});
    return h('div', { id: kind + '-list' },
      h('table', {}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)), editable ? h('th', {}) : null)), body),
      editable ? h('div', { class: 'filters' }, h('button', { class: 'secondary new-btn', 'data-kind': kind, onclick: () => newHolder.replaceChildren(jsonEditor(kind, '', template, true)) }, '+ ', t('newItem'))) : null, newHolder);
  };
  const schemes = parts.scheme || [];
  const schemeState = (sc) => (sc.id === doc.active_scheme ? h('span', { class: 'st st-done', id: 'active-scheme' }, t('activeScheme'))
    : h('span', { class: 'nowrap' },
      h('button', { class: 'secondary preview-btn', 'data-id': sc.id, onclick: () => { location.hash = 'timetable?' + new URLSearchParams({ from: wk.from, scheme: sc.id }); } }, t('preview')), ' ',
      editable ? h('button', { class: 'activate-btn', 'data-id': sc.id, onclick: async () => { try { const r = (await api('PUT', '/api/v1/active-scheme', { scheme: sc.id })).data; toast(t('savedV', r.version)); location.hash = 'timetable'; shell(); } catch (e) { toast(e.message); } } }, t('activate')) : null));
  const schemeList = list('scheme', schemes, [t('id'), t('name'), t('state')], (sc) => [sc.id, sc.name || '—', schemeState(sc)], { name: '' });
  const programmes = list('programme', parts.programme || [], [t('id'), t('name'), t('priority'), t('items'), t('repeat')],
    (p) => [p.id, p.name || '—', prioBadge(p.priority || 'routine'), (p.items || []).map((i) => (i.tts ? '“' + i.tts.slice(0, 30) + (i.tts.length > 30 ? '…' : '') + '”' : 'sha256:' + String(i.asset).slice(7, 15) + '…')).join(' + '), p.repeat || 1],
    { name: '', items: [{ tts: '' }], priority: 'routine' });
  const schedules = list('schedule', parts.schedule || [], [t('id'), t('programmes'), t('when'), t('targets'), t('schemes')],
    (s) => [h('span', { class: s.enabled === false ? 'muted' : '' }, s.id), progName(s.programme), s.rrule ? s.rrule : (s.at || []).join(', ') + ' · ' + daysText(s.days), targetText(s.targets), s.scheme || '—'],
    { programme: '', targets: ['all'], at: ['07:30'], days: 'workdays' });
  main.append(h('section', { class: 'panel', id: 'timetable-week' }, h('h2', {}, t('week')), head, note, nav, week),
    h('section', { class: 'panel' }, h('h2', {}, t('warnings')), warns),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel' }, h('h2', {}, t('schemes')), schemeList),
      h('section', { class: 'panel' }, h('h2', {}, t('programmes')), programmes)),
    h('section', { class: 'panel' }, h('h2', {}, t('schedules')), schedules));
}

// ---------------------------------------------------------------- alerts

async function alerts(main) {
  const box = h('div', { id: 'alerts' });
  const draw = async () => {
    const r = (await api('GET', '/api/v1/alerts?limit=200')).data;
    box.replaceChildren(r.length ? h('table', { id: 'alert-table' },
      h('tr', {}, [t('received'), t('identifier'), t('msgType'), t('capStatus'), t('headline'), t('decision'), t('reason'), t('via'), t('broadcast')].map((x) => h('th', {}, x))),
      r.map((a) => h('tr', { 'data-identifier': a.identifier, 'data-decision': a.decision },
        h('td', { class: 'small' }, fmtTime(a.received_at)), h('td', { class: 'small mono' }, a.identifier), h('td', {}, a.msg_type), h('td', {}, a.status), h('td', {}, a.headline || '—'),
        h('td', {}, h('span', { class: 'dec dec-' + a.decision }, t('dec_' + a.decision))), h('td', { class: 'small' }, a.reason || ''), h('td', { class: 'small' }, a.via),
        h('td', {}, a.broadcast_id ? h('a', { href: '#broadcast/' + enc(a.broadcast_id) }, a.broadcast_id.slice(0, 8)) : '—'))))
      : h('p', { class: 'muted' }, t('noAlerts')));
  };
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('alerts')), box));
  await draw();
  const again = debounce(() => draw().catch(() => {}), 300);
  listeners.add((ev) => { if (ev.type === 'alert' || ev.type === 'lagged') again(); });
}

(async () => {
  try { await start(); } catch (e) { if (!me) renderLogin(); }
})();
