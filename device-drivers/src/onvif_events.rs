//! ONVIF event service (PullPoint): request builders, response parsers and
//! the topic → kind table, plus the device-management clock setters
//! (SetSystemDateAndTime, SetNTP).
//!
//! Pure and prefix-agnostic like [`crate::onvif`]. Parsers take the raw
//! response bytes and a size cap; a PullMessages answer is further capped in
//! messages ([`MAX_MESSAGES`]: the rest are counted in
//! [`Pulled::dropped`], not parsed), topic length ([`MAX_TOPIC_LEN`]) and
//! simple items per message ([`MAX_ITEMS`]). Unknown topics are not errors:
//! [`classify`] returns `None` for them and the caller counts them.
//!
//! Event calls are WS-Addressed (ONVIF Core: the event service uses
//! WS-Addressing; several cameras refuse PullMessages, Renew or Unsubscribe
//! without `wsa:Action`): each operation's input action is an `ACTION_*`
//! constant here, and a subscription's reference parameters (Axis puts the
//! subscription id there, not in the URL) are kept in
//! [`Subscription::reference_parameters`] to be echoed on every call to it
//! ([`crate::wsa`]).

use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::onvif::{NS_DEVICE, NS_EVENTS, NS_SCHEMA};
use crate::soap::{self, SoapError};
use crate::wsa;
use crate::xml::{self, XmlError};

/// WS-BaseNotification namespace (`wsnt:`).
pub const NS_WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";

/// `wsa:Action` of CreatePullPointSubscription (ONVIF `event.wsdl`).
pub const ACTION_CREATE_PULL_POINT: &str =
    "http://www.onvif.org/ver10/events/wsdl/EventPortType/CreatePullPointSubscriptionRequest";

/// `wsa:Action` of PullMessages (ONVIF `event.wsdl`).
pub const ACTION_PULL_MESSAGES: &str =
    "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription/PullMessagesRequest";

/// `wsa:Action` of Renew (WS-BaseNotification `bw-2.wsdl`).
pub const ACTION_RENEW: &str =
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/RenewRequest";

/// `wsa:Action` of Unsubscribe (WS-BaseNotification `bw-2.wsdl`).
pub const ACTION_UNSUBSCRIBE: &str =
    "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest";

/// Default cap on an event-service answer: 256 KiB.
pub const MAX_EVENT_BODY: usize = 256 * 1024;

/// Most notification messages parsed from one PullMessages answer.
pub const MAX_MESSAGES: usize = 256;

/// Longest topic kept (bytes, after whitespace is trimmed).
pub const MAX_TOPIC_LEN: usize = 256;

/// Most simple items kept per message (source and data each).
pub const MAX_ITEMS: usize = 16;

/// Longest item name or value kept (longer ones are cut).
const MAX_ITEM_LEN: usize = 128;

// ---------------------------------------------------------------- builders

/// `PT<seconds>S`, the xs:duration form every camera accepts.
pub fn duration(d: Duration) -> String {
    format!("PT{}S", d.as_secs().max(1))
}

/// Body of CreatePullPointSubscription asking for `termination` (relative).
pub fn create_pull_point_subscription(termination: Duration) -> String {
    format!(
        r#"<CreatePullPointSubscription xmlns="{NS_EVENTS}"><InitialTerminationTime>{}</InitialTerminationTime></CreatePullPointSubscription>"#,
        duration(termination)
    )
}

/// Body of PullMessages: wait up to `timeout` for at most `limit` messages.
pub fn pull_messages(timeout: Duration, limit: u32) -> String {
    format!(
        r#"<PullMessages xmlns="{NS_EVENTS}"><Timeout>{}</Timeout><MessageLimit>{limit}</MessageLimit></PullMessages>"#,
        duration(timeout)
    )
}

/// Body of Renew (WS-BaseNotification) for `termination` (relative).
pub fn renew(termination: Duration) -> String {
    format!(
        r#"<Renew xmlns="{NS_WSNT}"><TerminationTime>{}</TerminationTime></Renew>"#,
        duration(termination)
    )
}

