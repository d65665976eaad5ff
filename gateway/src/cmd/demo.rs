//! `tgw demo`: the simulated township and the gateway in one process.
//!
//! The demo writes a real configuration file into its data directory (so
//! `tgw run --config DIR/gateway.toml` reproduces it), loads it through the
//! same strict parser as production, starts the simulator on loopback and the
//! gateway against it, and prints where to look.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::logging::say;
use crate::base::shutdown::shutdown_signal;
use crate::config::Config;

use super::demo_banner::{Banner, spawn_banner};
use super::demo_seed::{CALENDAR, import_sim_speakers, range_cidrs, seed_timetable};

// The flags of `tgw demo` (no doc comment: the variant's is the help).
#[derive(Args)]
pub struct DemoArgs {
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
    /// How many cameras (the last ones) are left in the discovery inbox for
    /// a technician to adopt.
    #[arg(long, default_value_t = 3)]
    inbox: usize,
    /// First simulated device address; devices take consecutive addresses.
    #[arg(long, default_value = "127.0.1.1")]
    bind: Ipv4Addr,
    /// UDP port the simulated cameras answer unicast WS-Discovery on.
    #[arg(long, default_value_t = 3702)]
    wsd_port: u16,
    /// No multicast discovery (cameras are still found by unicast sweeps):
    /// for running several demos on one machine, as the tests do.
    #[arg(long)]
    no_multicast: bool,
    /// Serve the dashboard over HTTPS with a self-signed certificate kept in
    /// the data directory (`[http] tls = "self-signed"`); the banner prints
    /// its SHA-256 fingerprint.
    #[arg(long)]
    tls: bool,
}

/// Environment variable that fixes the demo dashboard's `admin` password
/// (default: a random one, printed in the banner).
pub const DEMO_ADMIN_PASSWORD_ENV: &str = "TGW_DEMO_ADMIN_PASSWORD";

/// Environment variable through which the demo hands the simulated cameras'
/// password to its own configuration (never written to the file).
pub const DEMO_PASSWORD_ENV: &str = "TGW_DEMO_PASSWORD";

/// Builds the demo configuration text for a simulator manifest.
pub fn config_text(
    manifest: &device_sim::Manifest,
    township: &device_sim::Township,
    data_dir: &std::path::Path,
    http: SocketAddr,
    broker: &str,
    net: &DemoNet,
) -> String {
    let mut s = String::new();
    let q = |v: &str| toml_quote(v);
    let _ = writeln!(
        s,
        "# Written by `tgw demo`: a simulated township on loopback."
    );
    let _ = writeln!(
        s,
        "[gateway]\nsite = {}\nid = \"demo\"\ndata_dir = {}\n",
        q(&township.code),
        q(&data_dir.display().to_string())
    );
    let _ = writeln!(
        s,
        "[township]\ncode = {}\nname = {}\n",
        q(&township.code),
        q(&township.name)
    );
    for v in &township.villages {
        let _ = writeln!(
            s,
            "[[township.villages]]\ncode = {}\nname = {}\nkind = {}\ngrids = [",
            q(&v.code),
            q(&v.name),
            q(&v.kind)
        );
        for g in &v.grids {
            let _ = writeln!(s, "  {{ code = {}, name = {} }},", q(&g.code), q(&g.name));
        }
        let _ = writeln!(s, "]\n");
    }
    let nets = camera_networks(manifest);
    let cidrs: Vec<String> = nets.iter().map(|n| q(n)).collect();
    let _ = writeln!(
        s,
        "[discovery]\ninterval_secs = 30\ninterfaces = [\"127.0.0.1\"]\ncidrs = [{}]\nunicast_port = {}\nwait_ms = 1500",
        cidrs.join(", "),
        manifest.wsd_port
    );
    if !net.multicast {
        let _ = writeln!(s, "multicast = false\nssdp = false\nmdns = false");
    }
    let _ = writeln!(
        s,
        "\n# Adopt these cameras into the village and grid their ONVIF location\n# scopes name; the others wait in the inbox."
    );
    for c in &net.adopt {
        let _ = writeln!(s, "[[discovery.auto_adopt]]\ncidr = {}\n", q(c));
    }
    let _ = writeln!(s, "[inventory]\nconcurrency = 32\nrefresh_secs = 60\n");
    let _ = writeln!(
        s,
        "# Fast enough to watch faults come and go.\n[health]\ncheck_interval_secs = 10\ndescribe_interval_secs = 30\nsample_interval_secs = 60\nsample_ms = 2000\n"
    );
    let user = manifest
        .devices
        .iter()
        .find_map(|d| d.username.clone())
        .unwrap_or_else(|| "admin".into());
    let _ = writeln!(
        s,
        "[[credential_groups]]\nname = \"demo-cameras\"\nusername = {}\npassword_env = \"{DEMO_PASSWORD_ENV}\"\nsubnets = [{}]\n",
        q(&user),
        cidrs.join(", ")
    );
    let _ = writeln!(s, "[mqtt]\nurl = {}\n", q(broker));
    let _ = writeln!(s, "[http]\nlisten = \"{http}\"");
    let backups = data_dir.join("backups");
    let _ = writeln!(
        s,
        "\n# A backup at start, then every 24 h (a real gateway writes them to\n# another volume).\n[backup]\ndir = {}\nkeep = 3",
        q(&backups.display().to_string())
    );
    s
}

