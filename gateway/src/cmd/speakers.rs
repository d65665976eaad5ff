//! `tgw speakers import|list`: the loudspeaker inventory in a gateway's store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::output::{emit, outln};

use super::input::StoreAt;
use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum SpeakersCmd {
    /// Import speakers from CSV (header: id,name,kind,address,village,grid,
    /// zone,codec,volume,ttl,username,password; id, kind and address are
    /// required; see config/speakers.example.csv). All or nothing; errors
    /// name the line and column.
    Import {
        /// The CSV file.
        file: PathBuf,
        #[command(flatten)]
        at: StoreAt,
    },
    /// List speakers (never their passwords).
    List {
        #[command(flatten)]
        at: StoreAt,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `tgw speakers …`.
pub(super) fn speakers_cmd(cmd: SpeakersCmd) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    use crate::speakers::Speakers;
    match cmd {
        SpeakersCmd::Import { file, at } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
            let store = at.open()?;
            // With --config, villages and grids come from it (as `tgw run` does).
            if let Some(c) = &at.config {
                store.sync_township(&Config::load(c)?.township)?;
            }
            let sp = Speakers::open(&store)?;
            let r = sp.import_csv(&text, &file.display().to_string())?;
            outln!(
                o,
                "{}: {} created, {} updated, {} multicast zone(s)",
                file.display(),
                r.created,
                r.updated,
                r.zones
            );
        }
        SpeakersCmd::List { at, json } => {
            let list = Speakers::open(&at.open()?)?.list()?;
            if json {
                outln!(o, "{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list {
                    outln!(
                        o,
                        "{:<16} {:<13} {:<28} {:<10} {:<12} {:<12} {:<5} {:>3} {}",
                        s.id,
                        s.kind.as_str(),
                        s.address,
                        s.village.as_deref().unwrap_or("-"),
                        s.grid.as_deref().unwrap_or("-"),
                        s.zone.as_deref().unwrap_or("-"),
                        s.codec.as_str(),
                        s.volume
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.multicast
                            .map(|m| format!("{} ttl {}", m.group, m.ttl))
                            .unwrap_or_default()
                    );
                }
                eprintln!("{} speaker(s)", list.len());
            }
        }
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
