//! SIP over a byte stream (TCP, RFC 3261 §18.3), pure: bytes as they
//! arrive go in, whole messages come out, cut by their `Content-Length`
//! (required over a stream; compact `l:` accepted). CRLF keepalives between
//! messages (RFC 5626 §4.4.1: a `CRLFCRLF` ping) come out as
//! [`Frame::Ping`], so the IO side can answer with a single CRLF pong.
//!
//! Capped: a head without its blank line within the cap, or a message
//! larger than the cap, is an error; the stream cannot be resynchronised
//! after one, so the IO side closes the connection.

/// One item cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message (head and body), for [`crate::sip::parse`].
    Message(Vec<u8>),
    /// A `CRLFCRLF` keepalive ping.
    Ping,
}

/// Why the stream cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// No end of headers within the cap.
    #[error("SIP head longer than {0} bytes without its end")]
    HeadTooLong(usize),
    /// `Content-Length` plus head over the cap.
    #[error("SIP message of {size} bytes is over the cap of {cap}")]
    TooLarge {
        /// Head plus announced body.
        size: usize,
        /// The cap.
        cap: usize,
    },
    /// `Content-Length` missing, unreadable, or given twice differently.
    #[error("bad or missing Content-Length over a stream: {0:?}")]
    ContentLength(String),
}

/// Cuts SIP messages from a stream.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    cap: usize,
    /// CRLFs skipped before the next message.
    crlfs: usize,
}

impl Framer {
    /// A framer refusing messages over `cap` bytes (use [`crate::sip::MAX_MESSAGE`]).
    pub fn new(cap: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            cap,
            crlfs: 0,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held, not yet a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole item, `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        // Line ends between messages: keepalive pings.
        let lead = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if lead > 0 {
            let lfs = self.buf[..lead].iter().filter(|b| **b == b'\n').count();
            self.buf.drain(..lead);
            self.crlfs += lfs;
        }
        if self.crlfs >= 2 {
            self.crlfs = 0;
            return Ok(Some(Frame::Ping));
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.crlfs = 0;
        let Some((head_len, body_at)) = head_end(&self.buf) else {
            if self.buf.len() > self.cap {
                return Err(FrameError::HeadTooLong(self.cap));
            }
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]);
        let mut length: Option<usize> = None;
        for line in head.split('\n').skip(1) {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let k = k.trim();
            if k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("l") {
                let v = v.trim();
                let n: usize = v
                    .parse()
                    .map_err(|_| FrameError::ContentLength(v.chars().take(40).collect()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(FrameError::ContentLength(format!("{n} and {length:?}")));
                }
                length = Some(n);
            }
        }
        let n = length.ok_or_else(|| FrameError::ContentLength("missing".into()))?;
        let size = body_at.saturating_add(n);
        if size > self.cap {
            return Err(FrameError::TooLarge {
                size,
                cap: self.cap,
            });
        }
        if self.buf.len() < size {
            return Ok(None);
        }
        let msg: Vec<u8> = self.buf.drain(..size).collect();
        Ok(Some(Frame::Message(msg)))
    }
}

/// Where the head ends: (head length, body offset).
fn head_end(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = b.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, l + 2)),
        (Some(c), _) => Some((c, c + 4)),
        (None, Some(l)) => Some((l, l + 2)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip;

    const REG: &[u8] =
        b"SIP/2.0 200 OK\r\nCall-ID: a\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n";
    const MSG: &[u8] = b"MESSAGE sip:x@y SIP/2.0\r\nl: 5\r\nCall-ID: b\r\n\r\nhello";

    fn all(f: &mut Framer) -> Vec<Frame> {
        let mut v = Vec::new();
        while let Some(x) = f.next_frame().expect("frame") {
            v.push(x);
        }
        v
    }

    /// Two messages in one read, then one split byte by byte: each comes out
    /// whole, and parses.
    #[test]
    fn cuts_by_content_length_across_reads() {
        let mut f = Framer::new(sip::MAX_MESSAGE);
        f.push(&[REG, MSG].concat());
        let got = all(&mut f);
        assert_eq!(
            got,
            vec![Frame::Message(REG.to_vec()), Frame::Message(MSG.to_vec())]
        );
        let (last, rest) = MSG.split_last().expect("bytes");
        for b in rest {
            f.push(&[*b]);
            assert!(all(&mut f).is_empty(), "not whole yet");
        }
        f.push(&[*last]);
        let got = all(&mut f);
        assert_eq!(got, vec![Frame::Message(MSG.to_vec())]);
        assert_eq!(f.buffered(), 0);
        let sip::Message::Request(r) = sip::parse(MSG).expect("parses") else {
            panic!("a request")
        };
        assert_eq!(r.body, b"hello");
    }

    /// A CRLFCRLF ping between messages is reported; a lone CRLF is skipped.
    #[test]
    fn crlf_keepalives() {
        let mut f = Framer::new(sip::MAX_MESSAGE);
        f.push(b"\r\n\r\n");
        assert_eq!(all(&mut f), vec![Frame::Ping]);
        f.push(b"\r\n");
        f.push(REG);
        assert_eq!(all(&mut f), vec![Frame::Message(REG.to_vec())]);
    }

    /// Failure paths: no Content-Length, a garbage one, two that differ, a
    /// body over the cap, a head that never ends.
    #[test]
    fn refuses_what_cannot_be_framed() {
        let cases: [(&[u8], &str); 4] = [
            (b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n", "missing"),
            (b"OPTIONS sip:a SIP/2.0\r\nContent-Length: -1\r\n\r\n", "-1"),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
                "Content-Length",
            ),
            (
                b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 99999999\r\n\r\n",
                "over the cap",
            ),
        ];
        for (bytes, want) in cases {
            let mut f = Framer::new(1024);
            f.push(bytes);
            let e = f.next_frame().expect_err("refused").to_string();
            assert!(e.contains(want), "{e}");
        }
        let mut f = Framer::new(1024);
        f.push(&vec![b'a'; 1025]);
        assert_eq!(f.next_frame(), Err(FrameError::HeadTooLong(1024)));
        let mut f = Framer::new(1024);
        f.push(&vec![b'a'; 1000]);
        assert_eq!(f.next_frame(), Ok(None), "not yet over the cap");
    }
}