fn toml_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
}

/// How the demo's gateway finds the simulated cameras.
pub struct DemoNet {
    /// Multicast discovery (WS-Discovery, SSDP, mDNS) on loopback.
    pub multicast: bool,
    /// Auto-adopt networks (CIDR); cameras outside wait in the inbox.
    pub adopt: Vec<String>,
}

/// The /24 networks holding the simulated cameras.
fn camera_networks(m: &device_sim::Manifest) -> Vec<String> {
    let set: BTreeSet<String> = m
        .devices
        .iter()
        .filter(|d| d.kind == "camera")
        .filter_map(|d| d.address.parse::<Ipv4Addr>().ok())
        .map(|ip| {
            let o = ip.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        })
        .collect();
    set.into_iter().collect()
}

/// Runs the demo until Ctrl-C (or for `--seconds`).
pub async fn run(args: DemoArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let broker = start_broker(args.broker.clone()).await?;
    let broker_url =
        crate::config::parse_broker_url(&broker).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (data_dir, tmp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile_dir()?;
            (t.clone(), Some(t))
        }
    };
    crate::store::data_dir::ensure(&data_dir)?;
    let password = random_password();
    // Cloud horns connect to the demo's broker (given by IP address).
    let cloud_broker = format!("{}:{}", broker_url.host, broker_url.port)
        .parse::<SocketAddr>()
        .ok();
    let sim = start_sim(&args, &password, cloud_broker).await?;
    let manifest = sim.manifest().clone();
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let setup = setup(&args, &manifest, &data_dir, &broker, cloud_broker, &signing)?;
    // SAFETY: set before any other thread reads the environment for this name.
    unsafe_env_set(DEMO_PASSWORD_ENV, &password);
    let cfg = Config::parse(&setup.text, &setup.path.display().to_string())?;
    // [http] tls: made (or reused) now so the banner names its fingerprint;
    // `run` loads the same files.
    let tls_fingerprint = match &cfg.http {
        Some(h) => crate::http::tls::load(h, &data_dir, clock.now_utc())
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .map(|t| t.fingerprint),
        None => None,
    };
    let store = crate::cmd::run::open_store(&cfg)?;
    let admin_password = add_admin(&store)?;
    let token = crate::auth::Users::new(store.clone())?.create_token("admin", "demo")?;
    super::status::save_token(&data_dir.join(super::status::TOKEN_FILE), &token)?;

    // [speakers] The simulated horns go into the speaker inventory, so the
    // dashboard lists them and can test them.
    match import_sim_speakers(&store, &manifest) {
        Ok(n) => tracing::info!(speakers = n, "demo speakers imported"),
        Err(e) => tracing::warn!(error = %e, "importing the demo speakers failed"),
    }
    let kinds: BTreeSet<&str> = crate::speakers::Speakers::open(&store)?
        .list()?
        .iter()
        .map(|s| s.kind.as_str())
        .collect();
    // [broadcast] The timetable lives in the store, editable in the dashboard.
    let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC);
    let now =
        jiff::Timestamp::from_millisecond(clock.now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    seed_timetable(&store, now.to_zoned(shanghai).datetime())?;

    let shutdown = CancellationToken::new();
    spawn_stopper(args.seconds.map(Duration::from_secs), shutdown.clone());
    let banner = Banner {
        township: device_sim::sample_township().name,
        cameras: args.cameras,
        speakers: args.speakers,
        speaker_kinds: kinds.into_iter().collect::<Vec<_>>().join(", "),
        http: args.http,
        tls_fingerprint,
        admin_password,
        data_dir: data_dir.clone(),
        config: setup.path.clone(),
        broker: broker.clone(),
        broker_host: broker_url.host.clone(),
        broker_port: broker_url.port,
        control: manifest.control.clone().unwrap_or_else(|| "-".into()),
        ids: setup.ids.clone(),
        inbox: setup.inbox.clone(),
        faulty: FAULTY
            .iter()
            .filter(|(id, _, _)| setup.ids.contains_key(*id))
            .map(|(id, _, what)| ((*id).to_string(), *what))
            .collect(),
        // The simulator's wrong-password fault accepts the password with
        // `#changed` appended (device-sim `Camera::accepted_password`).
        changed_login: FAULTY
            .iter()
            .find(|(id, f, _)| *f == "wrong-password" && setup.ids.contains_key(*id))
            .map(|(id, _, _)| ((*id).to_string(), format!("{password}#changed"))),
    };
    spawn_banner(banner, store.clone(), shutdown.clone());
    // Faults come and go, so health changes can be watched live.
    let sim = Arc::new(sim);
    {
        let sim = sim.clone();
        let sd = shutdown.clone();
        let (adopted, ids) = (args.cameras.saturating_sub(args.inbox), setup.ids);
        tokio::spawn(async move { fault_script(&sim, adopted, &ids, sd).await });
    }
    {
        let sd = shutdown.clone();
        let topics = tgw_core::uplink::topics::Topics::new(&cfg.gateway.site.0, &cfg.gateway.id.0);
        let (host, port) = (broker_url.host.clone(), broker_url.port);
        let clock = clock.clone();
        tokio::spawn(async move { emergency_script(host, port, topics, signing, clock, sd).await });
    }
    crate::cmd::run::run(cfg, store, shutdown, clock).await?;
    match Arc::try_unwrap(sim) {
        Ok(sim) => sim.shutdown().await,
        Err(_) => tracing::debug!("simulator still shared at exit"),
    }
    if let Some(t) = tmp {
        let _ = std::fs::remove_dir_all(t);
    }
    Ok(())
}

