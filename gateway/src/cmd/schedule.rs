//! `tgw schedule check|list|show` (reviewing a timetable before and while
//! it is in force) and `tgw broadcast keygen|sign|verify` (signed emergency
//! commands for the county platform, tests and benches). None of these
//! needs the daemon: they read the timetable file, the configuration and
//! the gateway's store directly. Formats: `docs/schedules.md`,
//! `docs/warnings.md`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::broadcast::Target;
use crate::broadcast::record::Records;
use crate::config::Config;
use crate::store::Store;
use tgw_core::broadcast::signed::{self, Action, Content, KeyConfig, KeySet, Verifier};
use tgw_core::schedule::{HornInfo, Item, Schedule, Timetable, TimetableError};

/// Appends a line to the output buffer `o` (printed once by [`emit`]).
macro_rules! outln {
    ($o:ident) => {
        $o.push('\n')
    };
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// Appends to the output buffer `o`.
macro_rules! out {
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($o, $($t)*);
    }};
}

/// Writes the output; a closed pipe (`| head`) is not an error.
fn emit(o: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(o.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The zone used when neither the timetable nor a configuration names one.
const DEFAULT_TZ: &str = "Asia/Shanghai";
/// The longest range `check` and `show` expand.
const MAX_DAYS: u32 = 366;
/// Exit code for an invalid timetable (as `tgw check-config`).
const INVALID: u8 = 2;

// ---------------------------------------------------------------------------
// tgw schedule …

#[derive(Subcommand)]
pub(super) enum ScheduleCmd {
    /// Check a timetable file and print what would play in a date range and
    /// what looks wrong (overlaps, schedules that never fire, calendar gaps,
    /// quiet hours, unknown targets). Exit 0 when the file is valid (warnings
    /// allowed), 2 when it is not (the message names file, key and line).
    Check(CheckArgs),
    /// The timetable in force for a gateway (its `[broadcast] timetable`
    /// file, else the newest version in its store): schemes, programmes,
    /// schedules and the next time each fires.
    List {
        #[command(flatten)]
        at: TimetableAt,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One schedule (or programme) in full, with its occurrences over the
    /// next days and the horns each reaches.
    Show {
        /// A schedule id, or a programme id (all schedules playing it).
        id: String,
        #[command(flatten)]
        at: TimetableAt,
        /// Look up a programme even when a schedule has the same id.
        #[arg(long)]
        programme: bool,
        /// Days ahead to list (1-366), from now.
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub(super) struct CheckArgs {
    /// The timetable file (TOML, `docs/schedules.md`).
    file: PathBuf,
    /// First day, `YYYY-MM-DD`, in the timetable's zone. Default: today.
    #[arg(long)]
    from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive.
    #[arg(long, conflicts_with = "days")]
    to: Option<String>,
    /// Number of days from `--from` (1-366). Default: 7.
    #[arg(long)]
    days: Option<u32>,
    /// Horn inventory to resolve targets against: a speaker CSV
    /// (`config/speakers.example.csv`). With `--config` it is validated
    /// against the config's [township].
    #[arg(long)]
    speakers: Option<PathBuf>,
    /// The gateway's configuration: `[broadcast] timezone` (default
    /// Asia/Shanghai) and, without `--speakers`, the horns in its store.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Where `list` and `show` find the timetable.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub(super) struct TimetableAt {
    /// The gateway's configuration: its timetable (file or store) and horns.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A timetable file instead (no horns; zone from the file, else
    /// Asia/Shanghai).
    #[arg(long)]
    file: Option<PathBuf>,
}

pub(super) fn schedule_cmd(cmd: ScheduleCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ScheduleCmd::Check(a) => check(a),
        ScheduleCmd::List { at, json } => {
            let Some(loaded) = at.load()? else {
                return Ok(ExitCode::from(INVALID));
            };
            list(&loaded, json)
        }
        ScheduleCmd::Show {
            id,
            at,
            programme,
            days,
            json,
        } => {
            let Some(loaded) = at.load()? else {
                return Ok(ExitCode::from(INVALID));
            };
            show(&loaded, &id, programme, days, json)
        }
    }
}

/// Prints a timetable error (and its JSON with `--json`).
fn report_invalid(e: &TimetableError, json: bool) {
    if json {
        let mut o = String::new();
        outln!(
            o,
            "{}",
            json!({"valid": false, "error": {
                "file": e.file, "path": e.path, "line": e.line, "message": e.message,
            }})
        );
        let _ = emit(&o);
    }
    eprintln!("{e}");
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let cfg = a.config.as_deref().map(Config::load).transpose()?;
    let tz = cfg
        .as_ref()
        .map_or(DEFAULT_TZ, |c| c.broadcast.timezone.as_str());
    let tt = match Timetable::load(&a.file, tz) {
        Ok(tt) => tt,
        Err(e) => {
            report_invalid(&e, a.json);
            return Ok(ExitCode::from(INVALID));
        }
    };
    let (horns, source) = match (&a.speakers, &cfg) {
        (Some(csv), _) => {
            let h = horns_from_csv(csv, cfg.as_ref())?;
            let n = h.len();
            (h, format!("{n} horns from {}", csv.display()))
        }
        (None, Some(c)) => match open_existing_store(c) {
            Ok(Some(store)) => {
                let h = horns_from_store(&store)?;
                let n = h.len();
                (
                    h,
                    format!(
                        "{n} horns from the store in {}",
                        c.gateway.data_dir.display()
                    ),
                )
            }
            Ok(None) => (
                Vec::new(),
                format!(
                    "no store in {}: targets judged as written",
                    c.gateway.data_dir.display()
                ),
            ),
            Err(e) => (
                Vec::new(),
                format!("cannot open the store ({e:#}): targets judged as written"),
            ),
        },
        (None, None) => (
            Vec::new(),
            "no horn inventory (--speakers or --config): targets judged as written".into(),
        ),
    };
    let (from, to) = range(&tt, a.from.as_deref(), a.to.as_deref(), a.days)?;
    let report = tgw_core::schedule::check(&tt, from, to, &horns);
    let mut o = String::new();
    if a.json {
        outln!(o, "{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!("{}: valid; {source}", a.file.display());
        out!(o, "{report}");
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// `[from, to)` from the flags, in the timetable's zone: `--from` (default
/// today) through `--to` inclusive, or `--days` (default 7) days.
fn range(
    tt: &Timetable,
    from: Option<&str>,
    to: Option<&str>,
    days: Option<u32>,
) -> anyhow::Result<(Timestamp, Timestamp)> {
    let tz = tt.time_zone().clone();
    let date = |flag: &str, s: &str| -> anyhow::Result<Date> {
        s.trim()
            .parse::<Date>()
            .map_err(|e| anyhow::anyhow!("{flag} `{s}`: not a date YYYY-MM-DD: {e}"))
    };
    let first = match from {
        Some(s) => date("--from", s)?,
        None => Timestamp::now().to_zoned(tz.clone()).date(),
    };
    let last_excl = match (to, days) {
        (Some(s), _) => {
            let last = date("--to", s)?;
            anyhow::ensure!(
                last >= first,
                "--to {last} is before --from {first}: the range is empty"
            );
            last.tomorrow()?
        }
        (None, d) => {
            let d = d.unwrap_or(7);
            anyhow::ensure!((1..=MAX_DAYS).contains(&d), "--days {d}: use 1-{MAX_DAYS}");
            first.checked_add(jiff::Span::new().days(i64::from(d)))?
        }
    };
    let span_days = first.until(last_excl)?.get_days();
    anyhow::ensure!(
        span_days <= MAX_DAYS as i32,
        "the range {first} to {last_excl} is {span_days} days; at most {MAX_DAYS} are checked at once"
    );
    Ok((
        first.to_zoned(tz.clone())?.timestamp(),
        last_excl.to_zoned(tz)?.timestamp(),
    ))
}

/// Opens the gateway's store if its database exists (never creates one).
fn open_existing_store(cfg: &Config) -> anyhow::Result<Option<Store>> {
    let dir = &cfg.gateway.data_dir;
    if !dir.join("tgw.db").is_file() {
        return Ok(None);
    }
    Ok(Some(Store::open(dir)?))
}

fn horns_from_store(store: &Store) -> anyhow::Result<Vec<HornInfo>> {
    crate::speakers::Speakers::open(store)?.horn_infos()
}

/// Horns from a speaker CSV: validated as `tgw speakers import` does when a
/// configuration gives the township; otherwise only the `id`, `village`,
/// `grid` and `zone` columns are read.
fn horns_from_csv(path: &Path, cfg: Option<&Config>) -> anyhow::Result<Vec<HornInfo>> {
    use crate::speakers::{Township, csv_records, parse_csv};
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
    let origin = path.display().to_string();
    if let Some(cfg) = cfg {
        let mut township = Township::default();
        for v in &cfg.township.villages {
            township.villages.push(v.code.to_string());
            for g in &v.grids {
                township
                    .grids
                    .insert(g.code.to_string(), v.code.to_string());
            }
        }
        let list = parse_csv(&text, &township).map_err(|errs| {
            let shown: Vec<String> = errs
                .iter()
                .take(20)
                .map(|e| format!("{origin}: {e}"))
                .collect();
            anyhow::anyhow!("{}", shown.join("\n"))
        })?;
        return Ok(list
            .into_iter()
            .map(|s| HornInfo {
                id: s.id.to_string(),
                village: s.village,
                grid: s.grid,
                zone: s.zone.map(|z| z.to_string()),
            })
            .collect());
    }
    let records = csv_records(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let mut it = records.into_iter();
    let Some((hline, header)) = it.next() else {
        anyhow::bail!("{origin}: no header row");
    };
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| header.iter().position(|h| h == name);
    let Some(id_col) = col("id") else {
        anyhow::bail!("{origin}: line {hline}: no `id` column");
    };
    let (v, g, z) = (col("village"), col("grid"), col("zone"));
    let mut out: Vec<HornInfo> = Vec::new();
    for (line, rec) in it {
        let get = |c: Option<usize>| {
            c.and_then(|i| rec.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let Some(id) = get(Some(id_col)) else {
            anyhow::bail!("{origin}: line {line}, column `id`: required");
        };
        if out.iter().any(|h| h.id == id) {
            anyhow::bail!("{origin}: line {line}, column `id`: `{id}` is used twice");
        }
        out.push(HornInfo {
            id,
            village: get(v),
            grid: get(g),
            zone: get(z),
        });
    }
    Ok(out)
}

/// A timetable with where it came from and the horns known.
struct Loaded {
    tt: Timetable,
    source: String,
    horns: Vec<HornInfo>,
    horns_note: String,
}

impl TimetableAt {
    /// Loads the timetable; `None` after printing why it is invalid.
    fn load(&self) -> anyhow::Result<Option<Loaded>> {
        if let Some(f) = &self.file {
            return Ok(match Timetable::load(f, DEFAULT_TZ) {
                Ok(tt) => Some(Loaded {
                    tt,
                    source: f.display().to_string(),
                    horns: Vec::new(),
                    horns_note: "no horn inventory (--file): targets as written".into(),
                }),
                Err(e) => {
                    report_invalid(&e, false);
                    None
                }
            });
        }
        let Some(c) = &self.config else {
            anyhow::bail!("give --config FILE or --file TIMETABLE");
        };
        let cfg = Config::load(c)?;
        let store = open_existing_store(&cfg);
        let (horns, horns_note) = match &store {
            Ok(Some(s)) => {
                let h = horns_from_store(s)?;
                let note = format!(
                    "{} horns from the store in {}",
                    h.len(),
                    cfg.gateway.data_dir.display()
                );
                (h, note)
            }
            Ok(None) => (
                Vec::new(),
                format!(
                    "no store in {}: targets as written",
                    cfg.gateway.data_dir.display()
                ),
            ),
            Err(e) => (
                Vec::new(),
                format!("cannot open the store ({e:#}): targets as written"),
            ),
        };
        // The file named by the configuration wins (as in the daemon); it
        // needs no store.
        if let Some(f) = &cfg.broadcast.timetable {
            return Ok(match Timetable::load(f, &cfg.broadcast.timezone) {
                Ok(tt) => Some(Loaded {
                    tt,
                    source: f.display().to_string(),
                    horns,
                    horns_note,
                }),
                Err(e) => {
                    report_invalid(&e, false);
                    None
                }
            });
        }
        let store = match store {
            Ok(Some(s)) => s,
            Ok(None) => anyhow::bail!(
                "{}: no [broadcast] timetable file and no store in {} (the gateway has not run yet)",
                c.display(),
                cfg.gateway.data_dir.display()
            ),
            Err(e) => return Err(e),
        };
        let records = Records::open(&store)?;
        let source = match records.timetable()? {
            Some((v, _)) => format!("the store, version {v}"),
            None => "the store (no timetable saved yet)".into(),
        };
        let tt = crate::broadcast::runtime::load_timetable(&cfg, &records)?;
        Ok(Some(Loaded {
            tt,
            source,
            horns,
            horns_note,
        }))
    }
}

/// The next time `s` fires at or after `after` (active scheme, enabled),
/// looking up to 50 years ahead.
fn next_of(tt: &Timetable, s: &Schedule, after: Timestamp) -> Option<(DateTime, Timestamp)> {
    if !tt.is_live(s, None) || tt.programme(&s.programme).is_none() {
        return None;
    }
    let limit = after
        .checked_add(SignedDuration::from_hours(24 * 366 * 50))
        .unwrap_or(Timestamp::MAX);
    let mut lo = after;
    let mut span = SignedDuration::from_hours(24);
    while lo < limit {
        let hi = lo.checked_add(span).unwrap_or(Timestamp::MAX).min(limit);
        if let Some(first) = tt
            .schedule_between(s, lo, hi)
            .into_iter()
            .min_by_key(|(_, t)| *t)
        {
            return Some(first);
        }
        lo = hi;
        span = span.checked_mul(4).unwrap_or(span);
    }
    None
}

/// `at 07:30, 18:00 workdays` or `rrule FREQ=…`, with the date range.
fn when(s: &Schedule) -> String {
    let mut out = match &s.rrule {
        Some(r) => format!("rrule {r}"),
        None => {
            let at: Vec<String> = s.at.iter().map(ToString::to_string).collect();
            let days = s
                .days
                .as_ref()
                .map_or_else(|| "daily".to_string(), ToString::to_string);
            format!("at {} {days}", at.join(","))
        }
    };
    match (s.from, s.until) {
        (Some(f), Some(u)) => out.push_str(&format!(" ({f}..{u})")),
        (Some(f), None) => out.push_str(&format!(" (from {f})")),
        (None, Some(u)) => out.push_str(&format!(" (until {u})")),
        (None, None) => {}
    }
    out
}

fn targets_text(t: &[Target]) -> String {
    t.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a schedule does not fire, if it does not.
fn not_live_reason(tt: &Timetable, s: &Schedule) -> Option<String> {
    if !s.enabled {
        return Some("disabled".into());
    }
    if !tt.is_live(s, None) {
        return Some(format!(
            "scheme {} is not active",
            s.scheme.as_deref().unwrap_or("-")
        ));
    }
    None
}

/// Terminal columns of a string: East Asian wide characters (Han, kana,
/// Hangul, full-width forms) take two.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| match c as u32 {
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

/// Left-aligned columns, two spaces apart; `(none)` without rows.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "  (none)\n".into();
    }
    let mut width: Vec<usize> = header.iter().map(|h| display_width(h)).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(display_width(c));
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(ToString::to_string).collect();
    for r in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (c, w) in r.iter().zip(&width) {
            line.push_str(c);
            line.push_str(&" ".repeat(w.saturating_sub(display_width(c)) + 2));
        }
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn fmt_local(dt: DateTime) -> String {
    dt.strftime("%Y-%m-%d %a %H:%M").to_string()
}

fn list(l: &Loaded, json: bool) -> anyhow::Result<ExitCode> {
    let tt = &l.tt;
    let parts = tt.parts();
    let now = Timestamp::now();
    let mut o = String::new();
    if json {
        let schedules: Vec<Value> = parts
            .schedules
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
                if let Some(o) = v.as_object_mut() {
                    o.insert("enabled".into(), json!(s.enabled));
                    o.insert("live".into(), json!(tt.is_live(s, None)));
                    o.insert(
                        "next".into(),
                        match next_of(tt, s, now) {
                            Some((local, at)) => json!({"at": at, "local": local}),
                            None => Value::Null,
                        },
                    );
                }
                v
            })
            .collect();
        let v = json!({
            "source": l.source,
            "time_zone": tt.time_zone_name(),
            "active_scheme": tt.active_scheme(),
            "schemes": parts.schemes.iter().map(|s| json!({
                "id": s.id, "name": s.name, "active": tt.active_scheme() == Some(s.id.as_str()),
            })).collect::<Vec<_>>(),
            "groups": parts.groups,
            "quiet_hours": parts.quiet_hours,
            "programmes": parts.programmes,
            "schedules": schedules,
        });
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        o,
        "Timetable from {} ({}){}",
        l.source,
        tt.time_zone_name(),
        tt.active_scheme()
            .map(|s| format!(", active scheme {s}"))
            .unwrap_or_default()
    );
    if !parts.schemes.is_empty() {
        outln!(o, "\nschemes:");
        let rows: Vec<Vec<String>> = parts
            .schemes
            .iter()
            .map(|s| {
                let active = tt.active_scheme() == Some(s.id.as_str());
                vec![
                    if active { "*" } else { "" }.to_string(),
                    s.id.clone(),
                    s.name.clone(),
                ]
            })
            .collect();
        out!(o, "{}", table(&["", "id", "name"], &rows));
    }
    if !parts.groups.is_empty() {
        outln!(o, "\ngroups:");
        let rows: Vec<Vec<String>> = parts
            .groups
            .iter()
            .map(|g| vec![g.name.clone(), targets_text(&g.targets)])
            .collect();
        out!(o, "{}", table(&["name", "targets"], &rows));
    }
    if !parts.quiet_hours.is_empty() {
        outln!(o, "\nquiet hours:");
        let rows: Vec<Vec<String>> = parts
            .quiet_hours
            .iter()
            .map(|q| vec![format!("{}-{}", q.from, q.to), targets_text(&q.targets)])
            .collect();
        out!(o, "{}", table(&["time", "targets"], &rows));
    }
    outln!(o, "\nprogrammes:");
    let rows: Vec<Vec<String>> = parts
        .programmes
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.priority.to_string(),
                p.items.len().to_string(),
                format!(
                    "{}x{}",
                    p.repeat,
                    if p.interval.is_zero() {
                        String::new()
                    } else {
                        format!(
                            " every {}",
                            tgw_core::schedule::timetable::format_duration(p.interval)
                        )
                    }
                ),
                p.volume.map_or_else(|| "-".into(), |v| v.to_string()),
            ]
        })
        .collect();
    out!(
        o,
        "{}",
        table(
            &["id", "name", "priority", "items", "repeat", "volume"],
            &rows
        )
    );
    outln!(o, "\nschedules:");
    let rows: Vec<Vec<String>> = parts
        .schedules
        .iter()
        .map(|s| {
            let next = match (not_live_reason(tt, s), next_of(tt, s, now)) {
                (Some(why), _) => format!("- ({why})"),
                (None, Some((local, _))) => fmt_local(local),
                (None, None) => match s.until {
                    Some(u) if u < tt.time_zone().to_datetime(now).date() => {
                        format!("never (ended {u})")
                    }
                    _ => "never".into(),
                },
            };
            vec![
                s.id.clone(),
                s.programme.clone(),
                when(s),
                targets_text(&s.targets),
                s.scheme.clone().unwrap_or_else(|| "*".into()),
                if s.enabled { "yes" } else { "no" }.into(),
                next,
            ]
        })
        .collect();
    out!(
        o,
        "{}",
        table(
            &[
                "id",
                "programme",
                "when",
                "targets",
                "scheme",
                "enabled",
                "next"
            ],
            &rows
        )
    );
    emit(&o)?;
    eprintln!(
        "{} programme(s), {} schedule(s); {}",
        parts.programmes.len(),
        parts.schedules.len(),
        l.horns_note
    );
    Ok(ExitCode::SUCCESS)
}

fn show(
    l: &Loaded,
    id: &str,
    want_programme: bool,
    days: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (1..=MAX_DAYS).contains(&days),
        "--days {days}: use 1-{MAX_DAYS}"
    );
    let tt = &l.tt;
    let schedule = (!want_programme).then(|| tt.schedule(id)).flatten();
    let (programme, schedules): (_, Vec<&Schedule>) = match schedule {
        Some(s) => (tt.programme(&s.programme), vec![s]),
        None => match tt.programme(id) {
            Some(p) => (
                Some(p),
                tt.parts()
                    .schedules
                    .iter()
                    .filter(|s| s.programme == p.id)
                    .collect(),
            ),
            None => anyhow::bail!(
                "{}: no schedule or programme `{id}` (`tgw schedule list` shows them)",
                l.source
            ),
        },
    };
    if schedule.is_some() && !want_programme && tt.programme(id).is_some() && !json {
        eprintln!("(a programme `{id}` exists too: `--programme` shows it)");
    }
    let now = Timestamp::now();
    let to = tt
        .add_days(now, days as i32)
        .ok_or_else(|| anyhow::anyhow!("--days {days}: out of range"))?;
    let ids: Vec<&str> = schedules.iter().map(|s| s.id.as_str()).collect();
    let occs: Vec<_> = tt
        .occurrences(now, to, None)
        .into_iter()
        .filter(|o| ids.contains(&o.schedule.as_str()))
        .collect();
    let known = !l.horns.is_empty();
    let mut o = String::new();
    let reach = |o: &tgw_core::schedule::Occurrence| -> (Vec<String>, Vec<String>) {
        if !known {
            return (Vec::new(), Vec::new());
        }
        let set = tt.resolve(&o.targets, &l.horns);
        let quiet = if o.priority == crate::broadcast::Priority::Emergency {
            Vec::new()
        } else {
            tt.quiet_horns(o.local, &l.horns)
                .intersection(&set)
                .cloned()
                .collect()
        };
        (set.into_iter().collect(), quiet)
    };
    if json {
        let v = json!({
            "source": l.source,
            "time_zone": tt.time_zone_name(),
            "active_scheme": tt.active_scheme(),
            "from": now,
            "to": to,
            "horns_known": l.horns.len(),
            "schedule": schedule,
            "programme": programme,
            "schedules": schedules.iter().map(|s| json!({
                "id": s.id,
                "live": tt.is_live(s, None),
                "not_live": not_live_reason(tt, s),
            })).collect::<Vec<_>>(),
            "occurrences": occs.iter().map(|o| {
                let (horns, quiet) = reach(o);
                json!({
                    "at": o.at, "local": o.local, "schedule": o.schedule,
                    "priority": o.priority, "targets": o.targets,
                    "expanded_targets": tt.expand_targets(&o.targets),
                    "horns": known.then_some(horns),
                    "quiet": known.then_some(quiet),
                })
            }).collect::<Vec<_>>(),
        });
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = schedule {
        outln!(o, "schedule   {}", s.id);
        outln!(o, "programme  {}", s.programme);
        outln!(o, "when       {}", when(s));
        outln!(o, "targets    {}", targets_text(&s.targets));
        outln!(
            o,
            "scheme     {}",
            s.scheme.as_deref().unwrap_or("(every scheme)")
        );
        outln!(o, "missed     {}", s.missed);
        outln!(
            o,
            "enabled    {}{}",
            if s.enabled { "yes" } else { "no" },
            not_live_reason(tt, s)
                .map(|w| format!(" — does not fire: {w}"))
                .unwrap_or_default()
        );
        outln!(o);
    }
    if let Some(p) = programme {
        outln!(
            o,
            "programme  {}{}",
            p.id,
            if p.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.name)
            }
        );
        outln!(
            o,
            "priority   {} (when preempted: {})",
            p.priority,
            match p.on_preempt {
                crate::broadcast::OnPreempt::Resume => "resume",
                crate::broadcast::OnPreempt::Drop => "drop",
            }
        );
        outln!(
            o,
            "repeat     {} time(s), {} apart",
            p.repeat,
            tgw_core::schedule::timetable::format_duration(p.interval)
        );
        outln!(
            o,
            "volume     {}",
            p.volume
                .map_or_else(|| "each horn's own".into(), |v| v.to_string())
        );
        if let Some(c) = &p.pre_chime {
            outln!(o, "pre-chime  {c}");
        }
        for (i, item) in p.items.iter().enumerate() {
            match item {
                Item::Tts(t) => outln!(o, "item {:<5} tts: {t}", i + 1),
                Item::Asset(a) => outln!(o, "item {:<5} asset: {a}", i + 1),
            }
        }
        if let Some(c) = &p.post_chime {
            outln!(o, "post-chime {c}");
        }
        if schedule.is_none() {
            outln!(
                o,
                "schedules  {}",
                if ids.is_empty() {
                    "(none)".into()
                } else {
                    ids.join(", ")
                }
            );
        }
        outln!(o);
    }
    let tz = tt.time_zone();
    outln!(
        o,
        "{} occurrence(s) from {} to {} ({}); {}",
        occs.len(),
        fmt_local(tz.to_datetime(now)),
        fmt_local(tz.to_datetime(to)),
        tt.time_zone_name(),
        l.horns_note
    );
    let rows: Vec<Vec<String>> = occs
        .iter()
        .map(|o| {
            let (horns, quiet) = reach(o);
            let reached = if known {
                format!("{}: {}", horns.len(), horns.join(","))
            } else {
                targets_text(
                    &tt.expand_targets(&o.targets)
                        .into_iter()
                        .collect::<Vec<_>>(),
                )
            };
            let quiet = if known {
                if quiet.is_empty() {
                    "-".into()
                } else {
                    quiet.join(",")
                }
            } else {
                "?".into()
            };
            vec![fmt_local(o.local), o.schedule.clone(), reached, quiet]
        })
        .collect();
    if !rows.is_empty() {
        out!(
            o,
            "{}",
            table(
                &[
                    "time",
                    "schedule",
                    if known { "horns" } else { "targets" },
                    "quiet"
                ],
                &rows
            )
        );
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// tgw broadcast …

#[derive(Subcommand)]
pub(super) enum BroadcastCmd {
    /// Make an Ed25519 signing key for MQTT emergency commands: PREFIX.key
    /// (PKCS#8 PEM, mode 0600, readable by OpenSSL) and PREFIX.pub (the
    /// public key, base64). Prints the `[[broadcast.keys]]` entry to paste
    /// into the gateway's configuration.
    Keygen {
        /// Path prefix of the files, e.g. `keys/county-1`.
        #[arg(long)]
        out: PathBuf,
        /// Key id for the printed entry. Default: the prefix's file name.
        #[arg(long)]
        key_id: Option<String>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign an emergency command and print the envelope (the `params` of
    /// MQTT `cmd/emergency`) with a fresh random nonce.
    Sign(SignArgs),
    /// Check an envelope (or a whole `cmd/emergency` message body) as the
    /// gateway would; prints the command, or the refusal code and reason
    /// (exit 1).
    Verify(VerifyArgs),
}

/// `start` or `stop`.
#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Start,
    Stop,
}

/// Priorities a signed command may carry.
#[derive(Clone, Copy, ValueEnum)]
enum SignedPriority {
    Emergency,
    Superior,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("content").args(["text", "asset"])))]
pub(super) struct SignArgs {
    /// The signing key (PKCS#8 PEM from `keygen` or OpenSSL, or base64 of
    /// the 32-byte seed).
    #[arg(long)]
    key: PathBuf,
    /// The key id the gateway knows it by (`[[broadcast.keys]] id`).
    #[arg(long)]
    key_id: String,
    /// Targets, comma-separated: all, village:CODE, grid:CODE, zone:NAME,
    /// group:NAME, speaker:ID.
    #[arg(long, value_delimiter = ',', required = true)]
    targets: Vec<Target>,
    /// Text to speak (start).
    #[arg(long)]
    text: Option<String>,
    /// A stored asset, `sha256:<64 hex>` (start).
    #[arg(long)]
    asset: Option<String>,
    /// Start a broadcast, or stop the one named by --id.
    #[arg(long, value_enum, default_value = "start")]
    action: ActionArg,
    /// Broadcast id (required for stop). Default: `emg-` and random hex.
    #[arg(long)]
    id: Option<String>,
    /// How long the command stays valid (`not_after` = now + this; 10s-24h).
    #[arg(long, default_value = "5m")]
    valid_for: String,
    /// Priority.
    #[arg(long, value_enum, default_value = "emergency")]
    priority: SignedPriority,
    /// Volume 0-100 (start).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    volume: Option<u8>,
    /// Times to play, 1-10 (start).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    repeat: Option<u8>,
    /// Print the whole MQTT message body `{"request_id": …, "params": ENVELOPE}`.
    #[arg(long)]
    mqtt_json: bool,
    /// The request id of --mqtt-json. Default: `r-` and random hex.
    #[arg(long, requires = "mqtt_json")]
    request_id: Option<String>,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("keys").required(true).args(["config", "public_key"])))]
pub(super) struct VerifyArgs {
    /// The envelope or message body; `-` or none reads standard input.
    file: Option<PathBuf>,
    /// Verify against the `[[broadcast.keys]]` of this configuration.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Verify against this public key (base64 of 32 bytes) instead.
    #[arg(long, requires = "key_id")]
    public_key: Option<String>,
    /// The id of --public-key.
    #[arg(long)]
    key_id: Option<String>,
    /// The scope of --public-key. Default: all.
    #[arg(long, value_delimiter = ',', requires = "public_key")]
    scope: Vec<Target>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn broadcast_cmd(cmd: BroadcastCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        BroadcastCmd::Keygen { out, key_id, force } => keygen(&out, key_id, force),
        BroadcastCmd::Sign(a) => sign(a),
        BroadcastCmd::Verify(a) => verify(a),
    }
}

/// DER prefix of an Ed25519 PKCS#8 v1 `PrivateKeyInfo` (RFC 8410): the
/// 32-byte seed follows. This is what `openssl genpkey -algorithm ed25519`
/// writes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The PKCS#8 PEM of a signing key.
fn pkcs8_pem(key: &ed25519_dalek::SigningKey) -> String {
    use base64::Engine as _;
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(key.as_bytes());
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        b64().encode(&der)
    )
}

/// Reads a signing key: PKCS#8 PEM (unencrypted Ed25519) or base64 of the
/// 32-byte seed. Errors never echo key material.
fn read_signing_key(path: &Path) -> anyhow::Result<ed25519_dalek::SigningKey> {
    use base64::Engine as _;
    let name = path.display();
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    anyhow::ensure!(meta.len() <= 16 * 1024, "{name}: too large for a key file");
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{name}: cannot read: {e}"))?;
    if text.contains("ENCRYPTED PRIVATE KEY") {
        anyhow::bail!(
            "{name}: the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)"
        );
    }
    let seed: [u8; 32] = if let Some(start) = text.find("-----BEGIN PRIVATE KEY-----") {
        let body = &text[start + "-----BEGIN PRIVATE KEY-----".len()..];
        let end = body
            .find("-----END PRIVATE KEY-----")
            .ok_or_else(|| anyhow::anyhow!("{name}: PEM without an END line"))?;
        let b: String = body[..end].split_whitespace().collect();
        let der = b64()
            .decode(b.as_bytes())
            .map_err(|_| anyhow::anyhow!("{name}: the PEM body is not base64"))?;
        let seed = der
            .strip_prefix(&PKCS8_ED25519_PREFIX[..])
            .filter(|s| s.len() == 32)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{name}: not an Ed25519 PKCS#8 key (make one with `tgw broadcast keygen` or `openssl genpkey -algorithm ed25519`)"
                )
            })?;
        seed.try_into()?
    } else {
        let raw = b64()
            .decode(text.trim().as_bytes())
            .map_err(|_| anyhow::anyhow!("{name}: neither a PKCS#8 PEM nor base64"))?;
        raw.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "{name}: {} bytes of base64; an Ed25519 seed is 32",
                raw.len()
            )
        })?
    };
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_file(path: &Path, contents: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(mode);
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{}: exists (use --force to overwrite)", path.display())
        } else {
            anyhow::anyhow!("{}: cannot write: {e}", path.display())
        }
    })?;
    // An existing file keeps its mode on open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn keygen(out: &Path, key_id: Option<String>, force: bool) -> anyhow::Result<ExitCode> {
    let key_id = match key_id {
        Some(k) => k,
        None => out
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("--out {}: no file name", out.display()))?,
    };
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signed::public_key_base64(&key.verifying_key());
    // Checks the id (and the key) as the gateway's configuration will.
    KeySet::from_config(&[KeyConfig {
        id: key_id.clone(),
        public_key: public.clone(),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?;
    let key_path = with_suffix(out, ".key");
    let pub_path = with_suffix(out, ".pub");
    write_file(&key_path, &pkcs8_pem(&key), 0o600, force)?;
    write_file(&pub_path, &format!("{public}\n"), 0o644, force)?;
    eprintln!(
        "wrote {} (Ed25519 private key, PKCS#8 PEM, mode 0600) and {} (public key)",
        key_path.display(),
        pub_path.display()
    );
    let mut o = String::new();
    outln!(o, "[[broadcast.keys]]");
    outln!(o, "id = \"{key_id}\"");
    outln!(o, "public_key = \"{public}\"");
    outln!(
        o,
        "scope = [\"all\"]  # narrow to the targets this key may address"
    );
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

/// Now as milliseconds since the epoch (the verifier's clock).
fn now_ms() -> crate::broadcast::Ms {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as crate::broadcast::Ms
}

fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let key = read_signing_key(&a.key)?;
    let valid_for = tgw_core::schedule::timetable::parse_duration(&a.valid_for)
        .map_err(|e| anyhow::anyhow!("--valid-for: {e}"))?;
    anyhow::ensure!(
        (10..=24 * 3600).contains(&valid_for.as_secs()),
        "--valid-for {}: use 10s to 24h",
        a.valid_for
    );
    let action = match a.action {
        ActionArg::Start => "start",
        ActionArg::Stop => "stop",
    };
    let id = match (&a.id, a.action) {
        (Some(id), _) => id.clone(),
        (None, ActionArg::Start) => format!("emg-{}", random_hex(6)),
        (None, ActionArg::Stop) => {
            anyhow::bail!("--action stop needs --id (the broadcast to stop)")
        }
    };
    let not_after = time::OffsetDateTime::now_utc()
        + time::Duration::try_from(valid_for).map_err(|e| anyhow::anyhow!("--valid-for: {e}"))?;
    let not_after = not_after
        .replace_nanosecond(0)
        .unwrap_or(not_after)
        .format(&time::format_description::well_known::Rfc3339)?;
    let mut payload = json!({
        "id": id,
        "action": action,
        "not_after": not_after,
        "nonce": random_hex(16),
        "targets": a.targets.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "priority": match a.priority {
            SignedPriority::Emergency => "emergency",
            SignedPriority::Superior => "superior",
        },
    });
    match (a.action, &a.text, &a.asset) {
        (ActionArg::Start, Some(t), None) => payload["text"] = json!(t),
        (ActionArg::Start, None, Some(s)) => payload["asset"] = json!(s),
        (ActionArg::Start, _, _) => {
            anyhow::bail!("--action start needs --text TEXT or --asset sha256:…")
        }
        (ActionArg::Stop, None, None) => {}
        (ActionArg::Stop, _, _) => anyhow::bail!("--action stop takes no --text or --asset"),
    }
    if let Some(v) = a.volume {
        payload["volume"] = json!(v);
    }
    if let Some(r) = a.repeat {
        payload["repeat"] = json!(r);
    }
    let payload = serde_json::to_vec(&payload)?;
    let envelope = signed::sign(&key, &payload, &a.key_id);
    // Run it through the gateway's own checks, so nothing is printed that a
    // gateway trusting this key would refuse as malformed.
    let keys = KeySet::from_config(&[KeyConfig {
        id: a.key_id.clone(),
        public_key: signed::public_key_base64(&key.verifying_key()),
        scope: vec![Target::All],
    }])
    .map_err(|e| anyhow::anyhow!("--key-id: {e}"))?;
    Verifier::new(keys)
        .verify(envelope.as_bytes(), now_ms())
        .map_err(|e| anyhow::anyhow!("the command would be refused: {e}"))?;
    let mut o = String::new();
    if a.mqtt_json {
        let rid = a
            .request_id
            .unwrap_or_else(|| format!("r-{}", random_hex(8)));
        anyhow::ensure!(
            tgw_core::uplink::commands::valid_request_id(&rid),
            "--request-id: must be 1-128 characters of A-Z a-z 0-9 . _ : -"
        );
        let params: Value = serde_json::from_str(&envelope)?;
        outln!(o, "{}", json!({"request_id": rid, "params": params}));
    } else {
        outln!(o, "{envelope}");
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut body = Vec::new();
    match a.file.as_deref() {
        None => {
            std::io::stdin().take(1 << 20).read_to_end(&mut body)?;
        }
        Some(p) if p == Path::new("-") => {
            std::io::stdin().take(1 << 20).read_to_end(&mut body)?;
        }
        Some(p) => {
            body = std::fs::read(p)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))?;
        }
    }
    let (keys, command_max) = match (&a.config, &a.public_key, &a.key_id) {
        (Some(c), _, _) => {
            let cfg = Config::load(c)?;
            let keys = KeySet::from_config(&cfg.broadcast.keys)
                .map_err(|e| anyhow::anyhow!("{}: [broadcast] keys: {e}", c.display()))?;
            let max = cfg.mqtt.as_ref().map_or(64 * 1024, |m| m.command_max_bytes);
            (keys, max)
        }
        (None, Some(pk), Some(id)) => {
            let scope = if a.scope.is_empty() {
                vec![Target::All]
            } else {
                a.scope.clone()
            };
            let keys = KeySet::from_config(&[KeyConfig {
                id: id.clone(),
                public_key: pk.clone(),
                scope,
            }])
            .map_err(|e| anyhow::anyhow!("--public-key/--key-id: {e}"))?;
            (keys, 64 * 1024)
        }
        _ => anyhow::bail!("give --config FILE, or --public-key B64 with --key-id ID"),
    };
    let refuse = |code: &str, message: String| {
        if a.json {
            let _ = emit(&format!(
                "{}\n",
                json!({"valid": false, "code": code, "message": message})
            ));
        } else {
            eprintln!("refused: {code}: {message}");
        }
        ExitCode::FAILURE
    };
    // A whole `cmd/emergency` body goes through the gateway's command parser
    // first; its params are the envelope, as received (as over MQTT).
    let is_command = serde_json::from_slice::<Value>(&body)
        .ok()
        .is_some_and(|v| v.get("request_id").is_some());
    let envelope = if is_command {
        match tgw_core::uplink::commands::parse_command("emergency", &body, command_max) {
            Ok(r) => match r.command {
                tgw_core::uplink::commands::Command::Emergency { envelope } => envelope,
                _ => Vec::new(), // not reached: parsed as `emergency`
            },
            Err(e) => return Ok(refuse(e.code.as_str(), e.message)),
        }
    } else {
        body
    };
    let cmd = match Verifier::new(keys).verify(&envelope, now_ms()) {
        Ok(c) => c,
        Err(r) => return Ok(refuse(r.code(), r.to_string())),
    };
    let not_after =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(cmd.not_after) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
    let (text, asset) = match &cmd.content {
        Some(Content::Text(t)) => (Some(t.clone()), None),
        Some(Content::Asset(s)) => (None, Some(s.clone())),
        None => (None, None),
    };
    let v = json!({
        "valid": true,
        "key_id": cmd.key_id,
        "id": cmd.id,
        "action": match cmd.action { Action::Start => "start", Action::Stop => "stop" },
        "not_after": not_after,
        "nonce": cmd.nonce,
        "targets": cmd.targets,
        "priority": cmd.priority,
        "text": text,
        "asset": asset,
        "volume": cmd.volume,
        "repeat": cmd.repeat,
    });
    let mut o = String::new();
    if a.json {
        outln!(o, "{v}");
    } else {
        outln!(
            o,
            "ok: key {}, {} `{}` ({}), targets {}, not after {not_after}{}",
            cmd.key_id,
            v["action"].as_str().unwrap_or_default(),
            cmd.id,
            cmd.priority,
            targets_text(&cmd.targets),
            match (&text, &asset) {
                (Some(t), _) => format!(", text: {t}"),
                (_, Some(s)) => format!(", asset {s}"),
                _ => String::new(),
            }
        );
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
