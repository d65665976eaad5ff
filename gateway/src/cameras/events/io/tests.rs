//! [`RealEventIo`] against the simulator's Axis camera, which refuses
//! event calls that are not WS-Addressed or do not echo the subscription's
//! reference parameter: subscribe, pull a tamper, renew, unsubscribe; a
//! subscription stripped of its parameter is refused by the camera.

use std::net::Ipv4Addr;
use std::time::Duration;

use device_drivers::cred_scope::CredentialScope;
use device_drivers::onvif_client::{Credentials, OnvifErrorKind};
use device_drivers::onvif_events::{EventKind, PropertyOperation, classify};
use device_sim::{Fault, SimConfig};

use super::RealEventIo;
use crate::base::clock;
use crate::cameras::events::EventIo;

const PW: &str = "pw-wsa-Strict";

#[tokio::test]
async fn strict_axis_camera_gets_addressed_calls_and_raises_a_tamper() {
    let sim = device_sim::start(SimConfig {
        // Flavours go round-robin: the fifth camera is the Axis.
        cameras: 5,
        bind: Ipv4Addr::new(127, 83, 0, 1),
        wsd_port: 0,
        rtsp_port: 0,
        multicast: None,
        password: Some(PW.into()),
        probe_max_delay: Some(Duration::ZERO),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let cam = sim
        .manifest()
        .devices
        .iter()
        .find(|d| d.flavour == "axis")
        .cloned()
        .unwrap();
    let xaddr = cam.xaddr.clone().unwrap();
    let io = RealEventIo::new(
        Duration::from_secs(3),
        Duration::from_secs(1),
        clock::system(),
    )
    .unwrap();
    let creds = Credentials::new(cam.username.clone().unwrap(), PW);
    let session = io
        .session(
            &xaddr,
            Some(creds),
            CredentialScope::new().allow_host(&xaddr),
        )
        .unwrap();
    let url = session
        .events_url()
        .await
        .unwrap()
        .expect("Axis offers events");
    let sub = session.create(&url, Duration::from_secs(60)).await.unwrap();
    assert!(sub.address.ends_with("/onvif/services"), "{}", sub.address);
    assert_eq!(sub.reference_parameters.len(), 1);

    // Refused without the reference parameter: the camera really enforces
    // it (and the gateway sees a fault, which rebuilds a subscription).
    let mut bare = sub.clone();
    bare.reference_parameters.clear();
    let e = session
        .pull(&bare, Duration::from_secs(1), 64)
        .await
        .unwrap_err();
    match &e.kind {
        OnvifErrorKind::Fault(f) => assert_eq!(f.subcodes, ["wsa5:InvalidAddressingHeader"]),
        other => panic!("{other:?}"),
    }

    let init = session
        .pull(&sub, Duration::from_secs(1), 64)
        .await
        .unwrap();
    assert_eq!(init.messages.len(), 3);
    assert!(
        init.messages
            .iter()
            .all(|m| m.operation == Some(PropertyOperation::Initialized))
    );
    sim.set_fault(&cam.id, Some(Fault::Tamper)).unwrap();
    let p = session
        .pull(&sub, Duration::from_secs(1), 64)
        .await
        .unwrap();
    let kinds: Vec<_> = p.messages.iter().filter_map(classify).collect();
    assert_eq!(kinds, [(EventKind::Tamper, Some(true))]);

    let r = session.renew(&sub, Duration::from_secs(120)).await.unwrap();
    assert!(r.termination_time > sub.termination_time);
    session.unsubscribe(&sub).await.unwrap();
    let e = session
        .pull(&sub, Duration::from_secs(1), 64)
        .await
        .unwrap_err();
    assert!(matches!(e.kind, OnvifErrorKind::Fault(_)), "{e}");
    sim.shutdown().await;
}
