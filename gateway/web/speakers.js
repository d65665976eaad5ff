// Loudspeakers: the inventory and the test tone.
import { S, hooks, listeners, t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, debounce, enc, canOper, canTech, kv, reasonText, reasonsText, rungText, actionText, kindText, word, errText, villageSelect, gridSelect, svg } from './core.js';

export function testSummary(x) {
  if (!x) return h('span', { class: 'muted' }, t('never'));
  const answered = x.answered === 'unknown' ? t('answeredUnknown') : x.answered === true || x.answered === 'yes' ? t('answered') : t('notAnswered');
  // `result`: ok | unknown (played, the horn cannot confirm) | failed: KIND.
  const result = x.result || (x.ok ? 'ok' : 'failed');
  const unconfirmed = result === 'unknown';
  const status = x.ok ? t('testOk') : unconfirmed ? t('testUnconfirmed') : x.error_kind === 'unreachable' || result.endsWith('unreachable') ? t('unreachableHorn') : t('testFailed');
  const bits = [status, answered, t('packets', x.packets)];
  if (typeof x.skew_ms === 'number') bits.push(t('skew', x.skew_ms.toFixed(1)));
  return h('span', { class: x.ok ? 'ok-text' : unconfirmed ? 'warn' : 'err', 'data-ok': String(!!x.ok), 'data-result': result },
    bits.join(' · '), x.errors && x.errors.length ? h('br') : null, x.errors && x.errors.length ? h('span', { class: 'small' }, kindText(x.error_kind) + ': ' + x.errors[0]) : null,
    h('br'), h('span', { class: 'small muted' }, fmtTime(x.at) + ' · ' + x.by + ' · ' + x.tone_hz + ' Hz / ' + x.seconds + ' s'));
}

export async function speakers(main) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const village = q.get('village') || '';
  const r = await api('GET', '/api/v1/speakers' + (village ? '?village=' + encodeURIComponent(village) : ''));
  const tech = canTech();
  const vsel = h('select', { id: 'speaker-village', onchange: () => { location.hash = 'speakers' + (vsel.value ? '?village=' + encodeURIComponent(vsel.value) : ''); } },
    h('option', { value: '' }, t('all')), S.villages.map((v) => h('option', { value: v.code, selected: v.code === village }, v.name)));
  const tone = h('input', { id: 'test-tone', type: 'number', min: 400, max: 3000, step: 10, value: 1000, size: 5 });
  const secs = h('input', { id: 'test-seconds', type: 'number', min: 1, max: 10, value: 2, size: 3 });
  const row = (s) => {
    const result = h('td', { class: 'test-result' }, testSummary(s.last_test));
    const btn = tech ? h('button', { class: 'secondary test-btn', 'data-id': s.id, disabled: s.kind === 'cloud', onclick: async () => {
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
      h('td', {}, s.volume === null || s.volume === undefined ? '—' : s.volume), result, tech ? h('td', {}, btn) : null);
  };
  main.append(h('section', { class: 'panel' }, h('h2', {}, t('speakers'), ' (', r.data.length, ')'),
    h('div', { class: 'filters' }, h('label', { for: 'speaker-village' }, t('village')), vsel,
      tech ? [h('label', { for: 'test-tone' }, t('tone')), tone, h('label', { for: 'test-seconds' }, t('seconds')), secs] : null),
    r.data.length ? h('table', { id: 'speakers' }, h('tr', {}, [t('id'), t('name'), t('village'), t('kind'), t('address'), t('volume'), t('lastTest')].concat(tech ? [''] : []).map((x) => h('th', {}, x))), r.data.map(row))
      : h('p', { class: 'muted', id: 'speakers-empty' }, t('noSpeakers'))));
}

