//! CAP 1.2 (OASIS Common Alerting Protocol, namespace
//! `urn:oasis:names:tc:emergency:cap:1.2`): the pure parser of early-warning
//! messages. Bytes in, [`Alert`] out; no IO, no clock.
//!
//! Every document goes through [`crate::xml`] first, so it is capped at
//! [`MAX_CAP_BYTES`] and refused when it carries a DTD or entity declaration
//! (billion laughs, XXE). Then the CAP rules are checked and every refusal
//! names the element it is about (`alert/info[0]/area[1]/polygon[0]: …`):
//!
//! - required elements: `identifier`, `sender`, `sent`, `status`, `msgType`,
//!   `scope`; per `info`: `category`, `event`, `urgency`, `severity`,
//!   `certainty`; per `area`: `areaDesc`;
//! - enumerated values spelled exactly as CAP 1.2 spells them (`Very Likely`
//!   is read as `Likely`, as the standard allows);
//! - date-times with an explicit offset (`2026-07-15T08:30:00+08:00`). CAP
//!   forbids `Z`; it is accepted anyway because it is unambiguous;
//! - polygons closed (first point = last) with at least 4 points, latitudes
//!   in ±90, longitudes in ±180, circle radii 0–20 000 km;
//! - counts and sizes capped: see the `MAX_*` constants.
//!
//! The Chinese national early-warning release system (国家突发事件预警信息发布系统)
//! publishes this shape: identifiers such as `32011541600000_20260715083000`
//! (6-digit county code, issuing unit, send time), `zh-CN` infos, `+08:00`
//! times and `geocode`s carrying administrative division codes
//! (`tests/fixtures/cap/`).
//!
//! Elements this crate has no use for (`resource`, `audience`, `altitude`,
//! `addresses`, …) are skipped; unknown elements are ignored, as CAP allows
//! extension.

use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::xml::{self, XmlError};

/// The CAP 1.2 XML namespace. Documents without a namespace are accepted too.
pub const NAMESPACE: &str = "urn:oasis:names:tc:emergency:cap:1.2";
/// Largest CAP document accepted: 256 KiB.
pub const MAX_CAP_BYTES: usize = 256 * 1024;
/// Most `info` blocks in one alert.
pub const MAX_INFOS: usize = 16;
/// Most `area` blocks in one `info`.
pub const MAX_AREAS: usize = 64;
/// Most `polygon` plus `circle` elements in one `area`.
pub const MAX_SHAPES: usize = 64;
/// Most points in one polygon.
pub const MAX_POLYGON_POINTS: usize = 2048;
/// Most polygon points in one whole document.
pub const MAX_POINTS: usize = 20_000;
/// Most `geocode`s in one `area`.
pub const MAX_GEOCODES: usize = 1024;
/// Most `parameter`s (and, separately, `eventCode`s) in one `info`.
pub const MAX_PAIRS: usize = 64;
/// Most triples in `references`.
pub const MAX_REFERENCES: usize = 64;
/// Largest text element (description, instruction, …), in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Largest identifier or sender, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Largest circle radius accepted, in km.
pub const MAX_RADIUS_KM: f64 = 20_000.0;

