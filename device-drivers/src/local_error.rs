//! Whether a failed call failed on **our** side: the gateway itself out of
//! a local resource (file descriptors, socket buffers, memory, local
//! ports), not the device refusing or not answering.
//!
//! Such an error says nothing about the camera or horn at the other end:
//! every connect fails with it while it lasts. Callers map it to their
//! `Local` error kinds ([`crate::onvif_client::OnvifErrorKind::Local`],
//! [`crate::rtsp_probe::RtspErrorKind::Local`]) so the daemon counts the
//! gateway's trouble instead of marking healthy devices offline.
//!
//! Pure: it reads errors and their text, nothing else. The errno numbers
//! are Linux's (the same on x86_64 and aarch64), the platforms the gateway
//! ships for.

use std::error::Error;

/// A local resource the gateway ran out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalResource {
    /// `EMFILE` (24): too many open files in this process.
    Emfile,
    /// `ENFILE` (23): too many open files in the system.
    Enfile,
    /// `ENOBUFS` (105): no buffer space for the socket.
    Enobufs,
    /// `ENOMEM` (12): out of memory.
    Enomem,
    /// `EADDRNOTAVAIL` (99): no free local port or source address.
    Eaddrnotavail,
}

impl LocalResource {
    /// The resource behind a raw OS error number, if it is one of ours.
    pub fn from_raw_os_error(code: i32) -> Option<Self> {
        Some(match code {
            24 => Self::Emfile,
            23 => Self::Enfile,
            105 => Self::Enobufs,
            12 => Self::Enomem,
            99 => Self::Eaddrnotavail,
            _ => return None,
        })
    }

    /// The errno's name: `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`,
    /// `EADDRNOTAVAIL`.
    pub fn errno(self) -> &'static str {
        match self {
            Self::Emfile => "EMFILE",
            Self::Enfile => "ENFILE",
            Self::Enobufs => "ENOBUFS",
            Self::Enomem => "ENOMEM",
            Self::Eaddrnotavail => "EADDRNOTAVAIL",
        }
    }

    /// A bounded metric label: the errno's name in lower case.
    pub fn label(self) -> &'static str {
        match self {
            Self::Emfile => "emfile",
            Self::Enfile => "enfile",
            Self::Enobufs => "enobufs",
            Self::Enomem => "enomem",
            Self::Eaddrnotavail => "eaddrnotavail",
        }
    }

    /// What ran out, in words.
    pub fn what(self) -> &'static str {
        match self {
            Self::Emfile => "too many open files",
            Self::Enfile => "too many open files in the system",
            Self::Enobufs => "no socket buffer space",
            Self::Enomem => "out of memory",
            Self::Eaddrnotavail => "no free local port or address",
        }
    }
}

impl std::fmt::Display for LocalResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.what(), self.errno())
    }
}

/// The local resource an io error says ran out, from its raw OS error (or
/// that of an io error it wraps).
pub fn of_io(e: &std::io::Error) -> Option<LocalResource> {
    if let Some(r) = e.raw_os_error().and_then(LocalResource::from_raw_os_error) {
        return Some(r);
    }
    e.get_ref().and_then(|inner| of_chain(inner))
}

/// Walks `e` and its `source()` chain (reqwest → hyper-util → io) to an
/// io error that names a local resource.
pub fn of_chain(e: &(dyn Error + 'static)) -> Option<LocalResource> {
    let mut cur: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(s) = cur {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && let Some(r) = of_io(io)
        {
            return Some(r);
        }
        cur = s.source();
    }
    None
}

/// The local resource named in an error's text by its `(os error N)`
/// suffix (how `std::io::Error` displays): for libraries whose errors
/// hide their source (retina's).
pub fn of_text(text: &str) -> Option<LocalResource> {
    const MARK: &str = "(os error ";
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        rest = &rest[i + MARK.len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if rest[digits.len()..].starts_with(')')
            && let Some(r) = digits
                .parse()
                .ok()
                .and_then(LocalResource::from_raw_os_error)
        {
            return Some(r);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    /// Connection refused, host unreachable, a timeout and a reset are the
    /// camera's (or the network's): never local.
    #[test]
    fn the_peers_errors_are_not_local() {
        for code in [111, 113, 110, 104, 101, 2] {
            let e = io::Error::from_raw_os_error(code);
            assert_eq!(of_io(&e), None, "os error {code}");
            assert_eq!(of_chain(&e), None, "os error {code}");
            assert_eq!(of_text(&e.to_string()), None, "{e}");
        }
        let t = io::Error::new(io::ErrorKind::TimedOut, "timed out");
        assert_eq!(of_io(&t), None);
        assert_eq!(of_chain(&t), None);
        assert_eq!(of_text("connection refused (os error 1111)"), None);
        assert_eq!(of_text("os error 24"), None);
        assert_eq!(of_text("(os error 24"), None);
    }

    #[test]
    fn our_exhausted_resources_are_local() {
        let want = [
            (24, LocalResource::Emfile),
            (23, LocalResource::Enfile),
            (105, LocalResource::Enobufs),
            (12, LocalResource::Enomem),
            (99, LocalResource::Eaddrnotavail),
        ];
        for (code, r) in want {
            let e = io::Error::from_raw_os_error(code);
            assert_eq!(of_io(&e), Some(r), "os error {code}");
            assert_eq!(of_chain(&e), Some(r), "os error {code}");
            // As displayed, e.g. "Too many open files (os error 24)".
            assert_eq!(of_text(&e.to_string()), Some(r), "{e}");
        }
        assert_eq!(
            LocalResource::Emfile.to_string(),
            "too many open files (EMFILE)"
        );
    }

    /// An io error wrapped in another error (as hyper-util wraps the
    /// connect's io error) and an io error carrying one are both found.
    #[test]
    fn a_wrapped_local_error_is_found_down_the_chain() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let w = Wrapper(io::Error::from_raw_os_error(24));
        assert_eq!(of_chain(&w), Some(LocalResource::Emfile));
        let carried = io::Error::other(Wrapper(io::Error::from_raw_os_error(99)));
        assert_eq!(of_io(&carried), Some(LocalResource::Eaddrnotavail));
        let refused = Wrapper(io::Error::from_raw_os_error(111));
        assert_eq!(of_chain(&refused), None);
        // retina's text: the io error's display after its own words.
        assert_eq!(
            of_text("Unable to connect to RTSP server: Too many open files (os error 24)"),
            Some(LocalResource::Emfile)
        );
    }
}
