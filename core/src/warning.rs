//! The early-warning desk (pure): CAP alerts in, broadcast decisions out.
//!
//! Feeds (HTTP polling, MQTT) are read elsewhere; they hand bytes to
//! [`parse_feed`] (a single CAP `<alert>` or an Atom `<feed>`), fetch the
//! linked alerts through [`device_drivers::cap::parse`], and give each alert
//! to [`Desk::handle`] with the SHA-256 of its bytes and `now`. The desk
//! answers with a [`Decision`]: play a [`Plan`], cancel a running broadcast,
//! or ignore with a reason. Nothing here does IO or reads a clock.
//!
//! Rules (`docs/warnings.md` has the operator's version):
//!
//! - An identifier is handled once: the same identifier again is ignored
//!   (idempotent), also when its content differs (reported as such).
//! - `status` must be in `public_statuses` (default only `Actual`). An
//!   `Exercise` or `Test` alert that is not public plays only on
//!   `test_targets`, and only when that list is not empty. `System` and
//!   `Draft` never play.
//! - `msgType` `Ack` and `Error` never play. `Update` and `Cancel` must
//!   reference (sender and identifier) an alert the desk has seen, else they
//!   are ignored naming the reference. An `Update` replaces the broadcast of
//!   the alert it references ([`Plan::replaces`]); if the update no longer
//!   concerns us (expired, urgency `Past`, area left) the running broadcast is
//!   cancelled instead. A `Cancel` stops it. Chains (alert → update → update)
//!   are followed: a reference to any message of a chain reaches the
//!   broadcast currently playing for it.
//! - Of the `info` blocks, those expired (`expires <= now`), with urgency
//!   `Past`, or matching no configured area are dropped. Of the rest the one
//!   in the first preferred language (`languages`) wins, then the most severe.
//! - Area matching, per village ([`AreaMap`]):
//!   - geocodes: administrative codes are normalised first (trailing zero
//!     levels dropped: `320115000000` → `320115`). An alert code covers every
//!     configured code it is a prefix of (county `320115` covers village
//!     `320115106201`). When it covers none, the configured codes that are
//!     prefixes of it compete and the longest wins (an alert for village
//!     `320115106203` reaches the villages configured with `320115106`, or
//!     failing that `320115`). Any `valueName` is accepted.
//!   - polygons and circles against the village `outline`: an approximate,
//!     planar test in latitude/longitude degrees (no antimeridian handling).
//!     Polygons intersect when a vertex of one lies inside the other or two
//!     edges cross; a circle reaches the outline when its centre is inside,
//!     a vertex is within the radius (haversine), or an edge is (local
//!     equirectangular projection). Bounding boxes are compared first.
//! - The text is headline, description, instruction in that order, each
//!   ended with a full stop when it has none, trimmed to `max_text`
//!   characters at the last sentence end (`。！？；!?;`, `.` before a space,
//!   a line break) in the second half of the allowance, else at the last
//!   comma there, else hard.
//! - State (identifiers seen, broadcasts running) survives restarts through
//!   [`Desk::snapshot`] / [`Desk::restore`]; at most [`MAX_REMEMBERED`]
//!   identifiers are kept, oldest forgotten first.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;

use device_drivers::cap::{self, Alert, CapError, Info, MsgType, Severity, Status, Urgency};
use device_drivers::xml::{self, XmlError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::broadcast::{Ms, Priority, Target};

/// Most alert identifiers remembered (oldest forgotten first).
pub const MAX_REMEMBERED: usize = 10_000;
/// Largest feed document: 1 MiB (each embedded alert is still capped at
/// [`cap::MAX_CAP_BYTES`]).
pub const MAX_FEED_BYTES: usize = xml::MAX_XML_BYTES;
/// Most Atom entries read from one feed (the first ones; feeds list newest first).
pub const MAX_FEED_ENTRIES: usize = 200;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The `[warnings]` section: early warnings (CAP) to the horns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarningsConfig {
    /// Whether the desk runs at all. Default: `false`.
    #[serde(default)]
    pub enabled: bool,
    /// HTTP feeds to poll (a CAP alert or an Atom feed of them). Default: none.
    #[serde(default)]
    pub feeds: Vec<Feed>,
    /// MQTT topic on which CAP documents arrive, if any. Default: none.
    #[serde(default)]
    pub mqtt_topic: Option<String>,
    /// Statuses played to the public (`actual`, `exercise`, `test`).
    /// Default: `["actual"]`: drills and tests never reach the public.
    #[serde(default = "default_public_statuses")]
    pub public_statuses: Vec<Status>,
    /// Where `exercise`/`test` alerts that are not public may play instead.
    /// Default: none (they are ignored).
    #[serde(default)]
    pub test_targets: Vec<Target>,
    /// The villages and what alert areas mean them. Default: none (nothing matches).
    #[serde(default)]
    pub areas: Vec<AreaMap>,
    /// CAP severity → broadcast priority. Default: extreme and severe →
    /// `emergency`, moderate → `superior`, minor and unknown → `township`.
    #[serde(default)]
    pub severity_map: SeverityMap,
    /// Times each warning is played (1-10). Default: `3`.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Seconds between repeats (1-3600). Default: `60`.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// Play the alert chime before the text. Default: `true`.
    #[serde(default = "default_true")]
    pub chime: bool,
    /// Most characters of text sent to TTS (20-10000). Default: `600`.
    #[serde(default = "default_max_text")]
    pub max_text: usize,
    /// Preferred `info` languages, prefix-matched in order (`zh` matches
    /// `zh-CN`). Default: `["zh"]`.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
}

/// One polled feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feed {
    /// `http://` or `https://` URL. Required.
    pub url: String,
    /// Seconds between polls (10-86400). Default: `60`.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

/// One village and the alert areas that mean it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaMap {
    /// The village's administrative code. Required.
    pub village: String,
    /// Where its warnings play. Default: `["village:<village>"]`.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Geocodes that mean this village, e.g. `320115` (the county: every
    /// county-wide alert), `320115106` (its township), `320115106201` (itself).
    /// Default: none.
    #[serde(default)]
    pub geocodes: Vec<String>,
    /// The village outline as `[[lat, lon], …]` (closed implicitly), for
    /// polygon and circle alerts. Default: none.
    #[serde(default)]
    pub outline: Option<Vec<(f64, f64)>>,
}

impl AreaMap {
    /// The configured targets, or `village:<village>` when none are.
    pub fn effective_targets(&self) -> Vec<Target> {
        if self.targets.is_empty() {
            vec![Target::Village(self.village.clone())]
        } else {
            self.targets.clone()
        }
    }
}

/// CAP severity → broadcast priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMap {
    /// Default: `emergency`.
    #[serde(default = "p_emergency")]
    pub extreme: Priority,
    /// Default: `emergency`.
    #[serde(default = "p_emergency")]
    pub severe: Priority,
    /// Default: `superior`.
    #[serde(default = "p_superior")]
    pub moderate: Priority,
    /// Default: `township`.
    #[serde(default = "p_township")]
    pub minor: Priority,
    /// Default: `township`.
    #[serde(default = "p_township")]
    pub unknown: Priority,
}

impl SeverityMap {
    /// The priority for a severity.
    pub fn priority(&self, s: Severity) -> Priority {
        match s {
            Severity::Extreme => self.extreme,
            Severity::Severe => self.severe,
            Severity::Moderate => self.moderate,
            Severity::Minor => self.minor,
            Severity::Unknown => self.unknown,
        }
    }
}

impl Default for SeverityMap {
    fn default() -> Self {
        SeverityMap {
            extreme: Priority::Emergency,
            severe: Priority::Emergency,
            moderate: Priority::Superior,
            minor: Priority::Township,
            unknown: Priority::Township,
        }
    }
}

