//! Login hardening through the router: attempts reserved before verifying,
//! the bounded password pool (429 `busy`), lockout per (user, address) and
//! the admin's unlock.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;

use super::*;
use crate::auth::HashPool;

/// `POST /api/v1/login` from `ip`.
async fn login_from(app: &Router, ip: &str, user: &str, pw: &str) -> Resp {
    let body = serde_json::json!({"user": user, "password": pw}).to_string();
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(AxBody::from(body))
        .unwrap();
    let addr = SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 40_000);
    req.extensions_mut().insert(ConnectInfo(addr));
    let r = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// 40 concurrent wrong logins at one user from one address: 5 are
/// verified (401), the other 35 are refused at once (429) — the limiter
/// reserves the attempt before the password is checked. (`join_all` over
/// 40 futures polls them in batches, so on a loaded machine the last few
/// may come after the 5 failures and be refused as `locked` instead.)
#[tokio::test(start_paused = true)]
async fn concurrent_logins_beyond_the_limit_are_refused_unverified() {
    let fx = fixture();
    let all = futures::future::join_all(
        (0..40).map(|_| login_from(&fx.app, "192.0.2.5", "tech", "wrong-pass")),
    )
    .await;
    let count = |s: StatusCode| all.iter().filter(|r| r.status == s).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 5);
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 35);
    let refused = |r: &Resp| {
        matches!(r.code().as_str(), "rate_limited" | "locked")
            && r.headers.contains_key(header::RETRY_AFTER)
    };
    assert!(
        all.iter()
            .all(|r| r.status == StatusCode::UNAUTHORIZED || refused(r)),
        "{:?}",
        all.iter().map(|r| (r.status, r.code())).collect::<Vec<_>>()
    );
    assert!(all.iter().any(|r| r.code() == "rate_limited"));
    let r = login_from(&fx.app, "192.0.2.5", "tech", TECH_PW).await;
    assert_eq!(r.code(), "locked", "{}", r.body);
}

/// A full password pool answers 429 `busy` with `Retry-After` in the JSON
/// envelope, without waiting past the pool's wait and without counting the
/// attempt; creating a user (hashing) is refused the same way; a freed
/// permit lets the login through.
#[tokio::test(start_paused = true)]
async fn full_password_pool_answers_429_busy() {
    let fx = fixture();
    let pool = HashPool::new(1, Duration::from_millis(100));
    let app = router(fx.st.clone().with_hash_pool(pool.clone()));
    let held = pool.try_acquire().unwrap();
    for _ in 0..8 {
        let r = login_from(&app, "192.0.2.6", "tech", TECH_PW).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
        assert_eq!(r.code(), "busy");
        assert_eq!(r.headers[header::RETRY_AFTER], "1");
        assert!(
            r.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    let body = serde_json::json!({"name": "newbie", "role": "viewer", "password": "n3w-Secret-pw"})
        .to_string();
    let r = call(
        &app,
        Method::POST,
        "/api/v1/users",
        Auth::Bearer(&fx.tokens[&Role::Admin]),
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "busy");
    assert!(r.headers.contains_key(header::RETRY_AFTER));
    drop(held);
    // The refused attempts did not count towards the lockout.
    let r = login_from(&app, "192.0.2.6", "tech", TECH_PW).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Five failures from one address lock the user for that address only:
/// the same user logs in from another address. An admin's unlock (audited)
/// lifts the lock; unknown users are 404.
#[tokio::test(start_paused = true)]
async fn lockout_is_per_address_and_an_admin_unlocks() {
    let fx = fixture();
    for _ in 0..5 {
        let r = login_from(&fx.app, "192.0.2.1", "tech", "wrong-pass").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = login_from(&fx.app, "192.0.2.1", "tech", TECH_PW).await;
    assert_eq!(r.code(), "locked", "{}", r.body);
    let r = login_from(&fx.app, "192.0.2.2", "tech", TECH_PW).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "another address is not locked out: {}",
        r.body
    );
    let admin = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/users/tech/unlock",
        admin.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["unlocked"], serde_json::json!(["192.0.2.1"]));
    let r = login_from(&fx.app, "192.0.2.1", "tech", TECH_PW).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/users/nobody/unlock",
        admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let audit = fx.st.users().audit_log(100, None).unwrap();
    let e = audit
        .iter()
        .find(|e| e.action == "user.unlock")
        .expect("the unlock is audited");
    assert_eq!((e.actor.as_str(), e.outcome.as_str()), ("adm", "ok"));
    assert_eq!(e.target.as_deref(), Some("tech"));
}
