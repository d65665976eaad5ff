//! Fetching each camera's full ONVIF inventory (device information, MAC,
//! clock offset, profiles, stream and snapshot URIs) with bounded
//! concurrency, so one slow or hanging camera never delays the others.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use device_drivers::onvif_client::{CameraInventory, ClientOptions, Credentials, OnvifErrorKind};
use device_drivers::wsd;
use futures::StreamExt;

use crate::cameras::device::{CameraIo, RealCameraIo};
use crate::store::{InventorySummary, Login, Store};

/// How a probe of one camera ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeOutcome {
    /// Device id.
    pub id: String,
    /// `ok`, or an error kind (`auth`, `timeout`, `connect`, `no-credentials`, …);
    /// `local` when the probe failed on the gateway's side (nothing stored).
    pub result: String,
    /// Error detail (never contains credentials).
    pub detail: Option<String>,
    /// What the gateway ran out of, when `result` is `local`.
    #[serde(skip)]
    pub local: Option<LocalResource>,
}

/// Cameras whose last inventory probe failed on the gateway's side
/// (`result` `local`), noted by the worker that ran it before it wakes the
/// camera's poller task, and taken by that task: such an ask is no try
/// against the camera, so its backoff does not grow and the next ask comes
/// after [`LOCAL_RETRY`](crate::base::local_errors::LOCAL_RETRY)
/// (`poller/task.rs`). Holds at most one entry per device in the store.
#[derive(Clone, Default)]
pub struct LocalProbes(Arc<std::sync::Mutex<std::collections::HashSet<String>>>);

impl LocalProbes {
    /// Notes `o` when it failed on the gateway's side; other outcomes
    /// clear an earlier note of the same camera.
    pub fn note(&self, o: &ProbeOutcome) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if o.local.is_some() {
            set.insert(o.id.clone());
        } else {
            set.remove(&o.id);
        }
    }

    /// Whether camera `id`'s last probe failed on the gateway's side, once.
    pub fn take(&self, id: &str) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }
}

/// The camera IO (one shared HTTP client and per-call options) for probing
/// many cameras.
#[derive(Clone)]
pub struct Prober {
    io: Arc<dyn CameraIo>,
}

impl Prober {
    /// A prober whose ONVIF calls each time out after `call_timeout`, on the
    /// system clock.
    pub fn new(call_timeout: Duration) -> anyhow::Result<Self> {
        let opts = ClientOptions {
            timeout: call_timeout,
            ..ClientOptions::default()
        };
        let io = RealCameraIo::new(opts, crate::base::clock::system())?;
        Ok(Self::with_io(Arc::new(io)))
    }

    /// A prober reaching cameras through `io` (tests pass scripted cameras).
    pub fn with_io(io: Arc<dyn CameraIo>) -> Self {
        Self { io }
    }

    /// Fetches the inventory of one camera at `xaddr`.
    pub async fn inventory(
        &self,
        xaddr: &str,
        login: Option<&Login>,
    ) -> Result<CameraInventory, device_drivers::onvif_client::OnvifError> {
        let creds = login.map(|l| Credentials::new(l.username.clone(), l.password.expose()));
        self.io.onvif(xaddr, creds)?.inventory().await
    }
}

/// The summary columns the store indexes.
pub fn summary(inv: &CameraInventory) -> InventorySummary {
    InventorySummary {
        mac: inv.mac.clone(),
        manufacturer: Some(inv.device.manufacturer.clone()).filter(|s| !s.is_empty()),
        model: Some(inv.device.model.clone()).filter(|s| !s.is_empty()),
        firmware: Some(inv.device.firmware_version.clone()).filter(|s| !s.is_empty()),
        serial: Some(inv.device.serial_number.clone()).filter(|s| !s.is_empty()),
    }
}

