// Trends, drawn as plain SVG from downsampled history: one camera's fps,
// bitrate, RTP loss, clock offset and availability over 24 h or 7 days;
// each village's availability over 30 days; broadcast outcomes per week.
import { t, h, api, enc, svg, villageName, fmtTime } from './core.js';

const CW = 460, CH = 120, PAD = 28;

/** A line chart of `points` ({t, v}) with min/max labels; null values break the line. */
export function lineChart(id, title, points, unit, fixedMax) {
  const vals = points.map((p) => p.v).filter((v) => typeof v === 'number');
  const box = svg('svg', { viewBox: `0 0 ${CW} ${CH}`, class: 'chart', id, 'data-points': vals.length });
  box.append(svg('rect', { x: 0, y: 0, width: CW, height: CH, fill: '#fafbfc' }));
  if (!vals.length) {
    box.append(svg('text', { x: CW / 2, y: CH / 2, 'text-anchor': 'middle', fill: '#888', 'font-size': 13 }, t('noData')));
    return h('figure', { class: 'chart-fig' }, h('figcaption', {}, title), box);
  }
  const lo = Math.min(0, ...vals), hi = fixedMax ?? Math.max(0, ...vals, lo + 1e-9);
  const t0 = new Date(points[0].t).getTime(), t1 = new Date(points[points.length - 1].t).getTime() || t0 + 1;
  const X = (ts) => PAD + (CW - PAD - 6) * (t1 > t0 ? (new Date(ts).getTime() - t0) / (t1 - t0) : 0.5);
  const Y = (v) => CH - 16 - (CH - 28) * ((v - lo) / (hi - lo || 1));
  let d = '', pen = false;
  for (const p of points) {
    if (typeof p.v !== 'number') { pen = false; continue; }
    d += (pen ? 'L' : 'M') + X(p.t).toFixed(1) + ' ' + Y(p.v).toFixed(1);
    pen = true;
  }
  box.append(svg('line', { x1: PAD, y1: CH - 16, x2: CW - 6, y2: CH - 16, stroke: '#ccd' }),
    svg('path', { d, fill: 'none', stroke: '#0b5cad', 'stroke-width': 2 }),
    // Few points: each one as a dot too (one bucket draws no line).
    vals.length < 40 ? points.filter((p) => typeof p.v === 'number').map((p) => svg('circle', { cx: X(p.t).toFixed(1), cy: Y(p.v).toFixed(1), r: 3, fill: '#0b5cad' })) : null,
    svg('text', { x: 2, y: 14, 'font-size': 11, fill: '#555' }, fmt(hi) + unit),
    svg('text', { x: 2, y: CH - 18, 'font-size': 11, fill: '#555' }, fmt(lo) + unit),
    svg('text', { x: PAD, y: CH - 3, 'font-size': 10, fill: '#777' }, fmtTime(points[0].t)),
    svg('text', { x: CW - 6, y: CH - 3, 'font-size': 10, fill: '#777', 'text-anchor': 'end' }, fmtTime(points[points.length - 1].t)));
  return h('figure', { class: 'chart-fig' }, h('figcaption', {}, title), box);
}
const fmt = (v) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10).toString();

const STATE_COLOURS = { done: '#1b7f3b', interrupted: '#b76e00', failed: '#b3261e', cancelled: '#8a8f96', dropped: '#555', playing: '#0b5cad', queued: '#bbb' };

function weeklyChart(rows) {
  const weeks = [...new Set(rows.map((r) => r.week))].sort();
  const box = svg('svg', { viewBox: `0 0 ${CW} ${CH + 30}`, class: 'chart', id: 'chart-bcast' });
  if (!weeks.length) { box.append(svg('text', { x: CW / 2, y: CH / 2, 'text-anchor': 'middle', fill: '#888', 'font-size': 13 }, t('noData'))); return box; }
  const tot = (w) => rows.filter((r) => r.week === w).reduce((a, r) => a + r.count, 0);
  const max = Math.max(...weeks.map(tot), 1), bw = (CW - PAD) / weeks.length;
  weeks.forEach((w, i) => {
    let y = CH;
    for (const r of rows.filter((x) => x.week === w)) {
      const hh = (CH - 10) * r.count / max;
      y -= hh;
      box.append(svg('rect', { x: PAD + i * bw + 2, y, width: bw - 4, height: hh, fill: STATE_COLOURS[r.state] || '#999', 'data-state': r.state }, svg('title', {}, w + ' · ' + t('st_' + r.state) + ' ' + r.count)));
    }
    box.append(svg('text', { x: PAD + i * bw + bw / 2, y: CH + 14, 'font-size': 10, 'text-anchor': 'middle', fill: '#555' }, w.slice(5)));
  });
  box.append(svg('text', { x: 2, y: 12, 'font-size': 11, fill: '#555' }, String(max)));
  const legend = [...new Set(rows.map((r) => r.state))].map((s) => h('span', { class: 'cnt st-' + s }, t('st_' + s)));
  return h('div', {}, box, h('div', { class: 'small' }, legend));
}

