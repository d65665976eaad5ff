//! `tgw run`: the long-lived gateway.
//!
//! Loops, each in its own task and each stopping on the one shutdown token:
//! - discovery rounds every `discovery.interval_secs`;
//! - a Hello/Bye listener per interface (a Hello triggers an immediate probe);
//! - inventory refreshes, at most `inventory.concurrency` cameras at once;
//! - the health poller (one task per adopted camera);
//! - the disk-space watchdog (`base::disk`) and the `local_limit` alarm;
//! - scheduled backups when `[backup]` is configured (`backup_schedule`);
//! - the HTTP endpoint when `[http]` is configured.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::wsd_io::{self, WsdEvent};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::base::clock::Clock;
use crate::base::metrics::Metrics;
use crate::broadcast::runtime::{Broadcasts, Started};
use crate::cameras::discovery;
use crate::cameras::inventory::{self, LocalProbes, Prober};
use crate::cameras::poller::HealthSink;
use crate::cameras::poller::Poller;
use crate::config::Config;
use crate::store::secrets::Password;
use crate::store::{DeviceState, Store};
use crate::uplink::centre::{Commands, Fanout, MqttSink};
use crate::uplink::{Publisher, Uplink};

/// Opens the store for a configuration and brings it in line with it:
/// township tree and credential groups.
pub fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    let store = Store::open(&cfg.gateway.data_dir)?;
    store.sync_township(&cfg.township)?;
    for g in &cfg.credential_groups {
        let pw = Password::new(g.resolve_password()?);
        store.set_group(
            g.name.as_str(),
            &g.username,
            &pw,
            &g.subnets,
            &g.mac_prefixes,
            g.priority,
        )?;
    }
    Ok(store)
}

