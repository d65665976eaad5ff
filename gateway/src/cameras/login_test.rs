//! Testing a camera's login at once (the API's
//! `POST /api/v1/devices/{id}/credentials/test`): the camera's clock from an
//! unauthenticated GetSystemDateAndTime, then one authenticated
//! GetDeviceInformation stamped with the camera's time, under one deadline.
//!
//! The answer carries the camera's own fault text when it refuses the login
//! (so a technician sees "Sender not Authorized: …" rather than our guess),
//! and never the password: any message that would contain it is redacted.

use std::sync::Arc;
use std::time::Duration;

use device_drivers::local_error::{self, LocalResource};
use device_drivers::onvif;
use device_drivers::onvif_client::{
    ClientOptions, Credentials, OnvifClient, OnvifError, OnvifErrorKind, WallClock,
};
use device_drivers::soap::{self, UsernameToken};
use serde::Serialize;

/// Largest answer read from the camera during a test.
pub const MAX_ANSWER: usize = 64 * 1024;

/// What a login test found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The camera accepted the login.
    Ok,
    /// The camera refused the login (or its timestamp).
    CredentialsRejected,
    /// No connection (refused, no route, reset).
    Unreachable,
    /// Something answered, but not as an ONVIF device service.
    NotOnvif,
    /// No answer within the deadline.
    Timeout,
    /// The gateway ran out of a local resource (file descriptors, socket
    /// buffers, memory, local ports): nothing was learnt about the camera.
    GatewayLimit,
}

impl Outcome {
    /// The API's and the audit log's label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::CredentialsRejected => "credentials-rejected",
            Outcome::Unreachable => "unreachable",
            Outcome::NotOnvif => "not-onvif",
            Outcome::Timeout => "timeout",
            Outcome::GatewayLimit => "gateway-limit",
        }
    }
}

/// The answer of a login test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginTest {
    /// What happened.
    pub result: Outcome,
    /// The camera's own fault text or the error; never the password.
    pub message: String,
    /// Camera UTC − our UTC, when the camera told its time.
    pub clock_offset_ms: Option<i64>,
    /// `gateway-limit`: what the gateway ran out of, as its errno
    /// (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, `EADDRNOTAVAIL`).
    #[serde(
        rename = "errno",
        serialize_with = "errno",
        skip_serializing_if = "Option::is_none"
    )]
    pub local: Option<LocalResource>,
}

fn errno<S: serde::Serializer>(r: &Option<LocalResource>, s: S) -> Result<S::Ok, S::Error> {
    r.map(LocalResource::errno).serialize(s)
}

impl LoginTest {
    fn new(result: Outcome, message: impl Into<String>, clock_offset_ms: Option<i64>) -> Self {
        LoginTest {
            result,
            message: message.into(),
            clock_offset_ms,
            local: None,
        }
    }

    /// The gateway out of `what`: not the camera's answer. The message
    /// names the errno and says what to do.
    fn gateway_limit(what: LocalResource, clock_offset_ms: Option<i64>) -> Self {
        LoginTest {
            local: Some(what),
            ..LoginTest::new(
                Outcome::GatewayLimit,
                format!(
                    "{what}: the gateway's own limit, not the camera; nothing was learnt about the login (see tgw_local_errors_total; raise LimitNOFILE or free resources, then test again)"
                ),
                clock_offset_ms,
            )
        }
    }
}

/// Tests `creds` against the ONVIF device service at `xaddr` within
/// `deadline` (the whole test: clock and login call).
pub async fn test_login(
    http: &reqwest::Client,
    xaddr: &str,
    creds: &Credentials,
    deadline: Duration,
    clock: Arc<dyn WallClock>,
) -> LoginTest {
    let r = match tokio::time::timeout(deadline, run(http, xaddr, creds, deadline, clock)).await {
        Ok(r) => r,
        Err(_) => LoginTest::new(
            Outcome::Timeout,
            format!("no answer within {} ms", deadline.as_millis()),
            None,
        ),
    };
    redact(r, creds.password.expose())
}

/// Never hand back a message that contains the password (a camera that
/// echoes what it got, an error quoting a URL).
fn redact(mut r: LoginTest, password: &str) -> LoginTest {
    if !password.is_empty() && r.message.contains(password) {
        r.message = r.message.replace(password, "***");
    }
    r
}

fn from_error(e: &OnvifError, offset: Option<i64>) -> LoginTest {
    let outcome = match &e.kind {
        // The gateway out of descriptors or ports: says nothing of the camera.
        OnvifErrorKind::Local(r) => return LoginTest::gateway_limit(*r, offset),
        OnvifErrorKind::Timeout => Outcome::Timeout,
        OnvifErrorKind::Connect(_) => Outcome::Unreachable,
        OnvifErrorKind::AuthRejected => Outcome::CredentialsRejected,
        OnvifErrorKind::Fault(f) if f.is_auth() => Outcome::CredentialsRejected,
        _ => Outcome::NotOnvif,
    };
    let message = match &e.kind {
        OnvifErrorKind::Fault(f) => f.reason.clone(),
        _ => e.to_string(),
    };
    LoginTest::new(outcome, message, offset)
}

