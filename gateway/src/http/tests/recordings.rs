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
