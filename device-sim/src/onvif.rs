//! The pure core of a simulated camera's ONVIF SOAP service: a request (HTTP
//! method, target, `Authorization` header, body) plus the camera, its fault
//! and the current time go in; a status, an optional challenge and a body
//! come out. No sockets, no clock reads; `server` does the IO.
//!
//! Answers are rendered from templates derived from real captures
//! (`templates/`, see PROVENANCE.md there), with the flavour's prefixes.

use std::collections::HashMap;

use device_drivers::{soap, xml};
use time::{OffsetDateTime, UtcOffset};

use crate::camera::{Camera, PROFILES, ProfileSpec};
use crate::digest;
use crate::events::EventState;
use crate::fault::Fault;
use crate::flavour::Flavour;

/// How far a UsernameToken's `Created` may be from the camera's clock.
pub const TOKEN_WINDOW_S: i64 = 5;

/// Largest request body accepted.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

const NS_DEVICE: &str = "http://www.onvif.org/ver10/device/wsdl";
const NS_MEDIA: &str = "http://www.onvif.org/ver10/media/wsdl";
const NS_MEDIA2: &str = "http://www.onvif.org/ver20/media/wsdl";
const NS_EVENTS: &str = "http://www.onvif.org/ver10/events/wsdl";

mod tpl {
    pub const ENVELOPE: &str = include_str!("../templates/envelope.xml");
    pub const FAULT: &str = include_str!("../templates/Fault.xml");
    pub const GSDT: &str = include_str!("../templates/GetSystemDateAndTime.xml");
    pub const DEVICE_INFO: &str = include_str!("../templates/GetDeviceInformation.xml");
    pub const SERVICES: &str = include_str!("../templates/GetServices.xml");
    pub const SERVICE: &str = include_str!("../templates/Service.xml");
    pub const CAPABILITIES: &str = include_str!("../templates/GetCapabilities.xml");
    pub const SCOPES: &str = include_str!("../templates/GetScopes.xml");
    pub const SCOPE: &str = include_str!("../templates/Scope.xml");
    pub const NET_IFS: &str = include_str!("../templates/GetNetworkInterfaces.xml");
    pub const M1_PROFILES: &str = include_str!("../templates/media.GetProfiles.xml");
    pub const M1_PROFILE: &str = include_str!("../templates/media.Profile.xml");
    pub const M1_STREAM: &str = include_str!("../templates/media.GetStreamUri.xml");
    pub const M1_SNAPSHOT: &str = include_str!("../templates/media.GetSnapshotUri.xml");
    pub const M2_PROFILES: &str = include_str!("../templates/media2.GetProfiles.xml");
    pub const M2_PROFILE: &str = include_str!("../templates/media2.Profile.xml");
    pub const M2_STREAM: &str = include_str!("../templates/media2.GetStreamUri.xml");
    pub const M2_SNAPSHOT: &str = include_str!("../templates/media2.GetSnapshotUri.xml");
}

/// Fills `{{key}}` placeholders. Unknown keys render empty (templates are
/// ours and covered by tests, so this never hides device input).
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = &after[..end];
                if let Some((_, v)) = vars.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// An HTTP request to the SOAP service.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Request target (path and query), as used in Digest `uri`.
    pub target: &'a str,
    /// `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// Body bytes.
    pub body: &'a [u8],
}

/// The answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `WWW-Authenticate` header for a 401.
    pub www_authenticate: Option<String>,
    /// Response body (SOAP envelope, or junk under [`Fault::MalformedXml`]).
    pub body: String,
    /// The operation answered (for logs), e.g. `GetProfiles`.
    pub operation: String,
    /// A PullMessages that found nothing queued: the server waits up to
    /// `wait` for an event, then answers with [`pull_again`] (`body` is the
    /// empty answer, sent if nothing comes).
    pub pull: Option<PendingPull>,
}

