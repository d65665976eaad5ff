//! `GET /api/v1/paging/live`: the checks before the WebSocket upgrade.

use super::*;

/// A cookie session must send its CSRF token as `?csrf=` (a browser cannot
/// set headers on a WebSocket): none or a wrong one → 403 `csrf`; the right
/// one passes (here to 503: this router has no broadcast runtime). A
/// viewer is refused whatever it sends; an unknown query key is 400.
#[tokio::test]
async fn session_needs_its_csrf_token_in_the_query() {
    let fx = fixture();
    let (sid, csrf) = login(&fx.app, "oper", OPER_PW).await;
    let path = "/api/v1/paging/live";
    let r = call(
        &fx.app,
        Method::GET,
        path,
        Auth::Cookie {
            sid: &sid,
            csrf: None,
        },
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "csrf");
    let wrong = format!("{path}?csrf=wrong");
    let r = call(
        &fx.app,
        Method::GET,
        &wrong,
        Auth::Cookie {
            sid: &sid,
            csrf: None,
        },
        None,
    )
    .await;
    assert_eq!(r.code(), "csrf", "{}", r.body);
    // The header alone is not enough either: the query is what counts.
    let r = call(
        &fx.app,
        Method::GET,
        path,
        Auth::Cookie {
            sid: &sid,
            csrf: Some(&csrf),
        },
        None,
    )
    .await;
    assert_eq!(r.code(), "csrf", "{}", r.body);
    let right = format!("{path}?csrf={csrf}");
    let r = call(
        &fx.app,
        Method::GET,
        &right,
        Auth::Cookie {
            sid: &sid,
            csrf: None,
        },
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        &right,
        Auth::Bearer(&fx.tokens[&Role::Viewer]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(
        &fx.app,
        Method::GET,
        &format!("{path}?volume=3"),
        Auth::Bearer(&fx.tokens[&Role::Operator]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}
