//! API tokens: revoked by a password change, listed without secrets,
//! revoked one by one (admins, or users their own); refused logins
//! counted in the audit log.

use super::*;

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

/// A new password (set by an admin) ends the user's sessions and revokes
/// every API token issued with the old one.
#[tokio::test]
async fn a_password_change_revokes_tokens_and_sessions() {
    let fx = fixture();
    let tech = fx.tokens[&Role::Technician].clone();
    let (sid, _) = login(&fx.app, "tech", TECH_PW).await;
    let cookie = Auth::Cookie {
        sid: &sid,
        csrf: None,
    };
    let who = call(
        &fx.app,
        Method::GET,
        "/api/v1/session",
        Auth::Bearer(&tech),
        None,
    )
    .await;
    assert_eq!(who.status, StatusCode::OK);
    let r = call(
        &fx.app,
        Method::PATCH,
        "/api/v1/users/tech",
        Auth::Bearer(&fx.tokens[&Role::Admin]),
        Some(br#"{"password":"n3w-Secret-pw"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/session",
        Auth::Bearer(&tech),
        None,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "old token still works: {}",
        r.body
    );
    let r = call(&fx.app, Method::GET, "/api/v1/session", cookie, None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "old session still works"
    );
    login(&fx.app, "tech", "n3w-Secret-pw").await;
    // The other users' tokens are untouched.
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/session",
        Auth::Bearer(&fx.tokens[&Role::Viewer]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
}

/// The list shows id, label, created and last use, never the token or its
/// digest; a user may list and revoke their own tokens, not another's;
/// an admin may revoke anyone's; revocations are audited.
#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked() {
    let fx = fixture();
    let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let view_tok = fx.tokens[&Role::Viewer].clone();
    let view = Auth::Bearer(&view_tok);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/users/view/tokens",
        adm.clone(),
        Some(br#"{"label":"backup"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let second = json(&r);
    let second_tok = second["token"].as_str().unwrap().to_string();
    let second_id = second["id"].as_i64().unwrap();

    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/users/view/tokens",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
    let list = json(&r);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{}", r.body);
    assert_eq!(list[0]["label"], "test");
    assert!(
        list[0]["last_used_at"].is_string(),
        "used by this request: {}",
        r.body
    );
    assert_eq!(list[1]["label"], "backup");
    assert!(list[1]["last_used_at"].is_null());
    assert_eq!(list[1]["id"].as_i64(), Some(second_id));
    for (secret, what) in [
        (view_tok.as_str(), "token"),
        (second_tok.as_str(), "token"),
        (&crate::auth::digest(&view_tok), "digest"),
        (&crate::auth::digest(&second_tok), "digest"),
    ] {
        assert!(
            !r.body.contains(secret),
            "the list shows a {what}: {}",
            r.body
        );
    }
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "id", "label", "last_used_at"]);

    // Not another user's tokens (viewer → technician), even to list them.
    let tech_path = "/api/v1/users/tech/tokens";
    let r = call(&fx.app, Method::GET, tech_path, view.clone(), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &fx.app,
        Method::DELETE,
        &format!("{tech_path}/1"),
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/users/nobody/tokens",
        adm.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The viewer revokes its second token: it stops working at once.
    let del = format!("/api/v1/users/view/tokens/{second_id}");
    let r = call(&fx.app, Method::DELETE, &del, view.clone(), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/session",
        Auth::Bearer(&second_tok),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&fx.app, Method::DELETE, &del, view.clone(), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/users/view/tokens/x",
        view.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid");

    // An admin revokes the technician's token (its id from the list).
    let r = call(&fx.app, Method::GET, tech_path, adm.clone(), None).await;
    let tech_id = json(&r)[0]["id"].as_i64().unwrap();
    let r = call(
        &fx.app,
        Method::DELETE,
        &format!("{tech_path}/{tech_id}"),
        adm.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/session",
        Auth::Bearer(&fx.tokens[&Role::Technician]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let log = fx.st.users().audit_log(100, None).unwrap();
    let revoked: Vec<(&str, &str, i64)> = log
        .iter()
        .filter(|e| e.action == "user.token.revoke")
        .map(|e| {
            (
                e.actor.as_str(),
                e.target.as_deref().unwrap(),
                e.after.as_ref().unwrap()["id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        revoked,
        [("adm", "tech", tech_id), ("view", "view", second_id)]
    );
}

/// A wrong password for `tech`: 401.
async fn wrong_login(fx: &Fx) {
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(br#"{"user":"tech","password":"wrong-pass"}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// The audit log's `login` rows, as an admin reads them.
async fn login_rows(fx: &Fx) -> Vec<serde_json::Value> {
    let r = call(
        &fx.app,
        Method::GET,
        "/api/v1/audit",
        Auth::Bearer(&fx.tokens[&Role::Admin]),
        None,
    )
    .await;
    let log = json(&r);
    let rows = log.as_array().unwrap_or_else(|| panic!("{}", r.body));
    rows.iter()
        .filter(|e| e["action"] == "login")
        .cloned()
        .collect()
}

/// Wrong passwords of one user from one address are one audit row whose
/// count grows; `GET /api/v1/audit` shows the count.
#[tokio::test]
async fn refused_logins_show_as_one_counted_audit_row() {
    let fx = fixture();
    for _ in 0..4 {
        wrong_login(&fx).await;
    }
    let logins = login_rows(&fx).await;
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["count"], 4);
    assert_eq!(logins[0]["outcome"], "failed");
    assert!(logins[0]["last_at"].is_string());
}

/// On a low data volume a refused login writes no audit row (an optional
/// write, counted as skipped).
#[tokio::test]
async fn refused_logins_are_not_audited_while_the_disk_is_low() {
    use crate::base::disk::{DiskLevel, Marks, Space};
    let fx = fixture();
    fx.st.metrics.disk().set(
        DiskLevel::Low,
        Space {
            free: 40 << 20,
            total: 1 << 30,
        },
        Marks::from_mb(64, 16),
    );
    wrong_login(&fx).await;
    let refused: Vec<_> = login_rows(&fx)
        .await
        .into_iter()
        .filter(|e| e["outcome"] != "ok")
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    let m = call(&fx.app, Method::GET, "/metrics", Auth::None, None).await;
    assert!(
        m.body
            .contains(r#"tgw_disk_skipped_writes_total{write="audit_refused_login"} 1"#),
        "{}",
        m.body
    );
}