/// A long-poll PullMessages waiting for events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingPull {
    /// Subscription id.
    pub sub: u64,
    /// Most messages to return.
    pub limit: usize,
    /// How long the camera holds the request.
    pub wait: std::time::Duration,
}

/// Nonces seen in UsernameTokens within the freshness window (replay guard).
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<String, OffsetDateTime>,
}

impl NonceCache {
    /// Records `nonce` at camera time `now`; `false` if it was already seen
    /// within the window (a replay).
    pub fn insert(&mut self, nonce: &str, now: OffsetDateTime) -> bool {
        let horizon = time::Duration::seconds(2 * TOKEN_WINDOW_S + 1);
        if self.seen.len() > 256 {
            self.seen.retain(|_, t| (now - *t).abs() <= horizon);
        }
        if let Some(t) = self.seen.get(nonce)
            && (now - *t).abs() <= horizon
        {
            return false;
        }
        self.seen.insert(nonce.to_string(), now);
        true
    }
}

/// Everything about a camera that the SOAP core reads or updates.
pub struct Ctx<'a> {
    /// The camera.
    pub camera: &'a Camera,
    /// Its current fault, if any.
    pub fault: Option<&'a Fault>,
    /// Real UTC now (the camera's clock adds any skew).
    pub now_utc: OffsetDateTime,
    /// Secret for stateless Digest nonces.
    pub digest_secret: &'a str,
    /// Replay guard.
    pub nonces: &'a mut NonceCache,
    /// Event subscriptions and the settable clock.
    pub events: &'a mut EventState,
}

impl Ctx<'_> {
    /// The camera's own clock: real time plus any skew fault, plus what
    /// SetSystemDateAndTime / NTP moved it by.
    pub fn camera_now(&self) -> OffsetDateTime {
        self.now_utc + self.skew() + self.events.clock_adjust
    }

    /// The skew fault's offset.
    pub(crate) fn skew(&self) -> time::Duration {
        match self.fault {
            Some(Fault::ClockSkew(s)) => time::Duration::seconds(*s),
            _ => time::Duration::ZERO,
        }
    }

    /// The password the camera currently accepts.
    fn effective_password(&self) -> String {
        match self.fault {
            Some(Fault::WrongPassword) => format!("{}#changed", self.camera.password),
            _ => self.camera.password.clone(),
        }
    }
}

struct Vars<'c> {
    camera: &'c Camera,
}

impl Vars<'_> {
    fn prefixes(&self) -> [(&'static str, &'static str); 5] {
        let p = self.camera.flavour.info().prefixes;
        [
            ("env", p.env),
            ("tds", p.tds),
            ("tt", p.tt),
            ("trt", p.trt),
            ("tr2", p.tr2),
        ]
    }

    /// Renders a body template with the prefixes plus `extra`.
    fn body(&self, template: &str, extra: &[(&str, &str)]) -> String {
        let mut vars: Vec<(&str, &str)> = self.prefixes().to_vec();
        vars.extend_from_slice(extra);
        render(template, &vars)
    }

    fn envelope(&self, body: &str) -> String {
        let mut vars: Vec<(&str, &str)> = self.prefixes().to_vec();
        vars.push(("body", body));
        render(tpl::ENVELOPE, &vars)
    }

    fn fault(&self, code: &str, subcode: &str, reason: &str) -> String {
        let reason = xml::escape(reason).to_string();
        let body = self.body(
            tpl::FAULT,
            &[("code", code), ("subcode", subcode), ("reason", &reason)],
        );
        self.envelope(&body)
    }
}

fn reply(status: u16, body: String, op: &str) -> Reply {
    Reply {
        status,
        www_authenticate: None,
        body,
        operation: op.to_string(),
        pull: None,
    }
}

/// Answers one SOAP request.
pub fn handle(ctx: &mut Ctx<'_>, req: &Request<'_>) -> Reply {
    let mut r = handle_inner(ctx, req);
    if matches!(ctx.fault, Some(Fault::MalformedXml)) {
        r.body = malform(&r.body);
    }
    r
}

