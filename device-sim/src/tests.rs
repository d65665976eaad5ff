//! End-to-end tests of the running simulator over real loopback sockets.
//! Each test uses its own address range (127.77.N.x) and multicast port so
//! tests can run in parallel. Timeouts bound every wait; no test asserts on
//! elapsed wall-clock time.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use device_drivers::soap::{self, UsernameToken};
use device_drivers::wsd::{self, WsdMessage};
use device_drivers::xml;
use tokio::net::UdpSocket;

use super::*;

const NS_DEV: &str = "http://www.onvif.org/ver10/device/wsdl";

fn cfg(n: u8, cameras: usize, speakers: usize) -> SimConfig {
    SimConfig {
        cameras,
        speakers,
        bind: Ipv4Addr::new(127, 77, n, 1),
        wsd_port: 37700 + u16::from(n),
        multicast: Some(SocketAddrV4::new(
            Ipv4Addr::new(239, 255, 255, 250),
            37800 + u16::from(n),
        )),
        seed: u64::from(n),
        password: Some("pw-test".into()),
        probe_max_delay: Some(Duration::ZERO),
        ..SimConfig::default()
    }
}

/// A client socket on 127.0.0.1 whose multicast leaves through loopback.
fn client_socket() -> UdpSocket {
    server::bind_udp(
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        Some(Ipv4Addr::LOCALHOST),
    )
    .unwrap()
}

/// Collects ProbeMatches answering `message_id` until `want` arrive or 3 s pass.
async fn collect(
    sock: &UdpSocket,
    message_id: &str,
    want: usize,
) -> Vec<(SocketAddr, wsd::ProbeMatch)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while out.len() < want {
        let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
        let Ok(Ok((len, from))) = r else { break };
        if let Ok(WsdMessage::ProbeMatches {
            relates_to,
            matches,
            ..
        }) = wsd::parse(&buf[..len])
        {
            assert_eq!(relates_to.as_deref(), Some(message_id));
            for m in matches {
                out.push((from, m));
            }
        }
    }
    out
}

/// Waits briefly for stragglers: returns how many more answers arrived.
async fn stragglers(sock: &UdpSocket) -> usize {
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(300), sock.recv_from(&mut buf)).await
    {
        n += 1;
    }
    n
}

fn camera_addrs(sim: &Sim) -> Vec<Ipv4Addr> {
    sim.manifest()
        .devices
        .iter()
        .filter(|d| d.kind == "camera")
        .map(|d| d.address.parse().unwrap())
        .collect()
}

/// Multicast Probe with Types reaches every flavour, each answering from its
/// own address with RelatesTo = the Probe's MessageID; without Types the
/// TP-Link flavour stays silent.
#[tokio::test]
async fn multicast_probe_per_flavour() {
    let c = cfg(1, 6, 0);
    let group = c.multicast.unwrap();
    let sim = start(c).await.unwrap();
    let sock = client_socket();
    let id = "urn:uuid:11111111-0000-4000-8000-000000000001";
    sock.send_to(wsd::build_probe(id, None).as_bytes(), SocketAddr::V4(group))
        .await
        .unwrap();
    let got = collect(&sock, id, 6).await;
    assert_eq!(got.len(), 6);
    for d in &sim.manifest().devices {
        let (from, m) = got
            .iter()
            .find(|(_, m)| Some(&m.endpoint_ref) == d.endpoint_ref.as_ref())
            .unwrap_or_else(|| panic!("{} did not answer", d.id));
        assert_eq!(from.ip().to_string(), d.address, "{}", d.id);
        assert_eq!(from.port(), 37701);
        assert_eq!(m.xaddrs.first(), d.xaddr.as_ref());
        assert!(m.is_nvt());
        assert!(
            m.scopes
                .iter()
                .any(|s| s.ends_with(&format!("/grid/{}", d.grid)))
        );
    }
    let axis = got
        .iter()
        .find(|(_, m)| m.xaddrs[0].ends_with("/onvif/services"))
        .unwrap();
    assert_eq!(axis.1.xaddrs.len(), 2);

    let id2 = "urn:uuid:11111111-0000-4000-8000-000000000002";
    sock.send_to(
        wsd::build_probe(id2, Some("")).as_bytes(),
        SocketAddr::V4(group),
    )
    .await
    .unwrap();
    let got = collect(&sock, id2, 5).await;
    assert_eq!(got.len(), 5);
    assert_eq!(
        stragglers(&sock).await,
        0,
        "TP-Link must ignore a Probe without Types"
    );
    assert!(
        got.iter()
            .all(|(_, m)| m.hardware().as_deref() != Some("TL-IPC44AN"))
    );
    sim.shutdown().await;
}