function villageChart(rows) {
  const vs = [...new Set(rows.map((r) => r.village || ''))];
  if (!vs.length) return h('p', { class: 'muted' }, t('noData'));
  return h('table', { id: 'village-avail' }, vs.map((v) => {
    const days = rows.filter((r) => (r.village || '') === v);
    const avg = days.reduce((a, r) => a + r.availability, 0) / days.length;
    const spark = svg('svg', { viewBox: '0 0 300 24', class: 'spark' }, days.map((r, i) => svg('rect', {
      x: i * 10, y: 24 - 22 * r.availability, width: 8, height: Math.max(1, 22 * r.availability), fill: r.availability > 0.98 ? '#1b7f3b' : r.availability > 0.9 ? '#b76e00' : '#b3261e' }, svg('title', {}, r.day + ' · ' + (100 * r.availability).toFixed(1) + '%'))));
    return h('tr', { 'data-village': v }, h('td', {}, villageName(v || null)), h('td', {}, (100 * avg).toFixed(1) + '%'), h('td', {}, spark));
  }));
}

export async function trends(main) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const range = q.get('range') === '7d' ? '7d' : '24h';
  const cams = (await api('GET', '/api/v1/cameras')).data;
  const cam = q.get('camera') || (cams[0] && cams[0].id) || '';
  const go = (c, r) => { location.hash = 'trends?' + new URLSearchParams({ camera: c, range: r }); };
  const sel = h('select', { id: 'trend-camera', onchange: () => go(sel.value, range) }, cams.map((c) => h('option', { value: c.id, selected: c.id === cam }, (c.name ? c.name + ' · ' : '') + c.id)));
  const rb = (r, k) => h('button', { class: r === range ? '' : 'secondary', id: 'range-' + r, onclick: () => go(cam, r) }, t(k));
  const charts = h('div', { class: 'charts', id: 'camera-charts' });
  if (cam) {
    const d = (await api('GET', '/api/v1/cameras/' + enc(cam) + '/trends?range=' + range)).data;
    const s = (f) => d.points.map((p) => ({ t: p.t, v: p[f] }));
    charts.append(lineChart('chart-fps', t('fps'), s('fps'), ''), lineChart('chart-bitrate', t('bitrate'), s('bitrate_kbps'), ' kbit/s'),
      lineChart('chart-loss', t('loss'), s('loss_pct'), '%'), lineChart('chart-offset', t('clockOffset'), s('clock_offset_ms'), ' ms'),
      lineChart('chart-avail', t('availability'), d.points.map((p) => ({ t: p.t, v: 100 * p.availability })), '%', 100));
  } else charts.append(h('p', { class: 'muted' }, t('noData')));
  const [va, bw] = await Promise.all([api('GET', '/api/v1/trends/villages?days=30'), api('GET', '/api/v1/trends/broadcasts?weeks=12')]);
  main.append(h('section', { class: 'panel', id: 'trends-camera' }, h('h2', {}, t('perCamera')), h('div', { class: 'filters' }, sel, rb('24h', 'h24'), rb('7d', 'd7'),
    cam ? h('a', { href: '#camera/' + enc(cam), class: 'small' }, t('detail')) : null), charts),
  h('div', { class: 'grid2' },
    h('section', { class: 'panel', id: 'trends-villages' }, h('h2', {}, t('villageAvail')), villageChart(va.data)),
    h('section', { class: 'panel', id: 'trends-broadcasts' }, h('h2', {}, t('bcastWeekly')), weeklyChart(bw.data))));
}