/// Truncates a document mid-element and appends garbage.
fn malform(body: &str) -> String {
    let mut cut = body.len() * 3 / 5;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}<<&garbage\u{1}", &body[..cut])
}

fn handle_inner(ctx: &mut Ctx<'_>, req: &Request<'_>) -> Reply {
    let v = Vars { camera: ctx.camera };
    if req.method != "POST" {
        return reply(
            405,
            v.fault(
                "Sender",
                "ter:InvalidArgVal",
                "SOAP requests must be POSTed",
            ),
            "-",
        );
    }
    let text = match xml::check(req.body, MAX_REQUEST_BYTES) {
        Ok(t) => t,
        Err(e) => {
            return reply(
                400,
                v.fault("Sender", "ter:WellFormed", &e.to_string()),
                "-",
            );
        }
    };
    let doc = match xml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            return reply(
                400,
                v.fault("Sender", "ter:WellFormed", &e.to_string()),
                "-",
            );
        }
    };
    let op_node = match xml::child(doc.root_element(), "Body")
        .and_then(|b| b.children().find(|c| c.is_element()))
    {
        Some(b) => b,
        None => {
            return reply(
                400,
                v.fault("Sender", "ter:WellFormed", "no SOAP Body content"),
                "-",
            );
        }
    };
    let op = xml::local(op_node).to_string();
    let ns = op_node.tag_name().namespace().unwrap_or("");

    let needs_auth =
        op != "GetSystemDateAndTime" || matches!(ctx.fault, Some(Fault::AuthEverything));
    if needs_auth && let Err(r) = authenticate(ctx, req, text, &doc, &op) {
        return r;
    }

    if let Some(r) = event_ops::handle(ctx, &v, req.target, op_node, ns, &op) {
        return r;
    }
    let cam = ctx.camera;
    let info = cam.flavour.info();
    let body = match (ns, op.as_str()) {
        (_, "GetSystemDateAndTime") => Some(gsdt(&v, ctx.camera_now(), ctx.events.ntp)),
        (NS_DEVICE, "GetDeviceInformation") => Some(v.body(
            tpl::DEVICE_INFO,
            &[
                ("manufacturer", info.manufacturer),
                ("model", info.model),
                ("firmware", info.firmware),
                ("serial", &cam.serial),
                ("hardware_id", info.hardware_id),
            ],
        )),
        (NS_DEVICE, "GetServices") => Some(services(&v)),
        (NS_DEVICE, "GetCapabilities") => {
            let dev = cam.xaddr();
            let media = cam.service_xaddr(info.media_path);
            let events = cam.service_xaddr(info.device_path);
            Some(v.body(
                tpl::CAPABILITIES,
                &[
                    ("device_xaddr", &dev),
                    ("media_xaddr", &media),
                    ("events_xaddr", &events),
                ],
            ))
        }
        (NS_DEVICE, "GetScopes") => {
            let scopes: String = cam
                .scopes()
                .iter()
                .map(|s| {
                    let def = if s.contains("/location/") || s.contains("/name/") {
                        "Configurable"
                    } else {
                        "Fixed"
                    };
                    v.body(
                        tpl::SCOPE,
                        &[
                            ("scope_def", def),
                            ("scope_item", &xml::escape(s).to_string()),
                        ],
                    )
                })
                .collect();
            Some(v.body(tpl::SCOPES, &[("scopes", &scopes)]))
        }
        (NS_DEVICE, "GetNetworkInterfaces") => {
            let mac = cam.mac_string();
            let ip = cam.ip.to_string();
            let ll = cam.ipv6_link_local();
            Some(v.body(
                tpl::NET_IFS,
                &[("mac", &mac), ("ip", &ip), ("ipv6_link_local", &ll)],
            ))
        }
        (NS_MEDIA, "GetProfiles") => Some(profiles(&v, false)),
        (NS_MEDIA2, "GetProfiles") if cam.flavour.has_media2() => Some(profiles(&v, true)),
        (NS_MEDIA, "GetStreamUri" | "GetSnapshotUri") => {
            return media_uri(&v, op_node, &op, false);
        }
        (NS_MEDIA2, "GetStreamUri" | "GetSnapshotUri") if cam.flavour.has_media2() => {
            return media_uri(&v, op_node, &op, true);
        }
        _ => None,
    };
    match body {
        Some(b) => reply(200, v.envelope(&b), &op),
        None => reply(
            500,
            v.fault(
                "Receiver",
                "ter:ActionNotSupported",
                &format!("{op} ({ns}) is not supported by this device"),
            ),
            &op,
        ),
    }
}