/// Probes one stored device and records the result.
pub async fn probe_device(store: &Store, prober: &Prober, id: &str) -> ProbeOutcome {
    let outcome = |result: &str, detail: Option<String>| ProbeOutcome {
        id: id.to_string(),
        result: result.to_string(),
        detail,
        local: None,
    };
    let device = match store.device(id) {
        Ok(Some(d)) => d,
        Ok(None) => return outcome("not-found", None),
        Err(e) => return outcome("store", Some(e.to_string())),
    };
    let from = device.address.as_deref().and_then(|a| a.parse().ok());
    let Some(xaddr) = wsd::preferred_xaddr(&device.xaddrs, from) else {
        let _ = store.record_probe_error(id, "no-xaddr", "the camera advertised no usable XAddr");
        return outcome("no-xaddr", None);
    };
    let login = match store.login_for(id) {
        Ok(l) => l,
        Err(e) => return outcome("store", Some(e.to_string())),
    };
    if login.is_none() {
        let _ = store.record_probe_error(
            id,
            "no-credentials",
            "no login set for this camera or its credential group",
        );
        return outcome("no-credentials", None);
    }
    match prober.inventory(&xaddr, login.as_ref()).await {
        Ok(inv) => {
            let json = serde_json::to_value(&inv).unwrap_or_default();
            match store.record_inventory(id, &summary(&inv), &json) {
                Ok(_) => {
                    tracing::debug!(device = %id, profiles = inv.profiles.len(), clock_offset_ms = inv.clock_offset_ms, "inventory fetched");
                    outcome("ok", None)
                }
                Err(e) => outcome("store", Some(e.to_string())),
            }
        }
        Err(e) => {
            if let OnvifErrorKind::Local(r) = e.kind {
                // The gateway's own limit (out of file descriptors, …):
                // nothing about the camera. Its last inventory, or its last
                // probe error, stands; asked for again when next due.
                tracing::debug!(device = %id, errno = r.errno(), "inventory skipped: the gateway's own limit");
                return ProbeOutcome {
                    local: Some(r),
                    ..outcome("local", Some(e.to_string()))
                };
            }
            let kind = e.kind_label();
            let detail = e.to_string();
            tracing::warn!(device = %id, error = %detail, kind, "inventory failed");
            let _ = store.record_probe_error(id, kind, &detail);
            outcome(kind, Some(detail))
        }
    }
}

/// Probes one device, records the result and counts it in the metrics
/// (`tgw_onvif_inventories_total`, failures also by kind).
pub async fn probe_counted(
    store: &Store,
    prober: &Prober,
    metrics: &crate::base::metrics::Metrics,
    id: &str,
) -> ProbeOutcome {
    let o = probe_device(store, prober, id).await;
    count(metrics, &o);
    o
}

/// Counts a probe's outcome: `tgw_onvif_inventories_total` (a failure also
/// in `tgw_camera_inventory_failures_total`), and one on the gateway's side
/// in `tgw_local_errors_total{task="inventory"}` instead of as a failure.
pub fn count(metrics: &crate::base::metrics::Metrics, o: &ProbeOutcome) {
    metrics.inventory_outcome(&o.result);
    if let Some(r) = o.local {
        metrics.local_errors.report(r, "inventory");
    }
}

