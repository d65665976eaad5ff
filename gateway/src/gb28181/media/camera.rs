//! Pulling a camera for a relay: RTSP over TCP with retina (DESCRIBE, SETUP
//! of the first H.264/H.265 track, PLAY), then access units in Annex B with
//! their 90 kHz time. Every exchange and every wait for a frame has a
//! timeout; errors name the camera's `host:port` and never carry its login.

use std::time::Duration;

use device_drivers::gb28181::ps::{self, ParameterSets, VideoCodec};
use futures::StreamExt as _;

use crate::gb28181::media_api::{MediaError, MediaSource};

/// One access unit, ready for the PS muxer.
pub(super) struct Frame {
    /// Annex B, AUDs dropped, parameter sets before keyframes.
    pub annexb: Vec<u8>,
    /// 90 kHz presentation time from the start of the stream.
    pub pts: u64,
    /// An IDR / IRAP picture.
    pub keyframe: bool,
}

/// A playing camera stream.
pub(super) struct Camera {
    demuxed: retina::client::Demuxed,
    index: usize,
    codec: VideoCodec,
    params: ParameterSets,
    peer: String,
    timeout: Duration,
    secrets: Vec<String>,
}

fn params_of(codec: VideoCodec, stream: Option<&retina::client::Stream>) -> ParameterSets {
    match stream.and_then(|s| s.parameters()) {
        Some(retina::codec::ParametersRef::Video(v)) => match codec {
            VideoCodec::H264 => ParameterSets::from_avcc(v.extra_data()),
            VideoCodec::H265 => ParameterSets::from_hvcc(v.extra_data()),
        }
        .unwrap_or_default(),
        _ => ParameterSets::default(),
    }
}

impl Camera {
    /// DESCRIBE, SETUP and PLAY `src` (each within `timeout`).
    pub async fn open(src: &MediaSource, timeout: Duration) -> Result<Camera, MediaError> {
        let mut url = url::Url::parse(src.rtsp_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "rtsp" | "rtsps") && u.host_str().is_some())
            .ok_or_else(|| MediaError::Camera(format!("{}: not an rtsp:// URL", src.device_id)))?;
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let peer = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port().unwrap_or(554)
        );
        let creds = src.username.as_ref().map(|u| retina::client::Credentials {
            username: u.clone(),
            password: src.password.clone().unwrap_or_default(),
        });
        let secrets: Vec<String> = src
            .password
            .iter()
            .filter(|p| p.len() >= 3)
            .cloned()
            .collect();
        let mut cam = Camera {
            demuxed: Self::play(&url, creds, &peer, timeout, &secrets).await?,
            index: 0,
            codec: VideoCodec::H264,
            params: ParameterSets::default(),
            peer,
            timeout,
            secrets,
        };
        let (index, codec) = cam
            .demuxed
            .streams()
            .iter()
            .enumerate()
            .find_map(|(i, s)| match (s.media(), s.encoding_name()) {
                ("video", "h264") => Some((i, VideoCodec::H264)),
                ("video", "h265") => Some((i, VideoCodec::H265)),
                _ => None,
            })
            .ok_or_else(|| cam.fail("DESCRIBE", "no H.264 or H.265 video track".into()))?;
        cam.index = index;
        cam.codec = codec;
        cam.params = params_of(codec, cam.demuxed.streams().get(index));
        Ok(cam)
    }

    async fn play(
        url: &url::Url,
        creds: Option<retina::client::Credentials>,
        peer: &str,
        timeout: Duration,
        secrets: &[String],
    ) -> Result<retina::client::Demuxed, MediaError> {
        let err = |op: &str, e: &dyn std::fmt::Display| {
            let mut text: String = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(200)
                .collect();
            for s in secrets {
                text = text.replace(s.as_str(), "***");
            }
            MediaError::Camera(format!("{op} to {peer}: {text}"))
        };
        let auth = |op: &str, e: &retina::Error| match e.status_code() {
            Some(401 | 403) => MediaError::Camera(format!("{op} to {peer}: credentials refused")),
            _ => err(op, e),
        };
        let late = |op: &str| MediaError::Camera(format!("{op} to {peer}: timed out"));
        let opts = retina::client::SessionOptions::default()
            .creds(creds)
            .user_agent(concat!("tgw/", env!("CARGO_PKG_VERSION")).to_string());
        let mut session = tokio::time::timeout(
            timeout,
            retina::client::Session::describe(url.clone(), opts),
        )
        .await
        .map_err(|_| late("DESCRIBE"))?
        .map_err(|e| auth("DESCRIBE", &e))?;
        let index = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && matches!(s.encoding_name(), "h264" | "h265"))
            .ok_or_else(|| {
                MediaError::Camera(format!("DESCRIBE to {peer}: no H.264 or H.265 video track"))
            })?;
        let setup = retina::client::SetupOptions::default()
            .transport(retina::client::Transport::Tcp(Default::default()));
        tokio::time::timeout(timeout, session.setup(index, setup))
            .await
            .map_err(|_| late("SETUP"))?
            .map_err(|e| auth("SETUP", &e))?;
        let playing = tokio::time::timeout(
            timeout,
            session.play(retina::client::PlayOptions::default()),
        )
        .await
        .map_err(|_| late("PLAY"))?
        .map_err(|e| auth("PLAY", &e))?;
        playing.demuxed().map_err(|e| err("PLAY", &e))
    }

    fn fail(&self, op: &str, why: String) -> MediaError {
        let mut why = why;
        for s in &self.secrets {
            why = why.replace(s.as_str(), "***");
        }
        MediaError::Camera(format!("{op} to {}: {why}", self.peer))
    }

    /// The stream's codec.
    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// `host:port` of the camera.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// The next video access unit; an error when the stream ends, fails or
    /// sends no frame within the timeout (camera loss).
    pub async fn next(&mut self) -> Result<Frame, MediaError> {
        loop {
            let item = match tokio::time::timeout(self.timeout, self.demuxed.next()).await {
                Err(_) => return Err(self.fail("stream", "no frame within the timeout".into())),
                Ok(None) => return Err(self.fail("stream", "the camera ended the stream".into())),
                Ok(Some(Err(e))) => return Err(self.fail("stream", e.to_string())),
                Ok(Some(Ok(item))) => item,
            };
            let retina::codec::CodecItem::VideoFrame(f) = item else {
                continue;
            };
            if f.stream_id() != self.index {
                continue;
            }
            if f.has_new_parameters() {
                let p = params_of(self.codec, self.demuxed.streams().get(self.index));
                if !p.nals.is_empty() {
                    self.params = p;
                }
            }
            let keyframe = f.is_random_access_point();
            let pts = f.timestamp().elapsed().rem_euclid(1 << 33) as u64;
            let annexb = ps::to_annexb(self.codec, f.data(), keyframe, &self.params)
                .map_err(|e| self.fail("stream", e.to_string()))?;
            return Ok(Frame {
                annexb,
                pts,
                keyframe,
            });
        }
    }
}
