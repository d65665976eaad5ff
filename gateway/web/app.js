// Township Gateway dashboard: native ES modules, no build step. This
// module logs in, keeps the live (SSE) connection, draws the header and
// routes `#page/arg` to one view module per page.
import { S, hooks, listeners, t, h, api, toast } from './core.js';
import { overview } from './overview.js';
import { cameras, cameraDetail } from './cameras.js';
import { inbox } from './inbox.js';
import { speakers } from './speakers.js';
import { broadcasts, broadcastDetail } from './broadcasts.js';
import { timetable } from './timetable.js';
import { alerts } from './alerts.js';
import { audit } from './audit.js';
import { users } from './users.js';
import { places } from './places.js';
import { trends } from './trends.js';
import { alarmCue } from './alarms.js';
import { paging } from './paging.js';
import { gb28181 } from './gb28181.js';

const VIEWS = { overview, cameras, camera: cameraDetail, inbox, places, trends, speakers, broadcasts, broadcast: broadcastDetail, timetable, alerts, audit, users, paging, gb28181 };

function setLang(l) {
  S.lang = l;
  document.documentElement.lang = l;
  document.cookie = 'tgw_lang=' + (l === 'en' ? 'en' : 'zh-CN') + '; Path=/; SameSite=Strict; Max-Age=31536000';
  if (S.me) shell(); else renderLogin();
}

function renderLogin(msg) {
  if (S.es) { S.es.close(); S.es = null; }
  const user = h('input', { id: 'login-user', autocomplete: 'username', required: true });
  const pw = h('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const out = h('p', { class: 'err', id: 'login-error' }, msg || '');
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/api/v1/login', { user: user.value, password: pw.value });
      S.me = r.data;
      await start();
    } catch (e) { out.textContent = e.code === 'locked' || e.code === 'rate_limited' || e.code === 'busy' ? t('locked') : t('badLogin'); }
  } },
    h('h1', {}, t('title')),
    h('label', { for: 'login-user' }, t('user')), user,
    h('label', { for: 'login-password' }, t('password')), pw,
    h('button', { type: 'submit', id: 'login-submit' }, t('login')), out,
    h('p', { class: 'small' }, h('a', { href: '#', id: 'lang', onclick: (e) => { e.preventDefault(); setLang(S.lang === 'en' ? 'zh-CN' : 'en'); } }, t('lang'))));
  document.getElementById('app').replaceChildren(form);
  document.title = t('title');
}

async function start() {
  const s = await api('GET', '/api/v1/session');
  S.me = s.data;
  S.villages = (await api('GET', '/api/v1/villages')).data;
  connectLive();
  shell();
}

// Every SSE event goes to the page's listeners and to the alarm cue.
// Named events other than `health` (sources added later) are passed on
// with their name as `type` when the data has none.
function connectLive() {
  if (S.es) S.es.close();
  S.es = new EventSource('/api/v1/events');
  S.es.addEventListener('hello', () => { const d = document.getElementById('live-dot'); if (d) d.classList.add('on'); });
  const deliver = (name) => (ev) => {
    let d;
    try { d = JSON.parse(ev.data); } catch (_) { return; }
    if (d && typeof d === 'object' && !d.type) d.type = name;
    alarmCue(d);
    for (const f of listeners) f(d);
  };
  for (const name of ['health', 'camera_event', 'camera-event']) S.es.addEventListener(name, deliver(name));
  S.es.addEventListener('lagged', () => { for (const f of listeners) f({ type: 'lagged' }); });
  S.es.onerror = () => { const d = document.getElementById('live-dot'); if (d) d.classList.remove('on'); };
}

function shell() {
  const pages = ['overview', 'cameras', 'inbox', 'places', 'trends', 'speakers', 'broadcasts', 'timetable', 'alerts', 'gb28181'];
  if (S.me.role === 'admin') pages.push('audit', 'users');
  const route = (location.hash.slice(1) || 'overview').split('/')[0].split('?')[0];
  const active = (p) => route === p || (route === 'camera' && p === 'cameras') || ((route === 'broadcast' || route === 'paging') && p === 'broadcasts');
  const nav = h('nav', {}, pages.map((p) => h('a', { href: '#' + p, id: 'nav-' + p, class: active(p) ? 'active' : null }, t(p))));
  const header = h('header', {},
    h('h1', {}, (S.me.township || '') + ' · ' + t('title')), nav,
    h('div', { class: 'me' },
      h('span', {}, h('span', { class: 'live' + (S.es && S.es.readyState === 1 ? ' on' : ''), id: 'live-dot' }), t('live')),
      h('span', {}, S.me.user + ' (' + t(S.me.role) + ')'),
      h('button', { id: 'lang', onclick: () => setLang(S.lang === 'en' ? 'zh-CN' : 'en') }, t('lang')),
      h('button', { id: 'logout', onclick: async () => { try { await api('POST', '/api/v1/logout'); } catch (_) { /* gone anyway */ } S.me = null; renderLogin(); } }, t('logout'))));
  const main = h('main', { id: 'main' });
  document.getElementById('app').replaceChildren(header, main);
  document.title = t('title');
  listeners.clear();
  const [page0, arg] = location.hash.slice(1).split('/');
  const page = page0.split('?')[0];
  (VIEWS[page] || overview)(main, arg ? decodeURIComponent(arg) : undefined).catch((e) => main.append(h('p', { class: 'err' }, String(e.message || e))));
}

hooks.shell = shell;
hooks.renderLogin = renderLogin;
hooks.toast = toast;
window.addEventListener('hashchange', () => { if (S.me) shell(); });

(async () => {
  try { await start(); } catch (e) { if (!S.me) renderLogin(); }
})();
