//! Speaker CSV: RFC 4180 records and their validation against the
//! township (see the format in [`crate::speakers`]).

use std::collections::BTreeMap;
use std::fmt;

use crate::config::Ident;
use crate::store::secrets::Password;

use super::{Codec, DriverKind, Multicast, NewSpeaker, check_address};

/// The villages and grids a CSV may name.
#[derive(Debug, Clone, Default)]
pub struct Township {
    /// Village codes.
    pub villages: Vec<String>,
    /// Grid code → its village code.
    pub grids: BTreeMap<String, String>,
}

/// One CSV error: where and what.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvError {
    /// 1-based line of the record (its first line, for quoted newlines).
    pub line: usize,
    /// The column, if the error is about one field.
    pub column: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for CsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column `{c}`: {}", self.line, self.msg),
            None => write!(f, "line {}: {}", self.line, self.msg),
        }
    }
}

/// Splits CSV text into records (RFC 4180: `"` quoting with `""` escapes,
/// CRLF or LF), each with the line it starts on. Blank lines and lines
/// starting with `#` are skipped.
pub fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, CsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        // Comments and blank lines.
        if matches!(chars.peek(), Some('#' | '\n' | '\r')) {
            for c in chars.by_ref() {
                if c == '\n' {
                    line += 1;
                    break;
                }
            }
            continue;
        }
        let mut rec = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(CsvError {
                        line: start,
                        column: None,
                        msg: "a quoted field is not closed".into(),
                    });
                }
                rec.push(std::mem::take(&mut field));
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    c => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.trim().is_empty() && !was_quoted => {
                    field.clear();
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err(CsvError {
                        line,
                        column: None,
                        msg: format!(
                            "stray `\"` in field {} (quote the whole field)",
                            rec.len() + 1
                        ),
                    });
                }
                ',' => {
                    rec.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    rec.push(std::mem::take(&mut field));
                    break;
                }
                c => field.push(c),
            }
        }
        out.push((start, rec));
    }
    Ok(out)
}

const COLUMNS: &[&str] = &[
    "id", "name", "kind", "address", "village", "grid", "zone", "codec", "volume", "ttl",
    "username", "password",
];

/// Parses and validates speaker CSV. Returns every error found (not just
/// the first), each naming its line and column.
pub fn parse_csv(text: &str, township: &Township) -> Result<Vec<NewSpeaker>, Vec<CsvError>> {
    let records = csv_records(text).map_err(|e| vec![e])?;
    let mut it = records.into_iter();
    let Some((hline, header)) = it.next() else {
        return Err(vec![CsvError {
            line: 1,
            column: None,
            msg: format!("no header row; expected columns: {}", COLUMNS.join(",")),
        }]);
    };
    let header = read_header(hline, &header)?;
    let mut ctx = Rows {
        township,
        header: &header,
        errs: Vec::new(),
        ids: BTreeMap::new(),
        zones: BTreeMap::new(),
    };
    let mut out = Vec::new();
    for (line, rec) in it {
        if rec.len() != header.len() {
            ctx.errs.push(CsvError {
                line,
                column: None,
                msg: format!("{} fields, the header has {}", rec.len(), header.len()),
            });
            continue;
        }
        out.extend(parse_row(&mut ctx, line, &rec));
    }
    let errs = ctx.errs;
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// The header's column names, lower-cased, or every problem with them.
fn read_header(hline: usize, header: &[String]) -> Result<Vec<String>, Vec<CsvError>> {
    let header: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let mut errs = Vec::new();
    for (i, h) in header.iter().enumerate() {
        if !COLUMNS.contains(&h.as_str()) {
            errs.push(CsvError {
                line: hline,
                column: Some(h.clone()),
                msg: format!("unknown column (known: {})", COLUMNS.join(",")),
            });
        } else if header[..i].contains(h) {
            errs.push(CsvError {
                line: hline,
                column: Some(h.clone()),
                msg: "column given twice".into(),
            });
        }
    }
    for req in ["id", "kind", "address"] {
        if !header.iter().any(|h| h == req) {
            errs.push(CsvError {
                line: hline,
                column: Some(req.into()),
                msg: "required column missing from the header".into(),
            });
        }
    }
    if errs.is_empty() {
        Ok(header)
    } else {
        Err(errs)
    }
}

/// What the rows of one CSV share while they are checked.
struct Rows<'a> {
    township: &'a Township,
    header: &'a [String],
    errs: Vec<CsvError>,
    /// Id → the line that first used it.
    ids: BTreeMap<String, usize>,
    /// Zone → the line that first gave its group, and the group.
    zones: BTreeMap<String, (usize, Multicast)>,
}