/// Why a document is not a usable CAP 1.2 alert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapError {
    /// Refused by [`crate::xml`]: too large, not UTF-8, DTD/entities, malformed.
    #[error("CAP document: {0}")]
    Xml(#[from] XmlError),
    /// The root element is not a CAP 1.2 `<alert>`.
    #[error("not a CAP 1.2 alert: {0}")]
    NotAlert(String),
    /// A CAP rule is broken; `element` is the path, e.g. `alert/info[0]/urgency`.
    #[error("{element}: {reason}")]
    Invalid {
        /// Path of the element, e.g. `alert/info[0]/area[1]/polygon[0]`.
        element: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl CapError {
    /// The element the refusal is about, when it is about one.
    pub fn element(&self) -> Option<&str> {
        match self {
            CapError::Invalid { element, .. } => Some(element),
            _ => None,
        }
    }
}

fn invalid(element: impl Into<String>, reason: impl Into<String>) -> CapError {
    CapError::Invalid {
        element: element.into(),
        reason: reason.into(),
    }
}

/// At most 64 characters of a value a peer sent, for error messages.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

macro_rules! cap_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every value, in CAP's order.
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The value as CAP spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }

            fn from_cap(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

cap_enum! {
    /// `alert/status`: who the alert is for.
    Status {
        /// A real alert.
        Actual = "Actual",
        /// A drill; only designated exercise participants act on it.
        Exercise = "Exercise",
        /// A network message (heartbeat etc.), not for people.
        System = "System",
        /// Technical test; to be discarded.
        Test = "Test",
        /// A preliminary template, never acted on.
        Draft = "Draft",
    }
}

cap_enum! {
    /// `alert/msgType`.
    MsgType {
        /// A new alert.
        Alert = "Alert",
        /// Supersedes the alerts in `references`.
        Update = "Update",
        /// Cancels the alerts in `references`.
        Cancel = "Cancel",
        /// Acknowledges receipt.
        Ack = "Ack",
        /// Rejects the alerts in `references`.
        Error = "Error",
    }
}

cap_enum! {
    /// `alert/scope`.
    Scope {
        /// For general dissemination.
        Public = "Public",
        /// For users listed in `restriction`.
        Restricted = "Restricted",
        /// For the addresses listed in `addresses`.
        Private = "Private",
    }
}

cap_enum! {
    /// `info/category`.
    Category {
        /// Geophysical (landslide, earthquake).
        Geo = "Geo",
        /// Meteorological (flood, rainstorm).
        Met = "Met",
        /// General emergency and public safety.
        Safety = "Safety",
        /// Law enforcement, military, homeland security.
        Security = "Security",
        /// Rescue and recovery.
        Rescue = "Rescue",
        /// Fire suppression and rescue.
        Fire = "Fire",
        /// Medical and public health.
        Health = "Health",
        /// Pollution and other environmental.
        Env = "Env",
        /// Public and private transportation.
        Transport = "Transport",
        /// Utility, telecommunication, other infrastructure.
        Infra = "Infra",
        /// Chemical, biological, radiological, nuclear, explosive.
        Cbrne = "CBRNE",
        /// Other events.
        Other = "Other",
    }
}

cap_enum! {
    /// `info/urgency`.
    Urgency {
        /// Act now.
        Immediate = "Immediate",
        /// Act within the next hour.
        Expected = "Expected",
        /// Act in the near future.
        Future = "Future",
        /// No longer required.
        Past = "Past",
        /// Unknown.
        Unknown = "Unknown",
    }
}

cap_enum! {
    /// `info/severity`.
    Severity {
        /// Extraordinary threat to life or property.
        Extreme = "Extreme",
        /// Significant threat.
        Severe = "Severe",
        /// Possible threat.
        Moderate = "Moderate",
        /// Minimal to no known threat.
        Minor = "Minor",
        /// Unknown.
        Unknown = "Unknown",
    }
}

cap_enum! {
    /// `info/certainty`.
    Certainty {
        /// Determined to have occurred or to be ongoing.
        Observed = "Observed",
        /// Likely (p > ~50%).
        Likely = "Likely",
        /// Possible but not likely.
        Possible = "Possible",
        /// Not expected to occur.
        Unlikely = "Unlikely",
        /// Unknown.
        Unknown = "Unknown",
    }
}

/// One CAP alert message.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Unique id given by the sender.
    pub identifier: String,
    /// The originator, e.g. `南京市江宁区气象台`.
    pub sender: String,
    /// When it was sent, with the sender's offset.
    pub sent: OffsetDateTime,
    /// Actual, Exercise, System, Test or Draft.
    pub status: Status,
    /// Alert, Update, Cancel, Ack or Error.
    pub msg_type: MsgType,
    /// Public, Restricted or Private.
    pub scope: Scope,
    /// Earlier alerts this one updates or cancels.
    pub references: Vec<Reference>,
    /// Free-text note (Exercise/Error explanations).
    pub note: Option<String>,
    /// The warnings themselves, usually one per language.
    pub infos: Vec<Info>,
}

/// One `sender,identifier,sent` triple of `references`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Sender of the earlier alert.
    pub sender: String,
    /// Identifier of the earlier alert.
    pub identifier: String,
    /// When the earlier alert was sent.
    pub sent: OffsetDateTime,
}

/// One `info` block: the event, its severity and the text for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// RFC 3066 language; CAP's default is `en-US`.
    pub language: String,
    /// At least one category.
    pub category: Vec<Category>,
    /// The event type, e.g. `暴雨`.
    pub event: String,
    /// Immediate, Expected, Future, Past or Unknown.
    pub urgency: Urgency,
    /// Extreme, Severe, Moderate, Minor or Unknown.
    pub severity: Severity,
    /// Observed, Likely, Possible, Unlikely or Unknown.
    pub certainty: Certainty,
    /// System-specific event codes (`valueName`, `value`).
    pub event_codes: Vec<(String, String)>,
    /// When the information becomes effective.
    pub effective: Option<OffsetDateTime>,
    /// Expected onset of the event.
    pub onset: Option<OffsetDateTime>,
    /// When the information stops being valid.
    pub expires: Option<OffsetDateTime>,
    /// Human-readable name of the issuer.
    pub sender_name: Option<String>,
    /// Short headline.
    pub headline: Option<String>,
    /// The hazard in detail.
    pub description: Option<String>,
    /// What people should do.
    pub instruction: Option<String>,
    /// `parameter` pairs (`valueName`, `value`), e.g. (`预警级别`, `橙色`).
    pub parameters: Vec<(String, String)>,
    /// Where it applies.
    pub areas: Vec<Area>,
}