async fn run(
    http: &reqwest::Client,
    xaddr: &str,
    creds: &Credentials,
    deadline: Duration,
    clock: Arc<dyn WallClock>,
) -> LoginTest {
    let opts = ClientOptions {
        timeout: deadline,
        max_body: MAX_ANSWER,
        ..ClientOptions::default()
    };
    let anon = match OnvifClient::with_http(http.clone(), xaddr, None, opts) {
        Ok(c) => c.with_clock(clock.clone()),
        Err(e) => return from_error(&e, None),
    };
    // The camera's clock: a WS-UsernameToken is checked against it.
    let offset = match anon.measure_clock().await {
        Ok(r) => Some(r.offset_ms),
        // Some cameras want a login even for their time: test with ours.
        Err(e) if e.is_auth() => None,
        Err(e) => return from_error(&e, None),
    };
    let created = clock.now_utc() + time::Duration::milliseconds(offset.unwrap_or(0));
    let token = UsernameToken::new(
        &creds.username,
        creds.password.expose(),
        rand::random::<[u8; 16]>(),
        created,
    );
    let envelope = soap::envelope(&onvif::get_device_information(), Some(&token));
    let resp = match http
        .post(anon.device_url())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/soap+xml; charset=utf-8",
        )
        .body(envelope)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return transport_error(e, offset),
    };
    let status = resp.status().as_u16();
    let digest = status == 401
        && resp
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.trim_start().to_ascii_lowercase().starts_with("digest"));
    let body = match read_capped(resp).await {
        Ok(b) => b,
        Err(r) => {
            return LoginTest {
                clock_offset_ms: offset,
                ..r
            };
        }
    };
    if (200..300).contains(&status) {
        return match onvif::parse_device_information(&body, MAX_ANSWER) {
            Ok(i) => LoginTest::new(
                Outcome::Ok,
                format!("{} {} {}", i.manufacturer, i.model, i.firmware_version)
                    .trim()
                    .to_string(),
                offset,
            ),
            Err(e) => LoginTest::new(
                Outcome::NotOnvif,
                format!("GetDeviceInformation answer: {e}"),
                offset,
            ),
        };
    }
    let fault = soap::parse_fault(&body, MAX_ANSWER);
    if digest {
        // The camera wants HTTP Digest instead: the client does that dance.
        return digest_login(http, xaddr, creds, opts, clock, offset, fault).await;
    }
    match fault {
        Some(f) if f.is_auth() || status == 401 => {
            LoginTest::new(Outcome::CredentialsRejected, f.reason, offset)
        }
        Some(f) => LoginTest::new(
            Outcome::NotOnvif,
            format!("GetDeviceInformation fault: {}", f.reason),
            offset,
        ),
        None if status == 401 => LoginTest::new(
            Outcome::CredentialsRejected,
            "HTTP 401 without a fault text",
            offset,
        ),
        None => LoginTest::new(
            Outcome::NotOnvif,
            format!("GetDeviceInformation answered HTTP {status}"),
            offset,
        ),
    }
}

async fn digest_login(
    http: &reqwest::Client,
    xaddr: &str,
    creds: &Credentials,
    opts: ClientOptions,
    clock: Arc<dyn WallClock>,
    offset: Option<i64>,
    first_fault: Option<soap::SoapFault>,
) -> LoginTest {
    let c = match OnvifClient::with_http(http.clone(), xaddr, Some(creds.clone()), opts) {
        Ok(c) => c.with_clock(clock),
        Err(e) => return from_error(&e, offset),
    };
    c.set_clock_offset_ms(offset.unwrap_or(0));
    match c.device_information().await {
        Ok(i) => LoginTest::new(
            Outcome::Ok,
            format!("{} {} {}", i.manufacturer, i.model, i.firmware_version)
                .trim()
                .to_string(),
            offset,
        ),
        Err(e) if e.is_auth() => LoginTest::new(
            Outcome::CredentialsRejected,
            first_fault.map_or_else(|| e.to_string(), |f| f.reason),
            offset,
        ),
        Err(e) => from_error(&e, offset),
    }
}