/// Cameras with a fault from the start: simulator id, fault, what the
/// banner says.
const FAULTY: &[(&str, &str, &str)] = &[
    ("cam-0005", "wrong-password", "wrong password"),
    ("cam-0009", "clock-skew:600", "clock 10 min fast"),
];

/// What [`setup`] wrote and worked out.
struct Setup {
    /// The configuration text and where it was written.
    text: String,
    path: PathBuf,
    /// Simulator camera id → the gateway's id.
    ids: std::collections::HashMap<String, String>,
    /// Simulator ids of the cameras left in the inbox.
    inbox: Vec<String>,
}

/// Writes the configuration (and the workday calendar beside it) into the
/// data directory.
fn setup(
    args: &DemoArgs,
    manifest: &device_sim::Manifest,
    data_dir: &std::path::Path,
    broker: &str,
    cloud_broker: Option<SocketAddr>,
    signing: &ed25519_dalek::SigningKey,
) -> anyhow::Result<Setup> {
    let cams: Vec<&device_sim::DeviceEntry> = manifest
        .devices
        .iter()
        .filter(|d| d.kind == "camera")
        .collect();
    let ids = cams
        .iter()
        .filter_map(|d| {
            let epr = d.endpoint_ref.as_deref()?;
            Some((d.id.clone(), crate::store::camera_id(epr)))
        })
        .collect();
    let adopted = cams.len().saturating_sub(args.inbox);
    let addr = |d: &device_sim::DeviceEntry| d.address.parse::<Ipv4Addr>().ok();
    let adopt = match (cams.first().and_then(|d| addr(d)), adopted.checked_sub(1)) {
        (Some(first), Some(i)) => match addr(cams[i]) {
            Some(last) => range_cidrs(first, last),
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    let net = DemoNet {
        multicast: !args.no_multicast,
        adopt,
    };
    let township = device_sim::sample_township();
    let mut text = config_text(manifest, &township, data_dir, args.http, broker, &net);
    if args.tls {
        text.push_str("tls = \"self-signed\"\n");
    }
    // [broadcast] The workday calendar, cloud horns' audio, and a key the
    // demo's "county platform" signs emergency broadcasts with.
    let calendar = data_dir.join("workdays.txt");
    std::fs::write(&calendar, CALENDAR)?;
    let cloud_serve = match cloud_broker {
        Some(_) => Some(free_tcp_port()?),
        None => None,
    };
    text.push_str(&broadcast_section(&calendar, cloud_serve, signing));
    let path = data_dir.join("gateway.toml");
    std::fs::write(&path, &text)?;
    Ok(Setup {
        text,
        path,
        ids,
        inbox: cams[adopted..].iter().map(|d| d.id.clone()).collect(),
    })
}

/// A free TCP address on 127.0.0.1 (bound, then released).
fn free_tcp_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The broker the demo publishes to: `--broker` (checked), else the
/// embedded one on 127.0.0.1:1883 when free, else on any port.
async fn start_broker(broker: Option<String>) -> anyhow::Result<String> {
    Ok(match broker {
        Some(url) => {
            crate::config::parse_broker_url(&url).map_err(|e| anyhow::anyhow!("--broker: {e}"))?;
            url
        }
        None => {
            // The embedded broker, on 1883 when free.
            let addr = match crate::uplink::broker::start_embedded(SocketAddr::from((
                [127, 0, 0, 1],
                1883,
            )))
            .await
            {
                Ok(a) => a,
                Err(_) => {
                    crate::uplink::broker::start_embedded(SocketAddr::from(([127, 0, 0, 1], 0)))
                        .await?
                }
            };
            format!("mqtt://{addr}")
        }
    })
}

/// The simulator: every camera with login `admin` and `password`, a
/// control endpoint, two cameras faulty from the start, and horns of every
/// driver kind (cloud horns when there is a broker to reach by address).
async fn start_sim(
    args: &DemoArgs,
    password: &str,
    cloud_broker: Option<SocketAddr>,
) -> anyhow::Result<device_sim::Sim> {
    use device_sim::SpeakerKind;
    // One kind after another, and the last horn a cloud one: only one, as
    // every cloud horn of a broadcast serves its audio on the same
    // `[broadcast] cloud_serve` address and a second one finds it taken.
    const CYCLE: [SpeakerKind; 4] = [
        SpeakerKind::Rtp,
        SpeakerKind::RtpMulticast,
        SpeakerKind::Sip,
        SpeakerKind::Axis,
    ];
    let mut kinds: Vec<SpeakerKind> = CYCLE.iter().copied().cycle().take(args.speakers).collect();
    if cloud_broker.is_some()
        && let Some(last) = kinds.last_mut()
    {
        *last = SpeakerKind::Cloud;
    }
    if kinds.is_empty() {
        kinds.push(SpeakerKind::Rtp);
    }
    let defaults = device_sim::SimConfig::default();
    device_sim::start(device_sim::SimConfig {
        cameras: args.cameras,
        speakers: args.speakers,
        bind: args.bind,
        wsd_port: args.wsd_port,
        multicast: if args.no_multicast {
            None
        } else {
            defaults.multicast
        },
        password: Some(password.to_string()),
        username: Some("admin".into()),
        control: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        faults: FAULTY
            .iter()
            .filter(|(id, _, _)| id[4..].parse::<usize>().is_ok_and(|n| n <= args.cameras))
            .filter_map(|(id, f, _)| Some(((*id).to_string(), f.parse().ok()?)))
            .collect(),
        speaker_kinds: kinds,
        cloud_broker,
        ..defaults
    })
    .await
}

/// [http] A demo admin for the dashboard: `admin` with a random password
/// (or $TGW_DEMO_ADMIN_PASSWORD, for scripted screenshots); returns it.
fn add_admin(store: &crate::store::Store) -> anyhow::Result<String> {
    let admin_password = std::env::var(DEMO_ADMIN_PASSWORD_ENV)
        .ok()
        .filter(|p| p.len() >= 8)
        .unwrap_or_else(random_password);
    crate::auth::Users::new(store.clone())?.upsert(
        "admin",
        crate::auth::Role::Admin,
        &crate::store::secrets::Password::new(admin_password.clone()),
        crate::auth::HashCost::DEFAULT,
    )?;
    Ok(admin_password)
}

/// Cancels `shutdown` on Ctrl-C (or SIGTERM), or after `seconds`.
fn spawn_stopper(seconds: Option<Duration>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        match seconds {
            Some(s) => {
                tokio::select! {
                    _ = tokio::time::sleep(s) => {}
                    _ = shutdown_signal() => {}
                }
            }
            None => shutdown_signal().await,
        }
        shutdown.cancel();
    });
}

