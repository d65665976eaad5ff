// Shared by every view: state, translation, DOM building, the API client,
// formatting, and the words for the gateway's codes (reasons, rungs,
// audit actions, error codes). All text goes into the DOM through
// textContent (never innerHTML), the session cookie is HttpOnly, and
// mutating calls send the CSRF token the server gave at login (held in
// memory only).
import { T } from './i18n.js';

export const ROLES = ['viewer', 'operator', 'technician', 'admin'];
/** Session state shared by the views (`me` is the /session answer). */
export const S = { lang: document.documentElement.lang === 'en' ? 'en' : 'zh-CN', me: null, villages: [], es: null };
/** Set by app.js: redraw the current page, show the login form. */
export const hooks = { shell: () => {}, renderLogin: () => {} };
/** SSE subscribers of the current page (cleared on every page change). */
export const listeners = new Set();

// A key missing in the language is a bug: it is logged (the browser suite
// fails on console errors) and shown as the key.
export function t(k, ...a) {
  let s = T[S.lang][k];
  if (s === undefined) { console.error('missing i18n key: ' + S.lang + ' ' + k); s = k; }
  return s.replace(/\{(\d)\}/g, (_, i) => a[i]);
}
/** Whether a key exists (for codes from the server that may be new). */
export const has = (k) => T[S.lang][k] !== undefined;
/** A code from the server in words: `prefix + code` if translated, else the code. */
export const word = (prefix, code) => (code === null || code === undefined || code === '' ? '' : has(prefix + code) ? t(prefix + code) : String(code));

export function h(tag, attrs, ...kids) {
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
/** An SVG element (charts, the map). */
export function svg(tag, attrs, ...kids) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export async function api(method, path, body) {
  const opt = { method, credentials: 'same-origin', headers: {} };
  if (method !== 'GET' && S.me && S.me.csrf) opt.headers['X-CSRF-Token'] = S.me.csrf;
  if (body !== undefined) { opt.headers['Content-Type'] = 'application/json'; opt.body = JSON.stringify(body); }
  const r = await fetch(path, opt);
  if (r.status === 401 && path !== '/api/v1/login') { S.me = null; hooks.renderLogin(); throw new Error(t('e_unauthenticated')); }
  const ct = r.headers.get('content-type') || '';
  const data = ct.includes('json') ? await r.json() : null;
  if (!r.ok) {
    const code = data && data.error && data.error.code;
    const e = new Error(errText(code, (data && data.error && data.error.message) || String(r.status)));
    e.code = code; e.status = r.status; e.raw = data && data.error && data.error.message;
    throw e;
  }
  return { data, total: Number(r.headers.get('x-total-count') || 0) };
}

/** A server error in the user's language: the code's words, then the server's message. */
export function errText(code, message) {
  // Database and internal failures: their text is for the log, not the operator.
  if (code === 'store' || code === 'internal') return t('e_' + code);
  if (code && has('e_' + code)) return t('e_' + code) + (message && S.lang === 'en' ? ': ' + message : message ? '（' + message + '）' : '');
  return message || '';
}

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  if (isNaN(d)) return s;
  try {
    return new Intl.DateTimeFormat(S.lang, { timeZone: (S.me && S.me.timezone) || 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
  } catch (_) { return d.toISOString(); }
}
export const verdictBadge = (v) => h('span', { class: 'v ' + (v || 'unknown'), 'data-verdict': v || 'unknown' }, t(v || 'unknown'));
export const villageName = (code) => { const v = S.villages.find((x) => x.code === code); return v ? v.name : (code || t('unassigned')); };
export const gridName = (code) => { for (const v of S.villages) for (const g of v.grids.concat(v.micro_grids || [])) if (g[0] === code) return g[1]; return code || '—'; };
export function toast(msg) { const e = h('div', { class: 'toast', role: 'status' }, msg); document.body.append(e); setTimeout(() => e.remove(), 3500); }
export function debounce(f, ms) { let id = null; return () => { if (id) return; id = setTimeout(() => { id = null; f(); }, ms); }; }
export const enc = encodeURIComponent;
export const canOper = () => ROLES.indexOf(S.me.role) >= ROLES.indexOf('operator');
export const canTech = () => ROLES.indexOf(S.me.role) >= ROLES.indexOf('technician');
export const kv = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v === null || v === undefined || v === '' ? '—' : v)]));

/** A health reason (`credentials-rejected`, `inventory-failed: timeout`…) in words. */
export function reasonText(r) {
  const s = String(r);
  const i = s.indexOf(':');
  if (i > 0) return word('r_', s.slice(0, i).trim()) + '：' + word('k_', s.slice(i + 1).trim());
  return word('r_', s);
}
export const reasonsText = (list) => (list || []).map(reasonText).join(S.lang === 'en' ? ', ' : '、');
export const rungText = (r) => word('rung_', r);
export const actionText = (a) => word('a_', a);
export const kindText = (k) => word('k_', k);

export function villageSelect(id, value, withAll) {
  return h('select', { id }, withAll ? h('option', { value: '' }, t('all') + ' ' + t('village')) : h('option', { value: '' }, t('chooseVillage')),
    S.villages.map((v) => h('option', { value: v.code, selected: v.code === value }, v.name)));
}
export function gridSelect(id, village, value) {
  const v = S.villages.find((x) => x.code === village);
  // Each grid, then its micro-grids (微网格) indented under it.
  const opts = (v ? v.grids : []).flatMap((g) => [h('option', { value: g[0], selected: g[0] === value }, g[1])]
    .concat((v.micro_grids || []).filter((m) => m[2] === g[0]).map((m) => h('option', { value: m[0], selected: m[0] === value, class: 'micro' }, '\u3000' + m[1]))));
  return h('select', { id }, h('option', { value: '' }, t('grid') + ': —'), opts);
}
