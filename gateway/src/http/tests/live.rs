//! Server-sent events.

use super::*;

/// SSE: the live hub's events reach a subscriber of /api/v1/events.
#[tokio::test]
async fn live_events_stream_to_subscribers() {
    let fx = fixture();
    let req = Request::builder()
        .uri("/api/v1/events")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", fx.tokens[&Role::Viewer]),
        )
        .body(AxBody::empty())
        .unwrap();
    let r = fx.app.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fx.st.live().subscribers(), 1);
    fx.st
        .live()
        .publish(crate::base::live::LiveEvent::Transition {
            id: fx.cam.clone(),
            village: None,
            from: "ok".into(),
            to: "offline".into(),
            reasons: vec![],
            rung: "unreachable".into(),
            at: "t".into(),
        });
    let mut body = r.into_body().into_data_stream();
    let mut text = String::new();
    while !text.contains("offline") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("event: hello") && text.contains("event: health"),
        "{text}"
    );
}