/// A reqwest error of the login call: the gateway's own limit when its
/// source chain holds one (EMFILE, …: tested with a real EMFILE in
/// `gateway/tests/login_test_local.rs`), else the camera's.
fn transport_error(e: reqwest::Error, offset: Option<i64>) -> LoginTest {
    let e = e.without_url();
    if let Some(r) = local_error::of_chain(&e) {
        return LoginTest::gateway_limit(r, offset);
    }
    let outcome = if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() || device_drivers::onvif_client::dropped_without_answer(&e) {
        Outcome::Unreachable
    } else {
        Outcome::NotOnvif
    };
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    LoginTest::new(outcome, msg, offset)
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, LoginTest> {
    let too_large = || {
        LoginTest::new(
            Outcome::NotOnvif,
            format!("answer over {MAX_ANSWER} bytes"),
            None,
        )
    };
    if resp.content_length().is_some_and(|l| l > MAX_ANSWER as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) if buf.len() + c.len() > MAX_ANSWER => return Err(too_large()),
            Ok(Some(c)) => buf.extend_from_slice(&c),
            Ok(None) => return Ok(buf),
            Err(e) => return Err(transport_error(e, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A camera that accepts the connection and never answers is `timeout`
    /// at the deadline (paused time: no real wait).
    #[tokio::test(start_paused = true)]
    async fn silence_is_a_timeout_at_the_deadline() {
        let silent = std::net::TcpListener::bind("127.0.9.70:0").unwrap();
        let xaddr = format!(
            "http://{}/onvif/device_service",
            silent.local_addr().unwrap()
        );
        let http = device_drivers::onvif_client::http_client(&ClientOptions::default()).unwrap();
        let creds = Credentials::new("admin", "silent-Secret-pw");
        let r = test_login(
            &http,
            &xaddr,
            &creds,
            Duration::from_secs(5),
            Arc::new(device_drivers::onvif_client::SystemClock),
        )
        .await;
        assert_eq!(r.result, Outcome::Timeout, "{r:?}");
        assert!(r.message.contains("timed out"), "{r:?}");
    }

    /// A camera address that takes the connection and closes it without a
    /// word (an offline camera behind a NAT, a device still booting) is
    /// `unreachable`, not `not-onvif`.
    #[tokio::test]
    async fn a_connection_closed_without_an_answer_is_unreachable() {
        let l = tokio::net::TcpListener::bind("127.0.9.71:0").await.unwrap();
        let xaddr = format!("http://{}/onvif/device_service", l.local_addr().unwrap());
        let closer = tokio::spawn(async move {
            // Every connection the test makes: read the request head, then drop.
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 512];
                let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                drop(s);
            }
        });
        let http = device_drivers::onvif_client::http_client(&ClientOptions::default()).unwrap();
        let creds = Credentials::new("admin", "closed-Secret-pw");
        let r = test_login(
            &http,
            &xaddr,
            &creds,
            Duration::from_secs(5),
            Arc::new(device_drivers::onvif_client::SystemClock),
        )
        .await;
        closer.abort();
        assert_eq!(r.result, Outcome::Unreachable, "{r:?}");
        assert!(!r.message.contains("closed-Secret-pw"), "{r:?}");
    }

    /// A login test that fails on the gateway's side (out of file
    /// descriptors, …) is not `unreachable`: its own outcome, naming the
    /// errno, whichever call met it.
    #[test]
    fn the_gateways_own_limit_is_its_own_outcome() {
        let e = OnvifError {
            peer: "127.0.9.72:80".into(),
            operation: "GetSystemDateAndTime",
            kind: OnvifErrorKind::Local(LocalResource::Emfile),
        };
        let r = from_error(&e, None);
        assert_eq!(r.result, Outcome::GatewayLimit, "{r:?}");
        assert_eq!(r.result.label(), "gateway-limit");
        assert_eq!(r.local, Some(LocalResource::Emfile));
        assert!(r.message.contains("EMFILE"), "{r:?}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["result"], "gateway-limit");
        assert_eq!(json["errno"], "EMFILE");
        let e = OnvifError {
            kind: OnvifErrorKind::Local(LocalResource::Eaddrnotavail),
            ..e
        };
        let r = from_error(&e, Some(1500));
        assert_eq!(r.result, Outcome::GatewayLimit);
        assert_eq!(r.clock_offset_ms, Some(1500), "the clock it did read");
        assert_eq!(serde_json::to_value(&r).unwrap()["errno"], "EADDRNOTAVAIL");

        // A refused connection is still the camera's: no errno.
        let e = OnvifError {
            kind: OnvifErrorKind::Connect("connection refused".into()),
            ..e
        };
        let r = from_error(&e, None);
        assert_eq!(r.result, Outcome::Unreachable);
        assert!(serde_json::to_value(&r).unwrap().get("errno").is_none());
    }

    /// A message that quotes the password is redacted.
    #[test]
    fn messages_never_carry_the_password() {
        let r = LoginTest::new(
            Outcome::CredentialsRejected,
            "bad password hunter2-pw for admin",
            Some(3),
        );
        let r = redact(r, "hunter2-pw");
        assert_eq!(r.message, "bad password *** for admin");
        assert_eq!(r.clock_offset_ms, Some(3));
    }
}
