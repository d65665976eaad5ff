//! Tests of the HTTP API through the router, one module per concern, and
//! the shared fixture: a store with three cameras (one adopted), a user
//! and a token per role.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body as AxBody;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tower::ServiceExt as _;

use super::*;
use crate::auth::{HashCost, Role};
use crate::base::metrics::Metrics;
use crate::config::Config;
use crate::store::Sighting;
use crate::store::secrets::Password;
use crate::store::{DeviceState, Store};

const ADMIN_PW: &str = "adm1n-Secret-pw";
const TECH_PW: &str = "t3ch-Secret-pw";
const VIEW_PW: &str = "v1ew-Secret-pw";
const OPER_PW: &str = "0per-Secret-pw";
const DEVICE_PW: &str = "dev1ce-Secret-pw";

struct Fx {
    _dir: tempfile::TempDir,
    st: AppState,
    app: Router,
    cam: String,
    tokens: HashMap<Role, String>,
    _probe_rx: mpsc::Receiver<String>,
}

fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg = Config::parse(include_str!("../../../../config/gateway.example.toml"), "x").unwrap();
    store.sync_township(&cfg.township).unwrap();
    let mut cam = String::new();
    for i in 1..=3u8 {
        let up = store
            .record_sighting(&Sighting {
                endpoint_ref: format!("urn:uuid:cam-{i}"),
                address: Some(Ipv4Addr::new(127, 0, 9, i)),
                xaddrs: vec![format!("http://127.0.9.{i}/onvif/device_service")],
                via: "unicast".into(),
                ..Default::default()
            })
            .unwrap();
        if i == 1 {
            store
                .adopt(&up.id, Some("dongcun"), Some("dongcun-1"))
                .unwrap();
            store
                .set_device_login(&up.id, "admin", &Password::new(DEVICE_PW))
                .unwrap();
            cam = up.id;
        }
    }
    let (tx, rx) = mpsc::channel(16);
    let st = AppState::new(store, "青山镇".into(), Arc::new(Metrics::new()))
        .unwrap()
        .with_hash_cost(HashCost::FAST)
        .with_probe(tx);
    let mut tokens = HashMap::new();
    for (name, role, pw) in [
        ("view", Role::Viewer, VIEW_PW),
        ("oper", Role::Operator, OPER_PW),
        ("tech", Role::Technician, TECH_PW),
        ("adm", Role::Admin, ADMIN_PW),
    ] {
        st.users()
            .upsert(name, role, &Password::new(pw), HashCost::FAST)
            .unwrap();
        tokens.insert(role, st.users().create_token(name, "test").unwrap());
    }
    let app = router(st.clone());
    Fx {
        _dir: dir,
        st,
        app,
        cam,
        tokens,
        _probe_rx: rx,
    }
}

#[derive(Clone)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie { sid: &'a str, csrf: Option<&'a str> },
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Resp {
    fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<&[u8]>,
) -> Resp {
    let mut b = Request::builder().method(method).uri(path);
    match auth {
        Auth::None => {}
        Auth::Bearer(t) => b = b.header(header::AUTHORIZATION, format!("Bearer {t}")),
        Auth::Cookie { sid, csrf } => {
            b = b.header(
                header::COOKIE,
                format!("tgw_lang=en; {SESSION_COOKIE}={sid}"),
            );
            if let Some(c) = csrf {
                b = b.header(CSRF_HEADER, c);
            }
        }
    }
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let req = b
        .body(AxBody::from(body.map(<[u8]>::to_vec).unwrap_or_default()))
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22)
        .await
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn concrete(path: &str, cam: &str) -> String {
    path.replace("{id}", cam)
        .replace("{name}", "view")
        .replace("{file}", "app.js")
}

async fn login(app: &Router, user: &str, pw: &str) -> (String, String) {
    let body = serde_json::json!({"user": user, "password": pw}).to_string();
    let r = call(
        app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cookie = r
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let sid = cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    (sid, v["csrf"].as_str().unwrap().to_string())
}

/// Every route in [`ROUTES`] (the table the router is built from):
/// unauthenticated → 401, each lower role → 403, a cookie session
/// without the CSRF token on a mutating route → 403 `csrf`, and on
/// routes with a body: malformed JSON, an unknown field and a wrong type
/// → 400 with a message, an oversized body → 413.
mod access;
mod camera_time;
mod credential_groups;
mod dashboard;
mod inbox;
mod lists;
mod live;
mod lockout;
mod login;
mod logins;
mod paging;
mod protocol;
mod recordings;
mod secrets;
mod server;
mod snapshot;
mod speakers;
mod system;
mod timetable;
mod tokens;
mod validation;
