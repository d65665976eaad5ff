//! The log level and the dashboard's language.

use super::*;

/// The runtime log-level change calls the installed reload function,
/// reports the new filter, refuses what the function rejects, and is audited.
#[tokio::test]
async fn log_level_changes_through_the_reload_function() {
    let fx = fixture();
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = got.clone();
    let f: LogLevelFn = Arc::new(move |s: &str| {
        if s == "bogus" {
            return Err(crate::base::error::Error::invalid("unknown level"));
        }
        g.lock().unwrap().push(s.to_string());
        Ok(())
    });
    let app = router(fx.st.clone().with_log_level(f, "info"));
    let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/log-level",
        adm.clone(),
        Some(br#"{"filter":"info,tgw::poller=debug"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        *got.lock().unwrap(),
        vec!["info,tgw::poller=debug".to_string()]
    );
    let r = call(&app, Method::GET, "/api/v1/log-level", adm.clone(), None).await;
    assert!(
        r.body.contains("tgw::poller=debug") && r.body.contains(r#""changeable":true"#),
        "{}",
        r.body
    );
    let r = call(
        &app,
        Method::PUT,
        "/api/v1/log-level",
        adm.clone(),
        Some(br#"{"filter":"bogus"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let log = fx.st.users().audit_log(10, None).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "log_level.set" && e.outcome == "ok")
    );
    assert!(
        log.iter()
            .any(|e| e.action == "log_level.set" && e.outcome == "invalid")
    );
    // Without a reload function: 503.
    let r = call(
        &fx.app,
        Method::PUT,
        "/api/v1/log-level",
        adm,
        Some(br#"{"filter":"info"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

/// `?lang=en` and the language cookie pick the page language; zh-CN by default.
#[tokio::test]
async fn dashboard_language() {
    let fx = fixture();
    let zh = call(&fx.app, Method::GET, "/", Auth::None, None).await;
    assert!(zh.body.contains(r#"lang="zh-CN""#));
    let en = call(&fx.app, Method::GET, "/?lang=en", Auth::None, None).await;
    assert!(en.body.contains(r#"lang="en""#));
    let c = call(
        &fx.app,
        Method::GET,
        "/",
        Auth::Cookie {
            sid: "",
            csrf: None,
        },
        None,
    )
    .await;
    assert!(c.body.contains(r#"lang="en""#), "cookie tgw_lang=en");
    assert!(zh.headers.contains_key(header::CONTENT_SECURITY_POLICY));
}

// --- speakers (issue 6) ---

/// The disk watchdog's level flips `/readyz` to 503 with the reason and
/// shows on `/metrics`; space back, ready again.
#[tokio::test]
async fn readyz_and_metrics_follow_the_disk_watchdog() {
    use crate::base::disk::{DiskLevel, Marks, Space};
    let fx = fixture();
    let r = call(&fx.app, Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let disk = fx.st.metrics.disk().clone();
    let marks = Marks::from_mb(64, 16);
    let total = 1 << 30;
    disk.set(
        DiskLevel::Low,
        Space {
            free: 40 << 20,
            total,
        },
        marks,
    );
    let r = call(&fx.app, Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.code(), "disk_low");
    assert!(
        r.body.contains("40.0 MiB free") && r.body.contains("gateway.disk_low_mb"),
        "{}",
        r.body
    );
    let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(m.body.contains("tgw_disk_low 1"), "{}", m.body);
    assert!(m.body.contains("tgw_disk_critical 0"), "{}", m.body);
    assert!(
        m.body.contains("tgw_disk_free_bytes 41943040"),
        "{}",
        m.body
    );

    disk.set(
        DiskLevel::Critical,
        Space {
            free: 1 << 20,
            total,
        },
        marks,
    );
    let r = call(&fx.app, Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.code(), "disk_critical");
    let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(m.body.contains("tgw_disk_critical 1"), "{}", m.body);

    disk.set(
        DiskLevel::Ok,
        Space {
            free: 900 << 20,
            total,
        },
        marks,
    );
    let r = call(&fx.app, Method::GET, "/readyz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(m.body.contains("tgw_disk_low 0"), "{}", m.body);
}

/// The `local_limit` alarm reaches the overview (`gateway_alarms`: errno,
/// count, since) and `/metrics` (`tgw_local_limit`) on the first local
/// error, stays while they come, and is gone a quiet minute later; a low
/// disk shows there too.
#[tokio::test(start_paused = true)]
async fn the_overview_and_metrics_show_the_gateways_own_alarms() {
    use crate::base::disk::{DiskLevel, Marks, Space};
    use device_drivers::local_error::LocalResource;
    let fx = fixture();
    async fn alarms(fx: &Fx) -> Vec<serde_json::Value> {
        let viewer = Auth::Bearer(&fx.tokens[&Role::Viewer]);
        let r = call(&fx.app, Method::GET, "/api/v1/overview", viewer, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let o: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        o["gateway_alarms"]
            .as_array()
            .expect("gateway_alarms")
            .clone()
    }
    async fn gauge(fx: &Fx) -> Option<String> {
        let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
        m.body
            .lines()
            .find(|l| l.starts_with("tgw_local_limit "))
            .map(str::to_string)
    }
    assert!(alarms(&fx).await.is_empty());
    assert_eq!(gauge(&fx).await.as_deref(), Some("tgw_local_limit 0"));

    let errors = &fx.st.metrics.local_errors;
    errors.report(LocalResource::Emfile, "poller");
    tokio::time::sleep(Duration::from_secs(40)).await;
    errors.report(LocalResource::Emfile, "inventory");
    errors.report(LocalResource::Emfile, "poller");
    let a = alarms(&fx).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["alarm"], "local_limit");
    assert_eq!(a[0]["errno"], "EMFILE");
    assert_eq!(a[0]["count"], 3);
    let since = a[0]["since"].as_str().expect("since");
    assert!(
        time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339).is_ok(),
        "{since}"
    );
    assert_eq!(gauge(&fx).await.as_deref(), Some("tgw_local_limit 1"));

    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(
        alarms(&fx).await.len(),
        1,
        "cleared within the quiet minute"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        alarms(&fx).await.is_empty(),
        "still raised after a quiet minute"
    );
    assert_eq!(gauge(&fx).await.as_deref(), Some("tgw_local_limit 0"));

    fx.st.metrics.disk().set(
        DiskLevel::Low,
        Space {
            free: 40 << 20,
            total: 1 << 30,
        },
        Marks::from_mb(64, 16),
    );
    let a = alarms(&fx).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["alarm"], "disk_low");
    assert_eq!(a[0]["level"], "low");
}
