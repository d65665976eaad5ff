//! Safe, namespace-prefix-agnostic XML reading for device input.
//!
//! Every XML document a device sends goes through [`parse`]: it is capped in
//! size and node count, must be UTF-8, and is rejected outright when it carries
//! a DTD (`<!DOCTYPE`) or entity declarations, so entity-expansion attacks never
//! reach the parser. Elements are then looked up by local name only, because
//! cameras disagree about prefixes (`tds:`, `MC1:`, none at all).

use std::fmt;

/// Default cap on an XML document from a device: 1 MiB.
pub const MAX_XML_BYTES: usize = 1 << 20;

/// Cap on the number of nodes in one document.
pub const MAX_XML_NODES: u32 = 200_000;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("document is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("document is empty")]
    Empty,
    #[error("document is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("document carries a DTD or entity declaration, which is refused")]
    Dtd,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("expected element <{0}> is missing")]
    Missing(&'static str),
}

/// Checks size, encoding and the absence of a DTD, and returns the text.
pub fn check(bytes: &[u8], max: usize) -> Result<&str, XmlError> {
    if bytes.len() > max {
        return Err(XmlError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.trim_start_matches('\u{feff}');
    if text.trim().is_empty() {
        return Err(XmlError::Empty);
    }
    if contains_ignore_ascii_case(text, "<!DOCTYPE") || contains_ignore_ascii_case(text, "<!ENTITY")
    {
        return Err(XmlError::Dtd);
    }
    Ok(text)
}

/// Parses a device document: see the module docs for what is refused.
pub fn parse(text: &str) -> Result<roxmltree::Document<'_>, XmlError> {
    if text.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge {
            len: text.len(),
            max: MAX_XML_BYTES,
        });
    }
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_XML_NODES,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => XmlError::Dtd,
        other => XmlError::Malformed(other.to_string()),
    })
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(n.len())
        .any(|w| w.eq_ignore_ascii_case(n))
}

/// A node's local name (the part after any prefix).
pub fn local<'a>(node: roxmltree::Node<'a, '_>) -> &'a str {
    node.tag_name().name()
}

/// The first child element with this local name.
pub fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// All child elements with this local name.
pub fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The first descendant element (depth-first, including `node`) with this local name.
pub fn find<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// All descendant elements with this local name.
pub fn find_all<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.descendants()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// The trimmed text of an element (concatenated text children), if non-empty.
pub fn text(node: roxmltree::Node<'_, '_>) -> Option<String> {
    let s: String = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect();
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Text of the first descendant with this local name.
pub fn find_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    find(node, name).and_then(text)
}

/// Text of a path of child local names below `node`, e.g. `["Resolution", "Width"]`.
pub fn path_text(node: roxmltree::Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut cur = node;
    for p in path {
        cur = child(cur, p)?;
    }
    text(cur)
}

/// An attribute by local name, ignoring its namespace.
pub fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| a.name() == name)
        .map(|a| a.value())
}

/// Escapes text for inclusion in an XML element or attribute.
pub fn escape(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// Display adapter returned by [`escape`].
pub struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '&' => f.write_str("&amp;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dtd_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>"#;
        assert_eq!(check(bomb.as_bytes(), MAX_XML_BYTES), Err(XmlError::Dtd));
        assert_eq!(parse(bomb).err(), Some(XmlError::Dtd));
        let lower = "<!doctype a><a/>";
        assert_eq!(check(lower.as_bytes(), MAX_XML_BYTES), Err(XmlError::Dtd));
    }

    #[test]
    fn refuses_oversize_and_non_utf8() {
        let big = vec![b'a'; 11];
        assert_eq!(
            check(&big, 10),
            Err(XmlError::TooLarge { len: 11, max: 10 })
        );
        assert_eq!(
            check(b"<a>\xff</a>", 100),
            Err(XmlError::NotUtf8 { offset: 3 })
        );
        assert_eq!(check(b"  \n", 100), Err(XmlError::Empty));
    }

    #[test]
    fn lookups_ignore_prefixes() {
        let doc = parse(
            r#"<x:A xmlns:x="urn:a" xmlns:MC1="urn:b"><MC1:B k="v"> hi </MC1:B><B>2</B></x:A>"#,
        )
        .unwrap();
        let root = doc.root_element();
        assert_eq!(local(root), "A");
        assert_eq!(find_text(root, "B").as_deref(), Some("hi"));
        assert_eq!(children(root, "B").count(), 2);
        assert_eq!(attr(child(root, "B").unwrap(), "k"), Some("v"));
        assert_eq!(path_text(root, &["B"]).as_deref(), Some("hi"));
    }

    #[test]
    fn malformed_is_an_error_not_a_panic() {
        assert!(matches!(parse("<a><b></a>"), Err(XmlError::Malformed(_))));
        assert!(matches!(parse("<a"), Err(XmlError::Malformed(_))));
    }

    #[test]
    fn escape_roundtrip() {
        assert_eq!(
            escape("a<b&\"c'>").to_string(),
            "a&lt;b&amp;&quot;c&apos;&gt;"
        );
    }
}
