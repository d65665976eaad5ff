//! A login test whose login call cannot connect for want of a file
//! descriptor is `gateway-limit` (errno `EMFILE`), not `unreachable`:
//! through the real reqwest path (`login_test::transport_error`: the
//! error's source chain down to the io error), after a clock that was read.
//!
//! Real: a camera on loopback answers GetSystemDateAndTime with
//! `Connection: close`; on that request it lowers this process's soft
//! `RLIMIT_NOFILE` to the lowest descriptor that was free once the
//! listener and the client were made, so the login call's new socket meets
//! EMFILE. The limit
//! is restored before anything is asserted. The file holds this one test:
//! it is its own test binary (one process), so no other test opens a file
//! meanwhile (the shared lib test process keeps its limit).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::fd::AsRawFd as _;
use std::sync::Arc;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use device_drivers::onvif_client::{ClientOptions, Credentials, SystemClock, http_client};
use futures::FutureExt as _;
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tgw::cameras::login_test::{Outcome, test_login};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;

const CLOCK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><SOAP-ENV:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:UTCDateTime><tt:Time><tt:Hour>8</tt:Hour><tt:Minute>0</tt:Minute><tt:Second>0</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>7</tt:Month><tt:Day>15</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;

/// Reads one HTTP request (head and `Content-Length` body).
async fn read_request(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_login_call_without_a_free_descriptor_is_the_gateways_limit() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let http = http_client(&ClientOptions::default()).expect("client");
    // Everything long-lived is open: every descriptor below this one stays
    // in use until the limit is restored.
    let lowest_free = std::fs::File::open("/dev/null")
        .expect("/dev/null")
        .as_raw_fd();
    let found = getrlimit(Resource::Nofile);
    let lowered = Rlimit {
        current: Some(u64::try_from(lowest_free).expect("fd")),
        maximum: found.maximum,
    };
    let restored = Arc::new(Notify::new());
    let wait = restored.clone();
    let camera = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("the clock's connection");
        let req = read_request(&mut s).await;
        assert!(req.contains("GetSystemDateAndTime"), "{req}");
        // The clock was asked: from now on the gateway has no descriptor
        // to spare for the login call's connection.
        setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            CLOCK.len()
        );
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(CLOCK.as_bytes()).await;
        let _ = s.shutdown().await;
        drop(s);
        // No accept() while the limit is low (Linux takes the descriptor
        // before it looks for a connection: EMFILE), and the listener kept,
        // or its descriptor would be the one the login call gets.
        wait.notified().await;
        listener
    });
    let creds = Credentials::new("admin", "emfile-Secret-pw");
    let r = test_login(
        &http,
        &format!("http://{addr}/onvif/device_service"),
        &creds,
        Duration::from_secs(5),
        Arc::new(SystemClock),
    )
    .await;
    setrlimit(Resource::Nofile, found).expect("restore the soft limit");
    restored.notify_one();
    let listener = camera.await.expect("the camera");
    assert!(
        listener.accept().now_or_never().is_none(),
        "the login call reached the camera: {r:?}"
    );

    assert_eq!(r.result, Outcome::GatewayLimit, "{r:?}");
    assert_eq!(r.local, Some(LocalResource::Emfile), "{r:?}");
    assert!(r.message.contains("EMFILE"), "{r:?}");
    assert!(r.clock_offset_ms.is_some(), "the clock it did read: {r:?}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["result"], "gateway-limit");
    assert_eq!(json["errno"], "EMFILE");
    assert!(!r.message.contains("emfile-Secret-pw"), "{r:?}");
}
