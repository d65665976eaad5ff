//! Secrets never appear in responses, pages or logs.

use super::*;

/// A capture of log lines for the duration of a test.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuf {
    type Writer = LogBuf;
    fn make_writer(&'a self) -> LogBuf {
        self.clone()
    }
}

/// Drives every change through the API (login, device and group
/// credentials, users, tokens, adoption), then reads every GET route and
/// the audit log, and searches every response, page and log line for the
/// passwords and tokens used.
#[tokio::test]
async fn secrets_never_appear_in_responses_pages_or_logs() {
    let logs = LogBuf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _g = tracing::subscriber::set_default(sub);
    let fx = fixture();
    let (sid, csrf) = login(&fx.app, "adm", ADMIN_PW).await;
    let s = Auth::Cookie {
        sid: &sid,
        csrf: Some(&csrf),
    };
    let new_dev_pw = "n3w-dev1ce-pw";
    let group_pw = "gr0up-Secret-pw";
    let user_pw = "n3w-user-Secret";
    let mut seen = Vec::new();
    let mut token = String::new();
    let others: Vec<String> = fx
        .st
        .store
        .devices(Some(DeviceState::Discovered))
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    let steps: Vec<(Method, String, String)> = vec![
        (Method::PUT, format!("/api/v1/devices/{}/credentials", fx.cam), serde_json::json!({"username": "admin", "password": new_dev_pw}).to_string()),
        (Method::PUT, "/api/v1/credential-groups/batch".into(), serde_json::json!({"username": "admin", "password": group_pw, "subnets": ["127.0.9.0/24"]}).to_string()),
        (Method::POST, "/api/v1/users".into(), serde_json::json!({"name": "newbie", "role": "viewer", "password": user_pw}).to_string()),
        (Method::PATCH, "/api/v1/users/newbie".into(), serde_json::json!({"password": format!("{user_pw}2")}).to_string()),
        (Method::POST, "/api/v1/inbox/adopt".into(), serde_json::json!({"ids": [others[0]], "village": "xinhe", "username": "root", "password": new_dev_pw}).to_string()),
        (Method::POST, "/api/v1/users/newbie/tokens".into(), serde_json::json!({"label": "ci"}).to_string()),
    ];
    for (m, path, body) in steps {
        let r = call(&fx.app, m.clone(), &path, s.clone(), Some(body.as_bytes())).await;
        assert!(r.status.is_success(), "{m} {path}: {}", r.body);
        if path.ends_with("/tokens") {
            // The one response that carries a secret: the new token, once.
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
            token = v["token"].as_str().unwrap().to_string();
        } else {
            seen.push((format!("{m} {path}"), r.body));
        }
    }
    // Failed logins must not log the attempted password either.
    let bad = serde_json::json!({"user": "adm", "password": "typo-of-the-Secret"}).to_string();
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/login",
        Auth::None,
        Some(bad.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    seen.push(("failed login".into(), r.body));
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/cameras/".to_string().as_str(),
        Auth::None,
        None,
    )
    .await;
    seen.push(("404".into(), r.body));
    for route in ROUTES
        .iter()
        .filter(|r| r.method == M::Get && r.path != "/api/v1/events")
    {
        let path = concrete(route.path, &fx.cam);
        let r = call(&fx.app, Method::GET, &path, s.clone(), None).await;
        seen.push((
            format!("GET {path} ({})", r.status),
            format!("{:?}\n{}", r.headers, r.body),
        ));
    }
    let dashboard = call(&fx.app, Method::GET, "/", s.clone(), None).await;
    assert!(dashboard.body.contains("app.js"));
    let audit = call(&fx.app, Method::GET, "/api/v1/audit", s.clone(), None).await;
    assert!(
        audit.body.contains("device.credentials")
            && audit.body.contains("user.token")
            && audit.body.contains("device.adopt"),
        "{}",
        audit.body
    );
    let log_text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(log_text.contains("audit"), "logs were captured");
    seen.push(("logs".into(), log_text));
    let secrets = [
        ADMIN_PW,
        TECH_PW,
        VIEW_PW,
        OPER_PW,
        DEVICE_PW,
        new_dev_pw,
        group_pw,
        user_pw,
        "typo-of-the-Secret",
        &token,
        &sid,
        &fx.tokens[&Role::Admin],
        &fx.tokens[&Role::Viewer],
    ];
    for (what, text) in &seen {
        for sec in secrets {
            assert!(
                !text.contains(sec),
                "secret `{}…` found in {what}",
                &sec[..4]
            );
        }
    }
}
