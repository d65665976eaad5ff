//! [`TimetableError`] and how a fault found on the parsed document gets the
//! line of its key path in the text.

use std::fmt;

use crate::error::ErrorKind;

/// A timetable that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TimetableError {
    /// The file, when read from one.
    pub file: Option<String>,
    /// Key path, e.g. `schedule[2].programme`; empty for the whole document.
    pub path: String,
    /// Line in the file (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl TimetableError {
    /// Always [`ErrorKind::Invalid`]: the timetable is wrong or unreadable.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl fmt::Display for TimetableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut head = Vec::new();
        if let Some(file) = &self.file {
            head.push(file.clone());
        }
        if !self.path.is_empty() {
            head.push(self.path.clone());
        }
        let mut s = head.join(": ");
        if let Some(l) = self.line {
            if s.is_empty() {
                s = format!("line {l}");
            } else {
                s.push_str(&format!(" (line {l})"));
            }
        }
        if s.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{s}: {}", self.message)
        }
    }
}

/// A validation fault before it is given a line.
pub(super) struct Fault {
    path: String,
    message: String,
}

pub(super) fn fault(path: impl Into<String>, message: impl Into<String>) -> Fault {
    Fault {
        path: path.into(),
        message: message.into(),
    }
}

impl Fault {
    pub(super) fn into_error(
        self,
        file: Option<&str>,
        loc: Option<&Locator<'_>>,
    ) -> TimetableError {
        TimetableError {
            file: file.map(str::to_string),
            line: loc.and_then(|l| l.line(&self.path)),
            path: self.path,
            message: self.message,
        }
    }
}

/// Finds the line of a key path in the TOML text.
pub(super) struct Locator<'a> {
    text: &'a str,
    root: toml::de::DeTable<'a>,
}

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Seg::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

impl<'a> Locator<'a> {
    pub(super) fn new(text: &'a str) -> Option<Self> {
        let root = toml::de::DeTable::parse(text).ok()?.into_inner();
        Some(Self { text, root })
    }

    /// The line of the deepest part of `path` present in the document.
    pub(super) fn line(&self, path: &str) -> Option<usize> {
        use toml::de::DeValue;
        let mut span: Option<std::ops::Range<usize>> = None;
        let mut table = Some(&self.root);
        let mut array: Option<&[toml::Spanned<DeValue<'a>>]> = None;
        for seg in segments(path) {
            let next = match seg {
                Seg::Key(k) => table.and_then(|t| {
                    t.iter()
                        .find(|(key, _)| key.get_ref().as_ref() == k)
                        .map(|(key, v)| (key.span(), v))
                }),
                Seg::Index(i) => array.and_then(|a| a.get(i)).map(|v| (v.span(), v)),
            };
            let Some((key_span, v)) = next else { break };
            // A table's own span can cover its whole body: point at the key
            // (or array element) that led there instead.
            span = Some(match v.get_ref() {
                DeValue::Table(_) => key_span,
                _ => v.span(),
            });
            table = v.get_ref().as_table();
            array = v.get_ref().as_array().map(|a| &a[..]);
        }
        let span = span?;
        let before = self.text.get(..span.start.min(self.text.len()))?;
        Some(before.matches('\n').count() + 1)
    }
}