/// Body of Unsubscribe.
pub fn unsubscribe() -> String {
    format!(r#"<Unsubscribe xmlns="{NS_WSNT}"/>"#)
}

/// Body of SetSystemDateAndTime: manual time `utc`, local zone `tz` as a
/// POSIX TZ string (`CST-8`).
pub fn set_system_date_and_time(utc: OffsetDateTime, tz: &str) -> String {
    let u = utc.to_offset(UtcOffset::UTC);
    format!(
        concat!(
            r#"<SetSystemDateAndTime xmlns="{dev}" xmlns:tt="{tt}">"#,
            "<DateTimeType>Manual</DateTimeType><DaylightSavings>false</DaylightSavings>",
            "<TimeZone><tt:TZ>{tz}</tt:TZ></TimeZone>",
            "<UTCDateTime><tt:Date><tt:Year>{y}</tt:Year><tt:Month>{mo}</tt:Month><tt:Day>{d}</tt:Day></tt:Date>",
            "<tt:Time><tt:Hour>{h}</tt:Hour><tt:Minute>{mi}</tt:Minute><tt:Second>{s}</tt:Second></tt:Time></UTCDateTime>",
            "</SetSystemDateAndTime>"
        ),
        dev = NS_DEVICE,
        tt = NS_SCHEMA,
        tz = xml::escape(tz),
        y = u.year(),
        mo = u8::from(u.month()),
        d = u.day(),
        h = u.hour(),
        mi = u.minute(),
        s = u.second(),
    )
}

/// Body of SetSystemDateAndTime switching the camera to NTP (its time then
/// comes from the server set with [`set_ntp`]).
pub fn set_date_time_ntp(tz: &str) -> String {
    format!(
        concat!(
            r#"<SetSystemDateAndTime xmlns="{dev}" xmlns:tt="{tt}">"#,
            "<DateTimeType>NTP</DateTimeType><DaylightSavings>false</DaylightSavings>",
            "<TimeZone><tt:TZ>{tz}</tt:TZ></TimeZone></SetSystemDateAndTime>"
        ),
        dev = NS_DEVICE,
        tt = NS_SCHEMA,
        tz = xml::escape(tz),
    )
}

/// Body of SetNTP with one manual server (an IPv4 address or a DNS name).
pub fn set_ntp(server: &str) -> String {
    let is_ip = server.parse::<std::net::Ipv4Addr>().is_ok();
    let (ty, field) = if is_ip {
        ("IPv4", "IPv4Address")
    } else {
        ("DNS", "DNSname")
    };
    format!(
        concat!(
            r#"<SetNTP xmlns="{dev}" xmlns:tt="{tt}"><FromDHCP>false</FromDHCP>"#,
            "<NTPManual><tt:Type>{ty}</tt:Type><tt:{field}>{server}</tt:{field}></NTPManual></SetNTP>"
        ),
        dev = NS_DEVICE,
        tt = NS_SCHEMA,
        ty = ty,
        field = field,
        server = xml::escape(server),
    )
}

// ------------------------------------------------------------------ types

/// A subscription the camera granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    /// Where PullMessages, Renew and Unsubscribe go.
    pub address: String,
    /// The `SubscriptionReference`'s reference parameters, echoed as
    /// header blocks on every call to the subscription (empty for cameras
    /// that put everything in the address).
    pub reference_parameters: Vec<wsa::Element>,
    /// The camera's clock when it answered.
    pub current_time: Option<OffsetDateTime>,
    /// When the subscription ends, on the camera's clock.
    pub termination_time: Option<OffsetDateTime>,
}

/// What a property event says about its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyOperation {
    /// The state when the subscription started (not a change).
    Initialized,
    /// A change.
    Changed,
    /// The property went away.
    Deleted,
}

/// One notification message.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The topic with namespace prefixes dropped from every segment
    /// (`tns1:RuleEngine/tnsaxis:X` → `RuleEngine/X`).
    pub topic: String,
    /// `Initialized`, `Changed`, `Deleted`, if sent.
    pub operation: Option<PropertyOperation>,
    /// The camera's time of the event.
    pub utc_time: Option<OffsetDateTime>,
    /// Source simple items (name, value).
    pub source: Vec<(String, String)>,
    /// Data simple items (name, value).
    pub data: Vec<(String, String)>,
}

/// A PullMessages answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Pulled {
    /// The camera's clock when it answered.
    pub current_time: Option<OffsetDateTime>,
    /// When the subscription ends, on the camera's clock.
    pub termination_time: Option<OffsetDateTime>,
    /// The messages, at most [`MAX_MESSAGES`].
    pub messages: Vec<Notification>,
    /// Messages over the cap, or with an over-long or missing topic: not parsed.
    pub dropped: usize,
}

/// A Renew answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Renewed {
    /// The camera's clock when it answered.
    pub current_time: Option<OffsetDateTime>,
    /// The new end of the subscription, on the camera's clock.
    pub termination_time: Option<OffsetDateTime>,
}

