// The dashboard's cheap static check (run by tests/tests/dashboard_js.rs,
// no browser): every module parses as an ES module (`node --check`), every
// named import exists in the module it comes from, both languages have the
// same keys, every literal t('key') exists, and every code the gateway
// sends (health reasons and rungs from core/src/health.rs, error codes from
// core/src/error.rs and http/error.rs, audit actions found in gateway/src)
// has its words. Prints each problem; exit 1 if any.
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const web = join(root, 'gateway', 'web');
const problems = [];
const files = readdirSync(web).filter((f) => f.endsWith('.js')).sort();
const src = Object.fromEntries(files.map((f) => [f, readFileSync(join(web, f), 'utf8')]));

for (const f of files) {
  const r = spawnSync(process.execPath, ['--input-type=module', '--check'], { input: src[f], encoding: 'utf8' });
  if (r.status !== 0) problems.push(`${f}: does not parse as a module:\n${r.stderr}`);
}

// Named imports against named exports.
const exportsOf = (s) => new Set([...s.matchAll(/^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)/gm)].map((m) => m[1]));
for (const f of files) {
  for (const m of src[f].matchAll(/^import\s*\{([^}]*)\}\s*from\s*'\.\/([^']+)'/gm)) {
    const target = m[2];
    if (!src[target]) { problems.push(`${f}: imports missing module ./${target}`); continue; }
    const have = exportsOf(src[target]);
    for (const name of m[1].split(',').map((x) => x.trim().split(/\s+as\s+/)[0]).filter(Boolean)) {
      if (!have.has(name)) problems.push(`${f}: imports ${name} which ./${target} does not export`);
    }
  }
}

const { T } = await import(join(web, 'i18n.js'));
const langs = Object.keys(T);
if (langs[0] !== 'zh-CN' || !langs.includes('en')) problems.push('i18n.js: zh-CN first, then en');
for (const a of langs) for (const b of langs) for (const k of Object.keys(T[a])) {
  if (!(k in T[b])) problems.push(`i18n.js: key ${JSON.stringify(k)} in ${a} is missing in ${b}`);
}
for (const l of langs) for (const [k, v] of Object.entries(T[l])) {
  if (typeof v !== 'string' || !v.trim()) problems.push(`i18n.js: ${l} ${k} is empty`);
}
const need = (key, why) => { for (const l of langs) if (!(key in T[l])) problems.push(`${l}: no words for ${key} (${why})`); };
for (const f of files) for (const m of src[f].matchAll(/\bt\(\s*'([^']+)'\s*[,)]/g)) need(m[1], f);

// Codes from the Rust side.
const rs = (p) => readFileSync(join(root, p), 'utf8');
const health = rs('core/src/health.rs');
for (const m of health.matchAll(/Reason::\w+ => "([a-z-]+)"/g)) need('r_' + m[1], 'health reason');
for (const m of health.matchAll(/Rung::\w+ => "([a-z-]+)"/g)) need('rung_' + m[1], 'health rung');
for (const m of rs('core/src/schedule/check.rs').matchAll(/WarningKind::\w+ => "([a-z-]+)"/g)) need('wk_' + m[1], 'timetable warning kind');
const err = rs('core/src/error.rs');
for (const m of err.slice(err.indexOf('pub fn code')).matchAll(/ErrorKind::\w+ => "([a-z_]+)"/g)) need('e_' + m[1], 'error code');
for (const m of rs('gateway/src/http/error.rs').matchAll(/StatusCode::\w+,\s*"([a-z_]+)"/g)) need('e_' + m[1], 'http error code');
const doc = rs('gateway/src/http/routes.rs').match(/Stable code: ([^.]*)\./);
if (doc) for (const c of doc[1].replace(/\/\/\//g, ' ').split(/[\s,]+/).filter(Boolean)) need('e_' + c, 'ErrorBody codes');
// Audit actions: the string given as `action` / to audited()/audit().
const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.rs') ? [join(d, e.name)] : []));
const actions = new Set();
for (const p of walk(join(root, 'gateway', 'src'))) {
  if (p.includes('/tests/')) continue;
  const s = readFileSync(p, 'utf8');
  // The dotted names near an audit call (its action argument).
  const lines = s.split('\n');
  lines.forEach((l, i) => {
    if (!/audit(ed)?\(|action:|commit\(/.test(l)) return;
    for (const x of lines.slice(i, i + 8)) for (const m of x.matchAll(/"((?:[a-z_]+\.)+[a-z_]+)"/g)) if (!/\.(rs|toml|json|js|csv|xml|wav)$/.test(m[1])) actions.add(m[1]);
  });
  for (const m of s.matchAll(/action:\s*"([a-z_.]+)"/g)) actions.add(m[1]);
  for (const m of s.matchAll(/audit(?:ed)?\([^;]*?"(login|logout)"/gs)) actions.add(m[1]);
}
for (const a of actions) need('a_' + a, 'audit action');
// Fixed `why` texts of horn reports: each one in broadcasts.js's WHY table
// (translated there); a driver's own error is shown after a translated prefix.
const whyTable = (src['broadcasts.js'] || '').match(/const WHY = \{([^}]*)\}/);
const whys = new Set(whyTable ? [...whyTable[1].matchAll(/'([^']+)':/g)].map((m) => m[1]) : []);
const report = rs('core/src/broadcast/engine/report.rs');
for (const m of [...report.matchAll(/DropReason::\w+ => "([^"]+)"/g), ...report.matchAll(/pub const \w+: &str = "([^"]+)"/g)]) {
  if (!whys.has(m[1])) problems.push(`broadcasts.js: horn why ${JSON.stringify(m[1])} (core/src/broadcast/engine/report.rs) is not in WHY`);
}
for (const k of whys) if (!whyTable[1].includes(`'${k}': 'why_`)) problems.push(`broadcasts.js: WHY ${k} has no why_ key`);

if (problems.length) { console.error(problems.join('\n')); console.error(`check-dashboard: ${problems.length} problem(s)`); process.exit(1); }
console.log(`check-dashboard: ${files.length} modules, ${Object.keys(T['zh-CN']).length} keys, ${actions.size} audit actions: ok`);
