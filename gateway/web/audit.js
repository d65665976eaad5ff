// The audit log (admins).
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';

// What aired (an emergency, a live page), downloadable from its entry
// once recorded; otherwise its state in words.
function recordingLink(r) {
  if (!r) return '';
  if (r.state !== 'done') return h('span', { class: 'small audit-recording', 'data-state': r.state }, ' ', t(r.state === 'failed' ? 'recFailed' : 'recRecording'));
  return h('a', { class: 'audit-recording', href: r.href, download: r.id + '.wav', 'data-recording': r.id, title: t('recDownload') }, ' ▶ ', t('recAired', (r.duration_ms / 1000).toFixed(1)));
}

export async function audit(main) {
  const r = await api('GET', '/api/v1/audit?limit=200');
  const j = (v) => (v === null || v === undefined ? '' : JSON.stringify(v));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('audit')), h('table', { id: 'audit' },
    h('tr', {}, [t('time'), t('actor'), t('source'), t('action'), t('target'), t('before'), t('after'), t('outcome')].map((x) => h('th', {}, x))),
    // Refused logins are counted: one row per user, address, outcome and minute.
    r.data.map((e) => h('tr', { 'data-action': e.action }, h('td', { class: 'small' }, fmtTime(e.at), e.last_at && e.last_at !== e.at ? ' – ' + fmtTime(e.last_at) : ''), h('td', {}, e.actor), h('td', { class: 'small' }, e.source), h('td', {}, actionText(e.action)), h('td', {}, e.target || '', recordingLink(e.recording)), h('td', { class: 'small' }, j(e.before)), h('td', { class: 'small' }, j(e.after)),
      h('td', {}, word('o_', e.outcome), e.count > 1 ? h('span', { class: 'audit-count' }, ' ×' + e.count) : ''))))));
}