/// The `[broadcast]` section of the demo: the workday calendar of the
/// timetable kept in the store, where cloud horns fetch audio, and the
/// public half of the demo's signing key.
fn broadcast_section(
    calendar: &std::path::Path,
    cloud_serve: Option<SocketAddr>,
    key: &ed25519_dalek::SigningKey,
) -> String {
    let cloud = cloud_serve
        .map(|a| format!("cloud_serve = \"{a}\"\n"))
        .unwrap_or_default();
    format!(
        "\n[broadcast]\ncalendar = {}\n{cloud}\n[[broadcast.keys]]\nid = \"demo-county\"\npublic_key = \"{}\"\nscope = [\"all\"]\n",
        toml_quote(&calendar.display().to_string()),
        tgw_core::broadcast::signed::public_key_base64(&key.verifying_key())
    )
}

/// Plays the county platform: 60 s after start, then every 10 minutes, a
/// signed emergency broadcast to every horn over MQTT (`cmd/emergency`).
async fn emergency_script(
    host: String,
    port: u16,
    topics: tgw_core::uplink::topics::Topics,
    key: ed25519_dalek::SigningKey,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    let mut opts = rumqttc::MqttOptions::new("tgw-demo-county", host, port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 16);
    let sd = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sd.cancelled() => return,
                ev = el.poll() => if ev.is_err() { tokio::time::sleep(Duration::from_secs(1)).await },
            }
        }
    });
    let mut n = 0u32;
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = Duration::from_secs(600);
        n += 1;
        let now = jiff::Timestamp::from_millisecond(clock.now_ms())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let not_after = now + jiff::SignedDuration::from_mins(5);
        let payload = serde_json::json!({
            "id": format!("demo-emergency-{n}"),
            "action": "start",
            "not_after": not_after.to_string(),
            "nonce": uuid::Uuid::new_v4().simple().to_string(),
            "targets": ["all"],
            "text": "紧急通知：这是一次应急广播演示，请勿惊慌。",
        })
        .to_string();
        let envelope: serde_json::Value = match serde_json::from_str(
            &tgw_core::broadcast::signed::sign(&key, payload.as_bytes(), "demo-county"),
        ) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let body =
            serde_json::json!({ "request_id": format!("demo-emergency-{n}"), "params": envelope });
        match client
            .publish(
                topics.full("cmd/emergency"),
                rumqttc::QoS::AtLeastOnce,
                false,
                body.to_string(),
            )
            .await
        {
            Ok(()) => say(format_args!(
                "demo: signed emergency broadcast demo-emergency-{n} sent over MQTT"
            )),
            Err(e) => say(format_args!("demo: emergency broadcast not sent: {e}")),
        }
    }
}

