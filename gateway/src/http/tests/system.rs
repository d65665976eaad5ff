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
