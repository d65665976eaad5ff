//! The desk's memory (identifiers seen, broadcasts running by chain) and the
//! rules that turn an alert into a [`Decision`] (see the module docs of
//! [`super`]).

use std::collections::{HashMap, VecDeque};

use device_drivers::cap::{Alert, Info, MsgType, Status, Urgency};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::area::{CodeIndex, villages_for};
use super::config::WarningsConfig;
use super::decision::{Decision, Plan, broadcast_id, ignore, to_ms};
use super::text::compose_text;
use crate::broadcast::{Ms, Target};
use crate::error::ErrorKind;

/// Most alert identifiers remembered (oldest forgotten first).
pub const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Seen {
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
    pub(super) version: u32,
    pub(super) seen: Vec<Seen>,
    active: Vec<Active>,
}

/// Why [`Desk::restore`] refused a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// Written by another version of the desk.
    #[error("warning desk snapshot version {0} is not 1")]
    Version(u32),
}

impl SnapshotError {
    /// Always [`ErrorKind::Invalid`]: the saved data does not fit.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
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

/// The early-warning desk: remembers alerts and decides what each means.
#[derive(Debug, Clone)]
pub struct Desk {
    cfg: WarningsConfig,
    pub(super) codes: CodeIndex,
    seen: HashMap<String, Seen>,
    order: VecDeque<String>,
    /// Running broadcasts by thread.
    active: HashMap<String, Active>,
    pub(super) max_remembered: usize,
}

impl Desk {
    /// A desk with no memory.
    pub fn new(cfg: WarningsConfig) -> Desk {
        let codes = CodeIndex::new(&cfg);
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
    pub fn restore(cfg: WarningsConfig, snapshot: DeskSnapshot) -> Result<Desk, SnapshotError> {
        if snapshot.version != 1 {
            return Err(SnapshotError::Version(snapshot.version));
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
        if let Err((why, remember)) = self.check_sent(alert, now) {
            if remember {
                self.remember(Seen {
                    identifier: id.clone(),
                    sender: alert.sender.clone(),
                    sha256: hash,
                    thread: id.clone(),
                });
            }
            return ignore(why);
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

    /// `sent` against the skew limits; `Err((reason, remember))`.
    fn check_sent(&self, alert: &Alert, now: Ms) -> Result<(), (String, bool)> {
        let sent = to_ms(alert.sent);
        let text = alert
            .sent
            .format(&Rfc3339)
            .unwrap_or_else(|_| alert.sent.to_string());
        let max_age = (self.cfg.max_age_secs as Ms).saturating_mul(1000);
        let max_future = (self.cfg.max_future_secs as Ms).saturating_mul(1000);
        if sent < now.saturating_sub(max_age) {
            return Err((
                format!(
                    "stale: sent {text} is more than {} s before the gateway's clock (max_age_secs)",
                    self.cfg.max_age_secs
                ),
                true,
            ));
        }
        if sent > now.saturating_add(max_future) {
            return Err((
                format!(
                    "from-the-future: sent {text} is more than {} s after the gateway's clock (max_future_secs)",
                    self.cfg.max_future_secs
                ),
                false,
            ));
        }
        Ok(())
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
            .map(|i| (i, villages_for(&self.cfg, &self.codes, i)))
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
}
