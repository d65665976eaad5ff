//! Live configuration reloads (SIGHUP, `cmd/reload`): which keys of the
//! file may change while the gateway runs, and which need a restart.
//!
//! Applied live: `township.*` (villages and grids), `credential_groups`,
//! `log.level`, and the *contents* of the `broadcast.timetable` file.
//! Everything else (listen addresses, the data directory, the broker, TLS,
//! discovery, health and broadcast settings, …) is read once at start: a
//! change to it is refused with a warning naming the keys, and the running
//! values stay in force until a restart. That includes the automatic
//! camera clock sync (`health.clock_sync`, `clock_sync_after_secs`,
//! `clock_sync_ntp_server`, `clock_sync_min_interval_secs`): the poller
//! reads it once when it starts, so turning it on or off takes a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Keys (dotted, or a prefix ending in `.`) that a reload applies.
pub const RELOADABLE: &[&str] = &["township", "credential_groups", "log.level"];

/// What a reload found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changed keys that are applied.
    pub applied: Vec<String>,
    /// Changed keys that need a restart (not applied).
    pub refused: Vec<String>,
}

/// The configuration file as last applied, flattened to dotted keys.
pub struct Reloader {
    path: PathBuf,
    running: Mutex<BTreeMap<String, toml::Value>>,
}

impl Reloader {
    /// Remembers the file the gateway started from (`None` without one).
    pub fn new(path: Option<&Path>) -> Option<Reloader> {
        let path = path?;
        let text = std::fs::read_to_string(path).ok()?;
        Some(Reloader {
            path: path.to_path_buf(),
            running: Mutex::new(flatten_text(&text).ok()?),
        })
    }

    /// Compares the file now with what runs. The reloadable keys are
    /// taken as applied (call after applying them); the others keep their
    /// running values, so a refused change is named again on the next
    /// reload until the gateway restarts.
    pub fn compare(&self) -> anyhow::Result<Diff> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", self.path.display()))?;
        let new = flatten_text(&text)?;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let d = diff(&running, &new);
        for k in &d.applied {
            match new.get(k) {
                Some(v) => running.insert(k.clone(), v.clone()),
                None => running.remove(k),
            };
        }
        Ok(d)
    }
}

fn flatten_text(text: &str) -> anyhow::Result<BTreeMap<String, toml::Value>> {
    let v: toml::Table = toml::from_str(text)?;
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(v), &mut out);
    Ok(out)
}

/// Tables become dotted keys; arrays and scalars are leaves.
fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn reloadable(key: &str) -> bool {
    RELOADABLE
        .iter()
        .any(|r| key == *r || key.starts_with(&format!("{r}.")))
}

/// Keys whose value differs (added, removed or changed), split by whether
/// a reload applies them.
pub fn diff(old: &BTreeMap<String, toml::Value>, new: &BTreeMap<String, toml::Value>) -> Diff {
    let mut d = Diff::default();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        if old.get(k) != new.get(k) {
            if reloadable(k) {
                d.applied.push(k.clone());
            } else {
                d.refused.push(k.clone());
            }
        }
    }
    d
}

/// After the reloadable parts of `new` were applied: sets `log.level` when
/// it changed and logs what was applied and what was refused (by key).
pub fn report(reloader: Option<&Reloader>, new: &crate::config::Config) {
    let Some(r) = reloader else {
        tracing::info!("configuration reloaded (township, credential groups)");
        return;
    };
    match r.compare() {
        Ok(d) => {
            if d.applied.iter().any(|k| k == "log.level")
                && let Some(h) = crate::base::logging::log_level_handle()
                && let Err(e) = h.set(&new.log.level)
            {
                tracing::warn!(error = %e, "log.level not applied");
            }
            tracing::info!(applied = %d.applied.join(", "), "configuration reloaded");
            if !d.refused.is_empty() {
                tracing::warn!(
                    keys = %d.refused.join(", "),
                    "configuration reload refused for keys that need a restart; the running values stay in force: {}",
                    d.refused.join(", ")
                );
            }
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "configuration reload failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[gateway]
site = "s"
data_dir = "/var/lib/tgw"
[log]
level = "info"
[township]
code = "t"
[[township.villages]]
code = "a"
[http]
listen = "127.0.0.1:8080"
"#;

    #[test]
    fn changes_split_into_applied_and_refused_and_refusals_persist() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gateway.toml");
        std::fs::write(&f, BASE).unwrap();
        let r = Reloader::new(Some(&f)).unwrap();
        assert_eq!(r.compare().unwrap(), Diff::default());
        let changed = BASE
            .replace("level = \"info\"", "level = \"debug\"")
            .replace("8080", "9090")
            .replace("code = \"a\"", "code = \"b\"")
            + "[mqtt]\nurl = \"mqtt://x:1883\"\n";
        std::fs::write(&f, changed).unwrap();
        let d = r.compare().unwrap();
        assert_eq!(d.applied, vec!["log.level", "township.villages"]);
        assert_eq!(d.refused, vec!["http.listen", "mqtt.url"]);
        // Applied keys are now running; refused ones are named again.
        let d = r.compare().unwrap();
        assert!(d.applied.is_empty(), "{d:?}");
        assert_eq!(d.refused, vec!["http.listen", "mqtt.url"]);
    }

    #[test]
    fn the_automatic_clock_sync_needs_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gateway.toml");
        std::fs::write(&f, BASE).unwrap();
        let r = Reloader::new(Some(&f)).unwrap();
        let on = format!("{BASE}[health]\nclock_sync = \"set\"\nclock_sync_after_secs = 120\n");
        std::fs::write(&f, on).unwrap();
        let d = r.compare().unwrap();
        assert!(d.applied.is_empty(), "{d:?}");
        assert_eq!(
            d.refused,
            vec!["health.clock_sync", "health.clock_sync_after_secs"]
        );
    }

    #[test]
    fn a_broken_file_is_an_error_not_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("gateway.toml");
        std::fs::write(&f, BASE).unwrap();
        let r = Reloader::new(Some(&f)).unwrap();
        std::fs::write(&f, "[gateway\n").unwrap();
        assert!(r.compare().is_err());
        std::fs::remove_file(&f).unwrap();
        let e = r.compare().unwrap_err().to_string();
        assert!(e.contains("gateway.toml: cannot read"), "{e}");
        assert!(Reloader::new(None).is_none());
    }
}
