//! Out-of-range values are refused with a message naming the field.

use super::*;

/// Out-of-range values → 400 naming the field, for queries and bodies.
#[tokio::test]
async fn out_of_range_values_are_refused_with_a_message() {
    let fx = fixture();
    let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let cases: &[(Method, &str, Option<&str>, &str)] = &[
        (Method::GET, "/api/v1/cameras?per_page=0", None, "per_page"),
        (
            Method::GET,
            "/api/v1/cameras?per_page=5000",
            None,
            "per_page",
        ),
        (
            Method::GET,
            "/api/v1/cameras?page=0&per_page=10",
            None,
            "page",
        ),
        (
            Method::GET,
            "/api/v1/cameras?verdict=bogus",
            None,
            "verdict",
        ),
        (Method::GET, "/api/v1/cameras?nope=1", None, "nope"),
        (Method::GET, "/api/v1/devices?state=lost", None, "state"),
        (Method::GET, "/api/v1/audit?limit=100000", None, "limit"),
        (Method::GET, "/api/v1/transitions?limit=0", None, "limit"),
        (
            Method::POST,
            "/api/v1/users",
            Some(r#"{"name":"x","role":"admin","password":"short"}"#),
            "password",
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(r#"{"name":"a b","role":"admin","password":"long enough"}"#),
            "user name",
        ),
        (
            Method::POST,
            "/api/v1/users",
            Some(r#"{"name":"ab","role":"root","password":"long enough"}"#),
            "role",
        ),
        (
            Method::POST,
            "/api/v1/inbox/adopt",
            Some(r#"{"ids":[]}"#),
            "ids",
        ),
        (
            Method::POST,
            "/api/v1/inbox/adopt",
            Some(r#"{"ids":["a"],"username":"u"}"#),
            "together",
        ),
        (
            Method::PUT,
            "/api/v1/credential-groups/g",
            Some(r#"{"username":"u","password":"password","priority":5000}"#),
            "priority",
        ),
        (
            Method::PUT,
            "/api/v1/credential-groups/g",
            Some(r#"{"username":"u","password":"password","subnets":["10.0.0.0/33"]}"#),
            "subnets",
        ),
        (
            Method::PUT,
            "/api/v1/log-level",
            Some(r#"{"filter":"info;rm -rf"}"#),
            "filter",
        ),
        (
            Method::PATCH,
            "/api/v1/users/view",
            Some(r#"{}"#),
            "nothing to change",
        ),
    ];
    for (m, path, body, needle) in cases {
        let r = call(
            &fx.app,
            m.clone(),
            path,
            adm.clone(),
            body.map(str::as_bytes),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{m} {path}: {}", r.body);
        assert!(
            r.body.contains(needle),
            "{m} {path}: message should name `{needle}`: {}",
            r.body
        );
    }
    // Wrong content type → 415.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(AxBody::from("{}"))
        .unwrap();
    assert_eq!(
        fx.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}
