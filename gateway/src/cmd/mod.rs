//! The `tgw` command line. Subcommand names and flags are an interface other
//! tools script against; keep them stable.

use std::io::{IsTerminal, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::store::secrets::Password;
use crate::store::{DeviceState, Store};

// `tgw schedule …` and `tgw broadcast …` (issue 7).
pub mod demo;
pub mod run;
mod schedule;
use schedule as cli_schedule;

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
    Sim(SimArgs),
    /// Find ONVIF cameras with WS-Discovery (multicast and unicast sweeps).
    Discover(DiscoverArgs),
    /// Probe one device.
    #[command(subcommand)]
    Probe(ProbeCmd),
    /// The simulated township and the gateway together, in one command.
    Demo(DemoArgs),
    /// Inspect and adopt devices in a gateway's store.
    #[command(subcommand)]
    Devices(DevicesCmd),
    /// The loudspeaker inventory in a gateway's store.
    #[command(subcommand)]
    Speakers(SpeakersCmd),
    /// Dashboard and API users in a gateway's store.
    #[command(subcommand)]
    User(UserCmd),
    /// Loudspeakers: make one horn speak (technicians).
    #[command(subcommand)]
    Speaker(SpeakerCmd),
    /// Broadcast timetables: check a file before it goes live, list and
    /// show the one in force (docs/schedules.md).
    #[command(subcommand)]
    Schedule(cli_schedule::ScheduleCmd),
    /// Signed emergency commands: make a key, sign and verify commands
    /// (docs/warnings.md).
    #[command(subcommand)]
    Broadcast(cli_schedule::BroadcastCmd),
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

#[derive(Args)]
struct SimArgs {
    /// Number of cameras.
    #[arg(long, default_value_t = 50)]
    cameras: usize,
    /// Number of loudspeakers.
    #[arg(long, default_value_t = 0)]
    speakers: usize,
    /// First device address; devices take consecutive addresses from it.
    #[arg(long, default_value = "127.0.1.1")]
    bind: Ipv4Addr,
    /// UDP port each camera answers unicast WS-Discovery Probes on.
    #[arg(long, default_value_t = 3702)]
    wsd_port: u16,
    /// Multicast group:port to answer Probes on (on 127.0.0.1).
    #[arg(long, default_value = "239.255.255.250:3702")]
    multicast: SocketAddrV4,
    /// Do not answer multicast Probes.
    #[arg(long)]
    no_multicast: bool,
    /// Let the SIP and Axis speakers answer SSDP M-SEARCH on this group:port
    /// (joined on 127.0.0.1), e.g. `239.255.255.250:1900`. Default: no SSDP.
    #[arg(long)]
    ssdp: Option<SocketAddrV4>,
    /// Let the SIP and RTP horns answer mDNS / DNS-SD queries on this
    /// group:port (joined on 127.0.0.1), e.g. `224.0.0.251:5353`. Default: no mDNS.
    #[arg(long)]
    mdns: Option<SocketAddrV4>,
    /// Password of every camera (default: a random one per camera).
    #[arg(long)]
    password: Option<String>,
    /// Username of every camera (default: the vendor's, e.g. `root` for Axis).
    #[arg(long)]
    username: Option<String>,
    /// Inject a fault: `ID=FAULT`, e.g. `cam-0003=offline`, `cam-0004=clock-skew:600`.
    #[arg(long = "fault", value_parser = parse_fault_arg)]
    faults: Vec<(String, device_sim::Fault)>,
    /// Address of the fault-injection control endpoint (HTTP).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Seed for identities and flavours.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Driver kinds of the loudspeakers, cycled over them (comma-separated:
    /// rtp, sip, axis, rtp-multicast, cloud; cloud horns connect to an
    /// embedded MQTT broker on 127.0.0.1). Every manifest entry carries a `uri`
    /// for `tgw speaker test`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rtp,sip,axis,rtp-multicast"
    )]
    speaker_kinds: Vec<device_sim::SpeakerKind>,
}

