//! GB/T 28181: the pure halves of the uplink to a county video platform.
//!
//! Media (live video relay): [`ps`] (MPEG-PS muxer), [`sdp`] (the
//! platform's INVITE offer and our answer), [`rtp_ps`] (PS over RTP, RFC 4571
//! framing for TCP).

pub mod ps;
pub mod rtp_ps;
pub mod sdp;
