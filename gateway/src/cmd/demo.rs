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
        "[discovery]\ninterval_secs = 30\ninterfaces = [\"127.0.0.1\"]\ncidrs = [{}]\nunicast_port = {}\nwait_ms = 1500\n",
        cidrs.join(", "),
        manifest.wsd_port
    );
    let _ = writeln!(
        s,
        "# Adopt every camera into the village and grid its ONVIF location scopes name.\n[[discovery.auto_adopt]]\n"
    );
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
    s
}

fn toml_quote(v: &str) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into())
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
    let DemoArgs {
        cameras,
        speakers,
        http,
        data_dir,
        seconds,
        broker,
    } = args;
    let broker = start_broker(broker).await?;
    let (data_dir, _tmp) = match data_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile_dir()?;
            (t.clone(), Some(t))
        }
    };
    crate::store::data_dir::ensure(&data_dir)?;
    let password = random_password();
    let township = device_sim::sample_township();
    let sim = start_sim(cameras, speakers, &password).await?;
    let manifest = sim.manifest().clone();
    let mut text = config_text(&manifest, &township, &data_dir, http, &broker);
    // [broadcast] A timetable that plays every three minutes, and a key the
    // demo's "county platform" signs an emergency broadcast with.
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let tt_path = data_dir.join("timetable.toml");
    let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap_or(jiff::tz::TimeZone::UTC);
    let now =
        jiff::Timestamp::from_millisecond(clock.now_ms()).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    std::fs::write(&tt_path, demo_timetable(now.to_zoned(shanghai).datetime()))?;
    text.push_str(&broadcast_section(&tt_path, &signing));
    let broker_url =
        crate::config::parse_broker_url(&broker).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = data_dir.join("gateway.toml");
    std::fs::write(&path, &text)?;
    // SAFETY: set before any other thread reads the environment for this name.
    unsafe_env_set(DEMO_PASSWORD_ENV, &password);
    let cfg = Config::parse(&text, &path.display().to_string())?;
    let store = crate::cmd::run::open_store(&cfg)?;
    let admin_password = add_admin(&store)?;

    // [speakers] The simulated horns go into the speaker inventory, so the
    // dashboard lists them and can test them.
    match import_sim_speakers(&store, &manifest) {
        Ok(n) => tracing::info!(speakers = n, "demo speakers imported"),
        Err(e) => tracing::warn!(error = %e, "importing the demo speakers failed"),
    }

    let banner = Banner {
        township: &township.name,
        cameras,
        speakers,
        http,
        admin_password: &admin_password,
        data_dir: &data_dir,
        config: &path,
        timetable: &tt_path,
        broker: &broker,
        broker_url: &broker_url,
        manifest: &manifest,
    };
    banner.print();

    let shutdown = CancellationToken::new();
    spawn_stopper(seconds.map(Duration::from_secs), shutdown.clone());
    spawn_summary(store.clone(), shutdown.clone());
    // Faults come and go, so health changes can be watched live.
    let sim = Arc::new(sim);
    {
        let sim = sim.clone();
        let sd = shutdown.clone();
        let cams = cameras;
        tokio::spawn(async move { fault_script(&sim, cams, sd).await });
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
    if let Some(t) = _tmp {
        let _ = std::fs::remove_dir_all(t);
    }
    Ok(())
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

/// The simulator: every camera with login `admin`/`password`, a control
/// endpoint, and two cameras faulty from the start.
async fn start_sim(
    cameras: usize,
    speakers: usize,
    password: &str,
) -> anyhow::Result<device_sim::Sim> {
    device_sim::start(device_sim::SimConfig {
        cameras,
        speakers,
        password: Some(password.to_string()),
        username: Some("admin".into()),
        control: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        faults: vec![
            ("cam-0005".into(), device_sim::Fault::WrongPassword),
            ("cam-0009".into(), device_sim::Fault::ClockSkew(600)),
        ]
        .into_iter()
        .filter(|(id, _): &(String, device_sim::Fault)| {
            id[4..].parse::<usize>().is_ok_and(|n| n <= cameras)
        })
        .collect(),
        ..Default::default()
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

/// What the banner on stderr names.
struct Banner<'a> {
    township: &'a str,
    cameras: usize,
    speakers: usize,
    http: SocketAddr,
    admin_password: &'a str,
    data_dir: &'a std::path::Path,
    config: &'a std::path::Path,
    timetable: &'a std::path::Path,
    broker: &'a str,
    broker_url: &'a crate::config::BrokerUrl,
    manifest: &'a device_sim::Manifest,
}

impl Banner<'_> {
    /// Prints where to look.
    fn print(&self) {
        let Banner {
            cameras,
            speakers,
            http,
            admin_password,
            broker,
            manifest,
            ..
        } = self;
        let first = manifest
            .devices
            .first()
            .map(|d| d.address.clone())
            .unwrap_or_default();
        let last = manifest
            .devices
            .last()
            .map(|d| d.address.clone())
            .unwrap_or_default();
        say(format_args!(
            "\n{} demo: {cameras} simulated cameras and {speakers} loudspeakers on {first} – {last}\n\
             \x20 dashboard (zh-CN): http://{http}/   log in as admin / {admin_password}\n\
             \x20 inventory API:     http://{http}/api/v1/devices\n\
             \x20 from a shell:      tgw devices list --data-dir {dd}\n\
             \x20 configuration:     {cfgp}\n\
             \x20 MQTT ({broker}):  mosquitto_sub -h {bhost} -p {bport} -t 'tgw/v1/#' -v\n\
             \x20 camera health:     tgw status --url http://{http}\n\
             \x20 inject a fault:    curl -X POST http://{ctl}/devices/cam-0003/fault -d offline\n\
             \x20 broadcasts:        a scheduled notice every 3 minutes (timetable: {ttp});\n\
             \x20                    a signed emergency broadcast over MQTT 60 s after start, then every 10 min\n\
             \x20 cameras with faults from the start: cam-0005 (wrong password), cam-0009 (clock 10 min fast)\n\
             Ctrl-C stops.\n",
            self.township,
            dd = self.data_dir.display(),
            cfgp = self.config.display(),
            ttp = self.timetable.display(),
            ctl = manifest.control.as_deref().unwrap_or("-"),
            bhost = self.broker_url.host,
            bport = self.broker_url.port,
        ));
    }
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

/// One summary line a few seconds after the first round.
fn spawn_summary(store: crate::store::Store, shutdown: CancellationToken) {
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(8)) => {}
        }
        if let Ok(devs) = store.devices(None) {
            let inv = devs.iter().filter(|d| d.inventory.is_some()).count();
            let adopted = devs
                .iter()
                .filter(|d| d.state == crate::store::DeviceState::Adopted)
                .count();
            let errs = devs.iter().filter(|d| d.probe_error_kind.is_some()).count();
            say(format_args!(
                "demo: {} cameras discovered, {adopted} adopted, {inv} inventories fetched, {errs} with probe errors",
                devs.len()
            ));
        }
    });
}

