// Early warnings (CAP) received and what they caused.
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';

// ---------------------------------------------------------------- alerts

export async function alerts(main) {
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

