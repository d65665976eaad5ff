//! Protocol libraries for Township Gateway.
//!
//! Each protocol is a pure core (bytes in, values out; no sockets, no clock
//! reads) plus one thin module doing the tokio IO around it (STYLE.md §1):
//!
//! | module | what | IO module |
//! |---|---|---|
//! | [`xml`] | safe, prefix-agnostic XML reading (size cap, DTD refused) | — |
//! | [`ssdp`] | SSDP M-SEARCH / search responses / NOTIFY (network speakers) | [`ssdp_io`] |
//! | [`mdns`] | mDNS / DNS-SD queries and answers (PTR, SRV, TXT, A; compression) for horns | [`mdns_io`] |
//! | [`wsa`] | WS-Addressing 1.0 request headers and echoed reference parameters (event calls) | [`onvif_client`] |
//! | [`wsd`] | WS-Discovery Probe / ProbeMatches / Hello / Bye | [`wsd_io`] |
//! | [`soap`] | SOAP 1.2 envelopes, WS-UsernameToken, faults | [`onvif_client`] |
//! | [`onvif`] | ONVIF device and media responses | [`onvif_client`] |
//! | [`onvif_events`] | ONVIF PullPoint events (create, pull, renew, unsubscribe), topic → kind, clock setters | [`onvif_client`] |
//! | [`cred_scope`] | which hosts a camera's login may go to, and when Basic over plain HTTP is allowed | [`onvif_client`], `rtsp_probe` callers |
//! | [`local_error`] | whether a failed call failed on our side (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL), not the device's | — |
//! | [`backoff`] | auth-failure backoff per device (pure state machine) | — |
//! | [`rtsp`] | RTSP responses, SDP stream metadata, H.264 RTP packetising | [`rtsp_probe`] |
//! | [`rtsp_probe`] | RTSP DESCRIBE metadata and timed stream samples (on retina) | — |
//! | [`gb28181`] | GB/T 28181 signalling: MANSCDP bodies, registration/keepalive, dialogs (the lower-platform side) | `tgw::gb28181` |
//! | [`g711`] | G.711 µ-law / A-law codec, test tones | — |
//! | [`gb28181`] | GB/T 28181 media: MPEG-PS muxer, INVITE SDP offer/answer, PS over RTP (RFC 4571 for TCP) | `tgw::gb28181::media` |
//! | [`rtp`] | RTP packetising of 20 ms G.711 frames, RTCP sender reports, pacing math | [`rtp_io`] |
//! | [`sip`] | SIP messages, auto-answer headers, digest, SDP offer/answer, INVITE client state machine | [`sip_io`] |
//! | [`axis`] | Axis VAPIX `audio/transmit.cgi` request head and response parsing | [`axis`] (IO part) |
//! | [`cloud`] | 4G / cloud horn: WAV writer/reader, MQTT play/ping/status JSON, expiring audio tokens | `speaker` (`CloudSpeaker`) |
//! | [`cap`] | CAP 1.2 early-warning alerts (national release system shape), validated | `tgw::warning` |
//! | [`speaker`] | `SpeakerUri` parsing; the one `Speaker` trait (prepare, start at T0, stream, stop, health) and its drivers | — |

pub mod axis;
#[cfg(feature = "io")]
#[cfg(feature = "io")]
pub mod backoff;
pub mod cap;
pub mod cloud;
pub mod cred_scope;
pub mod g711;
pub mod gb28181;
pub mod local_error;
pub mod mdns;
#[cfg(feature = "io")]
pub mod mdns_io;
pub mod onvif;
#[cfg(feature = "io")]
pub mod onvif_client;
pub mod onvif_events;
pub mod rtp;
#[cfg(feature = "io")]
pub mod rtp_io;
pub mod rtsp;
#[cfg(feature = "io")]
pub mod rtsp_probe;
pub mod sip;
#[cfg(feature = "io")]
pub mod sip_io;
pub mod soap;
pub mod speaker;
pub mod ssdp;
#[cfg(feature = "io")]
pub mod ssdp_io;
pub mod wsa;
pub mod wsd;
#[cfg(feature = "io")]
pub mod wsd_io;
pub mod xml;
