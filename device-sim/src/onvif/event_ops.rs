//! The SOAP side of the simulated event service and clock setters:
//! CreatePullPointSubscription, PullMessages (long-poll, see
//! [`super::PendingPull`]), Renew, Unsubscribe, SetSystemDateAndTime and
//! SetNTP. State lives in [`crate::events::EventState`].
//!
//! A flavour that [requires WS-Addressing](Flavour::requires_ws_addressing)
//! (Axis) refuses an event call without the right `wsa:Action`, hands out
//! subscriptions as `/onvif/services` plus a `SubscriptionId` reference
//! parameter, and refuses a call on a subscription that does not echo it
//! (`wsa5:InvalidAddressingHeader`); the others name subscriptions by URL
//! and ignore WS-Addressing.

use std::time::Duration;

use device_drivers::onvif_events::{
    ACTION_CREATE_PULL_POINT, ACTION_PULL_MESSAGES, ACTION_RENEW, ACTION_UNSUBSCRIBE,
};
use device_drivers::{wsa, xml};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::{Ctx, NS_DEVICE, NS_EVENTS, PendingPull, Reply, Vars, reply};
use crate::events::{Condition, EventError, Message, parse_xs_duration};
use crate::flavour::Flavour;

const NS_WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";
/// Namespace of Axis's `SubscriptionId` reference parameter.
pub const NS_AXIS_EVENT: &str = "http://www.axis.com/2009/event";
const DEFAULT_TERMINATION: Duration = Duration::from_secs(60);
const MAX_PULL_WAIT: Duration = Duration::from_secs(60);