/// Which devices need an inventory now: never fetched, or older than the
/// refresh interval, or whose last attempt failed (retried each round; the
/// driver's auth backoff keeps a locked account from being hammered).
pub fn due_for_inventory(
    store: &Store,
    cfg: &Config,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<String>> {
    let refresh =
        time::Duration::try_from(cfg.inventory.refresh_secs).unwrap_or(time::Duration::HOUR);
    let now = clock.now_utc();
    let mut out = Vec::new();
    for d in store.devices(None)? {
        // ONVIF inventory is for cameras; discovered speakers are not probed.
        if d.kind != "camera" {
            continue;
        }
        let eligible = match d.state {
            DeviceState::Adopted => true,
            DeviceState::Discovered => cfg.inventory.probe_unadopted && d.has_credentials,
            DeviceState::Ignored => false,
        };
        if !eligible {
            continue;
        }
        let stale = match &d.inventory_at {
            None => true,
            Some(t) => {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map(|t| now - t >= refresh)
                    .unwrap_or(true)
            }
        };
        // An adopted camera without an inventory, or whose last one failed,
        // is the health poller's to retry (with backoff, at once when it
        // comes back): not asked every round.
        let failed = d.inventory.is_none() || d.probe_error_kind.is_some();
        if d.state == DeviceState::Adopted && cfg.health.enabled && failed {
            continue;
        }
        if stale || d.probe_error_kind.is_some() {
            out.push(d.id);
        }
    }
    Ok(out)
}

/// What the daemon's loops share.
#[derive(Clone)]
struct Shared {
    cfg: Arc<Config>,
    store: Store,
    metrics: Arc<Metrics>,
    publisher: Publisher,
    /// Inventory now (a Hello, the API).
    probe_tx: mpsc::Sender<String>,
    /// Health check now (after an inventory, a Bye).
    wake_tx: mpsc::Sender<String>,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
    /// The GB/T 28181 uplink and its health/event sink, when configured.
    gb: Option<(crate::gb28181::Gb, Arc<crate::gb28181::GbSink>)>,
}

/// Requests from the centre and the API that the discovery loop serves.
#[derive(Clone, Default)]
struct Requests {
    rediscover: Arc<Notify>,
    reload: Arc<Notify>,
    /// The file as running, to name keys a reload cannot apply.
    reloader: Option<Arc<super::reload::Reloader>>,
}

type Tasks = tokio::task::JoinSet<anyhow::Result<()>>;

/// Runs the gateway until `shutdown` is cancelled.
pub async fn run(
    cfg: Config,
    store: Store,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    // Before any device client is made: https device URLs trust the
    // system roots plus http.outbound_ca_file.
    crate::base::https::install_device_tls(
        cfg.http
            .as_ref()
            .and_then(|h| h.outbound_ca_file.as_deref()),
    )?;
    let prober = Prober::new(cfg.inventory.call_timeout_ms)?;
    let opts = discovery::options(&cfg.discovery)?;
    let (probe_tx, probe_rx) = mpsc::channel::<String>(1024);
    let (wake_tx, wake_rx) = mpsc::channel::<String>(1024);
    let mut tasks = Tasks::new();
    // [http/live] Health events for dashboards (SSE); also the poller's sink.
    let live = crate::base::live::LiveHub::default();
    let requests = Requests {
        reloader: super::reload::Reloader::new(cfg.source.as_deref()).map(Arc::new),
        ..Requests::default()
    };
    let reload_now = requests.reload.clone();
    crate::base::shutdown::on_sighup(shutdown.clone(), move || {
        tracing::info!("SIGHUP: reloading the configuration");
        reload_now.notify_one();
    });
    let broadcasts_cell = Arc::new(std::sync::OnceLock::new());

    // The uplink to the governance centre, when [mqtt] is configured.
    let uplink = match &cfg.mqtt {
        Some(_) => {
            let commands = Arc::new(Commands {
                store: store.clone(),
                rediscover: requests.rediscover.clone(),
                probe: probe_tx.clone(),
                wake: wake_tx.clone(),
                reload: requests.reload.clone(),
                broadcasts: broadcasts_cell.clone(),
                cap_topic: cfg
                    .warnings
                    .enabled
                    .then(|| cfg.warnings.mqtt_topic.clone())
                    .flatten(),
            });
            Some(Uplink::start(&cfg, shutdown.clone(), commands, clock.clone()).await?)
        }
        None => None,
    };
    let publisher = uplink
        .as_ref()
        .map_or_else(Publisher::disabled, Uplink::publisher);
    let gb = spawn_gb(&mut tasks, &cfg, &store, &clock, &shutdown).await?;
    let sh = Shared {
        gb,
        cfg: cfg.clone(),
        store,
        metrics: Arc::new(Metrics::new()),
        publisher,
        probe_tx,
        wake_tx,
        shutdown,
        clock,
    };
    if let Some(u) = &uplink {
        sh.metrics.set_outbox_source(u.outbox_source());
    }
    if let Some((gb, _)) = &sh.gb {
        crate::gb28181::metrics::register(&sh.metrics, gb.clone());
    }
    spawn_watchdogs(&mut tasks, &sh);
    spawn_backups(&mut tasks, &sh)?;

    // Broadcasts: the engine, the timetable, CAP feeds (issue 7).
    let mut bcast = crate::broadcast::runtime::start_for_daemon(
        &cfg,
        &sh.store,
        Arc::new(crate::broadcast::metered::Metered {
            inner: Arc::new(sh.publisher.clone()),
            metrics: sh.metrics.clone(),
        }),
        live.clone(),
        opts.interfaces.first().copied(),
        sh.shutdown.clone(),
    )?;
    let _ = broadcasts_cell.set(bcast.broadcasts.clone());
    if let Some((gb, _)) = &sh.gb {
        gb.set_voice(gb_voice(&cfg, &bcast));
    }
    for h in std::mem::take(&mut bcast.tasks) {
        tasks.spawn(async move {
            let _ = h.await;
            Ok(())
        });
    }

    let local_probes = if cfg.health.enabled {
        Some(spawn_poller(&mut tasks, &sh, &live, wake_rx)?)
    } else {
        None
    };
    if let Some(http) = &cfg.http {
        let (listener, tls) = bind_http(http, &sh).await?;
        spawn_http(&mut tasks, &sh, listener, tls, &live, &bcast, &opts)?;
    }
    if cfg.discovery.enabled && cfg.discovery.listen && cfg.discovery.multicast {
        spawn_hello_listeners(&mut tasks, &sh, &opts);
    }
    spawn_immediate_probes(&mut tasks, &sh, prober.clone(), probe_rx, local_probes);
    spawn_rounds(
        &mut tasks,
        &sh,
        prober,
        opts,
        requests,
        bcast.broadcasts.clone(),
    );

    // The store, HTTP and the uplink (its outbox; the broker may still be
    // unreachable) are up: tell systemd, then keep its watchdog fed.
    let notifier = notify_ready(&mut tasks, &sh);
    sh.shutdown.cancelled().await;
    notifier.notify("STOPPING=1");
    // Give tasks a moment to stop on the token, then abort the rest.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop within 5 s; aborting them");
    }
    // Flush the outbox writer and say goodbye on the status topic.
    if let Some(u) = uplink {
        u.join().await;
    }
    Ok(())
}

