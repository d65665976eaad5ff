// The GB/T 28181 uplink (国标级联): per upper platform its registration
// state, refusal, last keepalive, missed keepalives, clock offset (校时)
// and subscriptions; the catalog size; the live video relays; and each
// camera's 20-digit id, editable by technicians (PUT, audited). Without
// [gb28181] the page says so and still lists the ids.
import { t, h, api, fmtTime, toast, enc, canTech, kv, word, villageName, gridName } from './core.js';

const ID_RE = /^\d{10}13[12]\d{7}$/;

function platformTable(ps) {
  const secs = (n) => (n === null || n === undefined ? '—' : t('gbSecs', n > 0 ? '+' + n : n));
  const subs = (p) => [p.catalog_subscribed ? t('gbSubCatalog') : null, p.alarm_subscribed ? t('gbSubAlarm') : null].filter(Boolean).join('、') || '—';
  return h('table', { id: 'gb-platforms' },
    h('tr', {}, [t('gbPlatform'), t('gbServerId'), t('address'), t('state'), t('reason'), t('gbRegistered'), t('gbKeepalive'), t('gbMissed'), t('clockOffset'), t('gbSubs')].map((x) => h('th', {}, x))),
    ps.map((p) => h('tr', { 'data-platform': p.name, 'data-state': p.state },
      h('td', {}, h('strong', {}, p.name)), h('td', { class: 'mono small' }, p.server_id), h('td', { class: 'mono small' }, p.address),
      h('td', {}, h('span', { class: 'gb-state gb-' + p.state }, word('gbs_', p.state))),
      h('td', { class: 'small' }, p.reason ? t('gbRefused', p.reason) : '—'),
      h('td', { class: 'small' }, fmtTime(p.registered_at)), h('td', { class: 'small' }, fmtTime(p.last_keepalive_at)),
      h('td', {}, p.missed_keepalives), h('td', {}, secs(p.clock_offset_secs)), h('td', { class: 'small' }, subs(p)))));
}

function relayTable(rs) {
  if (!rs.length) return h('p', { class: 'muted', id: 'gb-relays' }, t('gbNoRelays'));
  return h('table', { id: 'gb-relays' },
    h('tr', {}, [t('gbChannel'), t('gbTransport'), t('gbDest'), t('gbPackets'), t('gbBytes'), t('since')].map((x) => h('th', {}, x))),
    rs.map((r) => h('tr', { 'data-channel': r.channel_id },
      h('td', { class: 'mono' }, r.channel_id), h('td', {}, word('gbt_', r.transport)), h('td', { class: 'mono small' }, r.destination),
      h('td', {}, r.packets), h('td', {}, r.bytes), h('td', { class: 'small' }, fmtTime(new Date(r.started_unix * 1000).toISOString())))));
}

function idEditor(cams, redraw) {
  if (!cams.length) return h('p', { class: 'muted', id: 'gb-cameras' }, t('none'));
  const tech = canTech();
  return h('table', { id: 'gb-cameras' },
    h('tr', {}, [t('id'), t('name'), t('village'), t('grid'), t('gbId')].map((x) => h('th', {}, x))),
    cams.map((c) => {
      const input = h('input', { class: 'gb-id-in mono', value: c.gb_id || '', placeholder: t('gbIdPending'), size: 22, maxlength: 20, inputmode: 'numeric', title: t('gbIdHint'), disabled: !tech });
      const save = tech ? h('button', { class: 'secondary gb-id-save', onclick: async () => {
        const v = input.value.trim();
        if (!ID_RE.test(v)) { toast(t('gbIdBad')); input.focus(); return; }
        try { await api('PUT', '/api/v1/gb28181/cameras/' + enc(c.id), { gb_id: v }); toast(t('saved')); await redraw(); } catch (e) { toast(e.message); }
      } }, t('save')) : null;
      return h('tr', { 'data-id': c.id },
        h('td', {}, h('a', { href: '#camera/' + enc(c.id) }, c.id)), h('td', {}, c.name || '—'),
        h('td', {}, villageName(c.village)), h('td', {}, c.grid ? gridName(c.grid) : '—'), h('td', {}, input, ' ', save));
    }));
}

export async function gb28181(main) {
  const body = h('div', { id: 'gb28181' });
  main.append(body);
  const draw = async () => {
    let st = null;
    let off = null;
    try { st = (await api('GET', '/api/v1/gb28181')).data; } catch (e) { if (e.code === 'unavailable') off = t('gbOff'); else throw e; }
    const cams = (await api('GET', '/api/v1/gb28181/cameras')).data;
    const parts = [];
    if (off) parts.push(h('section', { class: 'panel' }, h('h2', {}, t('gbTitle')), h('p', { class: 'muted', id: 'gb-off' }, off)));
    else {
      parts.push(h('section', { class: 'panel' }, h('h2', {}, t('gbTitle')),
        kv([[t('gbOurId'), h('span', { class: 'mono', id: 'gb-our-id' }, st.id)], [t('gbListen'), h('span', { class: 'mono' }, st.listen)],
          [t('gbCatalog'), h('span', { id: 'gb-catalog-size' }, st.catalog_size)], [t('gbCatalogCams'), st.cameras],
          [t('gbRelays'), h('span', { id: 'gb-relay-count' }, st.relays.length, ' · ', t('gbStarted', st.relays_started || 0, st.relays_failed || 0))]]),
        platformTable(st.platforms)));
      parts.push(h('section', { class: 'panel' }, h('h2', {}, t('gbRelays')), relayTable(st.relays)));
    }
    parts.push(h('section', { class: 'panel' }, h('h2', {}, t('gbCameraIds')), h('p', { class: 'small muted' }, t('gbIdHint')), idEditor(cams, draw)));
    body.replaceChildren(...parts);
  };
  await draw();
}
