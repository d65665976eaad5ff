//! The seam between GB/T 28181 signalling (SIP dialogs, owned by the rest of
//! `gb28181/`) and media (the PS-over-RTP relays, owned by `gb28181/media/`).
//! Signalling turns an INVITE for a camera into [`Media::invite`], its ACK into
//! [`Media::ack`] and BYE/CANCEL/dialog end into [`Media::bye`].

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

/// A boxed future, so that `Media` can be used as `Arc<dyn Media>`.
pub type MediaFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The camera a platform asked to see.
#[derive(Clone)]
pub struct MediaSource {
    /// Our device id (the store's).
    pub device_id: String,
    /// Its 20-digit GB/T 28181 channel id.
    pub channel_id: String,
    /// The RTSP URI to pull, without credentials in it.
    pub rtsp_url: String,
    pub username: Option<String>,
    /// Never logged, never in an error.
    pub password: Option<String>,
}

impl std::fmt::Debug for MediaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSource")
            .field("device_id", &self.device_id)
            .field("channel_id", &self.channel_id)
            .field("rtsp_url", &self.rtsp_url)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why an INVITE was refused; signalling maps each to a SIP status.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// 486 Busy Here.
    #[error("relay limit reached: {active} of {limit} relays in use")]
    Busy { active: usize, limit: usize },
    /// 488 Not Acceptable Here.
    #[error("unacceptable SDP offer: {0}")]
    BadOffer(String),
    /// 500 Server Internal Error (the camera could not be pulled).
    #[error("camera stream unavailable: {0}")]
    Camera(String),
}

impl MediaError {
    /// The SIP status code signalling answers with.
    pub fn sip_status(&self) -> u16 {
        match self {
            MediaError::Busy { .. } => 486,
            MediaError::BadOffer(_) => 488,
            MediaError::Camera(_) => 500,
        }
    }
}

/// One live relay, for status pages and `tgw gb status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RelayInfo {
    pub call_id: String,
    pub channel_id: String,
    /// "udp", "tcp-active" or "tcp-passive".
    pub transport: String,
    /// Where the RTP goes (the platform's media address).
    pub destination: String,
    pub packets: u64,
    pub bytes: u64,
    pub started_unix: i64,
}

/// Media relays, as signalling sees them.
pub trait Media: Send + Sync {
    /// An INVITE with an SDP offer for `source`: check the offer, reserve a
    /// relay, start pulling the camera, and return the SDP answer body
    /// (carrying `local_ip`, or the configured public address).
    fn invite<'a>(
        &'a self,
        call_id: &'a str,
        source: MediaSource,
        offer_sdp: &'a str,
        local_ip: IpAddr,
    ) -> MediaFuture<'a, Result<String, MediaError>>;
    /// The ACK for that INVITE arrived: media may flow.
    fn ack(&self, call_id: &str);
    /// BYE, CANCEL or a dead dialog: stop the relay and free its slot.
    fn bye(&self, call_id: &str);
    /// The relays live now.
    fn active(&self) -> Vec<RelayInfo>;
}

/// Signalling without media: every INVITE is answered 488.
pub struct NoMedia;

impl Media for NoMedia {
    fn invite<'a>(
        &'a self,
        _call_id: &'a str,
        _source: MediaSource,
        _offer_sdp: &'a str,
        _local_ip: IpAddr,
    ) -> MediaFuture<'a, Result<String, MediaError>> {
        Box::pin(async { Err(MediaError::BadOffer("this gateway relays no media".into())) })
    }
    fn ack(&self, _call_id: &str) {}
    fn bye(&self, _call_id: &str) {}
    fn active(&self) -> Vec<RelayInfo> {
        Vec::new()
    }
}