/// The kinds of camera event the gateway acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// Lens covered, sprayed, turned; scene change; image too dark, bright or blurry.
    Tamper,
    /// Video signal lost.
    VideoLoss,
    /// Motion detected.
    Motion,
    /// A digital input changed.
    DigitalInput,
}

impl EventKind {
    /// `tamper`, `video-loss`, `motion`, `digital-input`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Tamper => "tamper",
            EventKind::VideoLoss => "video-loss",
            EventKind::Motion => "motion",
            EventKind::DigitalInput => "digital-input",
        }
    }

    /// Every kind.
    pub const ALL: [EventKind; 4] = [
        EventKind::Tamper,
        EventKind::VideoLoss,
        EventKind::Motion,
        EventKind::DigitalInput,
    ];
}

/// Topic prefix → kind, and the data item that carries the state (any
/// boolean-looking item is used when that one is missing). Topics are
/// compared without namespace prefixes and case-insensitively.
pub const TOPICS: &[(&str, EventKind, &str)] = &[
    // Hikvision, ONVIF profile T
    (
        "RuleEngine/TamperDetector/Tamper",
        EventKind::Tamper,
        "IsTamper",
    ),
    // Dahua, ONVIF analytics service
    ("VideoSource/GlobalSceneChange", EventKind::Tamper, "State"),
    // Axis (`tns1:VideoSource/tnsaxis:Tampering`)
    ("VideoSource/Tampering", EventKind::Tamper, "tampering"),
    ("VideoSource/ImageTooDark", EventKind::Tamper, "State"),
    ("VideoSource/ImageTooBright", EventKind::Tamper, "State"),
    ("VideoSource/ImageTooBlurry", EventKind::Tamper, "State"),
    ("VideoSource/SignalLoss", EventKind::VideoLoss, "State"),
    (
        "RuleEngine/CellMotionDetector/Motion",
        EventKind::Motion,
        "IsMotion",
    ),
    ("VideoSource/MotionAlarm", EventKind::Motion, "State"),
    (
        "Device/Trigger/DigitalInput",
        EventKind::DigitalInput,
        "LogicalState",
    ),
];

/// A message's kind and state (`None` when no item says).
pub fn classify(n: &Notification) -> Option<(EventKind, Option<bool>)> {
    let topic = n.topic.as_str();
    let (_, kind, key) = TOPICS.iter().find(|(prefix, _, _)| {
        topic.len() >= prefix.len()
            && topic.is_char_boundary(prefix.len())
            && topic[..prefix.len()].eq_ignore_ascii_case(prefix)
            && (topic.len() == prefix.len() || topic.as_bytes()[prefix.len()] == b'/')
    })?;
    let state = n
        .data
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| truth(v))
        .or_else(|| n.data.iter().find_map(|(_, v)| truth(v)));
    Some((*kind, state))
}

fn truth(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "active" => Some(true),
        "false" | "0" | "off" | "inactive" => Some(false),
        _ => None,
    }
}

// ----------------------------------------------------------------- parsers

/// An xs:dateTime (`2000-01-03T03:58:33Z`, a fraction, an offset, or none
/// meaning UTC).
pub fn parse_date_time(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.len() > 64 {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.to_offset(UtcOffset::UTC));
    }
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

fn times(node: roxmltree::Node<'_, '_>) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
    let t = |name| {
        xml::child(node, name)
            .and_then(xml::text)
            .and_then(|s| parse_date_time(&s))
    };
    (t("CurrentTime"), t("TerminationTime"))
}

fn response<'a, 'i>(
    body: roxmltree::Node<'a, 'i>,
    name: &'static str,
) -> Result<roxmltree::Node<'a, 'i>, SoapError> {
    xml::find(body, name).ok_or(SoapError::Xml(XmlError::Missing(name)))
}

/// Parses CreatePullPointSubscriptionResponse.
pub fn parse_create_pull_point_subscription(
    bytes: &[u8],
    max: usize,
) -> Result<Subscription, SoapError> {
    soap::with_body(bytes, max, |body| {
        let resp = response(body, "CreatePullPointSubscriptionResponse")?;
        let reference = xml::child(resp, "SubscriptionReference")
            .ok_or(SoapError::Xml(XmlError::Missing("SubscriptionReference")))?;
        let address = xml::child(reference, "Address")
            .and_then(xml::text)
            .ok_or(SoapError::Xml(XmlError::Missing("SubscriptionReference")))?;
        let url = url::Url::parse(&address)
            .map_err(|e| SoapError::Protocol(format!("subscription address is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(SoapError::Protocol(
                "subscription address is not http(s)".into(),
            ));
        }
        let reference_parameters = wsa::reference_parameters(reference)
            .map_err(|e| SoapError::Protocol(format!("subscription reference: {e}")))?;
        let (current_time, termination_time) = times(resp);
        Ok(Subscription {
            address,
            reference_parameters,
            current_time,
            termination_time,
        })
    })
}