/// One `area` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Area {
    /// Text description of the area.
    pub desc: String,
    /// Closed polygons of (latitude, longitude) points, WGS 84.
    pub polygons: Vec<Vec<(f64, f64)>>,
    /// Circles: ((latitude, longitude), radius in km).
    pub circles: Vec<((f64, f64), f64)>,
    /// Geocodes (`valueName`, `value`), e.g. (`行政区划代码`, `320115`).
    pub geocodes: Vec<(String, String)>,
}

/// Parses one CAP 1.2 document. See the module docs for what is refused.
pub fn parse(bytes: &[u8]) -> Result<Alert, CapError> {
    let text = xml::check(bytes, MAX_CAP_BYTES)?;
    let doc = xml::parse(text)?;
    from_node(doc.root_element())
}

/// Reads an `<alert>` element already parsed through [`crate::xml::parse`]
/// (e.g. one embedded in an Atom feed). Its source text is capped at
/// [`MAX_CAP_BYTES`] like a standalone document.
pub fn from_node(node: roxmltree::Node<'_, '_>) -> Result<Alert, CapError> {
    let len = node.range().len();
    if len > MAX_CAP_BYTES {
        return Err(XmlError::TooLarge {
            len,
            max: MAX_CAP_BYTES,
        }
        .into());
    }
    if !node.is_element() || xml::local(node) != "alert" {
        return Err(CapError::NotAlert(format!(
            "root element is <{}>",
            clip(xml::local(node))
        )));
    }
    match node.tag_name().namespace() {
        None | Some(NAMESPACE) => {}
        Some(ns) => {
            return Err(CapError::NotAlert(format!(
                "namespace `{}` is not {NAMESPACE}",
                clip(ns)
            )));
        }
    }
    let p = "alert";
    let identifier = id_field(node, "identifier", p)?;
    let sender = id_field(node, "sender", p)?;
    let sent = datetime(&req_text(node, "sent", p)?, &format!("{p}/sent"))?;
    let status = enum_field(node, "status", p, Status::from_cap)?;
    let msg_type = enum_field(node, "msgType", p, MsgType::from_cap)?;
    let scope = enum_field(node, "scope", p, Scope::from_cap)?;
    let references = match opt_text(node, "references", p)? {
        Some(t) => references(&t, &format!("{p}/references"))?,
        None => Vec::new(),
    };
    let note = opt_text(node, "note", p)?;
    let n = xml::children(node, "info").count();
    if n > MAX_INFOS {
        return Err(invalid(
            format!("{p}/info"),
            format!("{n} <info> elements, at most {MAX_INFOS} are accepted"),
        ));
    }
    let mut points = 0usize;
    let infos = xml::children(node, "info")
        .enumerate()
        .map(|(i, n)| info(n, &format!("{p}/info[{i}]"), &mut points))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Alert {
        identifier,
        sender,
        sent,
        status,
        msg_type,
        scope,
        references,
        note,
        infos,
    })
}

fn info(node: roxmltree::Node<'_, '_>, p: &str, points: &mut usize) -> Result<Info, CapError> {
    let language = opt_text(node, "language", p)?.unwrap_or_else(|| "en-US".to_string());
    let mut category = Vec::new();
    for (i, c) in xml::children(node, "category").enumerate() {
        let path = format!("{p}/category[{i}]");
        if i >= Category::ALL.len() {
            return Err(invalid(path, "more <category> elements than CAP defines"));
        }
        let t = checked_text(c, &path)?.unwrap_or_default();
        let v = Category::from_cap(&t).ok_or_else(|| bad_enum(&path, &t, Category::ALL))?;
        if !category.contains(&v) {
            category.push(v);
        }
    }
    if category.is_empty() {
        return Err(invalid(
            format!("{p}/category"),
            "required element is missing",
        ));
    }
    let event = req_text(node, "event", p)?;
    let urgency = enum_field(node, "urgency", p, Urgency::from_cap)?;
    let severity = enum_field(node, "severity", p, Severity::from_cap)?;
    let certainty = enum_field(node, "certainty", p, |s| match s {
        "Very Likely" => Some(Certainty::Likely),
        s => Certainty::from_cap(s),
    })?;
    let event_codes = pairs(node, "eventCode", p)?;
    let effective = opt_datetime(node, "effective", p)?;
    let onset = opt_datetime(node, "onset", p)?;
    let expires = opt_datetime(node, "expires", p)?;
    let parameters = pairs(node, "parameter", p)?;
    let n = xml::children(node, "area").count();
    if n > MAX_AREAS {
        return Err(invalid(
            format!("{p}/area"),
            format!("{n} <area> elements, at most {MAX_AREAS} are accepted"),
        ));
    }
    let areas = xml::children(node, "area")
        .enumerate()
        .map(|(i, a)| area(a, &format!("{p}/area[{i}]"), points))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Info {
        language,
        category,
        event,
        urgency,
        severity,
        certainty,
        event_codes,
        effective,
        onset,
        expires,
        sender_name: opt_text(node, "senderName", p)?,
        headline: opt_text(node, "headline", p)?,
        description: opt_text(node, "description", p)?,
        instruction: opt_text(node, "instruction", p)?,
        parameters,
        areas,
    })
}

