//! `tgw schedule check|list|show`: reviewing a timetable before and while
//! it is in force. None of these needs the daemon: they read the timetable
//! file, the configuration and the gateway's store directly (format:
//! `docs/schedules.md`). This file holds the flags, `check` and where the
//! timetable and the horns come from; `schedule_view` prints `list` and
//! `show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::json;

use super::output::{emit, out, outln};
use super::schedule_view::{list, show};
use crate::base::clock::Clock;
use crate::broadcast::record::Records;
use crate::config::Config;
use crate::store::Store;
use tgw_core::schedule::{HornInfo, Timetable, TimetableError};

/// The zone used when neither the timetable nor a configuration names one.
const DEFAULT_TZ: &str = "Asia/Shanghai";
/// The longest range `check` and `show` expand.
pub(super) const MAX_DAYS: u32 = 366;
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

/// Now, as a timestamp (millisecond precision).
pub(super) fn now(clock: &dyn Clock) -> Timestamp {
    Timestamp::from_millisecond(clock.now_ms()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Runs `tgw schedule …`: exit 2 when the timetable is invalid.
pub(super) fn schedule_cmd(cmd: ScheduleCmd, clock: &dyn Clock) -> anyhow::Result<ExitCode> {
    let now = now(clock);
    match cmd {
        ScheduleCmd::Check(a) => check(a, now),
        ScheduleCmd::List { at, json } => {
            let Some(loaded) = at.load()? else {
                return Ok(ExitCode::from(INVALID));
            };
            list(&loaded, json, now)
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
            show(&loaded, &id, programme, days, json, now)
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

fn check(a: CheckArgs, now: Timestamp) -> anyhow::Result<ExitCode> {
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
    let (from, to) = range(&tt, a.from.as_deref(), a.to.as_deref(), a.days, now)?;
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
    now: Timestamp,
) -> anyhow::Result<(Timestamp, Timestamp)> {
    let tz = tt.time_zone().clone();
    let date = |flag: &str, s: &str| -> anyhow::Result<Date> {
        s.trim()
            .parse::<Date>()
            .map_err(|e| anyhow::anyhow!("{flag} `{s}`: not a date YYYY-MM-DD: {e}"))
    };
    let first = match from {
        Some(s) => date("--from", s)?,
        None => now.to_zoned(tz.clone()).date(),
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
                for m in &g.micro_grids {
                    township
                        .grids
                        .insert(m.code.to_string(), v.code.to_string());
                }
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
pub(super) struct Loaded {
    pub(super) tt: Timetable,
    pub(super) source: String,
    pub(super) horns: Vec<HornInfo>,
    pub(super) horns_note: String,
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
