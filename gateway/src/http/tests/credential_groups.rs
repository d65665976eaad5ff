//! Credential groups: over-broad subnets and short passwords refused,
//! overlapping groups of one priority refused (409 naming the other),
//! DELETE (technician, audited).

use super::*;

async fn put_group(fx: &Fx, name: &str, body: serde_json::Value) -> Resp {
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let path = format!("/api/v1/credential-groups/{name}");
    let b = body.to_string();
    call(&fx.app, Method::PUT, &path, tech, Some(b.as_bytes())).await
}

/// `0.0.0.0/0` and a 1-character password are refused, naming the field;
/// `allow_broad` lets a deliberate broad subnet through.
#[tokio::test]
async fn broad_subnets_and_short_passwords_are_refused() {
    let fx = fixture();
    let r = put_group(&fx, "all", serde_json::json!({"username": "admin", "password": "long-enough-pw", "subnets": ["0.0.0.0/0"]})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body.contains("subnets") && r.body.contains("allow_broad"),
        "{}",
        r.body
    );
    let r = put_group(
        &fx,
        "all",
        serde_json::json!({"username": "admin", "password": "x", "subnets": ["10.1.0.0/24"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("password"), "{}", r.body);
    assert!(!r.body.contains("\"x\""), "{}", r.body);
    let r = put_group(&fx, "all", serde_json::json!({"username": "admin", "password": "long-enough-pw", "subnets": ["10.0.0.0/8"], "allow_broad": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A group overlapping another of the same priority is 409 naming it; a
/// different priority or a disjoint scope is fine; replacing a group by its
/// own name is not a conflict with itself.
#[tokio::test]
async fn overlapping_groups_of_one_priority_conflict() {
    let fx = fixture();
    let r = put_group(&fx, "batch-a", serde_json::json!({"username": "admin", "password": "long-enough-pw", "subnets": ["10.1.0.0/16"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put_group(&fx, "aaa", serde_json::json!({"username": "admin", "password": "other-long-pw", "subnets": ["10.1.2.0/24"]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("batch-a"), "{}", r.body);
    let r = put_group(&fx, "mac-a", serde_json::json!({"username": "admin", "password": "long-enough-pw", "mac_prefixes": ["44:19:b6"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put_group(&fx, "mac-b", serde_json::json!({"username": "admin", "password": "long-enough-pw", "mac_prefixes": ["44:19"]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("mac-a"), "{}", r.body);
    let r = put_group(&fx, "aaa", serde_json::json!({"username": "admin", "password": "other-long-pw", "subnets": ["10.1.2.0/24"], "priority": 10})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put_group(&fx, "bbb", serde_json::json!({"username": "admin", "password": "other-long-pw", "subnets": ["10.2.0.0/16"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = put_group(&fx, "batch-a", serde_json::json!({"username": "admin", "password": "new-long-pw", "subnets": ["10.1.0.0/16"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// DELETE removes a group (technician and up, audited); a second DELETE
/// is 404; an operator is refused.
#[tokio::test]
async fn groups_can_be_deleted() {
    let fx = fixture();
    let r = put_group(&fx, "gone", serde_json::json!({"username": "admin", "password": "long-enough-pw", "subnets": ["10.9.0.0/16"]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let op = Auth::Bearer(&fx.tokens[&Role::Operator]);
    let r = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/credential-groups/gone",
        op,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let tech = Auth::Bearer(&fx.tokens[&Role::Technician]);
    let r = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/credential-groups/gone",
        tech.clone(),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        fx.st
            .store
            .credential_groups()
            .unwrap()
            .iter()
            .all(|g| g.name != "gone")
    );
    let r = call(
        &fx.app,
        Method::DELETE,
        "/api/v1/credential-groups/gone",
        tech,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let adm = Auth::Bearer(&fx.tokens[&Role::Admin]);
    let r = call(&fx.app, Method::GET, "/api/v1/audit", adm, None).await;
    assert!(r.body.contains("credential_group.delete"), "{}", r.body);
}
