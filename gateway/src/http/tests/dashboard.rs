//! The dashboard's assets: content types, ETags and 304s, the module
//! graph (every `import … from './x.js'` and every AudioWorklet module
//! loaded with `audioWorklet.addModule('/assets/x.js')` is served), the favicon.

use super::*;

fn imports(js: &str) -> Vec<String> {
    let worklets = js
        .split("audioWorklet.addModule('/assets/")
        .skip(1)
        .filter_map(|l| l.split('\'').next());
    js.lines()
        .filter_map(|l| l.trim().strip_prefix("import "))
        .filter_map(|l| l.split(" from './").nth(1))
        .filter_map(|l| l.split('\'').next())
        .chain(worklets)
        .map(str::to_string)
        .collect()
}

/// Every asset is served with its content type and an ETag; asking again
/// with that ETag gets 304 and no body; a changed ETag gets the body.
#[tokio::test]
async fn assets_have_types_and_etags() {
    let fx = fixture();
    let mut seen = std::collections::HashSet::new();
    for name in crate::http::dashboard::asset_names() {
        let r = call(
            &fx.app,
            Method::GET,
            &format!("/assets/{name}"),
            Auth::None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{name}");
        let ct = r.headers[header::CONTENT_TYPE].to_str().unwrap();
        let want = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            _ => panic!("unexpected asset {name}"),
        };
        assert_eq!(ct, want, "{name}");
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
        let etag = r.headers[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");
        assert!(seen.insert(etag.clone()), "two assets share an ETag");
        let req = Request::builder()
            .uri(format!("/assets/{name}"))
            .header(header::IF_NONE_MATCH, format!("\"x\", {etag}"))
            .body(AxBody::empty())
            .unwrap();
        let r304 = fx.app.clone().oneshot(req).await.unwrap();
        assert_eq!(r304.status(), StatusCode::NOT_MODIFIED, "{name}");
        assert_eq!(r304.headers()[header::ETAG], etag.as_str());
        let body = axum::body::to_bytes(r304.into_body(), 1024).await.unwrap();
        assert!(body.is_empty());
        let req = Request::builder()
            .uri(format!("/assets/{name}"))
            .header(header::IF_NONE_MATCH, "\"stale\"")
            .body(AxBody::empty())
            .unwrap();
        let r = fx.app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name} with a stale ETag");
    }
    let r = call(&fx.app, Method::GET, "/assets/nope.js", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &fx.app,
        Method::GET,
        "/assets/..%2Fapp.js",
        Auth::None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// The page loads app.js as a module and names the favicon; every module
/// any served module imports is itself served (a missing file would break
/// the whole dashboard at load).
#[tokio::test]
async fn module_graph_is_served() {
    let fx = fixture();
    let page = call(&fx.app, Method::GET, "/", Auth::None, None).await;
    assert!(
        page.body
            .contains(r#"<script type="module" src="/assets/app.js">"#)
    );
    assert!(page.body.contains(r#"href="/assets/favicon.svg""#));
    let names: Vec<&str> = crate::http::dashboard::asset_names().collect();
    let mut todo = vec!["app.js".to_string()];
    let mut reached = std::collections::HashSet::new();
    while let Some(m) = todo.pop() {
        if !reached.insert(m.clone()) {
            continue;
        }
        assert!(
            names.contains(&m.as_str()),
            "{m} is imported but not served"
        );
        let r = call(
            &fx.app,
            Method::GET,
            &format!("/assets/{m}"),
            Auth::None,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{m}");
        todo.extend(imports(&r.body));
    }
    for n in names.iter().filter(|n| n.ends_with(".js")) {
        assert!(
            reached.contains(*n),
            "{n} is served but no module imports it"
        );
    }
}

/// Placing a camera on the map: bad coordinates, unknown devices and
/// viewers are refused; a technician's placement is stored, listed,
/// audited and removable.
#[tokio::test]
async fn places_are_validated_stored_and_audited() {
    let fx = fixture();
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);
    let path = format!("/api/v1/places/{}", fx.cam);
    for bad in [
        r#"{"x":1.5,"y":0.2}"#,
        r#"{"x":0.5}"#,
        r#"{"lon":200,"lat":30}"#,
        r#"{}"#,
        r#"{"kind":"horse","x":0.1,"y":0.1}"#,
    ] {
        let r = call(
            &fx.app,
            Method::PUT,
            &path,
            tech.clone(),
            Some(bad.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.code(), "invalid", "{bad}");
    }
    let ok = br#"{"x":0.25,"y":0.75}"#;
    let r = call(
        &fx.app,
        Method::PUT,
        "/api/v1/places/cam-nope",
        tech.clone(),
        Some(ok),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = call(&fx.app, Method::PUT, &path, view.clone(), Some(ok)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(&fx.app, Method::PUT, &path, tech.clone(), Some(ok)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&fx.app, Method::GET, "/api/v1/places", view.clone(), None).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0]["id"], fx.cam.as_str());
    assert_eq!(
        (v[0]["x"].as_f64(), v[0]["y"].as_f64()),
        (Some(0.25), Some(0.75))
    );
    assert_eq!(v[0]["updated_by"], "tech");
    let audit = fx.st.users().audit_log(10, None).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "device.place" && e.target.as_deref() == Some(fx.cam.as_str()))
    );
    let r = call(&fx.app, Method::DELETE, &path, tech.clone(), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(&fx.app, Method::DELETE, &path, tech, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Acknowledging an alarm needs an operator, a note and a real time; the
/// first acknowledgement stands and is audited with its note.
#[tokio::test]
async fn alarm_ack_needs_a_note_and_is_audited() {
    let fx = fixture();
    let oper = Auth::Bearer(&fx.tokens[&Role::Operator]);
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);
    let path = format!("/api/v1/alarms/{}/ack", fx.cam);
    let since = "2026-12-06T08:00:00Z";
    let body = |note: &str| serde_json::json!({"since": since, "note": note}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        &path,
        view,
        Some(body("x").as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &fx.app,
        Method::POST,
        &path,
        oper.clone(),
        Some(body("   ").as_bytes()),
    )
    .await;
    assert_eq!(r.code(), "invalid", "{}", r.body);
    let r = call(
        &fx.app,
        Method::POST,
        &path,
        oper.clone(),
        Some(br#"{"since":"yesterday-ish","note":"x"}"#),
    )
    .await;
    assert_eq!(r.code(), "invalid", "{}", r.body);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/alarms/cam-nope/ack",
        oper.clone(),
        Some(body("x").as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &fx.app,
        Method::POST,
        &path,
        oper.clone(),
        Some(body("派人检查电源").as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &fx.app,
        Method::POST,
        &path,
        oper.clone(),
        Some(body("second").as_bytes()),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["note"], "派人检查电源");
    let r = call(&fx.app, Method::GET, "/api/v1/alarm-acks", oper, None).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["by"], "oper");
    let audit = fx.st.users().audit_log(10, None).unwrap();
    assert!(audit.iter().any(|e| {
        e.action == "alarm.ack"
            && e.after
                .as_ref()
                .is_some_and(|a| a["note"] == "派人检查电源")
    }));
}

/// Trends come from health history in buckets; a bad range or count is
/// refused, and broadcast weeks are empty (not an error) without broadcasts.
#[tokio::test]
async fn trends_are_bucketed_and_validated() {
    let fx = fixture();
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);
    let mut h = tgw_core::health::Health::new(time::OffsetDateTime::UNIX_EPOCH);
    h.verdict = tgw_core::health::Verdict::Ok;
    fx.st.store.record_history(&fx.cam, &h).unwrap();
    h.verdict = tgw_core::health::Verdict::Offline;
    fx.st.store.record_history(&fx.cam, &h).unwrap();
    let r = call(
        &fx.app,
        Method::GET,
        &format!("/api/v1/cameras/{}/trends", fx.cam),
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["bucket_secs"], 900);
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 1, "two points in one bucket: {pts:?}");
    assert_eq!(pts[0]["n"], 2);
    assert_eq!(pts[0]["availability"].as_f64(), Some(0.5));
    let r = call(
        &fx.app,
        Method::GET,
        &format!("/api/v1/cameras/{}/trends?range=1y", fx.cam),
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.code(), "invalid");
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/cameras/nope/trends",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/trends/villages?days=400",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.code(), "invalid");
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/trends/villages",
        view.clone(),
        None,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v[0]["village"], "dongcun");
    assert_eq!(v[0]["availability"].as_f64(), Some(0.5));
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/trends/broadcasts",
        view,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.starts_with('['), "{}", r.body);
}
