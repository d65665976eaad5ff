//! The local HTTP endpoint: `/healthz`, `/readyz`, a read-only inventory API
//! under `/api/v1` and a plain overview page (zh-CN).
//!
//! Device passwords are never part of any response: [`crate::store::Device`]
//! carries only `has_credentials`. Later work adds users, sessions and the
//! full dashboard; this router is built with [`router`] so tests can drive it
//! without a port (STYLE.md §12).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{Device, DeviceState, Store};

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    township: String,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// State over a store; `township` is the display name.
    pub fn new(store: Store, township: String, metrics: Arc<Metrics>) -> Self {
        Self {
            store,
            township,
            metrics,
        }
    }
}

/// A camera with its health, as listed by `/api/v1/cameras` and `tgw status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CameraStatus {
    /// Device id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Village code.
    pub village: Option<String>,
    /// Grid code.
    pub grid: Option<String>,
    /// Maker.
    pub manufacturer: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Health, once polled.
    pub health: Option<Health>,
}

/// Cameras with their health.
pub fn camera_statuses(store: &Store) -> Result<Vec<CameraStatus>, crate::store::StoreError> {
    let health: std::collections::HashMap<String, Health> =
        store.all_health()?.into_iter().collect();
    Ok(store
        .devices(Some(DeviceState::Adopted))?
        .into_iter()
        .map(|d| CameraStatus {
            health: health.get(&d.id).cloned(),
            id: d.id,
            name: d.name,
            address: d.address,
            village: d.village,
            grid: d.grid,
            manufacturer: d.manufacturer,
            model: d.model,
        })
        .collect())
}

/// The HTTP routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/devices", get(list_devices))
        .route("/api/v1/devices/{id}", get(get_device))
        .route("/api/v1/villages", get(villages))
        .route("/api/v1/cameras", get(cameras))
        .route("/api/v1/cameras/{id}/events", get(camera_events))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// A JSON error with a stable code.
fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

async fn readyz(State(st): State<AppState>) -> Response {
    match st.store.schema_version() {
        Ok(_) => "ready\n".into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DeviceQuery {
    #[serde(default)]
    state: Option<DeviceState>,
    #[serde(default)]
    village: Option<String>,
}

async fn list_devices(State(st): State<AppState>, Query(q): Query<DeviceQuery>) -> Response {
    match st.store.devices(q.state) {
        Ok(mut v) => {
            if let Some(village) = &q.village {
                v.retain(|d| d.village.as_deref() == Some(village.as_str()));
            }
            Json(v).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    }
}

async fn get_device(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.store.device(&id) {
        Ok(Some(d)) => Json(d).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no device `{id}`"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
        .into_response()
}

async fn cameras(State(st): State<AppState>) -> Response {
    match camera_statuses(&st.store) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    }
}

async fn camera_events(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.store.health_events(Some(&id), 200) {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    }
}

async fn villages(State(st): State<AppState>) -> Response {
    match st.store.villages() {
        Ok(v) => Json(v).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    }
}

fn esc(s: &str) -> String {
    device_drivers::xml::escape(s).to_string()
}

async fn overview(State(st): State<AppState>) -> Response {
    let (devices, villages) = match (st.store.devices(None), st.store.villages()) {
        (Ok(d), Ok(v)) => (d, v),
        (Err(e), _) | (_, Err(e)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string());
        }
    };
    let mut rows = String::new();
    let name_of = |code: &Option<String>| {
        code.as_ref()
            .and_then(|c| villages.iter().find(|v| &v.code == c))
            .map_or_else(|| "未分配".to_string(), |v| v.name.clone())
    };
    let health: std::collections::HashMap<String, Health> = st
        .store
        .all_health()
        .unwrap_or_default()
        .into_iter()
        .collect();
    for d in &devices {
        rows.push_str(&row(d, &name_of(&d.village), health.get(&d.id)));
    }
    let count = |label: &str| {
        health
            .values()
            .filter(|h| h.verdict.label() == label)
            .count()
    };
    let inbox = devices
        .iter()
        .filter(|d| d.state == DeviceState::Discovered)
        .count();
    let ok = devices
        .iter()
        .filter(|d| d.inventory.is_some() && d.probe_error_kind.is_none())
        .count();
    let page = format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{t} · 镇综治中心网关</title><style>body{{font-family:sans-serif;margin:1rem}}table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;font-size:.9rem}}.err{{color:#b00}}</style></head>
<body><h1>{t} · 设备清单</h1><p>摄像机 {n} 台 · 正常 {vok} · 异常 {vdeg} · 离线 {voff} · 已获取档案 {ok} 台 · 待认领 {inbox} 台 · 村/社区 {nv} 个</p>
<table><tr><th>编号</th><th>健康</th><th>状态</th><th>村/社区</th><th>网格</th><th>地址</th><th>厂商</th><th>型号</th><th>固件</th><th>MAC</th><th>码流</th><th>错误</th></tr>{rows}</table></body></html>"#,
        t = esc(&st.township),
        n = devices.len(),
        nv = villages.len(),
        vok = count("ok"),
        vdeg = count("degraded"),
        voff = count("offline"),
    );
    Html(page).into_response()
}

fn row(d: &Device, village: &str, health: Option<&Health>) -> String {
    let verdict = match health.map(|h| &h.verdict) {
        None => "—".to_string(),
        Some(crate::health::Verdict::Ok) => "正常".to_string(),
        Some(crate::health::Verdict::Offline) => "离线".to_string(),
        Some(v @ crate::health::Verdict::Degraded(_)) => format!("异常 {}", esc(&v.to_string())),
    };
    let state = match d.state {
        DeviceState::Discovered => "待认领",
        DeviceState::Adopted => "已认领",
        DeviceState::Ignored => "已忽略",
    };
    let profiles = d
        .inventory
        .as_ref()
        .and_then(|i| i.get("profiles"))
        .and_then(|p| p.as_array())
        .map_or(0, |p| p.len());
    let o = |v: &Option<String>| esc(v.as_deref().unwrap_or("—"));
    format!(
        "<tr><td>{}</td><td>{verdict}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{profiles}</td><td class=err>{}</td></tr>",
        esc(&d.id),
        esc(village),
        o(&d.grid),
        o(&d.address),
        o(&d.manufacturer),
        o(&d.model),
        o(&d.firmware),
        o(&d.mac),
        esc(d.probe_error_kind.as_deref().unwrap_or("")),
    )
}
