//! The timetable and target routes (issue 7), with their own fixture:
//! a gateway without a broadcast runtime and three horns.

use axum::Router;
use axum::body::Body as AxBody;
use axum::http::{Method, Request, header};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::super::{AppState, router};
use crate::auth::{HashCost, Role};
use crate::base::metrics::Metrics;
use crate::config::Ident;
use crate::speakers::{Codec, DriverKind, NewSpeaker, Speakers};
use crate::store::Store;
use crate::store::secrets::Password;

struct Fx {
    _dir: tempfile::TempDir,
    st: AppState,
    oper: String,
    view: String,
}

/// A gateway without a broadcast runtime (the timetable is the stored
/// one) and three horns: two in village `dongcun` (one in zone `school`),
/// one in `xinhe`.
fn fixture() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cfg =
        crate::config::Config::parse(include_str!("../../../../config/gateway.example.toml"), "x")
            .unwrap();
    store.sync_township(&cfg.township).unwrap();
    let st = AppState::new(
        store.clone(),
        "青山镇".into(),
        std::sync::Arc::new(Metrics::new()),
    )
    .unwrap()
    .with_hash_cost(HashCost::FAST);
    let mut tokens = Vec::new();
    for (name, role) in [("oper", Role::Operator), ("view", Role::Viewer)] {
        st.users()
            .upsert(
                name,
                role,
                &Password::new("pw-Secret-123456"),
                HashCost::FAST,
            )
            .unwrap();
        tokens.push(st.users().create_token(name, "test").unwrap());
    }
    let horn = |id: &str, village: &str, zone: Option<&str>, port: u16| NewSpeaker {
        id: Ident::parse(id).unwrap(),
        name: None,
        kind: DriverKind::Rtp,
        address: format!("127.0.0.1:{port}"),
        village: Some(village.into()),
        grid: None,
        zone: zone.map(|z| Ident::parse(z).unwrap()),
        codec: Codec::Pcmu,
        volume: None,
        ttl: None,
        username: None,
        password: None,
    };
    Speakers::open(&store)
        .unwrap()
        .upsert(&[
            horn("h1", "dongcun", None, 5001),
            horn("h2", "dongcun", Some("school"), 5002),
            horn("h3", "xinhe", None, 5003),
        ])
        .unwrap();
    let view = tokens.pop().unwrap();
    let oper = tokens.pop().unwrap();
    Fx {
        _dir: dir,
        st,
        oper,
        view,
    }
}

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let req = b
        .body(AxBody::from(
            body.map(|v| v.to_string()).unwrap_or_default(),
        ))
        .unwrap();
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status().as_u16();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A timetable: a workday morning programme for everyone (07:30), a
/// school notice at 12:30 in the school zone's quiet hours, two schemes.
fn doc() -> Value {
    json!({
        "timezone": "Asia/Shanghai",
        "active_scheme": "winter",
        "scheme": [{"id": "winter", "name": "冬季作息"}, {"id": "summer", "name": "夏季作息"}],
        "quiet_hours": [{"targets": ["zone:school"], "from": "12:00", "to": "13:30"}],
        "programme": [
            {"id": "morning", "name": "早间政策广播", "items": [{"tts": "各位村民早上好"}]},
            {"id": "notice", "name": "通知", "items": [{"tts": "请注意"}], "priority": "township"}
        ],
        "schedule": [
            {"id": "workday-morning", "programme": "morning", "targets": ["all"], "at": ["07:30"], "days": "workdays", "scheme": "winter"},
            {"id": "noon-v1", "programme": "notice", "targets": ["village:dongcun"], "at": ["12:30"], "days": ["mon"]}
        ]
    })
}

fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The whole document goes in, comes back with its version, and is
/// what the week view expands: 5 workday mornings to 3 horns, one
/// Monday noon to 2 horns of which 1 is in quiet hours.
#[tokio::test]
async fn timetable_round_trip_and_week_view() {
    let fx = fixture();
    let app = router(fx.st.clone());
    let (s, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["source"], "store");
    assert_eq!(v["version"], Value::Null);
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/timetable",
        &fx.view,
        Some(doc()),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/timetable",
        &fx.oper,
        Some(doc()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 1);
    assert_eq!(v["active_scheme"], "winter");
    assert_eq!(v["parts"]["programme"][0]["name"], "早间政策广播");
    let (s, v) = call(
        &app,
        Method::GET,
        "/api/v1/timetable/week?from=2026-03-02",
        &fx.view,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["timezone"], "Asia/Shanghai");
    assert_eq!(v["horns_known"], 3);
    let days = v["days"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["date"], "2026-03-02");
    let mon = days[0]["entries"].as_array().unwrap();
    assert_eq!(mon.len(), 2, "{mon:?}");
    assert_eq!(mon[0]["time"], "07:30");
    assert_eq!(mon[0]["programme_name"], "早间政策广播");
    assert_eq!(mon[0]["horns"], 3);
    assert_eq!(mon[1]["time"], "12:30");
    assert_eq!(
        (mon[1]["horns"].as_u64(), mon[1]["quiet"].as_u64()),
        (Some(2), Some(1))
    );
    let total: usize = days
        .iter()
        .map(|d| d["entries"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 6);
    assert_eq!(days[5]["workday"], false);
    // Another scheme, previewed: the winter-only mornings are gone.
    let (s, v) = call(
        &app,
        Method::GET,
        "/api/v1/timetable/week?from=2026-03-02&scheme=summer",
        &fx.view,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let total: usize = v["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["entries"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 1);
    let (s, _) = call(
        &app,
        Method::GET,
        "/api/v1/timetable/week?from=2026-02-30",
        &fx.view,
        None,
    )
    .await;
    assert_eq!(s, 400);
    // Default: a Monday.
    let (s, v) = call(&app, Method::GET, "/api/v1/timetable/week", &fx.view, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["days"][0]["weekday"], 1);
}

/// Entries are edited one at a time, the whole validated: an unknown
/// programme is 422 naming the schedule, a programme still played
/// cannot be deleted, ids cannot change, and every change is audited.
#[tokio::test]
async fn entries_are_edited_and_validated_whole() {
    let fx = fixture();
    let app = router(fx.st.clone());
    let (s, _) = call(
        &app,
        Method::PUT,
        "/api/v1/timetable",
        &fx.oper,
        Some(doc()),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/schedules/evening",
        &fx.oper,
        Some(json!({"programme": "nope", "targets": ["all"], "at": ["19:00"]})),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "invalid_timetable");
    assert!(
        message(&v).contains("schedule[2] (schedule `evening`).programme"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/schedules/evening",
        &fx.oper,
        Some(json!({"programme": "notice", "targets": ["all"], "at": ["25:00"]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).starts_with("schedule.at"), "{v}");
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/schedules/evening",
        &fx.oper,
        Some(json!({"id": "other", "programme": "notice", "targets": ["all"], "at": ["19:00"]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/schedules/evening",
        &fx.oper,
        Some(json!({"programme": "notice", "targets": ["all"], "at": ["19:00"]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 2);
    assert_eq!(v["parts"]["schedule"][2]["id"], "evening");
    let (s, v) = call(
        &app,
        Method::DELETE,
        "/api/v1/programmes/notice",
        &fx.oper,
        None,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        message(&v).contains("`noon-v1`") && message(&v).contains("`evening`"),
        "{v}"
    );
    let (s, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/programmes/ghost",
        &fx.oper,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/programmes/weather",
        &fx.oper,
        Some(json!({"name": "天气", "items": [{"tts": "今天晴"}], "repeat": 2})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &app,
        Method::PUT,
        "/api/v1/programmes/weather",
        &fx.oper,
        Some(json!({"items": [], "repeat": 2})),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        message(&v).contains("programme[2] (programme `weather`).items"),
        "{v}"
    );
    let (s, _) = call(
        &app,
        Method::DELETE,
        "/api/v1/programmes/weather",
        &fx.oper,
        None,
    )
    .await;
    assert_eq!(s, 200);
    schemes_are_edited(&app, &fx).await;
    let audit = fx.st.users().audit_log(100, None).unwrap();
    let actions: Vec<String> = audit
        .iter()
        .map(|e| format!("{} {}", e.action, e.outcome))
        .collect();
    for want in [
        "timetable.replace ok",
        "timetable.schedule.put invalid",
        "timetable.schedule.put ok",
        "timetable.programme.delete ok",
        "timetable.active_scheme ok",
        "timetable.scheme.delete ok",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
}

/// The scheme half of [`entries_are_edited_and_validated_whole`]: the
/// active scheme cannot go, a scheme with schedules neither.
async fn schemes_are_edited(app: &Router, fx: &Fx) {
    let (s, v) = call(
        app,
        Method::DELETE,
        "/api/v1/schemes/winter",
        &fx.oper,
        None,
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = call(
        app,
        Method::PUT,
        "/api/v1/active-scheme",
        &fx.oper,
        Some(json!({"scheme": "summer"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["active_scheme"], "summer");
    let (s, _) = call(
        app,
        Method::PUT,
        "/api/v1/active-scheme",
        &fx.oper,
        Some(json!({"scheme": "autumn"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, v) = call(
        app,
        Method::PUT,
        "/api/v1/active-scheme",
        &fx.oper,
        Some(json!({"scheme": null})),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = call(
        app,
        Method::PUT,
        "/api/v1/schemes/spring",
        &fx.oper,
        Some(json!({"name": "春季"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        app,
        Method::DELETE,
        "/api/v1/schemes/spring",
        &fx.oper,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A check reports without saving; a file-managed timetable refuses
/// every write with 409 naming the file, but still reads and checks.
#[tokio::test]
async fn check_does_not_save_and_files_are_read_only() {
    let mut fx = fixture();
    let app = router(fx.st.clone());
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/timetable/check?from=2026-03-02&days=7",
        &fx.view,
        Some(doc()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["occurrences"].as_array().unwrap().len(), 6);
    assert_eq!(v["horns_known"], 3);
    let (_, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
    assert_eq!(v["version"], Value::Null);
    let mut bad = doc();
    bad["schedule"][0]["programme"] = json!("ghost");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/timetable/check",
        &fx.view,
        Some(bad),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(
        message(&v).contains("schedule[0] (schedule `workday-morning`).programme"),
        "{v}"
    );
    let mut bad = doc();
    bad["schedule"][0]["rrule"] = json!("FREQ=HOURLY");
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/v1/timetable/check",
        &fx.view,
        Some(bad),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("schedule[0].rrule"), "{v}");
    let (s, _) = call(
        &app,
        Method::POST,
        "/api/v1/timetable/check?days=0",
        &fx.view,
        Some(doc()),
    )
    .await;
    assert_eq!(s, 400);

    fx.st.timetable_file = Some("/etc/tgw/timetable.toml".into());
    let app = router(fx.st.clone());
    for (m, path, body) in [
        (Method::PUT, "/api/v1/timetable", Some(doc())),
        (
            Method::PUT,
            "/api/v1/programmes/x",
            Some(json!({"items": [{"tts": "x"}]})),
        ),
        (Method::DELETE, "/api/v1/schedules/x", None),
        (
            Method::PUT,
            "/api/v1/active-scheme",
            Some(json!({"scheme": "x"})),
        ),
    ] {
        let (s, v) = call(&app, m, path, &fx.oper, body).await;
        assert_eq!(s, 409, "{path}: {v}");
        assert_eq!(v["error"]["code"], "managed_in_file");
        assert!(message(&v).contains("/etc/tgw/timetable.toml"), "{v}");
    }
    let (s, v) = call(&app, Method::GET, "/api/v1/timetable", &fx.view, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["source"], "file");
    assert_eq!(v["editable"], false);
}

/// Targets resolve to horns (for the emergency confirmation).
#[tokio::test]
async fn targets_resolve_to_horns() {
    let fx = fixture();
    let app = router(fx.st.clone());
    let (s, v) = call(
        &app,
        Method::GET,
        "/api/v1/targets/resolve?targets=village:dongcun,speaker:h3,speaker:ghost",
        &fx.view,
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["horns"], 3);
    assert_eq!(v["unknown"], json!(["speaker:ghost"]));
    let (s, _) = call(
        &app,
        Method::GET,
        "/api/v1/targets/resolve?targets=planet:mars",
        &fx.view,
        None,
    )
    .await;
    assert_eq!(s, 400);
}
