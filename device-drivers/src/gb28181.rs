//! GB/T 28181 (2016/2022) as a lower platform (下级平台), pure:
//!
//! | module | what |
//! |---|---|
//! | [`manscdp`] | MANSCDP XML bodies: parse any, build Keepalive, paged Catalog, DeviceInfo, DeviceStatus, Alarm, catalog NOTIFY; GB2312 or UTF-8 |
//! | [`register`] | registration + keepalive state machine with digest (MD5/SHA-256), refresh, re-register after 3 missed keepalives, 校时 date |
//! | [`dialog`] | answers to the platform's requests, subscriptions and their in-dialog NOTIFYs |
//! | [`ps`] | MPEG-PS muxer for live video |
//! | [`sdp`] | the platform's INVITE offer and our answer |
//! | [`rtp_ps`] | PS over RTP, RFC 4571 framing for TCP |
//! | [`stream`] | SIP over TCP: messages cut from the stream by `Content-Length`, CRLF pings, size cap |
//! | [`voice`] | voice broadcast: the Broadcast notify and answer, our audio offer, G.711 RTP in |
//!
//! SIP messages themselves are [`crate::sip`]'s (one codec for horns and GB).

pub mod dialog;
pub mod manscdp;
pub mod ps;
pub mod register;
pub mod rtp_ps;
pub mod sdp;
pub mod stream;
pub mod txn;
pub mod voice;