// --- demo speakers (issue 6) ---
/// Imports the simulator's horns into the speaker inventory (their logins
/// sealed like any other); returns how many.
pub fn import_sim_speakers(
    store: &crate::store::Store,
    manifest: &device_sim::Manifest,
) -> anyhow::Result<usize> {
    use crate::config::Ident;
    use crate::speakers::{Codec, DriverKind, NewSpeaker, Speakers};
    use crate::store::secrets::Password;
    use device_drivers::speaker::SpeakerUri;
    let mut list = Vec::new();
    for d in manifest.devices.iter().filter(|d| d.kind == "speaker") {
        let Some(text) = d.uri.as_deref().or(d.rtp.as_deref()) else {
            continue;
        };
        let uri: SpeakerUri = match text.parse() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(speaker = %d.id, error = %e, "demo speaker not importable; skipped");
                continue;
            }
        };
        let id = Ident::parse(&d.id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut s = NewSpeaker {
            id,
            name: Some(format!("模拟喇叭 {}", d.id)),
            kind: DriverKind::Rtp,
            address: String::new(),
            village: Some(d.village.clone()),
            grid: Some(d.grid.clone()),
            zone: None,
            codec: Codec::Pcmu,
            volume: Some(80),
            ttl: None,
            username: None,
            password: None,
        };
        if let SpeakerUri::Rtp {
            dest, codec, ttl, ..
        } = &uri
        {
            s.address = dest.to_string();
            if matches!(codec, device_drivers::g711::Codec::Pcma) {
                s.codec = Codec::Pcma;
            }
            if dest.ip().is_multicast() {
                s.kind = DriverKind::RtpMulticast;
                let zone = format!("zone-{}", dest.to_string().replace(['.', ':'], "-"));
                s.zone = Some(Ident::parse(&zone).map_err(|e| anyhow::anyhow!("{e}"))?);
                s.ttl = u8::try_from(*ttl).ok();
            }
        } else if let SpeakerUri::Sip {
            user,
            password,
            addr,
            ..
        } = &uri
        {
            s.kind = DriverKind::Sip;
            s.address = format!("sip:{user}@{addr}");
            s.username = Some(user.clone());
            s.password = password.clone().map(Password::new);
        } else if let SpeakerUri::Axis {
            user,
            password,
            addr,
        } = &uri
        {
            s.kind = DriverKind::Axis;
            s.address = addr.to_string();
            s.username = user.clone();
            s.password = password.clone().map(Password::new);
        } else {
            continue;
        }
        list.push(s);
    }
    Speakers::open(store)?.upsert(&list)?;
    Ok(list.len())
}
// --- end demo speakers ---

