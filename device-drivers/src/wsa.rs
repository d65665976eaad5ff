//! WS-Addressing 1.0 for the ONVIF event calls: the request header blocks
//! (`wsa:Action`, `wsa:To`, `wsa:MessageID`, `wsa:ReplyTo`) and the
//! reference parameters of an endpoint reference.
//!
//! A camera may hand out a subscription as a generic address plus
//! `<wsa:ReferenceParameters>` (Axis: `/onvif/services` and a
//! `dom0:SubscriptionId`); the client must then echo each parameter as a
//! SOAP header block marked `wsa:IsReferenceParameter="true"` on every call
//! to that subscription (WS-Addressing 1.0 SOAP Binding §2.3).
//!
//! Pure. Reference parameters are never copied as raw text: each one is
//! read into an [`Element`] (namespace, local name, attributes, text and
//! child elements) from a document that already passed [`crate::xml`]
//! (size cap, no DTD), capped in count ([`MAX_PARAMETERS`]), depth
//! ([`MAX_DEPTH`]) and serialised size ([`MAX_PARAMETER_BYTES`]), and
//! written back by us with every namespace declared and every value
//! escaped. Comments and processing instructions are dropped.

use std::fmt::Write as _;

use crate::soap::{SOAP_ENV_NS, WSSE_NS, WSU_NS};
use crate::xml;

/// WS-Addressing 1.0 namespace (`wsa:`).
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";

/// The anonymous address: "answer on this connection".
pub const ANONYMOUS: &str = "http://www.w3.org/2005/08/addressing/anonymous";

/// The `xml:` prefix's namespace (never declared, always bound).
const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Most reference parameters kept from one endpoint reference.
pub const MAX_PARAMETERS: usize = 8;

/// Deepest element nesting inside one reference parameter (the parameter
/// itself is depth 1).
pub const MAX_DEPTH: usize = 4;

/// Most bytes the reference parameters of one endpoint reference may take,
/// read and re-serialised (all header blocks together).
pub const MAX_PARAMETER_BYTES: usize = 2048;

/// Why reference parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsaError {
    /// More parameters than [`MAX_PARAMETERS`].
    #[error("{count} WS-Addressing reference parameters, over the limit of {max}")]
    TooMany {
        /// How many the reference carried.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("WS-Addressing reference parameter <{name}> nests deeper than {max} elements")]
    TooDeep {
        /// The top-level parameter's local name.
        name: String,
        /// The limit.
        max: usize,
    },
    /// Over [`MAX_PARAMETER_BYTES`] read or serialised.
    #[error("WS-Addressing reference parameters exceed {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A parameter in the SOAP, WS-Security or WS-Addressing namespace,
    /// which would be confused with the headers we write ourselves.
    #[error("WS-Addressing reference parameter <{name}> is in reserved namespace {namespace}")]
    Reserved {
        /// Its local name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
}

/// An attribute of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Namespace URI, `None` for an unqualified attribute.
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// Value, unescaped.
    pub value: String,
}

/// What an [`Element`] contains, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Character data, unescaped (CDATA included).
    Text(String),
    /// A child element.
    Element(Element),
}

/// An element kept to be echoed (a reference parameter or one of its
/// children).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, `None` when the element has none.
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// Attributes (an `IsReferenceParameter` the camera sent is not kept:
    /// [`Addressing`] adds its own).
    pub attributes: Vec<Attribute>,
    /// Text and child elements.
    pub content: Vec<Content>,
}