fn area(node: roxmltree::Node<'_, '_>, p: &str, points: &mut usize) -> Result<Area, CapError> {
    let desc = req_text(node, "areaDesc", p)?;
    let shapes = xml::children(node, "polygon").count() + xml::children(node, "circle").count();
    if shapes > MAX_SHAPES {
        return Err(invalid(
            p,
            format!("{shapes} <polygon>/<circle> elements, at most {MAX_SHAPES} are accepted"),
        ));
    }
    let mut polygons = Vec::new();
    for (i, n) in xml::children(node, "polygon").enumerate() {
        let path = format!("{p}/polygon[{i}]");
        let t = checked_text(n, &path)?.unwrap_or_default();
        let poly = polygon(&t, &path)?;
        *points += poly.len();
        if *points > MAX_POINTS {
            return Err(invalid(
                path,
                format!("the document has more than {MAX_POINTS} polygon points"),
            ));
        }
        polygons.push(poly);
    }
    let mut circles = Vec::new();
    for (i, n) in xml::children(node, "circle").enumerate() {
        let path = format!("{p}/circle[{i}]");
        let t = checked_text(n, &path)?.unwrap_or_default();
        circles.push(circle(&t, &path)?);
    }
    let n = xml::children(node, "geocode").count();
    if n > MAX_GEOCODES {
        return Err(invalid(
            format!("{p}/geocode"),
            format!("{n} <geocode> elements, at most {MAX_GEOCODES} are accepted"),
        ));
    }
    let geocodes = xml::children(node, "geocode")
        .enumerate()
        .map(|(i, g)| pair(g, &format!("{p}/geocode[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Area {
        desc,
        polygons,
        circles,
        geocodes,
    })
}

/// Parses a CAP polygon: whitespace-separated `lat,lon` pairs, closed, ≥ 4 points.
fn polygon(t: &str, path: &str) -> Result<Vec<(f64, f64)>, CapError> {
    let mut pts = Vec::new();
    for tok in t.split_whitespace() {
        if pts.len() == MAX_POLYGON_POINTS {
            return Err(invalid(
                path,
                format!("more than {MAX_POLYGON_POINTS} points"),
            ));
        }
        pts.push(point(tok, path)?);
    }
    if pts.len() < 4 {
        return Err(invalid(
            path,
            format!(
                "a polygon needs at least 4 points (the first repeated last), got {}",
                pts.len()
            ),
        ));
    }
    if pts.first() != pts.last() {
        return Err(invalid(
            path,
            "polygon is not closed: the last point must equal the first",
        ));
    }
    Ok(pts)
}

/// Parses a CAP circle: `lat,lon radius_km`.
fn circle(t: &str, path: &str) -> Result<((f64, f64), f64), CapError> {
    let mut it = t.split_whitespace();
    let (Some(c), Some(r), None) = (it.next(), it.next(), it.next()) else {
        return Err(invalid(
            path,
            format!("`{}` is not `lat,lon radius_km`", clip(t)),
        ));
    };
    let centre = point(c, path)?;
    let radius: f64 = r
        .parse()
        .map_err(|_| invalid(path, format!("radius `{}` is not a number", clip(r))))?;
    if !(0.0..=MAX_RADIUS_KM).contains(&radius) {
        return Err(invalid(
            path,
            format!("radius {radius} km is outside 0-{MAX_RADIUS_KM} km"),
        ));
    }
    Ok((centre, radius))
}

/// Parses one `lat,lon` point and checks the WGS 84 ranges.
fn point(tok: &str, path: &str) -> Result<(f64, f64), CapError> {
    let bad = || {
        invalid(
            path,
            format!("`{}` is not a `latitude,longitude` point", clip(tok)),
        )
    };
    let (lat, lon) = tok.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let lon: f64 = lon.trim().parse().map_err(|_| bad())?;
    // `contains` is false for NaN, so non-finite values are refused too.
    if !(-90.0..=90.0).contains(&lat) {
        return Err(invalid(path, format!("latitude {lat} is outside -90..90")));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(invalid(
            path,
            format!("longitude {lon} is outside -180..180"),
        ));
    }
    Ok((lat, lon))
}

/// Parses `references`: whitespace-separated `sender,identifier,sent` triples.
fn references(t: &str, path: &str) -> Result<Vec<Reference>, CapError> {
    let mut out = Vec::new();
    for tok in t.split_whitespace() {
        if out.len() == MAX_REFERENCES {
            return Err(invalid(
                path,
                format!("more than {MAX_REFERENCES} references"),
            ));
        }
        let mut parts = tok.split(',');
        let (Some(sender), Some(identifier), Some(sent), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                path,
                format!("`{}` is not a `sender,identifier,sent` triple", clip(tok)),
            ));
        };
        if sender.is_empty() || identifier.is_empty() {
            return Err(invalid(
                path,
                format!("`{}` has an empty sender or identifier", clip(tok)),
            ));
        }
        out.push(Reference {
            sender: sender.to_string(),
            identifier: identifier.to_string(),
            sent: datetime(sent, path)?,
        });
    }
    Ok(out)
}

