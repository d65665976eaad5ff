//! Which configured villages an alert's areas reach: administrative codes
//! by prefix, polygons and circles against village outlines (approximate,
//! planar in degrees; see the module docs of [`super`]).

use std::collections::BTreeSet;

use device_drivers::cap::Info;

use super::config::WarningsConfig;

/// Configured codes, normalised, with the index of their village.
#[derive(Debug, Clone)]
pub(super) struct CodeIndex(Vec<(String, usize)>);

/// Indices of the configured villages an info's areas reach, in config order.
pub(super) fn villages_for(cfg: &WarningsConfig, codes: &CodeIndex, info: &Info) -> Vec<usize> {
    let mut hit = BTreeSet::new();
    for area in &info.areas {
        for (_, value) in &area.geocodes {
            hit.extend(codes.matching(value));
        }
        for (i, a) in cfg.areas.iter().enumerate() {
            let Some(outline) = a.outline.as_deref().filter(|o| o.len() >= 3) else {
                continue;
            };
            if hit.contains(&i) {
                continue;
            }
            let poly_hit = area.polygons.iter().any(|p| polygons_intersect(p, outline));
            let circle_hit = area
                .circles
                .iter()
                .any(|&(c, r)| circle_reaches(c, r, outline));
            if poly_hit || circle_hit {
                hit.insert(i);
            }
        }
    }
    hit.into_iter().collect()
}

impl CodeIndex {
    /// Indexes the configured geocodes of `cfg`, normalised.
    pub(super) fn new(cfg: &WarningsConfig) -> CodeIndex {
        CodeIndex(
            cfg.areas
                .iter()
                .enumerate()
                .flat_map(|(i, a)| a.geocodes.iter().map(move |g| (normalize_code(g), i)))
                .filter(|(g, _)| !g.is_empty())
                .collect(),
        )
    }

    /// Villages an alert geocode reaches: those with a code it covers, or
    /// failing that those with the longest code covering it.
    pub(super) fn matching(&self, value: &str) -> Vec<usize> {
        let g = normalize_code(value);
        if g.len() < 2 {
            return Vec::new();
        }
        let covered: Vec<usize> = self
            .0
            .iter()
            .filter(|(c, _)| c.starts_with(&g))
            .map(|(_, v)| *v)
            .collect();
        if !covered.is_empty() {
            return covered;
        }
        let best = self
            .0
            .iter()
            .filter(|(c, _)| g.starts_with(c.as_str()))
            .map(|(c, _)| c.len())
            .max();
        match best {
            Some(len) => self
                .0
                .iter()
                .filter(|(c, _)| c.len() == len && g.starts_with(c.as_str()))
                .map(|(_, v)| *v)
                .collect(),
            None => Vec::new(),
        }
    }
}

/// Drops trailing all-zero levels of a Chinese administrative division code
/// (levels of 2, 2, 2, 3, 3 digits): `320115000000` → `320115`,
/// `320100` → `3201`. Other codes are only trimmed.
pub fn normalize_code(code: &str) -> String {
    let mut s = code.trim();
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return s.to_string();
    }
    loop {
        s = match s.len() {
            12 | 9 if s.ends_with("000") => &s[..s.len() - 3],
            6 | 4 if s.ends_with("00") => &s[..s.len() - 2],
            _ => break,
        };
    }
    s.to_string()
}

type Pt = (f64, f64);

fn bbox(p: &[Pt]) -> (f64, f64, f64, f64) {
    p.iter().fold(
        (f64::MAX, f64::MAX, f64::MIN, f64::MIN),
        |(a, b, c, d), &(lat, lon)| (a.min(lat), b.min(lon), c.max(lat), d.max(lon)),
    )
}

/// Ray casting; `poly` may or may not repeat its first point.
pub(super) fn point_in_polygon((y, x): Pt, poly: &[Pt]) -> bool {
    let mut inside = false;
    let n = poly.len();
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (yi, xi) = poly[i];
        let (yj, xj) = poly[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn edges(p: &[Pt]) -> impl Iterator<Item = (Pt, Pt)> + '_ {
    (0..p.len()).map(move |i| (p[i], p[(i + 1) % p.len()]))
}

fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

fn segments_cross(a: Pt, b: Pt, c: Pt, d: Pt) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    ((d1 > 0.0) != (d2 > 0.0)) && ((d3 > 0.0) != (d4 > 0.0)) && d1 != 0.0 && d3 != 0.0
}

/// Whether two polygons overlap (approximate, see the module docs).
pub fn polygons_intersect(a: &[Pt], b: &[Pt]) -> bool {
    if a.len() < 3 || b.len() < 3 {
        return false;
    }
    let (a0, a1, a2, a3) = bbox(a);
    let (b0, b1, b2, b3) = bbox(b);
    if a2 < b0 || b2 < a0 || a3 < b1 || b3 < a1 {
        return false;
    }
    a.iter().any(|&p| point_in_polygon(p, b))
        || b.iter().any(|&p| point_in_polygon(p, a))
        || edges(a).any(|(p, q)| edges(b).any(|(r, s)| segments_cross(p, q, r, s)))
}

/// Mean Earth radius, km.
const EARTH_KM: f64 = 6371.0088;

/// Great-circle distance in km.
pub fn haversine_km((lat1, lon1): Pt, (lat2, lon2): Pt) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_KM * h.sqrt().min(1.0).asin()
}

/// Whether a circle reaches a polygon (approximate, see the module docs).
pub fn circle_reaches(centre: Pt, radius_km: f64, outline: &[Pt]) -> bool {
    if outline.len() < 3 {
        return false;
    }
    if point_in_polygon(centre, outline) {
        return true;
    }
    if outline
        .iter()
        .any(|&p| haversine_km(centre, p) <= radius_km)
    {
        return true;
    }
    // Edges in a local equirectangular projection around the centre, in km.
    let k = EARTH_KM.to_radians();
    let cos = centre.0.to_radians().cos();
    let xy = |(lat, lon): Pt| ((lon - centre.1) * cos * k, (lat - centre.0) * k);
    edges(outline).any(|(p, q)| {
        let ((x1, y1), (x2, y2)) = (xy(p), xy(q));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len2 = dx * dx + dy * dy;
        let t = if len2 > 0.0 {
            (-(x1 * dx + y1 * dy) / len2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (x, y) = (x1 + t * dx, y1 + t * dy);
        (x * x + y * y).sqrt() <= radius_km
    })
}