impl Element {
    /// The text directly inside (child elements' text excluded).
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|c| match c {
                Content::Text(t) => Some(t.as_str()),
                Content::Element(_) => None,
            })
            .collect()
    }

    /// Writes the element. `parent_ns` is the default namespace in scope;
    /// `marker` adds `wsa:IsReferenceParameter="true"` (the `wsa` prefix
    /// must be declared by an ancestor).
    fn write(&self, out: &mut String, parent_ns: Option<&str>, marker: bool) {
        let ns = self.namespace.as_deref();
        let _ = write!(out, "<{}", self.name);
        if ns != parent_ns {
            out.push_str(" xmlns=\"");
            escape(out, ns.unwrap_or(""), true);
            out.push('"');
        }
        if marker {
            out.push_str(" wsa:IsReferenceParameter=\"true\"");
        }
        for (i, a) in self.attributes.iter().enumerate() {
            match a.namespace.as_deref() {
                None => {
                    let _ = write!(out, " {}=\"", a.name);
                    escape(out, &a.value, true);
                    out.push('"');
                }
                Some(NS_XML) => {
                    let _ = write!(out, " xml:{}=\"", a.name);
                    escape(out, &a.value, true);
                    out.push('"');
                }
                Some(u) => {
                    let _ = write!(out, " xmlns:n{i}=\"");
                    escape(out, u, true);
                    let _ = write!(out, "\" n{i}:{}=\"", a.name);
                    escape(out, &a.value, true);
                    out.push('"');
                }
            }
        }
        if self.content.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.content {
            match c {
                Content::Text(t) => escape(out, t, false),
                Content::Element(e) => e.write(out, ns, false),
            }
        }
        let _ = write!(out, "</{}>", self.name);
    }
}

/// Escapes markup characters, and the characters a parser would
/// normalise away (`\r` in text; tab, line feed and `\r` in attribute
/// values) as character references, so the camera reads back exactly the
/// value it sent.
fn escape(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// Takes `n` bytes from `budget`, or fails when it has fewer left.
fn spend(budget: &mut usize, n: usize) -> Result<(), WsaError> {
    *budget = budget.checked_sub(n).ok_or(WsaError::TooLarge {
        max: MAX_PARAMETER_BYTES,
    })?;
    Ok(())
}

/// Reads the element `node` (depth `depth`) with `budget` bytes left.
fn read(
    node: roxmltree::Node<'_, '_>,
    depth: usize,
    top: &str,
    budget: &mut usize,
) -> Result<Element, WsaError> {
    if depth > MAX_DEPTH {
        return Err(WsaError::TooDeep {
            name: top.to_string(),
            max: MAX_DEPTH,
        });
    }
    let tag = node.tag_name();
    // `xmlns=""` (undeclaring the default) reads as an empty namespace.
    let ns = tag.namespace().filter(|n| !n.is_empty());
    spend(budget, tag.name().len() + ns.map_or(0, str::len))?;
    let mut attributes = Vec::new();
    for a in node.attributes() {
        if a.namespace() == Some(NS_WSA) && a.name() == "IsReferenceParameter" {
            continue;
        }
        let ans = a.namespace().filter(|n| !n.is_empty());
        spend(
            budget,
            a.name().len() + a.value().len() + ans.map_or(0, str::len),
        )?;
        attributes.push(Attribute {
            namespace: ans.map(str::to_string),
            name: a.name().to_string(),
            value: a.value().to_string(),
        });
    }
    let mut content = Vec::new();
    for c in node.children() {
        if c.is_element() {
            content.push(Content::Element(read(c, depth + 1, top, budget)?));
        } else if let Some(t) = c.text().filter(|_| c.is_text()) {
            spend(budget, t.len())?;
            // Text around a dropped comment is one text, as it reads back.
            match content.last_mut() {
                Some(Content::Text(prev)) => prev.push_str(t),
                _ => content.push(Content::Text(t.to_string())),
            }
        }
    }
    Ok(Element {
        namespace: ns.map(str::to_string),
        name: tag.name().to_string(),
        attributes,
        content,
    })
}

/// Reads reference parameters from `nodes` (the children of
/// `ReferenceParameters`, or a request's header blocks marked as such),
/// enforcing every cap.
fn read_all<'a, 'i: 'a>(
    nodes: impl Iterator<Item = roxmltree::Node<'a, 'i>>,
) -> Result<Vec<Element>, WsaError> {
    let mut budget = MAX_PARAMETER_BYTES;
    let mut out = Vec::new();
    for (count, n) in nodes.enumerate() {
        if count >= MAX_PARAMETERS {
            return Err(WsaError::TooMany {
                count: count + 1,
                max: MAX_PARAMETERS,
            });
        }
        let ns = n.tag_name().namespace().unwrap_or("");
        if [SOAP_ENV_NS, WSSE_NS, WSU_NS, NS_WSA].contains(&ns) {
            return Err(WsaError::Reserved {
                name: n.tag_name().name().to_string(),
                namespace: ns.to_string(),
            });
        }
        out.push(read(n, 1, n.tag_name().name(), &mut budget)?);
    }
    if serialised_len(&out) > MAX_PARAMETER_BYTES {
        return Err(WsaError::TooLarge {
            max: MAX_PARAMETER_BYTES,
        });
    }
    Ok(out)
}