/// Tells systemd READY=1 and, when it asks for a watchdog, pings it from a
/// task until shutdown.
fn notify_ready(tasks: &mut Tasks, sh: &Shared) -> crate::base::notify::Notifier {
    let notifier = crate::base::notify::Notifier::from_env();
    notifier.notify("READY=1");
    if let Some(every) = notifier.watchdog_every() {
        let (n, sd) = (notifier.clone(), sh.shutdown.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = sd.cancelled() => break,
                    _ = tick.tick() => {
                        n.notify("WATCHDOG=1");
                        tracing::debug!("watchdog ping");
                    }
                }
            }
            Ok(())
        });
    }
    notifier
}

/// The GB/T 28181 uplink to video platforms, when `[gb28181]` is configured:
/// its handle (status) and the sink health and events feed it.
async fn spawn_gb(
    tasks: &mut Tasks,
    cfg: &Config,
    store: &Store,
    clock: &Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<(crate::gb28181::Gb, Arc<crate::gb28181::GbSink>)>> {
    let Some(g) = &cfg.gb28181 else {
        return Ok(None);
    };
    let (gb, tx, task) = crate::gb28181::spawn(
        g.clone(),
        store.clone(),
        Arc::new(crate::gb28181::media::Relays::new(g.media(), clock.clone())),
        clock.clone(),
        shutdown.clone(),
    )
    .await?;
    tasks.spawn(async move {
        let _ = task.await;
        Ok(())
    });
    Ok(Some((gb, Arc::new(crate::gb28181::GbSink(tx)))))
}

/// Horns as GB/T 28181 voice channels: a platform's broadcasts become live
/// pages on this runtime, recorded and audited.
fn gb_voice(cfg: &Config, bcast: &Started) -> crate::gb28181::VoiceDeps {
    crate::gb28181::VoiceDeps {
        broadcasts: bcast.broadcasts.clone(),
        aired: Some(bcast.aired.clone()),
        audit: cfg.audit.retention(),
    }
}

/// The disk-space watchdog of `gateway.data_dir`: its level is shared
/// through the metrics (`/readyz`, `/metrics`, optional writes); each
/// change goes out as a `disk_low` alarm. And the `local_limit` alarm's
/// task (`base::local_alarm`): each raise and clear goes out the same way.
fn spawn_watchdogs(tasks: &mut Tasks, sh: &Shared) {
    use crate::base::{disk, local_alarm};
    let publisher = sh.publisher.clone();
    let on_change = move |c: &local_alarm::AlarmChange| publisher.alarm(c.alarm_body());
    let local = local_alarm::run(sh.metrics.clone(), on_change, sh.shutdown.clone());
    let g = &sh.cfg.gateway;
    let opts = disk::WatchOptions {
        dir: g.data_dir.clone(),
        marks: disk::Marks::from_mb(g.disk_low_mb, g.disk_critical_mb),
        every: Duration::from_secs(g.disk_check_secs),
        read: Arc::new(disk::statvfs_space),
    };
    let publisher = sh.publisher.clone();
    let watch = disk::run(
        opts,
        sh.metrics.disk().clone(),
        move |c: &disk::Change| publisher.alarm(c.alarm_body()),
        sh.shutdown.clone(),
    );
    tasks.spawn(async move {
        tokio::join!(watch, local);
        Ok(())
    });
}

/// Scheduled backups when `[backup]` is configured (`backup_schedule`);
/// fails on an unset `backup.passphrase_env`.
fn spawn_backups(tasks: &mut Tasks, sh: &Shared) -> anyhow::Result<()> {
    let alarms = sh.publisher.clone();
    if let Some(t) = super::backup_schedule::task(
        &sh.cfg,
        &sh.metrics,
        sh.clock.clone(),
        move |v| alarms.alarm(v),
        sh.shutdown.clone(),
    )? {
        tasks.spawn(async move {
            t.await;
            Ok(())
        });
    }
    Ok(())
}

/// The health poller (one task per adopted camera), reporting to the live
/// hub and the uplink; returns where inventories that failed on the
/// gateway's side are noted for it.
fn spawn_poller(
    tasks: &mut Tasks,
    sh: &Shared,
    live: &crate::base::live::LiveHub,
    wake_rx: mpsc::Receiver<String>,
) -> anyhow::Result<LocalProbes> {
    let mut sinks: Vec<Arc<dyn HealthSink>> = vec![
        Arc::new(live.clone()),
        Arc::new(MqttSink(sh.publisher.clone())),
    ];
    if let Some((_, g)) = &sh.gb {
        sinks.push(g.clone());
    }
    let sink: Arc<dyn HealthSink> = Arc::new(Fanout(sinks));
    let poller = Poller::new(
        sh.store.clone(),
        sh.cfg.health.clone(),
        sh.metrics.clone(),
        sink.clone(),
        Some(sh.probe_tx.clone()),
    )?;
    // ONVIF events (PullPoint) of every adopted camera that offers them.
    if sh.cfg.health.events {
        let conditions = spawn_events(tasks, sh, live, sink, poller.health_saves())?;
        poller.set_conditions(conditions);
    }
    // 校时 from a GB/T 28181 platform, when `[gb28181] time_source = true`.
    if let Some(r) = sh.gb.as_ref().and_then(|(gb, _)| gb.time_reference()) {
        poller.set_time_reference(r);
    }
    // `[health] clock_sync`: drifting cameras' clocks set automatically.
    let tz = crate::cameras::clock_sync::posix_tz(&sh.cfg.gateway.timezone);
    poller.set_clock_sync(tz, sh.cfg.audit.retention());
    let local_probes = poller.local_probes();
    let sd = sh.shutdown.clone();
    tasks.spawn(async move {
        poller.run(sd, wake_rx).await;
        Ok(())
    });
    Ok(local_probes)
}

/// The camera event loops (`cameras::events`), reporting events to the
/// live hub and the uplink and tamper / video loss to health through
/// `health_sink` and the poller's buffer of current health (`saves`);
/// returns the conditions the poller applies.
fn spawn_events(
    tasks: &mut Tasks,
    sh: &Shared,
    live: &crate::base::live::LiveHub,
    health_sink: Arc<dyn HealthSink>,
    saves: Arc<crate::cameras::poller::saves::HealthSaves>,
) -> anyhow::Result<Arc<crate::cameras::events::health::Conditions>> {
    use crate::cameras::events::{self, EventFanout, EventSink};
    let h = &sh.cfg.health;
    let th = tgw_core::health::Thresholds {
        offline_after: h.offline_after,
        stall_after: h.stall_secs,
        max_clock_drift: h.max_clock_drift_secs,
        max_loss_pct: h.max_rtp_loss_pct,
        ..Default::default()
    };
    let health = Arc::new(events::health::EventHealth::new(
        sh.store.clone(),
        saves,
        sh.metrics.clone(),
        health_sink,
        sh.clock.clone(),
        th,
    ));
    let conditions = health.conditions.clone();
    let cfg = events::EventsConfig {
        concurrency: h.concurrency,
        camera_access: h.camera_access.clone(),
        pulls: h.event_pulls,
        pull_timeout: h.event_pull_wait_secs,
        pull_every: h.event_pull_every_secs,
        ..Default::default()
    };
    let io = events::io::RealEventIo::new(h.call_timeout_ms, cfg.pull_timeout, sh.clock.clone())?;
    let mut sinks: Vec<Arc<dyn EventSink>> = vec![
        Arc::new(live.clone()),
        Arc::new(MqttSink(sh.publisher.clone())),
    ];
    if let Some((_, g)) = &sh.gb {
        sinks.push(g.clone());
    }
    let sink: Arc<dyn EventSink> = Arc::new(EventFanout(sinks));
    let metrics = Arc::new(events::EventMetrics::new(Some(&sh.metrics)));
    let ev = events::Events::new(
        sh.store.clone(),
        cfg,
        Arc::new(io),
        sh.clock.clone(),
        sink,
        health,
        metrics,
    );
    let sd = sh.shutdown.clone();
    tasks.spawn(async move {
        ev.run(sd).await;
        Ok(())
    });
    Ok(conditions)
}

/// The `[http]` listener and its TLS (`http.tls`), the certificate's
/// fingerprint logged for the technician.
async fn bind_http(
    http: &crate::config::HttpSection,
    sh: &Shared,
) -> anyhow::Result<(tokio::net::TcpListener, Option<crate::http::tls::Tls>)> {
    let tls = crate::http::tls::load(http, &sh.cfg.gateway.data_dir, sh.clock.now_utc())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind(http.listen)
        .await
        .map_err(|e| anyhow::anyhow!("http.listen {}: {e}", http.listen))?;
    match &tls {
        Some(t) => tracing::info!(
            addr = %http.listen,
            sha256 = %t.fingerprint,
            cert = %t.cert_file.display(),
            "https listening; certificate fingerprint for the technician"
        ),
        None => tracing::info!(addr = %http.listen, "http listening"),
    }
    Ok((listener, tls))
}

/// The HTTP endpoint (`[http]`): API, dashboard, metrics.
fn spawn_http(
    tasks: &mut Tasks,
    sh: &Shared,
    listener: tokio::net::TcpListener,
    tls: Option<crate::http::tls::Tls>,
    live: &crate::base::live::LiveHub,
    bcast: &Started,
    opts: &wsd_io::DiscoverOptions,
) -> anyhow::Result<()> {
    let cfg = &sh.cfg;
    // [http] state: probe-now channel, live hub, time zone, shutdown.
    let state = crate::http::AppState::new(
        sh.store.clone(),
        cfg.township.name.clone(),
        sh.metrics.clone(),
    )?
    .with_probe(sh.probe_tx.clone())
    .with_live(live.clone())
    .with_timezone(&cfg.gateway.timezone)
    .with_multicast_if(opts.interfaces.first().copied())
    .with_camera_access(cfg.health.camera_access.clone())
    .with_gb(sh.gb.as_ref().map(|g| g.0.clone()))
    .with_broadcasts(
        bcast.broadcasts.clone(),
        bcast.assets.clone(),
        cfg.broadcast.default_volume.min(100) as u8,
        cfg.broadcast.timetable.clone(),
    )
    .with_shutdown(sh.shutdown.clone())
    .with_secure_cookies(tls.is_some())
    .with_aired(bcast.aired.clone())
    .with_hash_pool(cfg.http.as_ref().map_or_else(Default::default, |h| {
        crate::auth::HashPool::new(h.password_hash_concurrency, h.password_hash_wait())
    }));
    let state = match crate::base::logging::log_level_handle() {
        Some(h) => {
            let current = h.current().to_string();
            let f: crate::http::LogLevelFn = Arc::new(move |s: &str| h.set(s));
            state.with_log_level(f, &current)
        }
        None => state,
    };
    // The audit log's retention: on every insert beyond the cap, and hourly.
    state.users().set_audit_retention(cfg.audit.retention());
    let (users, sd) = (state.users().clone(), sh.shutdown.clone());
    tasks.spawn(async move {
        crate::auth::prune_audit_every(users, Duration::from_secs(3600), sd).await;
        Ok(())
    });
    let app = crate::http::router(state);
    let limits = cfg
        .http
        .as_ref()
        .map(crate::http::ServeLimits::from)
        .unwrap_or_else(|| (&crate::config::HttpSection::default()).into());
    let sd = sh.shutdown.clone();
    tasks.spawn(async move {
        match tls {
            Some(t) => crate::http::serve_tls(listener, app, limits, t.acceptor, sd).await,
            None => crate::http::serve(listener, app, limits, sd).await,
        }
        .map_err(anyhow::Error::from)
    });
    Ok(())
}

/// A Hello/Bye listener per interface: a Hello records the camera and
/// triggers an immediate inventory, a Bye an immediate health check.
fn spawn_hello_listeners(tasks: &mut Tasks, sh: &Shared, opts: &wsd_io::DiscoverOptions) {
    let (tx, mut rx) = mpsc::channel::<WsdEvent>(1024);
    let ifaces = if opts.interfaces.is_empty() {
        discovery::default_interfaces()
    } else {
        opts.interfaces.clone()
    };
    for iface in ifaces {
        let tx = tx.clone();
        let sd = sh.shutdown.clone();
        let group = sh.cfg.discovery.multicast_group;
        tasks.spawn(async move {
            if let Err(e) =
                wsd_io::listen(iface, group, tx, async move { sd.cancelled().await }).await
            {
                tracing::warn!(interface = %iface, error = %e, "hello/bye listener stopped");
            }
            Ok(())
        });
    }
    drop(tx);
    let sh = sh.clone();
    tasks.spawn(async move {
        let rules = &sh.cfg.discovery.auto_adopt;
        while let Some(ev) = rx.recv().await {
            match ev {
                WsdEvent::Hello(d) => {
                    match discovery::record(&sh.store, std::slice::from_ref(&d), rules) {
                        Ok(r) => {
                            // A Hello refreshes the inventory, then health.
                            for id in r.ids {
                                let _ = sh.probe_tx.try_send(id);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "recording hello failed"),
                    }
                }
                WsdEvent::Bye { endpoint_ref, .. } => match sh.store.record_bye(&endpoint_ref) {
                    Ok(Some(id)) => {
                        tracing::info!(device = %id, "camera said bye");
                        let _ = sh.wake_tx.try_send(id);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "recording bye failed"),
                },
            }
        }
        Ok(())
    });
}

/// Immediate probes (Hello, API, the poller), at most
/// `inventory.concurrency` at once; one that failed on the gateway's side
/// is noted in `local_probes` before the camera's task is woken.
fn spawn_immediate_probes(
    tasks: &mut Tasks,
    sh: &Shared,
    prober: Prober,
    mut probe_rx: mpsc::Receiver<String>,
    local_probes: Option<LocalProbes>,
) {
    let sh = sh.clone();
    let limit = Arc::new(tokio::sync::Semaphore::new(sh.cfg.inventory.concurrency));
    tasks.spawn(async move {
        loop {
            let id = tokio::select! {
                _ = sh.shutdown.cancelled() => break,
                id = probe_rx.recv() => match id { Some(id) => id, None => break },
            };
            let Ok(permit) = limit.clone().acquire_owned().await else {
                break;
            };
            let (sh, prober, local) = (sh.clone(), prober.clone(), local_probes.clone());
            tokio::spawn(async move {
                let o = inventory::probe_counted(&sh.store, &prober, &sh.metrics, &id).await;
                if o.result == "ok" {
                    publish_meta(&sh.store, &sh.publisher, &o.id);
                }
                if let Some(l) = &local {
                    l.note(&o);
                }
                // Then re-check its health at once.
                let _ = sh.wake_tx.try_send(o.id);
                drop(permit);
            });
        }
        Ok(())
    });
}

/// Discovery and inventory rounds every `discovery.interval_secs` (or on
/// request), and configuration reloads.
fn spawn_rounds(
    tasks: &mut Tasks,
    sh: &Shared,
    prober: Prober,
    opts: wsd_io::DiscoverOptions,
    requests: Requests,
    broadcasts: Broadcasts,
) {
    let sh = sh.clone();
    let speaker_search = discovery::SpeakerSearch::from_config(&sh.cfg.discovery, &opts);
    tasks.spawn(async move {
        let cfg = &sh.cfg;
        let sd = &sh.shutdown;
        let mut tick = tokio::time::interval(cfg.discovery.interval_secs);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sd.cancelled() => break,
                _ = tick.tick() => {}
                _ = requests.rediscover.notified() => tracing::info!("rediscovery requested"),
                _ = requests.reload.notified() => {
                    reload(cfg, &sh.store, &broadcasts, requests.reloader.as_deref()).await;
                    continue;
                }
            }
            if cfg.discovery.enabled {
                let r = tokio::select! {
                    _ = sd.cancelled() => break,
                    r = discovery::round(&sh.store, &opts, &speaker_search, &cfg.discovery.auto_adopt) => r,
                };
                match r {
                    Ok(r) => {
                        Metrics::count(&sh.metrics.discovery_rounds, "ok");
                        tracing::info!(found = r.found, new = r.new, auto_adopted = r.auto_adopted, speakers = r.speakers, new_speakers = r.new_speakers, "discovery round done");
                    }
                    Err(e) => {
                        Metrics::count(&sh.metrics.discovery_rounds, "error");
                        tracing::warn!(error = %e, "discovery round failed");
                    }
                }
            }
            let due = match due_for_inventory(&sh.store, cfg, sh.clock.as_ref()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, "listing devices failed");
                    continue;
                }
            };
            if due.is_empty() {
                continue;
            }
            let n = due.len();
            let outcomes = tokio::select! {
                _ = sd.cancelled() => break,
                o = inventory::probe_many(&sh.store, &prober, due, cfg.inventory.concurrency, Arc::new(|_| {})) => o,
            };
            for o in &outcomes {
                inventory::count(&sh.metrics, o);
                if o.result == "ok" {
                    publish_meta(&sh.store, &sh.publisher, &o.id);
                }
            }
            let ok = outcomes.iter().filter(|o| o.result == "ok").count();
            let local = outcomes.iter().filter(|o| o.local.is_some()).count();
            tracing::info!(probed = n, ok, failed = n - ok - local, skipped_local = local, "inventory round done");
        }
        Ok(())
    });
}