/// Every 40 s, one camera gets a fault for 60 s: offline, a frozen stream,
/// a changed password, packet loss, a low frame rate, in turn.
async fn fault_script(
    sim: &device_sim::Sim,
    cameras: usize,
    ids: &std::collections::HashMap<String, String>,
    shutdown: CancellationToken,
) {
    let name_of = |sim_id: &str| match ids.get(sim_id) {
        Some(g) => format!("{g} ({sim_id})"),
        None => sim_id.to_string(),
    };
    const FAULTS: &[&str] = &[
        "offline",
        "frozen",
        "wrong-password",
        "packet-loss:10",
        "low-fps:3",
        "stream-refused",
    ];
    if cameras < 12 {
        return;
    }
    let mut n = 0usize;
    let mut active: Vec<(String, tokio::time::Instant)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(40));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = tokio::time::Instant::now();
        active.retain(|(id, until)| {
            if *until <= now {
                let _ = sim.set_fault(id, None);
                say(format_args!("demo: {} recovers", name_of(id)));
                false
            } else {
                true
            }
        });
        // Cameras 12, 19, 26, … (not the ones with faults from the start).
        let id = format!("cam-{:04}", 12 + (n * 7) % (cameras - 11));
        let name = FAULTS[n % FAULTS.len()];
        n += 1;
        let Ok(fault) = name.parse::<device_sim::Fault>() else {
            continue;
        };
        if sim.set_fault(&id, Some(fault)).is_ok() {
            say(format_args!("demo: {} <- {name} for 60 s", name_of(&id)));
            active.push((id, now + Duration::from_secs(60)));
        }
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("tgw-demo-{}", std::process::id()));
    std::fs::create_dir_all(&base)?;
    Ok(base)
}

fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| {
            let c = rng.gen_range(0..62u8);
            match c {
                0..=9 => (b'0' + c) as char,
                10..=35 => (b'a' + c - 10) as char,
                _ => (b'A' + c - 36) as char,
            }
        })
        .collect()
}

fn unsafe_env_set(key: &str, value: &str) {
    // Edition 2024 makes set_var unsafe because other threads may read the
    // environment concurrently; the workspace forbids unsafe code, so the
    // demo passes the password through a process-wide override instead.
    crate::config::set_env_override(key, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo's simulated horns of every kind land in the speaker
    /// inventory with their village, grid and sealed login.
    #[tokio::test]
    async fn demo_imports_the_simulated_speakers() {
        let dir = tempfile::tempdir().unwrap();
        let broker = crate::uplink::broker::start_embedded(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let sim = device_sim::start(device_sim::SimConfig {
            cameras: 1,
            speakers: 5,
            cloud_broker: Some(broker),
            password: Some("sim-Secret-pw".into()),
            speaker_kinds: vec![
                device_sim::SpeakerKind::Rtp,
                device_sim::SpeakerKind::RtpMulticast,
                device_sim::SpeakerKind::Sip,
                device_sim::SpeakerKind::Axis,
                device_sim::SpeakerKind::Cloud,
            ],
            ..Default::default()
        })
        .await
        .unwrap();
        let manifest = sim.manifest().clone();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let text = config_text(
            &manifest,
            &device_sim::sample_township(),
            dir.path(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "mqtt://127.0.0.1:1883",
            &DemoNet {
                multicast: false,
                adopt: vec!["127.0.1.0/30".into()],
            },
        );
        assert!(text.contains("[[discovery.auto_adopt]]\ncidr = \"127.0.1.0/30\""));
        assert!(text.contains("multicast = false"));
        let cfg = Config::parse(&text, "demo").unwrap();
        store.sync_township(&cfg.township).unwrap();
        assert_eq!(import_sim_speakers(&store, &manifest).unwrap(), 5);
        let list = crate::speakers::Speakers::open(&store)
            .unwrap()
            .list()
            .unwrap();
        let kinds: BTreeSet<&str> = list.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["axis", "cloud", "rtp", "rtp-multicast", "sip"])
        );
        assert!(list.iter().all(|s| s.village.is_some()));
        let sip = list.iter().find(|s| s.kind.as_str() == "sip").unwrap();
        assert!(sip.has_password);
        sim.shutdown().await;
    }
}