fn pretty_probe(id: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\" xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">\n  <s:Header>\n    <a:MessageID>{id}</a:MessageID>\n    <a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>\n    <a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>\n  </s:Header>\n  <s:Body>\n    <d:Probe>\n      <d:Types>dn:NetworkVideoTransmitter</d:Types>\n    </d:Probe>\n  </s:Body>\n</s:Envelope>\n"
    )
}

/// Unicast probes: compact ones are answered by all; Hikvision ignores one
/// with whitespace between tags; TP-Link ignores one without Types.
#[tokio::test]
async fn unicast_probe_quirks() {
    let sim = start(cfg(2, 6, 0)).await.unwrap();
    let sock = client_socket();
    let addrs = camera_addrs(&sim);
    let flavours: Vec<String> = sim
        .manifest()
        .devices
        .iter()
        .map(|d| d.flavour.clone())
        .collect();
    for (k, (ip, flavour)) in addrs.iter().zip(&flavours).enumerate() {
        let to = SocketAddr::from((*ip, 37702));
        let id = format!("urn:uuid:22222222-0000-4000-8000-{k:012}");
        sock.send_to(wsd::build_probe(&id, None).as_bytes(), to)
            .await
            .unwrap();
        assert_eq!(
            collect(&sock, &id, 1).await.len(),
            1,
            "{flavour} compact probe"
        );

        let id = format!("urn:uuid:22222222-0000-4000-8001-{k:012}");
        sock.send_to(pretty_probe(&id).as_bytes(), to)
            .await
            .unwrap();
        let n = if flavour == "hikvision" {
            stragglers(&sock).await
        } else {
            collect(&sock, &id, 1).await.len()
        };
        assert_eq!(
            n,
            usize::from(flavour != "hikvision"),
            "{flavour} pretty probe"
        );

        let id = format!("urn:uuid:22222222-0000-4000-8002-{k:012}");
        sock.send_to(wsd::build_probe(&id, Some("")).as_bytes(), to)
            .await
            .unwrap();
        let n = if flavour == "tplink" {
            stragglers(&sock).await
        } else {
            collect(&sock, &id, 1).await.len()
        };
        assert_eq!(
            n,
            usize::from(flavour != "tplink"),
            "{flavour} probe without Types"
        );
    }
    sim.shutdown().await;
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn envelope(op: &str, token: Option<&UsernameToken>) -> String {
    soap::envelope(&format!("<{op} xmlns=\"{NS_DEV}\"/>"), token)
}

fn token(user: &str, pw: &str, skew_s: i64) -> UsernameToken {
    let created = time::OffsetDateTime::now_utc() + time::Duration::seconds(skew_s);
    UsernameToken::new(user, pw, rand::random(), created)
}

async fn post(
    url: &str,
    body: String,
    auth: Option<String>,
) -> reqwest::Result<(u16, reqwest::header::HeaderMap, String)> {
    let mut r = http()
        .post(url)
        .header("Content-Type", "application/soap+xml; charset=utf-8")
        .body(body);
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    let resp = r.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Ok((status, headers, resp.text().await?))
}

/// Over real HTTP: GetSystemDateAndTime open, GetDeviceInformation by
/// UsernameToken and by HTTP Digest (challenge, answer), for every flavour.
#[tokio::test]
async fn soap_over_http_with_both_auth_methods() {
    let sim = start(cfg(3, 6, 0)).await.unwrap();
    for d in &sim.manifest().devices {
        let url = d.xaddr.clone().unwrap();
        let user = d.username.clone().unwrap();
        let (st, _, body) = post(&url, envelope("GetSystemDateAndTime", None), None)
            .await
            .unwrap();
        assert_eq!(st, 200, "{}: {body}", d.id);

        let t = token(&user, "pw-test", 0);
        let (st, _, body) = post(&url, envelope("GetDeviceInformation", Some(&t)), None)
            .await
            .unwrap();
        assert_eq!(st, 200, "{}: {body}", d.id);
        let doc = xml::parse(&body).unwrap();
        assert!(xml::find_text(doc.root_element(), "Manufacturer").is_some());

        let (st, headers, _) = post(&url, envelope("GetDeviceInformation", None), None)
            .await
            .unwrap();
        assert_eq!(st, 401);
        let ch = headers.get("www-authenticate").unwrap().to_str().unwrap();
        let p = digest::parse_authorization(ch).unwrap();
        let path = url::path_of(&url);
        let mut params = digest::DigestParams {
            username: user.clone(),
            realm: p.realm.clone(),
            nonce: p.nonce.clone(),
            uri: path.clone(),
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("abcdef".into()),
            ..Default::default()
        };
        params.response = digest::expected_response(&params, "POST", "pw-test");
        let auth = format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{path}\", response=\"{}\", qop=auth, nc=00000001, cnonce=\"abcdef\", algorithm=MD5",
            params.realm, params.nonce, params.response
        );
        let (st, _, body) = post(&url, envelope("GetDeviceInformation", None), Some(auth))
            .await
            .unwrap();
        assert_eq!(st, 200, "{}: {body}", d.id);
    }
    sim.shutdown().await;
}

