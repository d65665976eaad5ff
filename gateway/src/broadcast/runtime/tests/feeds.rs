//! A polled HTTP feed (an Atom feed linking to a CAP document) reaches
//! the warning desk once and starts a warning broadcast.

use super::*;

/// A polled HTTP feed (Atom, linking to a CAP document on the same
/// server): the alert reaches the desk once, however often the feed is
/// polled, and starts a warning broadcast.
#[tokio::test]
async fn polled_atom_feed_starts_a_warning_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The desk judges `sent` by the runtime's clock (the world's day,
    // running on real time here), so the alert is sent at its start.
    let alert = String::from_utf8(
        cap(
            "jiangning_rainstorm_orange_alert.xml",
            &[
                ("2026-07-15T08:30:00", "2026-10-10T00:00:00"),
                ("2026-07-15T20:30:00", "2026-10-10T20:30:00"),
            ],
        )
        .to_vec(),
    )
    .unwrap();
    let feed = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>预警</title><id>urn:feed</id><updated>2026-10-10T00:00:00+08:00</updated>
<entry><id>urn:e1</id><title>暴雨橙色预警</title><updated>2026-10-10T00:00:00+08:00</updated><link href="http://{addr}/cap/1.xml"/></entry></feed>"#
    );
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h2 = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.starts_with("GET /cap/1.xml") {
                h2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                alert.clone()
            } else {
                feed.clone()
            };
            let _ = s
                .write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes())
                .await;
        }
    });
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    let f = tgw_core::warning::Feed {
        url: format!("http://{addr}/feed.xml"),
        interval_secs: 1,
    };
    let poller = tokio::spawn(crate::broadcast::feeds::poll(
        f,
        b.clone(),
        shutdown.clone(),
    ));
    for _ in 0..100 {
        if r.caps(10).unwrap().iter().any(|c| c.decision == "play") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await; // more polls
    let caps = r.caps(10).unwrap();
    assert_eq!(caps.len(), 1, "{caps:?}");
    assert_eq!(caps[0].decision, "play");
    assert!(caps[0].via.ends_with("/cap/1.xml"));
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the linked document is fetched once"
    );
    let bid = caps[0].broadcast_id.clone().unwrap();
    let (row, horns) = r.get(&bid).unwrap().unwrap();
    assert_eq!(row.priority, "emergency");
    assert_eq!(horns.len(), 2, "village v2's horns: {horns:?}");
    shutdown.cancel();
    let _ = poller.await;
    let _ = task.await;
}
