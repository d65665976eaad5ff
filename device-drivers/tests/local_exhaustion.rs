//! A connect that fails for want of a file descriptor is the gateway's own
//! error (`Local(EMFILE)`), for the ONVIF client (through reqwest → hyper →
//! io) and the RTSP probe (through retina's text), not the camera's
//! `connect`.
//!
//! Real: this process's soft `RLIMIT_NOFILE` is lowered to its lowest free
//! descriptor for the two calls, then restored before anything is asserted.
//! The file holds this one test, so under `cargo test` (one process per
//! test binary, tests on threads) no other test opens a file meanwhile.
#![cfg(all(feature = "io", target_os = "linux"))]

use std::os::fd::AsRawFd as _;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use device_drivers::onvif_client::{ClientOptions, OnvifClient, OnvifErrorKind};
use device_drivers::rtsp_probe::{self, RtspErrorKind, RtspOptions};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

#[tokio::test]
async fn connects_without_a_free_descriptor_are_local_not_the_cameras() {
    // A camera that is there: without the lowered limit both calls would
    // reach it (and fail otherwise, or not at all, but never as Local).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let opts = ClientOptions {
        timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    };
    let onvif = OnvifClient::new(
        &format!("http://127.0.0.1:{port}/onvif/device_service"),
        None,
        opts,
    )
    .expect("client");
    let rtsp_url = format!("rtsp://127.0.0.1:{port}/stream");
    let rtsp_opts = RtspOptions {
        timeout: Duration::from_secs(2),
        ..RtspOptions::default()
    };

    let lowest_free = std::fs::File::open("/dev/null")
        .expect("/dev/null")
        .as_raw_fd();
    let found = getrlimit(Resource::Nofile);
    let lowered = Rlimit {
        current: Some(u64::try_from(lowest_free).expect("fd")),
        maximum: found.maximum,
    };
    setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
    let onvif_err = onvif.system_date_and_time().await;
    let rtsp_err = rtsp_probe::describe(&rtsp_url, None, &rtsp_opts).await;
    setrlimit(Resource::Nofile, found).expect("restore the soft limit");

    let e = onvif_err.expect_err("no descriptor: the call cannot connect");
    assert_eq!(
        e.kind,
        OnvifErrorKind::Local(LocalResource::Emfile),
        "{e:?}"
    );
    assert_eq!(e.kind_label(), "local");
    assert_eq!(e.peer, format!("127.0.0.1:{port}"));
    let e = rtsp_err.expect_err("no descriptor: the probe cannot connect");
    assert_eq!(e.kind, RtspErrorKind::Local(LocalResource::Emfile), "{e:?}");
    assert_eq!(e.kind_label(), "local");

    // With the limit back, the same client connects (and the listener,
    // which never answers, is not the point: the connect is).
    drop(listener);
    let e = onvif.system_date_and_time().await.expect_err("closed");
    assert!(matches!(e.kind, OnvifErrorKind::Connect(_)), "{e:?}");
}
