// Alarms an operator acts on: the list (camera, where, since when, why in
// words, acknowledged by whom with what note) and the cue (a sound and a
// banner) for a camera going offline, a camera event that needs a look,
// and a failed emergency broadcast. Each live source is one function in
// SOURCES: it turns an SSE event into a cue (or null).
import { t, h, api, fmtTime, verdictBadge, villageName, gridName, toast, reasonsText, word, enc, canOper } from './core.js';

const ALARM_EVENT_KINDS = new Set(['tamper', 'video-loss', 'digital-input']);

/** SSE event → text of a cue, or null. One function per source. */
export const SOURCES = [
  (ev) => (ev.type === 'transition' && ev.to === 'offline' && ev.from !== 'offline' ? t('newAlarm', ev.id + ' · ' + villageName(ev.village) + ' · ' + t('offline')) : null),
  (ev) => (ev.type === 'broadcast' && ev.broadcast && ev.broadcast.priority === 'emergency' && ev.broadcast.state === 'failed' ? t('emFailed', ev.broadcast.title || ev.broadcast.id) : null),
  (ev) => {
    // Camera events (tamper, video loss, digital input); motion is counted, not alarmed.
    if (ev.type !== 'camera_event' && ev.type !== 'camera-event' && ev.type !== 'event') return null;
    const kind = ev.kind || (ev.event && ev.event.kind);
    const active = ev.state === undefined ? ev.active !== false : ev.state === true || ev.state === 'active' || ev.state === 'on';
    if (!ALARM_EVENT_KINDS.has(kind) || !active) return null;
    return t('newAlarm', (ev.id || ev.camera || '') + ' · ' + word('ev_', kind));
  },
];

const muted = () => localStorage.getItem('tgw_mute') === '1';
let audio = null;
function beep() {
  if (muted()) return;
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator(), g = audio.createGain();
    o.frequency.value = 880; g.gain.value = 0.15;
    o.connect(g).connect(audio.destination);
    o.start(); o.stop(audio.currentTime + 0.35);
  } catch (_) { /* no audio before a user gesture: the banner still shows */ }
}

/** Called with every live event: sound and banner for the ones that need a person. */
export function alarmCue(ev) {
  for (const src of SOURCES) {
    const text = src(ev);
    if (!text) continue;
    beep();
    let b = document.getElementById('alarm-banner');
    if (!b) {
      b = h('div', { id: 'alarm-banner', class: 'alarm-banner', role: 'alert', onclick: () => b.remove() });
      document.body.append(b);
    }
    b.append(h('div', { class: 'alarm-line' }, '⚠ ', text, ' · ', fmtTime(new Date().toISOString())));
    while (b.childNodes.length > 5) b.firstChild.remove();
  }
}

export const muteToggle = () => h('label', { class: 'chk small' },
  h('input', { type: 'checkbox', id: 'mute-cue', checked: muted(), onchange: (e) => localStorage.setItem('tgw_mute', e.target.checked ? '1' : '0') }), ' ', t('muteCue'));

/** The alarm table: alarms as /overview lists them, with their acknowledgements. */
export function alarmTable(alarms, acks, redraw) {
  if (!alarms.length) return h('p', { class: 'muted', id: 'alarms' }, t('noAlarms'));
  const ackOf = (a) => acks.find((x) => x.device_id === a.id && x.since === a.since);
  return h('table', { id: 'alarms' },
    h('tr', {}, [t('cameras'), t('location'), t('village'), t('verdict'), t('reasons'), t('since'), t('ack')].map((x) => h('th', {}, x))),
    alarms.map((a) => {
      const done = ackOf(a);
      const open = () => { location.hash = 'camera/' + enc(a.id); };
      const cell = h('td', { class: 'ack-cell' });
      if (done) cell.append(h('span', { class: 'ok-text small acked', title: done.note }, '✓ ', t('ackedBy', done.by, fmtTime(done.at))), h('div', { class: 'small ack-note' }, done.note));
      else if (canOper()) {
        const note = h('input', { class: 'ack-note-in', placeholder: t('ackNote'), size: 14, maxlength: 500, onclick: (e) => e.stopPropagation() });
        const btn = h('button', { class: 'secondary ack-btn', onclick: async (e) => {
          e.stopPropagation();
          if (!note.value.trim()) { toast(t('noNote')); note.focus(); return; }
          btn.disabled = true;
          try { await api('POST', '/api/v1/alarms/' + enc(a.id) + '/ack', { since: a.since, note: note.value.trim() }); toast(t('acked')); redraw(); } catch (err) { toast(err.message); btn.disabled = false; }
        } }, t('ack'));
        cell.append(note, ' ', btn);
      } else cell.append(h('span', { class: 'muted small' }, t('unacked')));
      return h('tr', { class: 'click' + (done ? ' acked-row' : ''), 'data-id': a.id, 'data-acked': done ? 'true' : 'false', onclick: open },
        h('td', {}, h('strong', {}, a.id), a.name ? h('div', { class: 'small muted' }, a.name) : null),
        h('td', { class: 'small' }, a.grid ? gridName(a.grid) : '—', a.address ? h('div', { class: 'muted' }, a.address) : null),
        h('td', {}, villageName(a.village)), h('td', {}, verdictBadge(a.verdict)),
        h('td', { class: 'small' }, reasonsText(a.reasons) || (a.verdict === 'offline' ? t('r_offline') : '') || word('k_', a.last_error)),
        h('td', { class: 'small' }, fmtTime(a.since)), cell);
    }));
}

