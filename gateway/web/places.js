// Where things are: the township → village → grid → micro-grid → device tree with
// counts and the worst verdict per node, beside an offline map of the
// township (an SVG of its villages drawn here, no tiles, no network) on
// which devices are placed by dragging them from the list (or by
// longitude/latitude), coloured by verdict; a click opens the device.
import { S, t, h, api, toast, enc, canTech, svg, verdictBadge, villageName, gridName, reasonsText } from './core.js';

// A device's label in the tree and on the map: its own name, or its id when
// it has none or the name is only its model (cameras announce their model as
// their ONVIF name, so every camera of a model would read the same).
export const deviceLabel = (d) => (d.name && d.name !== d.model ? d.name : d.id);

const ORDER = ['ok', 'unknown', 'degraded', 'offline'];
const worst = (vs) => vs.reduce((w, v) => (ORDER.indexOf(v) > ORDER.indexOf(w) ? v : w), 'ok');
const W = 1000, H = 640;

function buildTree(cams, spks) {
  const vOf = (code) => code || '';
  const root = { name: S.me.township || t('township'), kids: new Map(), cams: [], spks: [] };
  const node = (parent, key, name) => { let n = parent.kids.get(key); if (!n) { n = { name, kids: new Map(), cams: [], spks: [] }; parent.kids.set(key, n); } return n; };
  // Grid or micro-grid code → the nodes from its village down to it.
  const chains = new Map();
  for (const v of S.villages) {
    const vn = node(root, v.code, v.name);
    for (const g of v.grids) chains.set(g[0], [vn, node(vn, g[0], g[1])]);
    for (const m of v.micro_grids || []) {
      const up = chains.get(m[2]) || [vn];
      const mn = node(up[up.length - 1], m[0], m[1]);
      mn.micro = true;
      chains.set(m[0], up.concat([mn]));
    }
  }
  const put = (d, list) => {
    let chain = d.grid ? chains.get(d.grid) : null;
    if (!chain) { const vn = node(root, vOf(d.village), villageName(d.village)); chain = d.grid ? [vn, node(vn, d.grid, gridName(d.grid))] : [vn]; }
    for (const n of new Set([root, ...chain])) n[list].push(d);
  };
  for (const c of cams) put(c, 'cams');
  for (const s of spks) put(s, 'spks');
  return root;
}

function treeView(root) {
  const verdictOf = (c) => (c.health ? c.health.verdict : 'unknown');
  const line = (n) => {
    const w = n.cams.length ? worst(n.cams.map(verdictOf)) : null;
    return h('span', { class: 'tnode' }, h('strong', {}, n.name), ' ', n.micro ? h('span', { class: 'small muted tmicro' }, t('micro'), ' ') : null, h('span', { class: 'small muted tcount' }, t('cameras') + ' ' + n.cams.length + ' · ' + t('speakerShort') + ' ' + n.spks.length), ' ', w ? verdictBadge(w) : null);
  };
  const devs = (n, direct) => h('ul', { class: 'tdev' },
    direct.cams.map((c) => h('li', { 'data-id': c.id }, h('a', { href: '#camera/' + enc(c.id) }, deviceLabel(c)), ' ', verdictBadge(verdictOf(c)), c.health && c.health.reasons && c.health.reasons.length ? h('span', { class: 'small' }, ' ' + reasonsText(c.health.reasons)) : null)),
    direct.spks.map((s) => h('li', { 'data-speaker': s.id }, h('span', { class: 'glyph speaker' }), h('a', { href: '#speakers' }, s.name || s.id))));
  const sub = (n, depth) => {
    // Devices directly in this node (not in one of its children).
    const inKids = new Set([...n.kids.values()].flatMap((k) => k.cams.concat(k.spks)));
    const direct = { cams: n.cams.filter((c) => !inKids.has(c)), spks: n.spks.filter((s) => !inKids.has(s)) };
    return h('details', { class: 'tree-node depth-' + depth, open: depth < 1 || undefined, 'data-name': n.name },
      h('summary', {}, line(n)),
      [...n.kids.values()].filter((k) => k.cams.length || k.spks.length || depth < 1).map((k) => sub(k, depth + 1)),
      direct.cams.length || direct.spks.length ? devs(n, direct) : null);
  };
  return h('div', { id: 'place-tree' }, sub(root, 0));
}

