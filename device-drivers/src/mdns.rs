//! Multicast DNS / DNS Service Discovery (RFC 6762, RFC 6763), the pure
//! core: a query builder, a response builder (for the simulator and tests)
//! and a message parser, plus [`instances`], which turns PTR / SRV / TXT /
//! A records into the service instances they describe. No sockets here;
//! see `mdns_io`.
//!
//! # What we look for
//!
//! | service type | [`Driver`] | address |
//! |---|---|---|
//! | `_sip._udp.local` ([`SIP_SERVICE`]) | `sip` | `sip:USER@IP:PORT`, `USER` from the TXT key `user` (default `horn`) |
//! | `_rtp-horn._udp.local` ([`RTP_HORN_SERVICE`]) | `rtp` | `IP:PORT`, the G.711 law from the TXT key `codec` (`pcmu`, `pcma`) |
//!
//! `_sip._udp` is the DNS-SD name of a SIP user agent (RFC 6763 §7 service
//! names from the IANA registry); SIP paging horns that speak Bonjour
//! advertise it with the port they take INVITEs on. There is no registered
//! type for a plain RTP receiver, so `_rtp-horn._udp` is this project's
//! convention for horns (or their OEM firmware) that want to be found; the
//! simulator's RTP horns use it. Everything else is ignored.
//!
//! # Hostile input
//!
//! [`parse`] never panics and bounds its work: at most [`MAX_PACKET`] bytes,
//! [`MAX_ENTRIES`] questions plus records, names of at most [`MAX_NAME`]
//! bytes, labels of at most 63 bytes, and compression pointers that must
//! point strictly before the label run they leave (so they cannot loop),
//! with at most [`MAX_POINTERS`] of them per name. Errors name the byte
//! offset.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The mDNS IPv4 group and port.
pub const GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353);
/// SIP user agents (paging horns).
pub const SIP_SERVICE: &str = "_sip._udp.local";
/// Plain RTP horns (this project's convention, see the module docs).
pub const RTP_HORN_SERVICE: &str = "_rtp-horn._udp.local";
/// The service types a discovery round asks for.
pub const SERVICES: [&str; 2] = [SIP_SERVICE, RTP_HORN_SERVICE];
/// Largest message [`parse`] accepts (RFC 6762 §17: 9000 bytes).
pub const MAX_PACKET: usize = 9000;
/// Most questions plus records in one message.
pub const MAX_ENTRIES: usize = 256;
/// Longest name, in wire bytes (RFC 1035 §2.3.4).
pub const MAX_NAME: usize = 255;
/// Most compression pointers followed for one name.
pub const MAX_POINTERS: usize = 32;
/// Most strings in one TXT record.
pub const MAX_TXT_STRINGS: usize = 64;

/// Record type A (IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type PTR.
pub const TYPE_PTR: u16 = 12;
/// Record type TXT.
pub const TYPE_TXT: u16 = 16;
/// Record type AAAA.
pub const TYPE_AAAA: u16 = 28;
/// Record type SRV.
pub const TYPE_SRV: u16 = 33;
/// Query type ANY.
pub const TYPE_ANY: u16 = 255;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// Why bytes are not a usable mDNS message (or a message cannot be built).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MdnsError {
    /// Bigger than [`MAX_PACKET`].
    #[error("mDNS message of {0} bytes exceeds the {MAX_PACKET}-byte cap")]
    TooLarge(usize),
    /// The message ends inside something.
    #[error("mDNS message truncated at byte {at} (reading {what})")]
    Truncated {
        /// Byte offset.
        at: usize,
        /// What was being read.
        what: &'static str,
    },
    /// More questions and records than [`MAX_ENTRIES`].
    #[error("mDNS message announces {0} questions and records (cap {MAX_ENTRIES})")]
    TooManyEntries(usize),
    /// A label length byte with the reserved 0x40 / 0x80 bits.
    #[error("mDNS name at byte {at}: unsupported label type 0x{byte:02x}")]
    BadLabel {
        /// Byte offset.
        at: usize,
        /// The length byte.
        byte: u8,
    },
    /// A name longer than [`MAX_NAME`] bytes.
    #[error("mDNS name at byte {at} is longer than {MAX_NAME} bytes")]
    NameTooLong {
        /// Byte offset where the name starts.
        at: usize,
    },
    /// A compression pointer that does not point backwards, or too many.
    #[error("mDNS name at byte {at}: compression pointer to {to} would loop")]
    PointerLoop {
        /// Byte offset of the pointer.
        at: usize,
        /// Where it points.
        to: usize,
    },
    /// A record whose data does not fit its type.
    #[error("mDNS record at byte {at} (type {rtype}): {why}")]
    BadRecord {
        /// Byte offset of the record.
        at: usize,
        /// Record type.
        rtype: u16,
        /// What is wrong.
        why: &'static str,
    },
    /// A name we were asked to write is not valid (empty label, too long).
    #[error("cannot encode mDNS name `{0}`")]
    BadName(String),
}