fn p_emergency() -> Priority {
    Priority::Emergency
}
fn p_superior() -> Priority {
    Priority::Superior
}
fn p_township() -> Priority {
    Priority::Township
}
fn default_public_statuses() -> Vec<Status> {
    vec![Status::Actual]
}
fn default_repeat() -> u32 {
    3
}
fn default_interval() -> u64 {
    60
}
fn default_true() -> bool {
    true
}
fn default_max_text() -> usize {
    600
}
fn default_languages() -> Vec<String> {
    vec!["zh".to_string()]
}

impl Default for WarningsConfig {
    fn default() -> Self {
        WarningsConfig {
            enabled: false,
            feeds: Vec::new(),
            mqtt_topic: None,
            public_statuses: default_public_statuses(),
            test_targets: Vec::new(),
            areas: Vec::new(),
            severity_map: SeverityMap::default(),
            repeat: default_repeat(),
            interval_secs: default_interval(),
            chime: true,
            max_text: default_max_text(),
            languages: default_languages(),
        }
    }
}

impl WarningsConfig {
    /// Checks values serde cannot; errors name the key under `warnings.`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, f) in self.feeds.iter().enumerate() {
            let ok = url::Url::parse(&f.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(format!(
                    "warnings.feeds[{i}].url: `{}` is not an http(s) URL",
                    f.url
                ));
            }
            // The gateway's HTTP client is built without TLS (it talks to
            // cameras); a county feed over TLS comes in over MQTT (mqtts).
            if f.url.starts_with("https:") {
                return Err(format!(
                    "warnings.feeds[{i}].url: `{}`: https feeds are not supported yet; use http on the county network or the MQTT topic (mqtts)",
                    f.url
                ));
            }
            if !(10..=86_400).contains(&f.interval_secs) {
                return Err(format!(
                    "warnings.feeds[{i}].interval_secs: must be 10-86400"
                ));
            }
        }
        if self
            .mqtt_topic
            .as_ref()
            .is_some_and(|t| t.trim().is_empty() || t.len() > 256)
        {
            return Err("warnings.mqtt_topic: must be 1-256 characters".into());
        }
        if let Some(s) = self
            .public_statuses
            .iter()
            .find(|s| matches!(s, Status::System | Status::Draft))
        {
            return Err(format!(
                "warnings.public_statuses: `{}` alerts are never played; use actual, exercise or test",
                s.as_str().to_lowercase()
            ));
        }
        if !(1..=10).contains(&self.repeat) {
            return Err("warnings.repeat: must be 1-10".into());
        }
        if !(1..=3600).contains(&self.interval_secs) {
            return Err("warnings.interval_secs: must be 1-3600".into());
        }
        if !(20..=10_000).contains(&self.max_text) {
            return Err("warnings.max_text: must be 20-10000".into());
        }
        let mut villages = BTreeSet::new();
        for (i, a) in self.areas.iter().enumerate() {
            let k = format!("warnings.areas[{i}]");
            if a.village.trim().is_empty() {
                return Err(format!("{k}.village: must not be empty"));
            }
            if !villages.insert(a.village.as_str()) {
                return Err(format!("{k}.village: `{}` is listed twice", a.village));
            }
            if let Some(g) = a
                .geocodes
                .iter()
                .find(|g| g.trim().len() < 2 || g.chars().any(char::is_whitespace))
            {
                return Err(format!(
                    "{k}.geocodes: `{g}` must be at least 2 characters without spaces"
                ));
            }
            if let Some(o) = &a.outline {
                if o.len() < 3 || o.len() > 10_000 {
                    return Err(format!("{k}.outline: needs 3-10000 [lat, lon] points"));
                }
                if let Some(p) = o.iter().find(|(lat, lon)| {
                    !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lon)
                }) {
                    return Err(format!(
                        "{k}.outline: [{}, {}] is not a [lat, lon] point",
                        p.0, p.1
                    ));
                }
            }
            if a.geocodes.is_empty() && a.outline.is_none() {
                return Err(format!(
                    "{k}: give geocodes or an outline, or no alert can ever match village `{}`",
                    a.village
                ));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------

/// What to play for an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The CAP identifier.
    pub alert_id: String,
    /// Stable broadcast id derived from the identifier ([`broadcast_id`]).
    pub broadcast_id: String,
    /// From the severity map.
    pub priority: Priority,
    /// Where: the matched villages' targets, or `test_targets` for a
    /// non-public exercise/test.
    pub targets: Vec<Target>,
    /// Headline, description, instruction; at most `max_text` characters.
    pub text: String,
    /// Times to play.
    pub repeat: u32,
    /// Between repeats, in ms.
    pub interval_ms: Ms,
    /// Chime first.
    pub chime: bool,
    /// Stop (and never start) at or after this instant, when the alert says.
    pub expires: Option<Ms>,
    /// Broadcast id to stop first (with its repeats): the one this update replaces.
    pub replaces: Option<String>,
    /// The event (`暴雨`), for displays.
    pub event: String,
    /// The chosen info's severity.
    pub severity: Severity,
    /// The alert's status (an `Exercise` may play on test targets).
    pub status: Status,
}

/// The desk's answer to one alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Play this (stopping `replaces` first).
    Play(Plan),
    /// Stop a running broadcast.
    Cancel {
        /// The identifier of the alert that cancels.
        alert_id: String,
        /// The broadcast to stop (with its repeats).
        broadcast_id: String,
        /// Why, for logs and the dashboard.
        reason: String,
    },
    /// Nothing to do.
    Ignore {
        /// Why, for logs and the dashboard.
        reason: String,
    },
}

fn ignore(reason: impl Into<String>) -> Decision {
    Decision::Ignore {
        reason: reason.into(),
    }
}

/// The broadcast id of an alert: `cap-` and the first 16 hex digits of the
/// SHA-256 of its identifier. Stable across restarts and gateways.
pub fn broadcast_id(identifier: &str) -> String {
    let h = Sha256::digest(identifier.as_bytes());
    format!("cap-{}", hex::encode(&h[..8]))
}

/// SHA-256 of a document's bytes, as [`Desk::handle`] wants it.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Milliseconds since the epoch of a CAP time.
pub fn to_ms(t: OffsetDateTime) -> Ms {
    (t.unix_timestamp_nanos() / 1_000_000) as Ms
}

// ---------------------------------------------------------------------------
// The desk
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    identifier: String,
    sender: String,
    /// Hex SHA-256 of the document.
    sha256: String,
    /// Identifier of the first alert of its chain (itself for an `Alert`).
    thread: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Active {
    thread: String,
    identifier: String,
    broadcast_id: String,
    status: Status,
    expires: Option<Ms>,
}

/// The desk's state for saving across restarts (opaque; serde).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskSnapshot {
    version: u32,
    seen: Vec<Seen>,
    active: Vec<Active>,
}

/// A running broadcast the desk knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// The alert it plays (the latest update of its chain).
    pub alert_id: String,
    /// Its broadcast id.
    pub broadcast_id: String,
    /// When it expires, if it does.
    pub expires: Option<Ms>,
}

/// Configured codes, normalised, with the index of their village.
#[derive(Debug, Clone)]
struct CodeIndex(Vec<(String, usize)>);

/// The early-warning desk: remembers alerts and decides what each means.
#[derive(Debug, Clone)]
pub struct Desk {
    cfg: WarningsConfig,
    codes: CodeIndex,
    seen: HashMap<String, Seen>,
    order: VecDeque<String>,
    /// Running broadcasts by thread.
    active: HashMap<String, Active>,
    max_remembered: usize,
}