fn serialised_len(params: &[Element]) -> usize {
    let mut s = String::new();
    for p in params {
        p.write(&mut s, None, true);
    }
    s.len()
}

/// The reference parameters of the endpoint reference `epr` (e.g. a
/// `SubscriptionReference`): the element children of its
/// `ReferenceParameters` child, empty when there is none.
pub fn reference_parameters(epr: roxmltree::Node<'_, '_>) -> Result<Vec<Element>, WsaError> {
    match xml::child(epr, "ReferenceParameters") {
        Some(rp) => read_all(rp.children().filter(|c| c.is_element())),
        None => Ok(Vec::new()),
    }
}

/// `urn:uuid:` + a version-4 UUID made of `random` (the caller's 16
/// random bytes: this module reads no randomness itself).
pub fn message_id(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h =
        |r: std::ops::Range<usize>| -> String { b[r].iter().map(|x| format!("{x:02x}")).collect() };
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        h(0..4),
        h(4..6),
        h(6..8),
        h(8..10),
        h(10..16)
    )
}

/// The WS-Addressing headers of one request.
#[derive(Debug, Clone, Copy)]
pub struct Addressing<'a> {
    /// `wsa:Action`: the operation's input action URI.
    pub action: &'a str,
    /// `wsa:To`: the address the request is posted to.
    pub to: &'a str,
    /// `wsa:MessageID` (see [`message_id`]).
    pub message_id: &'a str,
    /// Echoed as header blocks with `wsa:IsReferenceParameter="true"`.
    pub reference_parameters: &'a [Element],
}

impl Addressing<'_> {
    /// The header blocks, compact; the enclosing `Header` must declare the
    /// `wsa` prefix as [`NS_WSA`] ([`crate::soap::envelope_with`] does).
    pub fn write(&self, out: &mut String) {
        out.push_str("<wsa:Action>");
        escape(out, self.action, false);
        out.push_str("</wsa:Action><wsa:MessageID>");
        escape(out, self.message_id, false);
        let _ = write!(
            out,
            "</wsa:MessageID><wsa:ReplyTo><wsa:Address>{ANONYMOUS}</wsa:Address></wsa:ReplyTo><wsa:To>"
        );
        escape(out, self.to, false);
        out.push_str("</wsa:To>");
        for p in self.reference_parameters {
            p.write(out, None, true);
        }
    }
}

/// The WS-Addressing headers a request carried (the camera's view; the
/// simulator and the tests read requests with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHeaders {
    /// `wsa:Action`, trimmed.
    pub action: Option<String>,
    /// `wsa:To`, trimmed.
    pub to: Option<String>,
    /// `wsa:MessageID`, trimmed.
    pub message_id: Option<String>,
    /// `wsa:ReplyTo/wsa:Address`, trimmed.
    pub reply_to: Option<String>,
    /// Header blocks marked `wsa:IsReferenceParameter="true"` (or `1`).
    pub reference_parameters: Vec<Element>,
}

/// Reads the WS-Addressing headers of a request envelope (`root` is its
/// `Envelope` element); no `Header` gives empty headers.
pub fn request_headers(root: roxmltree::Node<'_, '_>) -> Result<RequestHeaders, WsaError> {
    let Some(header) = xml::child(root, "Header") else {
        return Ok(RequestHeaders::default());
    };
    let wsa = |name: &str| {
        header
            .children()
            .find(|c| c.tag_name().namespace() == Some(NS_WSA) && c.tag_name().name() == name)
    };
    let text = |name: &str| wsa(name).and_then(xml::text);
    let marked = header.children().filter(|c| {
        c.is_element()
            && c.attribute((NS_WSA, "IsReferenceParameter"))
                .is_some_and(|v| matches!(v.trim(), "true" | "1"))
    });
    Ok(RequestHeaders {
        action: text("Action"),
        to: text("To"),
        message_id: text("MessageID"),
        reply_to: wsa("ReplyTo")
            .and_then(|r| xml::child(r, "Address"))
            .and_then(xml::text),
        reference_parameters: read_all(marked)?,
    })
}

#[cfg(test)]
mod tests;