/// One question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The name asked about, e.g. `_sip._udp.local`.
    pub name: String,
    /// Query type ([`TYPE_PTR`], ...).
    pub qtype: u16,
    /// The QU bit: the asker wants a unicast answer.
    pub unicast_response: bool,
}

/// A record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    /// IPv4 address.
    A(Ipv4Addr),
    /// A name (service type → instance).
    Ptr(String),
    /// Where an instance is served.
    Srv {
        /// Priority.
        priority: u16,
        /// Weight.
        weight: u16,
        /// Port.
        port: u16,
        /// Host name.
        target: String,
    },
    /// Character strings (`key=value`), raw bytes.
    Txt(Vec<Vec<u8>>),
    /// Any other type (AAAA, NSEC, ...): kept as its length only.
    Other {
        /// Record type.
        rtype: u16,
        /// RDATA length.
        len: usize,
    },
}

impl RData {
    /// The wire type of this data.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::A(_) => TYPE_A,
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::Txt(_) => TYPE_TXT,
            RData::Other { rtype, .. } => *rtype,
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name.
    pub name: String,
    /// Class without the cache-flush bit (1 = IN).
    pub class: u16,
    /// The mDNS cache-flush bit.
    pub cache_flush: bool,
    /// Seconds.
    pub ttl: u32,
    /// Data.
    pub data: RData,
}

impl Record {
    /// An IN record with the given TTL.
    pub fn new(name: &str, ttl: u32, data: RData) -> Record {
        Record {
            name: name.to_string(),
            class: CLASS_IN,
            cache_flush: false,
            ttl,
            data,
        }
    }
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// Transaction id (0 in multicast; echoed in legacy unicast answers).
    pub id: u16,
    /// QR: a response.
    pub is_response: bool,
    /// Questions.
    pub questions: Vec<Question>,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section.
    pub additional: Vec<Record>,
}

impl Message {
    /// Answers, authority and additional records together.
    pub fn records(&self) -> impl Iterator<Item = &Record> + Clone {
        self.answers
            .iter()
            .chain(&self.authority)
            .chain(&self.additional)
    }
}

/// Splits a presentation name (`Horn\.1._sip._udp.local`) into labels;
/// `\.` and `\\` escape a dot and a backslash inside a label. A trailing
/// dot is allowed.
fn labels(name: &str) -> Result<Vec<Vec<u8>>, MdnsError> {
    let bad = || MdnsError::BadName(name.chars().take(80).collect());
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = name.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => cur.push(bytes.next().ok_or_else(bad)?),
            b'.' => out.push(std::mem::take(&mut cur)),
            _ => cur.push(b),
        }
    }
    out.push(cur);
    let wire: usize = out.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
    if out.iter().any(|l| l.is_empty() || l.len() > 63) || wire > MAX_NAME {
        return Err(bad());
    }
    Ok(out)
}

/// Appends one label in presentation form (escaping `.` and `\`).
fn push_label(out: &mut String, label: &[u8]) {
    if !out.is_empty() {
        out.push('.');
    }
    for ch in String::from_utf8_lossy(label).chars() {
        if ch == '.' || ch == '\\' {
            out.push('\\');
        }
        out.push(ch);
    }
}

/// The first label of a name, unescaped (an instance's display name).
pub fn first_label(name: &str) -> String {
    let mut out = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '.' => break,
            _ => out.push(c),
        }
    }
    out
}

/// Case-insensitive (ASCII) name comparison, ignoring a trailing dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

