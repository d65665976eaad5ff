//! `tgw gb status`: the GB/T 28181 uplink of a running gateway, over its
//! API (`GET /api/v1/gb28181`): per platform registration state, last
//! keepalive, catalog size, live relays.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{emit, outln, table};

/// `tgw gb …`.
#[derive(Debug, clap::Subcommand)]
pub enum GbCmd {
    /// Registration state per platform, last keepalive, catalog size, live relays.
    Status {
        /// The gateway's HTTP address (default: from --config, else 127.0.0.1:8080).
        #[arg(long)]
        url: Option<String>,
        /// The gateway's configuration file (for its [http] listen address and token file).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tgw gb …`.
pub async fn gb_cmd(cmd: GbCmd) -> anyhow::Result<ExitCode> {
    let GbCmd::Status { url, config, json } = cmd;
    let v = super::status::api_get(url, config, "/api/v1/gb28181").await?;
    let mut o = String::new();
    if json {
        outln!(o, "{}", serde_json::to_string_pretty(&v)?);
        emit(&o)?;
        return Ok(ExitCode::SUCCESS);
    }
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("-").to_string();
    let rows: Vec<Vec<String>> = v["platforms"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    vec![
                        s(&p["name"]),
                        s(&p["address"]),
                        s(&p["state"]),
                        s(&p["last_keepalive_at"]),
                        p["missed_keepalives"].to_string(),
                        s(&p["reason"]),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    outln!(
        o,
        "GB/T 28181 {} on {}: catalog {} entries ({} cameras), {} live relays",
        s(&v["id"]),
        s(&v["listen"]),
        v["catalog_size"],
        v["cameras"],
        v["relays"].as_array().map_or(0, Vec::len)
    );
    o.push_str(&table(
        &[
            "PLATFORM",
            "ADDRESS",
            "STATE",
            "LAST KEEPALIVE",
            "MISSED",
            "REASON",
        ],
        &rows,
    ));
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
