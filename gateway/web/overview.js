// The overview: totals, villages, alarms (acknowledge), recent changes.
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';
import { alarmTable, muteToggle } from './alarms.js';

/** A gateway alarm of the overview's `gateway_alarms` in words. */
function gatewayAlarmText(a) {
  if (a.alarm === 'local_limit') return t('gaLocalLimit', a.errno, a.count, fmtTime(a.since));
  if (a.alarm === 'disk_low') return a.level === 'critical' ? t('gaDiskCritical') : t('gaDiskLow');
  return a.alarm;
}

export async function overview(main) {
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
    const acks = (await api('GET', '/api/v1/alarm-acks').catch(() => ({ data: [] }))).data || [];
    const alarms = alarmTable(o.alarms, acks, () => draw().catch(() => {}));
    // The gateway's own alarms (data volume, its own limits) above the cameras'.
    const gw = (o.gateway_alarms || []).map((a) => h('div', { class: 'gateway-alarm', 'data-alarm': a.alarm, role: 'alert' }, '⚠ ', gatewayAlarmText(a)));
    // Only changes of verdict: a rung step within the same verdict (正常 → 正常) is left out.
    const changes = o.transitions.filter((e) => e.verdict_from !== e.verdict_to);
    const tr = changes.length ? h('table', { id: 'transitions' }, h('tr', {}, [t('time'), t('id'), t('change')].map((x) => h('th', {}, x))),
      changes.map((e) => h('tr', { class: 'click', onclick: () => { location.hash = 'camera/' + enc(e.device_id); } }, h('td', { class: 'small' }, fmtTime(e.at)), h('td', {}, e.device_id), h('td', {}, verdictBadge(e.verdict_from), ' → ', verdictBadge(e.verdict_to), (e.reasons && e.reasons.length) ? h('span', { class: 'small' }, ' ' + reasonsText(e.reasons)) : null))))
      : h('p', { class: 'muted', id: 'transitions' }, '—');
    body.replaceChildren(cards,
      h('section', { class: 'panel', id: 'alarm-panel' }, h('h2', {}, t('alarms'), ' (', o.alarms.length + gw.length, ') ', muteToggle()), ...gw, alarms),
      h('div', { class: 'grid2' },
        h('section', { class: 'panel' }, h('h2', {}, t('byVillage')), vt),
        h('section', { class: 'panel' }, h('h2', {}, t('transitions')), tr)));
  };
  await draw();
  // Not while an operator is typing an acknowledgement note.
  const typing = () => [...document.querySelectorAll('.ack-note-in')].some((i) => i.value || i === document.activeElement);
  const redraw = debounce(() => { if (!typing()) draw().catch(() => {}); }, 400);
  let lastState = 0;
  listeners.add((ev) => {
    if (ev.type === 'transition' || ev.type === 'lagged') redraw();
    else if (Date.now() - lastState > 5000) { lastState = Date.now(); redraw(); }
  });
}

