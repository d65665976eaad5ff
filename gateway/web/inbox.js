// The discovery inbox: adopt or ignore discovered devices.
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';
import { testVerdict } from './cameras.js';

export async function inbox(main) {
  const r = await api('GET', '/api/v1/inbox');
  const tech = canTech();
  if (!r.data.length) { main.append(h('section', { class: 'panel' }, h('h2', {}, t('inbox')), h('p', { class: 'muted', id: 'inbox-empty' }, t('noInbox')))); return; }
  const boxes = [];
  const rows = r.data.map((d) => {
    const cb = h('input', { type: 'checkbox', value: d.id, class: 'pick', 'data-id': d.id });
    boxes.push(cb);
    const res = d.probe_error_kind ? h('span', { class: 'err', title: d.probe_error || '' }, kindText(d.probe_error_kind)) : d.inventory_at ? '✓ ' + [d.manufacturer, d.model].filter(Boolean).join(' ') : '—';
    return h('tr', { 'data-id': d.id }, h('td', {}, tech ? cb : ''), h('td', {}, d.id), h('td', { class: 'kind' }, word('dk_', d.kind) || '—'), h('td', {}, d.address || '—'), h('td', {}, d.manufacturer || d.name || '—'), h('td', {}, d.model || '—'), h('td', {}, d.mac || '—'), h('td', { class: 'small' }, res, tech && d.kind !== 'speaker' ? testCell(d.id) : null), h('td', { class: 'small' }, fmtTime(d.first_seen)));
  });
  const all = h('input', { type: 'checkbox', id: 'pick-all', onchange: () => { for (const b of boxes) b.checked = all.checked; } });
  const vsel = villageSelect('adopt-village', '', false);
  const gspan = h('span', {}, gridSelect('adopt-grid', ''));
  vsel.addEventListener('change', () => gspan.replaceChildren(gridSelect('adopt-grid', vsel.value)));
  // 测试登录 with the login typed above (or the device's own / its group's).
  function testCell(id) {
    const out = h('div', { class: 'inbox-test' });
    const b = h('button', { class: 'secondary test-login-btn', 'data-id': id, onclick: async () => {
      b.disabled = true; out.className = 'muted'; out.textContent = t('testingLogin');
      const body = user.value && pw.value ? { username: user.value, password: pw.value } : undefined;
      try { out.className = ''; out.replaceChildren(testVerdict((await api('POST', '/api/v1/devices/' + enc(id) + '/credentials/test', body)).data)); } catch (e) { out.className = 'err'; out.textContent = e.status === 404 && e.code !== 'not_found' ? t('notYet', 'credentials/test') : e.message; } finally { b.disabled = false; }
    } }, t('testLogin'));
    return h('div', {}, b, out);
  }
  const user = h('input', { id: 'adopt-user', placeholder: t('user'), autocomplete: 'off', size: 10 });
  const pw = h('input', { id: 'adopt-password', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 10 });
  const picked = () => boxes.filter((b) => b.checked).map((b) => b.value);
  const adopt = h('button', { id: 'adopt', onclick: async () => {
    const ids = picked(); if (!ids.length) return;
    if (!vsel.value) { toast(t('chooseVillage')); return; }
    const body = { ids, village: vsel.value, grid: document.getElementById('adopt-grid').value || null };
    if (user.value) { body.username = user.value; body.password = pw.value; }
    try { const x = (await api('POST', '/api/v1/inbox/adopt', body)).data; toast(t('adopted', x.adopted.length) + (x.errors.length ? ' · ' + x.errors.map((e) => errText(e.code, e.message)).join('; ') : '')); hooks.shell(); } catch (e) { toast(e.message); }
  } }, t('adopt'));
  const ignore = h('button', { class: 'secondary', id: 'ignore', onclick: async () => {
    const ids = picked(); if (!ids.length) return;
    try { const x = (await api('POST', '/api/v1/inbox/ignore', { ids })).data; toast(t('ignored', x.ignored.length)); hooks.shell(); } catch (e) { toast(e.message); }
  } }, t('ignore'));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('inbox'), ' (', r.data.length, ')'),
    tech ? h('div', { class: 'filters' }, vsel, gspan, h('span', { class: 'small muted' }, t('credsOpt')), user, pw, adopt, ignore) : null,
    h('table', { id: 'inbox-table' }, h('tr', {}, h('th', {}, tech ? all : ''), [t('id'), t('kind'), t('address'), t('vendor'), t('model'), t('mac'), t('probeResult'), t('since')].map((x) => h('th', {}, x))), rows)));
}