/// The demo timetable: a short notice to every horn every three minutes
/// from the next whole minute after `now` (local time), 96 times (a
/// schedule takes at most 96 times a day).
pub fn demo_timetable(now: jiff::civil::DateTime) -> String {
    let mut times = Vec::with_capacity(96);
    let start = now.hour() as i32 * 60 + now.minute() as i32 + 1;
    for k in 0..96 {
        let m = (start + 3 * k).rem_euclid(24 * 60);
        times.push(format!("\"{:02}:{:02}\"", m / 60, m % 60));
    }
    times.sort();
    times.dedup();
    format!(
        r#"# Written by `tgw demo` (docs/schedules.md).
timezone = "Asia/Shanghai"

[[programme]]
id = "demo-notice"
name = "定时广播：安全提示"
items = [ {{ tts = "各位村民请注意：汛期来临，请不要在河边玩耍，注意用电安全。" }} ]
pre_chime = "chime"
priority = "routine"

[[schedule]]
id = "every-3-min"
programme = "demo-notice"
targets = ["all"]
at = [{}]
"#,
        times.join(", ")
    )
}

/// The `[broadcast]` section of the demo: the timetable file and the public
/// half of the demo's signing key.
fn broadcast_section(timetable: &std::path::Path, key: &ed25519_dalek::SigningKey) -> String {
    format!(
        "\n[broadcast]\ntimetable = {}\n\n[[broadcast.keys]]\nid = \"demo-county\"\npublic_key = \"{}\"\nscope = [\"all\"]\n",
        toml_quote(&timetable.display().to_string()),
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
async fn fault_script(sim: &device_sim::Sim, cameras: usize, shutdown: CancellationToken) {
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
                say(format_args!("demo: {id} recovers"));
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
            say(format_args!("demo: {id} <- {name} for 60 s"));
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
        let sim = device_sim::start(device_sim::SimConfig {
            cameras: 1,
            speakers: 4,
            password: Some("sim-Secret-pw".into()),
            speaker_kinds: vec![
                device_sim::SpeakerKind::Rtp,
                device_sim::SpeakerKind::RtpMulticast,
                device_sim::SpeakerKind::Sip,
                device_sim::SpeakerKind::Axis,
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
        );
        let cfg = Config::parse(&text, "demo").unwrap();
        store.sync_township(&cfg.township).unwrap();
        assert_eq!(import_sim_speakers(&store, &manifest).unwrap(), 4);
        let list = crate::speakers::Speakers::open(&store)
            .unwrap()
            .list()
            .unwrap();
        let kinds: BTreeSet<&str> = list.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["axis", "rtp", "rtp-multicast", "sip"])
        );
        assert!(list.iter().all(|s| s.village.is_some()));
        let sip = list.iter().find(|s| s.kind.as_str() == "sip").unwrap();
        assert!(sip.has_password);
        sim.shutdown().await;
    }
}