/// Checks WS-UsernameToken, else HTTP Digest; `Err` is the reply to send.
fn authenticate(
    ctx: &mut Ctx<'_>,
    req: &Request<'_>,
    text: &str,
    doc: &roxmltree::Document<'_>,
    op: &str,
) -> Result<(), Reply> {
    let v = Vars { camera: ctx.camera };
    let password = ctx.effective_password();
    let has_token = xml::child(doc.root_element(), "Header")
        .and_then(|h| xml::find(h, "UsernameToken"))
        .is_some();
    if has_token {
        let now = ctx.camera_now();
        let window = time::Duration::seconds(TOKEN_WINDOW_S);
        let result =
            soap::verify_username_token(text, &ctx.camera.username, &password, now, window);
        let reason = match result {
            Ok(_) => {
                let nonce = xml::find_text(doc.root_element(), "Nonce").unwrap_or_default();
                if ctx.nonces.insert(&nonce, now) {
                    return Ok(());
                }
                "UsernameToken nonce replayed".to_string()
            }
            Err(e) => e.to_string(),
        };
        return Err(reply(
            400,
            v.fault(
                "Sender",
                "ter:NotAuthorized",
                &format!("Sender not Authorized: {reason}"),
            ),
            op,
        ));
    }
    let realm = ctx.camera.realm();
    let now_unix = ctx.camera_now().unix_timestamp();
    let mut stale = false;
    if let Some(h) = req.authorization {
        match digest::verify(
            h,
            req.method,
            req.target,
            &ctx.camera.username,
            &password,
            &realm,
            ctx.digest_secret,
            now_unix,
        ) {
            Ok(()) => return Ok(()),
            Err(digest::DigestError::Stale) => stale = true,
            Err(_) => {}
        }
    }
    let nonce = digest::make_nonce(ctx.digest_secret, now_unix);
    let mut r = reply(
        401,
        v.fault("Sender", "ter:NotAuthorized", "Sender not Authorized"),
        op,
    );
    r.www_authenticate = Some(digest::challenge(&realm, &nonce, stale));
    Err(r)
}

fn two(n: u8) -> String {
    n.to_string()
}

fn gsdt(v: &Vars<'_>, now: OffsetDateTime, ntp: bool) -> String {
    let utc = now.to_offset(UtcOffset::UTC);
    let local = now.to_offset(UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC));
    let date_time_type = if ntp || v.camera.flavour == Flavour::Axis {
        "NTP"
    } else {
        "Manual"
    };
    let (y, ly) = (utc.year().to_string(), local.year().to_string());
    let (mo, lmo) = (two(utc.month() as u8), two(local.month() as u8));
    let (d, ld) = (two(utc.day()), two(local.day()));
    let (h, lh) = (two(utc.hour()), two(local.hour()));
    let (mi, lmi) = (two(utc.minute()), two(local.minute()));
    let (s, ls) = (two(utc.second()), two(local.second()));
    v.body(
        tpl::GSDT,
        &[
            ("date_time_type", date_time_type),
            ("year", &y),
            ("month", &mo),
            ("day", &d),
            ("hour", &h),
            ("minute", &mi),
            ("second", &s),
            ("local_year", &ly),
            ("local_month", &lmo),
            ("local_day", &ld),
            ("local_hour", &lh),
            ("local_minute", &lmi),
            ("local_second", &ls),
        ],
    )
}

