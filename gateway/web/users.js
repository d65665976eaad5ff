// Users and API tokens, and the log level (admins): add, change role,
// disable/enable, reset password, unlock, delete; issue a token (shown
// once) and revoke tokens; the log level as choices.
import { S, hooks, t, h, api, fmtTime, toast, enc } from './core.js';

const ROLE_LIST = ['viewer', 'operator', 'technician', 'admin'];
const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'];

async function tokensRow(u, cols) {
  const box = h('div', { class: 'tokens', 'data-user': u.name });
  const draw = async () => {
    const list = (await api('GET', '/api/v1/users/' + enc(u.name) + '/tokens')).data;
    const label = h('input', { class: 'token-label', placeholder: t('tokenLabel'), size: 14, maxlength: 64 });
    const shown = h('div', { class: 'token-once' });
    box.replaceChildren(
      list.length ? h('table', { class: 'token-table' }, h('tr', {}, [t('id'), t('tokenLabel'), t('created'), t('lastUsed'), ''].map((x) => h('th', {}, x))),
        list.map((k) => h('tr', { 'data-token': k.id }, h('td', {}, k.id), h('td', {}, k.label), h('td', { class: 'small' }, fmtTime(k.created_at)), h('td', { class: 'small' }, fmtTime(k.last_used_at)),
          h('td', {}, h('button', { class: 'secondary revoke-btn', onclick: async () => {
            if (!window.confirm(t('confirmRevoke', k.label))) return;
            try { await api('DELETE', '/api/v1/users/' + enc(u.name) + '/tokens/' + enc(k.id)); await draw(); } catch (e) { toast(e.message); }
          } }, t('revoke'))))))
        : h('p', { class: 'small muted' }, t('none')),
      h('div', { class: 'filters' }, label, h('button', { class: 'secondary issue-btn', onclick: async () => {
        if (!label.value.trim()) { label.focus(); return; }
        try {
          const r = (await api('POST', '/api/v1/users/' + enc(u.name) + '/tokens', { label: label.value.trim() })).data;
          await draw();
          box.append(h('div', { class: 'token-once' }, t('tokenOnce'), ' ', h('code', { class: 'mono token-value' }, r.token)));
        } catch (e) { toast(e.message); }
      } }, t('issueToken'))), shown);
  };
  await draw();
  return h('tr', { class: 'token-row' }, h('td', { colspan: cols }, h('strong', {}, t('tokens'), ' · ', u.name), box));
}

export async function users(main) {
  const r = await api('GET', '/api/v1/users');
  const patch = async (name, body) => { try { await api('PATCH', '/api/v1/users/' + enc(name), body); toast(t('saved')); hooks.shell(); } catch (e) { toast(e.message); } };
  const name = h('input', { id: 'new-user', placeholder: t('user'), size: 10, autocomplete: 'off' });
  const role = h('select', { id: 'new-role' }, ROLE_LIST.map((x) => h('option', { value: x }, t(x))));
  const pw = h('input', { id: 'new-password', type: 'password', placeholder: t('password'), autocomplete: 'new-password', size: 12 });
  const add = h('button', { id: 'add-user', onclick: async () => { try { await api('POST', '/api/v1/users', { name: name.value, role: role.value, password: pw.value }); hooks.shell(); } catch (e) { toast(e.message); } } }, t('add'));
  const cols = 5;
  const body = h('tbody', {});
  for (const u of r.data) {
    const self = u.name === S.me.user;
    const rsel = h('select', { class: 'role-select', disabled: self, onchange: () => patch(u.name, { role: rsel.value }) }, ROLE_LIST.map((x) => h('option', { value: x, selected: x === u.role }, t(x))));
    const npw = h('input', { class: 'reset-pw', type: 'password', placeholder: t('newPassword'), autocomplete: 'new-password', size: 10 });
    const holder = h('tr', { class: 'token-holder' });
    body.append(h('tr', { 'data-user': u.name, 'data-disabled': String(!!u.disabled) },
      h('td', {}, u.name), h('td', {}, rsel), h('td', { class: 'small' }, fmtTime(u.created_at)), h('td', {}, u.disabled ? t('disabled') : '—'),
      h('td', {}, h('div', { class: 'filters' },
        self ? null : h('button', { class: 'secondary toggle-btn', onclick: () => patch(u.name, { disabled: !u.disabled }) }, u.disabled ? t('enable') : t('disable')),
        npw, h('button', { class: 'secondary resetpw-btn', onclick: () => { if (npw.value) patch(u.name, { password: npw.value }); else npw.focus(); } }, t('resetPw')),
        h('button', { class: 'secondary unlock-btn', onclick: async () => { try { await api('POST', '/api/v1/users/' + enc(u.name) + '/unlock'); toast(t('saved')); } catch (e) { toast(e.message); } } }, t('unlock')),
        h('button', { class: 'secondary tokens-btn', onclick: async () => { if (holder.firstChild) holder.replaceChildren(); else holder.replaceWith(await tokensRow(u, cols)); } }, t('tokens')),
        self ? null : h('button', { class: 'secondary danger-text delete-btn', onclick: async () => {
          if (!window.confirm(t('confirmDeleteUser', u.name))) return;
          try { await api('DELETE', '/api/v1/users/' + enc(u.name)); hooks.shell(); } catch (e) { toast(e.message); }
        } }, t('del'))))), holder);
  }
  const lv = (await api('GET', '/api/v1/log-level')).data;
  // A filter is a level plus per-module directives (`retina::client=error,info`):
  // the choices change the level and keep the directives.
  const cur = String(lv.filter || '');
  const parts = cur.split(',').map((x) => x.trim()).filter(Boolean);
  const extras = parts.filter((x) => x.includes('='));
  const base = parts.find((x) => !x.includes('=')) || '';
  const known = LEVELS.includes(base);
  const level = h('select', { id: 'log-level', disabled: !lv.changeable, title: cur },
    LEVELS.map((x) => h('option', { value: extras.concat([x]).join(','), selected: x === base }, t('lv_' + x))),
    known ? null : h('option', { value: cur, selected: true }, t('lv_custom') + ': ' + cur));
  const apply = h('button', { id: 'set-log-level', disabled: !lv.changeable, onclick: async () => { try { await api('PUT', '/api/v1/log-level', { filter: level.value }); toast(t('saved')); } catch (e) { toast(e.message); } } }, t('apply'));
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('users')), h('table', { id: 'users' }, h('thead', {}, h('tr', {}, [t('user'), t('role'), t('created'), t('disabled'), t('actions')].map((x) => h('th', {}, x)))), body),
    h('h2', {}, t('addUser')), h('div', { class: 'filters' }, name, role, pw, add)),
  h('section', { class: 'panel' }, h('h2', {}, t('logLevel')), h('div', { class: 'filters' }, level, apply)));
}
