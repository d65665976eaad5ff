//! The server side of GB/T 28181 dialogs, pure: answers to the platform's
//! requests (MESSAGE queries, SUBSCRIBE, INVITE/ACK/BYE/CANCEL) and the
//! in-dialog NOTIFYs of a subscription.

use std::net::SocketAddr;

use crate::sip::{self, Headers, Request, Response};

/// An answer to `req` with our `to_tag`, an optional Contact and body.
pub fn answer(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: &str,
    contact: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> Vec<u8> {
    let mut r = Response::to_request(req, status, reason, Some(to_tag));
    if let Some(c) = contact {
        r.headers.push("Contact", c);
    }
    r.headers.push("User-Agent", "tgw");
    if let Some((ct, b)) = body {
        r.headers.push("Content-Type", ct);
        r.body = b;
    }
    r.to_bytes()
}

/// The reason phrase of the statuses we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        _ => "Server Internal Error",
    }
}

/// The user part of a SIP URI or name-addr (`<sip:3402...@3402000000>`).
pub fn user_of(name_addr: &str) -> Option<&str> {
    let spec = sip::addr_spec(name_addr);
    let rest = spec
        .strip_prefix("sip:")
        .or_else(|| spec.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    (!user.is_empty()).then_some(user)
}

/// What a subscription is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    /// Catalog changes.
    Catalog,
    /// Alarms.
    Alarm,
}

/// One subscription of the platform (we are the notifier).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// What it is to.
    pub kind: SubKind,
    /// The dialog's Call-ID.
    pub call_id: String,
    /// Where NOTIFYs go (the subscriber's Contact, else its From URI).
    pub remote_target: String,
    /// The subscriber's From (with its tag): our To.
    pub remote: String,
    /// Our To tag: our From tag.
    pub local_tag: String,
    /// Our identity as the platform addressed us (its To without tag).
    pub local: String,
    /// The `Event` header value to echo.
    pub event: String,
    /// The subscriber's SN, echoed in NOTIFY bodies.
    pub sn: u32,
    /// Our CSeq in this dialog.
    pub cseq: u32,
    /// Expiry in seconds from `since_secs`.
    pub expires: u32,
    /// When it was (re)subscribed, in the caller's seconds.
    pub since_secs: u64,
    /// The address the SUBSCRIBE came from, set by the IO side: NOTIFYs go
    /// back there (through NAT, as the answer did), not to a Contact the
    /// platform may not be reachable at.
    pub source: Option<std::net::SocketAddr>,
}

impl Subscription {
    /// The subscription a SUBSCRIBE asks for; `None` without From/To/Call-ID.
    pub fn from_request(
        req: &Request,
        kind: SubKind,
        sn: u32,
        local_tag: &str,
        now_secs: u64,
    ) -> Option<Subscription> {
        let from = req.headers.get("From")?;
        let to = req.headers.get("To")?;
        let call_id = req.headers.get("Call-ID")?;
        let target = req
            .headers
            .get("Contact")
            .map(sip::addr_spec)
            .unwrap_or_else(|| sip::addr_spec(from));
        let expires = req
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse().ok())
            .unwrap_or(3600u32)
            .min(86_400);
        Some(Subscription {
            kind,
            call_id: call_id.to_string(),
            remote_target: target.to_string(),
            remote: from.to_string(),
            local_tag: local_tag.to_string(),
            local: format!("<{}>", sip::addr_spec(to)),
            event: req
                .headers
                .get("Event")
                .unwrap_or(match kind {
                    SubKind::Catalog => "Catalog",
                    SubKind::Alarm => "presence",
                })
                .to_string(),
            sn,
            cseq: 0,
            expires,
            since_secs: now_secs,
            source: None,
        })
    }

    /// Seconds left at `now_secs` (0 once expired).
    pub fn remaining(&self, now_secs: u64) -> u32 {
        let end = self.since_secs + u64::from(self.expires);
        end.saturating_sub(now_secs).min(u64::from(u32::MAX)) as u32
    }

    /// An in-dialog NOTIFY carrying `body` from `local_addr` (Via) with
    /// `branch`.
    pub fn notify(
        &mut self,
        body: Vec<u8>,
        content_type: &str,
        local_addr: SocketAddr,
        tcp: bool,
        branch: &str,
        now_secs: u64,
    ) -> Vec<u8> {
        self.cseq += 1;
        let left = self.remaining(now_secs);
        let mut h = Headers::default();
        let t = if tcp { "TCP" } else { "UDP" };
        h.push(
            "Via",
            format!("SIP/2.0/{t} {local_addr};rport;branch={branch}"),
        );
        h.push("Max-Forwards", "70");
        h.push("From", format!("{};tag={}", self.local, self.local_tag));
        h.push("To", self.remote.clone());
        h.push("Call-ID", self.call_id.clone());
        h.push("CSeq", format!("{} NOTIFY", self.cseq));
        h.push("Event", self.event.clone());
        h.push(
            "Subscription-State",
            if left > 0 {
                format!("active;expires={left}")
            } else {
                "terminated;reason=timeout".to_string()
            },
        );
        h.push("Content-Type", content_type);
        h.push("User-Agent", "tgw");
        Request {
            method: "NOTIFY".into(),
            uri: self.remote_target.clone(),
            headers: h,
            body,
        }
        .to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        match sip::parse(text.replace('\n', "\r\n").as_bytes()).expect("parse") {
            sip::Message::Request(r) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    /// A SUBSCRIBE without From is no subscription (no panic, no default).
    #[test]
    fn subscribe_without_from_is_refused() {
        let r = req("SUBSCRIBE sip:1@2 SIP/2.0\nTo: <sip:1@2>\nCall-ID: x\nCSeq: 1 SUBSCRIBE\n\n");
        assert!(Subscription::from_request(&r, SubKind::Catalog, 1, "t", 0).is_none());
    }

    /// NOTIFYs go to the Contact, carry the dialog's tags and count down.
    #[test]
    fn notify_in_dialog() {
        let r = req(concat!(
            "SUBSCRIBE sip:34020000002000000099@3402000000 SIP/2.0\n",
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\n",
            "From: <sip:34020000002000000001@3402000000>;tag=abc\n",
            "To: <sip:34020000002000000099@3402000000>\n",
            "Call-ID: sub1\nCSeq: 7 SUBSCRIBE\n",
            "Contact: <sip:34020000002000000001@10.0.0.1:5060>\n",
            "Event: Catalog;id=1\nExpires: 600\n\n"
        ));
        let mut s = Subscription::from_request(&r, SubKind::Catalog, 9, "me", 100).expect("sub");
        assert_eq!(s.remaining(400), 300);
        let n = s.notify(
            b"x".to_vec(),
            "Application/MANSCDP+xml",
            "127.0.0.1:5060".parse().unwrap(),
            false,
            "z9hG4bKb",
            400,
        );
        let m = match sip::parse(&n).unwrap() {
            sip::Message::Request(r) => r,
            _ => panic!(),
        };
        assert_eq!(m.uri, "sip:34020000002000000001@10.0.0.1:5060");
        assert_eq!(
            m.headers.get("To"),
            Some("<sip:34020000002000000001@3402000000>;tag=abc")
        );
        assert_eq!(sip::tag(m.headers.get("From").unwrap()), Some("me"));
        assert_eq!(
            m.headers.get("Subscription-State"),
            Some("active;expires=300")
        );
        assert_eq!(m.headers.get("Event"), Some("Catalog;id=1"));
        assert_eq!(
            user_of(m.headers.get("From").unwrap()),
            Some("34020000002000000099")
        );
    }
}