mod url {
    /// The path of an `http://host:port/path` URL.
    pub fn path_of(u: &str) -> String {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        rest.find('/')
            .map_or("/".to_string(), |i| rest[i..].to_string())
    }
}

/// Faults over real sockets: offline refuses connections and probes and
/// comes back on clear; hang never answers; slow answers late; malformed
/// bodies do not parse; wrong password and auth-everything refuse.
#[tokio::test]
async fn faults_over_real_sockets() {
    let sim = start(cfg(4, 2, 0)).await.unwrap();
    let d = sim.manifest().devices[0].clone();
    let url = d.xaddr.clone().unwrap();
    let user = d.username.clone().unwrap();
    let gsdt = || envelope("GetSystemDateAndTime", None);

    sim.set_fault(&d.id, Some(Fault::Offline)).unwrap();
    let mut refused = false;
    for _ in 0..100 {
        if let Err(e) = post(&url, gsdt(), None).await {
            assert!(e.is_connect(), "{e}");
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "offline camera still accepts connections");
    let sock = client_socket();
    let to = SocketAddr::from((d.address.parse::<Ipv4Addr>().unwrap(), 37704));
    sock.send_to(wsd::build_probe("urn:uuid:x-1", None).as_bytes(), to)
        .await
        .unwrap();
    assert_eq!(stragglers(&sock).await, 0);
    // The other camera is unaffected.
    let other = sim.manifest().devices[1].xaddr.clone().unwrap();
    assert_eq!(post(&other, gsdt(), None).await.unwrap().0, 200);

    sim.set_fault(&d.id, None).unwrap();
    let mut back = false;
    for _ in 0..50 {
        if let Ok((200, _, _)) = post(&url, gsdt(), None).await {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "camera did not come back after clearing offline");
    sock.send_to(wsd::build_probe("urn:uuid:x-2", None).as_bytes(), to)
        .await
        .unwrap();
    assert_eq!(collect(&sock, "urn:uuid:x-2", 1).await.len(), 1);

    sim.set_fault(&d.id, Some(Fault::Hang)).unwrap();
    let hung = tokio::time::timeout(Duration::from_millis(400), post(&url, gsdt(), None)).await;
    assert!(hung.is_err(), "hang answered");

    sim.set_fault(&d.id, Some(Fault::Slow(Duration::from_secs(30))))
        .unwrap();
    let slow = tokio::time::timeout(Duration::from_millis(400), post(&url, gsdt(), None)).await;
    assert!(slow.is_err(), "slow answered at once");
    sim.set_fault(&d.id, Some(Fault::Slow(Duration::from_millis(50))))
        .unwrap();
    assert_eq!(post(&url, gsdt(), None).await.unwrap().0, 200);

    sim.set_fault(&d.id, Some(Fault::MalformedXml)).unwrap();
    let (_, _, body) = post(&url, gsdt(), None).await.unwrap();
    assert!(xml::parse(&body).is_err());

    sim.set_fault(&d.id, Some(Fault::WrongPassword)).unwrap();
    let t = token(&user, "pw-test", 0);
    assert_eq!(
        post(&url, envelope("GetScopes", Some(&t)), None)
            .await
            .unwrap()
            .0,
        400
    );

    sim.set_fault(&d.id, Some(Fault::AuthEverything)).unwrap();
    assert_eq!(post(&url, gsdt(), None).await.unwrap().0, 401);

    sim.set_fault(&d.id, Some(Fault::ClockSkew(600))).unwrap();
    let t = token(&user, "pw-test", 0);
    assert_eq!(
        post(&url, envelope("GetScopes", Some(&t)), None)
            .await
            .unwrap()
            .0,
        400
    );
    let t = token(&user, "pw-test", 600);
    assert_eq!(
        post(&url, envelope("GetScopes", Some(&t)), None)
            .await
            .unwrap()
            .0,
        200
    );

    assert_eq!(
        sim.set_fault("cam-9999", None),
        Err(UnknownDevice("cam-9999".into()))
    );
    sim.shutdown().await;
}

/// The control endpoint sets and reads faults and serves the manifest.
#[tokio::test]
async fn control_endpoint() {
    let mut c = cfg(5, 2, 1);
    c.control = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let sim = start(c).await.unwrap();
    let base = format!("http://{}", sim.manifest().control.clone().unwrap());
    let client = http();
    let text = client
        .get(format!("{base}/manifest"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let m: Manifest = serde_json::from_str(&text).unwrap();
    assert_eq!(&m, sim.manifest());
    let r = client
        .post(format!("{base}/devices/cam-0002/fault"))
        .body("slow:2s")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        sim.fault("cam-0002"),
        Ok(Some(Fault::Slow(Duration::from_secs(2))))
    );
    let r = client
        .get(format!("{base}/devices/cam-0002/fault"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "slow:2000ms");
    let r = client
        .post(format!("{base}/devices/cam-0002/fault"))
        .body("clear")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sim.fault("cam-0002"), Ok(None));
    let r = client
        .post(format!("{base}/devices/cam-0002/fault"))
        .body("explode")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = client
        .post(format!("{base}/devices/cam-0404/fault"))
        .body("offline")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .get(format!("{base}/devices/spk-0001/report"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    sim.shutdown().await;
}

/// Hello and Bye reach a listener joined to the group.
#[tokio::test]
async fn hello_and_bye() {
    let c = cfg(6, 2, 0);
    let group = c.multicast.unwrap();
    let sim = start(c).await.unwrap();
    let listener = server::bind_multicast(group).unwrap();
    let d = sim.manifest().devices[1].clone();
    sim.say_hello(&d.id).unwrap();
    let mut buf = vec![0u8; 65536];
    let (len, from) = tokio::time::timeout(Duration::from_secs(3), listener.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from.ip().to_string(), d.address);
    match wsd::parse(&buf[..len]).unwrap() {
        WsdMessage::Hello(m) => assert_eq!(Some(m.endpoint_ref), d.endpoint_ref),
        other => panic!("expected Hello, got {other:?}"),
    }
    sim.say_bye(&d.id).unwrap();
    let (len, _) = tokio::time::timeout(Duration::from_secs(3), listener.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(wsd::parse(&buf[..len]).unwrap(), WsdMessage::Bye { endpoint_ref } if Some(&endpoint_ref) == d.endpoint_ref.as_ref())
    );
    sim.set_fault(&d.id, Some(Fault::Offline)).unwrap();
    let mut silenced = false;
    for _ in 0..100 {
        if sim.say_hello(&d.id).is_err() {
            silenced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(silenced, "an offline camera can still say Hello");
    assert!(sim.say_hello("cam-0404").is_err());
    sim.shutdown().await;
}

/// A speaker receives µ-law RTP carrying a 1 kHz tone and reports it.
#[tokio::test]
async fn speaker_hears_a_tone() {
    let sim = start(cfg(7, 1, 2)).await.unwrap();
    let spk = sim
        .manifest()
        .devices
        .iter()
        .find(|d| d.kind == "speaker")
        .unwrap()
        .clone();
    assert_eq!(spk.id, "spk-0001");
    let rtp = spk.rtp.clone().unwrap();
    let addr: SocketAddr = rtp
        .trim_start_matches("rtp://")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(addr.ip().to_string(), spk.address);
    let sock = client_socket();
    let payload: Vec<u8> = (0..160)
        .map(|i| {
            let x = 10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin();
            speaker::linear_to_ulaw(x as i16)
        })
        .collect();
    for seq in 0u16..20 {
        let mut p = vec![0x80, 0x00];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.extend_from_slice(&payload);
        sock.send_to(&p, addr).await.unwrap();
    }
    let mut report = None;
    for _ in 0..100 {
        let r = sim.speaker_report("spk-0001").unwrap();
        if r.packets == 20 {
            report = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = report.expect("speaker did not receive 20 packets");
    assert_eq!(r.lost, 0);
    assert_eq!(r.codec.as_deref(), Some("pcmu"));
    assert_eq!(r.dominant_tone_hz, Some(1000), "{:?}", r.tone_share);
    assert!(r.first_packet_at.is_some());
    assert!(sim.speaker_report("cam-0001").is_none());
    sim.shutdown().await;
}

/// 1,000 cameras start in one process and shut down cleanly; addresses skip
/// .0 and .255 and are unique.
#[tokio::test]
async fn thousand_cameras_start_and_stop() {
    let mut c = cfg(0, 1000, 5);
    c.bind = Ipv4Addr::new(127, 78, 0, 1);
    c.password = None;
    c.probe_max_delay = None;
    let sim = start(c).await.unwrap();
    let m = sim.manifest();
    assert_eq!(m.devices.len(), 1005);
    let addrs: std::collections::HashSet<&str> =
        m.devices.iter().map(|d| d.address.as_str()).collect();
    assert_eq!(addrs.len(), 1005);
    assert!(
        addrs
            .iter()
            .all(|a| !a.ends_with(".0") && !a.ends_with(".255"))
    );
    let pws: std::collections::HashSet<_> = m
        .devices
        .iter()
        .filter_map(|d| d.password.clone())
        .collect();
    assert!(pws.len() > 990, "passwords are random per device");
    assert_eq!(m.devices[999].id, "cam-1000");
    // One multicast Probe: every camera answers, spread over the default delay.
    let sock = client_socket();
    let id = "urn:uuid:33333333-0000-4000-8000-000000000000";
    let group = m.multicast.clone().unwrap().parse::<SocketAddr>().unwrap();
    sock.send_to(wsd::build_probe(id, None).as_bytes(), group)
        .await
        .unwrap();
    let got = collect(&sock, id, 1000).await;
    assert_eq!(got.len(), 1000);
    sim.shutdown().await;
    // Everything is closed: the addresses can be bound again at once.
    let again = server::bind_udp(
        SocketAddr::from((Ipv4Addr::new(127, 78, 0, 1), 37700)),
        None,
    );
    assert!(again.is_ok());
}

/// Address arithmetic skips network and broadcast host octets.
#[test]
fn addresses_skip_0_and_255() {
    let a = Ipv4Addr::new(127, 0, 1, 1);
    assert_eq!(device_addr(a, 0), Some(a));
    assert_eq!(device_addr(a, 253), Some(Ipv4Addr::new(127, 0, 1, 254)));
    assert_eq!(device_addr(a, 254), Some(Ipv4Addr::new(127, 0, 2, 1)));
    assert_eq!(device_addr(Ipv4Addr::new(127, 0, 1, 0), 0), Some(a));
    assert_eq!(device_addr(Ipv4Addr::new(255, 255, 255, 254), 1), None);
}

/// An initial fault for an unknown device is refused at start.
#[tokio::test]
async fn unknown_initial_fault_is_an_error() {
    let mut c = cfg(8, 1, 0);
    c.faults = vec![("cam-0042".into(), Fault::Hang)];
    let e = start(c).await.err().unwrap();
    assert!(e.to_string().contains("cam-0042"));
}

/// The manifest's JSON has the documented field names.
#[tokio::test]
async fn manifest_json_shape() {
    let sim = start(cfg(9, 1, 1)).await.unwrap();
    let v = serde_json::to_value(sim.manifest()).unwrap();
    let cam = &v["devices"][0];
    for k in [
        "id",
        "kind",
        "flavour",
        "address",
        "xaddr",
        "endpoint_ref",
        "mac",
        "username",
        "password",
        "village",
        "grid",
    ] {
        assert!(!cam[k].is_null(), "{k}");
    }
    assert_eq!(v["devices"][1]["kind"], "speaker");
    assert!(
        v["devices"][1]["rtp"]
            .as_str()
            .unwrap()
            .ends_with("?codec=pcmu")
    );
    assert_eq!(v["wsd_port"], 37709);
    sim.shutdown().await;
}

/// Interop with the gateway's own ONVIF client: the full inventory of every
/// flavour, and of a camera 10 minutes off and one demanding auth everywhere.
#[tokio::test]
async fn gateway_client_inventories_every_flavour() {
    use device_drivers::onvif_client::{ClientOptions, Credentials, OnvifClient};
    let mut c = cfg(10, 8, 0);
    c.faults = vec![
        ("cam-0007".into(), Fault::ClockSkew(600)),
        ("cam-0008".into(), Fault::AuthEverything),
    ];
    let sim = start(c).await.unwrap();
    for d in &sim.manifest().devices {
        let creds = Credentials::new(d.username.clone().unwrap(), d.password.clone().unwrap());
        let client = OnvifClient::new(
            d.xaddr.as_deref().unwrap(),
            Some(creds),
            ClientOptions::default(),
        )
        .unwrap();
        let inv = client
            .inventory()
            .await
            .unwrap_or_else(|e| panic!("{} ({}): {e}", d.id, d.flavour));
        let flavour = flavour::ALL
            .into_iter()
            .find(|f| f.name() == d.flavour)
            .unwrap();
        assert_eq!(
            inv.device.manufacturer,
            flavour.info().manufacturer,
            "{}",
            d.id
        );
        assert_eq!(inv.mac, d.mac, "{}", d.id);
        assert_eq!(inv.profiles.len(), 2, "{}", d.id);
        assert_eq!(
            inv.media_version,
            if flavour.has_media2() { 2 } else { 1 },
            "{}",
            d.id
        );
        let main = inv.profiles[0].stream_uri.clone().unwrap_or_default();
        assert!(
            main.contains(flavour.info().stream_paths[0]),
            "{}: {main}",
            d.id
        );
        if d.id == "cam-0007" {
            assert!(
                (inv.clock_offset_ms - 600_000).abs() < 2_000,
                "{}",
                inv.clock_offset_ms
            );
        }
    }
    sim.shutdown().await;
}

/// A fixed wall clock, for the injection test.
struct FixedClock(time::OffsetDateTime);

impl WallClock for FixedClock {
    fn now_utc(&self) -> time::OffsetDateTime {
        self.0
    }
}

/// The injected clock drives the camera's reported time (plus skew) and the
/// UsernameToken freshness check.
#[tokio::test]
async fn injected_clock_drives_camera_time() {
    let fixed = time::macros::datetime!(2031-02-03 04:05:06 UTC);
    let mut c = cfg(11, 1, 0);
    c.clock = std::sync::Arc::new(FixedClock(fixed));
    c.faults = vec![("cam-0001".into(), Fault::ClockSkew(-3600))];
    let sim = start(c).await.unwrap();
    let d = sim.manifest().devices[0].clone();
    let url = d.xaddr.clone().unwrap();
    let (st, _, body) = post(&url, envelope("GetSystemDateAndTime", None), None)
        .await
        .unwrap();
    assert_eq!(st, 200);
    let doc = xml::parse(&body).unwrap();
    let utc = xml::find(doc.root_element(), "UTCDateTime").unwrap();
    assert_eq!(
        xml::path_text(utc, &["Date", "Year"]).as_deref(),
        Some("2031")
    );
    assert_eq!(xml::path_text(utc, &["Time", "Hour"]).as_deref(), Some("3"));
    let user = d.username.unwrap();
    let t = UsernameToken::new(&user, "pw-test", [7; 16], fixed - time::Duration::hours(1));
    let (st, _, body) = post(&url, envelope("GetScopes", Some(&t)), None)
        .await
        .unwrap();
    assert_eq!(st, 200, "{body}");
    sim.shutdown().await;
}

/// One broadcast from the drivers (device_drivers::speaker::broadcast) to
/// one horn of every kind plus a SIP horn that refuses: one T0 for all,
/// each working horn reports the 1 kHz tone without loss and its first
/// packet; the refusal is reported and disturbs nobody.
#[tokio::test]
async fn broadcast_reaches_every_kind() {
    use device_drivers::speaker::{self, DriverOptions, SpeakerUri};
    let mut c = cfg(61, 0, 5);
    c.speaker_kinds = crate::SpeakerKind::ALL.to_vec();
    c.speaker_kinds.push(crate::SpeakerKind::Sip);
    c.faults = vec![("spk-0005".into(), Fault::Refuse(486))];
    let sim = start(c).await.unwrap();
    let uris: Vec<SpeakerUri> = sim
        .manifest()
        .devices
        .iter()
        .map(|d| d.uri.as_deref().unwrap().parse().unwrap())
        .collect();
    let kinds: Vec<&str> = uris.iter().map(SpeakerUri::kind).collect();
    assert_eq!(kinds, ["rtp", "sip", "axis", "rtp-multicast", "sip"]);
    let pcm = std::sync::Arc::new(device_drivers::g711::tone(1000.0, 0.5, 12000));
    let t0 = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
    let reps = speaker::broadcast(
        &uris,
        &DriverOptions::default(),
        pcm,
        t0,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await;
    for r in &reps[..4] {
        assert!(r.completed && r.errors.is_empty(), "{r:?}");
        assert_eq!(r.packets, 25);
    }
    assert_eq!(
        reps[4].error_kind.as_deref(),
        Some("refused"),
        "{:?}",
        reps[4]
    );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for id in ["spk-0001", "spk-0002", "spk-0003", "spk-0004"] {
        let r = sim.speaker_report(id).unwrap();
        assert_eq!(r.dominant_tone_hz, Some(1000), "{id}: {r:?}");
        assert_eq!(r.lost, 0, "{id}");
        assert!(r.first_packet_at.is_some(), "{id}");
        assert!(
            (r.audio_seconds - 0.5).abs() < 1e-9,
            "{id}: {}",
            r.audio_seconds
        );
    }
    assert_eq!(sim.speaker_report("spk-0005").unwrap().calls_refused, 1);
    sim.shutdown().await;
}

/// SIP and Axis speakers answer an SSDP M-SEARCH for a MediaRenderer, each
/// from its own address, with a LOCATION on that address and a banner; an
/// offline speaker stays silent.
#[tokio::test]
async fn sip_and_axis_speakers_answer_ssdp_msearch() {
    use device_drivers::ssdp_io::{SearchOptions, search};
    let port = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 255, 255, 250), port);
    let mut c = cfg(12, 0, 4);
    c.speaker_kinds = vec![crate::SpeakerKind::Sip, crate::SpeakerKind::Axis];
    c.ssdp = Some(group);
    c.faults = vec![("spk-0004".into(), Fault::Offline)];
    let sim = start(c).await.unwrap();
    let found = search(&SearchOptions {
        interfaces: vec![Ipv4Addr::LOCALHOST],
        group,
        timeout: Duration::from_millis(600),
        ..SearchOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    let mut usns: Vec<_> = found.iter().map(|f| f.announcement.usn.clone()).collect();
    usns.sort();
    usns.dedup();
    assert_eq!(usns.len(), 3);
    for f in &found {
        let loc = f.announcement.location.as_deref().unwrap();
        let ip = device_drivers::ssdp::location_ipv4(loc).unwrap();
        assert_eq!(f.from.ip(), std::net::IpAddr::V4(ip), "{f:?}");
        assert!(
            f.announcement
                .usn
                .ends_with(device_drivers::ssdp::MEDIA_RENDERER)
        );
    }
    assert!(found.iter().any(|f| {
        f.announcement
            .server
            .as_deref()
            .unwrap()
            .contains("AXIS C1310-E")
    }));
    sim.shutdown().await;
}

/// SIP and unicast RTP horns answer a DNS-SD query on the mDNS group (a free
/// port here), each from its own address, with SRV ports that are their real
/// SIP / RTP ports; Axis and multicast-zone horns stay silent, and so does
/// an offline horn.
#[tokio::test]
async fn sip_and_rtp_horns_answer_mdns_queries() {
    use device_drivers::mdns_io::{QueryOptions, query};
    let port = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = SocketAddrV4::new(*device_drivers::mdns::GROUP.ip(), port);
    let mut c = cfg(13, 0, 5);
    c.speaker_kinds = vec![
        crate::SpeakerKind::Sip,
        crate::SpeakerKind::Rtp,
        crate::SpeakerKind::Axis,
        crate::SpeakerKind::RtpMulticast,
    ];
    c.mdns = Some(group);
    c.faults = vec![("spk-0005".into(), Fault::Offline)];
    let sim = start(c).await.unwrap();
    let mut found = query(&QueryOptions {
        interfaces: vec![Ipv4Addr::LOCALHOST],
        group,
        timeout: Duration::from_millis(600),
        ..QueryOptions::default()
    })
    .await
    .unwrap();
    found.sort_by(|a, b| a.instance.label.cmp(&b.instance.label));
    let uris: Vec<(String, String)> = found
        .iter()
        .map(|f| {
            (
                f.instance
                    .driver()
                    .map(|d| d.as_str())
                    .unwrap_or("?")
                    .to_string(),
                f.driver_address().unwrap_or_default(),
            )
        })
        .collect();
    let m = sim.manifest();
    let spk = |id: &str| m.devices.iter().find(|d| d.id == id).unwrap();
    let sip_uri = spk("spk-0001").uri.clone().unwrap();
    let rtp_uri = spk("spk-0002").uri.clone().unwrap();
    // The manifest's sip:horn:PASS@IP:PORT and rtp://IP:PORT?codec=pcmu.
    let sip_hostport = sip_uri.rsplit_once('@').unwrap().1;
    let rtp_hostport = rtp_uri
        .strip_prefix("rtp://")
        .and_then(|r| r.split_once('?'))
        .unwrap()
        .0;
    assert_eq!(
        uris,
        vec![
            ("rtp".to_string(), rtp_hostport.to_string()),
            ("sip".to_string(), format!("sip:horn@{sip_hostport}")),
        ],
        "{found:?}"
    );
    for f in &found {
        assert_eq!(
            Some(f.from.ip()),
            f.address().map(std::net::IpAddr::V4),
            "{f:?}"
        );
    }
    sim.shutdown().await;
}

/// Axis horns answer the gateway's audio-output WS-Discovery Probe
/// (`tds:Device` + `type/audio_output`) from their own address with a
/// device service on their HTTP port; the cameras stay silent for it. The
/// camera Probe (`NetworkVideoTransmitter`) still finds only the cameras.
#[tokio::test]
async fn axis_horns_answer_the_audio_output_probe_only() {
    let mut c = cfg(14, 2, 3);
    c.speaker_kinds = vec![crate::SpeakerKind::Axis, crate::SpeakerKind::Rtp];
    let group = c.multicast.unwrap();
    let sim = start(c).await.unwrap();
    let sock = client_socket();
    let audio = wsd::build_probe_scoped(
        "urn:uuid:audio-1",
        Some(wsd::DEVICE_TYPE),
        Some(wsd::AUDIO_OUTPUT_SCOPE),
    );
    sock.send_to(audio.as_bytes(), SocketAddr::V4(group))
        .await
        .unwrap();
    let got = collect(&sock, "urn:uuid:audio-1", 2).await;
    let m = sim.manifest();
    let mut want: Vec<(String, String)> = m
        .devices
        .iter()
        .filter(|d| d.speaker_kind.as_deref() == Some("axis"))
        .map(|d| (d.endpoint_ref.clone().unwrap(), d.xaddr.clone().unwrap()))
        .collect();
    want.sort();
    let mut have: Vec<(String, String)> = got
        .iter()
        .map(|(from, pm)| {
            assert!(pm.xaddrs[0].contains(&from.ip().to_string()), "{pm:?}");
            assert!(!wsd::is_nvt(&pm.types));
            (pm.endpoint_ref.clone(), pm.xaddrs[0].clone())
        })
        .collect();
    have.sort();
    assert_eq!(have, want);
    assert_eq!(
        stragglers(&sock).await,
        0,
        "cameras answered the audio Probe"
    );
    // The camera Probe: cameras only.
    sock.send_to(
        wsd::build_probe("urn:uuid:cams-1", None).as_bytes(),
        SocketAddr::V4(group),
    )
    .await
    .unwrap();
    let got = collect(&sock, "urn:uuid:cams-1", 2).await;
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, pm)| wsd::is_nvt(&pm.types)));
    sim.shutdown().await;
}