/// Checks one record; every problem goes to `ctx.errs`.
fn parse_row(ctx: &mut Rows<'_>, line: usize, rec: &[String]) -> Option<NewSpeaker> {
    let header = ctx.header;
    let township = ctx.township;
    let get = |name: &str| -> Option<&str> {
        header
            .iter()
            .position(|h| h == name)
            .map(|i| rec[i].trim())
            .filter(|v| !v.is_empty())
    };
    let mut bad = |column: &str, msg: String| {
        ctx.errs.push(CsvError {
            line,
            column: Some(column.into()),
            msg,
        })
    };
    let id = match get("id").map(Ident::parse) {
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            bad("id", e.to_string());
            None
        }
        None => {
            bad("id", "required".into());
            None
        }
    };
    if let Some(id) = &id
        && let Some(first) = ctx.ids.insert(id.as_str().to_string(), line)
    {
        bad("id", format!("`{id}` is already used on line {first}"));
    }
    let kind = match get("kind").map(DriverKind::parse) {
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => {
            bad("kind", e.to_string());
            None
        }
        None => {
            bad("kind", "required".into());
            None
        }
    };
    let address = get("address").unwrap_or_default().to_string();
    let mut group = None;
    if let Some(k) = kind {
        match check_address(k, &address) {
            Ok(g) => group = g,
            Err(e) => bad("address", e.to_string()),
        }
    }
    let village = get("village").map(str::to_string);
    if let Some(v) = &village
        && !township.villages.contains(v)
    {
        bad("village", format!("no village `{v}` in [township]"));
    }
    let grid = get("grid").map(str::to_string);
    if let Some(g) = &grid {
        match township.grids.get(g) {
            None => bad("grid", format!("no grid `{g}` in [township]")),
            Some(gv) if village.as_ref().is_some_and(|v| v != gv) => bad(
                "grid",
                format!(
                    "grid `{g}` belongs to village `{gv}`, not `{}`",
                    village.as_deref().unwrap_or_default()
                ),
            ),
            Some(_) => {}
        }
    }
    // A grid implies its village.
    let village = village.or_else(|| grid.as_ref().and_then(|g| township.grids.get(g).cloned()));
    let zone = match get("zone").map(Ident::parse) {
        Some(Ok(z)) => Some(z),
        Some(Err(e)) => {
            bad("zone", e.to_string());
            None
        }
        None => None,
    };
    let codec = match get("codec").map(Codec::parse) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            bad("codec", e.to_string());
            Codec::Pcmu
        }
        None => Codec::Pcmu,
    };
    let volume = small_number(get("volume"), |v| v <= 100).unwrap_or_else(|t| {
        bad("volume", format!("`{t}` is not a volume 0-100"));
        None
    });
    let ttl = small_number(get("ttl"), |v| v >= 1).unwrap_or_else(|t| {
        bad("ttl", format!("`{t}` is not a TTL 1-255"));
        None
    });
    if ttl.is_some() && kind.is_some_and(|k| k != DriverKind::RtpMulticast) {
        bad("ttl", "only rtp-multicast speakers have a TTL".into());
    }
    if kind == Some(DriverKind::RtpMulticast) {
        match (&zone, group) {
            (None, _) => bad("zone", "an rtp-multicast speaker needs a zone".into()),
            (Some(z), Some(g)) => {
                let m = Multicast {
                    group: g,
                    ttl: ttl.unwrap_or(1),
                };
                if let Some(e) = zone_conflict(&mut ctx.zones, line, z, m) {
                    bad("address", e);
                }
            }
            _ => {}
        }
    }
    let username = get("username").map(str::to_string);
    let password = get("password").map(Password::new);
    if password.is_some() && username.is_none() {
        bad("password", "a password needs a username".into());
    }
    let (id, kind) = (id?, kind?);
    Some(NewSpeaker {
        id,
        name: get("name").map(str::to_string),
        kind,
        address: address.trim().to_string(),
        village,
        grid,
        zone,
        codec,
        volume,
        ttl,
        username,
        password,
    })
}

/// A small number column: `Ok(None)` when empty, `Err(text)` when it is not
/// a number `ok` accepts.
fn small_number(v: Option<&str>, ok: impl Fn(u8) -> bool) -> Result<Option<u8>, &str> {
    match v {
        None => Ok(None),
        Some(t) => t.parse::<u8>().ok().filter(|n| ok(*n)).map(Some).ok_or(t),
    }
}

/// Records the first group given for a zone; says why a later row that
/// disagrees with it is wrong.
fn zone_conflict(
    zones: &mut BTreeMap<String, (usize, Multicast)>,
    line: usize,
    z: &Ident,
    m: Multicast,
) -> Option<String> {
    match zones.get(z.as_str()) {
        Some((first, prev)) if *prev != m => Some(format!(
            "zone `{z}` is {} ttl {} on line {first}, here {} ttl {}",
            prev.group, prev.ttl, m.group, m.ttl
        )),
        Some(_) => None,
        None => {
            zones.insert(z.as_str().to_string(), (line, m));
            None
        }
    }
}
