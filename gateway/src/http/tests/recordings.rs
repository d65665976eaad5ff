//! `/api/v1/recordings`: the list, and downloads (audited) of what aired.

use super::*;
use crate::broadcast::aired::{Aired, AiredKind};

/// Without a login nothing; an unknown id 404; a recording still being
/// written 409; a finished one is listed and downloads as a WAV, audited.
#[tokio::test]
async fn recordings_are_listed_and_downloaded_with_an_audit_entry() {
    let fx = fixture();
    let clock = crate::base::clock::system();
    let aired = Aired::open(fx.st.store.clone(), fx._dir.path(), clock).unwrap();
    let app = router(fx.st.clone().with_aired(aired.clone()));
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);

    let r = call(&app, Method::GET, "/api/v1/recordings", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/recordings",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "no recorder");
    let r = call(
        &app,
        Method::GET,
        "/api/v1/recordings/nope",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let _live = aired.start("page-1", AiredKind::LivePage).unwrap();
    let r = call(
        &app,
        Method::GET,
        "/api/v1/recordings/page-1",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let mut w = aired.start("em-9", AiredKind::Emergency).unwrap();
    w.push(&[500i16; 4000]).unwrap();
    w.finish().unwrap();
    let r = call(
        &app,
        Method::GET,
        "/api/v1/recordings?per_page=1",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-total-count"], "2");
    let list: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let r = call(
        &app,
        Method::GET,
        "/api/v1/recordings?per_page=5000",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = call(
        &app,
        Method::GET,
        "/api/v1/recordings/em-9",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(r.headers[header::CONTENT_LENGTH], "4058");
    assert!(r.body.starts_with("RIFF"));
    let log = fx.st.users().audit_log(10, None).unwrap();
    let entry = serde_json::to_value(&log).unwrap();
    assert!(
        entry.to_string().contains("recording.download") && entry.to_string().contains("em-9"),
        "{entry}"
    );
}

/// The audit log links what aired: an entry about a broadcast or a live
/// page that was recorded carries `recording` (id, kind, state, length and
/// the download link); one about a broadcast without a recording, or about
/// something else with the same id, does not; a recording still being
/// written is linked with its state. Without a recorder no entry links.
#[tokio::test]
async fn audit_entries_link_the_recording_of_what_aired() {
    use crate::store::audit::NewAudit;
    let fx = fixture();
    let clock = crate::base::clock::system();
    let aired = Aired::open(fx.st.store.clone(), fx._dir.path(), clock).unwrap();
    let app = router(fx.st.clone().with_aired(aired.clone()));
    let admin = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let mut w = aired.start("em-1", AiredKind::Emergency).unwrap();
    w.push(&[500i16; 8000]).unwrap();
    w.finish().unwrap();
    let _live = aired.start("page-2", AiredKind::LivePage).unwrap();
    for (action, target) in [
        ("broadcast.emergency", "em-1"),
        ("device.adopt", "em-1"),
        ("paging.start", "page-2"),
        ("broadcast.start", "b-none"),
    ] {
        fx.st
            .users()
            .audit(NewAudit {
                actor: "oper",
                source: "test",
                action,
                target: Some(target),
                outcome: "ok",
                ..NewAudit::default()
            })
            .unwrap();
    }
    let log = audit_entries(&app, admin.clone()).await;
    let of = |action: &str| {
        log.iter()
            .find(|e| e["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} in {log:?}"))
    };
    let em = of("broadcast.emergency");
    assert_eq!(em["recording"]["id"], "em-1", "{em}");
    assert_eq!(em["recording"]["kind"], "emergency", "{em}");
    assert_eq!(em["recording"]["state"], "done", "{em}");
    assert_eq!(em["recording"]["duration_ms"], 1000, "{em}");
    assert_eq!(em["recording"]["href"], "/api/v1/recordings/em-1", "{em}");
    assert!(of("device.adopt").get("recording").is_none());
    assert!(of("broadcast.start").get("recording").is_none());
    let page = of("paging.start");
    assert_eq!(page["recording"]["state"], "recording", "{page}");
    // The link downloads (as an admin, who reads the audit log).
    let r = call(
        &app,
        Method::GET,
        em["recording"]["href"].as_str().unwrap(),
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.starts_with("RIFF"));
    // A gateway that keeps no recordings links none.
    let plain = audit_entries(&fx.app, admin).await;
    assert!(
        plain.iter().all(|e| e.get("recording").is_none()),
        "{plain:?}"
    );
}

/// `GET /api/v1/audit?limit=10` as a JSON array.
async fn audit_entries(app: &axum::Router, who: Auth<'_>) -> Vec<serde_json::Value> {
    let r = call(app, Method::GET, "/api/v1/audit?limit=10", who, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v.as_array().unwrap().clone()
}