impl Desk {
    /// A desk with no memory.
    pub fn new(cfg: WarningsConfig) -> Desk {
        let codes = CodeIndex(
            cfg.areas
                .iter()
                .enumerate()
                .flat_map(|(i, a)| a.geocodes.iter().map(move |g| (normalize_code(g), i)))
                .filter(|(g, _)| !g.is_empty())
                .collect(),
        );
        Desk {
            cfg,
            codes,
            seen: HashMap::new(),
            order: VecDeque::new(),
            active: HashMap::new(),
            max_remembered: MAX_REMEMBERED,
        }
    }

    /// A desk with the memory of `snapshot` (from [`Desk::snapshot`]).
    pub fn restore(cfg: WarningsConfig, snapshot: DeskSnapshot) -> Result<Desk, String> {
        if snapshot.version != 1 {
            return Err(format!(
                "warning desk snapshot version {} is not 1",
                snapshot.version
            ));
        }
        let mut d = Desk::new(cfg);
        for s in snapshot.seen {
            d.remember(s);
        }
        for a in snapshot.active {
            d.active.insert(a.thread.clone(), a);
        }
        Ok(d)
    }

    /// The memory, for saving.
    pub fn snapshot(&self) -> DeskSnapshot {
        let mut active: Vec<Active> = self.active.values().cloned().collect();
        active.sort_by(|a, b| a.thread.cmp(&b.thread));
        DeskSnapshot {
            version: 1,
            seen: self
                .order
                .iter()
                .filter_map(|id| self.seen.get(id).cloned())
                .collect(),
            active,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &WarningsConfig {
        &self.cfg
    }

    /// Broadcasts the desk believes are running (not cancelled, not expired at `now`).
    pub fn running(&self, now: Ms) -> Vec<Running> {
        let mut out: Vec<Running> = self
            .active
            .values()
            .filter(|a| a.expires.is_none_or(|e| e > now))
            .map(|a| Running {
                alert_id: a.identifier.clone(),
                broadcast_id: a.broadcast_id.clone(),
                expires: a.expires,
            })
            .collect();
        out.sort_by(|a, b| a.broadcast_id.cmp(&b.broadcast_id));
        out
    }

    /// Whether this identifier has been handled (and is still remembered).
    pub fn has_seen(&self, identifier: &str) -> bool {
        self.seen.contains_key(identifier)
    }

    fn remember(&mut self, s: Seen) {
        if self.seen.insert(s.identifier.clone(), s.clone()).is_none() {
            self.order.push_back(s.identifier);
        }
        while self.order.len() > self.max_remembered {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Decides what `alert` (whose document hashed to `raw_sha256`) means at `now`.
    pub fn handle(&mut self, alert: &Alert, raw_sha256: [u8; 32], now: Ms) -> Decision {
        self.active.retain(|_, a| a.expires.is_none_or(|e| e > now));
        let id = &alert.identifier;
        let hash = hex::encode(raw_sha256);
        if let Some(s) = self.seen.get(id) {
            return if s.sha256 == hash {
                ignore(format!("duplicate: alert {id} was already handled"))
            } else {
                ignore(format!(
                    "alert {id} was already handled with different content; the identifier is not reused"
                ))
            };
        }
        // The chain this alert belongs to: that of the last reference we know.
        let known = alert.references.iter().rev().find_map(|r| {
            self.seen
                .get(&r.identifier)
                .filter(|s| s.sender == r.sender)
                .map(|s| s.thread.clone())
        });
        let thread = match (alert.msg_type, &known) {
            (MsgType::Update | MsgType::Cancel, Some(t)) => t.clone(),
            _ => id.clone(),
        };
        self.remember(Seen {
            identifier: id.clone(),
            sender: alert.sender.clone(),
            sha256: hash,
            thread: thread.clone(),
        });

        match alert.msg_type {
            MsgType::Ack | MsgType::Error => {
                return ignore(format!("msgType {} is not played", alert.msg_type));
            }
            MsgType::Update | MsgType::Cancel if known.is_none() => {
                return match alert.references.first() {
                    None => ignore(format!("{} {id} has no references", alert.msg_type)),
                    Some(r) => ignore(format!(
                        "{} {id} references unknown alert {},{}",
                        alert.msg_type, r.sender, r.identifier
                    )),
                };
            }
            _ => {}
        }

        let running = self.active.get(&thread).cloned();
        if let Some(r) = running
            .as_ref()
            .filter(|r| alert.msg_type != MsgType::Alert && r.status != alert.status)
        {
            return ignore(format!(
                "{} {id} has status {} but the broadcast it refers to was {}",
                alert.msg_type, alert.status, r.status
            ));
        }
        if alert.msg_type == MsgType::Cancel {
            return match running {
                Some(r) => {
                    self.active.remove(&thread);
                    Decision::Cancel {
                        alert_id: id.clone(),
                        broadcast_id: r.broadcast_id,
                        reason: format!("cancelled by {id} ({})", r.identifier),
                    }
                }
                None => ignore(format!(
                    "Cancel {id}: nothing is playing for the alert it references"
                )),
            };
        }

        match self.evaluate(alert, now) {
            Ok(mut plan) => {
                plan.replaces = running.map(|r| r.broadcast_id);
                self.active.insert(
                    thread.clone(),
                    Active {
                        thread,
                        identifier: id.clone(),
                        broadcast_id: plan.broadcast_id.clone(),
                        status: alert.status,
                        expires: plan.expires,
                    },
                );
                Decision::Play(plan)
            }
            Err(why) => match running {
                Some(r) if alert.msg_type == MsgType::Update => {
                    self.active.remove(&thread);
                    Decision::Cancel {
                        alert_id: id.clone(),
                        broadcast_id: r.broadcast_id,
                        reason: format!("update {id}: {why}"),
                    }
                }
                _ => ignore(why),
            },
        }
    }

    /// Whether and how an Alert or Update plays; `Err` is the reason not to.
    fn evaluate(&self, alert: &Alert, now: Ms) -> Result<Plan, String> {
        let public = self.cfg.public_statuses.contains(&alert.status)
            && !matches!(alert.status, Status::System | Status::Draft);
        let test_only = !public
            && matches!(alert.status, Status::Exercise | Status::Test)
            && !self.cfg.test_targets.is_empty();
        if !public && !test_only {
            return Err(match alert.status {
                Status::System | Status::Draft => {
                    format!("status {} is never played", alert.status)
                }
                s => format!("status {s} is not public and no test_targets are configured"),
            });
        }
        if alert.infos.is_empty() {
            return Err("the alert has no <info>".into());
        }
        let live: Vec<&Info> = alert
            .infos
            .iter()
            .filter(|i| i.expires.is_none_or(|e| to_ms(e) > now))
            .collect();
        if live.is_empty() {
            let last = alert.infos.iter().filter_map(|i| i.expires).max();
            return Err(match last {
                Some(e) => format!(
                    "expired at {}",
                    e.format(&Rfc3339).unwrap_or_else(|_| e.to_string())
                ),
                None => "expired".into(),
            });
        }
        let current: Vec<&Info> = live
            .into_iter()
            .filter(|i| i.urgency != Urgency::Past)
            .collect();
        if current.is_empty() {
            return Err("urgency Past: no longer requires action".into());
        }
        let matched: Vec<(&Info, Vec<usize>)> = current
            .into_iter()
            .map(|i| (i, self.villages_for(i)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        if matched.is_empty() {
            return Err("no matching area: no configured village is in the alert's areas".into());
        }
        let lang_rank = |i: &Info| {
            self.cfg
                .languages
                .iter()
                .position(|l| {
                    i.language
                        .to_ascii_lowercase()
                        .starts_with(&l.to_ascii_lowercase())
                })
                .unwrap_or(usize::MAX)
        };
        // Severity's order is Extreme first, so the minimum is the most severe.
        let Some((info, villages)) = matched
            .iter()
            .min_by_key(|(i, _)| (lang_rank(i), i.severity))
        else {
            return Err("no matching area".into());
        };
        let targets = if public {
            let mut t: Vec<Target> = Vec::new();
            for v in villages {
                for x in self.cfg.areas[*v].effective_targets() {
                    if !t.contains(&x) {
                        t.push(x);
                    }
                }
            }
            t
        } else {
            self.cfg.test_targets.clone()
        };
        Ok(Plan {
            alert_id: alert.identifier.clone(),
            broadcast_id: broadcast_id(&alert.identifier),
            priority: self.cfg.severity_map.priority(info.severity),
            targets,
            text: compose_text(info, self.cfg.max_text),
            repeat: self.cfg.repeat,
            interval_ms: (self.cfg.interval_secs as Ms).saturating_mul(1000),
            chime: self.cfg.chime,
            expires: info.expires.map(to_ms),
            replaces: None,
            event: info.event.clone(),
            severity: info.severity,
            status: alert.status,
        })
    }

    /// Indices of the configured villages an info's areas reach, in config order.
    fn villages_for(&self, info: &Info) -> Vec<usize> {
        let mut hit = BTreeSet::new();
        for area in &info.areas {
            for (_, value) in &area.geocodes {
                hit.extend(self.codes.matching(value));
            }
            for (i, a) in self.cfg.areas.iter().enumerate() {
                let Some(outline) = a.outline.as_deref().filter(|o| o.len() >= 3) else {
                    continue;
                };
                if hit.contains(&i) {
                    continue;
                }
                let poly_hit = area.polygons.iter().any(|p| polygons_intersect(p, outline));
                let circle_hit = area
                    .circles
                    .iter()
                    .any(|&(c, r)| circle_reaches(c, r, outline));
                if poly_hit || circle_hit {
                    hit.insert(i);
                }
            }
        }
        hit.into_iter().collect()
    }
}

impl CodeIndex {
    /// Villages an alert geocode reaches: those with a code it covers, or
    /// failing that those with the longest code covering it.
    fn matching(&self, value: &str) -> Vec<usize> {
        let g = normalize_code(value);
        if g.len() < 2 {
            return Vec::new();
        }
        let covered: Vec<usize> = self
            .0
            .iter()
            .filter(|(c, _)| c.starts_with(&g))
            .map(|(_, v)| *v)
            .collect();
        if !covered.is_empty() {
            return covered;
        }
        let best = self
            .0
            .iter()
            .filter(|(c, _)| g.starts_with(c.as_str()))
            .map(|(c, _)| c.len())
            .max();
        match best {
            Some(len) => self
                .0
                .iter()
                .filter(|(c, _)| c.len() == len && g.starts_with(c.as_str()))
                .map(|(_, v)| *v)
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Drops trailing all-zero levels of a Chinese administrative division code
/// (levels of 2, 2, 2, 3, 3 digits): `320115000000` → `320115`,
/// `320100` → `3201`. Other codes are only trimmed.
pub fn normalize_code(code: &str) -> String {
    let mut s = code.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    loop {
        s = match s.len() {
            12 | 9 if s.ends_with("000") => &s[..s.len() - 3],
            6 | 4 if s.ends_with("00") => &s[..s.len() - 2],
            _ => break,
        };
    }
    s.to_string()
}

// ---------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------

fn is_cjk(c: char) -> bool {
    c as u32 >= 0x2E80
}

fn ends_sentence(c: char) -> bool {
    matches!(
        c,
        '。' | '！' | '？' | '；' | '!' | '?' | ';' | '\n' | '.' | '…'
    )
}

/// Headline, description and instruction, each ended with a full stop,
/// trimmed to `max` characters on a sentence boundary (see the module docs).
pub fn compose_text(info: &Info, max: usize) -> String {
    let mut text = String::new();
    let parts = [&info.headline, &info.description, &info.instruction];
    for p in parts.into_iter().flatten() {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(p);
        match p.chars().last() {
            Some(c) if ends_sentence(c) => {}
            Some(c) if is_cjk(c) => text.push('。'),
            _ => text.push('.'),
        }
    }
    if text.is_empty() {
        text = info.event.trim().to_string();
    }
    trim_to_sentence(&text, max)
}

/// Cuts `text` to at most `max` characters at a sentence end in the second
/// half of the allowance, else at a comma there, else hard.
pub fn trim_to_sentence(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    let half = max / 2;
    let boundary = |pred: &dyn Fn(usize) -> bool| (half..max).rev().find(|&i| pred(i));
    let sentence = |i: usize| {
        let c = chars[i];
        // `.` ends a sentence only before whitespace and not after a digit
        // (not in `3.5`, nor a list number `1. `).
        ends_sentence(c)
            && (c != '.'
                || (chars.get(i + 1).is_some_and(|n| n.is_whitespace())
                    && i > 0
                    && !chars[i - 1].is_ascii_digit()))
    };
    let comma = |i: usize| matches!(chars[i], '，' | ',' | '、');
    let end = boundary(&sentence)
        .or_else(|| boundary(&comma))
        .map_or(max, |i| i + 1);
    chars[..end]
        .iter()
        .collect::<String>()
        .trim_end()
        .to_string()
}

// ---------------------------------------------------------------------------
// Geometry (approximate, planar in degrees; see the module docs)
// ---------------------------------------------------------------------------

type Pt = (f64, f64);

fn bbox(p: &[Pt]) -> (f64, f64, f64, f64) {
    p.iter().fold(
        (f64::MAX, f64::MAX, f64::MIN, f64::MIN),
        |(a, b, c, d), &(lat, lon)| (a.min(lat), b.min(lon), c.max(lat), d.max(lon)),
    )
}

/// Ray casting; `poly` may or may not repeat its first point.
fn point_in_polygon((y, x): Pt, poly: &[Pt]) -> bool {
    let mut inside = false;
    let n = poly.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (yi, xi) = poly[i];
        let (yj, xj) = poly[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn edges(p: &[Pt]) -> impl Iterator<Item = (Pt, Pt)> + '_ {
    (0..p.len()).map(move |i| (p[i], p[(i + 1) % p.len()]))
}

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

fn segments_cross(a: Pt, b: Pt, c: Pt, d: Pt) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    ((d1 > 0.0) != (d2 > 0.0)) && ((d3 > 0.0) != (d4 > 0.0)) && d1 != 0.0 && d3 != 0.0
}

/// Whether two polygons overlap (approximate, see the module docs).
pub fn polygons_intersect(a: &[Pt], b: &[Pt]) -> bool {
    if a.len() < 3 || b.len() < 3 {
        return false;
    }
    let (a0, a1, a2, a3) = bbox(a);
    let (b0, b1, b2, b3) = bbox(b);
    if a2 < b0 || b2 < a0 || a3 < b1 || b3 < a1 {
        return false;
    }
    a.iter().any(|&p| point_in_polygon(p, b))
        || b.iter().any(|&p| point_in_polygon(p, a))
        || edges(a).any(|(p, q)| edges(b).any(|(r, s)| segments_cross(p, q, r, s)))
}

/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0088;

/// Great-circle distance in km.
pub fn haversine_km((lat1, lon1): Pt, (lat2, lon2): Pt) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// Whether a circle reaches a polygon (approximate, see the module docs).
pub fn circle_reaches(centre: Pt, radius_km: f64, outline: &[Pt]) -> bool {
    if outline.len() < 3 {
        return false;
    }
    if point_in_polygon(centre, outline) {
        return true;
    }
    if outline
        .iter()
        .any(|&p| haversine_km(centre, p) <= radius_km)
    {
        return true;
    }
    // Edges in a local equirectangular projection around the centre, in km.
    let k = EARTH_KM.to_radians();
    let cos = centre.0.to_radians().cos();
    let xy = |(lat, lon): Pt| ((lon - centre.1) * cos * k, (lat - centre.0) * k);
    edges(outline).any(|(p, q)| {
        let ((x1, y1), (x2, y2)) = (xy(p), xy(q));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (-(x1 * dx + y1 * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (x, y) = (x1 + t * dx, y1 + t * dy);
        (x * x + y * y).sqrt() <= radius_km
    })
}

// ---------------------------------------------------------------------------
// Feeds
// ---------------------------------------------------------------------------

/// One thing a polled feed yields.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEntry {
    /// An alert carried in the feed (or the feed was one alert).
    Alert {
        /// The parsed alert.
        alert: Box<Alert>,
        /// SHA-256 of its source text, for [`Desk::handle`].
        sha256: [u8; 32],
    },
    /// An Atom entry linking to an alert to fetch.
    Link {
        /// The entry's `<id>`, if any.
        entry_id: Option<String>,
        /// Absolute `http(s)` URL of the CAP document.
        url: String,
    },
    /// An Atom entry that could not be used (the others still are).
    Invalid {
        /// The entry's `<id>`, if any.
        entry_id: Option<String>,
        /// Why.
        reason: String,
    },
}

/// Why a polled document yields nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Refused by the XML reader (size, DTD, malformed…).
    #[error("feed: {0}")]
    Xml(#[from] XmlError),
    /// The document is a single alert that is not valid CAP.
    #[error("{0}")]
    Cap(#[from] CapError),
    /// Neither `<alert>` nor an Atom `<feed>`.
    #[error("feed: root element <{0}> is neither a CAP <alert> nor an Atom <feed>")]
    NotAFeed(String),
}

/// Reads a polled document: one CAP `<alert>`, or an Atom `<feed>` whose
/// entries embed an alert in `<content>` (as XML, or as escaped text) or
/// link to one (`<link href>`, preferring `type="application/cap+xml"`).
/// Only the first [`MAX_FEED_ENTRIES`] entries are read.
pub fn parse_feed(bytes: &[u8]) -> Result<Vec<FeedEntry>, FeedError> {
    let text = xml::check(bytes, MAX_FEED_BYTES)?;
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    match xml::local(root) {
        "alert" => {
            let alert = cap::from_node(root)?;
            Ok(vec![FeedEntry::Alert {
                alert: Box::new(alert),
                sha256: sha256(bytes),
            }])
        }
        "feed" => Ok(xml::children(root, "entry")
            .take(MAX_FEED_ENTRIES)
            .map(|e| {
                let entry_id = xml::child(e, "id").and_then(xml::text);
                let invalid = |reason: String| FeedEntry::Invalid {
                    entry_id: entry_id.clone(),
                    reason,
                };
                if let Some(content) = xml::child(e, "content") {
                    if let Some(a) = xml::child(content, "alert") {
                        let src = &text[a.range()];
                        return match cap::from_node(a) {
                            Ok(alert) => FeedEntry::Alert {
                                alert: Box::new(alert),
                                sha256: sha256(src.as_bytes()),
                            },
                            Err(err) => invalid(err.to_string()),
                        };
                    }
                    if let Some(t) = xml::text(content).filter(|t| t.starts_with('<')) {
                        return match cap::parse(t.as_bytes()) {
                            Ok(alert) => FeedEntry::Alert {
                                alert: Box::new(alert),
                                sha256: sha256(t.as_bytes()),
                            },
                            Err(err) => invalid(err.to_string()),
                        };
                    }
                }
                let links: Vec<_> = xml::children(e, "link")
                    .filter(|l| xml::attr(*l, "href").is_some())
                    .collect();
                let link = links
                    .iter()
                    .find(|l| xml::attr(**l, "type").is_some_and(|t| t.contains("cap+xml")))
                    .or_else(|| {
                        links
                            .iter()
                            .find(|l| xml::attr(**l, "rel").is_none_or(|r| r == "alternate"))
                    })
                    .or(links.first());
                let Some(href) = link.and_then(|l| xml::attr(*l, "href")) else {
                    return invalid(
                        "entry has neither an embedded <alert> nor a <link href>".into(),
                    );
                };
                let href = href.trim();
                let ok = url::Url::parse(href)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if ok {
                    FeedEntry::Link {
                        entry_id,
                        url: href.to_string(),
                    }
                } else {
                    let shown: String = href.chars().take(64).collect();
                    invalid(format!("link `{shown}` is not an absolute http(s) URL"))
                }
            })
            .collect()),
        other => Err(FeedError::NotAFeed(other.chars().take(64).collect())),
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Play(p) => write!(
                f,
                "play {} ({}) at {} on {} target(s){}",
                p.broadcast_id,
                p.alert_id,
                p.priority,
                p.targets.len(),
                p.replaces
                    .as_deref()
                    .map(|r| format!(", replacing {r}"))
                    .unwrap_or_default()
            ),
            Decision::Cancel {
                broadcast_id,
                reason,
                ..
            } => write!(f, "cancel {broadcast_id}: {reason}"),
            Decision::Ignore { reason } => write!(f, "ignore: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORANGE: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_orange_alert.xml");
    const RED: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_red_update.xml");
    const CANCEL: &[u8] = include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_cancel.xml");
    const DRILL: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_flood_drill_exercise.xml");
    const HEAT: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_heat_yellow_expired.xml");
    const BOMB: &[u8] = include_bytes!("../../tests/fixtures/cap/hostile_billion_laughs.xml");

    /// Milliseconds of a `+08:00` wall time on 2026-07-DD.
    fn at(day: u8, hour: u8, min: u8) -> Ms {
        let t = OffsetDateTime::parse(
            &format!("2026-07-{day:02}T{hour:02}:{min:02}:00+08:00"),
            &Rfc3339,
        )
        .unwrap();
        to_ms(t)
    }

    /// 石塘村 (inside the rainstorm polygon and the drill circle), 西岗社区
    /// (county code only), and a village of another county far north.
    fn cfg() -> WarningsConfig {
        toml::from_str(
            r#"
            enabled = true
            [[areas]]
            village = "320115106201"
            geocodes = ["320115", "320115106201"]
            outline = [[31.730, 118.790], [31.740, 118.790], [31.740, 118.800], [31.730, 118.800]]
            [[areas]]
            village = "320115106202"
            targets = ["zone:xigang", "speaker:xg-1"]
            geocodes = ["320115106202"]
            [[areas]]
            village = "320116101201"
            geocodes = ["320116101201"]
            outline = [[32.30, 118.80], [32.31, 118.80], [32.31, 118.81], [32.30, 118.81]]
            "#,
        )
        .unwrap()
    }

    fn alert(b: &[u8]) -> Alert {
        cap::parse(b).unwrap()
    }

    fn handle(d: &mut Desk, b: &[u8], now: Ms) -> Decision {
        d.handle(&alert(b), sha256(b), now)
    }

    fn plan(d: Decision) -> Plan {
        match d {
            Decision::Play(p) => p,
            other => panic!("expected Play, got {other:?}"),
        }
    }

    fn reason(d: Decision) -> String {
        match d {
            Decision::Ignore { reason } => reason,
            other => panic!("expected Ignore, got {other:?}"),
        }
    }

    /// Edits a fixture's text (replace first occurrence).
    fn edit(b: &[u8], from: &str, to: &str) -> Vec<u8> {
        let s = std::str::from_utf8(b).unwrap();
        assert!(s.contains(from), "fixture lacks {from}");
        s.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn config_defaults_and_strictness() {
        let c: WarningsConfig = toml::from_str("").unwrap();
        assert_eq!(c, WarningsConfig::default());
        assert!(!c.enabled);
        assert_eq!(c.public_statuses, vec![Status::Actual]);
        assert!(c.test_targets.is_empty());
        assert_eq!(
            (c.repeat, c.interval_secs, c.chime, c.max_text),
            (3, 60, true, 600)
        );
        assert_eq!(
            c.severity_map.priority(Severity::Extreme),
            Priority::Emergency
        );
        assert_eq!(
            c.severity_map.priority(Severity::Severe),
            Priority::Emergency
        );
        assert_eq!(
            c.severity_map.priority(Severity::Moderate),
            Priority::Superior
        );
        assert_eq!(c.severity_map.priority(Severity::Minor), Priority::Township);
        assert_eq!(
            c.severity_map.priority(Severity::Unknown),
            Priority::Township
        );
        assert!(c.validate().is_ok());
        let e = toml::from_str::<WarningsConfig>("enabeld = true").unwrap_err();
        assert!(e.to_string().contains("enabeld"), "{e}");
        let c: WarningsConfig = toml::from_str(
            r#"
            public_statuses = ["actual", "exercise"]
            test_targets = ["speaker:test-horn"]
            mqtt_topic = "county/320115/cap"
            [severity_map]
            moderate = "township"
            [[feeds]]
            url = "http://warn.example.cn/cap/atom.xml"
            "#,
        )
        .unwrap();
        assert_eq!(c.feeds[0].interval_secs, 60);
        assert_eq!(c.severity_map.moderate, Priority::Township);
        assert_eq!(c.severity_map.severe, Priority::Emergency);
        assert!(c.validate().is_ok());
        let mut tls = c.clone();
        tls.feeds[0].url = "https://warn.example.cn/cap/atom.xml".into();
        assert!(
            tls.validate()
                .unwrap_err()
                .contains("https feeds are not supported")
        );
        assert!(cfg().validate().is_ok());
    }

    #[test]
    fn config_validation_names_the_key() {
        let bad = |src: &str| {
            toml::from_str::<WarningsConfig>(src)
                .unwrap()
                .validate()
                .unwrap_err()
        };
        assert!(bad("public_statuses = [\"draft\"]").starts_with("warnings.public_statuses"));
        assert!(bad("repeat = 0").starts_with("warnings.repeat"));
        assert!(bad("max_text = 5").starts_with("warnings.max_text"));
        assert!(bad("[[feeds]]\nurl = \"ftp://x\"").starts_with("warnings.feeds[0].url"));
        assert!(bad("[[areas]]\nvillage = \"1\"").contains("geocodes or an outline"));
        assert!(
            bad("[[areas]]\nvillage = \"1\"\noutline = [[91.0, 1.0], [1.0, 1.0], [2.0, 2.0]]")
                .starts_with("warnings.areas[0].outline")
        );
        assert!(
            bad("[[areas]]\nvillage = \"1\"\ngeocodes = [\"3\"]")
                .starts_with("warnings.areas[0].geocodes")
        );
    }

    /// The orange warning plays at emergency priority on the villages of
    /// the county it names, not on the other county's.
    #[test]
    fn orange_alert_plays_on_matching_villages() {
        let mut d = Desk::new(cfg());
        let p = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        assert_eq!(p.alert_id, "32011541600000_20260715083000");
        assert_eq!(
            p.broadcast_id,
            broadcast_id("32011541600000_20260715083000")
        );
        assert!(p.broadcast_id.starts_with("cap-") && p.broadcast_id.len() == 20);
        assert_eq!(p.priority, Priority::Emergency);
        assert_eq!(
            p.targets,
            vec![
                Target::Village("320115106201".into()),
                Target::Zone("xigang".into()),
                Target::Speaker("xg-1".into()),
            ]
        );
        assert!(
            p.text
                .starts_with("江宁区气象台发布暴雨橙色预警。\n江宁区气象台2026年")
        );
        assert!(p.text.chars().count() <= 600);
        assert!(p.text.contains("泥石流等灾害。"), "{}", p.text);
        assert_eq!((p.repeat, p.interval_ms, p.chime), (3, 60_000, true));
        assert_eq!(p.expires, Some(at(15, 20, 30)));
        assert_eq!(p.replaces, None);
        assert_eq!(
            (p.event.as_str(), p.severity, p.status),
            ("暴雨", Severity::Severe, Status::Actual)
        );
        assert_eq!(d.running(at(15, 9, 0)).len(), 1);
    }

    /// The same document again, or the same identifier with other content:
    /// ignored, nothing replayed.
    #[test]
    fn duplicates_are_idempotent() {
        let mut d = Desk::new(cfg());
        plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        assert!(reason(handle(&mut d, ORANGE, at(15, 9, 1))).starts_with("duplicate"));
        let changed = edit(ORANGE, "橙色预警</headline>", "橙色预警!</headline>");
        assert!(reason(handle(&mut d, &changed, at(15, 9, 2))).contains("different content"));
    }

    /// Update → replaces the orange broadcast; Cancel → stops the red one.
    #[test]
    fn update_replaces_and_cancel_stops() {
        let mut d = Desk::new(cfg());
        let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        let red = plan(handle(&mut d, RED, at(15, 11, 1)));
        assert_eq!(red.replaces.as_deref(), Some(orange.broadcast_id.as_str()));
        assert_eq!(red.priority, Priority::Emergency);
        assert!(
            red.text
                .starts_with("江宁区气象台将暴雨橙色预警升级为暴雨红色预警")
        );
        assert_eq!(d.running(at(15, 11, 1)).len(), 1);
        match handle(&mut d, CANCEL, at(15, 18, 0)) {
            Decision::Cancel {
                alert_id,
                broadcast_id,
                reason,
            } => {
                assert_eq!(alert_id, "32011541600000_20260715180000");
                assert_eq!(broadcast_id, red.broadcast_id);
                assert!(reason.contains("cancelled by"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(d.running(at(15, 18, 0)).is_empty());
        assert!(reason(handle(&mut d, CANCEL, at(15, 18, 1))).starts_with("duplicate"));
    }

    /// A restart between the alert and its update: the snapshot carries
    /// what is playing and what was seen.
    #[test]
    fn state_survives_restart() {
        let mut d = Desk::new(cfg());
        let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        let json = serde_json::to_string(&d.snapshot()).unwrap();
        let mut d = Desk::restore(cfg(), serde_json::from_str(&json).unwrap()).unwrap();
        assert!(reason(handle(&mut d, ORANGE, at(15, 9, 5))).starts_with("duplicate"));
        let red = plan(handle(&mut d, RED, at(15, 11, 1)));
        assert_eq!(red.replaces, Some(orange.broadcast_id));
        let mut bad = d.snapshot();
        bad.version = 2;
        assert!(Desk::restore(cfg(), bad).is_err());
    }

    #[test]
    fn update_and_cancel_of_unknown_alerts_are_ignored() {
        let mut d = Desk::new(cfg());
        let r = reason(handle(&mut d, RED, at(15, 11, 1)));
        assert!(
            r.contains("references unknown alert 南京市江宁区气象台,32011541600000_20260715083000"),
            "{r}"
        );
        let mut d = Desk::new(cfg());
        assert!(reason(handle(&mut d, CANCEL, at(15, 18, 0))).contains("references unknown alert"));
        // The right identifier from another sender is not a reference to it.
        let mut d = Desk::new(cfg());
        plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        let spoof = edit(
            RED,
            "<references>南京市江宁区气象台,",
            "<references>某某台,",
        );
        assert!(reason(handle(&mut d, &spoof, at(15, 11, 1))).contains("unknown alert 某某台"));
    }

    /// A Cancel for an alert that was seen but never played stops nothing.
    #[test]
    fn cancel_of_an_alert_not_playing() {
        let mut c = cfg();
        c.areas.remove(0);
        c.areas.remove(0);
        let mut d = Desk::new(c);
        assert!(reason(handle(&mut d, ORANGE, at(15, 9, 0))).starts_with("no matching area"));
        assert!(reason(handle(&mut d, CANCEL, at(15, 18, 0))).contains("nothing is playing"));
    }

    /// An update whose urgency is Past (the all-clear some bureaus send)
    /// stops the running broadcast instead of playing.
    #[test]
    fn update_that_no_longer_concerns_us_cancels() {
        let mut d = Desk::new(cfg());
        let orange = plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        let past = edit(RED, "<urgency>Immediate", "<urgency>Past");
        match handle(&mut d, &past, at(15, 11, 1)) {
            Decision::Cancel {
                broadcast_id,
                reason,
                ..
            } => {
                assert_eq!(broadcast_id, orange.broadcast_id);
                assert!(reason.contains("urgency Past"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Exercises never reach the public by default; with test targets they
    /// play there only.
    #[test]
    fn exercise_plays_only_on_test_targets() {
        let now = at(16, 9, 1);
        let mut d = Desk::new(cfg());
        let r = reason(handle(&mut d, DRILL, now));
        assert!(r.contains("status Exercise is not public"), "{r}");
        let mut c = cfg();
        c.test_targets = vec!["speaker:test-horn".parse().unwrap()];
        let mut d = Desk::new(c.clone());
        let p = plan(handle(&mut d, DRILL, now));
        assert_eq!(p.targets, vec![Target::Speaker("test-horn".into())]);
        assert_eq!(
            (p.priority, p.status),
            (Priority::Superior, Status::Exercise)
        );
        // Made public on purpose: the matched villages.
        c.public_statuses.push(Status::Exercise);
        let mut d = Desk::new(c);
        let p = plan(handle(&mut d, DRILL, now));
        // The township code 320115106 covers both of its configured villages.
        assert_eq!(p.targets.len(), 3);
        assert_eq!(p.targets[0], Target::Village("320115106201".into()));
    }

    /// An Exercise cancel cannot stop an Actual broadcast.
    #[test]
    fn cancel_must_match_status() {
        let mut d = Desk::new(cfg());
        plan(handle(&mut d, ORANGE, at(15, 9, 0)));
        let drill_cancel = edit(CANCEL, "<status>Actual", "<status>Exercise");
        assert!(reason(handle(&mut d, &drill_cancel, at(15, 18, 0))).contains("status Exercise"));
        assert_eq!(d.running(at(15, 18, 0)).len(), 1);
    }

    #[test]
    fn expired_never_starts_and_running_ones_lapse() {
        let mut d = Desk::new(cfg());
        let r = reason(handle(&mut d, HEAT, at(15, 9, 0)));
        assert!(r.starts_with("expired at 2026-07-08T19:00:00+08:00"), "{r}");
        // expires == now: never starts.
        let mut d = Desk::new(cfg());
        assert!(reason(handle(&mut d, HEAT, at(8, 19, 0))).starts_with("expired"));
        let mut d = Desk::new(cfg());
        plan(handle(&mut d, HEAT, at(8, 18, 59)));
        assert!(d.running(at(8, 19, 0)).is_empty());
    }

    #[test]
    fn status_msgtype_and_urgency_rules() {
        let mut d = Desk::new(cfg());
        let t = edit(ORANGE, "<status>Actual", "<status>Test");
        assert!(reason(handle(&mut d, &t, at(15, 9, 0))).contains("status Test"));
        let mut c = cfg();
        c.test_targets = vec![Target::All];
        let mut d = Desk::new(c);
        let s = edit(ORANGE, "<status>Actual", "<status>System");
        assert!(reason(handle(&mut d, &s, at(15, 9, 0))).contains("never played"));
        let a = edit(ORANGE, "<msgType>Alert", "<msgType>Ack");
        let a = edit(&a, "_20260715083000", "_20260715083001");
        assert!(reason(handle(&mut d, &a, at(15, 9, 0))).contains("msgType Ack"));
        let p = edit(ORANGE, "<urgency>Immediate", "<urgency>Past");
        let p = edit(&p, "_20260715083000", "_20260715083002");
        assert!(reason(handle(&mut d, &p, at(15, 9, 0))).contains("urgency Past"));
    }

    #[test]
    fn geocode_matching_longest_prefix() {
        let c: WarningsConfig = toml::from_str(
            r#"
            [[areas]]
            village = "A"
            geocodes = ["320115"]
            [[areas]]
            village = "B"
            geocodes = ["320115106201"]
            [[areas]]
            village = "C"
            geocodes = ["320115106"]
            "#,
        )
        .unwrap();
        let d = Desk::new(c);
        let m = |g: &str| d.codes.matching(g);
        // A county-wide alert covers every configured code below it.
        assert_eq!(m("320115"), vec![0, 1, 2]);
        assert_eq!(m("320115000000"), vec![0, 1, 2]);
        // A township alert covers B and C; A's county code is not below it.
        assert_eq!(m("320115106000"), vec![1, 2]);
        // An exact village.
        assert_eq!(m("320115106201"), vec![1]);
        // A village nobody lists: the longest configured code above it.
        assert_eq!(m("320115106203"), vec![2]);
        assert_eq!(m("320115101203"), vec![0]);
        assert!(m("320116").is_empty());
        assert!(m("3").is_empty());
        assert_eq!(normalize_code(" 320100 "), "3201");
        assert_eq!(normalize_code("110000000000"), "11");
        assert_eq!(normalize_code("CN-JS"), "CN-JS");
    }

    /// A polygon-only alert (no geocode) reaches villages by outline.
    #[test]
    fn polygon_only_alert_matches_by_outline() {
        let no_geo = edit(
            ORANGE,
            "<geocode>\n        <valueName>行政区划代码</valueName>\n        <value>320115</value>\n      </geocode>",
            "",
        );
        let mut d = Desk::new(cfg());
        let p = plan(handle(&mut d, &no_geo, at(15, 9, 0)));
        assert_eq!(p.targets, vec![Target::Village("320115106201".into())]);
        // Moved far away: nothing.
        let far = edit(
            &no_geo,
            "31.80,118.70 31.80,118.95 31.62,118.95 31.62,118.70 31.80,118.70",
            "30.0,110.0 30.1,110.0 30.1,110.1 30.0,110.0",
        );
        let far = edit(&far, "_20260715083000", "_20260715083009");
        assert!(reason(handle(&mut d, &far, at(15, 9, 0))).starts_with("no matching area"));
    }

    #[test]
    fn geometry() {
        let square = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)];
        assert!(point_in_polygon((0.5, 0.5), &square));
        assert!(!point_in_polygon((1.5, 0.5), &square));
        // A plus sign: bars cross with no vertex inside the other.
        let h = [
            (0.4, -1.0),
            (0.4, 2.0),
            (0.6, 2.0),
            (0.6, -1.0),
            (0.4, -1.0),
        ];
        let v = [(-1.0, 0.4), (2.0, 0.4), (2.0, 0.6), (-1.0, 0.6)];
        assert!(polygons_intersect(&h, &v));
        let far = [(5.0, 5.0), (5.0, 6.0), (6.0, 6.0)];
        assert!(!polygons_intersect(&square, &far));
        // Nanjing – Shanghai is about 270 km.
        let km = haversine_km((32.06, 118.80), (31.23, 121.47));
        assert!((260.0..280.0).contains(&km), "{km}");
        // A circle whose centre is 2.2 km south of a long edge, with every
        // vertex more than 10 km away.
        let band = [
            (31.70, 118.60),
            (31.70, 119.00),
            (31.80, 119.00),
            (31.80, 118.60),
        ];
        assert!(circle_reaches((31.68, 118.80), 3.0, &band));
        assert!(!circle_reaches((31.68, 118.80), 2.0, &band));
        assert!(circle_reaches((31.75, 118.80), 0.1, &band));
    }

    /// The drill's 3.5 km circle reaches 石塘村's outline (given the
    /// township code is unknown to a desk configured by outline only).
    #[test]
    fn circle_alert_matches_by_outline() {
        let mut c = cfg();
        c.public_statuses.push(Status::Exercise);
        c.areas[0].geocodes.clear();
        let mut d = Desk::new(c);
        let no_geo = edit(DRILL, "<value>320115106</value>", "<value>999999</value>");
        let p = plan(handle(&mut d, &no_geo, at(16, 9, 1)));
        assert_eq!(p.targets, vec![Target::Village("320115106201".into())]);
    }

    #[test]
    fn language_preference_then_severity() {
        let s = std::str::from_utf8(ORANGE).unwrap();
        let (a, b) = (s.find("<info>").unwrap(), s.find("</info>").unwrap() + 7);
        let zh = &s[a..b];
        let en = zh
            .replace("zh-CN", "en-US")
            .replace("<severity>Severe", "<severity>Extreme")
            .replace(
                "江宁区气象台发布暴雨橙色预警</headline>",
                "Rainstorm orange warning</headline>",
            );
        let doc = format!("{}{en}{zh}{}", &s[..a], &s[b..]);
        let mut d = Desk::new(cfg());
        let p = plan(d.handle(
            &cap::parse(doc.as_bytes()).unwrap(),
            sha256(doc.as_bytes()),
            at(15, 9, 0),
        ));
        assert!(
            p.text.starts_with("江宁区气象台发布暴雨橙色预警"),
            "{}",
            p.text
        );
        assert_eq!(p.priority, Priority::Emergency);
        assert_eq!(p.severity, Severity::Severe);
    }

    #[test]
    fn text_is_trimmed_on_sentence_boundaries() {
        let info = alert(ORANGE).infos.remove(0);
        let t = compose_text(&info, 120);
        assert!(t.chars().count() <= 120);
        assert!(t.ends_with('。') || t.ends_with('；'), "{t}");
        assert!(t.starts_with("江宁区气象台发布暴雨橙色预警。\n"));
        assert_eq!(trim_to_sentence("abc. def. ghi", 11), "abc. def.");
        // No sentence end in the second half: the last comma, then hard.
        assert_eq!(
            trim_to_sentence("一二三四五，六七八九十甲乙", 8),
            "一二三四五，"
        );
        assert_eq!(trim_to_sentence("一二三四五六七八九十", 4), "一二三四");
        // "3.5" is not a sentence end.
        assert_eq!(trim_to_sentence("rain 3.5 mm expected", 8), "rain 3.5");
        let mut empty = info.clone();
        empty.headline = None;
        empty.description = None;
        empty.instruction = None;
        assert_eq!(compose_text(&empty, 600), "暴雨");
    }

    #[test]
    fn remembered_identifiers_are_capped() {
        let mut d = Desk::new(cfg());
        d.max_remembered = 3;
        let base = std::str::from_utf8(HEAT).unwrap();
        for i in 0..5 {
            let doc = base.replace("_20260708110000", &format!("_2026070811000{i}"));
            let _ = d.handle(&alert(doc.as_bytes()), sha256(doc.as_bytes()), at(15, 9, 0));
        }
        assert_eq!(d.snapshot().seen.len(), 3);
        assert!(!d.has_seen("32011541600000_20260708110000"));
        assert!(d.has_seen("32011541600000_20260708110004"));
    }

    #[test]
    fn feed_single_alert() {
        let entries = parse_feed(ORANGE).unwrap();
        match &entries[..] {
            [FeedEntry::Alert { alert, sha256: h }] => {
                assert_eq!(alert.identifier, "32011541600000_20260715083000");
                assert_eq!(*h, sha256(ORANGE));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_feed(BOMB), Err(FeedError::Xml(XmlError::Dtd)));
        assert!(matches!(parse_feed(b"<rss/>"), Err(FeedError::NotAFeed(n)) if n == "rss"));
        let bad = edit(ORANGE, "<status>Actual", "<status>Real");
        assert!(matches!(parse_feed(&bad), Err(FeedError::Cap(_))));
    }

    #[test]
    fn atom_feed_with_embedded_escaped_and_linked_alerts() {
        let s = std::str::from_utf8(RED).unwrap();
        let alert_xml = &s[s.find("<alert").unwrap()..];
        let escaped = xml::escape(
            std::str::from_utf8(ORANGE)
                .unwrap()
                .split_once("?>")
                .unwrap()
                .1,
        )
        .to_string();
        let escaped = escaped.trim_start();
        let feed = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>江宁区预警信息</title>
  <entry><id>urn:e1</id><title>红色</title>
    <content type="application/cap+xml">{alert_xml}</content></entry>
  <entry><id>urn:e2</id><content type="text">{escaped}</content></entry>
  <entry><id>urn:e3</id>
    <link rel="self" href="https://warn.example.cn/atom.xml"/>
    <link rel="alternate" type="application/cap+xml" href="https://warn.example.cn/cap/32011541600000_20260715180000.xml"/></entry>
  <entry><id>urn:e7</id><content><alert><identifier>y</identifier></alert></content></entry>
  <entry><id>urn:e4</id><link href="/relative.xml"/></entry>
  <entry><id>urn:e5</id><title>nothing</title></entry>
  <entry><id>urn:e6</id><content><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>x</identifier></alert></content></entry>
</feed>"#
        );
        let e = parse_feed(feed.as_bytes()).unwrap();
        assert_eq!(e.len(), 7);
        match &e[0] {
            FeedEntry::Alert { alert, sha256: h } => {
                assert_eq!(alert.msg_type, MsgType::Update);
                assert_eq!(*h, sha256(alert_xml.trim_end().as_bytes()));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&e[1], FeedEntry::Alert { alert, .. } if alert.identifier.ends_with("083000"))
        );
        assert_eq!(
            e[2],
            FeedEntry::Link {
                entry_id: Some("urn:e3".into()),
                url: "https://warn.example.cn/cap/32011541600000_20260715180000.xml".into()
            }
        );
        // An <alert> without its own xmlns inherits Atom's and is refused.
        assert!(matches!(&e[3], FeedEntry::Invalid { reason, .. } if reason.contains("namespace")));
        assert!(matches!(&e[4], FeedEntry::Invalid { reason, .. } if reason.contains("absolute")));
        assert!(matches!(&e[5], FeedEntry::Invalid { reason, .. } if reason.contains("neither")));
        assert!(
            matches!(&e[6], FeedEntry::Invalid { entry_id: Some(i), reason } if i == "urn:e6" && reason.contains("alert/sender"))
        );
    }

    #[test]
    fn decisions_display() {
        let mut d = Desk::new(cfg());
        let s = handle(&mut d, ORANGE, at(15, 9, 0)).to_string();
        assert!(
            s.starts_with("play cap-") && s.contains("emergency on 3 target(s)"),
            "{s}"
        );
    }
}