/// Writes messages with name compression.
struct Writer {
    buf: Vec<u8>,
    /// Suffixes already written (exact bytes: case is kept), with their offsets.
    names: Vec<(Vec<Vec<u8>>, u16)>,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            buf: Vec::with_capacity(512),
            names: Vec::new(),
        }
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn name(&mut self, name: &str) -> Result<(), MdnsError> {
        let labels = labels(name)?;
        for i in 0..labels.len() {
            let suffix: Vec<Vec<u8>> = labels[i..].to_vec();
            if let Some((_, off)) = self.names.iter().find(|(s, _)| *s == suffix) {
                self.u16(0xC000 | *off);
                return Ok(());
            }
            if let Ok(off) = u16::try_from(self.buf.len())
                && off < 0x4000
            {
                self.names.push((suffix, off));
            }
            // Checked in `labels`: 1..=63 bytes.
            self.buf.push(labels[i].len() as u8);
            self.buf.extend_from_slice(&labels[i]);
        }
        self.buf.push(0);
        Ok(())
    }

    fn record(&mut self, r: &Record) -> Result<(), MdnsError> {
        self.name(&r.name)?;
        self.u16(r.data.rtype());
        self.u16(r.class | if r.cache_flush { 0x8000 } else { 0 });
        self.buf.extend_from_slice(&r.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.u16(0);
        match &r.data {
            RData::A(ip) => self.buf.extend_from_slice(&ip.octets()),
            RData::Ptr(n) => self.name(n)?,
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.u16(*priority);
                self.u16(*weight);
                self.u16(*port);
                self.name(target)?;
            }
            RData::Txt(strings) => {
                if strings.is_empty() {
                    // RFC 6763 §6.1: an empty TXT record holds one empty string.
                    self.buf.push(0);
                }
                for s in strings {
                    let n = u8::try_from(s.len()).map_err(|_| {
                        MdnsError::BadName(format!("TXT string of {} bytes", s.len()))
                    })?;
                    self.buf.push(n);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::Other { .. } => {}
        }
        let len = self.buf.len() - len_at - 2;
        let len = u16::try_from(len)
            .map_err(|_| MdnsError::BadName(format!("record data of {len} bytes")))?;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Builds a query: one PTR question per service type (`_sip._udp.local`).
/// `unicast_response` sets the QU bit. Sent from a port other than 5353,
/// it is a "legacy unicast" query (RFC 6762 §6.7): responders answer
/// straight to that port, echoing `id`.
pub fn build_query(
    id: u16,
    services: &[&str],
    unicast_response: bool,
) -> Result<Vec<u8>, MdnsError> {
    let mut w = Writer::new();
    w.u16(id);
    w.u16(0); // flags: standard query
    w.u16(u16::try_from(services.len()).map_err(|_| MdnsError::TooManyEntries(services.len()))?);
    w.u16(0);
    w.u16(0);
    w.u16(0);
    for s in services {
        w.name(s)?;
        w.u16(TYPE_PTR);
        w.u16(CLASS_IN | if unicast_response { 0x8000 } else { 0 });
    }
    Ok(w.buf)
}

/// Builds an authoritative response (flags 0x8400) echoing `questions`,
/// with names compressed.
pub fn build_response(
    id: u16,
    questions: &[Question],
    answers: &[Record],
    additional: &[Record],
) -> Result<Vec<u8>, MdnsError> {
    let total = questions.len() + answers.len() + additional.len();
    if total > MAX_ENTRIES {
        return Err(MdnsError::TooManyEntries(total));
    }
    let mut w = Writer::new();
    w.u16(id);
    w.u16(0x8400);
    // Checked above: all fit in u16.
    w.u16(questions.len() as u16);
    w.u16(answers.len() as u16);
    w.u16(0);
    w.u16(additional.len() as u16);
    for q in questions {
        w.name(&q.name)?;
        w.u16(q.qtype);
        w.u16(CLASS_IN | if q.unicast_response { 0x8000 } else { 0 });
    }
    for r in answers.iter().chain(additional) {
        w.record(r)?;
    }
    Ok(w.buf)
}

/// Reads messages (bounds-checked, see the module docs).
struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], MdnsError> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.msg.get(self.pos..end))
            .ok_or(MdnsError::Truncated { at: self.pos, what })?;
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, MdnsError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, MdnsError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a (possibly compressed) name at the cursor and moves past it.
    fn name(&mut self) -> Result<String, MdnsError> {
        let (name, next) = read_name(self.msg, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Reads the name at `start`; returns it and the offset just after it (after
/// the first pointer, if any). Pointers must point strictly before the run
/// of labels they end, so following them always moves backwards.
fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), MdnsError> {
    let mut out = String::new();
    let mut pos = start;
    let mut run_start = start;
    let mut wire = 0usize;
    let mut pointers = 0usize;
    let mut next = None;
    loop {
        let len = *msg.get(pos).ok_or(MdnsError::Truncated {
            at: pos,
            what: "a name",
        })?;
        match len & 0xC0 {
            0x00 if len == 0 => {
                wire += 1;
                if wire > MAX_NAME {
                    return Err(MdnsError::NameTooLong { at: start });
                }
                return Ok((out, next.unwrap_or(pos + 1)));
            }
            0x00 => {
                let l = usize::from(len);
                let label = msg.get(pos + 1..pos + 1 + l).ok_or(MdnsError::Truncated {
                    at: pos,
                    what: "a label",
                })?;
                wire += l + 1;
                if wire > MAX_NAME {
                    return Err(MdnsError::NameTooLong { at: start });
                }
                push_label(&mut out, label);
                pos += 1 + l;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1).ok_or(MdnsError::Truncated {
                    at: pos,
                    what: "a compression pointer",
                })?;
                let to = (usize::from(len & 0x3F) << 8) | usize::from(lo);
                pointers += 1;
                if to >= run_start || pointers > MAX_POINTERS {
                    return Err(MdnsError::PointerLoop { at: pos, to });
                }
                if next.is_none() {
                    next = Some(pos + 2);
                }
                pos = to;
                run_start = to;
            }
            _ => return Err(MdnsError::BadLabel { at: pos, byte: len }),
        }
    }
}

fn read_record(r: &mut Reader<'_>) -> Result<Record, MdnsError> {
    let at = r.pos;
    let name = r.name()?;
    let rtype = r.u16("a record type")?;
    let class = r.u16("a record class")?;
    let ttl = r.u32("a record TTL")?;
    let len = usize::from(r.u16("a record length")?);
    let data_at = r.pos;
    let data = r.take(len, "record data")?;
    let end = data_at + len;
    let bad = |why| MdnsError::BadRecord { at, rtype, why };
    // A name inside RDATA: compression may point anywhere earlier, but the
    // uncompressed part must end inside the record.
    let name_in = |from: usize| -> Result<(String, usize), MdnsError> {
        let (n, next) = read_name(r.msg, from)?;
        if next > end {
            return Err(bad("a name runs past the record"));
        }
        Ok((n, next))
    };
    let data = match rtype {
        TYPE_A => {
            let b: [u8; 4] = data.try_into().map_err(|_| bad("A data is not 4 bytes"))?;
            RData::A(Ipv4Addr::from(b))
        }
        TYPE_PTR => RData::Ptr(name_in(data_at)?.0),
        TYPE_SRV => {
            if len < 7 {
                return Err(bad("SRV data shorter than 7 bytes"));
            }
            let u = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
            RData::Srv {
                priority: u(0),
                weight: u(2),
                port: u(4),
                target: name_in(data_at + 6)?.0,
            }
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            let mut i = 0;
            while i < data.len() {
                let n = usize::from(data[i]);
                let s = data
                    .get(i + 1..i + 1 + n)
                    .ok_or_else(|| bad("a TXT string runs past the record"))?;
                if strings.len() >= MAX_TXT_STRINGS {
                    return Err(bad("too many TXT strings"));
                }
                if n > 0 {
                    strings.push(s.to_vec());
                }
                i += 1 + n;
            }
            RData::Txt(strings)
        }
        _ => RData::Other { rtype, len },
    };
    Ok(Record {
        name,
        class: class & 0x7FFF,
        cache_flush: class & 0x8000 != 0,
        ttl,
        data,
    })
}

/// Parses one message (at most [`MAX_PACKET`] bytes). Lenient where
/// responders differ (unknown record types are kept as [`RData::Other`]);
/// strict where input is hostile (see the module docs). Never panics.
pub fn parse(bytes: &[u8]) -> Result<Message, MdnsError> {
    if bytes.len() > MAX_PACKET {
        return Err(MdnsError::TooLarge(bytes.len()));
    }
    let mut r = Reader { msg: bytes, pos: 0 };
    let id = r.u16("the header")?;
    let flags = r.u16("the header")?;
    let counts = [
        r.u16("the header")?,
        r.u16("the header")?,
        r.u16("the header")?,
        r.u16("the header")?,
    ];
    let total: usize = counts.iter().map(|c| usize::from(*c)).sum();
    if total > MAX_ENTRIES {
        return Err(MdnsError::TooManyEntries(total));
    }
    let mut m = Message {
        id,
        is_response: flags & 0x8000 != 0,
        ..Message::default()
    };
    for _ in 0..counts[0] {
        let name = r.name()?;
        let qtype = r.u16("a question type")?;
        let class = r.u16("a question class")?;
        m.questions.push(Question {
            name,
            qtype,
            unicast_response: class & 0x8000 != 0,
        });
    }
    for (i, n) in counts[1..].iter().enumerate() {
        for _ in 0..*n {
            let rec = read_record(&mut r)?;
            match i {
                0 => m.answers.push(rec),
                1 => m.authority.push(rec),
                _ => m.additional.push(rec),
            }
        }
    }
    Ok(m)
}

/// How the gateway would drive a horn advertising a service type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    /// SIP paging (`_sip._udp`).
    Sip,
    /// Plain unicast RTP (`_rtp-horn._udp`).
    Rtp,
}

impl Driver {
    /// The driver kind as the speaker inventory writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Sip => "sip",
            Driver::Rtp => "rtp",
        }
    }

    /// The driver for a service type, if we know it.
    pub fn for_service(service: &str) -> Option<Driver> {
        if same_name(service, SIP_SERVICE) {
            Some(Driver::Sip)
        } else if same_name(service, RTP_HORN_SERVICE) {
            Some(Driver::Rtp)
        } else {
            None
        }
    }
}

