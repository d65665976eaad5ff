//! `tgw camera sync-time ID... (--config F | --data-dir D)`: set cameras'
//! clocks (SetSystemDateAndTime with the township's zone and the time the
//! poller measures cameras against, or `--ntp SERVER`) and show the offset
//! before and after. That time is ours, or with `--config` and `[gb28181]
//! time_source = true` the GB/T 28181 platform's: the daemon keeps its last
//! 校时 reading in the store, used while at most a day old
//! (`clock_sync::STORED_REFERENCE_MAX_AGE`). Audited (`camera.sync_time`,
//! actor `cli`, the report with its `time_source`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use super::input::StoreAt;
use crate::base::clock::Clock;
use crate::cameras::clock_sync::{self, SyncMode, TimeReference};
use crate::config::Config;
use crate::config::audit::AuditRetention;
use crate::store::NewAudit;

#[derive(Subcommand)]
pub(super) enum CameraCmd {
    /// Set cameras' clocks and re-measure their offset.
    SyncTime {
        #[command(flatten)]
        at: StoreAt,
        /// Camera ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// Point the cameras at this NTP server instead of setting the time.
        #[arg(long)]
        ntp: Option<String>,
        /// POSIX time zone (default: from `gateway.timezone`, else CST-8).
        #[arg(long)]
        tz: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn ms(v: i64) -> String {
    format!("{:+.1} s", v as f64 / 1000.0)
}

/// Runs `tgw camera …`.
pub(super) async fn camera_cmd(cmd: CameraCmd, clock: Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    let CameraCmd::SyncTime {
        at,
        ids,
        ntp,
        tz,
        json,
    } = cmd;
    let cfg = at.config.as_ref().map(|p| Config::load(p)).transpose()?;
    let store = at.open()?;
    let tz = tz.unwrap_or_else(|| {
        clock_sync::posix_tz(
            cfg.as_ref()
                .map_or("Asia/Shanghai", |c| c.gateway.timezone.as_str()),
        )
    });
    let mode = match ntp {
        Some(server) => SyncMode::Ntp { server, tz },
        None => SyncMode::Manual { tz },
    };
    let access = cfg
        .as_ref()
        .map(|c| c.health.camera_access.clone())
        .unwrap_or_default();
    let timeout = cfg
        .as_ref()
        .map_or(Duration::from_secs(5), |c| c.health.call_timeout_ms);
    let keep = cfg
        .as_ref()
        .map_or_else(AuditRetention::default, |c| c.audit.retention());
    let time_source = cfg
        .as_ref()
        .and_then(|c| c.gb28181.as_ref())
        .is_some_and(|g| g.time_source);
    let reference = time_source
        .then(|| TimeReference::stored(&store, clock_sync::STORED_REFERENCE_MAX_AGE))
        .flatten();
    if time_source && reference.is_none() {
        eprintln!(
            "no GB/T 28181 time reference read in the last day: setting our own clock's time"
        );
    }
    let mut failed = false;
    let mut out = Vec::new();
    for id in &ids {
        let r = clock_sync::sync_time(
            &store,
            id,
            &mode,
            &access,
            clock.clone(),
            timeout,
            reference.clone(),
        )
        .await;
        let (outcome, after) = match &r {
            Ok(rep) => ("ok", serde_json::to_value(rep).ok()),
            Err(e) => (e.kind().label(), None),
        };
        if let Err(e) = store.audit(
            NewAudit {
                actor: "cli",
                source: "cli",
                action: "camera.sync_time",
                target: Some(id),
                before: None,
                after,
                outcome,
            },
            keep,
        ) {
            tracing::warn!(error = %e, "audit entry not written");
        }
        match r {
            Ok(rep) => {
                if !json {
                    let against = match &rep.reference {
                        Some(platform) => format!("GB/T 28181 platform {platform}'s time"),
                        None => "our time".into(),
                    };
                    println!(
                        "{id}: clock offset {} -> {} ({}, against {against})",
                        rep.offset_before_ms.map_or("unknown".into(), ms),
                        ms(rep.offset_after_ms),
                        rep.mode
                    );
                }
                out.push(serde_json::to_value(&rep)?);
            }
            Err(e) => {
                failed = true;
                eprintln!("{id}: {e}");
                out.push(serde_json::json!({"camera": id, "error": e.to_string()}));
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