/// Probes many devices, at most `concurrency` at once; `on_done` is called
/// as each finishes (for progress bars).
pub async fn probe_many(
    store: &Store,
    prober: &Prober,
    ids: Vec<String>,
    concurrency: usize,
    on_done: Arc<dyn Fn(&ProbeOutcome) + Send + Sync>,
) -> Vec<ProbeOutcome> {
    futures::stream::iter(ids)
        .map(|id| {
            let on_done = on_done.clone();
            async move {
                let o = probe_device(store, prober, &id).await;
                on_done(&o);
                o
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

/// A human-readable rendering of an inventory (for `tgw probe camera`).
pub fn render(inv: &CameraInventory) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let d = &inv.device;
    let _ = writeln!(s, "device      {}", inv.xaddr);
    let _ = writeln!(s, "maker       {}", d.manufacturer);
    let _ = writeln!(s, "model       {}", d.model);
    let _ = writeln!(s, "firmware    {}", d.firmware_version);
    let _ = writeln!(s, "serial      {}", d.serial_number);
    let _ = writeln!(s, "hardware    {}", d.hardware_id);
    let _ = writeln!(s, "mac         {}", inv.mac.as_deref().unwrap_or("-"));
    let _ = writeln!(
        s,
        "clock       {:+.1} s from ours",
        inv.clock_offset_ms as f64 / 1000.0
    );
    let _ = writeln!(s, "auth        {:?}", inv.auth);
    let _ = writeln!(s, "media       Media{}", inv.media_version);
    for p in &inv.profiles {
        let v = p.profile.video.as_ref().map_or_else(
            || "no video".to_string(),
            |v| {
                format!(
                    "{} {}x{} {} fps {} kbit/s{}",
                    v.encoding,
                    v.width,
                    v.height,
                    v.fps.map_or("?".into(), |f| format!("{f}")),
                    v.bitrate_kbps.map_or("?".into(), |b| b.to_string()),
                    v.profile
                        .as_ref()
                        .map_or(String::new(), |p| format!(" ({p})"))
                )
            },
        );
        let _ = writeln!(
            s,
            "profile     {} [{}] {v}",
            p.profile.name, p.profile.token
        );
        let _ = writeln!(s, "  stream    {}", p.stream_uri.as_deref().unwrap_or("-"));
        let _ = writeln!(
            s,
            "  snapshot  {}",
            p.snapshot_uri.as_deref().unwrap_or("-")
        );
    }
    for w in &inv.warnings {
        let _ = writeln!(s, "warning     {w}");
    }
    s
}

/// One line describing RTSP stream metadata (a serialised
/// `device_drivers::rtsp::StreamMetadata`, or `{"error": …}`).
pub fn render_stream(m: &serde_json::Value) -> String {
    if let Some(e) = m.get("error") {
        return format!(
            "error: {}",
            e.get("message").and_then(|v| v.as_str()).unwrap_or("?")
        );
    }
    let mut parts = Vec::new();
    if let Some(s) = m.get("server").and_then(|v| v.as_str()) {
        parts.push(format!("server {s}"));
    }
    for t in m
        .get("tracks")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let g = |k: &str| {
            t.get(k)
                .filter(|v| !v.is_null())
                .map(|v| v.to_string().trim_matches('"').to_string())
        };
        let mut d = format!(
            "{} {}",
            g("kind").unwrap_or_default(),
            g("codec").unwrap_or_default()
        );
        if let (Some(w), Some(h)) = (g("width"), g("height")) {
            d.push_str(&format!(" {w}x{h}"));
        }
        if let Some(f) = g("fps") {
            d.push_str(&format!(" {f} fps"));
        }
        if let Some(p) = g("profile") {
            d.push_str(&format!(" {p}"));
        }
        if let Some(l) = g("level") {
            d.push_str(&format!(" L{l}"));
        }
        if let Some(r) = g("clock_rate") {
            d.push_str(&format!(" {r} Hz"));
        }
        parts.push(d);
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cameras::fake::{self, FakeCameras, Script};

    fn rig() -> (tempfile::TempDir, Store, FakeCameras, Prober) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_memory(dir.path()).expect("store");
        let cams = FakeCameras::new(Duration::from_secs(1));
        let prober = Prober::with_io(Arc::new(cams.clone()));
        (dir, store, cams, prober)
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_records_the_inventory_or_why_not() {
        let (_dir, store, cams, prober) = rig();
        cams.set(1, Script::default());
        cams.set(
            2,
            Script {
                auth_ok: false,
                ..Script::default()
            },
        );
        let (ok, locked) = (
            fake::discovered(&store, 1, true),
            fake::discovered(&store, 2, true),
        );
        let outcomes = probe_many(
            &store,
            &prober,
            vec![ok.clone(), locked.clone()],
            2,
            Arc::new(|_| {}),
        )
        .await;
        let result = |id: &str| {
            outcomes
                .iter()
                .find(|o| o.id == id)
                .map(|o| o.result.clone())
        };
        assert_eq!(result(&ok).as_deref(), Some("ok"));
        assert_eq!(result(&locked).as_deref(), Some("auth"));
        let d = store.device(&ok).expect("store").expect("device");
        assert_eq!(d.manufacturer.as_deref(), Some("Acme"));
        assert!(d.inventory.is_some());
        let d = store.device(&locked).expect("store").expect("device");
        assert_eq!(d.probe_error_kind.as_deref(), Some("auth"));
        assert!(d.inventory.is_none());
    }

    /// A re-probe that fails on the gateway's side (out of file
    /// descriptors) is no observation: the good inventory stays, no probe
    /// error is stored, and it is counted as the gateway's trouble, not as
    /// an inventory failure. A camera whose last probe failed keeps that.
    #[tokio::test(start_paused = true)]
    async fn a_probe_failing_on_the_gateways_side_keeps_what_was_known() {
        use device_drivers::local_error::LocalResource;
        let (_dir, store, cams, prober) = rig();
        let metrics = crate::base::metrics::Metrics::new();
        cams.set(1, Script::default());
        cams.set(
            2,
            Script {
                auth_ok: false,
                ..Script::default()
            },
        );
        let (good, locked) = (
            fake::discovered(&store, 1, true),
            fake::discovered(&store, 2, true),
        );
        assert_eq!(
            probe_counted(&store, &prober, &metrics, &good).await.result,
            "ok"
        );
        assert_eq!(
            probe_counted(&store, &prober, &metrics, &locked)
                .await
                .result,
            "auth"
        );
        let before = store.device(&good).expect("store").expect("device");
        let before_locked = store.device(&locked).expect("store").expect("device");

        for n in [1, 2] {
            cams.edit(n, |s| s.local = Some(LocalResource::Emfile));
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        for id in [&good, &locked] {
            let o = probe_counted(&store, &prober, &metrics, id).await;
            assert_eq!(o.result, "local", "{o:?}");
            assert_eq!(o.local, Some(LocalResource::Emfile));
        }
        assert_eq!(cams.calls(1, "inventory").len(), 2, "it was asked");
        let d = store.device(&good).expect("store").expect("device");
        assert_eq!(d.probe_error_kind, None, "stored as a failure");
        assert_eq!(d.probe_error, None);
        assert_eq!(d.inventory, before.inventory, "inventory lost");
        assert_eq!(d.inventory_at, before.inventory_at);
        assert_eq!(d.manufacturer.as_deref(), Some("Acme"));
        let d = store.device(&locked).expect("store").expect("device");
        assert_eq!(d.probe_error_kind.as_deref(), Some("auth"));
        assert_eq!(d.probe_error, before_locked.probe_error);
        assert_eq!(
            metrics
                .local_errors
                .count(LocalResource::Emfile, "inventory"),
            2
        );
        let text = metrics.encode();
        assert!(
            text.contains(r#"tgw_local_errors_total{kind="emfile",task="inventory"} 2"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"tgw_camera_inventory_failures_total{kind="local"}"#),
            "{text}"
        );

        // Once descriptors are free again, the next probe is a real one.
        cams.edit(1, |s| s.local = None);
        assert_eq!(
            probe_counted(&store, &prober, &metrics, &good).await.result,
            "ok"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_camera_without_a_login_is_not_called() {
        let (_dir, store, cams, prober) = rig();
        cams.set(1, Script::default());
        let id = fake::discovered(&store, 1, false);
        let o = probe_device(&store, &prober, &id).await;
        assert_eq!(o.result, "no-credentials");
        assert!(cams.calls(1, "inventory").is_empty());
        let o = probe_device(&store, &prober, "cam-nope").await;
        assert_eq!(o.result, "not-found");
    }
}
