//! The early-warning desk (pure): CAP alerts in, broadcast decisions out.
//!
//! Feeds (HTTP polling, MQTT) are read elsewhere; they hand bytes to
//! [`parse_feed`] (a single CAP `<alert>` or an Atom `<feed>`), fetch the
//! linked alerts through [`device_drivers::cap::parse`], and give each alert
//! to [`Desk::handle`] with the SHA-256 of its bytes and `now`. The desk
//! answers with a [`Decision`]: play a [`Plan`], cancel a running broadcast,
//! or ignore with a reason. Nothing here does IO or reads a clock.
//!
//! Rules (`docs/warnings.md` has the operator's version):
//!
//! - An identifier is handled once: the same identifier again is ignored
//!   (idempotent), also when its content differs (reported as such).
//! - `status` must be in `public_statuses` (default only `Actual`). An
//!   `Exercise` or `Test` alert that is not public plays only on
//!   `test_targets`, and only when that list is not empty. `System` and
//!   `Draft` never play.
//! - `sent` must be at most `max_age_secs` (default 1 h) before `now` and at
//!   most `max_future_secs` (default 5 min) after it, for every source;
//!   otherwise the alert is ignored with a reason starting `stale:` (and
//!   remembered, so a feed repeating it is quiet) or `from-the-future:` (not
//!   remembered: it may play once the clocks agree). `expires` is compared
//!   with `now` without tolerance (`expired at …`).
//! - `msgType` `Ack` and `Error` never play. `Update` and `Cancel` must
//!   reference (sender and identifier) an alert the desk has seen, else they
//!   are ignored naming the reference. An `Update` replaces the broadcast of
//!   the alert it references ([`Plan::replaces`]); if the update no longer
//!   concerns us (expired, urgency `Past`, area left) the running broadcast is
//!   cancelled instead. A `Cancel` stops it. Chains (alert → update → update)
//!   are followed: a reference to any message of a chain reaches the
//!   broadcast currently playing for it.
//! - Of the `info` blocks, those expired (`expires <= now`), with urgency
//!   `Past`, or matching no configured area are dropped. Of the rest the one
//!   in the first preferred language (`languages`) wins, then the most severe.
//! - Area matching, per village ([`AreaMap`]):
//!   - geocodes: administrative codes are normalised first (trailing zero
//!     levels dropped: `320115000000` → `320115`). An alert code covers every
//!     configured code it is a prefix of (county `320115` covers village
//!     `320115106201`). When it covers none, the configured codes that are
//!     prefixes of it compete and the longest wins (an alert for village
//!     `320115106203` reaches the villages configured with `320115106`, or
//!     failing that `320115`). Any `valueName` is accepted.
//!   - polygons and circles against the village `outline`: an approximate,
//!     planar test in latitude/longitude degrees (no antimeridian handling).
//!     Polygons intersect when a vertex of one lies inside the other or two
//!     edges cross; a circle reaches the outline when its centre is inside,
//!     a vertex is within the radius (haversine), or an edge is (local
//!     equirectangular projection). Bounding boxes are compared first.
//! - The text is headline, description, instruction in that order, each
//!   ended with a full stop when it has none, trimmed to `max_text`
//!   characters at the last sentence end (`。！？；!?;`, `.` before a space,
//!   a line break) in the second half of the allowance, else at the last
//!   comma there, else hard.
//! - State (identifiers seen, broadcasts running) survives restarts through
//!   [`Desk::snapshot`] / [`Desk::restore`]; at most [`MAX_REMEMBERED`]
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the `[warnings]` section: feeds, statuses, areas, severity map; validation |
//! | [`decision`] | [`Plan`], [`Decision`]: what the desk answers; broadcast ids |
//! | [`desk`] | [`Desk`]: the memory of alerts and chains, and the rules above |
//! | [`area`] | which configured villages an alert's geocodes, polygons and circles reach |
//! | [`text`] | the text read out: headline, description, instruction, trimmed on sentences |
//! | [`feed`] | a polled document (CAP alert or Atom feed) → [`FeedEntry`]s |

pub mod area;
pub mod config;
pub mod decision;
pub mod desk;
pub mod feed;
pub mod text;

pub use area::{circle_reaches, haversine_km, normalize_code, polygons_intersect};
pub use config::{AreaMap, ConfigError, Feed, MqttTrust, SeverityMap, WarningsConfig};
pub use decision::{Decision, Plan, broadcast_id, sha256, to_ms};
pub use desk::{Desk, DeskSnapshot, MAX_REMEMBERED, Running, SnapshotError};
pub use feed::{FeedEntry, FeedError, MAX_FEED_BYTES, MAX_FEED_ENTRIES, parse_feed};
pub use text::{compose_text, trim_to_sentence};

#[cfg(test)]
mod tests;
