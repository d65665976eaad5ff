//! Live paging (实时喊话, issue 14): an operator speaks from the dashboard
//! or a phone; the frames arrive over a WebSocket (`http/paging.rs`) and
//! leave for the horns as a broadcast of unknown length whose audio is a
//! stream ([`crate::broadcast::runtime::LiveFeed`]): the engine preempts,
//! queues and resumes around it like any other priority.
//!
//! ```text
//! WebSocket frame ─► dsp::Decoder (pcm16, or opus via libopus)
//!   ─► dsp::Conditioner (→ 8 kHz, limiter, 20 ms frames)
//!   ─► jitter::JitterBuffer (adaptive 40–200 ms) ─► playout clock (20 ms)
//!   ─► AirTap (what aired) ─► LiveFeed ─► one task per horn (RTP, SIP)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`dsp`] | [`dsp::Codec`], [`dsp::Decoder`], [`dsp::Conditioner`] (resampling, limiter) |
//! | [`jitter`] | [`jitter::JitterBuffer`] (pure) |
//! | [`session`] | [`session::Session`]: one page's loop, [`session::AirTap`], why it ended |

pub mod dsp;
pub mod jitter;
pub mod session;

pub use session::{AirTap, EndReason, Inbound, Session, Summary};