/// One service instance put together from PTR, SRV, TXT and A records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Instance {
    /// Service type, e.g. `_sip._udp.local`.
    pub service: String,
    /// Full instance name, e.g. `Horn 1._sip._udp.local` (dots in the
    /// instance label escaped as `\.`).
    pub name: String,
    /// The instance label, unescaped: a display name.
    pub label: String,
    /// SRV target host, if an SRV record came.
    pub host: Option<String>,
    /// SRV port, if an SRV record came.
    pub port: Option<u16>,
    /// IPv4 addresses of the host (A records).
    pub addrs: Vec<Ipv4Addr>,
    /// TXT `key=value` pairs (keys lower-cased; a bare key has an empty value).
    pub txt: Vec<(String, String)>,
}

impl Instance {
    /// A TXT value by key (case-insensitive).
    pub fn txt_value(&self, key: &str) -> Option<&str> {
        self.txt
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The driver for its service type.
    pub fn driver(&self) -> Option<Driver> {
        Driver::for_service(&self.service)
    }

    /// The address the speaker inventory takes for this horn, given the
    /// IPv4 address to use (its A record, else where the answer came from):
    /// `sip:USER@IP:PORT` or `IP:PORT`. `None` without a driver or port.
    pub fn driver_address(&self, ip: Ipv4Addr) -> Option<String> {
        let port = self.port.filter(|p| *p != 0)?;
        match self.driver()? {
            Driver::Sip => {
                let user = self
                    .txt_value("user")
                    .filter(|u| {
                        !u.is_empty()
                            && u.len() <= 64
                            && u.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
                    })
                    .unwrap_or("horn");
                Some(format!("sip:{user}@{ip}:{port}"))
            }
            Driver::Rtp => Some(format!("{ip}:{port}")),
        }
    }
}

fn txt_pairs(strings: &[Vec<u8>]) -> Vec<(String, String)> {
    strings
        .iter()
        .filter_map(|s| {
            let s = String::from_utf8_lossy(s);
            let (k, v) = s.split_once('=').unwrap_or((&s, ""));
            (!k.is_empty()).then(|| (k.to_ascii_lowercase(), v.to_string()))
        })
        .collect()
}

/// The instances of `services` (all types when empty) that `records`
/// describe: every PTR from a service type to an instance, plus SRV
/// records of instances of those types that came without a PTR; each
/// completed with its SRV, TXT and the host's A records when present.
/// De-duplicated by instance name, in first-seen order.
pub fn instances<'a>(
    records: impl IntoIterator<Item = &'a Record> + Clone,
    services: &[&str],
) -> Vec<Instance> {
    let wanted = |s: &str| services.is_empty() || services.iter().any(|w| same_name(w, s));
    let mut found: Vec<(String, String)> = Vec::new();
    let mut push = |service: &str, name: &str| {
        if !found.iter().any(|(_, n)| same_name(n, name)) {
            found.push((service.to_string(), name.to_string()));
        }
    };
    for r in records.clone() {
        match &r.data {
            RData::Ptr(target) if wanted(&r.name) => push(&r.name, target),
            RData::Srv { .. } => {
                if let Some(svc) = services
                    .iter()
                    .find(|s| service_of(&r.name).is_some_and(|x| same_name(x, s)))
                {
                    push(svc, &r.name);
                }
            }
            _ => {}
        }
    }
    found
        .into_iter()
        .map(|(service, name)| {
            let mut inst = Instance {
                label: first_label(&name),
                service,
                name,
                host: None,
                port: None,
                addrs: Vec::new(),
                txt: Vec::new(),
            };
            for r in records.clone() {
                if !same_name(&r.name, &inst.name) {
                    continue;
                }
                match &r.data {
                    RData::Srv { port, target, .. } if inst.host.is_none() => {
                        inst.host = Some(target.clone());
                        inst.port = Some(*port);
                    }
                    RData::Txt(t) if inst.txt.is_empty() => inst.txt = txt_pairs(t),
                    _ => {}
                }
            }
            if let Some(host) = &inst.host {
                for r in records.clone() {
                    if let RData::A(ip) = r.data
                        && same_name(&r.name, host)
                        && !inst.addrs.contains(&ip)
                    {
                        inst.addrs.push(ip);
                    }
                }
            }
            inst
        })
        .collect()
}

