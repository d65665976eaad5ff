//! `tgw camera sync-time ID... (--config F | --data-dir D)`: set cameras'
//! clocks (SetSystemDateAndTime with our UTC time and the township's zone,
//! or `--ntp SERVER`) and show the offset before and after. Audited
//! (`camera.sync_time`, actor `cli`).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use super::input::StoreAt;
use crate::base::clock::Clock;
use crate::cameras::clock_sync::{self, SyncMode};
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
    let mut failed = false;
    let mut out = Vec::new();
    for id in &ids {
        let r = clock_sync::sync_time(&store, id, &mode, &access, clock.clone(), timeout).await;
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
                    println!(
                        "{id}: clock offset {} -> {} ({})",
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
