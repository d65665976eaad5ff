//! The `tgw` command line. Subcommand names and flags are an interface other
//! tools script against; keep them stable. This module holds the clap
//! [`Cli`] and the dispatch; each subcommand group has its own file.
//!
//! | module | owns |
//! |---|---|
//! | [`run`] | `tgw run`: the long-lived gateway, its loops and their shutdown |
//! | [`demo`] | `tgw demo`: the simulated township and the gateway in one process (with `demo_seed`: horns, timetable, inbox; `demo_banner`: where to look) |
//! | `check_config` | `tgw check-config` |
//! | `backup` | `tgw backup`, `tgw restore`: the store, key and config in one archive |
//! | `reload` | live reloads (SIGHUP, `cmd/reload`): which keys apply, which are refused |
//! | `sim` | `tgw sim`: the device simulator until stopped |
//! | `discover` | `tgw discover`: WS-Discovery and SSDP sweeps |
//! | `probe` | `tgw probe camera\|rtsp` |
//! | `speaker` | `tgw speaker test`: make horns speak |
//! | `speakers` | `tgw speakers import\|list`: the loudspeaker inventory |
//! | `devices` | `tgw devices list\|adopt\|ignore\|set-login` |
//! | `users` | `tgw user add\|token\|list` |
//! | `status` | `tgw status`: camera health from a running gateway's API |
//! | `schedule` | `tgw schedule check\|list\|show` (with `schedule_view`: list and show) |
//! | `broadcast` | `tgw broadcast keygen\|sign\|verify`: signed emergency commands |
//! | `camera` | `tgw camera sync-time`: set cameras' clocks |
//! | `input` | `--config`/`--data-dir` store access, passwords from stdin or the terminal |
//! | `output` | buffered stdout (a closed pipe is fine), text tables |
//! | `progress` | spinners on stderr for long work, drawn only on a terminal and never with `--json` |

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::base::clock::{self, Clock};
use crate::base::{logging, shutdown};
use crate::config::{Config, LogFormat};

pub mod demo;
pub mod run;

mod demo_banner;
mod demo_seed;

mod backup;
pub mod backup_schedule;
mod broadcast;
mod camera;
mod check_config;
mod devices;
mod discover;
mod gb;
mod input;
mod output;
mod probe;
mod progress;
mod reload;
mod schedule;
mod schedule_view;
mod sim;
mod speaker;
mod speakers;
mod status;
mod users;

