//! HTTP protocol hygiene: HEAD like GET, 405 with `Allow` for a wrong
//! method, 404 for an unknown path, the JSON envelope on every 413, the
//! hardening headers on every response, control characters refused.

use super::*;

fn assert_hardened(r: &Resp) {
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(
            r.headers.get(k).and_then(|h| h.to_str().ok()),
            Some(v),
            "{k} on a {} response",
            r.status
        );
    }
}

/// HEAD is answered like GET without a body, with the same access rule.
#[tokio::test]
async fn head_is_served_like_get() {
    let fx = fixture();
    let r = call(&fx.app, Method::HEAD, "/healthz", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty(), "{}", r.body);
    let r = call(&fx.app, Method::HEAD, "/api/v1/cameras", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);
    let r = call(&fx.app, Method::HEAD, "/api/v1/cameras", view.clone(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty(), "{}", r.body);
    // Admin-only GET: a viewer's HEAD is refused like their GET.
    let r = call(&fx.app, Method::HEAD, "/api/v1/users", view, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

/// A wrong method on an existing path is 405 with `Allow`, whoever asks;
/// an unknown path is 404.
#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let fx = fixture();
    let view = Auth::Bearer(&fx.tokens[&Role::Viewer]);
    for (m, path, auth) in [
        (Method::DELETE, "/healthz", Auth::None),
        (Method::PATCH, "/api/v1/cameras", Auth::None),
        (Method::PATCH, "/api/v1/cameras", view.clone()),
        (Method::PUT, "/api/v1/users", view.clone()),
    ] {
        let r = call(&fx.app, m.clone(), path, auth, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
        assert_eq!(r.code(), "method_not_allowed", "{}", r.body);
        assert_hardened(&r);
        let allow = r.headers[header::ALLOW].to_str().unwrap().to_string();
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
    }
    let r = call(&fx.app, Method::PUT, "/api/v1/users", view, None).await;
    let allow = r.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("POST"), "{allow}");
    let r = call(&fx.app, Method::GET, "/api/v1/nope", Auth::None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    assert_hardened(&r);
}

/// Every response carries the hardening headers.
#[tokio::test]
async fn responses_carry_hardening_headers() {
    let fx = fixture();
    for (m, path) in [
        (Method::GET, "/healthz"),
        (Method::GET, "/"),
        (Method::GET, "/api/v1/cameras"),
        (Method::GET, "/api/v1/openapi.json"),
    ] {
        let r = call(&fx.app, m, path, Auth::None, None).await;
        assert_hardened(&r);
    }
}

/// A raw upload over its limit answers 413 with the JSON envelope.
#[tokio::test]
async fn too_large_upload_is_the_json_envelope() {
    let fx = fixture();
    let big = vec![0u8; 64 * 1024 * 1024 + 1];
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/audio-assets?name=x.wav")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", fx.tokens[&Role::Operator]),
        )
        .header(header::CONTENT_TYPE, "audio/wav")
        .body(AxBody::from(big))
        .unwrap();
    let r = fx.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.headers()[header::X_CONTENT_TYPE_OPTIONS]
            .to_str()
            .unwrap(),
        "nosniff"
    );
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"]["code"], "too_large", "{v}");
}

/// NUL, ESC and DEL in titles and names are refused naming the field;
/// line breaks stay allowed in announcement text.
#[tokio::test]
async fn control_characters_are_refused() {
    let fx = fixture();
    let op = Auth::Bearer(&fx.tokens[&Role::Operator]);
    for (body, field) in [
        (
            r#"{"title":"a\u0000b","targets":["all"],"text":"hi"}"#,
            "title",
        ),
        (
            r#"{"title":"a\u001b[2Jb","targets":["all"],"text":"hi"}"#,
            "title",
        ),
        (
            r#"{"title":"a\u007fb","targets":["all"],"text":"hi"}"#,
            "title",
        ),
        (r#"{"targets":["all"],"text":"hi\u001b[31m"}"#, "text"),
    ] {
        let r = call(
            &fx.app,
            Method::POST,
            "/api/v1/broadcasts",
            op.clone(),
            Some(body.as_bytes()),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert!(r.body.contains(field), "{body}: {}", r.body);
    }
    let body = r#"{"title":"t","targets":["all"],"text":"line 1\nline 2\tend"}"#;
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/broadcasts",
        op.clone(),
        Some(body.as_bytes()),
    )
    .await;
    assert_ne!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let body = r#"{"name":"morning\u001b[2J","text":"hi"}"#;
    let r = call(
        &fx.app,
        Method::PUT,
        "/api/v1/programmes/p1",
        op.clone(),
        Some(body.as_bytes()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("name must not"), "{}", r.body);
    let r = call(
        &fx.app,
        Method::POST,
        "/api/v1/audio-assets?name=a%1Bb.wav",
        op,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("name"), "{}", r.body);
}
