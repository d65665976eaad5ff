//! Startup: [`start`] the runtime task from its [`Parts`] (restoring the
//! scheduler's progress, the warning desk and the nonce memory), and
//! [`start_for_daemon`] from the configuration; [`load_timetable`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::handle::Broadcasts;
use super::playout::{DriverPlayer, Player};
use super::spec::Settings;
use super::{ReportSink, Runtime, Shared};
use crate::base::clock::Clock;
use crate::base::live::LiveHub;
use crate::broadcast::Ms;
use crate::broadcast::audio::assets::AssetStore;
use crate::broadcast::engine::{Engine, EngineConfig};
use crate::broadcast::record::Records;
use crate::broadcast::signed::{KeySet, NonceSnapshot, Verifier};
use crate::speakers::Speakers;
use tgw_core::schedule::Timetable;

/// Everything the runtime needs.
pub struct Parts {
    /// Broadcast records (stamped with `clock` from the start on).
    pub records: Records,
    /// MQTT.
    pub publisher: Arc<dyn ReportSink>,
    /// Dashboards.
    pub live: LiveHub,
    /// The speaker inventory.
    pub speakers: Speakers,
    /// Audio assets.
    pub assets: AssetStore,
    /// The timetable in force at start.
    pub timetable: Timetable,
    /// Settings.
    pub settings: Settings,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Horn drivers.
    pub player: Arc<dyn Player>,
    /// Early warnings (`None`: off).
    pub warnings: Option<tgw_core::warning::WarningsConfig>,
    /// Keys of signed MQTT commands.
    pub keys: KeySet,
}

/// Starts the runtime task; it stops on `shutdown` (stopping every horn).
pub fn start(
    parts: Parts,
    shutdown: CancellationToken,
) -> (Broadcasts, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let timetable: Shared = Arc::new(RwLock::new(Arc::new(parts.timetable)));
    let now = parts.clock.now_ms();
    let checked_until = parts
        .records
        .kv("scheduler_checked_until")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<Ms>().ok())
        .map(|c| c.max(now - parts.settings.max_catch_up.as_millis() as Ms))
        .unwrap_or(now);
    let desk = parts.warnings.map(|cfg| {
        match parts
            .records
            .kv("warning_desk")
            .ok()
            .flatten()
            .and_then(|s| serde_json::from_str::<tgw_core::warning::DeskSnapshot>(&s).ok())
        {
            Some(snap) => tgw_core::warning::Desk::restore(cfg.clone(), snap).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "warning desk memory not restored");
                tgw_core::warning::Desk::new(cfg)
            }),
            None => tgw_core::warning::Desk::new(cfg),
        }
    });
    let verifier = match parts
        .records
        .kv("signed_nonces")
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str::<NonceSnapshot>(&s).ok())
    {
        Some(snap) => Verifier::restore(parts.keys, snap),
        None => Verifier::new(parts.keys),
    };
    let rt = Runtime {
        engine: Engine::new(EngineConfig {
            lead_ms: parts.settings.lead.as_millis() as i64,
            stop_timeout_ms: parts.settings.stop_timeout.as_millis() as i64,
        }),
        records: parts.records.with_clock(parts.clock.clone()),
        publisher: parts.publisher,
        live: parts.live,
        speakers: parts.speakers,
        assets: parts.assets,
        timetable: timetable.clone(),
        settings: parts.settings,
        clock: parts.clock,
        player: parts.player,
        tx: tx.clone(),
        pending: HashMap::new(),
        running: HashMap::new(),
        checked_until,
        desk,
        verifier,
        expiries: Vec::new(),
        deferred: Vec::new(),
        batch_now: None,
        live_horns: Default::default(),
    };
    let h = tokio::spawn(rt.run(rx, shutdown));
    (Broadcasts { tx, timetable }, h)
}