// The generated township drawing: one box per village in a grid, its
// grids as strips inside. Returns the SVG and each village's box.
function drawing() {
  const vs = S.villages.length ? S.villages : [{ code: '', name: t('unassigned'), grids: [] }];
  const cols = Math.ceil(Math.sqrt(vs.length * W / H));
  const rows = Math.ceil(vs.length / cols);
  const cw = W / cols, ch = H / rows;
  const el = svg('svg', { id: 'map', viewBox: `0 0 ${W} ${H}`, class: 'map', role: 'img' },
    svg('rect', { x: 0, y: 0, width: W, height: H, fill: '#eef3ea' }));
  vs.forEach((v, i) => {
    const x = (i % cols) * cw, y = Math.floor(i / cols) * ch;
    const g = svg('g', { class: 'map-village', 'data-village': v.code },
      svg('rect', { x: x + 6, y: y + 6, width: cw - 12, height: ch - 12, rx: 10, fill: '#fff', stroke: '#9db4cf', 'stroke-width': 2 }),
      svg('text', { x: x + 18, y: y + 30, 'font-size': 18, fill: '#12263f' }, v.name));
    // Grids, each followed by its micro-grids (indented).
    const lines = (v.grids || []).flatMap((gr) => [[gr[1], 0]].concat((v.micro_grids || []).filter((m) => m[2] === gr[0]).map((m) => [m[1], 1])));
    lines.forEach(([name, indent], j) => g.append(svg('text', { x: x + 18 + indent * 14, y: y + 52 + j * 16, 'font-size': indent ? 11 : 12, fill: '#778', class: indent ? 'map-micro' : 'map-grid' }, name)));
    el.append(g);
  });
  return el;
}