/// The service type part of an instance name (`Horn._sip._udp.local` →
/// `_sip._udp.local`): everything after the first unescaped dot.
fn service_of(name: &str) -> Option<&str> {
    let mut escaped = false;
    for (i, c) in name.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '.' if !escaped => return name.get(i + 1..),
            _ => escaped = false,
        }
    }
    None
}

/// What a horn advertises (the simulator and tests build answers from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Service type, e.g. [`SIP_SERVICE`].
    pub service: String,
    /// Instance label (display name; may contain dots and spaces).
    pub label: String,
    /// Host name, e.g. `horn-0001.local`.
    pub host: String,
    /// IPv4 address of the host.
    pub addr: Ipv4Addr,
    /// Port of the service.
    pub port: u16,
    /// TXT strings, `key=value`.
    pub txt: Vec<String>,
}

impl Advert {
    /// The full instance name (label escaped).
    pub fn instance_name(&self) -> String {
        let mut s = String::new();
        push_label(&mut s, self.label.as_bytes());
        let _ = write!(s, ".{}", self.service);
        s
    }

    /// (answers, additional): the PTR, then SRV, TXT and A, with `ttl`.
    pub fn records(&self, ttl: u32) -> (Vec<Record>, Vec<Record>) {
        let inst = self.instance_name();
        let answers = vec![Record::new(&self.service, ttl, RData::Ptr(inst.clone()))];
        let additional = vec![
            Record::new(
                &inst,
                ttl,
                RData::Srv {
                    priority: 0,
                    weight: 0,
                    port: self.port,
                    target: self.host.clone(),
                },
            ),
            Record::new(
                &inst,
                ttl,
                RData::Txt(self.txt.iter().map(|s| s.as_bytes().to_vec()).collect()),
            ),
            Record::new(&self.host, ttl, RData::A(self.addr)),
        ];
        (answers, additional)
    }

