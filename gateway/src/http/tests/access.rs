//! Every route of the table answers its access rule.

use super::*;

const ROLES: [Role; 4] = [Role::Viewer, Role::Operator, Role::Technician, Role::Admin];

/// Every route in [`ROUTES`] (the table the router is built from):
/// unauthenticated → 401, each lower role → 403, a cookie session
/// without the CSRF token on a mutating route → 403 `csrf`, and on
/// routes with a body: malformed JSON, an unknown field and a wrong type
/// → 400 with a message, an oversized body → 413.
#[tokio::test]
async fn access_table_covers_every_route() {
    let fx = fixture();
    let (sid, _csrf) = login(&fx.app, "adm", ADMIN_PW).await;
    let mut checked = 0;
    for route in ROUTES {
        let path = concrete(route.path, &fx.cam);
        let m = route.method.method();
        let what = format!("{} {}", m, route.path);
        let body_ok = route.body.map(|_| b"{}".as_slice());
        match route.access {
            Access::Public => {
                let r = call(&fx.app, m.clone(), &path, Auth::None, body_ok).await;
                assert_ne!(r.status, StatusCode::UNAUTHORIZED, "{what}");
                assert_ne!(r.status, StatusCode::FORBIDDEN, "{what}");
            }
            Access::Role(need) => {
                let r = call(&fx.app, m.clone(), &path, Auth::None, body_ok).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.body);
                assert_eq!(r.code(), "unauthenticated", "{what}");
                let r = call(
                    &fx.app,
                    m.clone(),
                    &path,
                    Auth::Bearer("tgw_forged"),
                    body_ok,
                )
                .await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} forged token");
                let r = call(
                    &fx.app,
                    m.clone(),
                    &path,
                    Auth::Cookie {
                        sid: "forged",
                        csrf: None,
                    },
                    body_ok,
                )
                .await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} forged cookie");
                for role in ROLES.iter().filter(|r| **r < need) {
                    let r = call(
                        &fx.app,
                        m.clone(),
                        &path,
                        Auth::Bearer(&fx.tokens[role]),
                        body_ok,
                    )
                    .await;
                    assert_eq!(
                        r.status,
                        StatusCode::FORBIDDEN,
                        "{what} as {role:?}: {}",
                        r.body
                    );
                    assert_eq!(r.code(), "forbidden");
                }
                if route.method != M::Get {
                    let r = call(
                        &fx.app,
                        m.clone(),
                        &path,
                        Auth::Cookie {
                            sid: &sid,
                            csrf: None,
                        },
                        body_ok,
                    )
                    .await;
                    assert_eq!(
                        r.status,
                        StatusCode::FORBIDDEN,
                        "{what} without CSRF: {}",
                        r.body
                    );
                    assert_eq!(r.code(), "csrf", "{what}");
                    let r = call(
                        &fx.app,
                        m.clone(),
                        &path,
                        Auth::Cookie {
                            sid: &sid,
                            csrf: Some("wrong"),
                        },
                        body_ok,
                    )
                    .await;
                    assert_eq!(r.code(), "csrf", "{what} wrong CSRF");
                }
            }
        }
        if route.body.is_some() {
            let admin = match route.access {
                Access::Public => Auth::None,
                Access::Role(_) => Auth::Bearer(&fx.tokens[&Role::Admin]),
            };
            for bad in [&b"{"[..], b"[1,2", b"{\"zzz_unknown\": 1}", b"{\"user\": 5, \"ids\": 5, \"label\": 5, \"filter\": 5, \"username\": 5, \"name\": 5, \"role\": 5, \"village\": 5}"] {
                let r = call(&fx.app, m.clone(), &path, admin.clone(), Some(bad)).await;
                assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what} {:?}: {}", String::from_utf8_lossy(bad), r.body);
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty(), "{what}: no message");
            }
            let big = format!("{{\"x\": \"{}\"}}", "a".repeat(BODY_LIMIT + 10));
            let r = call(
                &fx.app,
                m.clone(),
                &path,
                admin.clone(),
                Some(big.as_bytes()),
            )
            .await;
            assert_eq!(
                r.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{what}: {}",
                r.body
            );
            assert_eq!(r.code(), "too_large");
        }
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len());
    // Every route is in the OpenAPI document.
    let doc = openapi_doc();
    for r in ROUTES {
        assert!(
            doc["paths"][r.path][r.method.method().as_str().to_lowercase()].is_object(),
            "{} missing in OpenAPI",
            r.path
        );
    }
}