/// `cmd/reload` from the centre: the township tree and credential groups
/// from the configuration file, and the timetable file; a failure keeps
/// the running ones.
async fn reload(
    cfg: &Config,
    store: &Store,
    broadcasts: &Broadcasts,
    reloader: Option<&super::reload::Reloader>,
) {
    match reload_config(cfg, store) {
        Ok(new) => super::reload::report(reloader, &new),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "configuration reload failed; keeping the running one")
        }
    }
    if let Some(f) = &cfg.broadcast.timetable {
        match tgw_core::schedule::Timetable::load(f, &cfg.broadcast.timezone) {
            Ok(tt) => {
                broadcasts.set_timetable(tt).await;
                tracing::info!(file = %f.display(), "timetable reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "timetable reload failed; keeping the running one")
            }
        }
    }
}

/// Publishes a camera's retained metadata after a successful inventory.
fn publish_meta(store: &Store, publisher: &Publisher, id: &str) {
    if !publisher.is_enabled() {
        return;
    }
    if let Ok(Some(d)) = store.device(id) {
        publisher.camera_meta(&d.id, crate::uplink::centre::meta_body(&d));
    }
}

/// Re-reads the configuration file the gateway was started with and applies
/// what can change at run time: the township tree and credential groups.
fn reload_config(running: &Config, store: &Store) -> anyhow::Result<Config> {
    let path = running
        .source
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("this gateway was not started from a configuration file"))?;
    let cfg = Config::load(path)?;
    store.sync_township(&cfg.township)?;
    for g in &cfg.credential_groups {
        let pw = Password::new(g.resolve_password()?);
        store.set_group(
            g.name.as_str(),
            &g.username,
            &pw,
            &g.subnets,
            &g.mac_prefixes,
            g.priority,
        )?;
    }
    Ok(cfg)
}
