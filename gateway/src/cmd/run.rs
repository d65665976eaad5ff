//! `tgw run`: the long-lived gateway.
//!
//! Loops, each in its own task and each stopping on the one shutdown token:
//! - discovery rounds every `discovery.interval_secs`;
//! - a Hello/Bye listener per interface (a Hello triggers an immediate probe);
//! - inventory refreshes, at most `inventory.concurrency` cameras at once;
//! - the health poller (one task per adopted camera);
//! - the HTTP endpoint when `[http]` is configured.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::wsd_io::{self, WsdEvent};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::base::metrics::Metrics;
use crate::cameras::discovery;
use crate::cameras::inventory::{self, Prober};
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
pub fn due_for_inventory(store: &Store, cfg: &Config) -> anyhow::Result<Vec<String>> {
    let refresh =
        time::Duration::try_from(cfg.inventory.refresh_secs).unwrap_or(time::Duration::HOUR);
    let now = time::OffsetDateTime::now_utc();
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
        if stale || d.probe_error_kind.is_some() {
            out.push(d.id);
        }
    }
    Ok(out)
}

/// Runs the gateway until `shutdown` is cancelled.
pub async fn run(cfg: Config, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    let prober = Prober::new(cfg.inventory.call_timeout_ms)?;
    let opts = discovery::options(&cfg.discovery)?;
    let speaker_search = discovery::SpeakerSearch::from_config(&cfg.discovery, &opts);
    let (probe_tx, mut probe_rx) = mpsc::channel::<String>(1024);
    let (wake_tx, wake_rx) = mpsc::channel::<String>(1024);
    let metrics = Arc::new(Metrics::new());
    let mut tasks = tokio::task::JoinSet::new();
    // [http/live] Health events for dashboards (SSE); also the poller's sink.
    let live = crate::base::live::LiveHub::default();

    // The uplink to the governance centre, when [mqtt] is configured.
    let rediscover = Arc::new(Notify::new());
    let reload = Arc::new(Notify::new());
    let broadcasts_cell = Arc::new(std::sync::OnceLock::new());
    let uplink = match &cfg.mqtt {
        Some(_) => {
            let commands = Arc::new(Commands {
                store: store.clone(),
                rediscover: rediscover.clone(),
                probe: probe_tx.clone(),
                wake: wake_tx.clone(),
                reload: reload.clone(),
                broadcasts: broadcasts_cell.clone(),
                cap_topic: cfg
                    .warnings
                    .enabled
                    .then(|| cfg.warnings.mqtt_topic.clone())
                    .flatten(),
            });
            Some(
                Uplink::start(
                    &cfg,
                    shutdown.clone(),
                    commands,
                    crate::base::clock::system(),
                )
                .await?,
            )
        }
        None => None,
    };
    let publisher = uplink
        .as_ref()
        .map_or_else(Publisher::disabled, Uplink::publisher);
    let sink: Arc<dyn HealthSink> = Arc::new(Fanout(vec![
        Arc::new(live.clone()),
        Arc::new(MqttSink(publisher.clone())),
    ]));

    // Broadcasts: the engine, the timetable, CAP feeds (issue 7).
    let bcast = crate::broadcast::runtime::start_for_daemon(
        &cfg,
        &store,
        publisher.clone(),
        live.clone(),
        opts.interfaces.first().copied(),
        shutdown.clone(),
    )?;
    let _ = broadcasts_cell.set(bcast.broadcasts.clone());
    for h in bcast.tasks {
        tasks.spawn(async move {
            let _ = h.await;
            Ok(())
        });
    }

    if cfg.health.enabled {
        let poller = Poller::new(store.clone(), cfg.health.clone(), metrics.clone(), sink)?;
        let sd = shutdown.clone();
        tasks.spawn(async move {
            poller.run(sd, wake_rx).await;
            Ok(())
        });
    }

    if let Some(http) = &cfg.http {
        let listener = tokio::net::TcpListener::bind(http.listen)
            .await
            .map_err(|e| anyhow::anyhow!("http.listen {}: {e}", http.listen))?;
        tracing::info!(addr = %http.listen, "http listening");
        // [http] state: probe-now channel, live hub, time zone, shutdown.
        let state =
            crate::http::AppState::new(store.clone(), cfg.township.name.clone(), metrics.clone())?
                .with_probe(probe_tx.clone())
                .with_live(live.clone())
                .with_timezone(&cfg.gateway.timezone)
                .with_multicast_if(opts.interfaces.first().copied())
                .with_broadcasts(
                    bcast.broadcasts.clone(),
                    bcast.assets.clone(),
                    cfg.broadcast.default_volume.min(100) as u8,
                    cfg.broadcast.timetable.clone(),
                )
                .with_shutdown(shutdown.clone());
        let state = match crate::cmd::log_level_handle() {
            Some((f, cur)) => state.with_log_level(f, &cur),
            None => state,
        };
        let app = crate::http::router(state)
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let sd = shutdown.clone();
        tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { sd.cancelled().await })
                .await
                .map_err(anyhow::Error::from)
        });
    }

    // Hello/Bye listeners.
    if cfg.discovery.enabled && cfg.discovery.listen && cfg.discovery.multicast {
        let (tx, mut rx) = mpsc::channel::<WsdEvent>(1024);
        let ifaces = if opts.interfaces.is_empty() {
            discovery::default_interfaces()
        } else {
            opts.interfaces.clone()
        };
        for iface in ifaces {
            let tx = tx.clone();
            let sd = shutdown.clone();
            let group = cfg.discovery.multicast_group;
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
        let store2 = store.clone();
        let rules = cfg.discovery.auto_adopt.clone();
        let probe_tx = probe_tx.clone();
        let wake_tx = wake_tx.clone();
        tasks.spawn(async move {
            while let Some(ev) = rx.recv().await {
                match ev {
                    WsdEvent::Hello(d) => {
                        match discovery::record(&store2, std::slice::from_ref(&d), &rules) {
                            Ok(r) => {
                                // A Hello refreshes the inventory, then health.
                                for id in r.ids {
                                    let _ = probe_tx.try_send(id);
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "recording hello failed"),
                        }
                    }
                    WsdEvent::Bye { endpoint_ref, .. } => match store2.record_bye(&endpoint_ref) {
                        Ok(Some(id)) => {
                            tracing::info!(device = %id, "camera said bye");
                            let _ = wake_tx.try_send(id);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "recording bye failed"),
                    },
                }
            }
            Ok(())
        });
    }

    // Immediate probes (Hello, API).
    {
        let store2 = store.clone();
        let prober2 = prober.clone();
        let metrics2 = metrics.clone();
        let publisher2 = publisher.clone();
        let wake_tx = wake_tx.clone();
        let sd = shutdown.clone();
        let limit = Arc::new(tokio::sync::Semaphore::new(cfg.inventory.concurrency));
        tasks.spawn(async move {
            loop {
                let id = tokio::select! {
                    _ = sd.cancelled() => break,
                    id = probe_rx.recv() => match id { Some(id) => id, None => break },
                };
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let (store3, prober3, metrics3) =
                    (store2.clone(), prober2.clone(), metrics2.clone());
                let (publisher3, wake3) = (publisher2.clone(), wake_tx.clone());
                tokio::spawn(async move {
                    let o = inventory::probe_device(&store3, &prober3, &id).await;
                    Metrics::count(&metrics3.inventories, &o.result);
                    if o.result == "ok" {
                        publish_meta(&store3, &publisher3, &o.id);
                    }
                    // Then re-check its health at once.
                    let _ = wake3.try_send(o.id);
                    drop(permit);
                });
            }
            Ok(())
        });
    }

    // Discovery + inventory rounds.
    {
        let store2 = store.clone();
        let sd = shutdown.clone();
        let cfg2 = cfg.clone();
        let metrics2 = metrics.clone();
        let publisher2 = publisher.clone();
        let (rediscover, reload) = (rediscover.clone(), reload.clone());
        let bc2 = bcast.broadcasts.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(cfg2.discovery.interval_secs);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = sd.cancelled() => break,
                    _ = tick.tick() => {}
                    _ = rediscover.notified() => tracing::info!("rediscovery requested"),
                    _ = reload.notified() => {
                        match reload_config(&cfg2, &store2) {
                            Ok(()) => tracing::info!("configuration reloaded (township, credential groups)"),
                            Err(e) => tracing::warn!(error = %format!("{e:#}"), "configuration reload failed; keeping the running one"),
                        }
                        if let Some(f) = &cfg2.broadcast.timetable {
                            match tgw_core::schedule::Timetable::load(f, &cfg2.broadcast.timezone) {
                                Ok(tt) => {
                                    bc2.set_timetable(tt).await;
                                    tracing::info!(file = %f.display(), "timetable reloaded");
                                }
                                Err(e) => tracing::warn!(error = %e, "timetable reload failed; keeping the running one"),
                            }
                        }
                        continue;
                    }
                }
                if cfg2.discovery.enabled {
                    let r = tokio::select! {
                        _ = sd.cancelled() => break,
                        r = discovery::round(&store2, &opts, &speaker_search, &cfg2.discovery.auto_adopt) => r,
                    };
                    match r {
                        Ok(r) => {
                            Metrics::count(&metrics2.discovery_rounds, "ok");
                            tracing::info!(found = r.found, new = r.new, auto_adopted = r.auto_adopted, speakers = r.speakers, new_speakers = r.new_speakers, "discovery round done");
                        }
                        Err(e) => {
                            Metrics::count(&metrics2.discovery_rounds, "error");
                            tracing::warn!(error = %e, "discovery round failed");
                        }
                    }
                }
                let due = match due_for_inventory(&store2, &cfg2) {
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
                    o = inventory::probe_many(&store2, &prober, due, cfg2.inventory.concurrency, Arc::new(|_| {})) => o,
                };
                for o in &outcomes {
                    Metrics::count(&metrics2.inventories, &o.result);
                    if o.result == "ok" {
                        publish_meta(&store2, &publisher2, &o.id);
                    }
                }
                let ok = outcomes.iter().filter(|o| o.result == "ok").count();
                tracing::info!(probed = n, ok, failed = n - ok, "inventory round done");
            }
            Ok(())
        });
    }

    shutdown.cancelled().await;
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
fn reload_config(running: &Config, store: &Store) -> anyhow::Result<()> {
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
    Ok(())
}