fn items(node: Option<roxmltree::Node<'_, '_>>) -> Vec<(String, String)> {
    let Some(node) = node else {
        return Vec::new();
    };
    let cut = |s: &str| {
        let mut end = s.len().min(MAX_ITEM_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    xml::children(node, "SimpleItem")
        .take(MAX_ITEMS)
        .filter_map(|i| Some((cut(xml::attr(i, "Name")?), cut(xml::attr(i, "Value")?))))
        .collect()
}

/// A topic without namespace prefixes, or `None` when empty or too long.
pub fn normalize_topic(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_TOPIC_LEN {
        return None;
    }
    let t: Vec<&str> = raw
        .split('/')
        .map(|seg| seg.rsplit(':').next().unwrap_or(seg).trim())
        .filter(|s| !s.is_empty())
        .collect();
    (!t.is_empty()).then(|| t.join("/"))
}

fn notification(n: roxmltree::Node<'_, '_>) -> Option<Notification> {
    let topic = xml::child(n, "Topic")
        .and_then(xml::text)
        .and_then(|t| normalize_topic(&t))?;
    // wsnt:Message wraps tt:Message.
    let outer = xml::child(n, "Message");
    let msg = outer.and_then(|o| xml::child(o, "Message")).or(outer);
    let utc_time = msg
        .and_then(|m| xml::attr(m, "UtcTime"))
        .and_then(parse_date_time);
    let operation = msg
        .and_then(|m| xml::attr(m, "PropertyOperation"))
        .and_then(|p| match p.trim() {
            "Initialized" => Some(PropertyOperation::Initialized),
            "Changed" => Some(PropertyOperation::Changed),
            "Deleted" => Some(PropertyOperation::Deleted),
            _ => None,
        });
    Some(Notification {
        topic,
        operation,
        utc_time,
        source: items(msg.and_then(|m| xml::child(m, "Source"))),
        data: items(msg.and_then(|m| xml::child(m, "Data"))),
    })
}

/// Parses PullMessagesResponse, keeping at most `max_messages` (itself at
/// most [`MAX_MESSAGES`]).
pub fn parse_pull_messages_capped(
    bytes: &[u8],
    max: usize,
    max_messages: usize,
) -> Result<Pulled, SoapError> {
    let cap = max_messages.min(MAX_MESSAGES);
    soap::with_body(bytes, max, |body| {
        let resp = response(body, "PullMessagesResponse")?;
        let (current_time, termination_time) = times(resp);
        let mut messages = Vec::new();
        let mut dropped = 0;
        for n in xml::children(resp, "NotificationMessage") {
            if messages.len() >= cap {
                dropped += 1;
                continue;
            }
            match notification(n) {
                Some(m) => messages.push(m),
                None => dropped += 1,
            }
        }
        Ok(Pulled {
            current_time,
            termination_time,
            messages,
            dropped,
        })
    })
}

/// Parses PullMessagesResponse with the default message cap.
pub fn parse_pull_messages(bytes: &[u8], max: usize) -> Result<Pulled, SoapError> {
    parse_pull_messages_capped(bytes, max, MAX_MESSAGES)
}

/// Parses RenewResponse.
pub fn parse_renew(bytes: &[u8], max: usize) -> Result<Renewed, SoapError> {
    soap::with_body(bytes, max, |body| {
        let resp = response(body, "RenewResponse")?;
        let (current_time, termination_time) = times(resp);
        Ok(Renewed {
            current_time,
            termination_time,
        })
    })
}

fn empty(bytes: &[u8], max: usize, name: &'static str) -> Result<(), SoapError> {
    soap::with_body(bytes, max, |body| response(body, name).map(|_| ()))
}

/// Parses UnsubscribeResponse.
pub fn parse_unsubscribe(bytes: &[u8], max: usize) -> Result<(), SoapError> {
    empty(bytes, max, "UnsubscribeResponse")
}

/// Parses SetSystemDateAndTimeResponse.
pub fn parse_set_system_date_and_time(bytes: &[u8], max: usize) -> Result<(), SoapError> {
    empty(bytes, max, "SetSystemDateAndTimeResponse")
}

/// Parses SetNTPResponse.
pub fn parse_set_ntp(bytes: &[u8], max: usize) -> Result<(), SoapError> {
    empty(bytes, max, "SetNTPResponse")
}

#[cfg(test)]
mod tests;