/// Loads the timetable in force: the `[broadcast] timetable` file when
/// set, else the newest version in the store, else an empty one.
pub fn load_timetable(cfg: &crate::config::Config, records: &Records) -> anyhow::Result<Timetable> {
    let b = &cfg.broadcast;
    if let Some(f) = &b.timetable {
        return Timetable::load(f, &b.timezone).map_err(|e| anyhow::anyhow!("{e}"));
    }
    let calendar = match &b.calendar {
        Some(p) => tgw_core::schedule::Calendar::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => tgw_core::schedule::Calendar::default(),
    };
    let parts = match records.timetable()? {
        Some((v, doc)) => serde_json::from_str::<tgw_core::schedule::Parts>(&doc)
            .map_err(|e| anyhow::anyhow!("stored timetable version {v}: {e}"))?,
        None => tgw_core::schedule::Parts::default(),
    };
    Timetable::from_parts(parts, calendar, &b.timezone)
        .map_err(|e| anyhow::anyhow!("stored timetable: {e}"))
}

/// What the daemon needs from [`start_for_daemon`].
pub struct Started {
    /// The handle.
    pub broadcasts: Broadcasts,
    /// The asset store (for the API).
    pub assets: AssetStore,
    /// The runtime task and the feed pollers.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The recorder of what aired (for the API's recordings).
    pub aired: crate::broadcast::aired::Aired,
}

/// Starts the runtime from the configuration, with the system clock and
/// the real drivers, and a poller per `[warnings]` feed.
pub fn start_for_daemon(
    cfg: &crate::config::Config,
    store: &crate::store::Store,
    publisher: Arc<dyn ReportSink>,
    live: LiveHub,
    multicast_if: Option<std::net::Ipv4Addr>,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let b = &cfg.broadcast;
    let clock = crate::base::clock::system();
    let records = Records::open_with_clock(store, clock.clone())?;
    let timetable = load_timetable(cfg, &records)?;
    let assets = AssetStore::open(
        &cfg.gateway.data_dir,
        crate::broadcast::audio::AudioSettings::from(&cfg.audio),
    )?;
    let aired =
        crate::broadcast::aired::Aired::open(store.clone(), &cfg.gateway.data_dir, clock.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys =
        KeySet::from_config(&b.keys).map_err(|e| anyhow::anyhow!("[broadcast] keys: {e}"))?;
    let cloud = match (&cfg.mqtt, b.cloud_serve) {
        (Some(m), Some(serve)) => m.broker().ok().and_then(|u| {
            u.host
                .parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| (std::net::SocketAddr::new(ip, u.port), serve))
        }),
        _ => None,
    };
    let settings = Settings {
        lead: Duration::from_millis(b.playout_delay_ms),
        preroll: Duration::from_secs(b.preroll_secs),
        queue_window: Duration::from_secs(b.queue_window_secs),
        emergency_volume: b.emergency_volume.min(100) as u8,
        default_volume: b.default_volume.min(100) as u8,
        tz: jiff::tz::TimeZone::get(&b.timezone)?,
        cloud,
        multicast_if,
        aired: Some(aired.clone()),
        ..Settings::default()
    };
    let driver = settings.driver.clone();
    let warnings = cfg.warnings.enabled.then(|| cfg.warnings.clone());
    let feeds = cfg.warnings.feeds.clone();
    let (broadcasts, h) = start(
        Parts {
            records,
            publisher,
            live,
            speakers: Speakers::open(store)?,
            assets: assets.clone(),
            timetable,
            settings,
            clock,
            player: Arc::new(DriverPlayer(driver)),
            warnings,
            keys,
        },
        shutdown.clone(),
    );
    let mut tasks = vec![h];
    tasks.push(tokio::spawn(crate::broadcast::aired::prune_every(
        aired.clone(),
        Duration::from_secs(b.recordings_keep_days * 86_400),
        b.recordings_max_mb.saturating_mul(1 << 20),
        Duration::from_secs(3600),
        shutdown.clone(),
    )));
    if cfg.warnings.enabled && !feeds.is_empty() {
        let client = crate::base::https::client(
            cfg.http
                .as_ref()
                .and_then(|h| h.outbound_ca_file.as_deref()),
        )?;
        for f in feeds {
            tasks.push(tokio::spawn(crate::broadcast::feeds::poll_with(
                client.clone(),
                f,
                broadcasts.clone(),
                shutdown.clone(),
            )));
        }
    }
    Ok(Started {
        broadcasts,
        assets,
        tasks,
        aired,
    })
}
