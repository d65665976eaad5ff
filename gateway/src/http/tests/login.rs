//! Login rate limit and lock-out.

use super::*;

/// Five wrong passwords lock the account (429 `locked`, even with the
/// right password) for the lockout period; paused tokio time.
#[tokio::test(start_paused = true)]
async fn login_is_rate_limited_and_locks_out() {
    let fx = fixture();
    let body = |pw: &str| serde_json::json!({"user": "tech", "password": pw}).to_string();
    for i in 0..5 {
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(body("wrong-pass").as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(body(TECH_PW).as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "locked");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    tokio::time::advance(Duration::from_secs(901)).await;
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(body(TECH_PW).as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The per-address limit: 10 failures within 5 minutes, across names,
    // from one address (the first 5 left the window 900 s ago).
    for i in 0..10 {
        call(
            &fx.app,
            Method::POST,
            "/api/v1/login",
            Auth::None,
            Some(
                serde_json::json!({"user": format!("ghost{i}"), "password": "x"})
                    .to_string()
                    .as_bytes(),
            ),
        )
        .await;
    }
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(body(TECH_PW).as_bytes()),
    )
    .await;
    assert_eq!(r.code(), "rate_limited", "{}", r.body);
    let audit = fx.st.users().audit_log(100, None).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "login" && e.outcome == "locked")
    );
    assert!(
        audit
            .iter()
            .any(|e| e.action == "login" && e.outcome == "failed_locked")
    );
}