fn services(v: &Vars<'_>) -> String {
    let cam = v.camera;
    let info = cam.flavour.info();
    let mut list: Vec<(&str, &str, &str, &str)> = vec![
        (NS_DEVICE, info.device_path, "2", "40"),
        (NS_MEDIA, info.media_path, "2", "40"),
    ];
    if cam.flavour.has_events() {
        list.push((NS_EVENTS, info.device_path, "2", "40"));
    }
    if let Some(p) = info.media2_path {
        list.push((NS_MEDIA2, p, "2", "40"));
    }
    let all: String = list
        .iter()
        .map(|(ns, path, major, minor)| {
            let xaddr = cam.service_xaddr(path);
            v.body(
                tpl::SERVICE,
                &[
                    ("namespace", ns),
                    ("xaddr", &xaddr),
                    ("major", major),
                    ("minor", minor),
                ],
            )
        })
        .collect();
    v.body(tpl::SERVICES, &[("services", &all)])
}

fn profile_vars(p: &ProfileSpec) -> [(&'static str, String); 9] {
    [
        ("name", p.name.to_string()),
        ("encoding", p.encoding.to_string()),
        ("width", p.width.to_string()),
        ("height", p.height.to_string()),
        ("fps", p.fps.to_string()),
        ("bitrate", p.bitrate_kbps.to_string()),
        ("gov_length", p.gov_length.to_string()),
        ("h264_profile", p.h264_profile.to_string()),
        ("quality", p.quality.to_string()),
    ]
}

fn profiles(v: &Vars<'_>, media2: bool) -> String {
    let tokens = v.camera.flavour.info().profile_tokens;
    let (outer, inner) = if media2 {
        (tpl::M2_PROFILES, tpl::M2_PROFILE)
    } else {
        (tpl::M1_PROFILES, tpl::M1_PROFILE)
    };
    let all: String = PROFILES
        .iter()
        .zip(tokens)
        .enumerate()
        .map(|(i, (p, token))| {
            let enc = format!("VideoEncoderConfig_{}", i + 1);
            let pv = profile_vars(p);
            let mut vars: Vec<(&str, &str)> =
                pv.iter().map(|(k, val)| (*k, val.as_str())).collect();
            vars.push(("token", token));
            vars.push(("encoder_token", &enc));
            v.body(inner, &vars)
        })
        .collect();
    v.body(outer, &[("profiles", &all)])
}

fn media_uri(v: &Vars<'_>, op_node: roxmltree::Node<'_, '_>, op: &str, media2: bool) -> Reply {
    let cam = v.camera;
    let token = xml::child(op_node, "ProfileToken").and_then(xml::text);
    let Some(idx) = token.as_deref().and_then(|t| cam.profile_index(t)) else {
        return reply(
            400,
            v.fault(
                "Sender",
                "ter:InvalidArgVal",
                &format!("ter:NoProfile: profile token {token:?} does not exist"),
            ),
            op,
        );
    };
    let uri = if op == "GetStreamUri" {
        cam.stream_uri(idx)
    } else {
        cam.snapshot_uri(idx)
    };
    let uri = xml::escape(&uri).to_string();
    let tpl = match (media2, op) {
        (false, "GetStreamUri") => tpl::M1_STREAM,
        (false, _) => tpl::M1_SNAPSHOT,
        (true, "GetStreamUri") => tpl::M2_STREAM,
        (true, _) => tpl::M2_SNAPSHOT,
    };
    reply(200, v.envelope(&v.body(tpl, &[("uri", &uri)])), op)
}

mod event_ops;
pub use event_ops::pull_again;

#[cfg(test)]
mod tests;
