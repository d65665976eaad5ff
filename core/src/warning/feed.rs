//! A polled document: one CAP `<alert>`, or an Atom `<feed>` whose entries
//! embed or link alerts.

use device_drivers::cap::{self, Alert, CapError};
use device_drivers::xml::{self, XmlError};

use super::decision::sha256;
use crate::error::ErrorKind;

/// Largest feed document: 1 MiB (each embedded alert is still capped at
/// [`cap::MAX_CAP_BYTES`]).
pub const MAX_FEED_BYTES: usize = xml::MAX_XML_BYTES;
/// Most Atom entries read from one feed (the first ones; feeds list newest first).
pub const MAX_FEED_ENTRIES: usize = 200;

/// One thing a polled feed yields.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEntry {
    /// An alert carried in the feed (or the feed was one alert).
    Alert {
        /// The parsed alert.
        alert: Box<Alert>,
        /// SHA-256 of its source text, for [`Desk::handle`](super::Desk::handle).
        sha256: [u8; 32],
    },
    /// An Atom entry linking to an alert to fetch.
    Link {
        /// The entry's `<id>`, if any.
        entry_id: Option<String>,
        /// Absolute `http(s)` URL of the CAP document.
        url: String,
    },
    /// An Atom entry that could not be used (the others still are).
    Invalid {
        /// The entry's `<id>`, if any.
        entry_id: Option<String>,
        /// Why.
        reason: String,
    },
}

/// Why a polled document yields nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Refused by the XML reader (size, DTD, malformed…).
    #[error("feed: {0}")]
    Xml(#[from] XmlError),
    /// The document is a single alert that is not valid CAP.
    #[error("{0}")]
    Cap(#[from] CapError),
    /// Neither `<alert>` nor an Atom `<feed>`.
    #[error("feed: root element <{0}> is neither a CAP <alert> nor an Atom <feed>")]
    NotAFeed(String),
}

impl FeedError {
    /// Always [`ErrorKind::Invalid`]: the document is not one we read.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// Reads a polled document: one CAP `<alert>`, or an Atom `<feed>` whose
/// entries embed an alert in `<content>` (as XML, or as escaped text) or
/// link to one (`<link href>`, preferring `type="application/cap+xml"`).
/// Only the first [`MAX_FEED_ENTRIES`] entries are read.
pub fn parse_feed(bytes: &[u8]) -> Result<Vec<FeedEntry>, FeedError> {
    let text = xml::check(bytes, MAX_FEED_BYTES)?;
    let doc = xml::parse(text)?;
    let root = doc.root_element();
    match xml::local(root) {
        "alert" => {
            let alert = cap::from_node(root)?;
            Ok(vec![FeedEntry::Alert {
                alert: Box::new(alert),
                sha256: sha256(bytes),
            }])
        }
        "feed" => Ok(xml::children(root, "entry")
            .take(MAX_FEED_ENTRIES)
            .map(|e| {
                let entry_id = xml::child(e, "id").and_then(xml::text);
                let invalid = |reason: String| FeedEntry::Invalid {
                    entry_id: entry_id.clone(),
                    reason,
                };
                if let Some(content) = xml::child(e, "content") {
                    if let Some(a) = xml::child(content, "alert") {
                        let src = &text[a.range()];
                        return match cap::from_node(a) {
                            Ok(alert) => FeedEntry::Alert {
                                alert: Box::new(alert),
                                sha256: sha256(src.as_bytes()),
                            },
                            Err(err) => invalid(err.to_string()),
                        };
                    }
                    if let Some(t) = xml::text(content).filter(|t| t.starts_with('<')) {
                        return match cap::parse(t.as_bytes()) {
                            Ok(alert) => FeedEntry::Alert {
                                alert: Box::new(alert),
                                sha256: sha256(t.as_bytes()),
                            },
                            Err(err) => invalid(err.to_string()),
                        };
                    }
                }
                let links: Vec<_> = xml::children(e, "link")
                    .filter(|l| xml::attr(*l, "href").is_some())
                    .collect();
                let link = links
                    .iter()
                    .find(|l| xml::attr(**l, "type").is_some_and(|t| t.contains("cap+xml")))
                    .or_else(|| {
                        links
                            .iter()
                            .find(|l| xml::attr(**l, "rel").is_none_or(|r| r == "alternate"))
                    })
                    .or(links.first());
                let Some(href) = link.and_then(|l| xml::attr(*l, "href")) else {
                    return invalid(
                        "entry has neither an embedded <alert> nor a <link href>".into(),
                    );
                };
                let href = href.trim();
                let ok = url::Url::parse(href)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if ok {
                    FeedEntry::Link {
                        entry_id,
                        url: href.to_string(),
                    }
                } else {
                    let shown: String = href.chars().take(64).collect();
                    invalid(format!("link `{shown}` is not an absolute http(s) URL"))
                }
            })
            .collect()),
        other => Err(FeedError::NotAFeed(other.chars().take(64).collect())),
    }
}
