//! Failure paths of `Relays` without a camera peer (the e2e suite
//! `tests/tests/gb28181_media.rs` plays real streams).

use std::time::Duration;

use tgw_core::clock::ManualClock;
use tokio::net::TcpListener;

use super::*;

const OFFER: &str = "v=0\r\no=34020000002000000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 9 RTP/AVP 96\r\na=recvonly\r\n\
a=rtpmap:96 PS/90000\r\ny=0100000001\r\n";

fn relays(max: usize) -> Relays {
    let cfg = Gb28181Media {
        max_relays: max,
        camera_timeout_secs: 2,
        ..Gb28181Media::default()
    };
    Relays::new(cfg, Arc::new(ManualClock::at(1_700_000_000_000)))
}

fn source(url: String) -> MediaSource {
    MediaSource {
        device_id: "cam-1".into(),
        channel_id: "34020000001320000001".into(),
        rtsp_url: url,
        username: Some("admin".into()),
        password: Some("Secret-pw-9".into()),
    }
}

fn lo() -> IpAddr {
    "127.0.0.1".parse().expect("ip")
}

/// Garbage and playback offers are 488 and take no slot.
#[tokio::test]
async fn bad_offers_are_488() {
    let r = relays(2);
    for sdp in ["garbage", &OFFER.replace("s=Play", "s=Playback")] {
        let e = r
            .invite("c1", source("rtsp://127.0.0.1:1/x".into()), sdp, lo())
            .await
            .unwrap_err();
        assert_eq!(e.sip_status(), 488, "{e}");
    }
    assert!(r.active().is_empty());
}

/// A camera nobody answers for is 500, names the camera, never the
/// password, and frees its slot.
#[tokio::test]
async fn unreachable_camera_is_500_and_frees_the_slot() {
    let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let r = relays(1);
    let e = r
        .invite(
            "c1",
            source(format!("rtsp://127.0.0.1:{port}/sub")),
            OFFER,
            lo(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.sip_status(), 500, "{e}");
    let text = e.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("Secret-pw-9"), "{text}");
    assert!(r.active().is_empty());
}

/// Over the cap is 486 while a relay holds the only slot; BYE frees it
/// at once, even while its camera is still being pulled.
#[tokio::test]
async fn cap_is_486_and_bye_frees() {
    // A camera that accepts and never answers DESCRIBE.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("rtsp://{}/main", silent.local_addr().expect("addr"));
    let r = relays(1);
    let first = {
        let r = r.clone();
        let url = url.clone();
        tokio::spawn(async move { r.invite("c1", source(url), OFFER, lo()).await })
    };
    tokio::time::timeout(Duration::from_secs(5), async {
        while r.active().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("first relay reserved");
    let info = &r.active()[0];
    assert_eq!(info.transport, "udp");
    assert_eq!(info.destination, "127.0.0.1:9");
    assert_eq!(info.started_unix, 1_700_000_000);
    let e = r.invite("c2", source(url), OFFER, lo()).await.unwrap_err();
    assert_eq!(e.sip_status(), 486, "{e}");
    assert!(e.to_string().contains("1 of 1"), "{e}");
    r.bye("c1");
    assert!(r.active().is_empty());
    let e = first.await.expect("join").unwrap_err();
    assert_eq!(e.sip_status(), 500, "{e}");
    assert!(r.active().is_empty(), "the failed invite left no slot");
}