/// Parses a CAP date-time, which must carry its offset.
fn datetime(s: &str, path: &str) -> Result<OffsetDateTime, CapError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        invalid(
            path,
            format!(
                "`{}` is not a date-time with an explicit offset such as 2026-07-15T08:30:00+08:00",
                clip(s)
            ),
        )
    })
}

fn opt_datetime(
    node: roxmltree::Node<'_, '_>,
    name: &str,
    p: &str,
) -> Result<Option<OffsetDateTime>, CapError> {
    opt_text(node, name, p)?
        .map(|t| datetime(&t, &format!("{p}/{name}")))
        .transpose()
}

/// The trimmed text of an element, refused over [`MAX_TEXT_BYTES`].
fn checked_text(node: roxmltree::Node<'_, '_>, path: &str) -> Result<Option<String>, CapError> {
    match xml::text(node) {
        Some(t) if t.len() > MAX_TEXT_BYTES => Err(invalid(
            path,
            format!(
                "text of {} bytes is over the {MAX_TEXT_BYTES}-byte limit",
                t.len()
            ),
        )),
        t => Ok(t),
    }
}

fn opt_text(
    node: roxmltree::Node<'_, '_>,
    name: &str,
    p: &str,
) -> Result<Option<String>, CapError> {
    match xml::child(node, name) {
        Some(c) => checked_text(c, &format!("{p}/{name}")),
        None => Ok(None),
    }
}

fn req_text(node: roxmltree::Node<'_, '_>, name: &str, p: &str) -> Result<String, CapError> {
    opt_text(node, name, p)?.ok_or_else(|| {
        invalid(
            format!("{p}/{name}"),
            "required element is missing or empty",
        )
    })
}

/// `identifier` and `sender`: no whitespace, commas or `<`/`&` (CAP 1.2 §3.2.1).
fn id_field(node: roxmltree::Node<'_, '_>, name: &str, p: &str) -> Result<String, CapError> {
    let t = req_text(node, name, p)?;
    let path = format!("{p}/{name}");
    if t.len() > MAX_ID_BYTES {
        return Err(invalid(
            path,
            format!("{} bytes, at most {MAX_ID_BYTES}", t.len()),
        ));
    }
    if t.chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '<' | '&'))
    {
        return Err(invalid(
            path,
            format!(
                "`{}` contains a space, comma, `<` or `&`, which CAP forbids",
                clip(&t)
            ),
        ));
    }
    Ok(t)
}

fn enum_field<T: CapEnum + fmt::Display>(
    node: roxmltree::Node<'_, '_>,
    name: &str,
    p: &str,
    from: impl Fn(&str) -> Option<T>,
) -> Result<T, CapError> {
    let t = req_text(node, name, p)?;
    from(&t).ok_or_else(|| bad_enum(&format!("{p}/{name}"), &t, T::all()))
}

/// Lets [`enum_field`] list the allowed values.
trait CapEnum: Sized + 'static {
    fn all() -> &'static [Self];
}

