//! `tgw devices list|adopt|ignore|set-login`: the device inventory in a
//! gateway's store.

use std::process::ExitCode;

use clap::Subcommand;

use super::output::{emit, outln};

use super::input::{StoreAt, read_stdin_password};
use crate::config;
use crate::store::DeviceState;
use crate::store::secrets::Password;

#[derive(Subcommand)]
pub(super) enum DevicesCmd {
    /// List devices.
    List {
        #[command(flatten)]
        at: StoreAt,
        /// Only devices in this state: discovered, adopted, ignored.
        #[arg(long)]
        state: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Adopt a device into a village and grid (a speaker also goes into
    /// the speaker inventory, with the driver discovery inferred).
    Adopt {
        #[command(flatten)]
        at: StoreAt,
        /// Device id.
        id: String,
        /// Village code.
        #[arg(long)]
        village: Option<String>,
        /// Grid code.
        #[arg(long)]
        grid: Option<String>,
        /// Speakers: broadcast zone.
        #[arg(long, value_parser = config::Ident::parse)]
        zone: Option<config::Ident>,
        /// Speakers: driver kind instead of the discovered one.
        #[arg(long, value_parser = crate::speakers::DriverKind::parse)]
        driver: Option<crate::speakers::DriverKind>,
        /// Speakers: driver address instead of the discovered one.
        #[arg(long)]
        address: Option<String>,
    },
    /// Dismiss a device from the discovery inbox.
    Ignore {
        #[command(flatten)]
        at: StoreAt,
        /// Device id.
        id: String,
    },
    /// Set a device's own login; the password is read from standard input.
    SetLogin {
        #[command(flatten)]
        at: StoreAt,
        /// Device id.
        id: String,
        /// Username.
        #[arg(long)]
        user: String,
    },
}

/// Runs `tgw devices …`.
pub(super) fn devices(cmd: DevicesCmd) -> anyhow::Result<ExitCode> {
    let mut o = String::new();
    match cmd {
        DevicesCmd::List { at, state, json } => {
            let store = at.open()?;
            let state = match state.as_deref() {
                None => None,
                Some("discovered") => Some(DeviceState::Discovered),
                Some("adopted") => Some(DeviceState::Adopted),
                Some("ignored") => Some(DeviceState::Ignored),
                Some(other) => {
                    anyhow::bail!("--state `{other}`: use discovered, adopted or ignored")
                }
            };
            let list = store.devices(state)?;
            if json {
                outln!(o, "{}", serde_json::to_string_pretty(&list)?);
            } else {
                for d in &list {
                    outln!(
                        o,
                        "{:<15} {:<10} {:<16} {:<14} {:<12} {:<16} {}",
                        d.id,
                        format!("{:?}", d.state).to_lowercase(),
                        d.address.as_deref().unwrap_or("-"),
                        d.village.as_deref().unwrap_or("-"),
                        d.manufacturer.as_deref().unwrap_or("-"),
                        d.model.as_deref().unwrap_or("-"),
                        d.probe_error_kind.as_deref().unwrap_or("")
                    );
                }
                eprintln!("{} device(s)", list.len());
            }
        }
        DevicesCmd::Adopt {
            at,
            id,
            village,
            grid,
            zone,
            driver,
            address,
        } => {
            let store = at.open()?;
            let kind = store.device(&id)?.map(|d| d.kind);
            if kind.as_deref() == Some("speaker") {
                let a = crate::speakers::AdoptSpeaker {
                    village,
                    grid,
                    zone,
                    driver,
                    address,
                    login: None,
                };
                let s = crate::speakers::Speakers::open(&store)?.adopt_discovered(&id, &a)?;
                outln!(o, "{id}: adopted as speaker ({} {})", s.kind, s.address);
            } else {
                anyhow::ensure!(
                    zone.is_none() && driver.is_none() && address.is_none(),
                    "{id}: --zone, --driver and --address apply to speakers"
                );
                store.adopt(&id, village.as_deref(), grid.as_deref())?;
                outln!(o, "{id}: adopted");
            }
        }
        DevicesCmd::Ignore { at, id } => {
            at.open()?.ignore(&id)?;
            outln!(o, "{id}: ignored");
        }
        DevicesCmd::SetLogin { at, id, user } => {
            let pw = read_stdin_password()?;
            at.open()?
                .set_device_login(&id, &user, &Password::new(pw))?;
            outln!(o, "{id}: login set for user {user}");
        }
    }
    emit(&o)?;
    Ok(ExitCode::SUCCESS)
}
