// The timetable: the week, warnings, schemes, programmes, schedules.
import { targetText, daysText, prioBadge } from './broadcasts.js';
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';

// ---------------------------------------------------------------- timetable

export function isoDay(s, add) {
  const d = new Date(s + 'T00:00:00Z');
  d.setUTCDate(d.getUTCDate() + add);
  return d.toISOString().slice(0, 10);
}

export function jsonEditor(kind, id, value, isNew) {
  const idIn = isNew ? h('input', { class: 'edit-id', placeholder: 'id', size: 20, autocomplete: 'off' }) : null;
  const area = h('textarea', { class: 'json', rows: Math.min(24, JSON.stringify(value, null, 2).split('\n').length + 1), spellcheck: 'false' }, JSON.stringify(value, null, 2));
  const err = h('pre', { class: 'err edit-error' });
  const save = h('button', { class: 'edit-save', onclick: async () => {
    err.textContent = '';
    let v;
    try { v = JSON.parse(area.value); } catch (e) { err.textContent = 'JSON: ' + e.message; return; }
    const key = isNew ? idIn.value.trim() : id;
    if (!key) { err.textContent = 'id'; return; }
    try { const r = (await api('PUT', '/api/v1/' + kind + 's/' + enc(key), v)).data; toast(t('savedV', r.version)); hooks.shell(); } catch (e) { err.textContent = e.message; }
  } }, t('save'));
  return h('div', { class: 'editor', 'data-kind': kind, 'data-id': id || '' }, idIn, area, h('div', { class: 'actions' }, save), err);
}

export async function timetable(main) {
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
  const warns = (wk.warnings || []).length ? h('ul', { id: 'week-warnings' }, wk.warnings.map((w) => h('li', { class: 'small', 'data-kind': w.kind }, h('strong', {}, word('wk_', w.kind)), ' ', w.message, w.count > 1 ? ' (×' + w.count + ')' : '')))
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
            try { await api('DELETE', '/api/v1/' + kind + 's/' + enc(it.id)); toast(t('deleted')); hooks.shell(); } catch (e) { toast(e.message); }
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
      editable ? h('button', { class: 'activate-btn', 'data-id': sc.id, onclick: async () => { try { const r = (await api('PUT', '/api/v1/active-scheme', { scheme: sc.id })).data; toast(t('savedV', r.version)); location.hash = 'timetable'; hooks.shell(); } catch (e) { toast(e.message); } } }, t('activate')) : null));
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