macro_rules! impl_cap_enum {
    ($($t:ty),*) => { $(impl CapEnum for $t { fn all() -> &'static [Self] { <$t>::ALL } })* };
}
impl_cap_enum!(
    Status, MsgType, Scope, Category, Urgency, Severity, Certainty
);

fn bad_enum<T: fmt::Display>(path: &str, got: &str, all: &[T]) -> CapError {
    let allowed: Vec<String> = all.iter().map(ToString::to_string).collect();
    invalid(
        path,
        format!("`{}` is not one of {}", clip(got), allowed.join(", ")),
    )
}

/// `valueName`/`value` children of `parameter`, `eventCode` and `geocode`.
fn pair(node: roxmltree::Node<'_, '_>, p: &str) -> Result<(String, String), CapError> {
    Ok((req_text(node, "valueName", p)?, req_text(node, "value", p)?))
}

fn pairs(
    node: roxmltree::Node<'_, '_>,
    name: &str,
    p: &str,
) -> Result<Vec<(String, String)>, CapError> {
    let n = xml::children(node, name).count();
    if n > MAX_PAIRS {
        return Err(invalid(
            format!("{p}/{name}"),
            format!("{n} <{name}> elements, at most {MAX_PAIRS} are accepted"),
        ));
    }
    xml::children(node, name)
        .enumerate()
        .map(|(i, c)| pair(c, &format!("{p}/{name}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const ORANGE: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_orange_alert.xml");
    const RED: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_red_update.xml");
    const CANCEL: &[u8] = include_bytes!("../../tests/fixtures/cap/jiangning_rainstorm_cancel.xml");
    const DRILL: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_flood_drill_exercise.xml");
    const HEAT: &[u8] =
        include_bytes!("../../tests/fixtures/cap/jiangning_heat_yellow_expired.xml");
    const BOMB: &[u8] = include_bytes!("../../tests/fixtures/cap/hostile_billion_laughs.xml");

    fn orange_with(from: &str, to: &str) -> Result<Alert, CapError> {
        let s = std::str::from_utf8(ORANGE).unwrap();
        assert!(s.contains(from), "fixture lacks {from}");
        parse(s.replacen(from, to, 1).as_bytes())
    }

    fn element_of(r: Result<Alert, CapError>) -> String {
        r.unwrap_err().element().unwrap().to_string()
    }

    /// National release system shape: county code in the identifier, zh-CN,
    /// +08:00, geocode with the division code, polygon, parameters.
    #[test]
    fn rainstorm_orange_alert_parses_fully() {
        let a = parse(ORANGE).unwrap();
        assert_eq!(a.identifier, "32011541600000_20260715083000");
        assert_eq!(a.sender, "南京市江宁区气象台");
        assert_eq!(a.sent, datetime!(2026-07-15 08:30:00 +08:00));
        assert_eq!(a.sent, datetime!(2026-07-15 00:30:00 UTC));
        assert_eq!(
            (a.status, a.msg_type, a.scope),
            (Status::Actual, MsgType::Alert, Scope::Public)
        );
        assert!(a.references.is_empty());
        assert_eq!(a.infos.len(), 1);
        let i = &a.infos[0];
        assert_eq!(i.language, "zh-CN");
        assert_eq!(i.category, vec![Category::Met]);
        assert_eq!(i.event, "暴雨");
        assert_eq!(
            (i.urgency, i.severity, i.certainty),
            (Urgency::Immediate, Severity::Severe, Certainty::Likely)
        );
        assert_eq!(i.event_codes, vec![("CAP-China".into(), "11B03".into())]);
        assert_eq!(i.expires, Some(datetime!(2026-07-15 20:30:00 +08:00)));
        assert_eq!(i.headline.as_deref(), Some("江宁区气象台发布暴雨橙色预警"));
        assert!(i.description.as_deref().unwrap().contains("50毫米"));
        assert!(i.instruction.as_deref().unwrap().starts_with("1. 政府"));
        assert_eq!(i.parameters[0], ("预警级别".into(), "橙色".into()));
        let area = &i.areas[0];
        assert!(area.desc.contains("横溪街道"));
        assert_eq!(area.polygons[0].len(), 5);
        assert_eq!(area.polygons[0][0], (31.80, 118.70));
        assert_eq!(
            area.geocodes,
            vec![("行政区划代码".into(), "320115".into())]
        );
    }

    /// Update: `references` holds the sender,identifier,sent of the original.
    #[test]
    fn update_references_the_original() {
        let a = parse(RED).unwrap();
        assert_eq!(a.msg_type, MsgType::Update);
        assert_eq!(
            a.references,
            vec![Reference {
                sender: "南京市江宁区气象台".into(),
                identifier: "32011541600000_20260715083000".into(),
                sent: datetime!(2026-07-15 08:30:00 +08:00),
            }]
        );
        assert_eq!(a.infos[0].severity, Severity::Extreme);
    }

    /// Cancel of an upgraded warning references both earlier messages.
    #[test]
    fn cancel_references_both_messages() {
        let a = parse(CANCEL).unwrap();
        assert_eq!(a.msg_type, MsgType::Cancel);
        let ids: Vec<_> = a.references.iter().map(|r| r.identifier.as_str()).collect();
        assert_eq!(
            ids,
            [
                "32011541600000_20260715083000",
                "32011541600000_20260715110000"
            ]
        );
        assert_eq!(a.infos[0].urgency, Urgency::Past);
    }

    /// Drill: status Exercise, a note, a circle and a 9-digit township code.
    #[test]
    fn exercise_with_circle() {
        let a = parse(DRILL).unwrap();
        assert_eq!(a.status, Status::Exercise);
        assert!(a.note.as_deref().unwrap().contains("演练"));
        assert_eq!(a.infos[0].areas[0].circles, vec![((31.735, 118.795), 3.5)]);
        assert_eq!(a.infos[0].areas[0].geocodes[0].1, "320115106");
    }

    /// An expired warning still parses: expiry is the desk's decision.
    #[test]
    fn expired_warning_parses() {
        let a = parse(HEAT).unwrap();
        assert_eq!(
            a.infos[0].expires,
            Some(datetime!(2026-07-08 19:00:00 +08:00))
        );
    }

    /// Billion laughs + XXE: refused by the xml module before any expansion.
    #[test]
    fn hostile_dtd_is_refused() {
        assert_eq!(parse(BOMB), Err(CapError::Xml(XmlError::Dtd)));
    }

    #[test]
    fn oversize_document_is_refused() {
        let mut big = ORANGE.to_vec();
        big.resize(MAX_CAP_BYTES + 1, b' ');
        assert!(matches!(
            parse(&big),
            Err(CapError::Xml(XmlError::TooLarge { .. }))
        ));
    }

    #[test]
    fn not_an_alert() {
        assert!(matches!(parse(b"<feed/>"), Err(CapError::NotAlert(_))));
        let e = parse(br#"<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>"#).unwrap_err();
        assert!(e.to_string().contains("cap:1.1"), "{e}");
        assert!(matches!(
            parse(b"<alert"),
            Err(CapError::Xml(XmlError::Malformed(_)))
        ));
    }

    #[test]
    fn missing_required_elements_are_named() {
        for (el, path) in [
            ("identifier", "alert/identifier"),
            ("sender", "alert/sender"),
            ("sent", "alert/sent"),
            ("status", "alert/status"),
            ("msgType", "alert/msgType"),
            ("scope", "alert/scope"),
            ("event", "alert/info[0]/event"),
            ("urgency", "alert/info[0]/urgency"),
            ("severity", "alert/info[0]/severity"),
            ("certainty", "alert/info[0]/certainty"),
            ("category", "alert/info[0]/category"),
            ("areaDesc", "alert/info[0]/area[0]/areaDesc"),
        ] {
            let s = std::str::from_utf8(ORANGE).unwrap();
            let (open, close) = (format!("<{el}>"), format!("</{el}>"));
            let a = s.find(&open).unwrap();
            let b = s[a..].find(&close).unwrap() + a + close.len();
            let doc = format!("{}{}", &s[..a], &s[b..]);
            let e = parse(doc.as_bytes()).unwrap_err();
            assert_eq!(e.element(), Some(path), "{e}");
            assert!(e.to_string().contains("missing"), "{e}");
        }
    }

    #[test]
    fn bad_enum_values_are_named() {
        let e = orange_with("<status>Actual", "<status>Real").unwrap_err();
        assert_eq!(e.element(), Some("alert/status"));
        assert!(
            e.to_string()
                .contains("`Real` is not one of Actual, Exercise"),
            "{e}"
        );
        assert_eq!(
            element_of(orange_with("<urgency>Immediate", "<urgency>Now")),
            "alert/info[0]/urgency"
        );
        assert_eq!(
            element_of(orange_with("<severity>Severe", "<severity>severe")),
            "alert/info[0]/severity"
        );
        assert_eq!(
            element_of(orange_with("<category>Met", "<category>Weather")),
            "alert/info[0]/category[0]"
        );
        assert_eq!(
            element_of(orange_with("<msgType>Alert", "<msgType>Notice")),
            "alert/msgType"
        );
        let a = orange_with("<certainty>Likely", "<certainty>Very Likely").unwrap();
        assert_eq!(a.infos[0].certainty, Certainty::Likely);
    }

    #[test]
    fn date_times_need_an_explicit_offset() {
        let e = orange_with(
            "<sent>2026-07-15T08:30:00+08:00",
            "<sent>2026-07-15T08:30:00",
        )
        .unwrap_err();
        assert_eq!(e.element(), Some("alert/sent"));
        assert!(e.to_string().contains("explicit offset"), "{e}");
        assert_eq!(
            element_of(orange_with(
                "<expires>2026-07-15T20:30:00+08:00",
                "<expires>2026-07-15 20:30"
            )),
            "alert/info[0]/expires"
        );
        let a = orange_with("2026-07-15T08:30:00+08:00", "2026-07-15T00:30:00Z").unwrap();
        assert_eq!(a.sent, datetime!(2026-07-15 08:30:00 +08:00));
    }

    #[test]
    fn polygons_must_be_closed_in_range_and_bounded() {
        let poly = "31.80,118.70 31.80,118.95 31.62,118.95 31.62,118.70 31.80,118.70";
        let e =
            orange_with(poly, "31.80,118.70 31.80,118.95 31.62,118.95 31.62,118.70").unwrap_err();
        assert_eq!(e.element(), Some("alert/info[0]/area[0]/polygon[0]"));
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = orange_with(poly, "31.80,118.70 31.80,118.95 31.80,118.70").unwrap_err();
        assert!(e.to_string().contains("at least 4"), "{e}");
        let e = orange_with(poly, "91.0,118.70 31.80,118.95 31.62,118.95 91.0,118.70").unwrap_err();
        assert!(e.to_string().contains("latitude 91"), "{e}");
        let e = orange_with(poly, "31,181 31,118 30,118 31,181").unwrap_err();
        assert!(e.to_string().contains("longitude 181"), "{e}");
        let e = orange_with(poly, "NaN,1 1,1 2,2 NaN,1").unwrap_err();
        assert!(e.to_string().contains("latitude NaN"), "{e}");
        let e = orange_with(poly, "31.8;118.7 1,1 2,2 31.8;118.7").unwrap_err();
        assert!(e.to_string().contains("not a `latitude,longitude`"), "{e}");
        let many: Vec<String> = (0..=MAX_POLYGON_POINTS)
            .map(|_| "1,1".to_string())
            .collect();
        let e = orange_with(poly, &many.join(" ")).unwrap_err();
        assert!(e.to_string().contains("more than 2048 points"), "{e}");
    }

    #[test]
    fn circles_are_checked() {
        let d = std::str::from_utf8(DRILL).unwrap();
        for (bad, want) in [
            ("31.7350,118.7950", "not `lat,lon radius_km`"),
            ("31.7350,118.7950 -1", "outside 0-"),
            ("31.7350,118.7950 km", "not a number"),
            ("31.7350,218.7950 3", "longitude 218"),
        ] {
            let doc = d.replace("31.7350,118.7950 3.5", bad);
            let e = parse(doc.as_bytes()).unwrap_err();
            assert_eq!(e.element(), Some("alert/info[0]/area[0]/circle[0]"));
            assert!(e.to_string().contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn references_must_be_triples() {
        let r = std::str::from_utf8(RED).unwrap();
        let doc = r.replace(",2026-07-15T08:30:00+08:00</references>", "</references>");
        let e = parse(doc.as_bytes()).unwrap_err();
        assert_eq!(e.element(), Some("alert/references"));
        assert!(e.to_string().contains("triple"), "{e}");
        let doc = r.replace(
            ",2026-07-15T08:30:00+08:00</references>",
            ",yesterday</references>",
        );
        assert!(
            parse(doc.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("explicit offset")
        );
    }

    #[test]
    fn identifiers_refuse_spaces_and_commas() {
        let e = orange_with(
            "<identifier>32011541600000_20260715083000",
            "<identifier>320115 416,00000",
        )
        .unwrap_err();
        assert_eq!(e.element(), Some("alert/identifier"));
    }

    #[test]
    fn counts_and_text_sizes_are_capped() {
        let s = std::str::from_utf8(ORANGE).unwrap();
        let (a, b) = (s.find("<info>").unwrap(), s.find("</info>").unwrap() + 7);
        let infos = s[a..b].repeat(MAX_INFOS + 1);
        let doc = format!("{}{}{}", &s[..a], infos, &s[b..]);
        let e = parse(doc.as_bytes()).unwrap_err();
        assert_eq!(e.element(), Some("alert/info"));
        assert!(e.to_string().contains("at most 16"), "{e}");

        let (a, b) = (s.find("<area>").unwrap(), s.find("</area>").unwrap() + 7);
        let areas = s[a..b].repeat(MAX_AREAS + 1);
        let doc = format!("{}{}{}", &s[..a], areas, &s[b..]);
        assert_eq!(
            parse(doc.as_bytes()).unwrap_err().element(),
            Some("alert/info[0]/area")
        );

        let long = "雨".repeat(MAX_TEXT_BYTES / 3 + 1);
        let e = orange_with("<description>", &format!("<description>{long}")).unwrap_err();
        assert_eq!(e.element(), Some("alert/info[0]/description"));
        assert!(e.to_string().contains("over the 16384-byte limit"), "{e}");
    }

    #[test]
    fn document_wide_point_cap() {
        // 16 areas × 2 polygons × 1000 points = 32 000 > MAX_POINTS.
        let pts: Vec<String> = (0..999).map(|i| format!("1,{}", i % 100)).collect();
        let poly = format!("<polygon>{} 1,0</polygon>", pts.join(" "));
        let area = format!("<area><areaDesc>x</areaDesc>{poly}{poly}</area>");
        let doc = orange_with("<area>", &format!("{}<area>", area.repeat(16)));
        let e = doc.unwrap_err();
        assert!(
            e.to_string().contains("more than 20000 polygon points"),
            "{e}"
        );
    }

    #[test]
    fn no_namespace_is_accepted_and_defaults_apply() {
        let doc = "<alert><identifier>a</identifier><sender>s</sender>\
            <sent>2026-07-15T08:30:00-00:00</sent><status>Test</status>\
            <msgType>Ack</msgType><scope>Public</scope>\
            <info><category>Geo</category><category>Geo</category><event>e</event>\
            <urgency>Unknown</urgency><severity>Unknown</severity>\
            <certainty>Unknown</certainty></info></alert>";
        let a = parse(doc.as_bytes()).unwrap();
        assert_eq!(a.status, Status::Test);
        assert_eq!(a.infos[0].language, "en-US");
        assert_eq!(a.infos[0].category, vec![Category::Geo]);
        assert!(a.infos[0].areas.is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            " ",
            "<",
            "<alert/>",
            "<alert><info/></alert>",
            "\u{feff}<x/>",
        ] {
            assert!(parse(s.as_bytes()).is_err(), "{s:?}");
        }
        assert!(parse(b"<a>\xff</a>").is_err());
    }
}