fn parse_fault_arg(s: &str) -> Result<(String, device_sim::Fault), String> {
    let (id, f) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected ID=FAULT, e.g. cam-0003=offline"))?;
    let fault = f
        .parse::<device_sim::Fault>()
        .map_err(|e| format!("`{s}`: {e}"))?;
    Ok((id.to_string(), fault))
}

#[derive(Args)]
struct DiscoverArgs {
    /// Interface (name or IPv4 address) to send multicast Probes from; repeatable.
    /// Default: every up, non-loopback IPv4 interface.
    #[arg(long = "interface")]
    interfaces: Vec<String>,
    /// Network to sweep with unicast Probes (at most a /16); repeatable.
    #[arg(long = "cidr", value_parser = config::parse_cidr)]
    cidrs: Vec<ipnet::Ipv4Net>,
    /// Seconds to wait for answers after the last Probe.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Print one JSON array of the devices found.
    #[arg(long)]
    json: bool,
    /// Do not send multicast Probes (unicast sweep only).
    #[arg(long)]
    no_multicast: bool,
    /// Multicast group:port.
    #[arg(long, default_value = "239.255.255.250:3702")]
    group: SocketAddrV4,
    /// UDP port for unicast Probes.
    #[arg(long, default_value_t = 3702)]
    port: u16,
    /// Unicast Probes per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// Include devices that are not video transmitters.
    #[arg(long)]
    all: bool,
    /// Also send an SSDP M-SEARCH (UPnP MediaRenderer) and list the
    /// loudspeakers that answer (with `--json`: entries with `"kind": "speaker"`).
    #[arg(long)]
    speakers: bool,
    /// SSDP group:port for `--speakers`.
    #[arg(long, default_value = "239.255.255.250:1900")]
    ssdp_group: SocketAddrV4,
}

