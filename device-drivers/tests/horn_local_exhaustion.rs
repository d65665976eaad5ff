//! A horn whose socket cannot be made for want of a file descriptor fails
//! with the gateway's own error kind `local` naming `EMFILE` (RTP: the
//! sender's socket; SIP: its signalling socket; Axis HTTP: the connect),
//! not `io` or `unreachable`: the horn did nothing wrong.
//!
//! Real: this process's soft `RLIMIT_NOFILE` is lowered to its lowest free
//! descriptor for the calls, then restored before anything is asserted.
//! The file holds this one test, so under `cargo test` (one process per
//! test binary, tests on threads) no other test opens a file meanwhile.
#![cfg(all(feature = "io", target_os = "linux"))]

use std::os::fd::AsRawFd as _;
use std::time::Duration;

use device_drivers::local_error::LocalResource;
use device_drivers::sip_io;
use device_drivers::speaker::{self, Answered, DriverOptions, SpeakerUri};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tokio_util::sync::CancellationToken;

/// Paused time: the SIP horn that never answers times out without a wait.
#[tokio::test(start_paused = true)]
async fn horns_without_a_free_descriptor_fail_locally_not_as_the_horns_fault() {
    // Horns that are there: an HTTP speaker's port that accepts, a UDP
    // port for the RTP horn and the SIP horn.
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (http_port, udp_addr) = (
        http.local_addr().expect("addr").port(),
        udp.local_addr().expect("addr"),
    );
    let rtp: SpeakerUri = format!("rtp://{udp_addr}").parse().expect("uri");
    let axis: SpeakerUri = format!("axis://127.0.0.1:{http_port}")
        .parse()
        .expect("uri");
    let opts = DriverOptions {
        answer_timeout: Duration::from_secs(2),
        ..DriverOptions::default()
    };
    let pcm = vec![0i16; 1600];
    let cancel = CancellationToken::new();

    let lowest_free = std::fs::File::open("/dev/null")
        .expect("/dev/null")
        .as_raw_fd();
    let found = getrlimit(Resource::Nofile);
    let lowered = Rlimit {
        current: Some(u64::try_from(lowest_free).expect("fd")),
        maximum: found.maximum,
    };
    setrlimit(Resource::Nofile, lowered).expect("lower the soft limit");
    let rtp_rep = speaker::play(&rtp, &opts, &pcm, Duration::ZERO, &cancel).await;
    let axis_rep = speaker::play(&axis, &opts, &pcm, Duration::ZERO, &cancel).await;
    let sip_err = sip_io::options("horn", udp_addr, Duration::from_secs(1)).await;
    setrlimit(Resource::Nofile, found).expect("restore the soft limit");

    for rep in [&rtp_rep, &axis_rep] {
        assert_eq!(rep.error_kind.as_deref(), Some("local"), "{rep:?}");
        assert_eq!(rep.local, Some(LocalResource::Emfile), "{rep:?}");
        assert_eq!(rep.result(), "failed: local");
        assert_eq!(rep.answered, Answered::Unknown, "nothing learnt: {rep:?}");
        assert_eq!(rep.packets, 0);
        let text = rep.errors.join("; ");
        assert!(
            text.contains("EMFILE") && text.contains("not the horn's fault"),
            "{text}"
        );
    }
    let json = serde_json::to_value(&rtp_rep).expect("json");
    assert_eq!(json["local"], "EMFILE");
    let e = sip_err.expect_err("no descriptor: no SIP socket");
    assert_eq!(e.local, Some(LocalResource::Emfile), "{e:?}");

    // With the limit back, the same horns' own trouble is theirs: the
    // HTTP speaker gone is refused, the SIP horn that never answers times
    // out; neither is local.
    drop(http);
    let rep = speaker::play(&axis, &opts, &pcm, Duration::ZERO, &cancel).await;
    assert_ne!(rep.error_kind.as_deref(), Some("local"), "{rep:?}");
    assert_eq!(rep.local, None);
    let e = sip_io::options("horn", udp_addr, Duration::from_millis(300))
        .await
        .expect_err("nobody answers OPTIONS");
    assert_eq!(e.local, None, "{e:?}");
}
