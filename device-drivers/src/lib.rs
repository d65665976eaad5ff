//! Protocol libraries for Township Gateway.
//!
//! Each protocol is a pure core (bytes in, values out; no sockets, no clock
//! reads) plus one thin module doing the tokio IO around it (STYLE.md §1):
//!
//! | module | what | IO module |
//! |---|---|---|
//! | [`xml`] | safe, prefix-agnostic XML reading (size cap, DTD refused) | — |
//! | [`wsd`] | WS-Discovery Probe / ProbeMatches / Hello / Bye | [`wsd_io`] |
//! | [`soap`] | SOAP 1.2 envelopes, WS-UsernameToken, faults | [`onvif_client`] |
//! | [`onvif`] | ONVIF device and media responses | [`onvif_client`] |
//! | [`backoff`] | auth-failure backoff per device (pure state machine) | — |
//! | [`rtsp`] | RTSP responses, SDP stream metadata, H.264 RTP packetising | [`rtsp_probe`] |
//! | [`rtsp_probe`] | RTSP DESCRIBE metadata and timed stream samples (on retina) | — |

#[cfg(feature = "io")]
#[cfg(feature = "io")]
pub mod backoff;
pub mod onvif;
#[cfg(feature = "io")]
pub mod onvif_client;
pub mod rtsp;
#[cfg(feature = "io")]
pub mod rtsp_probe;
pub mod soap;
pub mod wsd;
#[cfg(feature = "io")]
pub mod wsd_io;
pub mod xml;