export async function places(main) {
  const [cr, sr, pr] = await Promise.all([api('GET', '/api/v1/cameras'), api('GET', '/api/v1/speakers').catch(() => ({ data: [] })), api('GET', '/api/v1/places')]);
  const cams = cr.data, spks = sr.data || [];
  const placed = new Map(pr.data.map((p) => [p.kind + ':' + p.id, p]));
  const map = drawing();
  const markers = svg('g', { id: 'map-markers' });
  map.append(markers);
  const tech = canTech();
  // Lon/lat only: spread over the drawing by the bounding box of all such points.
  const ll = pr.data.filter((p) => p.x === null && p.lon !== null);
  const box = ll.reduce((b, p) => ({ x0: Math.min(b.x0, p.lon), x1: Math.max(b.x1, p.lon), y0: Math.min(b.y0, p.lat), y1: Math.max(b.y1, p.lat) }), { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity });
  const pos = (p) => {
    if (p.x !== null && p.x !== undefined) return [p.x, p.y];
    const sx = box.x1 - box.x0 || 1, sy = box.y1 - box.y0 || 1;
    return [0.05 + 0.9 * (p.lon - box.x0) / sx, 0.95 - 0.9 * (p.lat - box.y0) / sy];
  };
  const fraction = (ev) => {
    const r = map.getBoundingClientRect();
    const x = (ev.clientX - r.left) / r.width, y = (ev.clientY - r.top) / r.height;
    return x >= 0 && x <= 1 && y >= 0 && y <= 1 ? [Math.round(x * 1e4) / 1e4, Math.round(y * 1e4) / 1e4] : null;
  };
  const save = async (kind, id, xy) => {
    try { await api('PUT', '/api/v1/places/' + enc(id), { kind, x: xy[0], y: xy[1] }); toast(t('placedAt') + ': ' + id); await redraw(); } catch (e) { toast(e.message); }
  };
  const items = cams.map((c) => ({ kind: 'camera', id: c.id, name: deviceLabel(c), verdict: c.health ? c.health.verdict : 'unknown', href: '#camera/' + enc(c.id) }))
    .concat(spks.map((s) => ({ kind: 'speaker', id: s.id, name: s.name || s.id, verdict: null, href: '#speakers' })));
  // Drag with pointer events (mouse, touch, pen): from the list or a marker onto the map.
  const dragging = (start, it, onDrop) => {
    start.addEventListener('pointerdown', (ev) => {
      if (!tech || ev.button !== 0) return;
      ev.preventDefault();
      const ghost = h('div', { class: 'drag-ghost' }, it.name);
      document.body.append(ghost);
      let moved = 0;
      const move = (e) => { moved += Math.abs(e.movementX) + Math.abs(e.movementY); ghost.style.left = e.clientX + 8 + 'px'; ghost.style.top = e.clientY + 8 + 'px'; };
      const up = (e) => {
        document.removeEventListener('pointermove', move); document.removeEventListener('pointerup', up); ghost.remove();
        const xy = fraction(e);
        if (moved < 4) { location.hash = it.href.slice(1); return; }
        if (xy) onDrop(xy);
      };
      move(ev);
      document.addEventListener('pointermove', move); document.addEventListener('pointerup', up);
    });
  };
  const list = h('ul', { id: 'unplaced', class: 'unplaced' });
  const redraw = async () => {
    const fresh = (await api('GET', '/api/v1/places')).data;
    placed.clear();
    for (const p of fresh) placed.set(p.kind + ':' + p.id, p);
    markers.replaceChildren();
    list.replaceChildren();
    for (const it of items) {
      const p = placed.get(it.kind + ':' + it.id);
      if (!p) {
        const li = h('li', { class: 'unplaced-item', 'data-kind': it.kind, 'data-id': it.id }, h('span', { class: 'glyph ' + it.kind }), it.name, ' ', it.verdict ? verdictBadge(it.verdict) : null);
        dragging(li, it, (xy) => save(it.kind, it.id, xy));
        list.append(li);
        continue;
      }
      const [x, y] = pos(p);
      const m = svg('g', { class: 'marker', 'data-kind': it.kind, 'data-id': it.id, 'data-verdict': it.verdict || 'speaker', transform: `translate(${x * W},${y * H})`, tabindex: 0 },
        it.kind === 'speaker' ? svg('rect', { x: -8, y: -8, width: 16, height: 16, class: 'mk speaker' }) : svg('circle', { r: 10, class: 'mk v-' + it.verdict }),
        svg('text', { x: 13, y: 5, 'font-size': 13 }, it.name), svg('title', {}, it.name + (it.verdict ? ' · ' + t(it.verdict) : '')));
      m.addEventListener('keydown', (e) => { if (e.key === 'Enter') location.hash = it.href.slice(1); });
      if (tech) dragging(m, it, (xy) => save(it.kind, it.id, xy));
      else m.addEventListener('click', () => { location.hash = it.href.slice(1); });
      markers.append(m);
    }
    if (!list.childNodes.length) list.append(h('li', { class: 'muted small' }, '—'));
  };
  await redraw();
  const llForm = () => {
    const sel = h('select', { id: 'll-device' }, items.map((it) => h('option', { value: it.kind + ':' + it.id }, it.name)));
    const lon = h('input', { id: 'll-lon', type: 'number', step: 'any', placeholder: 'lon', size: 9 });
    const lat = h('input', { id: 'll-lat', type: 'number', step: 'any', placeholder: 'lat', size: 9 });
    return h('div', { class: 'filters' }, h('span', { class: 'small' }, t('lonlat')), sel, lon, lat, h('button', { class: 'secondary', id: 'll-save', onclick: async () => {
      const [kind, ...rest] = sel.value.split(':');
      try { await api('PUT', '/api/v1/places/' + enc(rest.join(':')), { kind, lon: Number(lon.value), lat: Number(lat.value) }); toast(t('saved')); await redraw(); } catch (e) { toast(e.message); }
    } }, t('save')));
  };
  main.append(h('div', { class: 'places' },
    h('section', { class: 'panel' }, h('h2', {}, t('tree')), treeView(buildTree(cams, spks))),
    h('section', { class: 'panel' }, h('h2', {}, t('map')), h('p', { class: 'small muted' }, t('mapHint')),
      h('div', { class: 'map-wrap' }, map, h('div', {}, h('div', { class: 'small' }, t('unplaced')), list)), tech ? llForm() : null)));
}