    /// Whether a question asks for this advert (PTR or ANY of its type).
    pub fn answers(&self, q: &Question) -> bool {
        matches!(q.qtype, TYPE_PTR | TYPE_ANY) && same_name(&q.name, &self.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip_advert() -> Advert {
        Advert {
            service: SIP_SERVICE.into(),
            label: "东村广场 Horn.1".into(),
            host: "horn-0001.local".into(),
            addr: Ipv4Addr::new(10, 21, 3, 41),
            port: 5062,
            txt: vec!["user=paging".into(), "txtvers=1".into()],
        }
    }

    /// A query asks PTR IN for each service type, QU bit as asked.
    #[test]
    fn query_roundtrips() {
        let q = build_query(7, &SERVICES, true).unwrap();
        let m = parse(&q).unwrap();
        assert_eq!(m.id, 7);
        assert!(!m.is_response);
        assert_eq!(m.questions.len(), 2);
        assert_eq!(m.questions[0].name, SIP_SERVICE);
        assert_eq!(m.questions[1].name, RTP_HORN_SERVICE);
        assert!(
            m.questions
                .iter()
                .all(|q| q.qtype == TYPE_PTR && q.unicast_response)
        );
        // `.local` is written once and pointed at the second time.
        assert!(q.len() < 12 + 2 * (SIP_SERVICE.len() + 2 + 4));
    }

    /// A responder's answer (PTR + SRV/TXT/A in additional, names
    /// compressed, a dot and CJK in the instance label) resolves to one
    /// instance with host, port, address and TXT; the SIP address uses the
    /// TXT user.
    #[test]
    fn response_resolves_to_an_instance() {
        let a = sip_advert();
        let (ans, add) = a.records(120);
        let q = Question {
            name: SIP_SERVICE.into(),
            qtype: TYPE_PTR,
            unicast_response: false,
        };
        let bytes = build_response(9, &[q], &ans, &add).unwrap();
        let m = parse(&bytes).unwrap();
        assert!(m.is_response);
        assert_eq!(m.id, 9);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.additional.len(), 3);
        let found = instances(m.records(), &SERVICES);
        assert_eq!(found.len(), 1, "{found:?}");
        let i = &found[0];
        assert_eq!(i.label, "东村广场 Horn.1");
        assert_eq!(i.name, a.instance_name());
        assert_eq!(i.host.as_deref(), Some("horn-0001.local"));
        assert_eq!(i.port, Some(5062));
        assert_eq!(i.addrs, vec![Ipv4Addr::new(10, 21, 3, 41)]);
        assert_eq!(i.txt_value("USER"), Some("paging"));
        assert_eq!(i.driver(), Some(Driver::Sip));
        assert_eq!(
            i.driver_address(i.addrs[0]).as_deref(),
            Some("sip:paging@10.21.3.41:5062")
        );
    }

    /// An avahi-style answer: the cache-flush bit, a stray record on the host
    /// name, names in other case, no PTR (a direct SRV answer), an RTP horn
    /// with a `codec` TXT key and a bare key.
    #[test]
    fn srv_without_ptr_and_other_records() {
        let mut srv = Record::new(
            "Horn-7._RTP-HORN._udp.local",
            120,
            RData::Srv {
                priority: 0,
                weight: 0,
                port: 5004,
                target: "h7.local".into(),
            },
        );
        srv.cache_flush = true;
        let stray = Record::new("h7.local", 120, RData::Txt(vec![b"x".to_vec()]));
        let a = Record::new("H7.LOCAL", 120, RData::A(Ipv4Addr::new(127, 0, 0, 9)));
        let txt = Record::new(
            "Horn-7._rtp-horn._udp.local",
            120,
            RData::Txt(vec![b"codec=pcma".to_vec(), b"flag".to_vec()]),
        );
        let bytes = build_response(0, &[], &[srv, txt, stray, a], &[]).unwrap();
        let m = parse(&bytes).unwrap();
        assert!(m.answers[0].cache_flush);
        let found = instances(m.records(), &SERVICES);
        assert_eq!(found.len(), 1);
        let i = &found[0];
        assert_eq!(i.service, RTP_HORN_SERVICE);
        assert_eq!(i.addrs, vec![Ipv4Addr::new(127, 0, 0, 9)]);
        assert_eq!(i.txt_value("codec"), Some("pcma"));
        assert_eq!(i.txt_value("flag"), Some(""));
        assert_eq!(
            i.driver_address(i.addrs[0]).as_deref(),
            Some("127.0.0.9:5004")
        );
        // Services we do not look for are ignored.
        assert!(instances(m.records(), &["_ipp._tcp.local"]).is_empty());
    }

    /// A hand-written record with an unknown type (AAAA) is kept as Other.
    #[test]
    fn unknown_types_are_kept_as_other() {
        let mut b = vec![0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(b"\x01h\x05local\x00");
        b.extend_from_slice(&[0, 28, 0, 1, 0, 0, 0, 120, 0, 16]);
        b.extend_from_slice(&[0; 16]);
        let m = parse(&b).unwrap();
        assert_eq!(
            m.answers[0].data,
            RData::Other {
                rtype: TYPE_AAAA,
                len: 16
            }
        );
    }

    fn header(an: u16) -> Vec<u8> {
        let mut b = vec![0, 0, 0x84, 0, 0, 0];
        b.extend_from_slice(&an.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }

    /// Compression pointers that point at themselves, forwards, or into a
    /// cycle are refused with the offset; so are over-long names, reserved
    /// label types and counts that promise more than is there.
    #[test]
    fn hostile_names_are_refused() {
        // Pointer to itself (offset 12).
        let mut b = header(1);
        b.extend_from_slice(&[0xC0, 12]);
        assert_eq!(parse(&b), Err(MdnsError::PointerLoop { at: 12, to: 12 }));
        // A backward pointer into a run that points forward again: 12 "a" →
        // ptr 12 ... the second hop must be before 12 and is not.
        let mut b = header(1);
        b.extend_from_slice(&[1, b'a', 0xC0, 12]);
        assert!(matches!(
            parse(&b),
            Err(MdnsError::PointerLoop { at: 14, .. })
        ));
        // A two-step cycle through the question section.
        let mut b = vec![0, 0, 0x84, 0, 0, 1, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&[1, b'q', 0xC0, 16, 0, 12, 0, 1]); // q at 12 → 16
        b.extend_from_slice(&[0xC0, 12]); // record name at 20 → 12
        assert!(matches!(parse(&b), Err(MdnsError::PointerLoop { .. })));
        // Reserved label type.
        let mut b = header(1);
        b.push(0x41);
        assert_eq!(parse(&b), Err(MdnsError::BadLabel { at: 12, byte: 0x41 }));
        // 5 labels of 63 bytes: over 255.
        let mut b = header(1);
        for _ in 0..5 {
            b.push(63);
            b.extend_from_slice(&[b'x'; 63]);
        }
        b.push(0);
        assert_eq!(parse(&b), Err(MdnsError::NameTooLong { at: 12 }));
        // Counts promising more than there is.
        assert!(matches!(
            parse(&header(3)),
            Err(MdnsError::Truncated { at: 12, .. })
        ));
        let mut b = header(0);
        b[4] = 0xFF;
        assert_eq!(parse(&b), Err(MdnsError::TooManyEntries(0xFF00)));
        assert!(matches!(parse(&[0; 5]), Err(MdnsError::Truncated { .. })));
        assert_eq!(
            parse(&vec![0; MAX_PACKET + 1]),
            Err(MdnsError::TooLarge(MAX_PACKET + 1))
        );
    }

    /// Record data that does not fit its type: short A, SRV, a TXT string
    /// past the end, a PTR name running past its record.
    #[test]
    fn bad_record_data_is_refused() {
        let rec = |rtype: u16, data: &[u8]| {
            let mut b = header(1);
            b.extend_from_slice(b"\x01h\x00");
            b.extend_from_slice(&rtype.to_be_bytes());
            b.extend_from_slice(&[0, 1, 0, 0, 0, 120]);
            b.extend_from_slice(&(data.len() as u16).to_be_bytes());
            b.extend_from_slice(data);
            b
        };
        for (t, d) in [
            (TYPE_A, &[1u8, 2, 3][..]),
            (TYPE_SRV, &[0, 0, 0, 0, 0, 1][..]),
            (TYPE_TXT, &[5, b'a'][..]),
        ] {
            let e = parse(&rec(t, d)).unwrap_err();
            assert!(
                matches!(e, MdnsError::BadRecord { rtype, .. } if rtype == t),
                "{e}"
            );
        }
        // PTR data of 2 bytes holding the start of a longer name.
        let mut b = rec(TYPE_PTR, &[3, b'a']);
        b.extend_from_slice(b"bc\x00");
        assert!(matches!(
            parse(&b),
            Err(MdnsError::BadRecord {
                rtype: TYPE_PTR,
                ..
            })
        ));
        // Data length past the end of the message.
        let mut b = rec(TYPE_A, &[1, 2, 3, 4]);
        b.truncate(b.len() - 1);
        assert!(matches!(parse(&b), Err(MdnsError::Truncated { .. })));
    }

    /// Names we cannot encode are refused by the builders.
    #[test]
    fn builders_refuse_bad_names() {
        assert!(build_query(0, &["a..local"], false).is_err());
        let long = format!("{}.local", "x".repeat(64));
        assert!(build_query(0, &[long.as_str()], false).is_err());
        assert!(build_query(0, &["trailing\\"], false).is_err());
        assert!(build_query(0, &["_sip._udp.local."], false).is_ok());
    }

    /// Presentation helpers: escaped dots stay in the first label.
    #[test]
    fn name_helpers() {
        assert_eq!(first_label("Horn\\.1._sip._udp.local"), "Horn.1");
        assert_eq!(
            service_of("Horn\\.1._sip._udp.local"),
            Some("_sip._udp.local")
        );
        assert!(same_name("_SIP._udp.local.", SIP_SERVICE));
        assert_eq!(Driver::for_service("_ipp._tcp.local"), None);
    }
}
