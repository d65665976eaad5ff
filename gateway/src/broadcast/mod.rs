//! Broadcasts to the horns (issue 7): the shared vocabulary, the per-horn
//! engine, signed emergency commands, and the runtime that drives the
//! speaker drivers.
//!
//! | module | owns |
//! |---|---|
//! | `tgw_core::broadcast` (re-exported) | [`Priority`], [`Target`], [`OnPreempt`], [`Ms`], the per-horn [`engine`] and [`signed`] commands (pure) |
//! | [`audio`] | the audio pipeline: decode, resample to 8 kHz, loudness, TTS, the asset store |
//! | [`render`] | a programme → PCM segments (one per repeat), the built-in chime, volume |
//! | [`record`] | broadcasts, per-horn reports, fired occurrences, timetable versions, CAP alerts in SQLite |
//! | [`feeds`] | polling CAP feeds over HTTP (a CAP document or an Atom feed of them) |
//! | [`metered`] | a `ReportSink` that counts horn and broadcast reports in `/metrics` |
//! | [`live`] | live paging (issue 14): codecs, jitter buffer, 8 kHz conditioning, the page session |
//! | [`runtime`] | the task that owns the engine, scheduler and warning desk and drives the horns |

pub use tgw_core::broadcast::*;

pub mod aired;
pub mod audio;
pub mod feeds;
pub mod live;
pub mod metered;
pub mod record;
pub mod render;
pub mod runtime;

/// The render recipe of a timetable programme (a programme without a
/// volume plays at each horn's own).
pub fn recipe_of(p: &tgw_core::schedule::Programme) -> render::Recipe {
    use render::Part;
    use tgw_core::schedule::{Chime, Item};
    let chime = |c: &Option<Chime>| {
        c.as_ref().map(|c| match c {
            Chime::Builtin => Part::Chime,
            Chime::Asset(a) => Part::Asset(a.clone()),
        })
    };
    render::Recipe {
        pre: chime(&p.pre_chime),
        items: p
            .items
            .iter()
            .map(|i| match i {
                Item::Tts(t) => Part::Tts(t.clone()),
                Item::Asset(a) => Part::Asset(a.clone()),
            })
            .collect(),
        post: chime(&p.post_chime),
        repeat: p.repeat,
        interval: p.interval,
        volume: p.volume,
    }
}