fn stamp(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The subscription id in a pull-point address (`.../pullpoint/7`).
fn sub_id(target: &str) -> Option<u64> {
    let path = target.split('?').next().unwrap_or(target);
    path.rsplit_once("/pullpoint/")?.1.parse().ok()
}

/// A relative (`PT60S`) or absolute (camera time) termination.
fn termination(node: Option<roxmltree::Node<'_, '_>>, now: OffsetDateTime) -> Option<Duration> {
    let Some(text) = node.and_then(xml::text) else {
        return Some(DEFAULT_TERMINATION);
    };
    if let Some(d) = parse_xs_duration(&text) {
        return Some(d);
    }
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    Some((at - now).try_into().unwrap_or(Duration::ZERO))
}

/// A strict camera's check of a request's WS-Addressing: the action must
/// be `action`; the `SubscriptionId` reference parameter, if echoed.
fn addressed(
    v: &Vars<'_>,
    op_node: roxmltree::Node<'_, '_>,
    op: &str,
    action: &str,
) -> Result<Option<u64>, Reply> {
    let refuse = |sub: &str, why: &str| reply(400, v.fault("Sender", sub, why), op);
    let h = wsa::request_headers(op_node.document().root_element())
        .map_err(|e| refuse("wsa5:InvalidAddressingHeader", &e.to_string()))?;
    match h.action.as_deref() {
        None => {
            return Err(refuse(
                "wsa5:MessageAddressingHeaderRequired",
                "wsa:Action header is required",
            ));
        }
        Some(a) if a != action => {
            return Err(refuse(
                "wsa5:ActionNotSupported",
                &format!("action {a} is not {op}'s"),
            ));
        }
        Some(_) => {}
    }
    Ok(h.reference_parameters
        .iter()
        .find(|p| p.name == "SubscriptionId" && p.namespace.as_deref() == Some(NS_AXIS_EVENT))
        .and_then(|p| p.text().trim().parse().ok()))
}

/// Which subscription a PullMessages, Renew or Unsubscribe is for: on a
/// strict camera the echoed reference parameter (after the action check),
/// else the id in the URL.
fn subscription(
    ctx: &Ctx<'_>,
    v: &Vars<'_>,
    target: &str,
    op_node: roxmltree::Node<'_, '_>,
    op: &str,
    action: &str,
) -> Result<u64, Reply> {
    if !ctx.camera.flavour.requires_ws_addressing() {
        return sub_id(target).ok_or_else(|| no_sub(v, op, EventError::NoSubscription));
    }
    addressed(v, op_node, op, action)?.ok_or_else(|| {
        reply(
            400,
            v.fault(
                "Sender",
                "wsa5:InvalidAddressingHeader",
                "no SubscriptionId reference parameter: which subscription?",
            ),
            op,
        )
    })
}

fn bad(v: &Vars<'_>, op: &str, why: &str) -> Reply {
    reply(400, v.fault("Sender", "ter:InvalidArgVal", why), op)
}

fn no_sub(v: &Vars<'_>, op: &str, e: EventError) -> Reply {
    let why = match e {
        EventError::NoSubscription => "the subscription does not exist (expired or unsubscribed)",
        EventError::TooMany => "too many subscriptions",
    };
    let code = match e {
        EventError::NoSubscription => "ter:InvalidArgVal",
        EventError::TooMany => "ter:MaxPullPoints",
    };
    reply(400, v.fault("Receiver", code, why), op)
}

/// Answers an event or clock operation; `None` for every other operation
/// (and for event operations on a camera without events).
pub(super) fn handle(
    ctx: &mut Ctx<'_>,
    v: &Vars<'_>,
    target: &str,
    op_node: roxmltree::Node<'_, '_>,
    ns: &str,
    op: &str,
) -> Option<Reply> {
    let now = ctx.camera_now();
    ctx.events.sync(ctx.fault, now);
    let events = ctx.camera.flavour.has_events();
    let strict = ctx.camera.flavour.requires_ws_addressing();
    Some(match (ns, op) {
        (NS_EVENTS, "CreatePullPointSubscription") if events => {
            if strict && let Err(r) = addressed(v, op_node, op, ACTION_CREATE_PULL_POINT) {
                return Some(r);
            }
            let Some(want) = termination(xml::child(op_node, "InitialTerminationTime"), now) else {
                return Some(bad(
                    v,
                    op,
                    "InitialTerminationTime is not a duration or time",
                ));
            };
            match ctx.events.create(now, want) {
                Ok((id, end)) => {
                    let path = ctx.camera.flavour.info().device_path;
                    let (addr, params) = if strict {
                        let p = format!(
                            r#"<wsa5:ReferenceParameters><dom0:SubscriptionId xmlns:dom0="{NS_AXIS_EVENT}">{id}</dom0:SubscriptionId></wsa5:ReferenceParameters>"#
                        );
                        (ctx.camera.service_xaddr(path), p)
                    } else {
                        let a = ctx.camera.service_xaddr(&format!("{path}/pullpoint/{id}"));
                        (a, String::new())
                    };
                    let body = format!(
                        concat!(
                            r#"<tev:CreatePullPointSubscriptionResponse xmlns:tev="{ev}" xmlns:wsnt="{nt}" xmlns:wsa5="http://www.w3.org/2005/08/addressing">"#,
                            "<tev:SubscriptionReference><wsa5:Address>{addr}</wsa5:Address>{params}</tev:SubscriptionReference>",
                            "<wsnt:CurrentTime>{now}</wsnt:CurrentTime><wsnt:TerminationTime>{end}</wsnt:TerminationTime>",
                            "</tev:CreatePullPointSubscriptionResponse>"
                        ),
                        ev = NS_EVENTS,
                        nt = NS_WSNT,
                        addr = xml::escape(&addr),
                        params = params,
                        now = stamp(now),
                        end = stamp(end),
                    );
                    reply(200, v.envelope(&body), op)
                }
                Err(e) => no_sub(v, op, e),
            }
        }
        (NS_EVENTS, "PullMessages") if events => {
            let id = match subscription(ctx, v, target, op_node, op, ACTION_PULL_MESSAGES) {
                Ok(id) => id,
                Err(r) => return Some(r),
            };
            let wait = xml::child(op_node, "Timeout")
                .and_then(xml::text)
                .and_then(|t| parse_xs_duration(&t))
                .unwrap_or(Duration::ZERO)
                .min(MAX_PULL_WAIT);
            let limit = xml::child(op_node, "MessageLimit")
                .and_then(xml::text)
                .and_then(|t| t.trim().parse::<usize>().ok())
                .unwrap_or(100)
                .max(1);
            let p = PendingPull {
                sub: id,
                limit,
                wait,
            };
            pull_again(ctx, p)
        }
        (NS_WSNT, "Renew") if events => {
            let id = match subscription(ctx, v, target, op_node, op, ACTION_RENEW) {
                Ok(id) => id,
                Err(r) => return Some(r),
            };
            let Some(want) = termination(xml::child(op_node, "TerminationTime"), now) else {
                return Some(bad(v, op, "TerminationTime is not a duration or time"));
            };
            match ctx.events.renew(id, now, want) {
                Ok(end) => {
                    let body = format!(
                        r#"<wsnt:RenewResponse xmlns:wsnt="{NS_WSNT}"><wsnt:TerminationTime>{}</wsnt:TerminationTime><wsnt:CurrentTime>{}</wsnt:CurrentTime></wsnt:RenewResponse>"#,
                        stamp(end),
                        stamp(now)
                    );
                    reply(200, v.envelope(&body), op)
                }
                Err(e) => no_sub(v, op, e),
            }
        }
        (NS_WSNT, "Unsubscribe") if events => {
            let id = match subscription(ctx, v, target, op_node, op, ACTION_UNSUBSCRIBE) {
                Ok(id) => id,
                Err(r) => return Some(r),
            };
            match ctx.events.unsubscribe(id) {
                Ok(()) => reply(
                    200,
                    v.envelope(&format!(
                        r#"<wsnt:UnsubscribeResponse xmlns:wsnt="{NS_WSNT}"/>"#
                    )),
                    op,
                ),
                Err(e) => no_sub(v, op, e),
            }
        }
        (NS_DEVICE, "SetSystemDateAndTime") => set_date_time(ctx, v, op_node, op),
        (NS_DEVICE, "SetNTP") => {
            let server = xml::find(op_node, "NTPManual").and_then(|m| {
                ["IPv4Address", "DNSname", "IPv6Address"]
                    .iter()
                    .find_map(|n| xml::find_text(m, n))
            });
            let Some(server) = server else {
                return Some(bad(v, op, "SetNTP without an NTPManual server"));
            };
            ctx.events.ntp_server = Some(server);
            if ctx.events.ntp {
                ctx.events.clock_adjust = -ctx.skew();
            }
            let tds = v.camera.flavour.info().prefixes.tds;
            reply(200, v.envelope(&format!("<{tds}:SetNTPResponse/>")), op)
        }
        _ => return None,
    })
}

fn set_date_time(
    ctx: &mut Ctx<'_>,
    v: &Vars<'_>,
    op_node: roxmltree::Node<'_, '_>,
    op: &str,
) -> Reply {
    let kind = xml::child(op_node, "DateTimeType").and_then(xml::text);
    match kind.as_deref() {
        Some("NTP") => {
            ctx.events.ntp = true;
            // Synchronised at once: the clock reads real time again.
            ctx.events.clock_adjust = -ctx.skew();
        }
        Some("Manual") => {
            let Some(utc) = xml::child(op_node, "UTCDateTime").and_then(date_time) else {
                return bad(v, op, "Manual time without a valid UTCDateTime");
            };
            ctx.events.ntp = false;
            ctx.events.clock_adjust = utc - (ctx.now_utc + ctx.skew());
        }
        _ => return bad(v, op, "DateTimeType must be Manual or NTP"),
    }
    if let Some(tz) = xml::path_text(op_node, &["TimeZone", "TZ"])
        && device_drivers::onvif::posix_tz_offset(&tz).is_none()
    {
        return bad(v, op, "TZ is not a POSIX time zone");
    }
    let tds = v.camera.flavour.info().prefixes.tds;
    reply(
        200,
        v.envelope(&format!("<{tds}:SetSystemDateAndTimeResponse/>")),
        op,
    )
}

fn date_time(node: roxmltree::Node<'_, '_>) -> Option<OffsetDateTime> {
    let n = |path: &[&str]| -> Option<i64> { xml::path_text(node, path)?.trim().parse().ok() };
    let date = Date::from_calendar_date(
        i32::try_from(n(&["Date", "Year"])?).ok()?,
        Month::try_from(u8::try_from(n(&["Date", "Month"])?).ok()?).ok()?,
        u8::try_from(n(&["Date", "Day"])?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(n(&["Time", "Hour"])?).ok()?,
        u8::try_from(n(&["Time", "Minute"])?).ok()?,
        u8::try_from(n(&["Time", "Second"])?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

fn message_xml(v: &Vars<'_>, flavour: Flavour, m: &Message) -> String {
    let Some((topic, item)) = m.condition.topic(flavour) else {
        return String::new();
    };
    let tt = v.camera.flavour.info().prefixes.tt;
    let value = match (flavour, m.condition, m.active) {
        (Flavour::Axis, Condition::Tamper, true) => "1",
        (Flavour::Axis, Condition::Tamper, false) => "0",
        (_, _, true) => "true",
        (_, _, false) => "false",
    };
    let op = if m.initialized {
        "Initialized"
    } else {
        "Changed"
    };
    format!(
        concat!(
            r#"<wsnt:NotificationMessage xmlns:tns1="http://www.onvif.org/ver10/topics" xmlns:tnsaxis="http://www.axis.com/2009/event/topics">"#,
            r#"<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">{topic}</wsnt:Topic>"#,
            r#"<wsnt:Message><{tt}:Message UtcTime="{at}" PropertyOperation="{op}">"#,
            r#"<{tt}:Source><{tt}:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSource_1"/></{tt}:Source>"#,
            r#"<{tt}:Data><{tt}:SimpleItem Name="{item}" Value="{value}"/></{tt}:Data>"#,
            "</{tt}:Message></wsnt:Message></wsnt:NotificationMessage>"
        ),
        topic = topic,
        tt = tt,
        at = stamp(m.at),
        op = op,
        item = item,
        value = value,
    )
}

/// Answers a pull with whatever is queued now (possibly nothing); used by
/// the server when a waiting PullMessages wakes up or times out. Its
/// `pull` is set again when nothing is queued yet.
pub fn pull_again(ctx: &mut Ctx<'_>, p: PendingPull) -> Reply {
    let v = Vars { camera: ctx.camera };
    let now = ctx.camera_now();
    ctx.events.sync(ctx.fault, now);
    let (msgs, end) = match ctx.events.pull(p.sub, p.limit) {
        Ok(x) => x,
        Err(e) => return no_sub(&v, "PullMessages", e),
    };
    let flavour = ctx.camera.flavour;
    let all: String = msgs.iter().map(|m| message_xml(&v, flavour, m)).collect();
    let body = format!(
        concat!(
            r#"<tev:PullMessagesResponse xmlns:tev="{ev}" xmlns:wsnt="{nt}">"#,
            "<tev:CurrentTime>{now}</tev:CurrentTime><tev:TerminationTime>{end}</tev:TerminationTime>",
            "{all}</tev:PullMessagesResponse>"
        ),
        ev = NS_EVENTS,
        nt = NS_WSNT,
        now = stamp(now),
        end = stamp(end),
        all = all,
    );
    let mut r = reply(200, v.envelope(&body), "PullMessages");
    if msgs.is_empty() {
        r.pull = Some(p);
    }
    r
}