/// Township Gateway: discovers a township's cameras and loudspeakers and
/// reports to its governance centre.
#[derive(Parser)]
#[command(name = "tgw", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a configuration file and print what is wrong (key and line).
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Run the gateway.
    Run {
        /// The TOML configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a simulated township (ONVIF cameras, loudspeakers) until stopped.
    /// The first line on stdout is a JSON manifest of the devices.
    Sim(sim::SimArgs),
    /// Find ONVIF cameras with WS-Discovery (multicast and unicast sweeps).
    Discover(discover::DiscoverArgs),
    /// Probe one device.
    #[command(subcommand)]
    Probe(probe::ProbeCmd),
    /// The simulated township and the gateway together, in one command.
    Demo(demo::DemoArgs),
    /// Inspect and adopt devices in a gateway's store.
    #[command(subcommand)]
    Devices(devices::DevicesCmd),
    /// The loudspeaker inventory in a gateway's store.
    #[command(subcommand)]
    Speakers(speakers::SpeakersCmd),
    /// Dashboard and API users in a gateway's store.
    #[command(subcommand)]
    User(users::UserCmd),
    /// Loudspeakers: make one horn speak (technicians).
    #[command(subcommand)]
    Speaker(speaker::SpeakerCmd),
    /// Broadcast timetables: check a file before it goes live, list and
    /// show the one in force (docs/schedules.md).
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// Signed emergency commands: make a key, sign and verify commands
    /// (docs/warnings.md).
    #[command(subcommand)]
    Broadcast(broadcast::BroadcastCmd),
    /// Cameras: set their clocks (technicians; audited).
    #[command(subcommand)]
    Camera(camera::CameraCmd),
    /// Back up a gateway's store, secret key and configuration into one
    /// archive (mode 0600, optionally encrypted); safe while it runs.
    Backup(backup::BackupArgs),
    /// Restore a backup into a data directory (runs the migrations of this
    /// version).
    Restore(backup::RestoreArgs),
    /// The GB/T 28181 uplink of a running gateway (docs/gb28181.md).
    #[command(subcommand)]
    Gb(gb::GbCmd),
    /// The status ladder and verdict of every camera, from a running gateway.
    Status {
        /// The gateway's HTTP address (default: from --config, else 127.0.0.1:8080).
        #[arg(long)]
        url: Option<String>,
        /// The gateway's configuration file (for its [http] listen address).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    private_umask();
    // `tgw probe` is a one-shot tool (compared with ffprobe and onvif-zeep,
    // issue 18.5): it skips the full command tree, the config and the
    // multi-thread runtime (`probe::main`).
    if std::env::args_os().nth(1).is_some_and(|a| a == "probe") {
        return probe::main();
    }
    let cli = Cli::parse();
    init_logging(&cli.cmd);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            logging::say(format_args!("tgw: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.cmd, clock::system())) {
        Ok(code) => code,
        Err(e) => {
            logging::say(format_args!("tgw: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Files and directories this process creates are for its own user only
/// (umask 077): the database, its WAL, audio assets, the demo's files.
/// The store also checks and sets modes itself (`store::data_dir`).
fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Installs tracing: `tgw run` logs as its [log] section says (a config
/// error is reported by the run itself), `tgw demo` at warn (its own lines at
/// info), the rest at warn.
fn init_logging(cmd: &Cmd) {
    let (default_level, format) = match cmd {
        Cmd::Run { config } => Config::load(config)
            .map(|c| (c.log.level, c.log.format))
            .unwrap_or_else(|_| ("info".into(), LogFormat::Plain)),
        // Quiet: the banner, and what the demo does, stay readable.
        Cmd::Demo(_) => (
            "warn,tgw::cmd::demo=info,tgw::cmd::demo_banner=info".into(),
            LogFormat::Plain,
        ),
        _ => ("warn".into(), LogFormat::Plain),
    };
    let format = match format {
        LogFormat::Plain => logging::Format::Plain,
        LogFormat::Json => logging::Format::Json,
    };
    // retina logs a whole SDP at WARN for every odd media section (TP-Link
    // cameras have one); our DESCRIBE reports it as `skipped` instead.
    logging::init(
        &format!("{default_level},retina::client::parse=error"),
        format,
    );
}

async fn dispatch(cmd: Cmd, clock: std::sync::Arc<dyn Clock>) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::CheckConfig { file } => Ok(check_config::check_config(&file)),
        Cmd::Run { config } => {
            crate::base::fd_limit::raise_logged();
            let cfg = Config::load(&config)?;
            let store = run::open_store(&cfg)?;
            run::run(cfg, store, shutdown::cancel_on_signal(), clock).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sim(a) => {
            crate::base::fd_limit::raise_logged();
            sim::sim(a).await
        }
        Cmd::Discover(a) => discover::discover(a).await,
        // Reached only through `Cli` in tests: `main` sends `tgw probe` to
        // `probe::main`.
        Cmd::Probe(p) => probe::probe_cmd(p).await,
        Cmd::Demo(a) => {
            crate::base::fd_limit::raise_logged();
            demo::run(a, clock).await.map(|_| ExitCode::SUCCESS)
        }
        Cmd::Speaker(speaker::SpeakerCmd::Test(a)) => {
            speaker::speaker_test(a, clock.as_ref()).await
        }
        Cmd::Devices(d) => devices::devices(d),
        Cmd::Camera(c) => camera::camera_cmd(c, clock).await,
        Cmd::Gb(c) => gb::gb_cmd(c).await,
        Cmd::Speakers(c) => speakers::speakers_cmd(c),
        Cmd::User(u) => users::user_cmd(u),
        Cmd::Status { url, config, json } => status::status(url, config, json).await,
        Cmd::Schedule(c) => schedule::schedule_cmd(c, clock.as_ref()),
        Cmd::Broadcast(c) => broadcast::broadcast_cmd(c, clock.as_ref()),
        Cmd::Backup(a) => backup::backup(a).map(|()| ExitCode::SUCCESS),
        Cmd::Restore(a) => backup::restore(a).map(|()| ExitCode::SUCCESS),
    }
}