#[derive(Subcommand)]
enum ProbeCmd {
    /// Print the full ONVIF inventory of one camera.
    Camera {
        /// Device service address, e.g. http://10.21.3.5/onvif/device_service.
        xaddr: String,
        /// Username.
        #[arg(long)]
        user: Option<String>,
        /// Password (or set TGW_PASSWORD, or use --password-stdin).
        #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Per-call timeout in seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Skip the RTSP DESCRIBE of each profile's stream.
        #[arg(long)]
        no_rtsp: bool,
    },
    /// RTSP stream metadata (DESCRIBE), and optionally a timed sample.
    Rtsp {
        /// rtsp://[user:password@]host[:port]/path
        url: String,
        /// Username (overrides one in the URL).
        #[arg(long)]
        user: Option<String>,
        /// Password (or set TGW_PASSWORD).
        #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Also PLAY for this many seconds and measure fps, bitrate, keyframe
        /// interval, RTP loss and time to first frame.
        #[arg(long)]
        sample: Option<f64>,
        /// Transport for the sample: tcp (interleaved) or udp.
        #[arg(long, default_value = "tcp")]
        transport: String,
        /// Per-exchange timeout in seconds.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

// --- speaker test (issue 5) ---
#[derive(Subcommand)]
enum SpeakerCmd {
    /// Play a tone, a file or a spoken text on one horn and print what
    /// happened (answered or not, started at, packets sent, errors).
    Test(SpeakerTestArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("audio").required(true).args(["tone", "file", "say"])))]
struct SpeakerTestArgs {
    /// rtp://HOST:PORT?codec=pcmu|pcma, rtp://GROUP:PORT?codec=pcma&ttl=N[&if=ADDR],
    /// sip:USER@HOST:PORT, axis://USER:PASS@HOST:PORT,
    /// cloud://HORN_ID@BROKER:PORT[?serve=ADDR:PORT&volume=V]
    /// (docs/speakers.md). Several URIs play as
    /// one broadcast: one start time T0 for all, one report per horn.
    #[arg(required = true, num_args = 1..)]
    uri: Vec<String>,
    /// A sine tone of this frequency (Hz).
    #[arg(long)]
    tone: Option<f64>,
    /// Length of the tone in seconds.
    #[arg(long, default_value_t = 3.0, requires = "tone")]
    seconds: f64,
    /// An audio file (MP3, WAV, OGG/Vorbis, FLAC).
    #[arg(long)]
    file: Option<PathBuf>,
    /// A text spoken by the TTS engine.
    #[arg(long)]
    say: Option<String>,
    /// Password for SIP digest or the HTTP speaker (or set TGW_PASSWORD).
    #[arg(long, env = "TGW_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// How long a SIP horn may take to answer, seconds.
    #[arg(long, default_value_t = 5.0)]
    answer_timeout: f64,
    /// Delay between the horn being ready and the start, milliseconds.
    #[arg(long, default_value_t = 200)]
    playout_delay_ms: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

async fn speaker_test(a: SpeakerTestArgs) -> anyhow::Result<ExitCode> {
    use device_drivers::speaker::{self, DriverOptions, SpeakerUri};
    let mut uris = Vec::with_capacity(a.uri.len());
    for u in &a.uri {
        let uri: SpeakerUri = u.parse()?;
        uris.push(uri.with_password(a.password.clone()));
    }
    let pcm = match (a.tone, &a.file, &a.say) {
        (Some(hz), _, _) => {
            if !(20.0..=3900.0).contains(&hz) {
                anyhow::bail!("--tone {hz}: use 20..3900 Hz (8 kHz sampling)");
            }
            if !(a.seconds > 0.0 && a.seconds <= 600.0) {
                anyhow::bail!("--seconds {}: use more than 0 and at most 600", a.seconds);
            }
            device_drivers::g711::tone(hz, a.seconds, 12_000)
        }
        (None, Some(f), _) => {
            let f = f.clone();
            tokio::task::spawn_blocking(move || crate::broadcast::audio::load_file(&f)).await??
        }
        (None, None, Some(t)) => {
            let t = t.clone();
            tokio::task::spawn_blocking(move || crate::broadcast::audio::tts(&t)).await??
        }
        _ => anyhow::bail!("give --tone HZ, --file F or --say TEXT"),
    };
    if !(a.answer_timeout > 0.0 && a.answer_timeout <= 120.0) {
        anyhow::bail!(
            "--answer-timeout {}: use more than 0 and at most 120",
            a.answer_timeout
        );
    }
    let opts = DriverOptions {
        answer_timeout: std::time::Duration::from_secs_f64(a.answer_timeout),
        ..DriverOptions::default()
    };
    let cancel = cancel_on_signal();
    let started_wall = time::OffsetDateTime::now_utc();
    let started_mono = tokio::time::Instant::now();
    let delay = std::time::Duration::from_millis(a.playout_delay_ms);
    let (reports, t0) = match uris.as_slice() {
        [one] => (
            vec![speaker::play(one, &opts, &pcm, delay, &cancel).await],
            None,
        ),
        many => {
            // A broadcast: T0 is fixed now; horns ready later join in sync.
            let t0 = tokio::time::Instant::now() + delay;
            let pcm = std::sync::Arc::new(pcm.clone());
            (
                speaker::broadcast(many, &opts, pcm, t0, &cancel).await,
                Some(t0),
            )
        }
    };
    let wall = |i: tokio::time::Instant| {
        (started_wall + (i - started_mono))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let mut all_ok = true;
    for rep in &reports {
        let started_at = rep.first_sent.map(wall);
        let ok = rep.errors.is_empty() && rep.completed;
        all_ok &= ok;
        if a.json {
            let mut v = serde_json::to_value(rep)?;
            v["started_at"] = serde_json::json!(started_at);
            v["t0"] = serde_json::json!(t0.map(wall));
            v["audio_seconds"] = serde_json::json!(pcm.len() as f64 / 8000.0);
            v["ok"] = serde_json::json!(ok);
            println!("{v}");
            continue;
        }
        println!("horn:      {} ({})", rep.device, rep.kind);
        let answered = match (rep.answered, rep.answer_ms) {
            (true, Some(ms)) => format!("yes, after {ms:.0} ms"),
            (true, None) => "yes".to_string(),
            (false, _) => "no".to_string(),
        };
        println!("answered:  {answered}");
        if let Some(c) = &rep.codec {
            println!("codec:     {c}");
        }
        match (&started_at, rep.start_offset_ms) {
            (Some(s), Some(off)) => println!("started:   {s} (T0 {off:+.1} ms)"),
            _ => println!("started:   -"),
        }
        println!(
            "sent:      {} packets, {} bytes ({:.1} s of {:.1} s)",
            rep.packets,
            rep.octets,
            rep.octets as f64 / 8000.0,
            pcm.len() as f64 / 8000.0
        );
        for e in &rep.errors {
            println!("error:     {e}");
        }
        println!("result:    {}", if ok { "ok" } else { "FAILED" });
        if reports.len() > 1 {
            println!();
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
// --- end speaker test ---

#[derive(Args)]
struct DemoArgs {
    /// Number of simulated cameras.
    #[arg(long, default_value_t = 112)]
    cameras: usize,
    /// Number of simulated loudspeakers.
    #[arg(long, default_value_t = 23)]
    speakers: usize,
    /// Address of the gateway's HTTP endpoint.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// Data directory (default: a fresh temporary directory).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<u64>,
    /// Publish to this MQTT broker (mqtt://HOST:PORT) instead of starting the
    /// embedded one.
    #[arg(long)]
    broker: Option<String>,
}

#[derive(Subcommand)]
enum DevicesCmd {
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

// [http] `tgw user …`
#[derive(Subcommand)]
enum UserCmd {
    /// Create a user, or reset an existing user's role and password. The
    /// password is read from standard input (prompted for on a terminal).
    Add {
        #[command(flatten)]
        at: StoreAt,
        /// User name (1-32 of A-Z a-z 0-9 . _ -).
        name: String,
        /// viewer, operator, technician or admin.
        #[arg(long)]
        role: crate::auth::Role,
    },
    /// Issue an API token for a user; it is printed once and stored hashed.
    Token {
        #[command(flatten)]
        at: StoreAt,
        /// User name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List users.
    List {
        #[command(flatten)]
        at: StoreAt,
    },
}

impl clap::ValueEnum for crate::auth::Role {
    fn value_variants<'a>() -> &'a [Self] {
        use crate::auth::Role::*;
        &[Viewer, Operator, Technician, Admin]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

fn user_cmd(cmd: UserCmd) -> anyhow::Result<ExitCode> {
    use crate::auth::{HashCost, Users};
    match cmd {
        UserCmd::Add { at, name, role } => {
            crate::auth::check_name(&name)?;
            let users = Users::new(at.open()?)?;
            let pw = read_new_password()?;
            users.upsert(&name, role, &Password::new(pw), HashCost::DEFAULT)?;
            println!("{name}: {}", role.as_str());
        }
        UserCmd::Token { at, name, label } => {
            let users = Users::new(at.open()?)?;
            println!("{}", users.create_token(&name, &label)?);
        }
        UserCmd::List { at } => {
            for u in Users::new(at.open()?)?.users()? {
                println!(
                    "{}\t{}{}",
                    u.name,
                    u.role.as_str(),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A new password: prompted twice without echo on a terminal, else the
/// first line of standard input.
fn read_new_password() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if !std::io::stdin().is_terminal() {
        return read_stdin_password();
    }
    let echo = |on: bool| {
        let _ = std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    let ask = |prompt: &str| -> anyhow::Result<String> {
        eprint!("{prompt}");
        echo(false);
        let mut s = String::new();
        let r = std::io::stdin().read_line(&mut s);
        echo(true);
        eprintln!();
        r?;
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    };
    let a = ask("password: ")?;
    let b = ask("again: ")?;
    anyhow::ensure!(a == b, "the passwords differ");
    Ok(a)
}

#[derive(Args)]
struct StoreAt {
    /// The gateway's configuration file (its data_dir holds the store).
    #[arg(long, conflicts_with = "data_dir")]
    config: Option<PathBuf>,
    /// The data directory directly.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl StoreAt {
    fn open(&self) -> anyhow::Result<Store> {
        let dir = match (&self.config, &self.data_dir) {
            (Some(c), _) => Config::load(c)?.gateway.data_dir,
            (None, Some(d)) => d.clone(),
            (None, None) => anyhow::bail!("give --config FILE or --data-dir DIR"),
        };
        Ok(Store::open(&dir)?)
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `tgw run` logs as its [log] section says (a config error is reported
    // by the run itself, below).
    let (default_level, format) = match &cli.cmd {
        Cmd::Run { config } => Config::load(config)
            .map(|c| (c.log.level, c.log.format))
            .unwrap_or_else(|_| ("info".into(), crate::config::LogFormat::Plain)),
        Cmd::Demo(_) => ("info".into(), crate::config::LogFormat::Plain),
        _ => ("warn".into(), crate::config::LogFormat::Plain),
    };
    // retina logs a whole SDP at WARN for every odd media section (TP-Link
    // cameras have one); our DESCRIBE reports it as `skipped` instead.
    init_tracing(
        &format!("{default_level},retina::client::parse=error"),
        format,
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tgw: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(dispatch(cli.cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// [http] Runtime log-level change: set by `init_tracing`, read by the daemon.
static LOG_LEVEL: std::sync::OnceLock<(crate::http::LogLevelFn, String)> =
    std::sync::OnceLock::new();

/// The function that changes the log filter at run time (`PUT
/// /api/v1/log-level`), and the filter in force; `None` before
/// tracing is initialised by [`main`].
pub fn log_level_handle() -> Option<(crate::http::LogLevelFn, String)> {
    LOG_LEVEL.get().cloned()
}

fn init_tracing(default: &str, format: crate::config::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TGW_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let current = filter.to_string();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    macro_rules! install {
        ($b:expr) => {{
            let b = $b.with_filter_reloading();
            let h = b.reload_handle();
            if b.try_init().is_ok() {
                let f: crate::http::LogLevelFn = std::sync::Arc::new(move |s: &str| {
                    let f = EnvFilter::try_new(s).map_err(|e| e.to_string())?;
                    h.reload(f).map_err(|e| e.to_string())
                });
                let _ = LOG_LEVEL.set((f, current));
            }
        }};
    }
    match format {
        crate::config::LogFormat::Plain => install!(b),
        crate::config::LogFormat::Json => install!(b.json()),
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn cancel_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        t.cancel();
    });
    token
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok (site {}, {} villages, {} credential groups)",
                    file.display(),
                    c.gateway.site,
                    c.township.villages.len(),
                    c.credential_groups.len()
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Cmd::Run { config } => {
            let cfg = Config::load(&config)?;
            let store = crate::cmd::run::open_store(&cfg)?;
            crate::cmd::run::run(cfg, store, cancel_on_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sim(a) => sim(a).await,
        Cmd::Discover(a) => discover(a).await,
        Cmd::Probe(ProbeCmd::Camera {
            xaddr,
            user,
            password,
            password_stdin,
            timeout,
            json,
            no_rtsp,
        }) => {
            let password = if password_stdin {
                Some(read_stdin_password()?)
            } else {
                password
            };
            probe_camera(&xaddr, user, password, timeout, json, !no_rtsp).await
        }
        Cmd::Demo(a) => crate::cmd::demo::run(
            a.cameras,
            a.speakers,
            a.http,
            a.data_dir,
            a.seconds.map(Duration::from_secs),
            a.broker,
        )
        .await
        .map(|_| ExitCode::SUCCESS),
        Cmd::Probe(ProbeCmd::Rtsp {
            url,
            user,
            password,
            sample,
            transport,
            timeout,
            json,
        }) => probe_rtsp(&url, user, password, sample, &transport, timeout, json).await,
        Cmd::Speaker(SpeakerCmd::Test(a)) => speaker_test(a).await,
        Cmd::Devices(d) => devices(d),
        Cmd::Speakers(c) => speakers_cmd(c),
        Cmd::User(u) => user_cmd(u),
        Cmd::Status { url, config, json } => status(url, config, json).await,
        Cmd::Schedule(c) => cli_schedule::schedule_cmd(c),
        Cmd::Broadcast(c) => cli_schedule::broadcast_cmd(c),
    }
}

fn read_stdin_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(!s.is_empty(), "no password on standard input");
    Ok(s)
}

async fn sim(a: SimArgs) -> anyhow::Result<ExitCode> {
    let cfg = device_sim::SimConfig {
        cameras: a.cameras,
        speakers: a.speakers,
        bind: a.bind,
        wsd_port: a.wsd_port,
        multicast: (!a.no_multicast).then_some(a.multicast),
        ssdp: a.ssdp,
        mdns: a.mdns,
        seed: a.seed,
        faults: a.faults,
        password: a.password,
        username: a.username,
        control: a.control,
        speaker_kinds: a.speaker_kinds.clone(),
        cloud_broker: if a.speaker_kinds.contains(&device_sim::SpeakerKind::Cloud) {
            Some(
                crate::uplink::broker::start_embedded(SocketAddr::from((
                    std::net::Ipv4Addr::LOCALHOST,
                    0,
                )))
                .await?,
            )
        } else {
            None
        },
        ..Default::default()
    };
    let sim = device_sim::start(cfg).await?;
    println!("{}", serde_json::to_string(sim.manifest())?);
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn discover(a: DiscoverArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.timeout.is_finite() && (0.05..=120.0).contains(&a.timeout),
        "--timeout must be between 0.05 and 120 seconds"
    );
    let interfaces = if a.interfaces.is_empty() {
        crate::cameras::discovery::default_interfaces()
    } else {
        crate::cameras::discovery::resolve_interfaces(&a.interfaces)?
    };
    let opts = device_drivers::wsd_io::DiscoverOptions {
        interfaces,
        multicast: !a.no_multicast,
        multicast_group: a.group,
        cidrs: a.cidrs,
        unicast_port: a.port,
        sweep_rate_per_sec: a.rate.clamp(100, 200_000),
        timeout: Duration::from_secs_f64(a.timeout),
        ..Default::default()
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} probes {pos}/{len} · found {msg} · {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    let b2 = bar.clone();
    let ssdp_opts = device_drivers::ssdp_io::SearchOptions {
        interfaces: opts.interfaces.clone(),
        group: a.ssdp_group,
        timeout: opts.timeout,
        ..Default::default()
    };
    let search = async {
        if a.speakers {
            device_drivers::ssdp_io::search(&ssdp_opts).await
        } else {
            Ok(Vec::new())
        }
    };
    let progress = move |p: device_drivers::wsd_io::Progress| {
        b2.set_length(p.total);
        b2.set_position(p.sent);
        b2.set_message(p.found.to_string());
    };
    let (found, speakers) =
        tokio::join!(device_drivers::wsd_io::discover(&opts, &progress), search);
    let (found, speakers) = (found?, speakers?);
    bar.finish_and_clear();
    let found: Vec<_> = found
        .into_iter()
        .filter(|d| a.all || device_drivers::wsd::is_nvt(&d.types))
        .collect();
    if a.json {
        let mut out: Vec<serde_json::Value> = found.iter().map(discovered_json).collect();
        out.extend(speakers.iter().map(ssdp_json));
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for f in &speakers {
            let s = &f.announcement;
            println!(
                "{:<46} {:<22} {:<20} {}",
                s.usn,
                f.from,
                s.server.as_deref().unwrap_or("-"),
                s.location.as_deref().unwrap_or("-")
            );
        }
        for d in &found {
            let name = device_drivers::wsd::scope_values(&d.scopes, "name").join(",");
            println!(
                "{:<46} {:<22} {:<20} {}",
                d.endpoint_ref,
                d.from,
                name,
                d.xaddrs.join(" ")
            );
        }
        eprintln!(
            "{} device(s) and {} speaker(s) found",
            found.len(),
            speakers.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One SSDP answer of `tgw discover --speakers --json`.
fn ssdp_json(f: &device_drivers::ssdp_io::Found) -> serde_json::Value {
    let s = &f.announcement;
    serde_json::json!({
        "kind": "speaker",
        "usn": s.usn,
        "st": s.target,
        "location": s.location,
        "server": s.server,
        "address": s.location.as_deref().and_then(device_drivers::ssdp::location_ipv4)
            .map_or_else(|| f.from.ip().to_string(), |ip| ip.to_string()),
        "via": "ssdp",
    })
}

fn discovered_json(d: &device_drivers::wsd_io::Discovered) -> serde_json::Value {
    use device_drivers::wsd::scope_values;
    serde_json::json!({
        "kind": if device_drivers::wsd::is_nvt(&d.types) { "camera" } else { "other" },
        "endpoint_ref": d.endpoint_ref,
        "xaddrs": d.xaddrs,
        "types": d.types,
        "scopes": d.scopes,
        "name": scope_values(&d.scopes, "name").into_iter().next(),
        "hardware": scope_values(&d.scopes, "hardware").into_iter().next(),
        "address": d.from.ip().to_string(),
        "via": d.via,
    })
}

async fn probe_camera(
    xaddr: &str,
    user: Option<String>,
    password: Option<String>,
    timeout: f64,
    json: bool,
    rtsp: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        timeout.is_finite() && (0.1..=120.0).contains(&timeout),
        "--timeout must be between 0.1 and 120 seconds"
    );
    let login = match (user, password) {
        (Some(u), Some(p)) => Some(crate::store::Login {
            username: u,
            password: Password::new(p),
            source: "cli".into(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            anyhow::bail!("--user needs a password: --password, TGW_PASSWORD or --password-stdin")
        }
        (None, Some(_)) => anyhow::bail!("a password needs --user"),
    };
    let prober = crate::cameras::inventory::Prober::new(Duration::from_secs_f64(timeout))?;
    let inv = prober
        .inventory(xaddr, login.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // RTSP metadata of each profile's stream, with the same login.
    let creds = login.as_ref().map(|l| {
        device_drivers::onvif_client::Credentials::new(l.username.clone(), l.password.expose())
    });
    let opts = device_drivers::rtsp_probe::RtspOptions {
        timeout: Duration::from_secs_f64(timeout),
        ..Default::default()
    };
    let mut streams = serde_json::Map::new();
    if rtsp {
        for p in &inv.profiles {
            let Some(uri) = &p.stream_uri else { continue };
            let v = match device_drivers::rtsp_probe::describe(uri, creds.as_ref(), &opts).await {
                Ok(m) => serde_json::to_value(&m)?,
                Err(e) => {
                    serde_json::json!({ "error": { "kind": e.kind_label(), "message": e.to_string() } })
                }
            };
            streams.insert(p.profile.token.clone(), v);
        }
    }
    if json {
        let mut v = serde_json::to_value(&inv)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("rtsp".into(), serde_json::Value::Object(streams));
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", crate::cameras::inventory::render(&inv));
        for (token, m) in &streams {
            println!(
                "rtsp [{token}]  {}",
                crate::cameras::inventory::render_stream(m)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn probe_rtsp(
    url: &str,
    user: Option<String>,
    password: Option<String>,
    sample: Option<f64>,
    transport: &str,
    timeout: f64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use device_drivers::rtsp_probe::{self, RtspOptions, Transport};
    anyhow::ensure!(
        timeout.is_finite() && (0.1..=120.0).contains(&timeout),
        "--timeout must be between 0.1 and 120 seconds"
    );
    let transport = match transport {
        "tcp" => Transport::Tcp,
        "udp" => Transport::Udp,
        other => anyhow::bail!("--transport `{other}`: use tcp or udp"),
    };
    let creds = match (user, password) {
        (Some(u), Some(p)) => Some(device_drivers::onvif_client::Credentials::new(u, p)),
        (Some(_), None) => anyhow::bail!("--user needs a password: --password or TGW_PASSWORD"),
        _ => None,
    };
    let mut opts = RtspOptions {
        timeout: Duration::from_secs_f64(timeout),
        transport,
        ..Default::default()
    };
    let meta = rtsp_probe::describe(url, creds.as_ref(), &opts)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = match sample {
        Some(secs) => {
            anyhow::ensure!(
                secs.is_finite() && (0.2..=60.0).contains(&secs),
                "--sample must be between 0.2 and 60 seconds"
            );
            opts.window = Duration::from_secs_f64(secs);
            Some(
                rtsp_probe::sample(url, creds.as_ref(), &opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            )
        }
        None => None,
    };
    if json {
        let v = serde_json::json!({
            "url": device_drivers::rtsp::redact_url(url),
            "metadata": meta,
            "sample": report,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("url       {}", device_drivers::rtsp::redact_url(url));
        println!(
            "{}",
            crate::cameras::inventory::render_stream(&serde_json::to_value(&meta)?)
        );
        if let Some(r) = report {
            println!(
                "sample    {} frames, {:.1} fps, {:.0} kbit/s, keyframe every {}, {} RTP packets lost, first frame after {} ms ({:?})",
                r.frames,
                r.measured_fps.unwrap_or(0.0),
                r.bitrate_kbps,
                r.keyframe_interval_frames
                    .map_or("?".into(), |k| format!("{k:.0} frames")),
                r.rtp_loss_packets,
                r.time_to_first_frame_ms,
                r.transport
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(
    url: Option<String>,
    config: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let base = match (url, config) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(c)) => {
            let cfg = Config::load(&c)?;
            let http = cfg.http.ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no [http] section, so no running gateway to ask",
                    c.display()
                )
            })?;
            format!("http://{}", http.listen)
        }
        (None, None) => "http://127.0.0.1:8080".to_string(),
    };
    let url = format!("{base}/api/v1/cameras");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    // [http] The API needs a token: `tgw user token NAME` prints one.
    let mut req = client.get(&url);
    if let Ok(t) = std::env::var("TGW_TOKEN") {
        req = req.bearer_auth(t.trim());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the gateway at {base}: {}", e.without_url()))?;
    anyhow::ensure!(
        resp.status() != reqwest::StatusCode::UNAUTHORIZED,
        "{url}: HTTP 401: set TGW_TOKEN to an API token (`tgw user token NAME --config FILE`)"
    );
    anyhow::ensure!(resp.status().is_success(), "{url}: HTTP {}", resp.status());
    let body = resp
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", e.without_url()))?;
    let list: Vec<crate::http::CameraStatus> = serde_json::from_slice(&body)
        .map_err(|e| anyhow::anyhow!("{url}: unexpected answer: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (mut ok, mut degraded, mut offline, mut unknown) = (0, 0, 0, 0);
    for c in &list {
        let (rung, verdict, since, err) = match &c.health {
            Some(h) => {
                match h.verdict.label() {
                    "ok" => ok += 1,
                    "degraded" => degraded += 1,
                    _ => offline += 1,
                }
                (
                    h.rung.as_str().to_string(),
                    h.verdict.to_string(),
                    crate::store::fmt_time(h.verdict_since),
                    h.last_error_kind.clone().unwrap_or_default(),
                )
            }
            None => {
                unknown += 1;
                (
                    "-".into(),
                    "not yet polled".into(),
                    String::new(),
                    String::new(),
                )
            }
        };
        println!(
            "{:<15} {:<16} {:<24} {:<14} {:<40} {:<20} {}",
            c.id,
            c.address.as_deref().unwrap_or("-"),
            c.village.as_deref().unwrap_or("-"),
            rung,
            verdict,
            since,
            err
        );
    }
    eprintln!(
        "{} cameras: {ok} ok, {degraded} degraded, {offline} offline, {unknown} not yet polled",
        list.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
enum SpeakersCmd {
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

fn speakers_cmd(cmd: SpeakersCmd) -> anyhow::Result<ExitCode> {
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
            println!(
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
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for s in &list {
                    println!(
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
    Ok(ExitCode::SUCCESS)
}

fn devices(cmd: DevicesCmd) -> anyhow::Result<ExitCode> {
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
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for d in &list {
                    println!(
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
                println!("{id}: adopted as speaker ({} {})", s.kind, s.address);
            } else {
                anyhow::ensure!(
                    zone.is_none() && driver.is_none() && address.is_none(),
                    "{id}: --zone, --driver and --address apply to speakers"
                );
                store.adopt(&id, village.as_deref(), grid.as_deref())?;
                println!("{id}: adopted");
            }
        }
        DevicesCmd::Ignore { at, id } => {
            at.open()?.ignore(&id)?;
            println!("{id}: ignored");
        }
        DevicesCmd::SetLogin { at, id, user } => {
            let pw = read_stdin_password()?;
            at.open()?
                .set_device_login(&id, &user, &Password::new(pw))?;
            println!("{id}: login set for user {user}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
